"""A procedural chest-radiograph phantom written in the exact MIMIC-CXR-JPG layout.

``make_phantom(out)`` draws subjects with several studies in time order. Each study has a
latent severity in [0, 1] for Consolidation, Edema, Pleural Effusion and Cardiomegaly (plus a few
text-mostly findings), a frontal image (AP or PA, sometimes a lateral), a free-text report whose
wording follows the severity and its change since the prior study, and coarse CheXpert/NegBio-style
labels. The layout, file names, CSV names and columns are MIMIC-CXR-JPG's, so the phantom goes
through the same code path (``finegrain index --mimic``) as the real data.

Severity is a continuum (the default ``design``, format 3): a finding's true severity is a number,
its image truth is *slight* below :data:`SEVERITY_CUT` and *significant* from it on, each lesion
varies in extent, density and position so that neighbouring severities overlap on the image, and
a reader whose cut-points vary from report to report chooses the degree words (``reader``). The
``bands`` design (format 2) draws finegrain 0.2-0.3's phantoms byte for byte: two severity bands
that never meet, worded faithfully. See ``docs/phantom.md``.

The default phantom is **calibrated**: per calibrated observation, the shares of positive /
uncertain / negative / blank labels among frontal images, the AP share, images per study and
studies per subject are real CheXpert statistics, and the shares of atypical and of no-cue
positives come from real reports (``calibration``). What labels cannot tell is a named knob
(``knobs``). The truth (true severity, image truth, lesion masks) is read back with
:func:`read_truth`.

One concept per module:

- ``calibration``: the calibration table (package data) and its loader;
- ``knobs``: the named unknowns (uncertain mixture, visibility, conspicuity, prevalence; the
  continuum's slight share, spread and reader noise; the bands' no-cue severity);
- ``finding``: a finding's severity (the designs, the cut, the bands), lesion, location and
  record (:class:`Finding`);
- ``course``: per study, the labels and the image truth behind them;
- ``reader``: the continuum's reader, who chooses the degree and change words;
- ``wording``: Table 1 cues, sentences and the report;
- ``painter``: the radiograph drawing and the lesion shapes;
- ``noise``: labeler noise on the coarse labels (and its inverse);
- ``splits``: subjects, splits and evaluation split sizes;
- ``writer``: the MIMIC-CXR-JPG layout (:func:`make_phantom`);
- ``truth``: the truth read back (:func:`read_truth`, :func:`lesion_mask`).

Interface for studies (stable from v0.2): ``make_phantom(out, *, studies, size, seed, progress,
eval_studies, profile, uncertain_mixture, nocue_severity, visibility, prevalence, conspicuity,
workers, mimic_counts, design, slight_share, spread, reader_agreement)``;
``required_eval_studies(min_positives, *, profile, prevalence)``; ``read_truth(root) ->
PhantomTruth`` with ``.severity(image_id, obs)``, ``.image_truth(image_id, obs)``,
``.lesion_mask(image_id, obs, size)``, ``.lesion_masks(image_ids, obs, size)``;
``lesion_mask(root, image_id, obs, size)``; ``load_calibration(profile)``; ``PhantomKnobs``.

>>> # make_phantom("phantom", studies=2000, size=128, seed=0)
"""

from finegrain.data.phantom.calibration import (
    CALIBRATED,
    DEFAULT_PROFILE,
    PROFILES,
    Calibration,
    load_calibration,
)
from finegrain.data.phantom.finding import (
    DEFAULT_DESIGN,
    DESIGNS,
    DRAWN,
    LOBES,
    SEVERITY_CUT,
    SIGNIFICANT_BAND,
    SLIGHT_BAND,
    Finding,
)
from finegrain.data.phantom.knobs import (
    DEFAULT_NOCUE_SEVERITY,
    DEFAULT_UNCERTAIN_MIXTURE,
    UNCERTAIN_TRUTHS,
    PhantomKnobs,
)
from finegrain.data.phantom.painter import Painter
from finegrain.data.phantom.splits import required_eval_studies
from finegrain.data.phantom.truth import PhantomTruth, lesion_mask, read_truth
from finegrain.data.phantom.writer import (
    CSV_PREFIX,
    IMAGE_COLUMNS,
    IMAGES_FILE,
    LABEL_CSV_COLUMNS,
    METADATA_COLUMNS,
    SETTINGS_FILE,
    SPLIT_COLUMNS,
    TRUTH_COLUMNS,
    TRUTH_FILE,
    PhantomSummary,
    make_phantom,
)

__all__ = [
    "CALIBRATED",
    "CSV_PREFIX",
    "DEFAULT_NOCUE_SEVERITY",
    "DEFAULT_DESIGN",
    "DEFAULT_PROFILE",
    "DESIGNS",
    "DEFAULT_UNCERTAIN_MIXTURE",
    "DRAWN",
    "IMAGES_FILE",
    "IMAGE_COLUMNS",
    "PROFILES",
    "SETTINGS_FILE",
    "UNCERTAIN_TRUTHS",
    "Calibration",
    "PhantomKnobs",
    "PhantomTruth",
    "lesion_mask",
    "load_calibration",
    "read_truth",
    "required_eval_studies",
    "LABEL_CSV_COLUMNS",
    "LOBES",
    "METADATA_COLUMNS",
    "SEVERITY_CUT",
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
