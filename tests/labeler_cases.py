"""What the labeler's language tests share: the observations by short name and ``check``, one
report's label compared whole (status, severity, change and the subcategory they give)."""

from __future__ import annotations

from finegrain.division import divide
from finegrain.reports import label_report

EFF = "Pleural Effusion"
EDEMA = "Edema"
CONS = "Consolidation"
ATEL = "Atelectasis"
HEART = "Cardiomegaly"
MEDIASTINUM = "Enlarged Cardiomediastinum"
PTX = "Pneumothorax"
OPAC = "Lung Opacity"
DEVICE = "Support Devices"
PNA = "Pneumonia"
LESION = "Lung Lesion"
FRACTURE = "Fracture"


def check(text: str, observation: str, status, severity=None, change=None) -> None:
    """``text``'s label of ``observation`` is exactly this status, severity and change, with
    the subcategory the division rule gives them (none unless positive or uncertain)."""
    label = label_report(text)[observation]
    subcategory = divide(severity, change) if status in (1, -1) else None
    want = (status, severity, change, subcategory)
    got = (label.status, label.severity, label.change, label.subcategory)
    assert got == want, f"{text!r} / {observation}"
