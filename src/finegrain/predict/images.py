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


#: An image whose longer side is more than this many times its shorter one is no radiograph
#: (they are about 0.8 to 1.25); squashed to a square, it is mostly stretched noise.
MAX_ASPECT = 3.0


def degenerate(dimensions: tuple[int, int] | None, image: np.ndarray, size: int) -> list[str]:
    """What makes an input image a poor radiograph for a model of ``size`` px, as phrases (none:
    an ordinary one): smaller than the model's input on its shorter side (``dimensions``: the
    file's ``(height, width)``), an extreme aspect ratio (:data:`MAX_ASPECT`), or a constant
    image (``image``: what the model sees, every pixel one value).

    >>> degenerate((1, 1), np.zeros((32, 32), np.uint8), 32)
    ["1x1 px, smaller than the model's 32 px input", 'a constant image (every pixel 0)']
    """
    found = []
    if dimensions is not None:
        height, width = dimensions
        if min(height, width) < size:
            found.append(f"{width}x{height} px, smaller than the model's {size} px input")
        if min(height, width) > 0 and max(height, width) / min(height, width) > MAX_ASPECT:
            found.append(
                f"aspect ratio {max(height, width) / min(height, width):.3g}:1 "
                f"({width}x{height} px), more than {MAX_ASPECT:g}:1"
            )
    if image.size and image.min() == image.max():
        found.append(f"a constant image (every pixel {int(image.flat[0])})")
    return found


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
