"""read_grayscale: JPEG (DCT draft), PNG 8/16-bit, DICOM, resize policies and named errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from finegrain.data.imageio import ImageReadError, read_grayscale


def smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth radiograph-like uint8 image (low-frequency noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((h // 16 + 2, w // 16 + 2))
    big = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC))
    return big


def test_png8_native_size_is_exact(tmp_path):
    array = smooth(40, 30)
    Image.fromarray(array).save(tmp_path / "a.png")
    out = read_grayscale(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (40, 30)
    np.testing.assert_array_equal(out, array)


def test_png16_scaled_min_to_max(tmp_path):
    # 12-bit data in a 16-bit PNG: min -> 0, max -> 255, linear in between
    ramp = np.linspace(1000, 3000, 20 * 10).reshape(20, 10).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "a16.png")
    assert Image.open(tmp_path / "a16.png").mode.startswith("I")
    out = read_grayscale(tmp_path / "a16.png")
    assert out.dtype == np.uint8 and out.shape == (20, 10)
    assert out.min() == 0 and out.max() == 255
    expected = np.rint((ramp.astype(float) - 1000) / 2000 * 255)
    assert np.abs(out.astype(int) - expected).max() <= 1
    constant = np.full((8, 8), 777, np.uint16)
    Image.fromarray(constant).save(tmp_path / "c16.png")
    assert read_grayscale(tmp_path / "c16.png").max() == 0


def test_rgb_is_converted_to_luminance(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 255  # pure red: L = 0.299 * 255
    Image.fromarray(rgb).save(tmp_path / "red.png")
    out = read_grayscale(tmp_path / "red.png")
    assert out.shape == (16, 16) and abs(int(out[0, 0]) - 76) <= 1


def test_jpeg_uses_dct_draft_and_matches_full_decode(tmp_path, monkeypatch):
    array = smooth(1200, 1000, seed=1)
    Image.fromarray(array).save(tmp_path / "big.jpg", quality=92)
    calls = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original(self, mode, size)
        calls.append((mode, size, self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    out = read_grayscale(tmp_path / "big.jpg", 64)
    assert out.shape == (64, 64) and out.dtype == np.uint8
    # asked for luminance at >= 64 px and got a 1/8 reduced decode (125 x 150), not 1000 x 1200
    assert calls and calls[0][:2] == ("L", (64, 64))
    assert calls[0][2] == (125, 150)
    full = np.asarray(Image.open(tmp_path / "big.jpg").convert("L").resize((64, 64)))
    assert np.abs(out.astype(int) - full.astype(int)).mean() < 3


def test_resize_policies(tmp_path):
    # 40 wide x 20 high: left half black, right half white, a grey stripe at the far left
    array = np.zeros((20, 40), np.uint8)
    array[:, 20:] = 255
    array[:, :5] = 128
    Image.fromarray(array).save(tmp_path / "wide.png")
    squash = read_grayscale(tmp_path / "wide.png", 10)
    center = read_grayscale(tmp_path / "wide.png", 10, crop="center")
    assert squash.shape == center.shape == (10, 10)
    assert abs(int(squash[5, 0]) - 128) <= 10  # the whole width is kept: stripe visible
    assert center[5, 1] < 20 and center[5, 8] > 235  # centre square: black | white, no stripe
    with pytest.raises(ValueError, match="crop"):
        read_grayscale(tmp_path / "wide.png", 10, crop="pad")
    with pytest.raises(ValueError, match="size"):
        read_grayscale(tmp_path / "wide.png", 0)


def test_truncated_jpeg_error_names_the_file(tmp_path):
    Image.fromarray(smooth(200, 160)).save(tmp_path / "whole.jpg", quality=90)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        read_grayscale(tmp_path / "cut.jpg", 32)


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageReadError, match="notes.png"):
        read_grayscale(tmp_path / "notes.png")
    with pytest.raises(ImageReadError, match="nothing.jpg: file not found"):
        read_grayscale(tmp_path / "nothing.jpg")


def write_dicom(path, pixels: np.ndarray, photometric: str, **extra) -> None:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).pixel_array.shape == pixels.shape


def test_dicom_monochrome1_is_inverted_and_rescaled(tmp_path):
    pixels = np.linspace(0, 4000, 24 * 16).reshape(24, 16).astype(np.uint16)
    write_dicom(tmp_path / "m2.dcm", pixels, "MONOCHROME2", RescaleSlope=2, RescaleIntercept=-100)
    write_dicom(tmp_path / "m1", pixels, "MONOCHROME1")  # no suffix: found by the DICM magic
    m2 = read_grayscale(tmp_path / "m2.dcm")
    m1 = read_grayscale(tmp_path / "m1")
    assert m2.dtype == np.uint8 and m2.shape == (24, 16)
    assert m2[0, 0] == 0 and m2[-1, -1] == 255
    np.testing.assert_array_equal(m1, 255 - m2)
    assert read_grayscale(tmp_path / "m2.dcm", 8).shape == (8, 8)


def test_dicom_window_is_applied(tmp_path):
    pixels = np.linspace(0, 4000, 20 * 20).reshape(20, 20).astype(np.uint16)
    write_dicom(tmp_path / "w.dcm", pixels, "MONOCHROME2", WindowCenter=2000, WindowWidth=1000)
    out = read_grayscale(tmp_path / "w.dcm")
    # values below 1500 saturate to black, above 2500 to white
    assert (out[pixels < 1450] == 0).all() and (out[pixels > 2550] == 255).all()
    middle = out[(pixels > 1600) & (pixels < 2400)]
    assert middle.min() > 0 and middle.max() < 255


def test_dicom_without_pydicom_says_how_to_install(tmp_path, monkeypatch):
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8)
    write_dicom(tmp_path / "x.dcm", pixels, "MONOCHROME2")
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(ImageReadError, match=r"x\.dcm.*finegrain\[dicom\]"):
        read_grayscale(tmp_path / "x.dcm")


def test_decompression_bomb_is_a_read_error_naming_the_file(tmp_path, monkeypatch):
    """Pillow's DecompressionBombWarning (which names Pillow's own file) becomes an error that
    names the image, and no warning escapes."""
    import warnings

    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 px: a warning, not yet an error
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageReadError, match=rf"^{path}: too many pixels .*MAX_IMAGE_PIXELS"):
            read_grayscale(path, 16)
    assert caught == []


def test_unreadable_dicom_error_starts_with_the_path(tmp_path):
    pytest.importorskip("pydicom", reason="pydicom (extra 'dicom') not installed")
    path = tmp_path / "scan.dcm"
    path.write_bytes(b"not a dicom file")
    with pytest.raises(ImageReadError, match=rf"^{path}: cannot read DICOM: "):
        read_grayscale(path, 16)


@pytest.fixture
def alarm():
    """Fail instead of hanging forever (a FIFO opened for reading waits for a writer)."""
    import signal

    def fail(*_):
        raise TimeoutError("hung on a non-regular file")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_a_fifo_is_refused_not_waited_on_by_read_prepare_and_predict(tmp_path, alarm):
    import os

    import pandas as pd

    from finegrain.data.cache import prepare
    from finegrain.predict import predict
    from helpers import save_tiny_checkpoint

    fifo = tmp_path / "scan.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_grayscale(fifo, 16)
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_grayscale(tmp_path, 16)  # a folder
    frame = pd.DataFrame({"image_id": ["a"], "path": [str(fifo)]})
    summary = prepare(frame, tmp_path / "cache", size=16, workers=0, progress=False)
    assert summary.failed == 1 and "not a regular file" in summary.errors[0][1]
    ckpt = save_tiny_checkpoint(
        tmp_path / "m.pt", seed=0, method="pu-rm", thresholds={"positive": 0.3, "typical": 0.6}
    )
    table = predict(ckpt, [fifo], progress=False)
    assert "not a regular file" in table["error"][0]
