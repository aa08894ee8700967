"""OpenI end to end: real XML reports and synthetic images -> index -> prepare -> benchmark ->
report with AUC^FG against the text-mined and the human (MeSH) subcategories."""

from __future__ import annotations

import pandas as pd
import pytest

from finegrain.cli import main
from finegrain.data.index import read_index
from finegrain.data.mesh import mesh_findings, mesh_subcategory_column
from finegrain.data.sources import patient_split

OBS = "Cardiomegaly"


@pytest.fixture(scope="module")
def openi_e2e_root(openi_reports, make_openi_root):
    """Per split, the first 16 reports with a MeSH severity for Cardiomegaly and 8 normal ones
    (so that validation and test both have graded positives)."""
    reports = [r for r in openi_reports[0] if r.images]
    split = dict(zip((r.id for r in reports), patient_split([r.id for r in reports]), strict=True))
    graded = [r.id for r in reports if (f := mesh_findings(r.mesh).get(OBS)) and f.subcategory]
    normal = [r.id for r in reports if r.mesh == ("normal",)]
    ids = []
    for name in ("train", "validate", "test"):
        ids += [i for i in graded if split[i] == name][:16] + [
            i for i in normal if split[i] == name
        ][:8]
    return make_openi_root(ids)


@pytest.mark.slow
def test_openi_index_prepare_benchmark_report(openi_e2e_root, tmp_path, capsys):
    index, cache, out = tmp_path / "index.csv", tmp_path / "cache", tmp_path / "bench"
    assert main(["index", "--openi", str(openi_e2e_root), "--views", "all", "-o", str(index),
                 "--no-progress"]) == 0  # fmt: skip
    frame = read_index(index)
    assert frame[mesh_subcategory_column(OBS)].notna().sum() >= 30
    assert main(["prepare", str(index), "-o", str(cache), "--size", "32", "--no-progress"]) == 0
    code = main(
        ["benchmark", "--index", str(index), "--cache", str(cache), "--out", str(out),
         "--observations", OBS, "--methods", "u-ones", "pu-rm", "--seeds", "1",
         "--iterations", "4", "--checkpoint-every", "2", "--batch-size", "8",
         "--image-size", "32", "--jobs", "1"]
    )  # fmt: skip
    assert code == 0
    fine = pd.read_csv(out / "fine-labels.csv")
    assert set(fine["method"]) == {"u-ones", "pu-rm"}
    assert (fine["observation"] == OBS).all()
    row = fine.iloc[0]
    # the human subcategories of the split's positives come from the index
    test = frame[(frame["split"] == fine["split"].iloc[0]) & (frame[OBS] == 1)]
    human = test[mesh_subcategory_column(OBS)].value_counts()
    assert row["n_atypical_human"] == human.get("atypical", 0)
    assert row["n_typical_human"] == human.get("typical", 0)
    assert 0 <= row["agree"] <= row["n_both"]
    report = (out / "report.html").read_text()
    assert "AUC^FG, text-mined" in report and "AUC^FG, MeSH, human" in report
    assert "AUC^FG against text-mined and human fine labels" in (out / "summary.md").read_text()


def test_benchmark_data_from_openi_root(openi_root, tmp_path):
    """`finegrain benchmark --openi ROOT`'s data step: the index as published (the view table
    found in ROOT) with the MeSH columns, and its image cache."""
    import shutil

    from finegrain.experiment.presets import get_preset
    from finegrain.experiment.runner import DataSource, prepare_data

    root = tmp_path / "openi"
    shutil.copytree(openi_root, root)
    (root / "views.csv.gz").rename(root / "nlmcxr_dicom_metadata.csv.gz")
    preset = get_preset("demo").replace(image_size=16)
    data = prepare_data(DataSource(openi=root), tmp_path / "bench", preset, progress=False)
    index = read_index(data.index)
    assert set(index["view"]) <= set(preset.views)
    assert mesh_subcategory_column(OBS) in index.columns
    assert (data.cache / "cache.json").is_file()
    with pytest.raises(ValueError, match="exactly one data source"):
        DataSource(openi=root, mimic=root)
