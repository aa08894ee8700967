"""The phantom's truth read back: severities per image and lesion masks that line up with the
pixels the painter drew."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from finegrain.data.phantom import CALIBRATED, Finding, Painter, lesion_mask, read_truth
from finegrain.data.phantom.truth import mask_of
from finegrain.observations import OBSERVATIONS


@pytest.mark.parametrize("observation", CALIBRATED)
def test_mask_covers_where_the_painter_changed_the_pixels(observation: str) -> None:
    """Same acquisition with and without a significant finding: the pixel difference lies
    inside the mask (far larger inside than outside)."""

    def draw(severity: float):
        painter = Painter(128, np.random.default_rng(1))  # rotated -4.9 deg, shifted 2.4 px
        findings = {obs: Finding() for obs in OBSERVATIONS}
        findings[observation].severity = severity
        findings["Consolidation"].where = "left lower lobe"
        findings["Pleural Effusion"].where = "right"
        pixels, geometry = painter.frontal(findings, "AP")
        return pixels.astype(float), geometry, findings

    negative, _, _ = draw(0.0)
    positive, geometry, findings = draw(0.9)
    mask = mask_of(findings, "AP", geometry, observation, 128)
    assert mask.dtype == bool and mask.shape == (128, 128)
    assert 0.002 < mask.mean() < 0.5
    diff = np.abs(positive - negative)
    assert diff[mask].mean() > 4 * diff[~mask].mean()
    if observation != "Cardiomegaly":  # the heart's core is there without the finding too
        assert (diff[mask] > 0).mean() > 0.95
    absent = mask_of({o: Finding() for o in OBSERVATIONS}, "AP", geometry, observation, 128)
    assert not absent.any()
    # the mask sits where the change is: moved by 2 px in any direction it holds less of it
    inside = diff[mask].sum()
    for axis in (0, 1):
        for step in (-2, 2):
            assert inside > diff[np.roll(mask, step, axis=axis)].sum(), (axis, step)


def test_read_truth_gives_severity_and_masks_per_image(phantom_root: Path) -> None:
    truth = read_truth(phantom_root)
    frontal = truth.images[truth.images["view"].isin(["AP", "PA"])]
    assert len(frontal) >= 48
    present = absent = 0
    for image_id in frontal.index:
        for obs in CALIBRATED:
            severity = truth.severity(image_id, obs)
            mask = truth.lesion_mask(image_id, obs)
            assert mask.shape == (64, 64)
            if mask.any():
                assert severity > 0, (image_id, obs)
            if severity >= 0.6:  # significant: always a visible region
                assert mask.sum() >= 4, (image_id, obs)
            present += severity > 0
            absent += severity == 0
    assert present > 10 and absent > 10
    assert not truth.lesion_mask(frontal.index[0], "Fracture").any()  # not drawn
    with pytest.raises(KeyError, match="not in"):
        truth.lesion_mask("no-such-image", "Edema")
    with pytest.raises(ValueError, match="observation"):
        truth.lesion_mask(frontal.index[0], "Edemaa")
    lateral = truth.images[~truth.images["view"].isin(["AP", "PA"])].index
    with pytest.raises(ValueError, match="frontal"):
        truth.lesion_mask(lateral[0], "Edema")


def test_masks_scale_with_size(phantom_root: Path) -> None:
    """A mask rendered at twice the size, pooled 2x2, is the same mask (up to its edge)."""
    truth = read_truth(phantom_root)
    f = truth.findings
    study = f.loc[(f["observation"] == "Pleural Effusion") & (f["severity"] > 0.6), "study_id"]
    images = truth.images[truth.images["study_id"].isin(study) & truth.images["view"].ne("LATERAL")]
    image_id = images.index[0]
    small = truth.lesion_mask(image_id, "Pleural Effusion", 64)
    big = truth.lesion_mask(image_id, "Pleural Effusion", 128)
    pooled = big.reshape(64, 2, 64, 2).mean(axis=(1, 3)) >= 0.5
    assert small.sum() > 20
    assert (pooled != small).mean() < 0.02
    assert truth.lesion_masks([image_id, image_id], "Pleural Effusion", 32).shape == (2, 32, 32)
    np.testing.assert_array_equal(
        lesion_mask(phantom_root, image_id, "Pleural Effusion", 64), small
    )
