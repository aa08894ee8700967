"""The report's reader (``continuum`` design): whether a degree word is written, and which, comes
from the true severity through cut-points that vary from report to report.

A reader looks at a finding of true severity ``s`` and sees ``s + δ``, with ``δ ~ N(0,
reader_noise)`` drawn afresh for each report (the same as shifting that report's cut-points by
``-δ``). What they see decides:

- **whether** a degree word is written: with probability ``word_slight[obs]`` when they see the
  finding slight (below :data:`~finegrain.data.phantom.finding.SEVERITY_CUT`), and
  ``word_significant[obs]`` when they see it significant. The two rates are solved
  (:func:`word_rates`) so that the shares of positives that are atypical and that carry no cue at
  all are the calibration's (real reports: OpenI). In real reports degree words are mostly slight
  ones ("mild", "small"), so a significant finding is usually named without a degree;
- **which**: the Table 1 word of the severity seen (:data:`WORD_BINS`).

Change words follow the disease course: an improved or worsened finding is written so with
probability :data:`CHANGE_WORD`. The subcategory is the paper's rule over the words written
(:func:`finegrain.division.divide`), so the mined label and the image disagree where the reader
misjudged the degree, where no word was written (typical by the rule) and where a change word
decides (an improved finding may still be significant).

How noisy the reader is comes from a real anchor (:func:`reader_for`): per observation, the
noise is solved so that the mined subcategory agrees with the image's slight / significant on
``reader_agreement`` (default 86.5 %) of the positives the reader graded with a degree word: as
often as two radiologists agree with each other on the public COVID-19 collection's Brixia
scores (88 images scored by a senior and a junior radiologist, global score 0-18; split at a
middle cut, >= 6 to >= 11, they agree on 84-89 % of images, Cohen's κ 0.66-0.77; Spearman 0.89;
docs/phantom.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from finegrain.data.phantom.finding import SEVERITY_CUT, Finding
from finegrain.data.phantom.wording import IMPROVE_PHRASES, WORSEN_PHRASES, severity_terms, word
from finegrain.division import divide
from finegrain.errors import FinegrainError
from finegrain.observations import TYPICAL

#: Probability that an improved or worsened finding's report says so. Real reports' cues are
#: mostly atypical (OpenI: 19 % of Consolidation positives carry a cue, all atypical), which
#: leaves little room for worsening words.
CHANGE_WORD = 0.3
#: Severity seen -> Table 1 words: (upper edges of the three slight bins, of the three
#: significant bins) around :data:`SEVERITY_CUT`.
WORD_BINS = ((0.15, 0.30), (0.70, 0.85))
#: The default agreement of the mined subcategory with the image among graded positives.
DEFAULT_AGREEMENT = 0.865
#: How far the shares the solved rates give may lie from the calibration's before it counts as
#: unreachable (the calibration's own 95 % intervals are wider: 16-173 OpenI positives).
TOLERANCE = 0.05


def read(
    rng: np.random.Generator,
    obs: str,
    f: Finding,
    *,
    reader_noise: float,
    word_slight: float,
    word_significant: float,
) -> None:
    """Word a positive or uncertain finding as a reader does; set its terms and subcategory.

    ``f.status``, ``f.severity`` and ``f.change`` are already set. A finding the image does not
    show (uncertain over nothing, or over another finding) gets no degree word.
    """
    f.severity_term = f.change_term = f.change_phrase = ""
    if f.status not in (1, -1):
        f.subcategory = ""
        return
    if f.severity <= 0:
        f.subcategory = TYPICAL
        return
    seen = float(np.clip(f.severity + rng.normal(0.0, reader_noise), 0.01, 1.0))
    f.reader_severity = seen
    rate = word_slight if seen < SEVERITY_CUT else word_significant
    if rng.random() < rate:
        f.severity_term = word(rng, severity_terms(obs, seen, SEVERITY_CUT, *WORD_BINS))
    if f.change in ("improved", "worsened") and rng.random() < CHANGE_WORD:
        phrases = IMPROVE_PHRASES if f.change == "improved" else WORSEN_PHRASES
        if f.status == -1 or obs == "Cardiomegaly":  # hedged or heart: the adjective forms
            phrases = tuple(p for p in phrases if p[2])
        term, phrase, adjective = word(rng, phrases)
        f.change_term = term
        f.change_phrase = adjective if f.status == -1 or obs == "Cardiomegaly" else phrase
    f.subcategory = divide(f.severity_term or None, f.change_term or None)


def seen_slight(severities: np.ndarray, reader_noise: float) -> np.ndarray:
    """Probability that a reader sees each severity as slight."""
    if reader_noise <= 0:
        return (severities < SEVERITY_CUT).astype(float)
    z = (SEVERITY_CUT - np.asarray(severities, dtype=float)) / reader_noise
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def word_rates(
    severities: Sequence[float],
    changes: Sequence[str],
    *,
    reader_noise: float,
    atypical: float,
    no_cue: float,
    observation: str = "",
) -> tuple[float, float]:
    """``(word_slight, word_significant)``: degree-word rates in [0, 1] that give the ``atypical``
    and ``no_cue`` shares among positives of these ``severities`` and disease-course ``changes``.

    The expected shares are linear in the two rates: bounded least squares
    (:func:`scipy.optimize.lsq_linear`) finds them, exactly where rates in [0, 1] reach both. A
    :class:`FinegrainError` when the closest shares miss by more than :data:`TOLERANCE`.

    >>> s = np.linspace(0.05, 1.0, 2000)
    >>> rates = word_rates(s, [""] * 2000, reader_noise=0.0, atypical=0.2, no_cue=0.7)
    >>> [round(r, 3) for r in rates]
    [0.422, 0.19]
    """
    from scipy.optimize import lsq_linear

    s = np.asarray(severities, dtype=float)
    if len(s) == 0:
        raise FinegrainError(f"{observation}: no positives to solve the reader's word rates")
    slight = seen_slight(s, reader_noise)
    significant = 1.0 - slight
    change = np.array([CHANGE_WORD if c in ("improved", "worsened") else 0.0 for c in changes])
    improved = np.array([c == "improved" for c in changes], dtype=float)
    quiet = 1.0 - change  # no change word
    atypical_change = change * improved  # an improving word that decides (no degree word)
    # cued share:    1 - mean(quiet) + ws mean(slight quiet) + wg mean(significant quiet)
    # atypical share: mean(atypical_change) + ws mean(slight (1 - atypical_change))
    #                 - wg mean(significant atypical_change)
    matrix = np.array(
        [
            [np.mean(slight * quiet), np.mean(significant * quiet)],
            [np.mean(slight * (1.0 - atypical_change)), -np.mean(significant * atypical_change)],
        ]
    )
    target = np.array([np.mean(quiet) - no_cue, atypical - np.mean(atypical_change)])
    rates = lsq_linear(matrix, target, bounds=(0.0, 1.0)).x
    miss = np.abs(matrix @ rates - target)
    if miss.max() > TOLERANCE:
        got_cue, got_atypical = (
            1 - no_cue - (target[0] - (matrix @ rates)[0]),
            atypical - (target[1] - (matrix @ rates)[1]),
        )
        raise FinegrainError(
            f"{observation}: the calibration's shares of positives (atypical {atypical:.3f}, "
            f"with a cue {1 - no_cue:.3f}) cannot be reached by this phantom's reader (closest: "
            f"{got_atypical:.3f}, {got_cue:.3f}); change slight_share or reader_noise"
        )
    return float(rates[0]), float(rates[1])


def graded_agreement(
    severities: np.ndarray, reader_noise: float, word_slight: float, word_significant: float
) -> float:
    """The expected share of graded positives (a degree word written) whose word's side agrees
    with the image's slight / significant."""
    s = np.asarray(severities, dtype=float)
    slight = seen_slight(s, reader_noise)
    graded_slight, graded_significant = word_slight * slight, word_significant * (1.0 - slight)
    truly_slight = s < SEVERITY_CUT
    agree = np.where(truly_slight, graded_slight, graded_significant).sum()
    return float(agree / (graded_slight + graded_significant).sum())


def reader_for(
    severities: Sequence[float],
    changes: Sequence[str],
    *,
    agreement: float,
    atypical: float,
    no_cue: float,
    observation: str = "",
) -> tuple[float, float, float]:
    """``(reader_noise, word_slight, word_significant)`` of a reader of these positives whose
    degree words agree with the image on ``agreement`` of the graded positives (the word rates
    solved by :func:`word_rates` at each noise; bisection over the noise in [0, 1])."""
    s = np.asarray(severities, dtype=float)

    def solved(noise: float) -> tuple[float, float, float] | None:
        """(agreement, word rates) at ``noise``; ``None`` where no word rates reach the shares
        (a noisier reader sees too few findings slight)."""
        try:
            ws, wg = word_rates(
                s, changes, reader_noise=noise, atypical=atypical, no_cue=no_cue,
                observation=observation,
            )  # fmt: skip
        except FinegrainError:
            return None
        return graded_agreement(s, noise, ws, wg), ws, wg

    if solved(0.0) is None:  # the shares cannot be reached even by a reader without noise
        word_rates(s, changes, reader_noise=0.0, atypical=atypical, no_cue=no_cue,
                   observation=observation)  # fmt: skip
    low, high = 0.0, 1.0
    for _ in range(40):  # agreement falls as the noise grows
        middle = 0.5 * (low + high)
        found = solved(middle)
        if found is not None and found[0] > agreement:
            low = middle
        else:
            high = middle
    noise = 0.5 * (low + high)
    found = solved(noise) or solved(low)
    if found is None or abs(found[0] - agreement) > 0.005:
        reached = "none" if found is None else f"{found[0]:.3f}"
        raise FinegrainError(
            f"{observation}: no reader reaches reader_agreement {agreement} with these shares "
            f"(closest {reached}); change slight_share or reader_agreement"
        )
    return (noise, *found[1:])
