"""The checkpoint file format, its one owner: the keys (:func:`checkpoint_payload`), atomic save,
``weights_only`` load, RNG states, and the model and method of a loaded checkpoint
(:func:`model_from_checkpoint`). Where checkpoints live in a run directory is
:mod:`finegrain.train.rundir`'s business.

A checkpoint is a dict of tensors and plain Python values only, so it loads with
``weights_only=True``:

================= ===========================================================================
key               value
================= ===========================================================================
model             the model's state dict
optimizer, scaler their state dicts (what resume needs)
rng               Python, NumPy, torch (and CUDA) RNG states (:func:`rng_state`)
iteration         the iteration it was written at
config            the run's TrainConfig as a dict
model_name        the backbone's name in the model registry
outputs           the width of the head (the method's ``outputs``)
method            the training method's name; ``method_options`` its options
registered_in     the user modules that registered its method and model (imported on load)
image_size        the side of the images it was trained on
preprocessing     size, crop, normalisation (:class:`finegrain.data.cache.Preprocessing`)
observation, tau  what it was trained for
train_loss        mean training loss since the previous checkpoint; ``elapsed_s`` time so far
calibration       the positive probability's recalibration (:mod:`finegrain.recalibration`) and
thresholds        the tiers' thresholds fitted after it, once ``finegrain calibrate`` stored them
================= ===========================================================================
"""

from __future__ import annotations

import errno
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from finegrain.errors import FinegrainError
from finegrain.io import atomic_open, unreadable_torch_file

if TYPE_CHECKING:  # pragma: no cover
    from finegrain.train.methods import Method


def checkpoint_payload(
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any,
    iteration: int,
    config: Any,
    image_size: int,
    preprocessing: dict[str, Any] | None,
    train_loss: float,
    elapsed_s: float,
) -> dict[str, Any]:
    """The checkpoint of a training run at ``iteration`` (``config``: its TrainConfig)."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "iteration": iteration,
        "rng": rng_state(),
        "config": config.to_dict(),
        "model_name": config.model,
        "outputs": int(unwrap(model).classifier.out_features),
        "image_size": image_size,
        "preprocessing": preprocessing,
        "observation": config.observation,
        "method": config.method,
        "method_options": dict(config.method_options),
        "registered_in": list(config.registered_in()),
        "tau": config.training_method().tau,
        "train_loss": train_loss,
        "elapsed_s": elapsed_s,
    }


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """``torch.save`` through a temporary file renamed into place (never half-written)."""
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; errors name the file."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise FinegrainError(unreadable_torch_file(path, exc)) from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise FinegrainError(f"{path}: not a finegrain checkpoint (no 'model' entry)")
    return payload


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states as tensors and plain values."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [int(version), torch.tensor(mt, dtype=torch.int64), gauss],
        "numpy": [
            str(name),
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(int(x) for x in mt.tolist()), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def method_of(payload: dict[str, Any]) -> Method:
    """The training method of a loaded checkpoint (by name from the registry, with its options);
    its module is imported first when the checkpoint records one."""
    from finegrain.registry import import_modules
    from finegrain.train.methods import get_method

    import_modules(payload.get("registered_in", ()))
    return get_method(str(payload.get("method") or ""), payload.get("method_options"))


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP and/or ``torch.compile`` wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def model_from_checkpoint(
    payload: dict[str, Any], path: str | Path = "", map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a loaded checkpoint (``path`` only names it in errors and meta).

    Returns ``(model in eval mode, meta)`` where ``meta`` is the checkpoint without the model,
    optimizer and RNG states (iteration, config, model_name, image_size, observation, method,
    preprocessing, thresholds when present) plus ``path``.
    """
    from finegrain.registry import import_modules
    from finegrain.train.models import build_model

    import_modules(payload.get("registered_in", ()))
    if "model" not in payload or "model_name" not in payload:
        raise FinegrainError(f"{path} is not a finegrain checkpoint (no 'model'/'model_name')")
    model = build_model(
        payload["model_name"],
        pretrained=False,
        image_size=payload.get("image_size"),
        outputs=int(payload.get("outputs", 2)),  # before 0.3 every head had 2
    )
    model.load_state_dict(payload["model"])
    model.to(map_location).eval()
    meta = {k: v for k, v in payload.items() if k not in ("model", "optimizer", "rng", "scaler")}
    meta["path"] = str(path)
    return model, meta
