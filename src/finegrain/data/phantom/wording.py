"""Report wording: status and Table 1 cues of a finding, its sentence, and the whole report.

In the ``bands`` design (:func:`describe`) the wording is constrained so that the paper's rule
(severity cue first, then change cue, no cue -> typical) gives *atypical* exactly for the slight
band; in the ``continuum`` design a reader chooses the cues (:mod:`~finegrain.data.phantom.reader`).
The sentences and the report are the same in both.
"""

from __future__ import annotations

import numpy as np

from finegrain.data.phantom.finding import SIGNIFICANT_BAND, Finding
from finegrain.observations import ATYPICAL, TYPICAL

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
INDICATIONS = (
    "___ year old man with shortness of breath  // eval for pneumonia",
    "___ year old woman with fever and cough  // ?pna",
    "___ year old man with chf  // eval for edema",
    "___ year old woman with dyspnea  // effusion?",
    "History: ___F with chest pain",
    "___ year old man s/p line placement  // line position",
    "___M with hypoxia",
)


def severity_terms(
    obs: str,
    s: float,
    cut: float = SIGNIFICANT_BAND[0],
    slight_bins: tuple[float, float] = (0.15, 0.28),
    significant_bins: tuple[float, float] = (0.75, 0.9),
) -> tuple[str, ...]:
    """The Table 1 words for severity ``s`` of ``obs``: slight ones below ``cut`` (low / mid /
    high by ``slight_bins``), significant ones from it on (by ``significant_bins``). The
    defaults are the bands design's."""
    slight = s < cut
    low, mid = slight_bins if slight else significant_bins
    key = "low" if s < low else "mid" if s < mid else "high"
    terms = (SLIGHT_TERMS if slight else SIGNIFICANT_TERMS)[key]
    bad = OBS_TERMS_AVOID.get(obs, set())
    kept = tuple(t for t in terms if t not in bad)
    return kept or (("mild",) if slight else ("moderate",))


def word(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def describe(rng: np.random.Generator, obs: str, f: Finding, cued: bool) -> None:
    """Choose the Table 1 cues written for a positive or uncertain finding; set its subcategory.

    ``f.status`` and ``f.severity`` are already set. Without a cue (``cued`` false) the report
    names the finding only, and the paper's rule calls it typical whatever the image shows. With
    a cue the wording is constrained so that the rule (severity cue first, then change cue)
    gives *atypical* exactly for the slight band.
    """
    f.severity_term = f.change_term = f.change_phrase = ""
    if f.status not in (1, -1):
        f.subcategory = ""
        return
    s = f.severity
    if not cued or s <= 0:
        f.subcategory = TYPICAL
        return
    slight = s < SIGNIFICANT_BAND[0]
    change_cue = ""
    if f.change in ("improved", "worsened") and rng.random() < 0.85:
        change_cue = f.change
    want_severity = rng.random() < (0.8 if slight else 0.7)
    if slight and change_cue != "improved":
        want_severity = True  # otherwise the rule would call it typical
    if not slight and change_cue == "improved":
        want_severity = True  # severity takes precedence: still typical
    if not change_cue:
        want_severity = True  # a cued finding carries at least one cue
    if want_severity:
        f.severity_term = word(rng, severity_terms(obs, s))
    if change_cue:
        phrases = IMPROVE_PHRASES if change_cue == "improved" else WORSEN_PHRASES
        if f.status == -1 or obs == "Cardiomegaly":  # hedged or heart: the adjective forms
            phrases = tuple(p for p in phrases if p[2])
        f.change_term, f.change_phrase = word(rng, phrases)[:2]
        if f.status == -1 or obs == "Cardiomegaly":
            f.change_phrase = next(p[2] for p in phrases if p[1] == f.change_phrase)
    f.subcategory = ATYPICAL if slight else TYPICAL


def _sentence(rng: np.random.Generator, obs: str, f: Finding) -> str:
    """One report sentence carrying the finding's status and cues."""
    noun = word(rng, NOUNS[obs])
    sev = f.severity_term
    where = f.where
    if obs == "Pleural Effusion":
        noun = "bilateral pleural effusions" if where == "bilateral" else f"{where} {noun}"
    elif obs == "Consolidation":
        noun = f"{noun} in the {where}"
    if f.status == 0:
        if obs == "Cardiomegaly":
            return word(rng, ("Heart size is normal.", "No cardiomegaly."))
        if f.change == "resolved" and rng.random() < 0.5:
            base = word(rng, NOUNS[obs])
            return f"Previously seen {base} has resolved."
        if obs == "Pleural Effusion" and rng.random() < 0.3:
            return "No large pleural effusion."  # distractor: a severity word under negation
        return word(rng, ("No {n}.", "There is no {n}.", "No evidence of {n}.")).format(
            n=word(rng, NOUNS[obs])
        )
    chg_phrase = f.change_phrase
    subject = f"{sev} {noun}" if sev else noun
    if f.status == -1:
        if chg_phrase:
            return f"Possible {subject}, {chg_phrase} compared to the prior study."
        return word(
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
        text = word(rng, ("{S}.", "There is {s}.", "{S} is present.")).format(
            s=subject, S=subject[:1].upper() + subject[1:]
        )
    if obs == "Pleural Effusion" and sev in SLIGHT_TERMS["mid"] and rng.random() < 0.1:
        text += " No large effusion."  # distractor
    return text


def report_text(rng, findings: dict[str, Finding], view: str, has_prior: bool) -> str:
    exam = (
        "CHEST (PORTABLE AP)" if view == "AP" else word(rng, ("CHEST (PA AND LAT)", "CHEST (PA)"))
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
                word(
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
            word(rng, ("No acute cardiopulmonary process.", "No acute intrathoracic process."))
        ]
    comparison = "___" if has_prior else "None."
    return (
        "                                 FINAL REPORT\n"
        f" EXAMINATION:  {exam}\n \n"
        f" INDICATION:  {word(rng, INDICATIONS)}\n \n"
        f" TECHNIQUE:  {'Portable AP chest radiograph' if view == 'AP' else 'PA and lateral views of the chest'}.\n \n"
        f" COMPARISON:  {comparison}\n \n"
        " FINDINGS: \n \n"
        f" {' '.join(sentences)}\n \n"
        " IMPRESSION: \n \n"
        f" {' '.join(impression)}\n"
    )
