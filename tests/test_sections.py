"""Report sections and de-identification marks."""

from __future__ import annotations

from finegrain.reports.sections import remove_deid, select_text, split_sections

USE = {"findings", "impression"}
SKIP = {"indication", "comparison", "history", "technique", "final report"}

MIMIC = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___ with pneumonia, evaluate for effusion

 COMPARISON:  ___

 FINDINGS:
 Small left pleural effusion.

 IMPRESSION:
 No pneumothorax.
"""


def test_mimic_sections_in_order():
    names = [s.name for s in split_sections(MIMIC, USE | SKIP)]
    assert names == ["", "examination", "indication", "comparison", "findings", "impression"]


def test_use_sections_only_when_present():
    text = select_text(MIMIC, USE, SKIP)
    assert "Small left pleural effusion" in text and "No pneumothorax" in text
    assert "pneumonia" not in text and "CHEST" not in text


def test_fallback_drops_skipped_sections():
    report = "INDICATION: rule out pneumonia\nHeart is enlarged.\nCOMPARISON: none"
    text = select_text(report, USE, SKIP)
    assert text.strip() == ""  # the unheaded line continues INDICATION
    report = "Heart is enlarged.\nCOMPARISON: none"
    assert select_text(report, USE, SKIP).strip() == "Heart is enlarged."
    plain = "No acute disease. Heart size normal."
    assert select_text(plain, USE, SKIP).strip() == plain


def test_capitalised_unknown_header_ends_a_section():
    report = "FINDINGS: small effusion.\nWET PREVIEW: pneumonia per ED.\nIMPRESSION: effusion."
    text = select_text(report, USE, SKIP)
    assert "pneumonia" not in text and "small effusion" in text


def test_lowercase_colon_inside_text_is_not_a_header():
    report = "FINDINGS:\nratio: 0.6. Small effusion."
    assert "ratio: 0.6" in select_text(report, USE, SKIP)


def test_deid_marks_become_a_neutral_word():
    assert remove_deid("Since ___, no XXXX of effusion. x-XXXX") == (
        "Since  deid , no  deid  of effusion. x- deid "
    )
    assert remove_deid("xylophone, box, ax") == "xylophone, box, ax"
