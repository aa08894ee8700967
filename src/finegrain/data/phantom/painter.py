"""The painter: radiograph-like drawing of a study's findings (numpy on a fixed grid)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from finegrain.data.phantom.finding import LOBES, Finding
from finegrain.data.phantom.knobs import PhantomKnobs


def soft(d: np.ndarray, edge: float) -> np.ndarray:
    """1 inside a shape (``d < 1 - edge``), 0 outside (``d > 1``), linear in between."""
    return np.clip((1.0 - d) / edge, 0.0, 1.0)


@functools.lru_cache(maxsize=16)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres ``(X, Y)`` in [-1, 1] (image left = patient right, Y down)."""
    t = ((np.arange(size) + 0.5) / size * 2 - 1).astype(np.float32)
    Y, X = np.meshgrid(t, t, indexing="ij")
    return X, Y


@functools.lru_cache(maxsize=16)
def anatomy(size: int, view: str) -> dict[str, np.ndarray]:
    """The fixed anatomy of a frontal view (body, lungs, ribs, ...) at ``size`` px (cached)."""
    ap = view == "AP"
    X, Y = grid(size)
    body = soft(np.sqrt((X / 0.92) ** 2 + ((Y - 0.1) / 1.25) ** 2), 0.05)
    dome = 0.52 + (0.06 if ap else 0.0)  # AP: shallower inspiration
    lungs = np.zeros_like(X)
    sides = {}
    for side, cx in (("right", -0.36), ("left", 0.36)):  # diaphragm domes cut the lungs
        d = np.sqrt(((X - cx) / 0.30) ** 2 + ((Y + 0.02) / 0.62) ** 2)
        dia = dome + 0.10 * ((X - cx) / 0.3) ** 2 - (0.04 if side == "right" else 0.0)
        sides[side] = soft(d, 0.08) * np.clip((dia - Y) / 0.03, 0, 1)
        lungs += sides[side]
    base = 0.10 + 0.42 * body - 0.30 * lungs
    med = soft(np.abs(X - 0.02) / (0.10 + 0.03 * (Y + 1)), 0.3) * np.clip((0.7 - Y) / 0.1, 0, 1)
    base += 0.06 * med
    ribs = np.zeros_like(X)  # curved bands across each hemithorax
    for k in range(9):
        curve = -0.62 + 0.135 * k + 0.35 * (np.abs(X) - 0.05) ** 2 - 0.12 * np.abs(X)
        ribs += np.exp(-(((Y - curve) / 0.018) ** 2))
    base += 0.07 * ribs * lungs
    for sgn in (-1, 1):  # clavicles
        clav = -0.68 + 0.25 * (sgn * X - 0.1)
        base += 0.12 * np.exp(-(((Y - clav) / 0.03) ** 2)) * (np.abs(X) < 0.6) * (sgn * X > 0.05)
    base += 0.06 * np.exp(-((X / 0.06) ** 2)) * body  # spine
    fluid_lateral = {
        side: np.clip((np.abs(X) - 0.15) / 0.5, 0, 1)
        * (np.sign(X) == (1 if side == "left" else -1))
        for side in sides
    }
    return {
        "base": base.astype(np.float32),
        "lungs": lungs.astype(np.float32),
        "dome": np.float32(dome),
        **{f"lung_{k}": v.astype(np.float32) for k, v in sides.items()},
        **{f"lateral_{k}": v.astype(np.float32) for k, v in fluid_lateral.items()},
    }


#: The knobs of a phantom drawn at its defaults (every contrast multiplier 1).
DEFAULT_KNOBS = PhantomKnobs()


def lesion_shapes(
    size: int,
    view: str,
    findings: dict[str, Finding],
    jitter: float,
    knobs: PhantomKnobs = DEFAULT_KNOBS,
) -> dict[str, np.ndarray]:
    """Where each drawn finding lies, before the acquisition geometry: maps in [0, 1].

    Keys: ``heart`` and ``open_lung`` (always), and each drawn observation with severity > 0
    (``Cardiomegaly`` is the enlarged heart itself). A lesion's size grows with its severity
    times its own ``extent``, and Consolidation's and Edema's sites move by its ``offset``. The
    painter multiplies these by the finding's density and texture; :func:`finegrain.data.phantom.truth.lesion_mask` thresholds
    them at 0.5, so drawing and masks cannot drift apart.
    """
    ap = view == "AP"
    a = anatomy(size, view)
    X, Y = grid(size)
    lungs, dome = a["lungs"], a["dome"]
    f = findings["Cardiomegaly"]
    cm = f.severity * f.extent * knobs.contrast(f, "Cardiomegaly")  # AP magnifies the heart
    width = (0.31 + jitter + 0.22 * cm) * (1.12 if ap else 1.0)
    height = (0.21 + 0.05 * cm) * (1.08 if ap else 1.0)
    heart = soft(np.sqrt(((X - 0.08) / width) ** 2 + ((Y - 0.32) / height) ** 2), 0.08)
    open_lung = lungs * (1 - heart)  # lung not covered by the heart: where opacities show
    shapes = {"heart": heart, "open_lung": open_lung}
    if f.severity > 0:
        shapes["Cardiomegaly"] = heart
    f = findings["Edema"]
    s = f.severity
    if s > 0:
        shapes["Edema"] = (
            np.exp(
                -((np.abs(X - f.offset_x) - 0.2) ** 2) / (2 * ((0.10 + 0.14 * s) * f.extent) ** 2)
                - (Y - (0.02 + f.offset_y)) ** 2 / (2 * ((0.18 + 0.2 * s) * f.extent) ** 2)
            )
            * open_lung
        )
    f = findings["Consolidation"]
    if f.severity > 0:
        cx, cy = LOBES[f.where]
        cx, cy = cx + f.offset_x, cy + f.offset_y
        r = (0.05 + 0.17 * f.severity) * f.extent
        shapes["Consolidation"] = np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * r * r))
    f = findings["Pleural Effusion"]
    if f.severity > 0:
        h = (0.05 + 0.50 * f.severity) * f.extent  # fluid height; the meniscus rises laterally
        sides = ("right", "left") if f.where == "bilateral" else (f.where,)
        fluid = np.zeros_like(X)
        for side in sides:
            level = dome + 0.04 - h * (0.4 + 0.6 * a[f"lateral_{side}"])
            fluid += np.clip((Y - level) / 0.04, 0, 1) * a[f"lung_{side}"]
        shapes["Pleural Effusion"] = fluid * (1 - heart)
    if findings["Atelectasis"].severity > 0:
        shapes["Atelectasis"] = np.exp(-(((Y - dome + 0.12) / 0.02) ** 2)) * open_lung
    return shapes


def affine(
    img: np.ndarray, degrees: float, scale: float, shift: tuple[float, float], fill: float
) -> np.ndarray:
    """Rotate/scale/shift a float image about its centre (Pillow, bilinear); ``shift`` in px."""
    size = img.shape[0]
    c = size / 2
    t = math.radians(degrees)
    ca, sa = math.cos(t) / scale, math.sin(t) / scale
    # output (x, y) samples input at A @ (x - c, y - c) + c + shift
    coeffs = (
        ca, sa, c - ca * c - sa * c + shift[0],
        -sa, ca, c + sa * c - ca * c + shift[1],
    )  # fmt: skip
    out = Image.fromarray(img.astype(np.float32), mode="F").transform(
        (size, size), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR, fillcolor=fill
    )
    return np.asarray(out, dtype=np.float32)


@dataclass(frozen=True)
class Acquisition:
    """The geometry of one frontal image: rotation (degrees), scale, shift (fraction of half the
    image side) and the heart-width jitter; enough to redraw its lesion masks at any size."""

    angle: float
    scale: float
    shift_x: float
    shift_y: float
    jitter: float


class Painter:
    """Vectorised radiograph-like drawing on a fixed grid (coordinates in [-1, 1]).

    ``knobs`` set each finding's drawn contrast (:meth:`PhantomKnobs.contrast`: visibility of
    the slight band, conspicuity of every severity).
    """

    def __init__(
        self, size: int, rng: np.random.Generator, knobs: PhantomKnobs = DEFAULT_KNOBS
    ) -> None:
        self.size = size
        self.rng = rng
        self.knobs = knobs
        self.X, self.Y = grid(size)
        self.up = {k: self._upsampler(size, k) for k in (8, 16)}
        # quantum noise: windows of one bank drawn once (drawing per image costs more than the
        # rest of the acquisition)
        self.noise = rng.standard_normal(8 * size * size, dtype=np.float32)

    @staticmethod
    def _upsampler(size: int, k: int) -> np.ndarray:
        """Bilinear (size, k) matrix: low-resolution noise ``A @ small @ A.T`` becomes smooth."""
        pos = np.linspace(0, k - 1, size, dtype=np.float32)
        lo = np.floor(pos).astype(int).clip(0, k - 2)
        w = pos - lo
        up = np.zeros((size, k), np.float32)
        up[np.arange(size), lo] = 1 - w
        up[np.arange(size), lo + 1] = w
        return up

    def texture(self, k: int = 8) -> np.ndarray:
        """Smooth zero-mean unit-variance-ish noise at ``k`` x ``k`` control points."""
        small = self.rng.standard_normal((k, k)).astype(np.float32)
        return self.up[k] @ small @ self.up[k].T

    def frontal(self, findings: dict[str, Finding], view: str) -> tuple[np.ndarray, Acquisition]:
        """A frontal (AP or PA) radiograph of the study's findings, uint8 (size, size), and its
        acquisition geometry."""
        rng = self.rng
        a = anatomy(self.size, view)
        X, Y, lungs = self.X, self.Y, a["lungs"]
        # the same random draws whatever the findings, so severity is the only difference
        lung_tex, haze_tex, blob_tex = self.texture(), self.texture(16), self.texture(16)
        jitter = float(rng.uniform(-0.02, 0.02))
        ang, scale = float(rng.uniform(-5, 5)), float(rng.uniform(0.95, 1.05))
        shift = rng.uniform(-0.04, 0.04, 2)
        shapes = lesion_shapes(self.size, view, findings, jitter, self.knobs)
        heart, open_lung = shapes["heart"], shapes["open_lung"]
        img = a["base"] - 0.024 * lungs * lung_tex
        img += heart * (0.28 * lungs + 0.03)
        vis = {obs: self.knobs.contrast(findings[obs], obs) for obs in findings}
        # each lesion's density: its severity's, times its own ``density`` and the contrast knobs
        density = {obs: findings[obs].density * vis[obs] for obs in findings}
        if "Edema" in shapes:
            s = findings["Edema"].severity
            img += 0.30 * s * density["Edema"] * shapes["Edema"] * (0.8 + 0.25 * haze_tex)
        if "Consolidation" in shapes:
            s = findings["Consolidation"].severity
            blob = np.clip(shapes["Consolidation"] * (1.2 + 0.5 * blob_tex), 0, 1)
            img += (0.05 + 0.30 * s) * density["Consolidation"] * blob * open_lung
        if "Pleural Effusion" in shapes:
            img += 0.30 * density["Pleural Effusion"] * shapes["Pleural Effusion"]
        if "Atelectasis" in shapes:
            s = findings["Atelectasis"].severity
            img += 0.10 * s * density["Atelectasis"] * shapes["Atelectasis"]
        if findings["Support Devices"].status == 1:
            line = np.exp(-(((X - 0.0 - 0.02 * Y) / 0.012) ** 2)) * (Y > -1) * (Y < -0.15)
            img += 0.35 * line
        # acquisition geometry: small rotation, scale and shift
        img = affine(img, ang, scale, tuple(shift * self.size / 2), fill=0.1)
        geometry = Acquisition(ang, scale, float(shift[0]), float(shift[1]), jitter)
        return self._acquire(img, view == "AP"), geometry

    def lateral(self, findings: dict[str, Finding]) -> np.ndarray:
        X, Y = self.X, self.Y
        body = soft(np.sqrt((X / 0.8) ** 2 + ((Y - 0.1) / 1.2) ** 2), 0.05)
        lung = soft(np.sqrt((X / 0.55) ** 2 + ((Y + 0.05) / 0.62) ** 2), 0.1)
        cm = findings["Cardiomegaly"].severity
        heart = soft(np.sqrt(((X + 0.22) / (0.25 + 0.15 * cm)) ** 2 + ((Y - 0.3) / 0.25) ** 2), 0.1)
        spine = soft(np.abs(X - 0.62) / 0.08, 0.3)
        img = 0.12 + 0.45 * body - 0.25 * lung * (1 + 0.08 * self.texture()) + 0.2 * heart
        img += 0.2 * spine * body
        f = findings["Pleural Effusion"]
        if f.severity > 0:
            img += 0.25 * np.clip((Y - 0.55 + 0.4 * f.severity) / 0.04, 0, 1) * lung
        return self._acquire(img, False)

    def _acquire(self, img: np.ndarray, ap: bool) -> np.ndarray:
        """Exposure (gain, gamma), quantum noise, AP's lower contrast; to uint8."""
        rng = self.rng
        gain = np.float32(rng.uniform(0.85, 1.15))
        gamma = np.float32(rng.uniform(0.8, 1.25))
        sigma = np.float32(rng.uniform(0.01, 0.035) * 255)
        levels = np.arange(4096, dtype=np.float32) / np.float32(4095)
        curve = levels**gamma  # exposure curve as a 4096-level lookup table (fast)
        if ap:
            curve = curve * np.float32(0.95) + np.float32(0.03)
        index = (np.clip(img * gain, 0, 1) * np.float32(4095)).astype(np.intp)
        img = curve[index] * np.float32(255)
        start = int(rng.integers(0, self.noise.size - img.size))  # a window of the noise bank
        img += self.noise[start : start + img.size].reshape(img.shape) * sigma
        return np.clip(img + np.float32(0.5), 0, 255).astype(np.uint8)
