"""The training batch: a record of named fields, as torchxrayvision's samples are dicts.

Every item of a :class:`~finegrain.data.dataset.CXRDataset` (and so every batch the loader
collates) is a ``dict`` with at least these fields; a consumer reads the fields it needs, so a
new field breaks none of them:

========= ======================= ==================================================
field     dtype, shape            meaning
========= ======================= ==================================================
``image`` uint8 ``[1, S, S]``     the cached image (augmented when asked)
``label`` int64 ``[]``            the coarse label: 1, 0 or -1 (uncertain)
``fine``  int64 ``[]``            the fine subcategory: 0 atypical, 1 typical, -1 none
``cue``   int64 ``[]``            a severity/change cue: 1 found, 0 none, -1 unknown
``row``   int64 ``[]``            the image's position in the index table
========= ======================= ==================================================

``fine`` is filled for the **training** split only (-1 elsewhere): validation and test fine
labels are read by evaluation (AUC^FG, checkpoint selection), never by a loss. It is -1 for
every image that is not positive or has no subcategory. ``cue`` likewise (training split only)
says whether the labeler found a severity or change cue (the index's optional ``<Obs> cue``
column: ``severity``, ``change`` or the older ``yes``); 0 marks a positive that is typical by
the paper's rule only, for want of a cue.

>>> fine_codes(["atypical", "typical", "", None])
array([ 0,  1, -1, -1])
>>> cue_codes(["severity", "change", "yes", "no", ""])
array([ 1,  1,  1,  0, -1])
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from finegrain.observations import ATYPICAL, TYPICAL

IMAGE, LABEL, FINE, CUE, ROW = "image", "label", "fine", "cue", "row"
#: The ``fine`` codes.
FINE_ATYPICAL, FINE_TYPICAL, FINE_NONE = 0, 1, -1
_CODES = {ATYPICAL: FINE_ATYPICAL, TYPICAL: FINE_TYPICAL}

#: The ``cue`` codes.
CUE_YES, CUE_NO, CUE_UNKNOWN = 1, 0, -1
_CUES = {"severity": CUE_YES, "change": CUE_YES, "yes": CUE_YES, "no": CUE_NO}

Batch = dict[str, torch.Tensor]


def fine_codes(subcategories: Iterable[object]) -> np.ndarray:
    """``atypical`` -> 0, ``typical`` -> 1, anything else (blank, None) -> -1 (int64)."""
    return np.array([_CODES.get(s, FINE_NONE) for s in subcategories], dtype=np.int64)


def cue_codes(values: Iterable[object]) -> np.ndarray:
    """A cue (``severity``, ``change``, ``yes``) -> 1, ``no`` -> 0, anything else (blank,
    None) -> -1 (int64)."""
    return np.array([_CUES.get(v, CUE_UNKNOWN) for v in values], dtype=np.int64)


def to_device(batch: Batch, device: torch.device | str) -> Batch:
    """Every tensor field of ``batch`` moved to ``device`` (non-blocking)."""
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }
