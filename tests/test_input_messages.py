"""What a user sees when an input file is not quite what finegrain expects: a TSV or a gzipped
CSV is read, control characters are never echoed raw, a header-only file says so, blank ids are
refused and ids are compared trimmed, a closed pipe is no error, and a refused command leaves
nothing behind."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import numpy as np
import pandas as pd
from PIL import Image

from finegrain.cli import EXIT_OK, EXIT_USAGE, main
from finegrain.observations import OBSERVATIONS

REPORTS = 'id,report\n1,"Mild edema."\n2,"No edema."\n'
PREDICTIONS = "id,score,label,subcategory\na,0.9,1,typical\nb,0.2,1,atypical\nc,0.1,0,\nd,0.8,0,\n"


def _error(capsys) -> str:
    return capsys.readouterr().err


def _label(path, out, capsys) -> tuple[int, str]:
    code = main(["label", str(path), "-o", str(out), "--no-progress", "--overwrite"])
    return code, _error(capsys)


def test_read_csv_reads_tsv_and_gzip_whatever_the_name(tmp_path):
    from finegrain.io import read_csv

    tsv = tmp_path / "t.csv"
    tsv.write_text("id\tscore\na\t0.5\n")
    gz = tmp_path / "g.csv"
    gz.write_bytes(gzip.compress(b"id,score\na,0.5\n"))
    for path in (tsv, gz):
        assert read_csv(path, dtype=str).to_dict("list") == {"id": ["a"], "score": ["0.5"]}


def test_label_reads_tsv_and_gzip(tmp_path, capsys):
    tsv = tmp_path / "reports.tsv"
    tsv.write_text(REPORTS.replace(",", "\t"))
    gz = tmp_path / "reports.csv"  # gzipped under a .csv name
    gz.write_bytes(gzip.compress(REPORTS.encode()))
    for path in (tsv, gz):
        code, err = _label(path, tmp_path / "labels.csv", capsys)
        assert code == EXIT_OK, err
        assert pd.read_csv(tmp_path / "labels.csv")["id"].tolist() == [1, 2]


def test_evaluate_and_index_read_tsv_and_gzip(tmp_path, capsys):
    tsv = tmp_path / "p.tsv"
    tsv.write_text(PREDICTIONS.replace(",", "\t"))
    gz = tmp_path / "p.csv"
    gz.write_bytes(gzip.compress(PREDICTIONS.encode()))
    for path in (tsv, gz):
        assert main(["evaluate", str(path), "--observation", "Edema"]) == EXIT_OK, _error(capsys)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    header = "\t".join(["path", *OBSERVATIONS])
    (tmp_path / "images.tsv").write_text(f"{header}\na.png" + "\t1" * len(OBSERVATIONS) + "\n")
    out = tmp_path / "index.csv"
    code = main(["index", "--csv", str(tmp_path / "images.tsv"), "-o", str(out), "--no-progress"])
    assert code == EXIT_OK, _error(capsys)


def test_control_characters_are_escaped(tmp_path, capsys):
    bad = tmp_path / "reports.csv"
    bad.write_text("id,\x1b[2Jtext\n1,x\n")
    code, err = _label(bad, tmp_path / "labels.csv", capsys)
    assert code == EXIT_USAGE and "\x1b" not in err and "\\x1b[2Jtext" in err, err
    images = tmp_path / "images.csv"
    images.write_text("path," + ",".join(OBSERVATIONS) + "\nmissing\x07.png" + ",1" * 14 + "\n")
    code = main(["index", "--csv", str(images), "-o", str(tmp_path / "i.csv"), "--no-progress"])
    err = _error(capsys)
    assert code == EXIT_USAGE and "\x07" not in err and "missing\\x07.png" in err, err


def test_index_csv_hint_names_the_flag(tmp_path, capsys):
    images = tmp_path / "images.csv"
    images.write_text("path\na.png\n")
    code = main(["index", "--csv", str(images), "-o", str(tmp_path / "i.csv"), "--no-progress"])
    err = _error(capsys)
    assert code == EXIT_USAGE and "--labels" in err and "labels=" not in err, err


def test_header_only_files_say_so(tmp_path, capsys):
    reports = tmp_path / "reports.csv"
    reports.write_text("id,report\n")
    code, err = _label(reports, tmp_path / "labels.csv", capsys)
    assert code == EXIT_USAGE and "only a header" in err, err
    assert not (tmp_path / "labels.csv").exists()
    predictions = tmp_path / "p.csv"
    predictions.write_text("id,score,label,subcategory\n")
    assert main(["evaluate", str(predictions), "--observation", "Edema"]) == EXIT_USAGE
    assert "only a header" in _error(capsys)
    images = tmp_path / "images.csv"
    images.write_text("path," + ",".join(OBSERVATIONS) + "\n")
    code = main(["index", "--csv", str(images), "-o", str(tmp_path / "i.csv"), "--no-progress"])
    assert code == EXIT_USAGE and "only a header" in _error(capsys)


def test_blank_ids_are_refused_and_ids_compared_trimmed(tmp_path, capsys):
    reports = tmp_path / "reports.csv"
    reports.write_text('id,report\n1,"Mild edema."\n  ,"No edema."\n')
    code, err = _label(reports, tmp_path / "labels.csv", capsys)
    assert code == EXIT_USAGE and "line 3" in err and "empty" in err, err
    reports.write_text('id,report\n1,"Mild edema."\n 1 ,"No edema."\n')
    code, _ = _label(reports, tmp_path / "labels.csv", capsys)
    assert code == 3  # the second row repeats id 1
    assert pd.read_csv(tmp_path / "labels.csv", dtype=str)["id"].tolist() == ["1"]

    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / name)
    labels = ",1" * len(OBSERVATIONS)
    images = tmp_path / "images.csv"
    header = "image_id,path," + ",".join(OBSERVATIONS)
    images.write_text(f"{header}\nx,a.png{labels}\n x ,b.png{labels}\n")
    code = main(["index", "--csv", str(images), "-o", str(tmp_path / "i.csv"), "--no-progress"])
    err = _error(capsys)
    assert code == EXIT_USAGE and "duplicate image_id 'x'" in err and "line 3" in err, err
    images.write_text(f"{header}\nx,a.png{labels}\n ,b.png{labels}\n")
    code = main(["index", "--csv", str(images), "-o", str(tmp_path / "i.csv"), "--no-progress"])
    err = _error(capsys)
    assert code == EXIT_USAGE and "empty 'image_id'" in err and "line 3" in err, err


def test_a_closed_pipe_after_the_output_is_written_is_no_error(tmp_path):
    reports = tmp_path / "reports.csv"
    reports.write_text(REPORTS)
    out = tmp_path / "labels.csv"
    read, write = os.pipe()
    os.close(read)  # like `| head -1` that has already exited
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    command = [sys.executable, "-m", "finegrain", "label", str(reports), "-o", str(out)]
    result = subprocess.run(
        [*command, "--no-progress"], stdout=write, stderr=subprocess.PIPE, env=env, text=True
    )
    os.close(write)
    assert result.returncode == EXIT_OK, result.stderr
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert out.is_file()


def test_phantom_errors_name_the_users_path(tmp_path, capsys, monkeypatch):
    import errno

    import finegrain.data.phantom.writer as writer

    def full_disk(root, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(root / "files" / "a.jpg"))

    monkeypatch.setattr(writer, "_write_phantom", full_disk)
    out = tmp_path / "phantom"
    assert main(["phantom", str(out), "--studies", "4", "--no-progress"]) != EXIT_OK
    err = _error(capsys)
    assert str(out / "files" / "a.jpg") in err and "partial" not in err, err
    assert os.listdir(tmp_path) == []


def _train(out, *extra) -> int:
    return main(
        [
            "train",
            "--index",
            str(out.parent / "no-index.csv"),
            "--cache",
            str(out.parent / "no-cache"),
            "--observation",
            "Edema",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--no-progress",
            *extra,
        ]
    )


def test_a_refused_train_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "runs" / "edema"
    assert _train(out) == EXIT_USAGE
    assert "no-index.csv" in _error(capsys)
    assert os.listdir(tmp_path) == []


def test_a_stale_metrics_file_is_not_overwritten_silently(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"iteration": 10}\n')
    assert _train(out) == EXIT_USAGE
    err = _error(capsys)
    assert str(out / "metrics.jsonl") in err and "--resume" in err, err
    assert (out / "metrics.jsonl").read_text() == '{"iteration": 10}\n'
