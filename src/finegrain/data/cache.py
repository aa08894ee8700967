"""The image cache: every image of an index decoded once into a uint8 memory-mapped array.

A cache is a folder (format in ``docs/data.md``):

- ``images.u8`` — raw uint8 array of shape ``(N, size, size)``; row ``i`` is index row ``i``.
- ``manifest.csv`` — ``image_id, row, status, error``; ``status`` is ``ok`` or ``error`` (the
  row then holds zeros and ``error`` says why, naming the file).
- ``cache.json`` — ``version, size, crop, count, ok, failed, index_sha256``; written **last**:
  a folder without it is an unfinished cache that :func:`prepare` resumes.

While :func:`prepare` runs, the folder also holds ``prepare.json`` (the parameters) and
``journal.jsonl``: one fsynced line per finished chunk, appended only after that chunk's pixels
were written and fsynced. After a kill, the rows in the journal are kept and the rest are
decoded again, so no half-written row is ever marked done.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from finegrain.data.imageio import CROPS, read_grayscale
from finegrain.errors import FinegrainError, NotFound, option
from finegrain.io import (
    append_jsonl,
    atomic_write_csv,
    atomic_write_json,
    exclusive_lock,
    read_jsonl,
)
from finegrain.workers import die_with_parent

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

CACHE_VERSION = 1
IMAGES_FILE = "images.u8"
MANIFEST_FILE = "manifest.csv"
META_FILE = "cache.json"
PARAMS_FILE = "prepare.json"
JOURNAL_FILE = "journal.jsonl"
#: Largest image side a cache accepts: a typo (100000) must not allocate terabytes.
MAX_SIZE = 4096
LOCK_FILE = "prepare.lock"  # held (flock) by the process preparing the cache
DEFAULT_CHUNK = 64
_PARAM_KEYS = ("version", "size", "crop", "count", "index_sha256")


@dataclass
class PrepareSummary:
    """What :func:`prepare` did: images decoded ok, failed (with errors), resumed from a kill."""

    out_dir: Path
    size: int
    crop: str
    count: int
    ok: int
    failed: int
    resumed: int = 0
    elapsed_s: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (image_id, error)

    @property
    def images_per_s(self) -> float:
        done = self.count - self.resumed
        return done / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def format(self, max_errors: int = 5) -> str:
        """Human-readable summary: counts, then the first ``max_errors`` errors."""
        lines = [
            f"cache {self.out_dir}: {self.count} images at {self.size}x{self.size} "
            f"(crop={self.crop}): {self.ok} ok, {self.failed} failed"
        ]
        if self.resumed and self.resumed == self.count:
            lines.append("the cache was already complete: nothing to do")
        elif self.resumed:
            lines.append(f"resumed: {self.resumed} images were already done by an earlier run")
        if self.elapsed_s > 0 and self.count > self.resumed:
            lines.append(f"{self.images_per_s:.1f} images/s over {self.elapsed_s:.1f} s")
        for image_id, error in self.errors[:max_errors]:
            lines.append(f"  failed {image_id}: {error}")
        if len(self.errors) > max_errors:
            lines.append(f"  ... and {len(self.errors) - max_errors} more (see {MANIFEST_FILE})")
        return "\n".join(lines)


def check_image_size(size: int) -> None:
    """Refuse an image side that is not a positive integer or above :data:`MAX_SIZE` (before
    anything is allocated: a typo such as 100000 must not ask for terabytes)."""
    if not isinstance(size, int) or size < 1:
        raise FinegrainError(f"size must be a positive integer, got {size!r}")
    if size > MAX_SIZE:
        raise FinegrainError(
            f"size must be at most {MAX_SIZE} px (radiographs are rarely larger), got {size}: "
            f"one image would take {size * size / 1e9:.1f} GB"
        )


def prepare(
    index: str | os.PathLike | pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    size: int = 224,
    crop: str = "none",
    workers: int | None = None,
    progress: bool = True,
    chunk: int = DEFAULT_CHUNK,
    overwrite: bool = False,
) -> PrepareSummary:
    """Decode every image of ``index`` once into the cache folder ``out_dir``.

    ``index`` is an index-table path (read with :func:`finegrain.data.index.read_index`) or a
    DataFrame with at least ``image_id`` and ``path`` columns (paths absolute or relative to the
    working directory). Images are decoded by ``workers`` processes (default: all CPUs; 0 or 1
    decodes in this process) in chunks of ``chunk`` rows that write straight into the memmap, so
    memory stays flat however many images there are.

    Re-running on an interrupted cache resumes it; on a finished cache with the same parameters
    it does nothing. A cache made with another size, crop or index is an error unless
    ``overwrite=True``. Images that cannot be read are recorded as ``error`` in the manifest and
    in the summary, never fatal.

    Worker processes are started with ``forkserver`` (``spawn`` where unavailable): in a script,
    call ``prepare`` under ``if __name__ == "__main__":`` as usual with multiprocessing.
    """
    if crop not in CROPS:
        raise FinegrainError(f"crop must be one of {CROPS}, got {crop!r}")
    check_image_size(size)
    if chunk < 1:
        raise FinegrainError(f"chunk must be >= 1, got {chunk}")
    start = time.perf_counter()
    ids, paths = _index_images(index)
    out = Path(out_dir)
    params = {
        "version": CACHE_VERSION,
        "size": size,
        "crop": crop,
        "count": len(ids),
        "index_sha256": _fingerprint(ids),
    }
    out.mkdir(parents=True, exist_ok=True)
    busy = (
        f"{out} is being prepared by another process (it holds {out / LOCK_FILE}); wait for it "
        "to finish or stop it, or choose another folder"
    )
    with exclusive_lock(out / LOCK_FILE, busy):
        return _prepare_locked(out, ids, paths, params, workers, progress, chunk, overwrite, start)


def _prepare_locked(
    out: Path,
    ids: list[str],
    paths: list[str],
    params: dict,
    workers: int | None,
    progress: bool,
    chunk: int,
    overwrite: bool,
    start: float,
) -> PrepareSummary:
    """:func:`prepare` once the cache folder is held by this process."""
    size, crop = params["size"], params["crop"]
    if overwrite:
        _remove_cache_files(out)
    if (out / META_FILE).is_file():
        _check_params(out / META_FILE, params)
        cache = ImageCache(out)
        return _summary(out, params, cache.status_errors(), resumed=len(ids), elapsed=0.0)
    if (out / PARAMS_FILE).is_file():
        _check_params(out / PARAMS_FILE, params)
    elif (out / IMAGES_FILE).exists() or (out / JOURNAL_FILE).exists():
        raise FinegrainError(
            f"{out}: holds {IMAGES_FILE} or {JOURNAL_FILE} but no {PARAMS_FILE}: not a cache "
            f"this version can resume; use another folder or {option('overwrite=True', '--overwrite')}"
        )
    else:
        atomic_write_json(out / PARAMS_FILE, params)

    images_path = out / IMAGES_FILE
    nbytes = len(ids) * size * size
    _check_space(out, nbytes - (images_path.stat().st_size if images_path.is_file() else 0))
    with open(images_path, "ab") as handle:  # preallocate (sparse) without touching done rows
        if handle.tell() != nbytes:
            handle.truncate(nbytes)

    errors: dict[int, str | None] = {}
    journal = out / JOURNAL_FILE
    if journal.is_file():
        _drop_partial_line(journal)
        for record in read_jsonl(journal):
            for row, image_id, error in zip(
                record["rows"], record["ids"], record["errors"], strict=True
            ):
                if not 0 <= row < len(ids) or ids[row] != image_id:
                    raise FinegrainError(
                        f"{journal}: row {row} ({image_id!r}) does not match the index; "
                        f"use another folder or {option('overwrite=True', '--overwrite')}"
                    )
                errors[row] = error
    resumed = len(errors)
    todo = [row for row in range(len(ids)) if row not in errors]
    tasks = [
        (str(images_path), size, crop, rows, [ids[r] for r in rows], [paths[r] for r in rows])
        for rows in (todo[i : i + chunk] for i in range(0, len(todo), chunk))
    ]
    workers = _resolve_workers(workers, len(tasks))
    bar = _progress(len(ids), resumed, progress)
    with contextlib.closing(_run_tasks(tasks, workers)) as records, bar:
        for record in records:  # closing() ends the pool at once on an error or Ctrl-C
            append_jsonl(journal, record)  # after the chunk's pixels are on disk
            errors.update(zip(record["rows"], record["errors"], strict=True))
            bar.update(len(record["rows"]))

    statuses = [errors[row] for row in range(len(ids))]
    _finalise(out, params, ids, statuses)
    return _summary(
        out, params, list(zip(ids, statuses, strict=True)), resumed, time.perf_counter() - start
    )


#: Normalisations a model may expect; ``imagenet``: the model's ``InputNormalization`` scales
#: uint8 to [0, 1], replicates to 3 channels and applies the ImageNet mean/std.
NORMALIZATIONS: tuple[str, ...] = ("imagenet",)


@dataclass(frozen=True)
class Preprocessing:
    """How a file becomes a model input: the one spec the cache, training and prediction share.

    The image is read as grayscale, cropped (``crop``: ``none`` squashes the whole image,
    ``center`` keeps the central square) and resized to ``size`` x ``size`` uint8 (exactly what
    :func:`prepare` stores); the model then applies ``normalization``. Training stores it in
    every checkpoint, so prediction needs nothing else.

    >>> Preprocessing.from_dict({"size": 224, "crop": "center", "normalization": "imagenet"})
    Preprocessing(size=224, crop='center', normalization='imagenet')
    """

    size: int
    crop: str = "none"
    normalization: str = "imagenet"

    def __post_init__(self) -> None:
        if int(self.size) < 1:
            raise FinegrainError(f"preprocessing size must be positive, got {self.size}")
        if self.crop not in CROPS:
            raise FinegrainError(f"preprocessing crop must be one of {CROPS}, got {self.crop!r}")
        if self.normalization not in NORMALIZATIONS:
            raise FinegrainError(
                f"preprocessing normalization must be one of {NORMALIZATIONS}, "
                f"got {self.normalization!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"size": int(self.size), "crop": self.crop, "normalization": self.normalization}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        """Inverse of :meth:`to_dict`; every key is required (nothing is guessed)."""
        missing = [k for k in ("size", "crop", "normalization") if k not in data]
        if missing:
            raise FinegrainError(f"preprocessing spec lacks {', '.join(missing)}")
        return cls(int(data["size"]), str(data["crop"]), str(data["normalization"]))

    def read(self, path: str | os.PathLike) -> np.ndarray:
        """The image file as the model sees it: uint8 ``(size, size)``."""
        image = np.asarray(read_grayscale(path, self.size, crop=self.crop))
        if image.dtype != np.uint8 or image.shape != (self.size, self.size):
            raise FinegrainError(
                f"{path}: reader returned {image.dtype} {image.shape}, not uint8 {self.size}^2"
            )
        return image


def is_finished_cache(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a finished cache (its ``cache.json`` is written last)."""
    return (Path(directory) / META_FILE).is_file()


class ImageCache:
    """Read access to a finished cache folder written by :func:`prepare`.

    ``cache[row]`` is a read-only ``(size, size)`` uint8 view; :meth:`read_rows` reads many rows
    at once. The memmap is opened lazily and not pickled, so a cache can be handed to
    DataLoader worker processes cheaply.
    """

    def __init__(self, directory: str | os.PathLike):
        import pandas as pd

        self.directory = Path(directory)
        meta_path = self.directory / META_FILE
        if not meta_path.is_file():
            if (self.directory / PARAMS_FILE).is_file():
                raise FinegrainError(
                    f"{self.directory}: unfinished image cache (prepare was interrupted); run "
                    "`finegrain prepare` again with the same arguments to resume it"
                )
            raise FileNotFoundError(f"{self.directory}: not an image cache (no {META_FILE})")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("version") != CACHE_VERSION:
            raise FinegrainError(
                f"{meta_path}: cache version {meta.get('version')!r}, this finegrain reads "
                f"version {CACHE_VERSION}; prepare the cache again"
            )
        self.size: int = int(meta["size"])
        self.crop: str = str(meta["crop"])
        self.count: int = int(meta["count"])
        self.meta: dict[str, Any] = meta
        manifest_path = self.directory / MANIFEST_FILE
        manifest = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
        if list(manifest.columns) != ["image_id", "row", "status", "error"]:
            raise FinegrainError(f"{manifest_path}: columns must be image_id,row,status,error")
        if (
            len(manifest) != self.count
            or (manifest["row"].astype(int).to_numpy() != np.arange(self.count)).any()
        ):
            raise FinegrainError(
                f"{manifest_path}: rows do not match count {self.count} in {META_FILE}"
            )
        bad = ~manifest["status"].isin(["ok", "error"])
        if bad.any():
            line = int(bad.to_numpy().nonzero()[0][0]) + 2
            raise FinegrainError(f"{manifest_path}: status at line {line} is not 'ok' or 'error'")
        self.image_ids: list[str] = manifest["image_id"].tolist()
        self.ok: np.ndarray = (manifest["status"] == "ok").to_numpy()
        self.errors: dict[str, str] = dict(
            zip(manifest["image_id"][~self.ok], manifest["error"][~self.ok], strict=True)
        )
        self._rows = {image_id: row for row, image_id in enumerate(self.image_ids)}
        images_path = self.directory / IMAGES_FILE
        expected = self.count * self.size * self.size
        actual = images_path.stat().st_size if images_path.is_file() else -1
        if actual != expected:
            raise FinegrainError(f"{images_path}: {actual} bytes, expected {expected}")
        self._images: np.ndarray | None = None

    @property
    def images(self) -> np.ndarray:
        """The whole ``(count, size, size)`` uint8 array (read-only memmap)."""
        if self._images is None:
            shape = (self.count, self.size, self.size)
            if self.count == 0:
                self._images = np.empty(shape, np.uint8)
            else:
                path = self.directory / IMAGES_FILE
                self._images = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)
        return self._images

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, row: int) -> np.ndarray:
        return self.images[row]

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._rows

    def row_of(self, image_id: str) -> int:
        """The row of ``image_id``; KeyError naming the id if absent or failed to decode."""
        row = self._rows.get(image_id)
        if row is None:
            raise NotFound(f"image {image_id!r} is not in the cache {self.directory}")
        if not self.ok[row]:
            raise NotFound(
                f"image {image_id!r} failed in the cache {self.directory}: {self.errors[image_id]}"
            )
        return row

    def lookup(self, image_ids: Sequence[str]) -> np.ndarray:
        """Rows of many ids at once (int64; -1 for an id absent from the cache; failed ids keep
        their row: check :attr:`ok`)."""
        return np.fromiter((self._rows.get(i, -1) for i in image_ids), np.int64, len(image_ids))

    def read_rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """A copy of many rows, ``(len(rows), size, size)``, read in ascending row order."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), self.size, self.size), np.uint8)
        out[order] = self.images[rows[order]]
        return out

    def status_errors(self) -> list[tuple[str, str | None]]:
        """``(image_id, error or None)`` for every row, in row order."""
        return [
            (image_id, None if ok else self.errors[image_id])
            for image_id, ok in zip(self.image_ids, self.ok, strict=True)
        ]

    @property
    def preprocessing(self) -> Preprocessing:
        """How the cached images were made from their files (stored in every checkpoint)."""
        return Preprocessing(self.size, self.crop)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_images"] = None  # reopened lazily in the receiving process
        return state

    def __repr__(self) -> str:
        return (
            f"ImageCache({str(self.directory)!r}, count={self.count}, size={self.size}, "
            f"failed={len(self.errors)})"
        )


# -- internals ----------------------------------------------------------------------------------


def _index_images(index: Any) -> tuple[list[str], list[str]]:
    import pandas as pd

    if isinstance(index, pd.DataFrame):
        missing = [c for c in ("image_id", "path") if c not in index.columns]
        if missing:
            raise FinegrainError(f"index frame: missing column(s) {', '.join(map(repr, missing))}")
        frame = index
        dup = frame["image_id"].astype(str).duplicated()
        if dup.any():
            position = int(dup.to_numpy().nonzero()[0][0])
            raise FinegrainError(
                f"index frame: duplicate image_id {frame['image_id'].iloc[position]!r} "
                f"at position {position}"
            )
    else:
        from finegrain.data.index import read_index

        frame = read_index(index)
    return frame["image_id"].astype(str).tolist(), frame["path"].astype(str).tolist()


def _fingerprint(ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for image_id in ids:
        digest.update(image_id.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _check_params(path: Path, params: dict) -> None:
    found = json.loads(path.read_text(encoding="utf-8"))
    diff = [k for k in _PARAM_KEYS if found.get(k) != params[k]]
    if diff:
        what = ", ".join(
            f"{k}={found.get(k)!r} (now {params[k]!r})"
            if k != "index_sha256"
            else "a different index (image ids or their order differ)"
            for k in diff
        )
        raise FinegrainError(
            f"{path.parent}: this cache was prepared with {what}; use another folder or "
            f"{option('overwrite=True', '--overwrite')} to rebuild it"
        )


def _check_space(out: Path, needed: int) -> None:
    """Refuse a cache that cannot fit on its disk before any byte is written."""
    import shutil

    free = shutil.disk_usage(out).free
    if needed > free:
        raise OSError(
            errno.ENOSPC,
            f"the cache needs {needed / 1e9:.1f} GB more and the disk has {free / 1e9:.1f} GB "
            "free; choose a smaller --size, free some space or write elsewhere",
            str(out),
        )


def _remove_cache_files(out: Path) -> None:
    # cache.json first: a folder is never left looking finished while being rebuilt
    for name in (META_FILE, MANIFEST_FILE, JOURNAL_FILE, PARAMS_FILE, IMAGES_FILE):
        (out / name).unlink(missing_ok=True)


def _drop_partial_line(path: Path) -> None:
    """Cut a trailing partial line (a kill during an append) so new records start clean."""
    with open(path, "r+b") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)
            handle.flush()
            os.fsync(handle.fileno())


def _resolve_workers(workers: int | None, tasks: int) -> int:
    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # macOS, Windows
            workers = os.cpu_count() or 1
    return max(0, min(int(workers), tasks))


def _run_tasks(tasks: list[tuple], workers: int):
    """Yield one journal record per finished chunk (unordered when parallel).

    A worker that dies (killed by the OS, out of memory) stops the run with an error that says
    so, instead of leaving its chunk unanswered: the journal keeps every finished chunk.
    """
    if workers <= 1:
        for task in tasks:
            yield _prepare_chunk(task)
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    # the workers end if this process is killed; at most 2 chunks per worker are queued, so an
    # error or Ctrl-C waits for the chunks in hand only
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
    )
    pending: set = set()
    queue = iter(tasks)
    try:
        while True:
            for task in queue:
                pending.add(pool.submit(_prepare_chunk, task))
                if len(pending) >= 2 * workers:
                    break
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    except BrokenProcessPool as exc:
        raise FinegrainError(
            "an image-decoding worker process died (killed by the operating system, e.g. out "
            "of memory?); run the same command again to resume, or use fewer workers"
        ) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _prepare_chunk(task: tuple) -> dict:
    """Decode one chunk into its rows of the memmap file, fsync, and return its journal record."""
    images_path, size, crop, rows, ids, paths = task
    errors: list[str | None] = []
    zeros = bytes(size * size)
    with open(images_path, "r+b") as handle:
        for row, path in zip(rows, paths, strict=True):
            try:
                data = read_grayscale(path, size, crop=crop).tobytes()
                errors.append(None)
            except Exception as exc:  # any unreadable image is recorded, never fatal
                message = str(exc)
                if str(path) not in message:
                    message = f"{path}: {type(exc).__name__}: {message}"
                errors.append(message)
                data = zeros
            handle.seek(row * size * size)
            handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return {"rows": list(rows), "ids": list(ids), "errors": errors}


def _finalise(out: Path, params: dict, ids: list[str], errors: list[str | None]) -> None:
    import pandas as pd

    manifest = pd.DataFrame(
        {
            "image_id": ids,
            "row": np.arange(len(ids)),
            "status": ["ok" if e is None else "error" for e in errors],
            "error": ["" if e is None else e for e in errors],
        }
    )
    atomic_write_csv(out / MANIFEST_FILE, manifest)
    failed = sum(e is not None for e in errors)
    meta = dict(params, ok=len(ids) - failed, failed=failed)
    atomic_write_json(out / META_FILE, meta)  # the completion marker, written last
    (out / JOURNAL_FILE).unlink(missing_ok=True)
    (out / PARAMS_FILE).unlink(missing_ok=True)


def _summary(
    out: Path, params: dict, statuses: list[tuple[str, str | None]], resumed: int, elapsed: float
) -> PrepareSummary:
    errors = [(image_id, e) for image_id, e in statuses if e is not None]
    return PrepareSummary(
        out_dir=out,
        size=params["size"],
        crop=params["crop"],
        count=params["count"],
        ok=params["count"] - len(errors),
        failed=len(errors),
        resumed=resumed,
        elapsed_s=elapsed,
        errors=errors,
    )


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="img", desc="prepare")
