"""Image files in, model-ready batches out: the one reading loop ``predict`` and ``cam`` share.

Files named explicitly are kept whatever their extension (a wrong one becomes an error row);
folders contribute the files with :data:`IMAGE_EXTENSIONS`, recursively and sorted. A file that
cannot be read becomes an error (with its reason); the rest goes on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from finegrain.errors import FinegrainError

log = logging.getLogger(__name__)

#: File extensions collected from folders (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".dcm")


def collect_images(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively, sorted) into image paths.

    A path that does not exist is kept and reported as an error by :func:`read_batches`.
    """
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not found:
                log.warning("no %s files under %s", "/".join(IMAGE_EXTENSIONS), p)
            out.extend(found)
        else:
            out.append(p)
    return out


def error_text(exc: BaseException) -> str:
    """One line: ``PATH: what went wrong`` for image read errors (the path first), else
    ``ExceptionType: message``."""
    from finegrain.data.imageio import ImageReadError

    text = str(exc) or type(exc).__name__
    if isinstance(exc, ImageReadError):
        return text.replace("\n", " ")
    return f"{type(exc).__name__}: {text}".replace("\n", " ")


@dataclass
class ImageBatch:
    """Up to ``batch_size`` consecutive files: ``positions`` (in the file list) of those read,
    their ``images`` uint8 ``(B, S, S)``, and ``errors`` ``{position: reason}`` for the rest."""

    positions: list[int]
    paths: list[Path]
    images: np.ndarray | None
    errors: dict[int, str] = field(default_factory=dict)
    size: int = 0  # files in the batch, read or not


def read_batches(
    files: Sequence[Path], read: Callable[[Path], np.ndarray], batch_size: int
) -> Iterator[ImageBatch]:
    """Read ``files`` with ``read`` (e.g. :meth:`Preprocessing.read`) ``batch_size`` at a time."""
    if batch_size < 1:
        raise FinegrainError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(files), batch_size):
        chunk = range(start, min(start + batch_size, len(files)))
        positions, arrays, errors = [], [], {}
        for i in chunk:
            try:
                arrays.append(read(files[i]))
                positions.append(i)
            except Exception as exc:  # noqa: BLE001 - any reader failure becomes an error row
                errors[i] = error_text(exc)
        yield ImageBatch(
            positions,
            [files[i] for i in positions],
            np.stack(arrays) if arrays else None,
            errors,
            len(chunk),
        )
