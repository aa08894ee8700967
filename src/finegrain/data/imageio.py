"""Reading one radiograph as a 2-D uint8 array: JPEG, PNG (8- and 16-bit) and DICOM.

Conventions (see ``docs/data.md``):

- **JPEG** is decoded with DCT-domain downscaling: ``Image.draft("L", (size, size))`` asks
  libjpeg for the smallest power-of-two reduction (1/2, 1/4, 1/8) that still leaves both sides
  at least ``size``, and decodes only the luminance channel. A 2500×3000 JPEG read at 224 px is
  decoded at 313×375 instead of full size.
- **PNG** 8-bit is used as is. 16-bit (and 32-bit integer / float) pixels are scaled linearly
  from the image's own minimum..maximum to 0..255: 16-bit radiographs usually carry 10-14
  significant bits, so scaling by the full 16-bit depth would make them nearly black.
- **DICOM** (optional extra ``dicom``: pydicom) applies the modality LUT (rescale slope /
  intercept), then the VOI LUT or window centre / width when present, scales min..max to
  0..255 and inverts ``MONOCHROME1`` so that bone is always bright.
- Colour images are converted to luminance (ITU-R 601-2, Pillow's ``convert("L")``).
- **Resizing** to ``size``: ``crop="none"`` (default) squashes the whole image to
  ``size``×``size`` (the aspect ratio is not kept, nothing is cut off); ``crop="center"``
  scales the shorter side to ``size`` and cuts the centre square. Resampling is bicubic
  (antialiased when shrinking).

Every error is an :class:`ImageReadError` whose message starts with the file path.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from finegrain.errors import FinegrainError
from finegrain.io import special_file_kind

CROPS: tuple[str, ...] = ("none", "center")
DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom")
_RESAMPLE = Image.Resampling.BICUBIC


class ImageReadError(FinegrainError):
    """An image that cannot be read; the message names the file."""


def read_grayscale(
    path: str | os.PathLike, size: int | None = None, *, crop: str = "none"
) -> np.ndarray:
    """Read an image file as a 2-D ``uint8`` array, optionally resized to ``size``×``size``.

    ``size=None`` keeps the native resolution. ``crop`` is ``"none"`` (squash the whole image to
    a square) or ``"center"`` (shorter side to ``size``, then the centre square).

    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> f = tempfile.NamedTemporaryFile(suffix=".png", delete=False).name
    >>> Image.fromarray(np.full((30, 40), 7, np.uint8)).save(f)
    >>> read_grayscale(f, 16).shape
    (16, 16)
    """
    path = Path(path)
    if crop not in CROPS:
        raise FinegrainError(f"crop must be one of {CROPS}, got {crop!r}")
    if size is not None and (not isinstance(size, int | np.integer) or size < 1):
        raise FinegrainError(f"size must be a positive integer or None, got {size!r}")
    kind = special_file_kind(path)
    if kind is not None:
        raise ImageReadError(f"{path}: is {kind}, not a regular file")
    try:
        image = Image.fromarray(_read_dicom(path)) if _is_dicom(path) else _open_pillow(path, size)
        return _resize(image, size, crop)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except (
        OSError,
        ValueError,
        SyntaxError,
        UnidentifiedImageError,
        Image.DecompressionBombError,
    ) as exc:
        raise ImageReadError(f"{path}: cannot read image: {exc}") from exc


def image_dimensions(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(height, width)`` of an image file from its header (DICOM: Rows and Columns), its
    pixels not decoded; ``None`` when the header cannot be read (reading the image says why)."""
    path = Path(path)
    try:
        if _is_dicom(path):
            import pydicom

            header = pydicom.dcmread(path, stop_before_pixels=True)
            return int(header.Rows), int(header.Columns)
        with Image.open(path) as image:
            return image.height, image.width
    except Exception:  # noqa: BLE001 - a header that cannot be read: the reader reports it
        return None


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    with open(path, "rb") as handle:  # DICOM Part 10: 128-byte preamble, then b"DICM"
        head = handle.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def _open_pillow(path: Path, size: int | None) -> Image.Image:
    with warnings.catch_warnings():  # Pillow's bomb warning names its own file, not this one
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombWarning as exc:
            raise ImageReadError(
                f"{path}: too many pixels for a radiograph ({exc}); if the image is genuine, "
                "raise PIL.Image.MAX_IMAGE_PIXELS"
            ) from None
    if size is not None and image.format == "JPEG":
        # DCT-domain downscaling + luminance-only decoding; a no-op for small images.
        image.draft("L", (size, size))
    image.load()  # decode now: a truncated file raises here, naming nothing yet
    return _to_luminance(image)


def _to_luminance(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> mode ``L``; high bit depths are scaled min..max to 0..255."""
    if image.mode == "L":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(image)))
    return image.convert("L")  # RGB(A), CMYK, palette, 1-bit, LA: luminance


def _scale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Linear min..max scaling of any numeric array to uint8 (a constant image becomes 0)."""
    array = np.asarray(array, dtype=np.float32 if array.itemsize <= 2 else np.float64)
    if not np.isfinite(array).all():
        raise FinegrainError("pixel data contains NaN or infinity")
    low, high = float(array.min()), float(array.max())
    if high <= low:
        return np.zeros(array.shape, np.uint8)
    return np.rint((array - low) * (255.0 / (high - low))).astype(np.uint8)


def _resize(image: Image.Image, size: int | None, crop: str) -> np.ndarray:
    if size is not None:
        width, height = image.size
        if crop == "center":
            scale = size / min(width, height)
            new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
            left, top = (new_w - size) / 2, (new_h - size) / 2
            box = (left / scale, top / scale, (left + size) / scale, (top + size) / scale)
            image = image.resize((size, size), _RESAMPLE, box=box)
        elif image.size != (size, size):
            image = image.resize((size, size), _RESAMPLE)
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim != 2:
        raise FinegrainError(f"expected a 2-D grayscale image, got shape {array.shape}")
    return array


def _read_dicom(path: Path) -> np.ndarray:
    try:
        import pydicom
    except ImportError:
        raise ImageReadError(
            f"{path}: reading DICOM needs pydicom; install it with `pip install 'finegrain[dicom]'`"
        ) from None
    try:
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut

    try:
        dataset = pydicom.dcmread(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # pydicom's InvalidDicomError is no OSError or ValueError
        raise ImageReadError(f"{path}: cannot read DICOM: {exc}") from exc
    if "PixelData" not in dataset:
        raise ImageReadError(f"{path}: DICOM file has no pixel data")
    try:
        pixels = dataset.pixel_array
    except Exception as exc:  # missing decoder plugin for a compressed transfer syntax, ...
        raise ImageReadError(f"{path}: cannot decode DICOM pixel data: {exc}") from exc
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    photometric = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if frames > 1:
        raise ImageReadError(f"{path}: multi-frame DICOM ({frames} frames) is not a radiograph")
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        pixels = apply_voi_lut(apply_modality_lut(pixels, dataset), dataset)
        array = _scale_to_uint8(pixels)
        return 255 - array if photometric == "MONOCHROME1" else array
    if pixels.ndim == 3 and pixels.shape[-1] == 3:  # RGB / YBR converted by pydicom
        return np.asarray(Image.fromarray(pixels.astype(np.uint8), "RGB").convert("L"))
    raise ImageReadError(f"{path}: unsupported DICOM PhotometricInterpretation {photometric!r}")
