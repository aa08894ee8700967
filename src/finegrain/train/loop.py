"""The training loop: one observation x one method x one seed, top to bottom.

``train(config)`` builds the datasets, the model and Adam; draws global batches from a seeded
per-epoch permutation; steps; and every ``checkpoint_every`` iterations (and at the end)
evaluates on the validation split(s), appends to ``metrics.jsonl`` and
``predictions-<split>.csv``, and writes a checkpoint. ``done`` is written last.

Exact resume: the data order is a pure function of (seed, iteration); each training item's
augmentation is drawn under a seed derived from (seed, iteration, slot in the batch); and a
checkpoint holds the model, optimiser, scaler, RNG states and iteration. So ``resume=True``
after a kill ends with bit-identical weights to an uninterrupted run on CPU.

Under torchrun each process takes its slice of every global batch (global batch = 32 by
default, per rank = 32 / world size), evaluation is sharded and gathered, and only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from finegrain import cpu_kernels
from finegrain.data.augment import Augmentation, augment_seeded
from finegrain.data.batch import IMAGE, LABEL, to_device
from finegrain.environment import versions
from finegrain.errors import FinegrainError
from finegrain.observations import POSITIVE, check_observation, cue_column, subcategory_column
from finegrain.train.checkpoint import (
    checkpoint_payload,
    load_checkpoint,
    set_rng_state,
    unwrap,
)
from finegrain.train.config import TrainConfig, format_differences
from finegrain.train.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    cleanup,
    gather_objects,
    init_distributed,
)
from finegrain.train.evaluation import predict_split
from finegrain.train.methods import TAU, Method
from finegrain.train.models import build_model
from finegrain.train.rundir import LABEL_NOISE_SPLITS, PREDICTION_COLUMNS, RunDirectory
from finegrain.train.tracking import TrackingSpec

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Data order


class InfiniteBatchSampler:
    """Endless global batches from a seeded per-epoch permutation; yields this rank's share.

    Global batch ``i`` is positions ``[i*B, (i+1)*B)`` of the concatenation of the epoch
    permutations (epoch ``e`` shuffled by ``numpy.random.default_rng([seed, e])``). Rank ``r``
    of ``W`` gets slots ``[r*B/W, (r+1)*B/W)`` of it, so the global batch is the same for any
    world size. Each item comes as ``(position, item_seed)``.
    """

    def __init__(
        self,
        n: int,
        global_batch: int,
        seed: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        start_iteration: int = 0,
    ) -> None:
        if n < 1:
            raise FinegrainError("the training split is empty: nothing to train on")
        if global_batch % world_size:
            raise FinegrainError(
                f"batch size {global_batch} is not divisible by the world size {world_size}"
            )
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self.rank, self.world_size, self.start_iteration = rank, world_size, start_iteration
        self.per_rank = global_batch // world_size
        self._epochs: dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._epochs:
            self._epochs = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
        return self._epochs[epoch]

    def global_batch_positions(self, iteration: int) -> np.ndarray:
        """Dataset positions of global batch ``iteration`` (0-based)."""
        stream = np.arange(iteration * self.global_batch, (iteration + 1) * self.global_batch)
        out = np.empty(self.global_batch, dtype=np.int64)
        for epoch in np.unique(stream // self.n):
            mask = stream // self.n == epoch
            out[mask] = self._permutation(int(epoch))[stream[mask] % self.n]
        return out

    def item_seeds(self, iteration: int) -> list[int]:
        """This rank's per-item augmentation seeds of global batch ``iteration`` (0-based)."""
        lo, hi = self.rank * self.per_rank, (self.rank + 1) * self.per_rank
        seeds = np.random.SeedSequence([self.seed, iteration]).generate_state(self.global_batch)
        return [int(s) for s in seeds[lo:hi]]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        lo, hi = self.rank * self.per_rank, (self.rank + 1) * self.per_rank
        for iteration in count(self.start_iteration):
            positions = self.global_batch_positions(iteration)
            seeds = self.item_seeds(iteration)
            yield [(int(positions[j]), seeds[j - lo]) for j in range(lo, hi)]


class SeededItems(Dataset):
    """Wraps a dataset so that item ``(position, seed)`` is drawn under that seed.

    Augmentations drawing from the ``random``, NumPy or torch global generators then depend
    only on the seed (not on the DataLoader worker or on what came before), which makes resume
    exact and the data identical for any number of workers or ranks. torch's global generator
    is restored afterwards; the ``random`` and NumPy global generators are left reseeded
    (restoring them costs ~0.3 ms per item, and nothing in training draws from them).
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        position, seed = key
        generator = torch.default_generator
        saved = generator.get_state()
        generator.manual_seed(seed)  # torch.manual_seed also seeds every accelerator: slow
        random.seed(seed)
        np.random.seed(seed)
        try:
            return self.dataset[position]
        finally:
            generator.set_state(saved)

    def __getitems__(self, keys: list[tuple[int, int]]) -> list:
        """A batch: one batched read when the dataset has one and draws nothing at random
        (``augment is None``), else item by item under each item's seed."""
        fetch = getattr(self.dataset, "__getitems__", None)
        if fetch is not None and getattr(self.dataset, "augment", True) is None:
            return fetch([position for position, _ in keys])
        return [self[key] for key in keys]


def make_train_loader(
    dataset: Dataset, config: TrainConfig, info: DistInfo, *, start_iteration: int = 0
) -> DataLoader:
    """The endless training DataLoader: this rank's share of each seeded global batch, from
    ``start_iteration`` on, with workers / pinned memory / persistent workers as configured."""
    workers = config.num_workers
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    sampler = InfiniteBatchSampler(
        len(dataset),
        config.batch_size,
        config.seed,
        rank=info.rank,
        world_size=info.world_size,
        start_iteration=start_iteration,
    )
    return DataLoader(
        SeededItems(dataset),
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=info.device.type == "cuda",
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(config.seed),
    )


# ---------------------------------------------------------------------------------------------
# Setup helpers


def build_datasets(config: TrainConfig, method: Method) -> dict[str, Dataset]:
    """``{"train": ..., <eval split>: ...}`` from the index table and the image cache."""
    from finegrain.data.cache import ImageCache
    from finegrain.data.dataset import Augmentation, CXRDataset
    from finegrain.data.index import read_index

    index = read_index(config.index)
    cache = ImageCache(config.cache)
    observation = check_observation(config.observation)
    datasets: dict[str, Dataset] = {
        "train": CXRDataset(
            index,
            cache,
            observation,
            "train",
            keep_uncertain=method.keep_uncertain,
            augment=Augmentation() if config.augment else None,
        )
    }
    # evaluation scores positives and negatives only: no metric (AUC^FG, AUC, the tiers) reads
    # an uncertain image, and they are up to 43% of the labelled ones (CheXpert Consolidation);
    # the dataset summary counts them ("uncertain dropped")
    for split in config.eval_splits:
        datasets[split] = CXRDataset(index, cache, observation, split, keep_uncertain=False)
    if config.label_noise:  # a positive control: noisy training and validation labels
        for split in LABEL_NOISE_SPLITS:
            if split in datasets:
                datasets[split].flip_labels(config.label_noise)
    return datasets


def _augmentation_on(
    config: TrainConfig, train_set: Dataset, device: torch.device
) -> tuple[Dataset, Augmentation | None]:
    """Where the training augmentation runs: ``(dataset for the loader, augmentation to apply
    to each batch on the device or None)``.

    ``augment_on="device"`` (the ``"auto"`` choice on CUDA) takes the dataset's
    :class:`Augmentation` out of the loader (which then reads plain batches in one read) and
    applies it to the whole batch on the training device, each image with its item seed, so
    the draws are the loader's. ``"loader"`` (``"auto"`` on CPU, where DataLoader workers
    spread it over cores) augments image by image in the loader. Datasets whose augmentation
    is not an :class:`Augmentation` always augment in the loader.
    """
    where = config.augment_on
    if where == "auto":
        where = "device" if device.type == "cuda" else "loader"
    augment = getattr(train_set, "augment", None)
    if where != "device" or not isinstance(augment, Augmentation):
        return train_set, None
    plain = copy.copy(train_set)
    plain.augment = None
    return plain, augment


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if not (config.amp and device.type == "cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


# ---------------------------------------------------------------------------------------------
# Evaluation at a checkpoint


def evaluate_splits(
    model: torch.nn.Module,
    method: Method,
    datasets: Mapping[str, Dataset],
    splits,
    iteration: int,
    info: DistInfo,
    *,
    batch_size: int,
    amp_dtype: torch.dtype | None,
) -> dict[str, tuple[dict[str, Any], pd.DataFrame]]:
    """Score each split (sharded over ranks, gathered); rank 0 gets ``{split: (scores, preds)}``."""
    from finegrain.evaluate import score_predictions

    results = {}
    for split in splits:
        dataset = datasets[split]
        mine = range(info.rank, len(dataset), info.world_size)
        frame = predict_split(
            model, dataset, method, batch_size, positions=mine, amp_dtype=amp_dtype
        )
        frames = gather_objects(frame, info)
        if not info.is_main:
            continue
        frame = pd.concat(frames, ignore_index=True).sort_values("position", kind="stable")
        frame.insert(1, "iteration", iteration)
        frame = frame[list(PREDICTION_COLUMNS)].reset_index(drop=True)
        results[split] = (score_predictions(frame), frame)
    return results


# ---------------------------------------------------------------------------------------------
# The loop


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    datasets: Mapping[str, Dataset] | None = None,
    tracking: TrackingSpec | None = None,
) -> Path:
    """Train one run into ``config.out`` and return that directory (see the module docstring).

    ``datasets`` (optional) replaces :func:`build_datasets`: ``{"train": ..., <split>: ...}``
    following the ``CXRDataset`` item contract. ``tracking`` mirrors every evaluation to
    TensorBoard / MLflow (see :mod:`finegrain.train.tracking`).
    """
    cpu_kernels.pin(config.cpu_kernels)  # before anything is computed
    info = init_distributed(config.device)
    run = RunDirectory(config.out)
    created = [f for f in (run.path, *run.path.parents) if not f.exists()]
    try:
        # one process trains a run directory at a time (rank 0 holds the lock for all ranks)
        with run.lock() if info.is_main else contextlib.nullcontext():
            return _train(
                config,
                info,
                resume=resume,
                progress=progress,
                datasets=datasets,
                tracking=tracking,
            )
    except BaseException:
        if info.is_main:  # a refused run leaves no folder behind
            _remove_empty(created, run.lock_path)
        raise
    finally:
        cleanup(info)


def _remove_empty(folders: list[Path], lock: Path) -> None:
    """Remove ``folders`` (made by this call, deepest first) while they are empty, but for
    the lock file ``lock``."""
    for folder in folders:
        with contextlib.suppress(OSError):
            if os.listdir(folder) == [lock.name] and lock.parent == folder:
                lock.unlink()
            folder.rmdir()
            continue
        return


def _train(
    config: TrainConfig,
    info: DistInfo,
    *,
    resume: bool,
    progress: bool,
    datasets: Mapping[str, Dataset] | None,
    tracking: TrackingSpec | None = None,
) -> Path:
    # --- setup: what to train, the data, the model and optimiser, resumed state
    run = RunDirectory(config.out)
    method = config.training_method()
    check_observation(config.observation)
    if config.batch_size % info.world_size:
        raise FinegrainError(
            f"--batch-size {config.batch_size} is not divisible by the {info.world_size} processes"
        )
    if run.is_done():
        if not resume:
            raise FinegrainError(f"{run.path} holds a complete run; choose a new --out")
        _check_same_config(run, config, "reuse")
        log.info("%s is already complete", run.path)
        return run.path
    ckpt = _checkpoint_to_resume(run, config, resume)
    _seed(config.seed)
    if datasets is None:
        datasets = build_datasets(config, method)
    _check_datasets(datasets, config, method)
    if info.is_main and config.batch_size > len(datasets["train"]):
        log.warning(
            "--batch-size %d is larger than the %d training images of %s: every batch repeats "
            "each image about %d times (choose a batch of at most %d)",
            config.batch_size, len(datasets["train"]), config.observation,
            round(config.batch_size / len(datasets["train"])), len(datasets["train"]),
        )  # fmt: skip
    image_size = int(SeededItems(datasets["train"])[(0, 0)][IMAGE].shape[-1])  # RNG untouched
    preprocessing = _preprocessing(datasets["train"], image_size)
    state = _TrainState.build(config, method, image_size, info.device)
    start, elapsed_before = 0, 0.0
    if ckpt is not None:
        start, elapsed_before = _restore(ckpt, state, info.device)
    if info.is_main:
        _open_outputs(run, config, info, datasets, start, preprocessing)
    barrier(info)
    net = _wrap(state.model, config, info)
    train_set, device_augment = _augmentation_on(config, datasets["train"], info.device)
    loader = make_train_loader(train_set, config, info, start_iteration=start)
    batches = iter(loader)
    tracker = _tracker(tracking, config, info, run, start)

    net.train()
    running = _Running(info.device)
    bar = _Progress(config, start, enabled=progress and info.is_main)
    t0 = time.perf_counter()
    for iteration in range(start + 1, config.iterations + 1):
        # --- step
        batch = to_device(next(batches), info.device)
        if device_augment is not None:  # the batch's augmentation, on the training device
            seeds = loader.batch_sampler.item_seeds(iteration - 1)
            batch[IMAGE] = augment_seeded(batch[IMAGE], device_augment, seeds)
        with torch.autocast(info.device.type, dtype=state.amp_dtype, enabled=state.amp):
            logits = net(batch[IMAGE])
        loss = method.loss(logits, batch)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        running.add(loss, logits, batch, method)
        bar.step(iteration, loss)
        if iteration % config.checkpoint_every and iteration != config.iterations:
            continue

        # --- evaluate
        training = running.summary(info)
        train_loss = training["train_loss"]
        elapsed = elapsed_before + time.perf_counter() - t0
        results = evaluate_splits(
            state.model,
            method,
            datasets,
            config.eval_splits,
            iteration,
            info,
            batch_size=config.eval_batch_size,
            amp_dtype=state.amp_dtype,
        )

        # --- checkpoint
        if info.is_main:
            _record_evaluations(run, results, iteration, training, elapsed, bar)
            if tracker is not None:
                scores = {split: row for split, (row, _) in results.items()}
                lr = state.optimizer.param_groups[0]["lr"]
                tracker.log_evaluation(iteration, train_loss, lr, scores)
            run.save_checkpoint(
                iteration,
                checkpoint_payload(
                    model=state.model,
                    optimizer=state.optimizer,
                    scaler=state.scaler,
                    iteration=iteration,
                    config=config,
                    image_size=image_size,
                    preprocessing=preprocessing,
                    train_loss=train_loss,
                    elapsed_s=elapsed,
                ),
            )
        barrier(info)
        running.reset()

    # --- finish
    bar.close()
    del batches, loader
    if tracker is not None:
        _close_tracker(tracker, run)
    if info.is_main:
        run.mark_done(config.iterations)
    barrier(info)
    return run.path


@dataclass
class _TrainState:
    """The model, its optimiser and the mixed-precision settings of a run."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None

    @property
    def amp(self) -> bool:
        return self.amp_dtype is not None

    @classmethod
    def build(
        cls, config: TrainConfig, method: Method, image_size: int, device: torch.device
    ) -> _TrainState:
        """The model (the method's head width; channels_last on CUDA and CPU when asked) and
        Adam, on ``device``."""
        model = build_model(
            config.model,
            pretrained=config.pretrained,
            weights=config.weights,
            image_size=image_size,
            outputs=method.outputs,
        ).to(device)
        if config.channels_last and device.type in ("cuda", "cpu"):
            model = model.to(memory_format=torch.channels_last)
            model.normalize.memory_format = torch.channels_last
        optimizer = torch.optim.Adam(
            model.parameters(),
            lr=config.lr,
            betas=tuple(config.betas),
            weight_decay=config.weight_decay,
        )
        amp_dtype = _amp_dtype(config, device)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        return cls(model, optimizer, scaler, amp_dtype)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _wrap(model: torch.nn.Module, config: TrainConfig, info: DistInfo) -> torch.nn.Module:
    """The module the loop calls: DDP under torchrun, ``torch.compile`` when asked."""
    net = model
    if info.distributed:
        device = info.device
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config.compile:
        net = torch.compile(net)
    return net


def _tracker(
    tracking: TrackingSpec | None, config: TrainConfig, info: DistInfo, run: RunDirectory, start
):
    """The TensorBoard / MLflow tracker of rank 0, when tracking is on."""
    if tracking is None or not tracking.enabled or not info.is_main:
        return None
    from finegrain.train.tracking import Tracker

    params = config.to_dict()
    params["versions"] = versions()
    params["world_size"] = info.world_size
    return Tracker(tracking, run.path, params, start)


def _close_tracker(tracker, run: RunDirectory) -> None:
    from finegrain.train.tracking import best_checkpoint

    best = best_checkpoint(run.path)
    if best is not None:
        tracker.log_best_checkpoint(*best)
    tracker.close()


# ---------------------------------------------------------------------------------------------
# Run-directory bookkeeping around the loop


def _checkpoint_to_resume(run: RunDirectory, config: TrainConfig, resume: bool) -> Path | None:
    """The checkpoint to resume from (``None``: start fresh); refuses to overwrite a run's
    checkpoints without ``resume`` or to resume under a different configuration."""
    if not resume:
        if run.checkpoints():
            raise FinegrainError(
                f"{run.path} already has checkpoints: pass --resume or choose a new --out"
            )
        if run.metrics_path.exists():
            raise FinegrainError(
                f"{run.metrics_path} is left by an earlier run that wrote no checkpoint: pass "
                "--resume to start that run over (it is replaced), or choose a new --out"
            )
        return None
    ckpt = run.latest_checkpoint()
    if ckpt is not None:
        _check_same_config(run, config, "resume")
    return ckpt


def _check_same_config(run: RunDirectory, config: TrainConfig, action: str) -> None:
    """Refuse to resume or reuse a run recorded with other settings (runtime fields aside)."""
    changed = config.differences(run.read_config())
    if changed:
        raise FinegrainError(
            f"cannot {action} {run.path}: it was trained with other settings "
            f"({format_differences(changed)}); choose a new --out"
        )


def _check_datasets(datasets: Mapping[str, Dataset], config: TrainConfig, method: Method) -> None:
    """Every split the run needs is there and non-empty (the error names the split), and the
    training split has fine labels (and cue flags) when the method needs them."""
    for split in config.eval_splits:
        if split not in datasets:
            raise FinegrainError(f"no dataset for evaluation split {split!r}")
    if method.needs_fine and not getattr(datasets["train"], "has_fine", False):
        raise FinegrainError(
            f"method {method.name!r} trains on fine labels, but no training image of the index "
            f"{config.index} has one (its {subcategory_column(config.observation)!r} column is "
            "absent or empty): label its reports first (finegrain index / finegrain label), or "
            "choose a method trained on coarse labels"
        )
    if method.needs_cue and not getattr(datasets["train"], "has_cue", False):
        raise FinegrainError(
            f"method {method.name!r} with no_cue='unknown' reads whether a positive has a "
            f"severity / change cue, but the index {config.index} has no "
            f"{cue_column(config.observation)!r} column (or it is empty): rebuild the index "
            "with this version of finegrain, or use no_cue='typical'"
        )
    for split, dataset in datasets.items():
        if len(dataset) == 0 and (split == "train" or split in config.eval_splits):
            summary = getattr(dataset, "summary", None)
            raise FinegrainError(
                f"no {split} images for {config.observation} in {config.index}"
                + (f" (dataset summary: {summary})" if summary else "")
            )


def _preprocessing(dataset: Dataset, image_size: int) -> dict[str, Any] | None:
    """The preprocessing spec of the training images, from the dataset's image cache (``None``
    for a dataset without one: its checkpoints then cannot be used by ``predict``)."""
    spec = getattr(dataset, "preprocessing", None)
    if spec is None:
        spec = getattr(getattr(dataset, "cache", None), "preprocessing", None)
    if spec is None:
        return None
    if spec.size != image_size:
        raise FinegrainError(
            f"the training images are {image_size} px but their cache says {spec.size} px"
        )
    return spec.to_dict()


def _restore(ckpt: Path, state: _TrainState, device: torch.device) -> tuple[int, float]:
    """Load model, optimiser, scaler and RNG states from ``ckpt``; returns (iteration, elapsed)."""
    payload = load_checkpoint(ckpt, map_location=device)
    state.model.load_state_dict(payload["model"])
    state.optimizer.load_state_dict(payload["optimizer"])
    if "scaler" in payload:
        state.scaler.load_state_dict(payload["scaler"])
    set_rng_state(payload["rng"])
    log.info(
        "resuming %s from iteration %d (%s)", ckpt.parent.parent, payload["iteration"], ckpt.name
    )
    return int(payload["iteration"]), float(payload.get("elapsed_s", 0.0))


def _open_outputs(
    run: RunDirectory,
    config: TrainConfig,
    info: DistInfo,
    datasets: Mapping[str, Dataset],
    start: int,
    preprocessing: dict[str, Any] | None,
) -> None:
    """Resumed: drop outputs written after the checkpoint. Fresh: clear leftovers of a run
    killed before its first checkpoint and write ``config.json``."""
    if start:
        run.truncate_after(start, config.eval_splits)
        return
    run.clear_outputs(config.eval_splits)
    record = config.to_dict()
    record["versions"] = versions()
    record["world_size"] = info.world_size
    record["data"] = {
        split: getattr(ds, "summary", {"kept": len(ds)}) for split, ds in datasets.items()
    }
    record["preprocessing"] = preprocessing
    record["cpu"] = cpu_kernels.in_effect()
    run.write_config(record)


class _Running:
    """What the loop sums between two checkpoints: the training loss; PCE's reach — the share
    of the training positives (label 1) of those batches whose positive probability was at most
    τ (where PCE differs from cross-entropy); and the positives' cross-entropy — the mean
    ``-log p`` of those positives (whether the network has memorised them: near 0 when every
    training positive is scored near 1, whatever the method's own loss). All three are measured
    on the step's own forward pass (train mode, augmented images); for a τ-free method at the
    paper's τ (:data:`~finegrain.train.methods.TAU`)."""

    def __init__(self, device: torch.device) -> None:
        # loss sum, positives reached, positives, positives' -log p
        self.totals = torch.zeros(4, device=device)
        self.steps = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, batch, method: Method):
        tau = method.tau if method.uses_tau else TAU
        with torch.no_grad():
            positive = batch[LABEL] == POSITIVE
            p = method.positive_probability(logits.detach()).float()
            reached = positive & (p <= tau)
            surprise = -torch.log(p[positive].clamp_min(1e-12)).sum()
            counts = torch.stack([reached.sum(), positive.sum()]).float()
            self.totals += torch.cat([loss.detach().float().reshape(1), counts, surprise[None]])
        self.steps += 1

    def summary(self, info: DistInfo) -> dict[str, float | None]:
        """Over every rank: ``train_loss`` (mean training loss), ``train_pce_reach`` (PCE's
        reach) and ``train_positive_ce`` (the positives' mean cross-entropy); the last two are
        None without positives."""
        totals = all_reduce_mean(self.totals, info) * info.world_size
        loss, reached, positives, surprise = totals.tolist()
        return {
            "train_loss": loss / (self.steps * info.world_size),
            "train_pce_reach": reached / positives if positives else None,
            "train_positive_ce": surprise / positives if positives else None,
        }

    def reset(self) -> None:
        self.totals.zero_()
        self.steps = 0


def _record_evaluations(
    run: RunDirectory,
    results: Mapping[str, tuple[dict[str, Any], pd.DataFrame]],
    iteration: int,
    training: dict[str, float | None],
    elapsed: float,
    bar: _Progress,
) -> None:
    """Append each split's scores (with the ``training`` summary since the last checkpoint) to
    ``metrics.jsonl`` and predictions to its CSV; report them."""
    for split, (scores, frame) in results.items():
        record = {"iteration": iteration, "split": split, **scores}
        record.update(**training, elapsed_s=round(elapsed, 3))
        run.append_metrics(record)
        run.append_predictions(split, frame)
        bar.message(
            f"iteration {iteration} {split}: AUC^FG {_fmt(scores['auc_fg'])}, "
            f"AUC {_fmt(scores['auc'])}"
        )


class _Progress:
    """The tqdm bar of a run (loss and images/s every 20 iterations); messages go above it,
    or to the log when the bar is off."""

    def __init__(self, config: TrainConfig, start: int, *, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.enabled = enabled
        self.batch_size = config.batch_size
        self.iterations = config.iterations
        self.bar = tqdm(
            total=config.iterations,
            initial=start,
            desc=f"{config.observation} {config.method} seed {config.seed}",
            disable=not enabled,
            unit="it",
        )
        self.t_bar, self.it_bar = time.perf_counter(), start

    def step(self, iteration: int, loss: torch.Tensor) -> None:
        if iteration % 20 == 0 or iteration == self.iterations:
            now = time.perf_counter()
            rate = (iteration - self.it_bar) * self.batch_size / max(now - self.t_bar, 1e-9)
            self.bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:.0f}")
            self.bar.update(iteration - self.bar.n)
            self.t_bar, self.it_bar = now, iteration

    def message(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text)
        else:
            log.info(text)

    def close(self) -> None:
        self.bar.close()


__all__ = [
    "InfiniteBatchSampler",
    "SeededItems",
    "build_datasets",
    "make_train_loader",
    "train",
    "unwrap",
]


def _fmt(value: float | None) -> str:
    """A metric for the console: 4 decimals, or n/a when a class was empty."""
    return "n/a" if value is None else f"{value:.4f}"
