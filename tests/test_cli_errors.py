"""Every command: file-system errors in one line naming the path, no temporary files left, and
one exit-code convention (finegrain.cli.EXIT_*), documented in every --help."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from finegrain.cli import (
    COMMANDS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    main,
)
from helpers import save_tiny_checkpoint

THRESHOLDS = {"positive": 0.3, "typical": 0.6, "method": "sensitivity"}


@pytest.fixture(scope="module")
def inputs(phantom_root, tmp_path_factory):
    """Small inputs for every command: reports, an index of the phantom, a checkpoint, images."""
    from finegrain.data.cache import prepare
    from finegrain.data.index import write_index
    from finegrain.data.mimic import index_mimic

    work = tmp_path_factory.mktemp("cli-inputs")
    (work / "phantom").symlink_to(phantom_root)  # read only
    (work / "reports.csv").write_text('id,report\n1,"Mild edema."\n2,"No effusion."\n')
    frame, _ = index_mimic(phantom_root, progress=False)
    frame = frame.head(6).copy()
    frame["path"] = [str(phantom_root / p) for p in frame["path"]]
    write_index(frame, work / "index.csv")
    prepare(work / "index.csv", work / "cache", size=32, workers=0, progress=False)
    save_tiny_checkpoint(work / "ck.pt", seed=0, method="pu-rm", thresholds=THRESHOLDS)
    images = work / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(images / f"{i}.png")
    return work


def _command(name: str, inputs: Path, out: Path) -> list[str]:
    """The command line of ``name`` writing to ``out`` (a file or folder, as the command wants)."""
    quiet = ["--no-progress"]
    return {
        "label": ["label", str(inputs / "reports.csv"), "-o", str(out), *quiet],
        "index": ["index", "--mimic", str(inputs / "phantom"), "-o", str(out), *quiet],
        "prepare": ["prepare", str(inputs / "index.csv"), "-o", str(out), "--size", "16"]
        + ["--workers", "0", *quiet],
        "predict": ["predict", str(inputs / "ck.pt"), str(inputs / "images"), "-o", str(out)]
        + quiet,
        "cam": ["cam", str(inputs / "ck.pt"), str(inputs / "images"), "-o", str(out), *quiet],
        "phantom": ["phantom", str(out), "--studies", "3", "--size", "16", *quiet],
        "export": ["export", str(inputs / "ck.pt"), "-o", str(out)],
        "train": ["train", "--index", str(inputs / "index.csv"), "--cache", str(inputs / "cache")]
        + ["--observation", "Edema", "--model", "densenet-tiny", "--no-pretrained"]
        + ["--iterations", "1", "--device", "cpu", "--workers", "0", "--out", str(out), *quiet],
    }[name]


#: command -> name of its output (a file name where the command writes a file)
OUTPUTS = {
    "label": "labels.csv",
    "index": "index.csv",
    "prepare": "cache",
    "predict": "out.csv",
    "cam": "cams",
    "phantom": "phantom",
    "export": "model.pt",
    "train": "run",
}


def _leftovers(folder: Path) -> list[str]:
    """Temporary files or staging folders of finegrain's atomic writes under ``folder``."""
    return [
        str(p)
        for p in folder.rglob(".*")
        if p.name.endswith(".tmp") or ".partial-" in p.name or p.name.endswith(".partial")
    ]


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"finegrain {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_every_help_documents_the_exit_codes(capsys):
    for name, _ in COMMANDS:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        out = capsys.readouterr().out
        assert "exit status:" in out, name
        for code in (EXIT_OK, EXIT_PARTIAL, EXIT_FAILED, EXIT_USAGE):
            assert f"\n  {code} " in out, (name, code)


FOLDER_WRITERS = ("prepare", "cam", "phantom", "train")
FILE_WRITERS = ("label", "index", "predict", "export")


@pytest.mark.parametrize(
    ("case", "name"),
    [("under a file", n) for n in sorted(OUTPUTS)]  # NotADirectoryError (fails as root too)
    + [("folder is a file", n) for n in FOLDER_WRITERS]  # FileExistsError
    + [("file is a folder", n) for n in FILE_WRITERS],  # IsADirectoryError
)
def test_a_path_in_the_way(case, name, inputs, tmp_path, capsys):
    """The output path is blocked by an existing file or folder: one line naming it, exit 1,
    the blocking file or folder untouched, no temporary files."""
    if case == "file is a folder":
        blocker = out = tmp_path / OUTPUTS[name]
        out.mkdir()
        said = "is a folder where a file is needed"
    else:
        blocker = tmp_path / ("a-file" if case == "under a file" else OUTPUTS[name])
        blocker.write_text("in the way")
        out = blocker / "sub" / OUTPUTS[name] if case == "under a file" else blocker
        said = "is a file where a folder is needed"
    assert main(_command(name, inputs, out)) == EXIT_FAILED
    assert f"{blocker}: {said}" in _one_error_line(capsys, name)
    if blocker.is_dir():
        assert not any(blocker.iterdir())
    else:
        assert blocker.read_text() == "in the way"
    assert _leftovers(tmp_path) == []


def _disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what write/fsync raise


@pytest.mark.parametrize("name", ["label", "index", "prepare", "predict", "cam", "export"])
def test_disk_full(name, inputs, tmp_path, capsys, monkeypatch):
    """ENOSPC, simulated at the lowest call that reaches the disk (fsync); an existing output
    file is left as it was."""
    out = tmp_path / OUTPUTS[name]
    replace = []
    if "." in out.name:
        out.write_text("the previous version")
        replace = ["--overwrite"]  # an existing output is replaced only when asked
    monkeypatch.setattr(os, "fsync", _disk_full)
    assert main([*_command(name, inputs, out), *replace]) == EXIT_FAILED
    line = _one_error_line(capsys, name)
    assert "no space left on the device; free some space or write elsewhere" in line
    assert str(tmp_path) in line  # names the file (or the output folder) being written
    if "." in out.name:
        assert out.read_text() == "the previous version"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["label", "index", "predict", "export"])
def test_permission_denied_simulated(name, inputs, tmp_path, capsys, monkeypatch):
    """EACCES where the temporary file is created (tests run as root in CI, where chmod does
    not stop anyone: the refusal is simulated with the real exception)."""

    def refuse(*args, dir=None, prefix="", suffix="", **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), f"{dir}/{prefix}x{suffix}")

    out = tmp_path / "ro" / OUTPUTS[name]
    out.parent.mkdir()
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert main(_command(name, inputs, out)) == EXIT_FAILED
    line = _one_error_line(capsys, name)
    assert line.endswith(
        f"{out}: permission denied; choose a location you can write to or fix its permissions"
    )
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
@pytest.mark.parametrize("name", ["label", "prepare"])
def test_permission_denied_read_only_folder(name, inputs, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(_command(name, inputs, folder / OUTPUTS[name])) == EXIT_FAILED
        line = _one_error_line(capsys, name)
        assert "permission denied" in line and str(folder) in line
    finally:
        folder.chmod(0o755)
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------ exit codes per command


def test_predict_exit_codes(inputs, tmp_path, capsys):
    ck, images = inputs / "ck.pt", inputs / "images"
    out = str(tmp_path / "p.csv")
    assert (
        main(["predict", str(ck), str(images), "-o", out, "--no-progress", "--overwrite"])
        == EXIT_OK
    )
    (tmp_path / "broken.png").write_bytes(b"not a png")
    some_bad = [str(images), str(tmp_path / "broken.png")]
    assert (
        main(["predict", str(ck), *some_bad, "-o", out, "--no-progress", "--overwrite"])
        == EXIT_PARTIAL
    )
    all_bad = [str(tmp_path / "broken.png"), str(tmp_path / "no-such-folder")]
    assert (
        main(["predict", str(ck), *all_bad, "-o", out, "--no-progress", "--overwrite"])
        == EXIT_FAILED
    )
    missing = [str(tmp_path / "no-such-folder")]
    assert (
        main(["predict", str(ck), *missing, "-o", out, "--no-progress", "--overwrite"])
        == EXIT_FAILED
    )
    (tmp_path / "empty").mkdir()
    empty = [str(tmp_path / "empty")]
    assert (
        main(["predict", str(ck), *empty, "-o", out, "--no-progress", "--overwrite"]) == EXIT_USAGE
    )
    capsys.readouterr()


def test_cam_exit_codes(inputs, tmp_path):
    ck, images = inputs / "ck.pt", inputs / "images"
    (tmp_path / "broken.png").write_bytes(b"not a png")
    out = ["-o", str(tmp_path / "cams"), "--no-progress"]
    assert main(["cam", str(ck), str(images), *out]) == EXIT_OK
    assert main(["cam", str(ck), str(images), str(tmp_path / "broken.png"), *out]) == EXIT_PARTIAL
    assert main(["cam", str(ck), str(tmp_path / "nope"), *out]) == EXIT_FAILED


def test_prepare_exit_code_when_no_image_can_be_read(inputs, tmp_path):
    import pandas as pd

    from finegrain.data.index import read_index, write_index

    frame = read_index(inputs / "index.csv")
    broken = []
    for i in range(len(frame)):
        path = tmp_path / f"broken{i}.jpg"
        path.write_bytes(b"not a jpeg")
        broken.append(str(path))
    write_index(frame.assign(path=pd.Series(broken, index=frame.index)), tmp_path / "bad.csv")
    args = ["--size", "16", "--workers", "0", "--no-progress"]
    assert main(["prepare", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "c"), *args]) == (
        EXIT_FAILED
    )
    assert main(["prepare", str(inputs / "index.csv"), "-o", str(tmp_path / "ok"), *args]) == (
        EXIT_OK
    )


def test_label_exit_codes(tmp_path, capsys):
    out = str(tmp_path / "labels.csv")
    good = tmp_path / "good.csv"
    good.write_text('id,report\n1,"Mild edema."\n')
    assert main(["label", str(good), "-o", out, "--no-progress", "--overwrite"]) == EXIT_OK
    dup = tmp_path / "dup.csv"
    dup.write_text('id,report\n1,"Mild edema."\n1,"No edema."\n')
    assert main(["label", str(dup), "-o", out, "--no-progress", "--overwrite"]) == EXIT_PARTIAL
    quote = tmp_path / "quote.csv"
    quote.write_text('id,report\n1,"Mild edema.\n2,"No edema."\n')
    assert main(["label", str(quote), "-o", out, "--no-progress", "--overwrite"]) == EXIT_USAGE
    assert "quote.csv: line 2: a quoted field" in capsys.readouterr().err


def test_predict_error_cells_start_with_the_path(inputs, tmp_path):
    pytest.importorskip("pydicom", reason="pydicom (extra 'dicom') not installed")
    import pandas as pd

    (tmp_path / "scan.dcm").write_bytes(b"not a dicom file")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "p.csv"
    args = ["predict", str(inputs / "ck.pt"), str(tmp_path), "-o", str(out), "--no-progress"]
    assert main(args) == EXIT_FAILED
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == 2
    for path, error in zip(table["path"], table["error"], strict=True):
        assert error.startswith(f"{path}: "), error


def test_phantom_root_respects_the_umask(tmp_path, capsys):
    """The phantom is written in a staging folder made by mkdtemp (0700) and renamed: its root
    must get the mode every other folder gets (0777 less the umask)."""
    old = os.umask(0o022)
    try:
        out = tmp_path / "phantom"
        assert main(["phantom", str(out), "--studies", "2", "--size", "16", "--no-progress"]) == 0
        mode = out.stat().st_mode & 0o777
        assert mode == 0o755 == (out / "files").stat().st_mode & 0o777
    finally:
        os.umask(old)
    capsys.readouterr()


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--index", "i.csv", "--cache", "c", "--observation", "Edema", "--out", "r"],
        ["benchmark", "--out", "b"],
    ],
    ids=["train", "benchmark"],
)
def test_device_cuda_without_a_gpu_is_one_line_in_every_command(
    command, tmp_path, capsys, monkeypatch
):
    import torch

    from finegrain.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert main([*command, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"finegrain {command[0]}: error: --device cuda: no CUDA GPU is visible on this machine; use --device cpu (or auto)"
    )
    assert not (tmp_path / command[-1]).exists()


def test_unreadable_checkpoints_are_named_and_explained(tmp_path, capsys):
    import pickle

    from finegrain.cli import main

    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(image)
    good = save_tiny_checkpoint(tmp_path / "good.pt", seed=0, method="pu-rm", thresholds=None)
    cases = {
        "empty.pt": (b"", "empty file"),
        "text.pt": (b"hello, not a model\n", "text file"),
        "cut.pt": (Path(good).read_bytes()[:3000], "truncated or damaged"),
        "pickled.pt": (pickle.dumps({"model": object()}), "refused"),
    }
    for name, (data, what) in cases.items():
        (tmp_path / name).write_bytes(data)
        code = main(["predict", str(tmp_path / name), str(image), "-o", str(tmp_path / "o.csv")])
        err = capsys.readouterr().err.strip()
        assert code == 2, (name, err)
        assert name in err and what in err, err
        assert "weights_only=False" not in err and "Errno" not in err
    (tmp_path / "folder.pt").mkdir()
    code = main(["predict", str(tmp_path / "folder.pt"), str(image), "-o", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err.strip()  # a folder is taken for a run folder: it has none
    assert code == 2 and "folder.pt: a folder without checkpoints" in err


def test_a_user_error_is_one_line_and_a_bug_shows_its_traceback(monkeypatch, capsys):
    """FinegrainError: one line, exit 2 (its traceback only with -v); any other exception is a
    bug in finegrain: it is not turned into a usage error."""
    import finegrain.cli.label as label_cli
    from finegrain.cli import main
    from finegrain.errors import FinegrainError

    def user_error(args):
        raise FinegrainError("reports.csv, row 3: blank id")

    monkeypatch.setattr(label_cli, "run", user_error)
    assert main(["label", "r.csv", "-o", "l.csv"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "finegrain label: error: reports.csv, row 3: blank id"
    assert main(["label", "r.csv", "-o", "l.csv", "-v"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("reports.csv, row 3: blank id")

    def bug(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(label_cli, "run", bug)
    with pytest.raises(ValueError, match="internal invariant"):
        main(["label", "r.csv", "-o", "l.csv"])


def test_failed_runs_of_a_grid_are_listed_in_one_line(monkeypatch, capsys):
    import finegrain.cli.benchmark as benchmark_cli
    from finegrain.cli import main
    from finegrain.experiment.launchers import RunsFailed

    def some_failed(args):
        raise RunsFailed({"Edema/u-ones/seed1": "RuntimeError: out of memory"}, total=4)

    monkeypatch.setattr(benchmark_cli, "run", some_failed)
    assert main(["benchmark"]) == 3  # the other runs finished: partial
    err = capsys.readouterr().err
    assert "1 of 4 runs failed" in err and "Edema/u-ones/seed1" in err and "Traceback" not in err

    def all_failed(args):
        raise RunsFailed({"a": "x", "b": "y"}, total=2)

    monkeypatch.setattr(benchmark_cli, "run", all_failed)
    assert main(["benchmark"]) == 1


def test_calibrate_on_a_json_or_csv_file_does_not_talk_about_pickles(tmp_path, capsys):
    """A JSON or CSV file given as the checkpoint was "refused: it holds Python objects ...
    which finegrain never unpickles"."""
    from finegrain.cli import main

    for name, text in (("thresholds.json", '{"positive": 0.5}\n'), ("p.csv", "a,b\n1,2\n")):
        (tmp_path / name).write_text(text)
        assert main(["calibrate", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert (
            err == f"finegrain calibrate: error: {tmp_path / name}: a text file, not a checkpoint"
        )


def test_phantom_size_beyond_the_cache_limit_is_refused_before_allocating(tmp_path, capsys):
    """``finegrain phantom --size 100000`` died in numpy asking for 37 GiB."""
    from finegrain.cli import main
    from finegrain.data.cache import MAX_SIZE

    out = tmp_path / "phantom"
    assert main(["phantom", str(out), "--studies", "4", "--size", "100000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"finegrain phantom: error: size must be at most {MAX_SIZE} px")
    assert "\n" not in err and not out.exists()


@pytest.mark.parametrize("name", FILE_WRITERS)
def test_an_existing_output_file_is_replaced_only_with_overwrite(name, inputs, tmp_path, capsys):
    """``predict -o``, ``label -o``, ``index -o`` and ``export -o`` replaced an existing file
    without a word."""
    out = tmp_path / OUTPUTS[name]
    out.write_text("the previous version")
    assert main(_command(name, inputs, out)) == EXIT_USAGE
    line = _one_error_line(capsys, name)
    assert line.endswith(f"{out} exists; pass --overwrite to replace it")
    assert out.read_text() == "the previous version"
    assert main([*_command(name, inputs, out), "--overwrite"]) == EXIT_OK
    assert out.read_bytes() != b"the previous version"


#: A Python parameter as a message would spell it: ``overwrite=True``, ``thresholds=``,
#: ``id_column``, ``skip_missing``, ``eval_studies`` (a recorded value, ``size=16``, is data).
PYTHON_NAME = re.compile(r"\b[a-z]+(_[a-z]+)+\b|=(True|False)\b|\b[a-z]+=(?![\w'\"])")


def test_command_line_messages_name_options_not_python_parameters(inputs, tmp_path, capsys):
    """The command line said "overwrite=True", "pass thresholds=", "name it with id_column"."""
    from finegrain.data.cache import prepare
    from finegrain.errors import FinegrainError
    from finegrain.evaluate import read_predictions

    no_id = tmp_path / "scores.csv"
    no_id.write_text("name,score\na,0.5\n")
    raw = save_tiny_checkpoint(tmp_path / "raw.pt", seed=0, method="pu-rm", thresholds=None)
    index = tmp_path / "index.csv"
    index.write_text((inputs / "index.csv").read_text())
    prepare(index, tmp_path / "cache", size=16, workers=0, progress=False)
    cases = {
        "--overwrite": ["prepare", str(index), "-o", str(tmp_path / "cache"), "--size", "8"],
        "run `finegrain calibrate": ["predict", str(raw), str(inputs / "images"), "-o", "x.csv"],
        "--id-column": ["evaluate", str(no_id)],
        "--fine-labels mesh needs --labels": ["evaluate", str(no_id), "--fine-labels", "mesh"],
        "--eval-studies must be >= 1": ["phantom", str(tmp_path / "p"), "--eval-studies", "0"],
    }
    for said, argv in cases.items():
        assert main([*argv, "--no-progress"] if argv[0] in ("prepare", "predict") else argv) == 2
        line = _one_error_line(capsys, argv[0])
        message = line.split(": error: ", 1)[1]
        assert said in message, line
        # paths and quoted column names aside, no Python name is left
        assert not PYTHON_NAME.search(re.sub(r"'[^']*'", "", message.replace(str(tmp_path), ""))), (
            line
        )
    # the Python API keeps its own names
    with pytest.raises(FinegrainError, match=r"name it with id_column"):
        read_predictions(no_id)
    with pytest.raises(FinegrainError, match=r"overwrite=True"):
        prepare(index, tmp_path / "cache", size=8, workers=0, progress=False)


def test_benchmark_axis_values_and_repeats_are_checked_before_anything_runs(tmp_path, capsys):
    """``--axis iterations=abc`` said "'<' not supported between instances of 'str' and 'int'"
    after making the data; a repeated ``--axis`` of one field kept the last silently."""
    from finegrain.experiment.grid import check_axes

    out = tmp_path / "b"
    small = ["--phantom-studies", "20", "--phantom-eval-studies", "10", "--no-progress"]
    for axis, said in (
        ("iterations=abc", "grid axis 'iterations': iterations must be an integer >= 1, got 'abc'"),
        ("lr=fast", "grid axis 'lr': lr must be a number > 0, got 'fast'"),
        ("pretrained=3", "grid axis 'pretrained': pretrained must be true or false, got 3"),
    ):
        assert main(["benchmark", "--axis", axis, "--out", str(out), *small]) == 2
        assert _one_error_line(capsys, "benchmark").endswith(said)
        assert not out.exists()  # nothing made before the refusal
    assert check_axes({"iterations": [300, 600], "lr": [1e-3, 1], "weights": [None, "w.pth"]})
    with pytest.raises(SystemExit):
        main(
            ["benchmark", "--axis", "iterations=300", "--axis", "iterations=600", "--out", str(out)]
        )
    err = capsys.readouterr().err
    assert "--axis iterations given more than once; give all its values in one" in err
    assert not out.exists()


def test_uncertain_mixture_names_every_part(tmp_path, capsys):
    """``--uncertain-mixture absent=2`` set slight, significant and other to 0 silently."""
    import json

    out = tmp_path / "p"
    for given, said in (
        ("absent=2", "no slight, significant, other in 'absent=2': give every part"),
        ("absent=1,slight=1,significant=0,other=0,absent=3", "absent given twice"),
        ("absent=1,slight=1,significant=0,rare=1", "unknown part 'rare'"),
    ):
        with pytest.raises(SystemExit):
            main(["phantom", str(out), "--uncertain-mixture", given])
        assert said in capsys.readouterr().err
        assert not out.exists()
    full = "absent=2,slight=0,significant=0,other=0"
    argv = ["phantom", str(out), "--studies", "3", "--size", "16", "--no-progress"]
    assert main([*argv, "--uncertain-mixture", full]) == 0
    recorded = json.loads((out / "phantom.json").read_text())
    assert recorded["knobs"]["uncertain_mixture"] == {
        "absent": 1.0,
        "slight": 0.0,
        "significant": 0.0,
        "other": 0.0,
    }
