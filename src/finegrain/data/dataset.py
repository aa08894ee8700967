"""The torch ``Dataset`` over the image cache for one observation, split and uncertainty policy.

Items are records (:mod:`finegrain.data.batch`): ``image`` is a uint8 tensor ``[1, S, S]``
straight from the cache (augmented if asked), ``label`` an int64 scalar in {1, 0, -1},
``fine`` the fine subcategory code and ``cue`` whether a severity / change cue was found
(both for the training split only; -1 elsewhere) and ``row`` the int64
position of the image in the index table given. Images stay uint8 all the way into the model,
whose first module (``InputNormalization``) scales them, replicates channels and applies the
ImageNet mean / std: normalisation lives in exactly one place (see ``docs/data.md``).

Rows are left out, counted by reason in :attr:`CXRDataset.summary`: ``blank label`` (the
observation is not mentioned), ``not in cache`` (the image id is absent from the cache),
``failed in cache`` (the image could not be decoded by ``prepare``) and ``uncertain dropped``
(label -1 when ``keep_uncertain=False``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from finegrain.data.augment import Augmentation
from finegrain.data.batch import (
    CUE,
    CUE_UNKNOWN,
    FINE,
    FINE_NONE,
    IMAGE,
    LABEL,
    ROW,
    cue_codes,
    fine_codes,
)
from finegrain.data.cache import ImageCache
from finegrain.data.index import SPLITS
from finegrain.errors import FinegrainError
from finegrain.labels import check_labels
from finegrain.observations import UNCERTAIN, check_observation, cue_column, subcategory_column

__all__ = ["DROP_REASONS", "Augmentation", "CXRDataset"]

log = logging.getLogger(__name__)

#: Drop reasons, in the order they are checked (a row is counted under the first that applies).
#: The seed of :meth:`CXRDataset.flip_labels` (fixed: every run flips the same images).
LABEL_NOISE_SEED = 20201
#: The summary key of the labels flipped by label noise.
FLIPPED = "flipped by label noise"
DROP_REASONS: tuple[str, ...] = (
    "blank label",
    "not in cache",
    "failed in cache",
    "uncertain dropped",
)

Item = dict[str, torch.Tensor]


class CXRDataset(Dataset):
    """Images of one ``split`` labelled for one ``observation``, read from an :class:`ImageCache`.

    Attributes: ``labels`` (int64 array, 1/0/-1), ``subcategories`` (object array of
    ``"atypical"``, ``"typical"`` or ``""``; what evaluation reads), ``fine`` (the items'
    ``fine`` codes: the subcategories on the training split, -1 on the others), ``has_fine``
    (whether any of its images has a subcategory), ``cue`` (the items' ``cue`` codes, training
    split only) and ``has_cue`` (whether the index has the observation's cue column),
    ``image_ids``,
    ``index_rows`` (positions in ``index``), ``cache_rows`` and ``summary`` (``kept`` and every
    drop reason, with counts).
    """

    def __init__(
        self,
        index: pd.DataFrame,
        cache: ImageCache,
        observation: str,
        split: str,
        *,
        keep_uncertain: bool = True,
        augment: Augmentation | None = None,
    ):
        observation = check_observation(observation)
        if split not in SPLITS:
            raise FinegrainError(f"split must be one of {SPLITS}, got {split!r}")
        for column in ("image_id", "split", observation):
            if column not in index.columns:
                raise FinegrainError(f"index table: missing column {column!r}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be an Augmentation or None, got {augment!r}")
        self.observation = observation
        self.split = split
        self.keep_uncertain = keep_uncertain
        self.augment = augment
        self.cache = cache

        positions = np.flatnonzero((index["split"] == split).to_numpy(dtype=bool, na_value=False))
        part = index.iloc[positions]
        raw = check_labels(
            part[observation],
            source="index table",
            column=observation,
            where=lambda pos: f"row {positions[pos]}",
        )
        raw = raw.astype("Int64")
        ids = part["image_id"].astype(str).tolist()
        cache_rows = cache.lookup(ids)
        blank = raw.isna().to_numpy()
        absent = ~blank & (cache_rows < 0)
        failed = ~blank & ~absent & ~cache.ok[np.maximum(cache_rows, 0)] if len(ids) else absent
        label_values = raw.fillna(0).to_numpy(dtype=np.int64)
        uncertain = ~blank & ~absent & ~failed & (label_values == UNCERTAIN) & (not keep_uncertain)
        keep = ~(blank | absent | failed | uncertain)

        self.summary: dict[str, int] = {"kept": int(keep.sum())}
        for reason, mask in zip(DROP_REASONS, (blank, absent, failed, uncertain), strict=True):
            self.summary[reason] = int(mask.sum())
        if self.summary["not in cache"]:
            log.warning(
                "%d %s images of the index are not in the cache %s (was it prepared from "
                "another index?)",
                self.summary["not in cache"],
                split,
                cache.directory,
            )

        self.index_rows: np.ndarray = positions[keep].astype(np.int64)
        self.cache_rows: np.ndarray = cache_rows[keep]
        self.labels: np.ndarray = label_values[keep]
        self.image_ids: list[str] = [i for i, k in zip(ids, keep, strict=True) if k]
        sub_col = subcategory_column(observation)
        if sub_col in part.columns:
            subs = part[sub_col].astype("string").fillna("").to_numpy(dtype=object)[keep]
        else:
            subs = np.full(len(self.labels), "", dtype=object)
        self.subcategories: np.ndarray = subs
        self.has_fine = bool((subs != "").any())
        # the fine label reaches a loss from the training split only
        self.fine: np.ndarray = (
            fine_codes(subs) if split == "train" else np.full(len(subs), FINE_NONE, np.int64)
        )
        cue_col = cue_column(observation)
        self.has_cue = cue_col in part.columns and bool(part[cue_col].notna().any())
        cues = (
            part[cue_col].astype("string").fillna("").to_numpy(dtype=object)[keep]
            if (self.has_cue and split == "train")
            else np.full(len(subs), "", dtype=object)
        )
        self.cue: np.ndarray = cue_codes(cues)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Item:
        image = torch.from_numpy(np.array(self.cache[self.cache_rows[i]]))[None]
        if self.augment is not None:
            image = self.augment(image)
        return {
            IMAGE: image,
            LABEL: torch.tensor(self.labels[i], dtype=torch.int64),
            FINE: torch.tensor(self.fine[i], dtype=torch.int64),
            CUE: torch.tensor(self.cue[i], dtype=torch.int64),
            ROW: torch.tensor(self.index_rows[i], dtype=torch.int64),
        }

    def __getitems__(self, indices: Sequence[int]) -> list[Item]:
        """A batch at once: one sorted read of the memmap (used by DataLoader's batch fetch)."""
        indices = np.asarray(indices, dtype=np.int64)
        images = torch.from_numpy(self.cache.read_rows(self.cache_rows[indices]))[:, None]
        if self.augment is not None:
            images = self.augment(images)  # the whole batch in one call, a draw per image
        fields = {
            LABEL: torch.from_numpy(self.labels[indices]),
            FINE: torch.from_numpy(self.fine[indices]),
            CUE: torch.from_numpy(self.cue[indices]),
            ROW: torch.from_numpy(self.index_rows[indices]),
        }
        return [
            {IMAGE: image, **{k: v[j] for k, v in fields.items()}} for j, image in enumerate(images)
        ]

    def flip_labels(self, share: float, seed: int = LABEL_NOISE_SEED) -> int:
        """Label noise for a positive control: flip each positive and negative label with
        probability ``share`` (uncertain labels are left as they are); returns how many flipped.

        Whether an image flips depends on ``seed``, the observation and its image id only, so
        every run (any method, any training seed) flips the same images. A flipped image loses
        its subcategory, fine label and cue (a negative made positive has none). Counted in
        ``summary["flipped by label noise"]``.
        """
        import hashlib

        if not 0.0 <= share < 0.5:
            raise FinegrainError(f"label noise must lie in [0, 0.5), got {share}")
        draws = np.array(
            [
                int.from_bytes(
                    hashlib.sha256(f"{seed}:{self.observation}:{i}".encode()).digest()[:8], "big"
                )
                / 2.0**64
                for i in self.image_ids
            ],
            dtype=np.float64,
        )
        flip = (draws < share) & (self.labels != UNCERTAIN)
        self.labels = np.where(flip, 1 - self.labels, self.labels).astype(np.int64)
        self.subcategories = np.where(flip, "", self.subcategories).astype(object)
        self.fine = np.where(flip, FINE_NONE, self.fine).astype(np.int64)
        self.cue = np.where(flip, CUE_UNKNOWN, self.cue).astype(np.int64)
        self.summary[FLIPPED] = int(flip.sum())
        return int(flip.sum())

    def format_summary(self) -> str:
        """One line: kept count, each non-zero drop reason and the labels flipped by noise."""
        dropped = ", ".join(f"{n} {r}" for r in DROP_REASONS if (n := self.summary[r]))
        flipped = self.summary.get(FLIPPED, 0)
        return (
            f"{self.observation} / {self.split}: kept {self.summary['kept']}"
            + (f"; dropped {dropped}" if dropped else "")
            + (f"; {flipped} {FLIPPED}" if flipped else "")
        )

    def __repr__(self) -> str:
        return f"CXRDataset({self.format_summary()})"
