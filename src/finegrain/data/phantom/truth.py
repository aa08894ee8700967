"""The phantom's ground truth, read back: true severity per study and lesion masks per image.

>>> # truth = read_truth("phantom")
>>> # truth.severity("02aa804e-...", "Consolidation")        # 0.0 when absent
>>> # mask = truth.lesion_mask("02aa804e-...", "Consolidation", size=224)  # bool (224, 224)

A lesion mask is the region where the finding's drawn shape is at least half its peak (before
texture), moved by the image's own acquisition geometry (rotation, scale, shift), rendered at
any ``size``: the same functions draw the image (:func:`~finegrain.data.phantom.painter.lesion_shapes`),
so masks and pixels cannot drift apart. An absent finding has an empty mask. Images resized to
``size`` (``finegrain prepare`` with ``crop="none"``) line up with the mask pixel for pixel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from finegrain.data.phantom.calibration import CALIBRATED
from finegrain.data.phantom.finding import Finding
from finegrain.data.phantom.knobs import PhantomKnobs
from finegrain.data.phantom.painter import DEFAULT_KNOBS, Acquisition, affine, lesion_shapes
from finegrain.data.phantom.writer import IMAGES_FILE, SETTINGS_FILE, TRUTH_FILE
from finegrain.errors import FinegrainError, NotFound
from finegrain.observations import OBSERVATIONS, check_observation

#: Truth columns of a lesion's own appearance (continuum design) that its shape depends on.
LESION_SHAPE: tuple[str, ...] = ("extent", "density", "offset_x", "offset_y")


@dataclass
class PhantomTruth:
    """The truth of one phantom: ``findings`` (``phantom-truth.csv``, one row per study x
    observation), ``images`` (``phantom-images.csv``, one row per image, indexed by dicom id
    = the index's ``image_id``) and ``settings`` (``phantom.json``)."""

    root: Path
    findings: pd.DataFrame
    images: pd.DataFrame
    settings: dict

    def _study_rows(self, image_id: str) -> pd.DataFrame:
        if image_id not in self.images.index:
            raise NotFound(f"image {image_id!r} not in {self.root / IMAGES_FILE}")
        study = self.images.at[image_id, "study_id"]
        return self.findings.loc[study]

    def severity(self, image_id: str, observation: str) -> float:
        """True severity of ``observation`` on image ``image_id`` (0 = absent)."""
        check_observation(observation)
        return float(self._study_rows(image_id).at[observation, "severity"])

    def image_truth(self, image_id: str, observation: str) -> str:
        """``absent``, ``slight``, ``significant`` or ``other`` (another finding drawn)."""
        check_observation(observation)
        return str(self._study_rows(image_id).at[observation, "image_truth"])

    def lesion_mask(self, image_id: str, observation: str, size: int | None = None) -> np.ndarray:
        """Boolean ``(size, size)`` mask of ``observation`` on frontal image ``image_id``.

        ``size`` defaults to the phantom's image size. Observations that are not drawn
        (anything outside :data:`~finegrain.data.phantom.calibration.CALIBRATED`) and absent
        findings give an empty mask; a lateral image raises a ``ValueError``.
        """
        check_observation(observation)
        size = int(size or self.settings["size"])
        rows = self._study_rows(image_id)
        image = self.images.loc[image_id]
        if image["view"] not in ("AP", "PA"):
            raise FinegrainError(f"image {image_id!r} is a {image['view']} view: masks are frontal")
        if observation not in CALIBRATED or rows.at[observation, "severity"] <= 0:
            return np.zeros((size, size), dtype=bool)
        findings = {obs: Finding() for obs in OBSERVATIONS}
        lesions = [k for k in LESION_SHAPE if k in rows.columns]  # continuum design only
        for obs in CALIBRATED:
            f = findings[obs]
            f.severity = float(rows.at[obs, "severity"])
            f.where = str(rows.at[obs, "where"])
            for key in lesions:
                setattr(f, key, float(rows.at[obs, key]))
        geometry = Acquisition(
            *(float(image[k]) for k in ("angle", "scale", "shift_x", "shift_y", "jitter"))
        )
        return mask_of(findings, image["view"], geometry, observation, size, self.knobs)

    @property
    def knobs(self) -> PhantomKnobs:
        """The knobs the phantom was drawn with (its design's; absent ones at their defaults)."""
        return PhantomKnobs.recorded(self.settings)

    def lesion_masks(self, image_ids, observation: str, size: int | None = None) -> np.ndarray:
        """Masks of many images: boolean ``(len(image_ids), size, size)``."""
        size = int(size or self.settings["size"])
        return np.stack([self.lesion_mask(i, observation, size) for i in image_ids]).reshape(
            -1, size, size
        )


def read_truth(root: str | Path) -> PhantomTruth:
    """Read the truth files of the phantom at ``root`` (written by ``make_phantom``)."""
    root = Path(root)
    for name in (TRUTH_FILE, IMAGES_FILE, SETTINGS_FILE):
        if not (root / name).is_file():
            raise FileNotFoundError(
                f"{root / name} not found: not a phantom written by finegrain >= 0.2"
            )
    findings = pd.read_csv(
        root / TRUTH_FILE,
        dtype={"subject_id": str, "study_id": str, "where": str, "image_truth": str},
        keep_default_na=False,
    ).set_index(["study_id", "observation"], drop=False)
    findings = findings.sort_index()
    images = pd.read_csv(
        root / IMAGES_FILE,
        dtype={"dicom_id": str, "subject_id": str, "study_id": str},
        keep_default_na=False,
    ).set_index("dicom_id", drop=False)
    settings = json.loads((root / SETTINGS_FILE).read_text(encoding="utf-8"))
    return PhantomTruth(root=root, findings=findings, images=images, settings=settings)


def lesion_mask(
    root: str | Path, image_id: str, observation: str, size: int | None = None
) -> np.ndarray:
    """Boolean lesion mask of ``observation`` on image ``image_id`` of the phantom at ``root``
    (reads the truth each call: use :func:`read_truth` for many images)."""
    return read_truth(root).lesion_mask(image_id, observation, size)


def mask_of(
    findings: dict[str, Finding],
    view: str,
    geometry: Acquisition,
    observation: str,
    size: int,
    knobs: PhantomKnobs = DEFAULT_KNOBS,
) -> np.ndarray:
    """The lesion mask of ``observation`` for findings drawn with ``geometry`` (bool, ``size``²)."""
    shapes = lesion_shapes(size, view, findings, geometry.jitter, knobs)
    if observation not in shapes or observation in ("heart", "open_lung"):
        return np.zeros((size, size), dtype=bool)
    shift = (geometry.shift_x * size / 2, geometry.shift_y * size / 2)
    shape = shapes[observation]
    if observation == "Consolidation":  # the painter confines the blob to the open lung
        shape = shape * shapes["open_lung"]
    moved = affine(shape, geometry.angle, geometry.scale, shift, fill=0.0)
    return moved >= 0.5
