"""The calibrated phantom: label shares as the index sees them match the calibration table, and
each knob does what it says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finegrain.data.mimic import index_mimic
from finegrain.data.phantom import (
    CALIBRATED,
    PhantomKnobs,
    load_calibration,
    make_phantom,
    required_eval_studies,
)
from finegrain.data.phantom.noise import before_noise
from finegrain.observations import subcategory_column

#: 4,000 studies: a share's standard error is about 0.4-0.8 points (subjects are clustered), so
#: +-2 points is a real check; at 16 px the phantom takes a few seconds.
STUDIES = 4000
TOLERANCE = 0.02


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("calibrated") / "phantom"
    make_phantom(root, studies=STUDIES, size=16, seed=0)
    frame, _ = index_mimic(root, progress=False)
    return root, frame


def _shares(frame: pd.DataFrame, obs: str) -> np.ndarray:
    values = frame[obs].astype("float").to_numpy()
    return np.array(
        [np.mean(values == 1), np.mean(values == -1), np.mean(values == 0), np.isnan(values).mean()]
    )


def test_the_calibration_table_is_real_chexpert_frontal_data() -> None:
    calibration = load_calibration()
    assert calibration.profile == "chexpert-frontal"
    consolidation = calibration.shares["Consolidation"].as_tuple()
    np.testing.assert_allclose(consolidation, (0.068, 0.1276, 0.1026, 0.7018), atol=1e-3)
    edema = calibration.shares["Edema"].as_tuple()
    np.testing.assert_allclose(edema, (0.2601, 0.0619, 0.0833, 0.5948), atol=1e-3)
    assert calibration.no_cue["Consolidation"] == pytest.approx(0.81, abs=0.01)
    assert calibration.metadata["frontal_images"] == 191010
    assert 0.8 < calibration.ap_share < 0.9
    assert sum(v for _, v in calibration.studies_per_subject) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown calibration profile"):
        load_calibration("mimic")


@pytest.mark.parametrize("observation", CALIBRATED)
def test_index_label_shares_match_the_table(calibrated, observation: str) -> None:
    """Per frontal image, as ``finegrain index`` reads the phantom: within +-2 points."""
    _, frame = calibrated
    assert set(frame["view"]) <= {"AP", "PA"} and len(frame) >= STUDIES * 0.97
    target = np.array(load_calibration().shares[observation].as_tuple())
    got = _shares(frame, observation)
    assert np.abs(got - target).max() <= TOLERANCE, (observation, got.round(3), target)


def test_views_and_images_per_study_match_the_table(calibrated) -> None:
    root, frame = calibrated
    calibration = load_calibration()
    assert (frame["view"] == "AP").mean() == pytest.approx(calibration.ap_share, abs=TOLERANCE)
    per_study = frame.groupby("study_id").size().mean()
    assert per_study == pytest.approx(calibration.metadata["frontal_images_per_study"], abs=0.01)


@pytest.mark.parametrize("observation", ["Edema", "Pleural Effusion", "Cardiomegaly"])
def test_atypical_share_of_positives_follows_real_reports(calibrated, observation: str) -> None:
    """The report labeler, run on the phantom's reports, finds about the real share of atypical
    positives (OpenI); checked where positives are numerous enough to tell (>= 400)."""
    _, frame = calibrated
    positive = frame[frame[observation].astype("float") == 1]
    assert len(positive) >= 400
    share = (positive[subcategory_column(observation)].astype(str) == "atypical").mean()
    assert share == pytest.approx(load_calibration().atypical[observation], abs=0.05)


def test_truth_no_cue_share_follows_real_reports(calibrated) -> None:
    root, _ = calibrated
    truth = pd.read_csv(root / "phantom-truth.csv", keep_default_na=False, dtype=str)
    calibration = load_calibration()
    for obs in CALIBRATED:
        positive = truth[(truth["observation"] == obs) & (truth["status"] == "1")]
        no_cue = ((positive["severity_term"] == "") & (positive["change_term"] == "")).mean()
        assert no_cue == pytest.approx(calibration.no_cue[obs], abs=0.05), obs


def test_before_noise_inverts_the_labeler_noise() -> None:
    drawn = before_noise(0.3, 0.1, 0.2)
    assert sum(drawn) == pytest.approx(1.0)
    assert drawn[0] > 0.3 and drawn[2] > 0.2  # noise only removes mentions
    with pytest.raises(ValueError, match="cannot be reached"):
        before_noise(0.7, 0.2, 0.2)


def _truth(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "phantom-truth.csv", keep_default_na=False, dtype={"status": str})


def test_knobs_change_what_they_name(tmp_path: Path) -> None:
    base = dict(studies=600, size=16, seed=1, design="bands")
    make_phantom(tmp_path / "a", uncertain_mixture={"absent": 1.0}, nocue_severity=1.0, **base)
    truth = _truth(tmp_path / "a")
    calibrated = truth[truth["observation"].isin(CALIBRATED)]
    uncertain = calibrated[calibrated["status"] == "-1"]
    assert len(uncertain) > 50 and (uncertain["image_truth"] == "absent").all()
    positive = calibrated[calibrated["status"] == "1"]
    no_cue = positive[(positive["severity_term"] == "") & (positive["change_term"] == "")]
    assert len(no_cue) > 50 and (no_cue["image_truth"] == "slight").all()

    make_phantom(tmp_path / "b", uncertain_mixture={"other": 1.0}, nocue_severity=0.0, **base)
    truth = _truth(tmp_path / "b")
    cons = truth[(truth["observation"] == "Consolidation") & (truth["status"] == "-1")]
    assert len(cons) > 20 and (cons["image_truth"] == "other").all()
    assert (cons["severity"] == 0).all()
    atelectasis = truth[truth["observation"] == "Atelectasis"].set_index("study_id")
    assert (atelectasis.loc[cons["study_id"], "severity"] > 0).all()  # the other finding drawn
    positive = truth[truth["observation"].isin(CALIBRATED) & (truth["status"] == "1")]
    no_cue = positive[(positive["severity_term"] == "") & (positive["change_term"] == "")]
    assert (no_cue["image_truth"] == "significant").all()


def test_prevalence_multiplies_the_positive_share(tmp_path: Path) -> None:
    make_phantom(tmp_path / "x1", studies=1500, size=16, seed=2)
    make_phantom(tmp_path / "x2", studies=1500, size=16, seed=2, prevalence={"Consolidation": 3})
    one, _ = index_mimic(tmp_path / "x1", progress=False)
    three, _ = index_mimic(tmp_path / "x2", progress=False)
    tripled = _shares(three, "Consolidation")[0]
    assert 2.2 < tripled / _shares(one, "Consolidation")[0] < 3.8
    assert tripled == pytest.approx(
        3 * load_calibration().shares["Consolidation"].positive, abs=0.035
    )
    assert _shares(three, "Edema")[0] == pytest.approx(_shares(one, "Edema")[0], abs=0.03)
    with pytest.raises(ValueError, match="exceeds positive"):
        make_phantom(tmp_path / "x3", studies=10, size=16, prevalence=20)
    with pytest.raises(ValueError, match="not calibrated"):
        make_phantom(tmp_path / "x4", studies=10, size=16, prevalence={"Fracture": 2})


def test_visibility_scales_slight_contrast_only() -> None:
    from finegrain.data.phantom import Finding, Painter
    from finegrain.observations import OBSERVATIONS

    def draw(severity: float, visibility: float) -> np.ndarray:
        painter = Painter(64, np.random.default_rng(0), PhantomKnobs(visibility=visibility))
        findings = {obs: Finding() for obs in OBSERVATIONS}
        findings["Edema"].severity = severity
        return painter.frontal(findings, "PA")[0].astype(float)

    negative = draw(0.0, 1.0)
    slight = [np.abs(draw(0.2, v) - negative).mean() for v in (0.5, 1.0, 2.0)]
    assert slight[0] < slight[1] < slight[2]
    significant = [np.abs(draw(0.8, v) - negative).mean() for v in (0.5, 2.0)]
    assert significant[0] == significant[1]
    with pytest.raises(ValueError, match="visibility"):
        PhantomKnobs(visibility=0)


def test_eval_studies_gives_large_evaluation_splits(tmp_path: Path) -> None:
    summary = make_phantom(tmp_path / "e", studies=40, eval_studies=150, size=16, seed=3)
    truth = _truth(tmp_path / "e")
    split = pd.read_csv(tmp_path / "e" / "mimic-cxr-2.0.0-split.csv.gz", dtype=str)
    studies = split.drop_duplicates("study_id")["split"].value_counts().to_dict()
    assert studies == {"train": 40, "validate": 150, "test": 150}
    assert summary.studies == 340 and truth["study_id"].nunique() == 340
    assert split.groupby("subject_id")["split"].nunique().max() == 1
    need = required_eval_studies(300)
    need_common = required_eval_studies(300, observations=("Pleural Effusion",))
    assert need > need_common > 0
    assert required_eval_studies(300, prevalence={"Consolidation": 2}) < need
