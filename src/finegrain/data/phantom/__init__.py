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

One concept per module:

- ``finding``: a finding's severity bands, location and record (:class:`Finding`);
- ``course``: a subject's disease course from study to study;
- ``wording``: status, Table 1 cues, sentences and the report;
- ``painter``: the radiograph drawing;
- ``writer``: the MIMIC-CXR-JPG layout (:func:`make_phantom`).

>>> # make_phantom("phantom", studies=2000, size=128, seed=0)
"""

from finegrain.data.phantom.finding import DRAWN, LOBES, SIGNIFICANT_BAND, SLIGHT_BAND, Finding
from finegrain.data.phantom.painter import Painter
from finegrain.data.phantom.writer import (
    CSV_PREFIX,
    LABEL_CSV_COLUMNS,
    METADATA_COLUMNS,
    SPLIT_COLUMNS,
    TRUTH_COLUMNS,
    TRUTH_FILE,
    PhantomSummary,
    make_phantom,
)

__all__ = [
    "CSV_PREFIX",
    "DRAWN",
    "LABEL_CSV_COLUMNS",
    "LOBES",
    "METADATA_COLUMNS",
    "SIGNIFICANT_BAND",
    "SLIGHT_BAND",
    "SPLIT_COLUMNS",
    "TRUTH_COLUMNS",
    "TRUTH_FILE",
    "Finding",
    "Painter",
    "PhantomSummary",
    "make_phantom",
]
