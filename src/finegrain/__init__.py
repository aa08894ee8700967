"""finegrain: communicating fine granularity in chest X-ray diagnosis.

Reports become coarse labels (1 / 0 / -1 / blank) and, for positives, an *atypical* or *typical*
subcategory; classifiers are trained with risk-modulated losses (PU-RM and baselines); AUC^FG
measures how well a model's positive probability separates atypical from typical positives.
"""

from __future__ import annotations

__version__ = "0.4.0"

from finegrain.observations import OBSERVATIONS

__all__ = ["OBSERVATIONS", "__version__", "auc_fg", "label_report"]


def __getattr__(name: str):  # lazy: keep `import finegrain` light (no torch import)
    if name == "label_report":
        from finegrain.reports import label_report

        return label_report
    if name == "auc_fg":
        from finegrain.metrics import auc_fg

        return auc_fg
    raise AttributeError(f"module 'finegrain' has no attribute {name!r}")
