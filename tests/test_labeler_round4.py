"""Issue 28, the language still missed: one test per class, with wordings of our own
(inflections, word order, synonyms), checking status, severity, change and the subcategory that
follows from them."""

from __future__ import annotations

import shutil

import pytest

from finegrain.division import SEVERITY_CUES, SEVERITY_ORDER
from finegrain.reports import Lexicon, label_report
from finegrain.reports.lexicon import DEFAULT_LEXICON_DIR, default_lexicon, range_term
from labeler_cases import (
    ATEL,
    CONS,
    DEVICE,
    EDEMA,
    EFF,
    FRACTURE,
    HEART,
    LESION,
    MEDIASTINUM,
    OPAC,
    PNA,
    PTX,
    check,
)


# --- 1. degree ranges of adverbs (and intensifiers) on a predicate ----------------------------
@pytest.mark.parametrize(
    ("text", "observation", "severity"),
    [
        ("The cardiac silhouette is moderately to markedly enlarged.", HEART, "moderate-to-severe"),
        ("Heart size is mildly to moderately increased.", HEART, "mild-to-moderate"),
        ("The heart appears minimally to mildly enlarged.", HEART, "mild"),
        ("The heart remains moderately-to-severely enlarged.", HEART, "moderate-to-severe"),
        ("Heart is slightly to moderately enlarged in size.", HEART, "mild-to-moderate"),
        ("The heart is again mildly to markedly enlarged.", HEART, "moderate-to-severe"),
        ("Moderately to markedly enlarged cardiac silhouette.", HEART, "moderate-to-severe"),
        ("The mediastinum is mildly to moderately widened.", MEDIASTINUM, "mild-to-moderate"),
        ("Cardiac silhouette is markedly enlarged.", HEART, "severe"),
        ("The heart is very markedly enlarged.", HEART, "severe"),
        ("Marked cardiomegaly.", HEART, "severe"),
        ("Interstitial edema is mild to marked.", EDEMA, "moderate-to-severe"),
        ("Left pleural effusion, small to moderate in size.", EFF, "mild-to-moderate"),
        ("Bilateral effusions, moderate through large.", EFF, "moderate-to-severe"),
        ("Tiny-small right apical pneumothorax.", PTX, "small"),
        ("The heart is mildly-moderately enlarged.", HEART, "mild-to-moderate"),
        # an adverb grading an adjective is one degree, not a range
        ("The heart is slightly large.", HEART, "mild"),
        ("Heart size is moderately large.", HEART, "moderate"),
    ],
)
def test_degree_ranges_on_a_predicate(text, observation, severity):
    check(text, observation, 1, severity)


def test_range_rule_follows_table1_sides():
    # both atypical: the upper end; both typical: moderate-to-severe from the middle, else the
    # upper end; across the sides: mild-to-moderate up to the middle, moderate-to-severe beyond
    assert range_term("trace", "small") == range_term("small", "trace") == "small"
    assert range_term("moderate", "large") == "moderate-to-severe"
    assert range_term("large", "massive") == "massive"
    assert range_term("mild", "moderate") == "mild-to-moderate"
    assert range_term("mild", "severe") == "moderate-to-severe"
    assert range_term("mild-to-moderate", "moderate-to-severe") == "moderate-to-severe"
    assert range_term("mild", "mild") == "mild"
    assert range_term("mild", "acute") is None  # "acute" is a time, not a size
    for first in SEVERITY_ORDER:
        for second in SEVERITY_ORDER:
            term = range_term(first, second)
            assert term is None or term in SEVERITY_CUES


# --- 2. size stated against the normal range --------------------------------------------------
@pytest.mark.parametrize(
    ("text", "observation"),
    [
        ("Heart size is at the upper limit of the normal range.", HEART),
        ("The cardiac silhouette is at the high end of normal.", HEART),
        ("Cardiac contours are within the upper limits of normal.", HEART),
        ("Heart size is top-normal.", HEART),
        ("Top normal heart size, unchanged.", HEART),
        ("The heart is high-normal in size.", HEART),
        ("Heart size upper normal.", HEART),
        ("The heart size is at the upper bounds of normal.", HEART),
        ("The size of the heart is at the top of the normal range.", HEART),
        ("Cardiac size remains near the upper end of normal.", HEART),
        ("Normal heart.", HEART),
        ("The heart and mediastinum are normal.", HEART),
        ("The cardiomediastinal silhouette is at the upper limits of normal.", MEDIASTINUM),
        ("Mediastinal contours are within normal limits.", MEDIASTINUM),
        ("Normal cardiomediastinal silhouette.", MEDIASTINUM),
    ],
)
def test_size_at_the_top_of_the_normal_range_is_normal(text, observation):
    check(text, observation, 0)


def test_normal_range_is_told_from_its_neighbours():
    check("Heart size is borderline.", HEART, 1, "mild")  # at the threshold: positive
    check("The cardiomediastinal silhouette is at the upper limits of normal.", HEART, None)
    # a "..." gap does not run over "with": the normal size is the heart's
    text = "Stable cardiomediastinal silhouette with normal heart size."
    check(text, HEART, 0)
    check(text, MEDIASTINUM, None)


# --- 3. a change after a comma, with a measure or a time -----------------------------------
@pytest.mark.parametrize(
    ("text", "observation", "severity", "change"),
    [
        (
            "Left pleural effusion, decreasing in size since the prior examination.",
            EFF,
            None,
            "decrease",
        ),
        (
            "Right basilar opacity, increased in extent compared with yesterday.",
            OPAC,
            None,
            "increase",
        ),
        (
            "Small right pneumothorax, slightly smaller than on the prior study.",
            PTX,
            "small",
            "decrease",
        ),
        (
            "Moderate left effusion, larger in size than on the radiograph of ___.",
            EFF,
            "moderate",
            "increase",
        ),
        ("Bibasilar atelectasis, improved since the previous exam.", ATEL, None, "improve"),
        ("Right upper lobe consolidation, worse in extent than before.", CONS, None, "worsen"),
        ("Pulmonary edema, decreased in severity from yesterday.", EDEMA, None, "decrease"),
        # a relative clause right after the finding describes it
        (
            "Moderate left pleural effusion, which has decreased in size.",
            EFF,
            "moderate",
            "decrease",
        ),
        (
            "Left lower lobe consolidation which has improved since yesterday.",
            CONS,
            None,
            "improve",
        ),
        ("Right pneumothorax, which is small, has increased.", PTX, "small", "increase"),
        ("The left effusion, which was large, is now moderate.", EFF, "moderate", None),
        ("The effusion, which had been small, is now moderate.", EFF, "moderate", None),
        (
            "The pneumothorax, which was moderate on the prior study, is now small.",
            PTX,
            "small",
            None,
        ),
        # a comparison of the sides set off by commas does not separate finding and change
        (
            "Bilateral effusions, right greater than left, increased since prior.",
            EFF,
            None,
            "increase",
        ),
    ],
)
def test_change_after_a_comma_with_a_measure_or_time(text, observation, severity, change):
    check(text, observation, 1, severity, change)


def test_a_change_noun_with_of_still_names_its_finding():
    text = "Stable cardiomegaly, increase in size of the left effusion."
    check(text, EFF, 1, None, "increase")
    check(text, HEART, 1, None, None)
    check("Increase in the size of the right effusion.", EFF, 1, None, "increase")
    check("Possible increase in size of the right effusion.", EFF, 1, None, "increase")


# --- 4. abbreviations -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "observation", "status", "severity"),
    [
        ("No PTX.", PTX, 0, None),
        ("Small apical PTX on the right.", PTX, 1, "small"),
        ("Tiny left pnx, unchanged.", PTX, 1, "tiny"),
        ("Findings suggest CHF.", EDEMA, -1, None),
        ("RLL PNA.", PNA, 1, None),
        ("No evidence of PNA.", PNA, 0, None),
        ("Cannot r/o early PNA.", PNA, -1, None),
        ("Small b/l pleural effusions.", EFF, 1, "small"),
        ("Bilat effusions, mod on the left.", EFF, 1, "moderate"),
        ("ETT and NGT in good position.", DEVICE, 1, None),
        ("ETT/OGT in place.", DEVICE, 1, None),
        ("Right IJ CVC with tip in the SVC.", DEVICE, 1, None),
        ("Pleural effusion w/o PTX.", PTX, 0, None),
        ("Pleural effusion w/o PTX.", EFF, 1, None),
        ("Heart size WNL.", HEART, 0, None),
        ("Mod cardiomegaly.", HEART, 1, "moderate"),
        ("No acute fx.", FRACTURE, 0, None),
        ("Pulm vasc congestion.", EDEMA, 1, None),
        ("Opacity in the RLL c/w PNA.", PNA, 1, None),
        ("LLL GGO.", OPAC, 1, None),
    ],
)
def test_abbreviations_read_as_written_out(text, observation, status, severity):
    check(text, observation, status, severity)


def test_abbreviations_are_whole_words_only():
    lex = default_lexicon()
    text = "moderate lung ngtx mode b/left w/o"
    assert lex.expand(text) == "moderate lung ngtx mode b/left without"
    assert lex.expand("w/effusion") == "with effusion"
    assert lex.expand("ett/ngt") == "endotracheal tube/nasogastric tube"


def test_a_phrase_containing_an_abbreviation_is_an_error(tmp_path):
    custom = tmp_path / "lex"
    shutil.copytree(DEFAULT_LEXICON_DIR, custom)
    with open(custom / "mention" / "pneumothorax.txt", "a", encoding="utf-8") as handle:
        handle.write("\nsmall ptx\n")
    with pytest.raises(ValueError, match=r"pneumothorax\.txt:\d+: 'small ptx' contains the abbr"):
        Lexicon.load(custom)
    (custom / "mention" / "pneumothorax.txt").write_text("pneumothorax\n", encoding="utf-8")
    with open(custom / "abbreviations.txt", "a", encoding="utf-8") as handle:
        handle.write("ptx = other\n")
    with pytest.raises(ValueError, match=r"abbreviations\.txt:\d+: 'ptx' is already defined"):
        Lexicon.load(custom)


# --- 5. the four misses of issue 9, in other words ----------------------------------------------
@pytest.mark.parametrize(
    ("text", "observation", "severity", "change"),
    [
        ("Improving but still moderate pulmonary edema.", EDEMA, "moderate", "improve"),
        ("Small but enlarging left effusion.", EFF, "small", "increase"),
        ("Pneumothorax, slightly less than before.", PTX, None, "decrease"),
        ("Interstitial edema, somewhat more than on the previous study.", EDEMA, None, "increase"),
        ("The effusion is a bit smaller.", EFF, None, "decrease"),
        ("The pneumothorax has become a little bigger.", PTX, None, "increase"),
        ("Right effusion is a little larger than before.", EFF, None, "increase"),
    ],
)
def test_issue9_misses_in_other_words(text, observation, severity, change):
    check(text, observation, 1, severity, change)


def test_contrast_and_comparison_keep_their_limits():
    # "but" after a finding still ends its clause: the change stays with the edema
    text = "Edema has improved but persistent moderate effusion."
    check(text, EDEMA, 1, None, "improve")
    check(text, EFF, 1, "moderate", None)
    # for status the clause still ends at "but": the hedge is on the change, not the opacity
    check("Possibly improved but persistent opacity.", OPAC, 1, None, "improve")
    # "less than" before a measure is not a change
    check("Nodule measuring less than 1 cm.", LESION, 1, None, None)
    # a comparison with the neighbouring tissue is not a change over time
    check("Right lower lobe nodule, denser than the adjacent lung.", LESION, 1, None, None)


# --- the lexicon mechanisms behind them ----------------------------------------------------------
def test_phrase_classes_expand_and_errors_name_the_line(tmp_path):
    custom = tmp_path / "lex"
    shutil.copytree(DEFAULT_LEXICON_DIR, custom)
    with open(custom / "classes.txt", "a", encoding="utf-8") as handle:
        handle.write("\n[leak]\nair leak\nair leaks\n")
    with open(custom / "mention" / "pneumothorax.txt", "a", encoding="utf-8") as handle:
        handle.write("\npersistent (leak)\n")
    lex = Lexicon.load(custom)
    assert label_report("Persistent air leak.", lexicon=lex)[PTX].status == 1
    assert label_report("Persistent air leak.")[PTX].status is None
    with open(custom / "mention" / "pneumothorax.txt", "a", encoding="utf-8") as handle:
        handle.write("(nothing) here\n")
    with pytest.raises(ValueError, match=r"pneumothorax\.txt:\d+: unknown class \(nothing\)"):
        Lexicon.load(custom)
    (custom / "mention" / "pneumothorax.txt").write_text("pneumothorax\n", encoding="utf-8")
    with open(custom / "classes.txt", "a", encoding="utf-8") as handle:
        handle.write("\n[loop]\n(loop) again\n")
    with pytest.raises(ValueError, match=r"class \(loop\) uses itself"):
        Lexicon.load(custom)
