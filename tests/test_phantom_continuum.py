"""The continuum design (phantom format 3): severity a number with a slight / significant cut,
lesions that vary, and a reader whose degree words agree with the image about as often as two
radiologists agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finegrain.data.phantom import (
    SEVERITY_CUT,
    Finding,
    Painter,
    PhantomKnobs,
    load_calibration,
    make_phantom,
)
from finegrain.data.phantom.reader import (
    DEFAULT_AGREEMENT,
    graded_agreement,
    reader_for,
    seen_slight,
    word_rates,
)
from finegrain.data.phantom.writer import phantom_differences
from finegrain.errors import FinegrainError
from finegrain.observations import OBSERVATIONS

STUDIES = 4000


@pytest.fixture(scope="module")
def continuum(tmp_path_factory) -> pd.DataFrame:
    """The truth of a 4,000-study continuum phantom at 16 px (its positives' rows)."""
    root = tmp_path_factory.mktemp("continuum") / "phantom"
    make_phantom(root, studies=STUDIES, size=16, seed=0)
    truth = pd.read_csv(root / "phantom-truth.csv", keep_default_na=False)
    return truth[truth["status"].astype(str) == "1"]


@pytest.mark.parametrize("observation", ["Edema", "Pleural Effusion", "Cardiomegaly"])
def test_the_reader_agrees_with_the_image_as_two_radiologists_do(continuum, observation) -> None:
    """Among positives graded with a degree word, the word's side agrees with the image's slight /
    significant on about 86.5 % (two radiologists: 84-89 %); the mined subcategory is no longer
    the image's (the bands design: every cued slight word on a slight image)."""
    rows = continuum[continuum["observation"] == observation]
    graded = rows[rows["severity_term"] != ""]
    assert len(graded) >= 200
    slight = graded["severity"] < SEVERITY_CUT
    agree = ((graded["subcategory"] == "atypical") == slight).mean()
    assert agree == pytest.approx(DEFAULT_AGREEMENT, abs=0.04)
    atypical = rows[rows["subcategory"] == "atypical"]
    assert (atypical["severity"] >= SEVERITY_CUT).any()  # a slight word on a significant image
    seen = pd.to_numeric(rows["reader_severity"])
    assert seen.notna().all() and not np.allclose(seen, rows["severity"])


def test_severities_fill_the_range_and_lesions_vary(continuum) -> None:
    rows = continuum[continuum["observation"] == "Edema"]
    severity = rows["severity"].to_numpy()
    assert severity.min() >= 0.05 and severity.max() <= 1.0
    counts, _ = np.histogram(severity, bins=10, range=(0.05, 1.0))
    assert (counts > 0).all()  # no gap between the sides, as the bands design has
    assert rows["extent"].std() > 0.1 and rows["density"].std() > 0.1
    assert rows["offset_x"].abs().max() > 0


def test_slight_share_sets_the_share_of_slight_positives(tmp_path: Path) -> None:
    make_phantom(tmp_path / "p", studies=1500, size=16, seed=1, slight_share={"Edema": 0.8})
    truth = pd.read_csv(tmp_path / "p" / "phantom-truth.csv", keep_default_na=False)
    positive = truth[(truth["status"].astype(str) == "1")]
    edema = positive[positive["observation"] == "Edema"]
    effusion = positive[positive["observation"] == "Pleural Effusion"]
    assert (edema["severity"] < SEVERITY_CUT).mean() > 0.72  # new ones 0.8; drift mixes
    assert (effusion["severity"] < SEVERITY_CUT).mean() < 0.8  # its default, 0.73
    settings = json.loads((tmp_path / "p" / "phantom.json").read_text())
    assert settings["format"] == 3 and settings["design"] == "continuum"
    assert settings["knobs"]["slight_share"]["Edema"] == 0.8
    assert set(settings["reader"]) == {"Consolidation", "Edema", "Pleural Effusion",
                                       "Cardiomegaly", "Atelectasis"}  # fmt: skip


def test_the_default_slight_share_is_the_bands_designs_implied_share() -> None:
    """atypical + half the no-cue share of the calibration profile (nocue_severity 0.5)."""
    from finegrain.data.phantom.knobs import DEFAULT_SLIGHT_SHARE

    calibration = load_calibration()
    for obs, share in DEFAULT_SLIGHT_SHARE.items():
        implied = calibration.atypical[obs] + 0.5 * calibration.no_cue[obs]
        assert share == pytest.approx(implied, abs=0.005)


def test_each_design_refuses_the_others_knobs() -> None:
    with pytest.raises(FinegrainError, match="nocue_severity: a knob of the bands design"):
        PhantomKnobs(nocue_severity=0.3)
    with pytest.raises(FinegrainError, match="slight_share, spread: a knob of the continuum"):
        PhantomKnobs(design="bands", slight_share=0.3, spread=0.5)
    with pytest.raises(FinegrainError, match="design must be one of"):
        PhantomKnobs(design="steps")
    with pytest.raises(FinegrainError, match=r"slight_share must be in \[0, 1\]"):
        PhantomKnobs(slight_share={"Edema": 1.5})
    with pytest.raises(FinegrainError, match=r"reader_agreement must be in \(0.5, 1\]"):
        PhantomKnobs(reader_agreement=0.4)
    assert PhantomKnobs(design="bands").nocue_severity == 0.5
    assert PhantomKnobs(slight_share={"Edema": 0.4}).slight_share_of("Consolidation") == 0.59


def test_a_phantom_of_the_other_design_is_named_as_such(tmp_path: Path) -> None:
    make_phantom(tmp_path / "bands", studies=20, size=16, seed=0, design="bands")
    assert phantom_differences(tmp_path / "bands", studies=20, size=16, design="bands") == []
    assert phantom_differences(tmp_path / "bands", studies=20, size=16) == [
        "design: bands -> continuum"
    ]
    make_phantom(tmp_path / "continuum", studies=20, size=16, seed=0)
    assert phantom_differences(tmp_path / "continuum", studies=20, size=16) == []
    assert phantom_differences(tmp_path / "continuum", studies=20, size=16, spread=0.5) == [
        "knobs.spread: 0.35 -> 0.5"
    ]


def _image(severity: float, extent: float = 1.0, density: float = 1.0) -> np.ndarray:
    painter = Painter(64, np.random.default_rng(0), PhantomKnobs())
    findings = {obs: Finding() for obs in OBSERVATIONS}
    finding = findings["Consolidation"]
    finding.severity, finding.where = severity, "right lower lobe"
    finding.extent, finding.density = extent, density
    return painter.frontal(findings, "PA")[0].astype(float)


def test_appearance_grows_with_severity_and_lesions_overlap() -> None:
    """At the same random state a larger severity draws a larger change; a slight lesion with a
    large extent and density draws more than a significant one with small ones."""
    negative = _image(0.0)
    change = [np.abs(_image(s) - negative).sum() for s in (0.2, 0.4, 0.6, 0.8)]
    assert change == sorted(change) and change[0] < change[-1]
    big_slight = np.abs(_image(0.4, extent=1.6, density=1.6) - negative).sum()
    small_significant = np.abs(_image(0.6, extent=0.7, density=0.7) - negative).sum()
    assert big_slight > small_significant


def test_word_rates_reach_the_shares_they_are_solved_for() -> None:
    rng = np.random.default_rng(0)
    severity = rng.uniform(0.05, 1.0, 20_000)
    changes = rng.choice(["", "improved", "worsened", "stable"], 20_000, p=[0.6, 0.1, 0.1, 0.2])
    noise = 0.2
    ws, wg = word_rates(severity, changes, reader_noise=noise, atypical=0.3, no_cue=0.6)
    # simulate the reader with these rates: the shares come out as asked
    seen = severity + rng.normal(0, noise, len(severity)) < SEVERITY_CUT
    degree = rng.random(len(severity)) < np.where(seen, ws, wg)
    change_word = np.isin(changes, ["improved", "worsened"]) & (rng.random(len(severity)) < 0.3)
    atypical = np.where(degree, seen, change_word & (changes == "improved"))
    assert (degree | change_word).mean() == pytest.approx(0.4, abs=0.01)
    assert atypical.mean() == pytest.approx(0.3, abs=0.01)
    with pytest.raises(FinegrainError, match="cannot be reached"):
        word_rates(severity, changes, reader_noise=noise, atypical=0.9, no_cue=0.05)


def test_reader_noise_is_solved_for_the_agreement() -> None:
    rng = np.random.default_rng(1)
    severity = rng.uniform(0.05, 1.0, 20_000)
    changes = [""] * len(severity)
    for agreement in (0.8, 0.9):
        noise, ws, wg = reader_for(severity, changes, agreement=agreement, atypical=0.3, no_cue=0.6)
        assert graded_agreement(severity, noise, ws, wg) == pytest.approx(agreement, abs=0.005)
    assert seen_slight(np.array([0.1, 0.9]), 0.0).tolist() == [1.0, 0.0]
