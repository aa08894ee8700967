"""Atomic writes: the destination is either the old content or the new, never a partial file."""

from __future__ import annotations

import os
import stat

import pytest

from finegrain.io import append_jsonl, atomic_open, atomic_write_json, atomic_write_text, read_jsonl


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_failed_write_keeps_old_content(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_file_gets_umask_permissions_not_private(tmp_path):
    target = tmp_path / "c.json"
    atomic_write_json(target, {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_read_jsonl_ignores_torn_last_line(tmp_path):
    log = tmp_path / "m.jsonl"
    append_jsonl(log, {"iteration": 1})
    append_jsonl(log, {"iteration": 2})
    with open(log, "a") as handle:
        handle.write('{"iteration": 3')  # a writer killed mid-line
    assert [r["iteration"] for r in read_jsonl(log)] == [1, 2]


def test_read_csv_reads_a_utf16_table(tmp_path):
    """A UTF-16 table (Excel's "Unicode text") failed as "line 1, byte 1 (0xff) is not UTF-8"."""
    from finegrain.io import read_csv

    for encoding in ("utf-16", "utf-16-le", "utf-8-sig"):
        path = tmp_path / f"{encoding}.csv"
        path.write_bytes("image_id,score\nä1,0.5\n".encode(encoding))
        frame = read_csv(path)
        assert list(frame.columns) == ["image_id", "score"], encoding
        assert frame["image_id"].tolist() == ["ä1"]


def test_locks_refuse_a_second_holder_naming_it(tmp_path):
    """held_lock keeps its file and names the holder's pid; exclusive_lock removes its file;
    both refuse a second holder with the caller's message (flock conflicts between two opens
    even in one process)."""
    import os

    from finegrain.errors import FinegrainError
    from finegrain.io import LockedError, exclusive_lock, held_lock

    path = tmp_path / "deep" / "x.lock"
    with held_lock(path, lambda pid: FinegrainError(f"busy {pid}")):
        assert path.read_text(encoding="utf-8") == f"{os.getpid()}\n"
        busy = pytest.raises(FinegrainError, match=f"busy {os.getpid()}")
        with busy, held_lock(path, lambda pid: FinegrainError(f"busy {pid}")):
            pass
    assert path.is_file()
    with held_lock(path, lambda pid: FinegrainError("not again")):  # released: taken again
        pass
    other = tmp_path / "y.lock"
    refused = pytest.raises(LockedError, match="in use")
    with exclusive_lock(other, "in use"), refused, exclusive_lock(other, "in use"):
        pass
    assert not other.exists()
