"""predict / cam / export on a tiny checkpoint: JPEG, 16-bit PNG, DICOM, unreadable files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from finegrain.observations import OBSERVATIONS, subcategory_column
from finegrain.predict import Thresholds, predict
from helpers import CHECKPOINT_SIZE as SIZE
from helpers import save_tiny_checkpoint as _save_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(phantom_root, tmp_path_factory):
    """A densenet-tiny trained a few iterations on the phantom, calibrated by `calibrate`.

    The 48-study phantom's validation split has no observation with both atypical and typical
    positives, so the thresholds are fitted on the training split's predictions
    (``predictions=``, the CLI's ``--predictions``; the test split's one or two atypical
    positives leave a 4-iteration model's atypical/typical cut at chance, J = 0, which calibrate
    refuses), for the observation with the most test positives of both subcategories (chosen
    from the index, so a change of the phantom's draws does not break it).
    """
    from finegrain.data.cache import prepare
    from finegrain.data.index import write_index
    from finegrain.data.mimic import index_mimic
    from finegrain.predict import calibrate
    from finegrain.train import TrainConfig, train

    work = tmp_path_factory.mktemp("phantom-run")
    frame, _ = index_mimic(phantom_root, progress=False)
    frame["path"] = [str(phantom_root / p) for p in frame["path"]]  # the phantom stays read-only
    index = work / "index.csv"
    write_index(frame, index)
    test = frame[frame["split"] == "test"]

    def positives(obs):  # (atypical, typical) test positives
        sub = test.loc[test[obs] == 1, subcategory_column(obs)]
        return int((sub == "atypical").sum()), int((sub == "typical").sum())

    usable = [o for o in OBSERVATIONS if min(positives(o)) > 0]
    assert usable, "the session phantom has no test positives of both subcategories"
    observation = max(usable, key=lambda o: sum(positives(o)))
    prepare(index, work / "cache", size=SIZE, progress=False)
    config = TrainConfig(
        index=str(index),
        cache=str(work / "cache"),
        observation=observation,
        method="pu-rm",
        iterations=4,
        checkpoint_every=4,
        batch_size=8,
        lr=1e-3,
        model="densenet-tiny",
        pretrained=False,
        augment=False,
        num_workers=0,
        device="cpu",
        eval_splits=("train", "test"),
        out=str(work / "run"),
    )
    run = train(config, progress=False)
    # the training split of 4 iterations has no negatives: the thresholds alone
    fitted = calibrate(
        run, predictions=run / "predictions-train.csv", sensitivity=0.9, calibration="none"
    )
    (checkpoint,) = fitted
    thresholds = fitted[checkpoint].thresholds
    assert thresholds.n_atypical > 0 and thresholds.n_typical > 0
    return checkpoint


def _gradient(h=48, w=40, seed=0):
    rng = np.random.default_rng(seed)
    img = np.add.outer(np.arange(h) * 3, np.arange(w) * 2).astype(float)
    img += rng.normal(0, 20, (h, w))
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return np.round(img).astype(np.uint8)  # spans 0..255 exactly


def write_dicom(path, pixels: np.ndarray, photometric: str = "MONOCHROME2"):
    pydicom = pytest.importorskip("pydicom", reason="pydicom (extra 'dicom') not installed")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).PhotometricInterpretation == photometric


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """8-bit PNG, JPEG, 16-bit PNG, DICOM (MONOCHROME2 and 1), a nested one and a broken one."""
    d = tmp_path_factory.mktemp("images")
    img = _gradient()
    Image.fromarray(img).save(d / "a_png8.png")
    Image.fromarray(img).save(d / "b_jpeg.jpg", quality=95)
    Image.fromarray(img.astype(np.uint16) * 257).save(d / "c_png16.png")  # 16-bit, same content
    assert Image.open(d / "c_png16.png").mode.startswith("I")
    twelve = img.astype(np.uint16) * 16  # 12-bit stored values
    write_dicom(d / "d_mono2.dcm", twelve, "MONOCHROME2")
    write_dicom(d / "e_mono1.dcm", 4095 - twelve, "MONOCHROME1")  # inverted storage, same image
    (d / "f_broken.jpg").write_bytes(b"not a jpeg at all")
    (d / "sub").mkdir()
    Image.fromarray(_gradient(seed=1)).save(d / "sub" / "g_nested.jpeg")
    (d / "notes.txt").write_text("ignored: not an image extension")
    return d


def test_predict_folder_all_formats_and_broken_file(tiny_checkpoint, image_folder):
    frame = predict(tiny_checkpoint, [image_folder], batch_size=2, progress=False)
    assert list(frame.columns)[:5] == ["path", "probability", "fine_score", "tier", "error"]
    # a method of the paper: its fine score, what the typical tier is decided by, is p
    readable = frame["error"] == ""
    assert frame.loc[readable, "fine_score"].equals(frame.loc[readable, "probability"])
    names = [p.split("/")[-1] for p in frame["path"]]
    assert names == [
        "a_png8.png",
        "b_jpeg.jpg",
        "c_png16.png",
        "d_mono2.dcm",
        "e_mono1.dcm",
        "f_broken.jpg",
        "g_nested.jpeg",
    ]  # recursed, sorted, .txt not collected
    row = frame.set_index(pd.Index(names))
    assert "f_broken.jpg" in row.loc["f_broken.jpg", "error"]  # the error names the file
    assert (
        math.isnan(row.loc["f_broken.jpg", "probability"]) and row.loc["f_broken.jpg", "tier"] == ""
    )
    ok = row.drop("f_broken.jpg")
    assert (ok["error"] == "").all()
    th = torch.load(tiny_checkpoint, weights_only=True)["thresholds"]
    for name, r in ok.iterrows():
        assert 0 <= r.probability <= 1, name
        # the tier rule written out here, not computed by finegrain.predict.tier
        expected = (
            "negative"
            if r.probability < th["positive"]
            else "typical positive"
            if r.probability >= th["typical"]
            else "atypical positive"
        )
        assert r.tier == expected, name
    # the same picture through every format gets (almost) the same probability
    p = ok["probability"]
    assert p["c_png16.png"] == pytest.approx(p["a_png8.png"], abs=1e-6)  # 16-bit min-max scaled
    assert p["d_mono2.dcm"] == pytest.approx(p["a_png8.png"], abs=1e-3)
    assert p["e_mono1.dcm"] == pytest.approx(p["d_mono2.dcm"], abs=1e-6)  # MONOCHROME1 inverted
    assert p["b_jpeg.jpg"] == pytest.approx(p["a_png8.png"], abs=0.05)  # lossy
    assert p["g_nested.jpeg"] != p["b_jpeg.jpg"]


def test_predict_matches_the_model_on_the_cache_preprocessing(tiny_checkpoint, image_folder):
    from finegrain.data.imageio import read_grayscale
    from finegrain.train import load_model

    model, meta = load_model(tiny_checkpoint)
    path = image_folder / "b_jpeg.jpg"
    x = torch.from_numpy(np.array(read_grayscale(path, meta["image_size"])))[None, None]
    expected = torch.softmax(model(x), 1)[0, 1].item()
    got = predict(tiny_checkpoint, path, progress=False)
    assert got["probability"].iloc[0] == pytest.approx(expected, abs=1e-6)


def test_missing_file_is_an_error_row_and_explicit_thresholds(tiny_checkpoint, image_folder):
    th = Thresholds(positive=0.0, typical=1.1)  # everything atypical positive
    frame = predict(
        tiny_checkpoint,
        [image_folder / "nope.png", image_folder / "a_png8.png"],
        thresholds=th,
        progress=False,
    )
    assert "not found" in frame["error"].iloc[0]
    assert frame["tier"].tolist() == ["", "atypical positive"]


def test_predict_requires_thresholds(tmp_path, image_folder):
    raw = _save_tiny_checkpoint(tmp_path / "raw.pt", seed=0, method="u-ones", thresholds=None)
    with pytest.raises(ValueError, match="finegrain calibrate"):
        predict(raw, [image_folder], progress=False)


def test_predict_cli_csv_json_and_cam(tiny_checkpoint, image_folder, tmp_path, capsys):
    from finegrain.cli import EXIT_PARTIAL, main

    out_csv, out_json, cams = tmp_path / "p.csv", tmp_path / "p.json", tmp_path / "cams"
    assert (
        main(
            [
                "predict",
                str(tiny_checkpoint),
                str(image_folder),
                "-o",
                str(out_csv),
                "--no-progress",
            ]
        )
        == EXIT_PARTIAL  # written, but one image unreadable
    )
    assert "1 unreadable" in capsys.readouterr().out
    table = pd.read_csv(out_csv, keep_default_na=False)
    assert len(table) == 7 and (table["error"] != "").sum() == 1
    one = image_folder / "a_png8.png"
    assert (
        main(
            [
                "predict",
                str(tiny_checkpoint),
                str(one),
                str(image_folder / "f_broken.jpg"),
                "-o",
                str(out_json),
                "--no-progress",
                "--cam",
                str(cams),
            ]
        )
        == EXIT_PARTIAL
    )
    records = json.loads(out_json.read_text())
    assert records[0]["tier"] in ("negative", "atypical positive", "typical positive")
    assert records[1]["probability"] is None and records[1]["error"]
    assert [p.name for p in cams.glob("*.png")] == ["a_png8.png"]  # none for the broken file
    with pytest.raises(SystemExit):  # argparse usage error, exit 2
        main(["predict", str(tiny_checkpoint), str(image_folder), "-o", str(tmp_path / "x.txt")])


def test_preprocessing_travels_in_the_checkpoint(phantom_root, tmp_path, monkeypatch):
    """A center-cropped cache of non-square images, training with relative paths, prediction
    from another working directory: the probabilities are the model's on the cache's own
    pixels (before the fix, predict fell back to crop="none" when it could not find the cache,
    0.07 apart). A checkpoint without the spec (older format) is refused."""
    from finegrain.data.cache import ImageCache, prepare
    from finegrain.data.index import write_index
    from finegrain.data.mimic import index_mimic
    from finegrain.train import TrainConfig, load_model, train
    from finegrain.train.checkpoint import load_checkpoint, save_checkpoint

    work = tmp_path / "work"
    (work / "images").mkdir(parents=True)
    frame, _ = index_mimic(phantom_root, progress=False)
    wide = []  # 64 x 96: a band on the left that a center crop removes
    for image_id, path in zip(frame["image_id"], frame["path"], strict=True):
        square = np.asarray(Image.open(phantom_root / path).convert("L"))
        band = np.tile(np.linspace(255, 0, 32, dtype=np.uint8), (square.shape[0], 1))
        target = work / "images" / f"{image_id}.png"
        Image.fromarray(np.hstack([band, square])).save(target)
        wide.append(str(target))
    frame["path"] = wide
    write_index(frame, work / "index.csv")
    monkeypatch.chdir(work)
    prepare("index.csv", "cache", size=SIZE, crop="center", progress=False, workers=1)
    config = TrainConfig(
        index="index.csv",
        cache="cache",  # relative to the training directory, as a user would type it
        observation="Cardiomegaly",
        iterations=2,
        checkpoint_every=2,
        batch_size=8,
        model="densenet-tiny",
        pretrained=False,
        augment=False,
        num_workers=0,
        device="cpu",
        eval_splits=("test",),
        out="run",
    )
    checkpoint = (train(config, progress=False) / "checkpoints" / "iter-0000002.pt").resolve()
    stored = load_checkpoint(checkpoint)
    assert stored["preprocessing"] == {"size": SIZE, "crop": "center", "normalization": "imagenet"}

    cache = ImageCache(work / "cache")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ids = list(frame["image_id"][:6])
    paths = [work / "images" / f"{i}.png" for i in ids]
    got = predict(checkpoint, paths, thresholds=Thresholds(0.5, 0.8), progress=False)
    model, _ = load_model(checkpoint)
    pixels = torch.from_numpy(cache.read_rows([cache.row_of(i) for i in ids]))[:, None]
    with torch.no_grad():
        expected = torch.softmax(model(pixels), dim=1)[:, 1].numpy()
    np.testing.assert_allclose(got["probability"].to_numpy(), expected, atol=1e-6)
    squashed = np.stack([np.asarray(read_squashed(work / "images" / f"{i}.png")) for i in ids])
    assert not np.array_equal(squashed, cache.read_rows([cache.row_of(i) for i in ids]))

    del stored["preprocessing"]  # a checkpoint from before the spec existed
    old = tmp_path / "old.pt"
    save_checkpoint(old, stored)
    with pytest.raises(ValueError, match="does not record its preprocessing"):
        predict(old, paths, thresholds=Thresholds(0.5, 0.8), progress=False)


def read_squashed(path):
    from finegrain.data.imageio import read_grayscale

    return read_grayscale(path, SIZE, crop="none")


def test_predictions_and_cam_titles_name_the_checkpoint(
    tmp_path, image_folder, monkeypatch, capsys
):
    """A predictions table read later says which observation, method and iteration it holds;
    a CAM panel names them too."""
    import finegrain.predict.cam as cam
    from finegrain.cli import main

    ckpt = _save_tiny_checkpoint(
        tmp_path / "m.pt", seed=0, method="pu-rm", thresholds={"positive": 0.3, "typical": 0.6}
    )
    frame = predict(ckpt, [image_folder / "a_png8.png"], progress=False)
    assert list(frame.columns)[:5] == ["path", "probability", "fine_score", "tier", "error"]
    # a method of the paper: its fine score, what the typical tier is decided by, is p
    readable = frame["error"] == ""
    assert frame.loc[readable, "fine_score"].equals(frame.loc[readable, "probability"])  # as before
    row = frame.iloc[0]
    assert (row.observation, row.method, row.iteration) == ("Consolidation", "pu-rm", 5)
    assert row.checkpoint == str(ckpt)
    out = tmp_path / "p.csv"
    main(["predict", str(ckpt), str(image_folder / "a_png8.png"), "-o", str(out), "--no-progress"])
    assert "Consolidation" in capsys.readouterr().out
    assert pd.read_csv(out)["observation"].tolist() == ["Consolidation"]

    titles = []
    monkeypatch.setattr(
        cam,
        "save_cam_figure",
        lambda image, panels, out, title="": titles.extend([title, *(text for _, text in panels)]),
    )
    cam.cam_images([ckpt], [image_folder / "a_png8.png"], tmp_path / "cams", progress=False)
    assert any("Consolidation" in t and "pu-rm" in t and "5" in t for t in titles), titles


def test_degenerate_inputs_are_warned_about(tiny_checkpoint, tmp_path, caplog):
    """A 1x1 PNG, a 1x5000 image and an all-zero image each got a tier with no warning."""
    import logging

    d = tmp_path / "odd"
    d.mkdir()
    Image.fromarray(np.full((1, 1), 128, np.uint8)).save(d / "a_dot.png")
    Image.fromarray(_gradient(1, 5000)).save(d / "b_line.png")
    Image.fromarray(_gradient(200, 40)).save(d / "c_tall.png")  # aspect 5:1, large enough
    Image.fromarray(np.zeros((48, 40), np.uint8)).save(d / "d_black.png")
    Image.fromarray(_gradient()).save(d / "e_fine.png")
    with caplog.at_level(logging.WARNING, logger="finegrain.predict.predict"):
        frame = predict(tiny_checkpoint, d, progress=False).set_index(
            pd.Index(["dot", "line", "tall", "black", "fine"])
        )
    assert frame["tier"].isin(["negative", "atypical positive", "typical positive"]).all()
    warning = frame["warning"]
    assert warning["dot"] == (
        f"1x1 px, smaller than the model's {SIZE} px input; a constant image (every pixel 128)"
    )
    assert warning["line"].startswith(f"5000x1 px, smaller than the model's {SIZE} px input")
    assert "aspect ratio 5e+03:1 (5000x1 px), more than 3:1" in warning["line"]
    assert warning["tall"] == "aspect ratio 5:1 (40x200 px), more than 3:1"
    assert warning["black"] == "a constant image (every pixel 0)"
    assert warning["fine"] == ""
    assert "4 of 5 image(s) are poor radiographs" in caplog.text


def test_predict_json_writes_null_for_missing_values(tiny_checkpoint, image_folder, tmp_path):
    """JSON wrote "error": "" (and an empty tier) where docs/predict.md says null."""
    from finegrain.predict import write_predictions

    frame = predict(
        tiny_checkpoint,
        [image_folder / "a_png8.png", image_folder / "f_broken.jpg"],
        progress=False,
    )
    write_predictions(frame, tmp_path / "p.json")
    good, broken = json.loads((tmp_path / "p.json").read_text())
    assert good["error"] is None and good["warning"] is None and good["tier"]
    assert broken["probability"] is None and broken["tier"] is None and broken["warning"] is None
    assert broken["error"] and isinstance(good["iteration"], int)


def test_predict_takes_a_run_folder_as_calibrate_does(tiny_checkpoint, image_folder, tmp_path):
    """``predict RUN_DIR`` refused the run folder that ``calibrate RUN_DIR`` accepts."""
    from finegrain.cli import main
    from finegrain.experiment.selection import chosen_checkpoint
    from finegrain.io import append_jsonl

    run = tiny_checkpoint.parent.parent
    out = tmp_path / "p.csv"
    assert main(["predict", str(run), str(image_folder / "a_png8.png"), "-o", str(out)]) == 0
    assert pd.read_csv(out)["checkpoint"].tolist() == [str(tiny_checkpoint)]  # the only one

    # several checkpoints: the one chosen on validation AUC^FG, else the latest
    other = tmp_path / "run"
    for iteration in (10, 20, 30):
        path = other / "checkpoints" / f"iter-{iteration:07d}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    assert chosen_checkpoint(other).name == "iter-0000030.pt"
    for iteration, value in ((10, 0.6), (20, 0.7), (30, 0.65)):
        append_jsonl(
            other / "metrics.jsonl", {"iteration": iteration, "split": "validate", "auc_fg": value}
        )
    assert chosen_checkpoint(other).name == "iter-0000020.pt"
    with pytest.raises(FileNotFoundError, match="without checkpoints"):
        chosen_checkpoint(tmp_path / "empty")
