"""prepare / ImageCache: round trip, failures listed not fatal, resume after a kill, mismatches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from finegrain.cli import EXIT_PARTIAL, main
from finegrain.data.cache import ImageCache, prepare
from finegrain.data.imageio import read_grayscale
from finegrain.data.index import normalise_index, write_index
from finegrain.observations import OBSERVATIONS

SIZE = 16


def make_index(root: Path, n_jpeg: int = 8) -> Path:
    """JPEGs, an 8-bit and a 16-bit PNG, a truncated JPEG and a missing file, as an index CSV."""
    rng = np.random.default_rng(0)
    images = root / "images"
    images.mkdir(parents=True)
    names = []
    for i in range(n_jpeg):
        h, w = 40 + 4 * (i % 8), 48 - 2 * (i % 8)
        coarse = (rng.random((4, 4)) * 255).astype(np.uint8)
        Image.fromarray(coarse).resize((w, h), Image.BICUBIC).save(images / f"j{i}.jpg")
        names.append(f"j{i}.jpg")
    Image.fromarray((rng.random((30, 20)) * 255).astype(np.uint8)).save(images / "p8.png")
    Image.fromarray((rng.random((30, 20)) * 60000).astype(np.uint16)).save(images / "p16.png")
    data = (images / "j0.jpg").read_bytes()
    (images / "cut.jpg").write_bytes(data[: len(data) // 3])
    names += ["p8.png", "p16.png", "cut.jpg", "gone.jpg"]
    frame = pd.DataFrame(
        {
            "image_id": [n.split(".")[0] for n in names],
            "path": [f"images/{n}" for n in names],
            "subject_id": "1",
            "study_id": [str(i) for i in range(len(names))],
            "split": "train",
            "view": "PA",
        }
    )
    for obs in OBSERVATIONS:
        frame[obs] = pd.NA
    write_index(normalise_index(frame), root / "index.csv")
    return root / "index.csv"


@pytest.fixture
def index_csv(tmp_path) -> Path:
    return make_index(tmp_path / "data")


def test_round_trip_and_failures_listed(index_csv, tmp_path):
    summary = prepare(index_csv, tmp_path / "cache", size=SIZE, workers=0, progress=False)
    assert (summary.count, summary.ok, summary.failed) == (12, 10, 2)
    failed = dict(summary.errors)
    assert set(failed) == {"cut", "gone"}
    assert "cut.jpg" in failed["cut"] and "gone.jpg" in failed["gone"]
    assert "2 failed" in summary.format() and "cut.jpg" in summary.format()

    cache = ImageCache(tmp_path / "cache")
    assert (cache.size, len(cache)) == (SIZE, 12)
    assert cache.image_ids[:2] == ["j0", "j1"]
    assert cache.images.shape == (12, SIZE, SIZE) and cache.images.dtype == np.uint8
    for name in ("j0", "j5", "p8", "p16"):
        path = index_csv.parent / "images" / f"{name}.{'png' if name[0] == 'p' else 'jpg'}"
        np.testing.assert_array_equal(cache[cache.row_of(name)], read_grayscale(path, SIZE))
    assert read_grayscale(index_csv.parent / "images" / "p16.png").max() == 255
    with pytest.raises(KeyError, match="'cut' failed"):
        cache.row_of("cut")
    with pytest.raises(KeyError, match="'nope' is not in the cache"):
        cache.row_of("nope")
    manifest = pd.read_csv(tmp_path / "cache" / "manifest.csv", keep_default_na=False)
    assert list(manifest.columns) == ["image_id", "row", "status", "error"]
    assert manifest["row"].tolist() == list(range(12))
    assert manifest.set_index("image_id").loc["cut", "status"] == "error"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "cache.json",
        "images.u8",
        "manifest.csv",
    ]
    rows = [3, 0, 7, 3]
    np.testing.assert_array_equal(cache.read_rows(rows), np.stack([cache[r] for r in rows]))


def test_parallel_equals_serial_and_rerun_is_a_no_op(index_csv, tmp_path):
    prepare(index_csv, tmp_path / "serial", size=SIZE, crop="center", workers=0, progress=False)
    summary = prepare(
        index_csv, tmp_path / "par", size=SIZE, crop="center", workers=2, chunk=3, progress=False
    )
    assert (summary.ok, summary.failed) == (10, 2)
    serial, par = ImageCache(tmp_path / "serial"), ImageCache(tmp_path / "par")
    np.testing.assert_array_equal(serial.images, par.images)
    assert serial.errors.keys() == par.errors.keys()
    before = (tmp_path / "par" / "images.u8").stat().st_mtime_ns
    again = prepare(index_csv, tmp_path / "par", size=SIZE, crop="center", progress=False)
    assert again.resumed == 12 and again.failed == 2
    assert (tmp_path / "par" / "images.u8").stat().st_mtime_ns == before


def test_parameter_mismatch_is_an_error(index_csv, tmp_path):
    out = tmp_path / "cache"
    prepare(index_csv, out, size=SIZE, workers=0, progress=False)
    with pytest.raises(ValueError, match="size=16 \\(now 8\\)"):
        prepare(index_csv, out, size=8, workers=0, progress=False)
    with pytest.raises(ValueError, match="crop='none' \\(now 'center'\\)"):
        prepare(index_csv, out, size=SIZE, crop="center", workers=0, progress=False)
    other = pd.read_csv(index_csv, dtype=str, keep_default_na=False).iloc[:5]
    other["path"] = [str(index_csv.parent / p) for p in other["path"]]
    with pytest.raises(ValueError, match="different index"):
        prepare(other, out, size=SIZE, workers=0, progress=False)
    summary = prepare(other, out, size=8, workers=0, progress=False, overwrite=True)
    assert (summary.count, ImageCache(out).size) == (5, 8)


def test_frame_input_errors(tmp_path):
    with pytest.raises(ValueError, match="missing column.*'path'"):
        prepare(pd.DataFrame({"image_id": ["a"]}), tmp_path / "c", progress=False)
    dup = pd.DataFrame({"image_id": ["a", "a"], "path": ["x.jpg", "y.jpg"]})
    with pytest.raises(ValueError, match="duplicate image_id 'a'"):
        prepare(dup, tmp_path / "c", progress=False)


SLOW_PREPARE = """
import sys, time
import finegrain.data.cache as cache
original = cache.read_grayscale
def slow(*args, **kwargs):
    time.sleep(0.04)
    return original(*args, **kwargs)
cache.read_grayscale = slow
cache.prepare(sys.argv[1], sys.argv[2], size=16, workers=0, chunk=3, progress=False)
"""


def test_resume_after_kill(tmp_path):
    index_csv = make_index(tmp_path / "data", n_jpeg=30)
    out = tmp_path / "killed"
    journal = out / "journal.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PREPARE, str(index_csv), str(out)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.is_file() and journal.read_text().count("\n") >= 2:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "prepare finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "cache.json").exists()
    with pytest.raises(ValueError, match="unfinished image cache"):
        ImageCache(out)
    done = sum(len(json.loads(line)["rows"]) for line in journal.read_text().splitlines())
    assert 6 <= done < 34
    with open(journal, "a") as handle:  # a kill in the middle of an append
        handle.write('{"rows": [33, ')

    summary = prepare(index_csv, out, size=SIZE, workers=0, chunk=3, progress=False)
    assert summary.resumed == done and summary.count == 34 and summary.failed == 2
    reference = prepare(index_csv, tmp_path / "fresh", size=SIZE, workers=0, progress=False)
    assert reference.resumed == 0
    resumed, fresh = ImageCache(out), ImageCache(tmp_path / "fresh")
    np.testing.assert_array_equal(resumed.images, fresh.images)
    assert resumed.image_ids == fresh.image_ids and resumed.errors == fresh.errors
    assert not journal.exists() and not (out / "prepare.json").exists()


def test_two_prepares_into_one_cache_one_refuses_and_the_cache_is_right(tmp_path):
    """A second ``prepare`` (other settings and --overwrite) while one runs is refused with a
    clear message; the first finishes a correct cache."""
    index_csv = make_index(tmp_path / "data", n_jpeg=30)
    out = tmp_path / "shared"
    journal = out / "journal.jsonl"
    first = subprocess.Popen([sys.executable, "-c", SLOW_PREPARE, str(index_csv), str(out)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and first.poll() is None:
            if journal.is_file() and journal.read_text().count("\n") >= 1:
                break
            time.sleep(0.01)
        assert first.poll() is None, "the first prepare finished too soon"
        os.kill(first.pid, signal.SIGSTOP)  # it holds the cache while the second one runs
        try:
            for extra in (["--size", "24", "--overwrite"], ["--size", str(SIZE)]):
                second = subprocess.run(
                    [sys.executable, "-m", "finegrain", "prepare", str(index_csv)]
                    + ["-o", str(out), "--workers", "0", "--no-progress", *extra],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert second.returncode == 2, second.stderr
                assert "being prepared by another process" in second.stderr
                assert "Traceback" not in second.stderr
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    reference = prepare(index_csv, tmp_path / "fresh", size=SIZE, workers=0, progress=False)
    cache, fresh = ImageCache(out), ImageCache(tmp_path / "fresh")
    assert cache.size == SIZE and reference.failed == 2
    np.testing.assert_array_equal(cache.images, fresh.images)
    assert cache.image_ids == fresh.image_ids and cache.errors == fresh.errors


def test_cli_prints_summary(index_csv, tmp_path, capsys):
    code = main(
        ["prepare", str(index_csv), "-o", str(tmp_path / "c"), "--size", "8"]
        + ["--workers", "0", "--no-progress"]
    )
    out = capsys.readouterr().out
    assert code == EXIT_PARTIAL  # the cache is written; two images failed
    assert "10 ok, 2 failed" in out and "failed cut:" in out and "gone.jpg" in out
    assert main(["prepare", str(index_csv), "-o", str(tmp_path / "c"), "--size", "9"]) == 2
    assert "size=8 (now 9)" in capsys.readouterr().err


def test_real_covid_jpegs(shared_data, tmp_path):
    folder = shared_data / "real_cxr" / "covid"
    table = pd.read_csv(folder / "images.csv")
    frame = pd.DataFrame(
        {
            "image_id": table["image"].str.replace("images/", ""),
            "path": str(folder) + "/" + table["image"],
        }
    )
    summary = prepare(frame, tmp_path / "covid", size=64, workers=2, progress=False)
    assert (summary.ok, summary.failed) == (len(frame), 0)
    cache = ImageCache(tmp_path / "covid")
    means = cache.images.reshape(len(cache), -1).mean(axis=1)
    assert (means > 10).all() and (means < 245).all()  # real, non-blank radiographs


def test_an_absurd_size_is_refused_before_anything_is_allocated(index_csv, tmp_path, capsys):
    with pytest.raises(ValueError, match="at most 4096"):
        prepare(index_csv, tmp_path / "big", size=100_000, workers=0, progress=False)
    assert not (tmp_path / "big" / "images.u8").exists()
    code = main(["prepare", str(index_csv), "-o", str(tmp_path / "big"), "--size", "100000"])
    assert code == 2 and "at most 4096" in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_a_killed_worker_is_an_error_not_a_hang(tmp_path):
    """Workers run under forkserver (their parent is the fork server, not this process) and stay
    up; one killed by the OS stops prepare with an error that says so (not a pool waiting
    forever for its chunk), and running again finishes the cache."""
    import threading

    from finegrain.errors import FinegrainError
    from helpers import descendants

    big = tmp_path / "big.png"  # ~0.2 s to decode: each chunk of 20 keeps a worker busy
    Image.fromarray(np.tile(np.arange(6000) % 256, (6000, 1)).astype(np.uint8)).save(big)
    frame = pd.DataFrame({"image_id": [str(i) for i in range(40)], "path": [big] * 40})
    out = tmp_path / "cache"
    killed: list[int] = []

    def kill_workers():
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for server in descendants(os.getpid()):  # the fork server's children
                if b"forkserver" in Path(f"/proc/{server}/cmdline").read_bytes():
                    workers = descendants(server)
                    if workers:
                        time.sleep(0.5)  # started, and decoding their chunk
                        for pid in workers:
                            os.kill(pid, signal.SIGKILL)
                        killed.extend(workers)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_workers, daemon=True)
    killer.start()
    with pytest.raises(FinegrainError, match="worker process died.*run the same command again"):
        prepare(frame, out, size=SIZE, workers=2, chunk=20, progress=False)
    killer.join()
    assert killed
    summary = prepare(frame, out, size=SIZE, workers=2, chunk=20, progress=False)
    assert summary.ok == 40 and not summary.errors
