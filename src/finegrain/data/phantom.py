"""A procedural chest-radiograph phantom written in the exact MIMIC-CXR-JPG layout.

``make_phantom(out)`` draws subjects with several studies in time order. Each study has a
latent severity in [0, 1] for Consolidation, Edema, Pleural Effusion and Cardiomegaly (plus a few
text-mostly findings), a frontal image (AP or PA, sometimes a lateral), a free-text report whose
wording follows the severity and its change since the prior study, and coarse CheXpert/NegBio-style
labels. The layout, file names, CSV names and columns are MIMIC-CXR-JPG's, so the phantom goes
through the same code path (``finegrain index --mimic``) as the real data.

Atypical positives are visually subtle by construction: a finding's severity lives in one of two
bands, *slight* (0.06-0.38, reported with slight words or as improving) and *significant*
(0.6-1.0). An improving finding moves into the slight band, so its current image is close to a
negative one; a typical (significant or worsening) finding is clearly drawn. See
``docs/phantom.md``.

>>> # make_phantom("phantom", studies=2000, size=128, seed=0)
"""

from __future__ import annotations

import gzip
import io
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from finegrain.io import default_mode
from finegrain.observations import ATYPICAL, OBSERVATIONS, TYPICAL

#: Official MIMIC-CXR-JPG CSV names (gzipped) and their columns.
CSV_PREFIX = "mimic-cxr-2.0.0"
METADATA_COLUMNS: tuple[str, ...] = (
    "dicom_id",
    "subject_id",
    "study_id",
    "PerformedProcedureStepDescription",
    "ViewPosition",
    "Rows",
    "Columns",
    "StudyDate",
    "StudyTime",
    "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)
SPLIT_COLUMNS: tuple[str, ...] = ("dicom_id", "study_id", "subject_id", "split")
LABEL_CSV_COLUMNS: tuple[str, ...] = ("subject_id", "study_id", *OBSERVATIONS)
TRUTH_FILE = "phantom-truth.csv"
TRUTH_COLUMNS: tuple[str, ...] = (
    "subject_id",
    "study_id",
    "observation",
    "severity",
    "prior_severity",
    "change",
    "status",
    "severity_term",
    "change_term",
    "subcategory",
    "drawn",
)

#: Findings drawn on the image with a continuous severity.
DRAWN: tuple[str, ...] = ("Consolidation", "Edema", "Pleural Effusion", "Cardiomegaly")
SLIGHT_BAND = (0.06, 0.38)
SIGNIFICANT_BAND = (0.60, 1.00)

#: Table 1 vocabulary used by the report templates: (normalised cue, words written).
SLIGHT_TERMS = {
    "low": ("trace", "tiny", "minimal"),
    "mid": ("small", "mild"),
    "high": ("mild-to-moderate", "mild"),
}
SIGNIFICANT_TERMS = {
    "low": ("moderate",),
    "mid": ("large", "substantial", "moderate-to-severe"),
    "high": ("severe", "massive", "large"),
}
#: (normalised Table 1 cue, verb phrase after the finding, adjective after a hedged finding)
IMPROVE_PHRASES = (
    ("improve", "has improved", "improved"),
    ("decrease", "has decreased", "decreased"),
    ("resolution", "is resolving", ""),
    ("clear", "is clearing", ""),
    ("improve", "is improved compared to the prior study", "improved"),
)
WORSEN_PHRASES = (
    ("worsen", "has worsened", "worsened"),
    ("increase", "has increased", "increased"),
    ("progress", "shows interval progression", ""),
    ("worsen", "is worse compared to the prior study", "worse"),
)
OBS_TERMS_AVOID = {  # severity words that read oddly for an observation
    "Consolidation": {"trace", "massive"},
    "Edema": {"tiny", "trace", "massive"},
    "Cardiomegaly": {"tiny", "trace", "small"},
}

NOUNS = {
    "Consolidation": ("consolidation", "airspace consolidation"),
    "Edema": ("pulmonary edema", "interstitial edema", "edema"),
    "Pleural Effusion": ("pleural effusion", "effusion"),
    "Cardiomegaly": ("cardiomegaly", "enlargement of the cardiac silhouette"),
    "Atelectasis": ("atelectasis", "bibasilar atelectasis"),
    "Pneumothorax": ("pneumothorax",),
}
LOBES = {  # name -> (x, y) centre in normalised image coordinates (image left = patient right)
    "right lower lobe": (-0.40, 0.32),
    "right upper lobe": (-0.36, -0.32),
    "right middle lobe": (-0.28, 0.12),
    "left lower lobe": (0.42, 0.34),
    "left upper lobe": (0.36, -0.30),
    "lingula": (0.30, 0.14),
}
INDICATIONS = (
    "___ year old man with shortness of breath  // eval for pneumonia",
    "___ year old woman with fever and cough  // ?pna",
    "___ year old man with chf  // eval for edema",
    "___ year old woman with dyspnea  // effusion?",
    "History: ___F with chest pain",
    "___ year old man s/p line placement  // line position",
    "___M with hypoxia",
)


@dataclass
class PhantomSummary:
    """What ``make_phantom`` wrote."""

    root: Path
    subjects: int = 0
    studies: int = 0
    images: int = 0
    frontal: int = 0
    lateral: int = 0
    views: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)  # images per split
    label_rows_missing: int = 0  # studies left out of the chexpert/negbio CSVs
    blank_label_rows: int = 0  # studies whose chexpert row has every label blank
    seconds: float = 0.0

    def format(self) -> str:
        return (
            f"phantom at {self.root}: {self.subjects} subjects, {self.studies} studies, "
            f"{self.images} images ({self.frontal} frontal, {self.lateral} lateral); "
            f"views {self.views}; splits {self.splits}; "
            f"{self.label_rows_missing} studies without a label row, "
            f"{self.blank_label_rows} with all labels blank; {self.seconds:.1f} s"
        )


@dataclass
class _Finding:
    severity: float = 0.0
    prior: float = 0.0
    change: str = ""  # new / improved / worsened / stable / resolved / ""
    status: int | None = None
    severity_term: str = ""
    change_term: str = ""  # normalised Table 1 change cue written in the report
    change_phrase: str = ""
    subcategory: str = ""
    where: str = ""  # lobe or side


# ----------------------------------------------------------------------------------------------
# trajectories and wording


def _band(rng: np.random.Generator, slight: bool) -> float:
    lo, hi = SLIGHT_BAND if slight else SIGNIFICANT_BAND
    return float(rng.uniform(lo, hi))


def _next_severity(rng: np.random.Generator, obs: str, prev: float) -> float:
    """One step of a subject's disease course for a drawn observation."""
    chronic = obs == "Cardiomegaly"
    onset = {"Consolidation": 0.22, "Edema": 0.18, "Pleural Effusion": 0.22, "Cardiomegaly": 0.16}
    if prev <= 0:
        return _band(rng, rng.random() < 0.5) if rng.random() < onset[obs] else 0.0
    slight = prev < SIGNIFICANT_BAND[0]
    u = rng.random()
    if not chronic and u < 0.18:
        return 0.0  # resolved
    if u < 0.50:  # improving: an improving finding is mostly slight now
        if slight:
            return max(SLIGHT_BAND[0], prev * rng.uniform(0.35, 0.7))
        return _band(rng, True) if rng.random() < 0.75 else max(0.6, prev - rng.uniform(0.2, 0.3))
    if u < 0.75:  # worsening
        if slight and rng.random() < 0.6:
            return _band(rng, False)
        return min(SLIGHT_BAND[1] if slight else 1.0, prev + rng.uniform(0.15, 0.3))
    lo, hi = SLIGHT_BAND if slight else SIGNIFICANT_BAND
    return float(np.clip(prev + rng.normal(0, 0.03), lo, hi))  # stable


def _severity_terms(obs: str, s: float) -> tuple[str, ...]:
    if s < SIGNIFICANT_BAND[0]:
        key = "low" if s < 0.15 else "mid" if s < 0.28 else "high"
        terms = SLIGHT_TERMS[key]
    else:
        key = "low" if s < 0.75 else "mid" if s < 0.9 else "high"
        terms = SIGNIFICANT_TERMS[key]
    bad = OBS_TERMS_AVOID.get(obs, set())
    kept = tuple(t for t in terms if t not in bad)
    return kept or (("mild",) if s < SIGNIFICANT_BAND[0] else ("moderate",))


def _word(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _describe(rng: np.random.Generator, obs: str, f: _Finding) -> None:
    """Choose status and the Table 1 cues for a drawn finding; set its true subcategory.

    The wording is constrained so that the paper's rule (severity cue first, then change cue,
    no cue -> typical) gives *atypical* exactly for the slight band.
    """
    s = f.severity
    if s <= 0:
        f.subcategory = ""
        return
    if rng.random() < 0.03:  # drawn but not reported (real reports omit things)
        f.status = None
        return
    slight = s < SIGNIFICANT_BAND[0]
    f.status = -1 if rng.random() < (0.25 if slight else 0.05) else 1
    change_cue = ""
    if f.change in ("improved", "worsened") and rng.random() < 0.85:
        change_cue = f.change
    want_severity = rng.random() < (0.8 if slight else 0.7)
    if slight and change_cue != "improved":
        want_severity = True  # otherwise the rule would call it typical
    if not slight and change_cue == "improved":
        want_severity = True  # severity takes precedence: still typical
    if want_severity:
        f.severity_term = _word(rng, _severity_terms(obs, s))
    if change_cue:
        phrases = IMPROVE_PHRASES if change_cue == "improved" else WORSEN_PHRASES
        if f.status == -1 or obs == "Cardiomegaly":  # hedged or heart: the adjective forms
            phrases = tuple(p for p in phrases if p[2])
        f.change_term, f.change_phrase = _word(rng, phrases)[:2]
        if f.status == -1 or obs == "Cardiomegaly":
            f.change_phrase = next(p[2] for p in phrases if p[1] == f.change_phrase)
    f.subcategory = ATYPICAL if slight else TYPICAL


def _sentence(rng: np.random.Generator, obs: str, f: _Finding) -> str:
    """One report sentence carrying the finding's status and cues."""
    noun = _word(rng, NOUNS[obs])
    sev = f.severity_term
    where = f.where
    if obs == "Pleural Effusion":
        noun = "bilateral pleural effusions" if where == "bilateral" else f"{where} {noun}"
    elif obs == "Consolidation":
        noun = f"{noun} in the {where}"
    if f.status == 0:
        if obs == "Cardiomegaly":
            return _word(rng, ("Heart size is normal.", "No cardiomegaly."))
        if f.change == "resolved" and rng.random() < 0.5:
            base = _word(rng, NOUNS[obs])
            return f"Previously seen {base} has resolved."
        if obs == "Pleural Effusion" and rng.random() < 0.3:
            return "No large pleural effusion."  # distractor: a severity word under negation
        return _word(rng, ("No {n}.", "There is no {n}.", "No evidence of {n}.")).format(
            n=_word(rng, NOUNS[obs])
        )
    chg_phrase = f.change_phrase
    subject = f"{sev} {noun}" if sev else noun
    if f.status == -1:
        if chg_phrase:
            return f"Possible {subject}, {chg_phrase} compared to the prior study."
        return _word(
            rng,
            (
                "Possible {s}.",
                "Cannot exclude {s}.",
                "{S} cannot be excluded.",
                "Findings may represent {s}.",
            ),
        ).format(s=subject, S=subject[:1].upper() + subject[1:])
    if chg_phrase and obs == "Cardiomegaly":
        text = f"{subject[:1].upper()}{subject[1:]}, {chg_phrase} compared to the prior study."
    elif chg_phrase:
        text = f"{subject[:1].upper()}{subject[1:]} {chg_phrase}."
    elif obs == "Cardiomegaly" and sev and rng.random() < 0.5:
        text = (
            f"The heart is {sev} enlarged."
            if "-" not in sev
            else f"{sev.capitalize()} cardiomegaly."
        )
    else:
        text = _word(rng, ("{S}.", "There is {s}.", "{S} is present.")).format(
            s=subject, S=subject[:1].upper() + subject[1:]
        )
    if obs == "Pleural Effusion" and sev in SLIGHT_TERMS["mid"] and rng.random() < 0.1:
        text += " No large effusion."  # distractor
    return text


# ----------------------------------------------------------------------------------------------
# drawing


class _Painter:
    """Vectorised radiograph-like drawing on a fixed grid (coordinates in [-1, 1])."""

    def __init__(self, size: int, rng: np.random.Generator):
        self.size = size
        self.rng = rng
        t = ((np.arange(size) + 0.5) / size * 2 - 1).astype(np.float32)
        self.Y, self.X = np.meshgrid(t, t, indexing="ij")
        self.up = {k: self._upsampler(size, k) for k in (8, 16)}
        self._views: dict[str, dict[str, np.ndarray]] = {}
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

    @staticmethod
    def _soft(d: np.ndarray, edge: float) -> np.ndarray:
        return np.clip((1.0 - d) / edge, 0.0, 1.0)

    def _anatomy(self, ap: bool) -> dict[str, np.ndarray]:
        """The fixed anatomy of a view (body, lungs, ribs, ...), computed once per painter."""
        X, Y = self.X, self.Y
        soft = self._soft
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
            base += (
                0.12 * np.exp(-(((Y - clav) / 0.03) ** 2)) * (np.abs(X) < 0.6) * (sgn * X > 0.05)
            )
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

    def frontal(self, findings: dict[str, _Finding], view: str) -> np.ndarray:
        """A frontal (AP or PA) radiograph of the study's findings, uint8 (size, size)."""
        rng = self.rng
        ap = view == "AP"
        if view not in self._views:
            self._views[view] = self._anatomy(ap)
        a = self._views[view]
        X, Y, lungs, dome = self.X, self.Y, a["lungs"], a["dome"]
        # the same random draws whatever the findings, so severity is the only difference
        lung_tex, haze_tex, blob_tex = self.texture(), self.texture(16), self.texture(16)
        jitter = rng.uniform(-0.02, 0.02)
        ang, scale = rng.uniform(-5, 5), rng.uniform(0.95, 1.05)
        shift = rng.uniform(-0.04, 0.04, 2) * self.size / 2
        img = a["base"] - 0.024 * lungs * lung_tex
        cm = findings["Cardiomegaly"].severity  # heart width; AP magnifies the heart
        width = (0.31 + jitter + 0.22 * cm) * (1.12 if ap else 1.0)
        height = (0.21 + 0.05 * cm) * (1.08 if ap else 1.0)
        heart = self._soft(np.sqrt(((X - 0.08) / width) ** 2 + ((Y - 0.32) / height) ** 2), 0.08)
        img += heart * (0.28 * lungs + 0.03)
        open_lung = lungs * (1 - heart)  # lung not covered by the heart: where opacities show
        # findings
        s = findings["Edema"].severity
        if s > 0:
            hila = np.exp(
                -((np.abs(X) - 0.2) ** 2) / (2 * (0.10 + 0.14 * s) ** 2)
                - (Y - 0.02) ** 2 / (2 * (0.18 + 0.2 * s) ** 2)
            )
            img += 0.30 * s * hila * open_lung * (0.8 + 0.25 * haze_tex)
        f = findings["Consolidation"]
        if f.severity > 0:
            cx, cy = LOBES[f.where]
            r = 0.05 + 0.17 * f.severity
            blob = np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * r * r))
            blob = np.clip(blob * (1.2 + 0.5 * blob_tex), 0, 1)
            img += (0.05 + 0.30 * f.severity) * blob * open_lung
        f = findings["Pleural Effusion"]
        if f.severity > 0:
            h = 0.05 + 0.50 * f.severity  # fluid height; the meniscus rises laterally
            sides = ("right", "left") if f.where == "bilateral" else (f.where,)
            for side in sides:
                level = dome + 0.04 - h * (0.4 + 0.6 * a[f"lateral_{side}"])
                fluid = np.clip((Y - level) / 0.04, 0, 1) * a[f"lung_{side}"]
                img += 0.30 * fluid * (1 - heart)
        f = findings["Atelectasis"]
        if f.severity > 0:
            band = np.exp(-(((Y - dome + 0.12) / 0.02) ** 2)) * open_lung
            img += 0.10 * f.severity * band
        if findings["Support Devices"].status == 1:
            line = np.exp(-(((X - 0.0 - 0.02 * Y) / 0.012) ** 2)) * (Y > -1) * (Y < -0.15)
            img += 0.35 * line
        # acquisition geometry: small rotation, scale and shift
        img = self._affine(img, ang, scale, shift)
        return self._acquire(img, ap)

    def _affine(self, img: np.ndarray, degrees: float, scale: float, shift) -> np.ndarray:
        """Rotate/scale/shift a float image about its centre (Pillow, bilinear)."""
        c = self.size / 2
        t = math.radians(degrees)
        ca, sa = math.cos(t) / scale, math.sin(t) / scale
        # output (x, y) samples input at A @ (x - c, y - c) + c + shift
        coeffs = (
            ca, sa, c - ca * c - sa * c + shift[0],
            -sa, ca, c + sa * c - ca * c + shift[1],
        )  # fmt: skip
        out = Image.fromarray(img.astype(np.float32), mode="F").transform(
            (self.size, self.size),
            Image.Transform.AFFINE,
            coeffs,
            Image.Resampling.BILINEAR,
            fillcolor=0.1,
        )
        return np.asarray(out, dtype=np.float32)

    def lateral(self, findings: dict[str, _Finding]) -> np.ndarray:
        X, Y = self.X, self.Y
        soft = self._soft
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


# ----------------------------------------------------------------------------------------------
# the study generator


def _dicom_id(rng: np.random.Generator) -> str:
    return "-".join(f"{int(v):08x}" for v in rng.integers(0, 2**32, 5, dtype=np.uint64))


def _report(rng, findings: dict[str, _Finding], view: str, has_prior: bool) -> str:
    exam = (
        "CHEST (PORTABLE AP)" if view == "AP" else _word(rng, ("CHEST (PA AND LAT)", "CHEST (PA)"))
    )
    order = list(findings)
    rng.shuffle(order)
    sentences: list[str] = []
    impression: list[str] = []
    for obs in order:
        f = findings[obs]
        if obs in ("No Finding",) or f.status is None:
            continue
        if obs == "Support Devices":
            sentences.append(
                _word(
                    rng,
                    (
                        "Endotracheal tube terminates 4 cm above the carina.",
                        "Right PICC line tip is in the mid SVC.",
                        "Nasogastric tube courses below the diaphragm.",
                    ),
                )
            )
            continue
        if obs == "Pneumonia":
            sentences.append("Findings may represent pneumonia.")
            impression.append("Findings may represent pneumonia.")
            continue
        if obs == "Fracture":
            sentences.append("Healed left rib fractures are noted.")
            continue
        sentence = _sentence(rng, obs, f)
        sentences.append(sentence)
        if f.status in (1, -1) and len(impression) < 2:
            impression.append(sentence)
    if rng.random() < 0.15:
        sentences.append("The minor fissure is unremarkable.")  # distractor, not a severity
    if rng.random() < 0.3:
        sentences.append("Osseous structures are intact.")
    if not impression:
        impression = [
            _word(rng, ("No acute cardiopulmonary process.", "No acute intrathoracic process."))
        ]
    comparison = "___" if has_prior else "None."
    return (
        "                                 FINAL REPORT\n"
        f" EXAMINATION:  {exam}\n \n"
        f" INDICATION:  {_word(rng, INDICATIONS)}\n \n"
        f" TECHNIQUE:  {'Portable AP chest radiograph' if view == 'AP' else 'PA and lateral views of the chest'}.\n \n"
        f" COMPARISON:  {comparison}\n \n"
        " FINDINGS: \n \n"
        f" {' '.join(sentences)}\n \n"
        " IMPRESSION: \n \n"
        f" {' '.join(impression)}\n"
    )


def _study_findings(rng, prev: dict[str, _Finding] | None, view: str) -> dict[str, _Finding]:
    out: dict[str, _Finding] = {obs: _Finding() for obs in OBSERVATIONS}
    for obs in DRAWN:
        p = prev[obs].severity if prev else 0.0
        s = _next_severity(rng, obs, p)
        f = out[obs]
        f.severity, f.prior = s, p
        if prev and p > 0 and s > 0:
            d = s - p
            f.change = "improved" if d < -0.08 else "worsened" if d > 0.08 else "stable"
        elif prev and p > 0:
            f.change = "resolved"
        elif prev and s > 0:
            f.change = "new"
        if obs == "Consolidation":
            f.where = prev[obs].where if prev and prev[obs].where else _word(rng, tuple(LOBES))
        if obs == "Pleural Effusion":
            f.where = (
                prev[obs].where
                if prev and prev[obs].where
                else _word(rng, ("right", "left", "bilateral", "left", "right"))
            )
        _describe(rng, obs, f)
        if s <= 0:
            negate = {"Pleural Effusion": 0.6, "Cardiomegaly": 0.45}.get(obs, 0.4)
            if f.change == "resolved" or rng.random() < negate:
                f.status = 0
    # text-mostly findings
    a = out["Atelectasis"]
    if rng.random() < 0.15:
        a.severity = _band(rng, rng.random() < 0.6)
        a.where = "bases"
        _describe(rng, "Atelectasis", a)
    px = out["Pneumothorax"]
    if rng.random() < 0.02:
        px.severity = _band(rng, True)
        _describe(rng, "Pneumothorax", px)
    elif rng.random() < 0.6:
        px.status = 0
    sd = out["Support Devices"]
    if rng.random() < (0.5 if view == "AP" else 0.05):
        sd.status, sd.subcategory = 1, TYPICAL
    if out["Consolidation"].status in (1, -1) and rng.random() < 0.3:
        out["Pneumonia"].status, out["Pneumonia"].subcategory = -1, TYPICAL
    if rng.random() < 0.03:
        out["Fracture"].status, out["Fracture"].subcategory = 1, TYPICAL
    pathology = [o for o in OBSERVATIONS if o not in ("No Finding", "Support Devices")]
    if not any(out[o].status in (1, -1) for o in pathology):
        out["No Finding"].status = 1  # no fine label for "No Finding"
    return out


def _coarse(status: int | None) -> float:
    return np.nan if status is None else float(status)


def make_phantom(
    out: str | Path,
    *,
    studies: int = 2000,
    size: int = 128,
    seed: int = 0,
    progress: bool = False,
) -> PhantomSummary:
    """Write a MIMIC-CXR-JPG-shaped phantom of ``studies`` studies with ``size`` px JPEGs.

    Deterministic for a given ``seed`` (same bytes for CSVs, reports and images).
    Returns a :class:`PhantomSummary`; ``phantom-truth.csv`` holds the true severity, change,
    status and subcategory per study and observation.
    """
    if studies < 1:
        raise ValueError(f"studies must be >= 1, got {studies}")
    if size < 16:
        raise ValueError(f"size must be >= 16 px, got {size}")
    start = time.perf_counter()
    final = Path(out)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise FileExistsError(f"phantom output {final} exists and is not an empty folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    # the whole tree is written in a hidden staging folder, then renamed into place: a killed
    # run leaves no half-written phantom (and no per-file fsync is needed)
    root = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    os.chmod(root, default_mode(directory=True))  # mkdtemp's 0700 would lock out other users
    try:
        summary = _write_phantom(root, studies=studies, size=size, seed=seed, progress=progress)
        if final.exists():
            final.rmdir()
        os.replace(root, final)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    summary.root = final
    summary.seconds = time.perf_counter() - start
    return summary


def _write_phantom(root: Path, *, studies: int, size: int, seed: int, progress: bool):
    import pandas as pd
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    painter = _Painter(size, rng)

    # subjects with 1-5 studies each, in time order
    counts: list[int] = []
    while sum(counts) < studies:
        counts.append(int(rng.choice([1, 2, 3, 4, 5], p=[0.3, 0.25, 0.2, 0.15, 0.1])))
    counts[-1] -= sum(counts) - studies
    n_subj = len(counts)
    subject_ids = np.sort(rng.choice(10_000_000, n_subj, replace=False)) + 10_000_000
    study_ids = rng.choice(10_000_000, studies, replace=False) + 50_000_000
    split_of = [
        str(v) for v in rng.choice(["train", "validate", "test"], n_subj, p=[0.7, 0.15, 0.15])
    ]

    meta_rows, split_rows, label_rows, truth_rows = [], [], [], []
    summary = PhantomSummary(root=root, subjects=n_subj, studies=studies)
    bar = tqdm(total=studies, desc="phantom", unit="study", disable=not progress)
    k = 0
    for si, n in enumerate(counts):
        subj = str(subject_ids[si])
        date = 2110_01_01 + int(rng.integers(0, 70)) * 10000
        prev = None
        for _ in range(n):
            study = str(study_ids[k])
            k += 1
            view = "AP" if rng.random() < 0.45 else "PA"
            findings = _study_findings(rng, prev, view)
            report = _report(rng, findings, view, prev is not None)
            sdir = root / "files" / f"p{subj[:2]}" / f"p{subj}"
            (sdir / f"s{study}").mkdir(parents=True, exist_ok=True)
            (sdir / f"s{study}.txt").write_text(report, encoding="utf-8")
            date += int(rng.integers(1, 40))
            images = [(view, painter.frontal(findings, view))]
            if view == "PA" and rng.random() < 0.6 or view == "AP" and rng.random() < 0.05:
                images.append(
                    ("LL" if rng.random() < 0.1 else "LATERAL", painter.lateral(findings))
                )
            for img_view, pixels in images:
                dicom = _dicom_id(rng)
                buf = io.BytesIO()
                Image.fromarray(pixels, mode="L").save(buf, format="JPEG", quality=90)
                (sdir / f"s{study}" / f"{dicom}.jpg").write_bytes(buf.getvalue())
                recorded_view = img_view if rng.random() > 0.01 else ""  # MIMIC has blanks too
                frontal = img_view in ("AP", "PA")
                summary.frontal += frontal
                summary.lateral += not frontal
                summary.views[recorded_view or "missing"] = (
                    summary.views.get(recorded_view or "missing", 0) + 1
                )
                summary.splits[split_of[si]] = summary.splits.get(split_of[si], 0) + 1
                meta_rows.append(
                    (
                        dicom,
                        subj,
                        study,
                        "CHEST (PORTABLE AP)" if view == "AP" else "CHEST (PA AND LAT)",
                        recorded_view,
                        size,
                        size,
                        date,
                        f"{int(rng.integers(0, 24)):02d}{int(rng.integers(0, 60)):02d}"
                        f"{int(rng.integers(0, 60)):02d}.{int(rng.integers(0, 1000)):03d}",
                        "CHEST (PORTABLE AP)" if view == "AP" else "CHEST (PA AND LAT)",
                        {"AP": "antero-posterior", "PA": "postero-anterior"}.get(
                            img_view, "lateral" if img_view == "LATERAL" else "left lateral"
                        ),
                        "Recumbent" if view == "AP" else "Erect",
                    )
                )
                split_rows.append((dicom, study, subj, split_of[si]))
            row = [int(subj), int(study)] + [_coarse(findings[o].status) for o in OBSERVATIONS]
            label_rows.append(row)
            for obs in OBSERVATIONS:
                f = findings[obs]
                truth_rows.append(
                    (
                        subj,
                        study,
                        obs,
                        round(f.severity, 4),
                        round(f.prior, 4),
                        f.change,
                        "" if f.status is None else f.status,
                        f.severity_term,
                        f.change_term,
                        f.subcategory if f.status in (1, -1) else "",
                        obs in DRAWN,
                    )
                )
            prev = findings
            bar.update(1)
    bar.close()
    summary.images = len(meta_rows)

    # coarse labels as a labeler gives them: a little noise, NegBio disagreeing a little more
    chexpert = pd.DataFrame(label_rows, columns=list(LABEL_CSV_COLUMNS))
    values = chexpert[list(OBSERVATIONS)].to_numpy()
    flip = rng.random(values.shape) < 0.015
    values = np.where(flip & (values == -1), 1.0, np.where(flip & (values == 1), -1.0, values))
    missed = (rng.random(values.shape) < 0.01) & ~np.isnan(values)
    values = np.where(missed, np.nan, values)
    blank_rows = rng.random(len(values)) < 0.01
    values[blank_rows] = np.nan
    chexpert[list(OBSERVATIONS)] = values
    negbio = chexpert.copy()
    nv = negbio[list(OBSERVATIONS)].to_numpy()
    disagree = (rng.random(nv.shape) < 0.04) & ~np.isnan(nv)  # uncertain <-> positive,
    swapped = np.select([nv == -1, nv == 1], [1.0, -1.0], default=np.nan)  # negative -> blank
    nv = np.where(disagree, swapped, nv)
    negbio[list(OBSERVATIONS)] = nv
    no_row = rng.random(len(chexpert)) < 0.01
    summary.label_rows_missing = int(no_row.sum())
    summary.blank_label_rows = int((blank_rows & ~no_row).sum())
    order = np.argsort(chexpert["study_id"].to_numpy(), kind="stable")
    keep = order[~no_row[order]]

    def write_gz(name: str, frame) -> None:
        text = frame.to_csv(index=False, lineterminator="\n").encode()
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
            gz.write(text)
        (root / f"{CSV_PREFIX}-{name}.csv.gz").write_bytes(buf.getvalue())

    write_gz("chexpert", chexpert.iloc[keep])
    write_gz("negbio", negbio.iloc[keep])
    meta = pd.DataFrame(meta_rows, columns=list(METADATA_COLUMNS))
    write_gz("metadata", meta)
    write_gz("split", pd.DataFrame(split_rows, columns=list(SPLIT_COLUMNS)))
    truth = pd.DataFrame(truth_rows, columns=list(TRUTH_COLUMNS))
    (root / TRUTH_FILE).write_text(truth.to_csv(index=False, lineterminator="\n"), encoding="utf-8")
    return summary
