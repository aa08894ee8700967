"""Where AUC^FG comes from: AUC^FG against the mined labels with the atypical cases of one
source at a time, a **severity word** ("small effusion") or a **change word** alone ("improving
consolidation").

The paper's rule calls a positive atypical from either. A change word says what happened
between two studies, which one image cannot show: a model that ranks the image can only rank
such cases by chance (and so can the true severity: an improving finding may still be
significant). This table shows how many of the atypical cases come from change words and how
much of AUC^FG rests on them. The source of each case is the index's ``<Obs> cue`` column
(``severity``, ``change``; written by every source that labels reports since finegrain 0.4);
every typical case is kept in both. On a phantom the oracle (the true severity as the score) is
the first row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.metrics import auc_fg, auc_fg_by_source
from finegrain.observations import cue_column
from finegrain.scores import RANKED

#: The sources split, in the order of the table.
SOURCES: tuple[str, ...] = ("severity", "change")
SOURCE_COLUMNS: list[str] = [
    "observation",
    "variant",
    "display",
    "seeds",
    "auc_fg_mined",
    *(f"auc_fg_{s}" for s in SOURCES),
    "n_typical",
    *(f"n_{s}" for s in SOURCES),
    "change_share",
]


def case_sources(index: str | Path, image_ids: Sequence[str], observation: str) -> np.ndarray:
    """The source of each image's subcategory (the index's cue: ``severity``, ``change``, ``no``;
    empty where the index has none), reading only the index's ``image_id`` and cue columns."""
    from finegrain.data.index import index_values

    found = index_values(index, cue_column(observation))
    return found.reindex([str(i) for i in image_ids]).fillna("").to_numpy(dtype=object)


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def source_table(selections, truth=None, split: str = "test") -> pd.DataFrame:
    """Per observation and variant (mean over seeds): AUC^FG against the mined labels of the
    ranked score, and with the atypical cases of each source alone (:data:`SOURCE_COLUMNS`);
    the oracle first on a phantom (``truth``). Empty where the index says no cue's source (an
    index of finegrain 0.3: ``yes``)."""
    from finegrain.experiment.aggregate import fg_cases, selected_predictions
    from finegrain.experiment.truth import _display, case_truth

    groups: dict[tuple[str, str], list[dict]] = {}
    names: dict[str, str] = {}
    oracle: dict[str, dict] = {}
    for sel in selections:
        frame = selected_predictions(sel, split)
        index = sel.config.get("index")
        if frame is None or not index:
            continue
        obs = sel.spec.observation
        cases = fg_cases(frame)
        source = case_sources(index, cases["image_id"], obs)
        if not np.isin(source, SOURCES).any():
            continue
        y = (cases["subcategory"] == "typical").to_numpy(dtype=int)

        def row(score: np.ndarray, y=y, source=source) -> dict:
            split = auc_fg_by_source(y, source, score, SOURCES)
            found = {f"auc_fg_{s}": split[s] for s in SOURCES}
            found |= {f"n_{s}": split[f"n_{s}"] for s in SOURCES}
            found["auc_fg_mined"] = auc_fg(y, score) if 0 < y.sum() < len(y) else math.nan
            found["n_typical"] = int(y.sum())
            return found

        groups.setdefault((obs, sel.spec.variant), []).append(row(cases[RANKED].to_numpy(float)))
        names[sel.spec.variant] = _display(sel.spec, selections)
        if truth is not None and obs not in oracle:
            severity = case_truth(truth, cases["image_id"], obs)["severity"].to_numpy(float)
            oracle[obs] = row(severity)
    rows = []
    for obs, values in oracle.items():
        rows.append({"observation": obs, "variant": "oracle",
                     "display": "Oracle (true severity)", "seeds": 0, **values})  # fmt: skip
    for (obs, variant), runs in groups.items():
        mean = {k: _mean([r[k] for r in runs]) for k in ("auc_fg_mined",
                                                        *(f"auc_fg_{s}" for s in SOURCES))}  # fmt: skip
        counts = {k: runs[0][k] for k in ("n_typical", *(f"n_{s}" for s in SOURCES))}
        rows.append({"observation": obs, "variant": variant, "display": names[variant],
                     "seeds": len(runs), **mean, **counts})  # fmt: skip
    for r in rows:
        atypical = sum(r[f"n_{s}"] for s in SOURCES)
        r["change_share"] = r["n_change"] / atypical if atypical else math.nan
    return pd.DataFrame(rows, columns=SOURCE_COLUMNS)
