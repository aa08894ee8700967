"""Predictions of a model over a dataset split: the table ``evaluate`` and the run directory use."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from finegrain.data.batch import IMAGE
from finegrain.train.methods import Method


@torch.no_grad()
def predict_split(
    model: nn.Module,
    dataset: Dataset,
    method: Method,
    batch_size: int = 64,
    *,
    positions: Sequence[int] | None = None,
    device: str | torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
    num_workers: int = 0,
) -> pd.DataFrame:
    """Score ``dataset`` (or its ``positions``) with ``model``, trained by ``method``.

    ``dataset`` follows the :class:`finegrain.data.dataset.CXRDataset` contract: record items
    with an ``image`` (uint8 ``[1, S, S]``) and attributes ``image_ids``, ``labels``,
    ``subcategories`` indexed by position. Returns one row per item, in the order of
    ``positions``: ``position, image_id, label, subcategory, score, fine_score``: the method's
    positive probability and fine score (:meth:`~finegrain.train.methods.Method.scores`).
    """
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    if positions is None:
        positions = range(len(dataset))
    positions = [int(p) for p in positions]
    was_training = model.training
    model.eval()
    scores: dict[str, list[np.ndarray]] = {"score": [], "fine_score": []}
    loader = DataLoader(
        Subset(dataset, positions),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    autocast = (
        torch.autocast(device_type=device.type, dtype=amp_dtype)
        if amp_dtype is not None
        else contextlib.nullcontext()
    )
    for batch in loader:
        with autocast:
            logits = model(batch[IMAGE].to(device, non_blocking=True))
        for name, values in method.scores(logits.float()).items():
            scores[name].append(values.cpu().numpy())
    model.train(was_training)
    image_ids = np.asarray(dataset.image_ids, dtype=object)
    labels = np.asarray(dataset.labels)
    subcategories = np.asarray(dataset.subcategories, dtype=object)
    index = np.asarray(positions, dtype=np.int64)
    return pd.DataFrame(
        {
            "position": index,
            "image_id": image_ids[index] if len(index) else [],
            "label": labels[index].astype(np.int64) if len(index) else [],
            "subcategory": [s if isinstance(s, str) and s else None for s in subcategories[index]],
            **{
                name: np.concatenate(parts).astype(np.float64) if parts else []
                for name, parts in scores.items()
            },
        }
    )
