"""The phantom's knobs per observation: ``visibility={observation: multiplier}`` changes only
that observation's drawing (and its truth), default phantoms keep their bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finegrain.data.phantom import (
    CALIBRATED,
    SEVERITY_CUT,
    PhantomKnobs,
    make_phantom,
    read_truth,
)
from finegrain.errors import FinegrainError

#: 60 studies at 32 px, seed 2: slight Consolidation in a few studies (some with no other slight
#: drawn finding), slight Cardiomegaly in a few (a second each)
STUDIES, SIZE, SEED = 60, 32, 2
VARIANTS = {
    "default": {},
    "consolidation": {"visibility": {"Consolidation": 2.0}},
    "cardiomegaly": {"visibility": {"Cardiomegaly": 2.0}},
    "all": {"visibility": 2.0},
    "each": {"visibility": dict.fromkeys(CALIBRATED, 2.0)},
    "conspicuous": {"conspicuity": {"Consolidation": 2.0}},
}


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> dict[str, Path]:
    """The same phantom (seed, size, studies) under each visibility of :data:`VARIANTS`."""
    out = tmp_path_factory.mktemp("knobs")
    for name, knobs in VARIANTS.items():
        make_phantom(out / name, studies=STUDIES, size=SIZE, seed=SEED, workers=1, **knobs)
    return {name: out / name for name in VARIANTS}


def contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def slight_studies(root: Path, observation: str) -> set[str]:
    """Studies whose ``observation`` is drawn slight (where visibility applies)."""
    truth = pd.read_csv(root / "phantom-truth.csv", dtype={"study_id": str})
    rows = truth[(truth["observation"] == observation) & (truth["severity"] < SEVERITY_CUT)]
    return set(rows.loc[rows["severity"] > 0, "study_id"])


def only_slight(root: Path, observation: str) -> set[str]:
    """Studies whose only slight drawn finding is ``observation``."""
    others = set().union(*(slight_studies(root, o) for o in CALIBRATED if o != observation))
    return slight_studies(root, observation) - others


def frontal_jpgs(root: Path, studies: set[str]) -> set[str]:
    images = pd.read_csv(root / "phantom-images.csv", dtype=str, keep_default_na=False)
    rows = images[images["study_id"].isin(studies) & images["view"].isin(["AP", "PA"])]
    return {
        f"files/p{r.subject_id[:2]}/p{r.subject_id}/s{r.study_id}/{r.dicom_id}.jpg"
        for r in rows.itertuples()
    }


def test_visibility_is_one_number_or_one_per_observation() -> None:
    assert PhantomKnobs().visibility == 1.0 and PhantomKnobs().as_dict()["visibility"] == 1.0
    assert isinstance(PhantomKnobs(visibility=2).as_dict()["visibility"], float)
    assert PhantomKnobs(visibility=0.5).visibility_of("Edema") == 0.5
    knobs = PhantomKnobs(visibility={"Consolidation": 3, "Edema": 0.5})
    assert knobs.visibility_of("Consolidation") == 3.0
    assert knobs.visibility_of("Edema") == 0.5
    assert knobs.visibility_of("Cardiomegaly") == 1.0
    assert knobs.as_dict()["visibility"] == {"Consolidation": 3.0, "Edema": 0.5}
    with pytest.raises(FinegrainError, match=r"\['Fracture'\] not drawn"):
        PhantomKnobs(visibility={"Consolidation": 2, "Fracture": 2})
    with pytest.raises(FinegrainError, match="visibility.*'Edema': 0.0"):
        PhantomKnobs(visibility={"Edema": 0})
    with pytest.raises(FinegrainError, match="visibility.*-1"):
        PhantomKnobs(visibility=-1)


def test_default_phantom_records_one_number(phantoms) -> None:
    text = (phantoms["default"] / "phantom.json").read_text()
    assert '"visibility": 1.0,' in text
    recorded = json.loads((phantoms["consolidation"] / "phantom.json").read_text())
    assert recorded["knobs"]["visibility"] == {"Consolidation": 2.0}


def test_visibility_of_one_observation_changes_only_its_drawing(phantoms) -> None:
    """Same seed: with ``{"Consolidation": 2}`` only the frontal images of studies with slight
    Consolidation differ from the default phantom (every other file is the same, bytes and
    all); those images are the ones ``visibility=2`` draws when Consolidation is the study's
    only slight finding; and 2 for every observation, one by one, is ``visibility=2``."""
    default, consolidation = contents(phantoms["default"]), contents(phantoms["consolidation"])
    every, each = contents(phantoms["all"]), contents(phantoms["each"])
    assert default.keys() == consolidation.keys() == every.keys() == each.keys()
    changed = {path for path in default if default[path] != consolidation[path]}
    slight = frontal_jpgs(phantoms["default"], slight_studies(phantoms["default"], "Consolidation"))
    assert slight, "the test phantom should hold slight Consolidation"
    assert changed == slight | {"phantom.json"}
    alone = frontal_jpgs(phantoms["default"], only_slight(phantoms["default"], "Consolidation"))
    assert alone, "the test phantom should hold a study whose only slight finding is Consolidation"
    for path in alone:
        assert consolidation[path] == every[path], path
    assert {path for path in every if every[path] != each[path]} == {"phantom.json"}


def test_heart_and_masks_follow_cardiomegaly_own_visibility(phantoms) -> None:
    """The heart's width follows Cardiomegaly's own multiplier: its masks (read back from
    ``phantom.json``'s per-observation visibility) are those of ``visibility=2`` and larger than
    the default's for slight Cardiomegaly; ``{"Consolidation": 2}`` (a density, not a shape)
    leaves every mask as the default's."""
    truths = {name: read_truth(root) for name, root in phantoms.items()}
    images = truths["default"].images
    frontal = images[images["view"].isin(["AP", "PA"])]
    slight = frontal[frontal["study_id"].isin(slight_studies(phantoms["default"], "Cardiomegaly"))]
    assert len(slight), "the test phantom should hold slight Cardiomegaly"
    for image_id in slight.index:
        masks = {
            name: truths[name].lesion_mask(image_id, "Cardiomegaly", 128)
            for name in ("default", "cardiomegaly", "all", "consolidation")
        }
        np.testing.assert_array_equal(masks["cardiomegaly"], masks["all"])
        np.testing.assert_array_equal(masks["consolidation"], masks["default"])
        assert masks["cardiomegaly"].sum() > masks["default"].sum(), image_id
    for observation in CALIBRATED:
        for image_id in frontal.index:
            np.testing.assert_array_equal(
                truths["consolidation"].lesion_mask(image_id, observation),
                truths["default"].lesion_mask(image_id, observation),
            )
    changed = slight_studies(phantoms["default"], "Cardiomegaly")
    cardiomegaly, default = contents(phantoms["cardiomegaly"]), contents(phantoms["default"])
    assert {p for p in default if default[p] != cardiomegaly[p]} == frontal_jpgs(
        phantoms["default"], changed
    ) | {"phantom.json"}


def drawn_studies(root: Path, observation: str) -> set[str]:
    """Studies whose ``observation`` is drawn, at any severity."""
    truth = pd.read_csv(root / "phantom-truth.csv", dtype={"study_id": str})
    rows = truth[(truth["observation"] == observation) & (truth["severity"] > 0)]
    return set(rows["study_id"])


def test_conspicuity_is_a_contrast_knob_at_every_severity(phantoms) -> None:
    """``conspicuity={"Consolidation": 2}`` redraws exactly the frontal images with Consolidation
    drawn, slight *and* significant (visibility: slight only), keeps its masks (a density), and
    in the bands design is not written to ``phantom.json`` at 1, so older phantoms keep their
    bytes (the continuum design always records it)."""
    from finegrain.data.phantom.writer import phantom_differences

    assert "conspicuity" not in PhantomKnobs(design="bands").as_dict()
    assert PhantomKnobs().as_dict()["conspicuity"] == 1.0
    knobs = PhantomKnobs(conspicuity={"Consolidation": 2})
    assert knobs.conspicuity_of("Consolidation") == 2.0 and knobs.conspicuity_of("Edema") == 1.0
    assert knobs.as_dict()["conspicuity"] == {"Consolidation": 2.0}
    with pytest.raises(FinegrainError, match="conspicuity multipliers must be > 0"):
        PhantomKnobs(conspicuity=0)
    default, conspicuous = contents(phantoms["default"]), contents(phantoms["conspicuous"])
    changed = {path for path in default if default[path] != conspicuous[path]}
    drawn = drawn_studies(phantoms["default"], "Consolidation")
    assert drawn - slight_studies(phantoms["default"], "Consolidation"), "needs significant ones"
    assert changed == frontal_jpgs(phantoms["default"], drawn) | {"phantom.json"}
    truths = {name: read_truth(phantoms[name]) for name in ("default", "conspicuous")}
    images = truths["default"].images
    for image_id in images.index[images["view"].isin(["AP", "PA"])][:20]:
        np.testing.assert_array_equal(
            truths["conspicuous"].lesion_mask(image_id, "Consolidation"),
            truths["default"].lesion_mask(image_id, "Consolidation"),
        )
    same = {"studies": STUDIES, "size": SIZE, "seed": SEED}
    assert phantom_differences(phantoms["default"], **same) == []
    assert phantom_differences(phantoms["conspicuous"], **same) == [
        "knobs.conspicuity: {'Consolidation': 2.0} -> 1.0"
    ]
    assert phantom_differences(phantoms["default"], **same, conspicuity=2.0) == [
        "knobs.conspicuity: 1.0 -> 2.0"
    ]


def test_cli_visibility_per_observation(tmp_path, capsys) -> None:
    from finegrain.cli import main
    from finegrain.cli.phantom import multipliers

    assert multipliers("0.5") == 0.5
    assert multipliers("Consolidation=2,Edema=0.5") == {"Consolidation": 2.0, "Edema": 0.5}
    out = tmp_path / "p"
    args = ["phantom", str(out), "--studies", "4", "--size", "16", "--no-progress"]
    assert main([*args, "--visibility", "Consolidation=2", "--prevalence", "Edema=1.5"]) == 0
    knobs = json.loads((out / "phantom.json").read_text())["knobs"]
    assert knobs["visibility"] == {"Consolidation": 2.0}
    assert knobs["prevalence"] == {"Edema": 1.5}
    capsys.readouterr()
    assert main(["phantom", str(tmp_path / "q"), "--visibility", "Fracture=2"]) == 2
    assert "Fracture" in capsys.readouterr().err


# ------------------------------------------------------------- the phantom's condition in a benchmark


def small_preset(**changes):
    """The demo preset on a phantom of 10 training studies and 4 per evaluation split, 16 px."""
    from finegrain.experiment.presets import DEMO_V03

    small = {
        "observations": ("Edema",),
        "image_size": 16,
        "phantom_studies": 10,
        "phantom_size": 16,
        "phantom_eval_studies": 4,
    }
    if "phantom" in changes:  # the demo's design, with the knobs given
        changes["phantom"] = {**DEMO_V03.phantom, **changes["phantom"]}
    return DEMO_V03.replace(**{**small, **changes})


def test_preset_phantom_field_round_trips() -> None:
    from finegrain.experiment.presets import DEMO_V03, Preset

    assert DEMO_V03.phantom == {"design": "bands"}  # the demo of finegrain 0.3
    preset = DEMO_V03.replace(phantom={**DEMO_V03.phantom, "visibility": {"Consolidation": 3.0}})
    again = Preset.from_dict(json.loads(json.dumps(preset.to_dict())))
    assert again == preset and again.phantom["visibility"] == {"Consolidation": 3.0}
    assert hash(again) == hash(
        DEMO_V03.replace(phantom={"prevalence": 2.0})
    )  # hash=False, as train
    recorded = DEMO_V03.to_dict()
    del recorded["phantom"]  # a benchmark.json written before the field: the bands design
    assert Preset.from_dict(recorded) == DEMO_V03
    recorded["phantom"] = {"prevalence": 0.5}  # written by finegrain 0.3: the bands design too
    assert Preset.from_dict(recorded).phantom == {"design": "bands", "prevalence": 0.5}
    continuum = DEMO_V03.replace(phantom={"prevalence": 0.5})  # no design given: the default
    assert Preset.from_dict(continuum.to_dict()).phantom["design"] == "continuum"
    with pytest.raises(FinegrainError, match=r"make_phantom has no keyword\(s\) \['visibilty'\]"):
        DEMO_V03.replace(phantom={"visibilty": 2.0})
    with pytest.raises(FinegrainError, match=r"\['Fracture'\] not drawn"):  # checked at once
        DEMO_V03.replace(phantom={"visibility": {"Fracture": 2.0}})


def test_prepare_data_makes_the_phantom_of_the_preset_and_refuses_another(tmp_path) -> None:
    """``{sizes} | preset.phantom | source.phantom_options`` reach ``phantom.json``; the same
    request reuses the phantom, another one is refused naming what differs."""
    from finegrain.experiment.runner import DataMismatch, DataSource, prepare_data

    preset = small_preset(phantom={"visibility": {"Consolidation": 3.0}, "prevalence": 1.5})
    source = DataSource(phantom=True, phantom_options={"prevalence": {"Edema": 2.0}})
    data = prepare_data(source, tmp_path, preset, progress=False)
    assert "phantom" in data.seconds
    recorded = json.loads((tmp_path / "data" / "phantom" / "phantom.json").read_text())
    assert (recorded["studies"], recorded["eval_studies"], recorded["size"]) == (10, 4, 16)
    assert recorded["knobs"]["visibility"] == {"Consolidation": 3.0}
    assert recorded["knobs"]["prevalence"] == {"Edema": 2.0}  # the source's options win

    again = prepare_data(source, tmp_path, preset, progress=False)
    assert again.seconds == {} and again.index == data.index
    with pytest.raises(DataMismatch) as caught:
        prepare_data(DataSource(phantom=True), tmp_path, small_preset(), progress=False)
    message = str(caught.value)
    assert "knobs.visibility: {'Consolidation': 3.0} -> 1.0" in message
    assert "knobs.prevalence: {'Edema': 2.0} -> 1.0" in message
    assert "new --out" in message and "studies" not in message
    other = small_preset(phantom_studies=11, phantom_size=32, phantom=preset.phantom)
    with pytest.raises(DataMismatch, match=r"studies: 10 -> 11; size: 16 -> 32"):
        prepare_data(source, tmp_path, other, progress=False)


def test_a_default_phantom_made_before_is_reused(tmp_path, caplog) -> None:
    """A benchmark folder whose phantom was made with the default knobs (as every one before
    the preset's ``phantom`` field) is reused, the defaults given or not."""
    from finegrain.experiment.runner import DataSource, prepare_data

    make_phantom(
        tmp_path / "data" / "phantom", studies=10, size=16, seed=0, eval_studies=4, design="bands"
    )
    (tmp_path / "data" / "phantom.done").write_text("")
    source = DataSource(phantom=True)
    for phantom in ({}, {"visibility": 1.0, "prevalence": 1, "nocue_severity": 0.5}):
        data = prepare_data(source, tmp_path, small_preset(phantom=phantom), progress=False)
        assert "phantom" not in data.seconds
    (tmp_path / "data" / "phantom" / "phantom.json").unlink()  # finegrain < 0.2 wrote none
    prepare_data(source, tmp_path, small_preset(phantom={"visibility": 2.0}), progress=False)
    assert "cannot be checked" in caplog.text


class _Stop(Exception):
    """Raised by the stand-in of run_benchmark: the test has what reached it."""


def test_cli_benchmark_phantom_options_reach_the_preset(tmp_path, monkeypatch, capsys) -> None:
    import finegrain.experiment.runner as runner
    from finegrain.cli import main

    seen = {}

    def fake_run_benchmark(out, preset, source, **kwargs):
        seen.update(out=out, preset=preset, source=source)
        raise _Stop

    monkeypatch.setattr(runner, "run_benchmark", fake_run_benchmark)
    out = ["--out", str(tmp_path / "b"), "--no-progress"]
    with pytest.raises(_Stop):
        main(["benchmark", "--visibility", "Consolidation=2", "--prevalence", "0.5", *out])
    from finegrain.experiment.presets import DEMO

    assert seen["source"].phantom
    given = {"visibility": {"Consolidation": 2.0}, "prevalence": 0.5}
    assert seen["preset"].phantom == {**DEMO.phantom, **given}  # the demo's condition, kept
    with pytest.raises(_Stop):
        main(["benchmark", "--visibility", "0.5", "--phantom-eval-studies", "50", *out])
    assert seen["preset"].phantom == {**DEMO.phantom, "visibility": 0.5}
    assert seen["preset"].phantom_eval_studies == 50
    with pytest.raises(_Stop):
        main(["benchmark", *out])
    assert seen["preset"].phantom == DEMO.phantom
    assert seen["preset"].phantom_eval_studies == 15_000  # the demo preset's
    for wrong in (
        ["--mimic", str(tmp_path), "--visibility", "2"],
        ["--index", "i.csv", "--cache", "c", "--prevalence", "Edema=2"],
        ["--openi", str(tmp_path), "--phantom-eval-studies", "10"],
    ):
        with pytest.raises(SystemExit):
            main(["benchmark", *wrong, *out])
        assert "built-in phantom only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["benchmark", "--selection", "study", "--visibility", "2", *out])
    assert "no --visibility, --conspicuity or --prevalence" in capsys.readouterr().err


def test_real_difficulty_preset_draws_its_calibrated_phantom(tmp_path) -> None:
    """The preset of docs/study.md 5.3 is the demo with each observation's conspicuity: its
    phantom records them, and draws Consolidation brighter than the demo's phantom does."""
    from finegrain.experiment.presets import DEMO_V03, get_preset
    from finegrain.experiment.runner import DataSource, prepare_data

    preset = get_preset("real-difficulty")
    assert (
        preset.train == DEMO_V03.train
        and preset.phantom_eval_studies == DEMO_V03.phantom_eval_studies
    )
    small = {"phantom_studies": 10, "phantom_eval_studies": 4}
    roots = {}
    for name, base in (("demo", DEMO_V03), ("real", preset)):
        prepare_data(
            DataSource(phantom=True), tmp_path / name, base.replace(**small), progress=False
        )
        roots[name] = tmp_path / name / "data" / "phantom"
    recorded = json.loads((roots["real"] / "phantom.json").read_text())["knobs"]
    assert recorded["conspicuity"] == preset.phantom["conspicuity"]
    drawn = drawn_studies(roots["demo"], "Consolidation")
    assert drawn, "the small phantom should hold Consolidation"
    demo, real = contents(roots["demo"]), contents(roots["real"])
    assert frontal_jpgs(roots["demo"], drawn) <= {p for p in demo if demo[p] != real[p]}
