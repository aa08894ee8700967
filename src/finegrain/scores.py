"""Which score AUC^FG ranks: one rule, followed everywhere.

A method declares two scores per image (:class:`finegrain.train.methods.Method`): its
**positive probability** (column :data:`SCORE`: the coarse AUC, the tiers' positive cut, the
exported probability) and its **fine score** (column :data:`FINE_SCORE`, higher = more typical).
**AUC^FG ranks the fine score** (:data:`RANKED`). For the paper's methods the fine score *is*
the positive probability, so their AUC^FG is the paper's; a method with a fine score of its
own (``ordinal``, ``three-class``: ``Method.own_fine_score``) is ranked by it, and the paper's
AUC^FG of its positive probability is shown beside it.

Checkpoint selection, every benchmark table, the paired differences, DeLong, the image-truth
table, the figures, ``finegrain evaluate`` and ``predict`` follow this rule; a new table reads
:data:`RANKED` (predictions) or :data:`RANKED_METRIC` (``metrics.jsonl``, ``results.csv``).

>>> import pandas as pd
>>> old = pd.DataFrame({"auc_fg": [0.61, 0.7]})  # a run recorded before the fine score
>>> with_ranked_metric(old)[RANKED_METRIC].tolist()
[0.61, 0.7]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: The positive probability's column in predictions (``predictions-<split>.csv``).
SCORE = "score"
#: The fine score's column: what AUC^FG ranks (:data:`RANKED`).
FINE_SCORE = "fine_score"
#: The column AUC^FG ranks, for every method.
RANKED = FINE_SCORE
#: AUC^FG of the ranked score in ``metrics.jsonl`` and ``results.csv``: what checkpoints are
#: chosen by and the tables show.
RANKED_METRIC = "auc_fg_fine"
#: The paper's AUC^FG, of the positive probability (shown beside the ranked one where a method's
#: fine score is its own; equal to it otherwise).
PROBABILITY_METRIC = "auc_fg"


def with_ranked_metric(metrics: pd.DataFrame) -> pd.DataFrame:
    """``metrics`` with :data:`RANKED_METRIC` filled from :data:`PROBABILITY_METRIC` where it is
    missing: evaluations recorded before the fine score, when it was the positive
    probability."""
    metrics = metrics.copy()
    if PROBABILITY_METRIC not in metrics.columns:
        return metrics
    if RANKED_METRIC not in metrics.columns:
        metrics[RANKED_METRIC] = metrics[PROBABILITY_METRIC]
    else:
        metrics[RANKED_METRIC] = metrics[RANKED_METRIC].fillna(metrics[PROBABILITY_METRIC])
    return metrics
