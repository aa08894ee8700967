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


# ---------------------------------------------------------------- headers anywhere in a line


def test_headers_on_one_line_are_found():
    report = "HISTORY: cough. FINDINGS: Small left effusion. IMPRESSION: Effusion."
    names = [s.name for s in split_sections(report, USE | SKIP)]
    assert names == ["history", "findings", "impression"]
    text = select_text(report, USE, SKIP)
    assert "effusion" in text.lower() and "cough" not in text
    report = "INDICATION: chest pain COMPARISON: none FINDINGS: Heart is enlarged."
    assert select_text(report, USE, SKIP).strip() == "Heart is enlarged."
    report = "Clinical history: fever Findings: Heart is enlarged."
    assert select_text(report, USE, SKIP | {"clinical history"}).strip() == "Heart is enlarged."


def test_history_after_findings_on_one_line_does_not_leak():
    report = "FINDINGS: Heart is enlarged. HISTORY: pneumonia"
    assert select_text(report, USE, SKIP).strip() == "Heart is enlarged."


def test_header_words_inside_a_sentence_are_not_headers():
    report = "FINDINGS: no change from the comparison film. ratio: 0.6 at 10:30."
    assert [s.name for s in split_sections(report, USE | SKIP)] == ["findings"]


def test_lone_carriage_returns_end_lines():
    report = "INDICATION: cough\rFINDINGS: Small effusion.\rIMPRESSION: Effusion."
    text = select_text(report, USE, SKIP)
    assert "cough" not in text and "Small effusion." in text


def test_one_line_report_is_labelled_like_the_broken_one():
    from finegrain.reports.labeler import label_report

    lines = ["HISTORY: pneumonia.", "FINDINGS: Large right pleural effusion.", "IMPRESSION: No"]
    lines[-1] += " pneumothorax."
    for joiner in ("\n", " ", "\r", "\r\n"):
        labels = label_report(joiner.join(lines))
        assert labels["Pleural Effusion"].status == 1, joiner
        assert labels["Pneumothorax"].status == 0, joiner
        assert labels["Pneumonia"].status is None, joiner


def test_labels_do_not_depend_on_line_breaks_for_any_openi_report(shared_data):
    """Property: every OpenI development report gets the same labels whether its lines are
    broken by \\n, \\r\\n, \\r or joined by spaces."""
    import csv

    from finegrain.reports.engine import analyse
    from finegrain.reports.lexicon import default_lexicon

    lex = default_lexicon()
    with open(shared_data / "openi" / "reports.csv", encoding="utf-8", newline="") as handle:
        reports = [row["report"] for row in csv.DictReader(handle)]
    assert len(reports) > 1000

    def summary(text):
        found = analyse(text, lex)
        return None if found is None else {o: sorted(f.statuses) for o, f in found.items()}

    differ = []
    for text in reports:
        text = text.replace("\r\n", "\n")
        want = summary(text)
        for joiner in ("\r\n", "\r", " "):
            if summary(text.replace("\n", joiner)) != want:
                differ.append((joiner, text))
    assert not differ, f"{len(differ)} differ, e.g. {differ[:3]}"
