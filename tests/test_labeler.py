"""The report labeler: status, cue attachment, division, report handling, CSV and CLI."""

from __future__ import annotations

import csv
import logging
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finegrain.observations import OBSERVATIONS
from finegrain.reports import Lexicon, ObservationLabel, label_report, label_reports
from finegrain.reports.labeler import label_columns
from finegrain.reports.lexicon import DEFAULT_LEXICON_DIR


@pytest.fixture(scope="module")
def paper_examples(shared_data):
    with open(shared_data / "paper_examples.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_paper_example(paper_examples):
    """Each row of the paper's Table 1 / Figure 2 examples: status, cue and subcategory."""
    failures = []
    for row in paper_examples:
        label = label_report(row["sentence"])[row["observation"]]
        if row["dimension"] == "severity":
            cue = label.severity
        elif row["dimension"] == "change":
            cue = label.change
        else:
            cue = label.severity or label.change
        want = (int(row["status"]), row["cue"] or None, row["subcategory"])
        got = (label.status, cue, label.subcategory)
        if got != want:
            failures.append(f"{row['sentence']!r} / {row['observation']}: {got} != {want}")
    assert len(paper_examples) >= 20
    assert not failures, "\n".join(failures)


def lab(text: str, observation: str) -> ObservationLabel:
    return label_report(text)[observation]


def test_severity_before_a_change_word_qualifies_the_change():
    label = lab("There has been substantial improvement in the consolidation.", "Consolidation")
    assert label == ObservationLabel(1, None, "improve", "atypical")


def test_each_finding_gets_its_own_cue():
    text = "There is continued substantial cardiomegaly with mild-to-moderate pulmonary edema."
    labels = label_report(text)
    assert labels["Cardiomegaly"] == ObservationLabel(1, "substantial", None, "typical")
    assert labels["Edema"] == ObservationLabel(1, "mild-to-moderate", None, "atypical")


def test_anatomy_is_not_severity():
    label = lab("Atelectasis adjacent to the minor fissure.", "Atelectasis")
    assert label == ObservationLabel(1, None, None, "typical")


def test_negated_finding_has_no_cue():
    assert lab("No large effusion.", "Pleural Effusion") == ObservationLabel(0, None, None, None)


def test_no_acute_process_yields_nothing_but_no_finding():
    labels = label_report("No acute cardiopulmonary process.")
    assert labels["No Finding"].status == 1
    assert all(labels[o].status is None for o in OBSERVATIONS if o != "No Finding")


@pytest.mark.parametrize(
    ("text", "observation", "severity", "change"),
    [
        ("The heart is mildly enlarged.", "Cardiomegaly", "mild", None),
        ("Mild to moderate cardiomegaly.", "Cardiomegaly", "mild-to-moderate", None),
        ("Moderately severe edema.", "Edema", "moderate-to-severe", None),
        ("The effusion is small.", "Pleural Effusion", "small", None),
        ("Improving right lower lobe atelectasis.", "Atelectasis", None, "improve"),
        ("Increasing left effusion.", "Pleural Effusion", None, "increase"),
        ("The pneumothorax has decreased in size.", "Pneumothorax", None, "decrease"),
        ("Worsening pulmonary edema.", "Edema", None, "worsen"),
        ("Progression of the consolidation.", "Consolidation", None, "progress"),
        ("Resolving pneumonia.", "Pneumonia", None, "resolution"),
        ("The edema has partially cleared.", "Edema", None, "clear"),
        ("Slightly improved small effusion.", "Pleural Effusion", "small", "improve"),
    ],
)
def test_word_forms_normalise_to_table1_terms(text, observation, severity, change):
    label = lab(text, observation)
    assert label.status == 1
    assert (label.severity, label.change) == (severity, change)


def test_cue_does_not_jump_across_a_verb_clause():
    text = "Lung volumes have decreased and there is a left effusion."
    assert lab(text, "Pleural Effusion") == ObservationLabel(1, None, None, "typical")
    text = "Effusion on the left, moderate atelectasis on the right."
    assert lab(text, "Pleural Effusion").severity is None
    assert lab(text, "Atelectasis").severity == "moderate"


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("No pneumothorax.", 0),
        ("Pneumothorax is not seen.", 0),
        ("There is no evidence of pneumothorax or effusion.", 0),
        ("Pneumothorax has resolved.", 0),
        ("Possible small pneumothorax.", -1),
        ("Pneumothorax cannot be excluded.", -1),
        ("Pneumothorax is not excluded.", -1),
        ("Small apical pneumothorax.", 1),
        ("No change in the small pneumothorax.", 1),
        ("No effusion, but a small pneumothorax is present.", 1),
        ("No effusion, possibly a small pneumothorax.", -1),
        ("No opacity to suggest pneumothorax.", 0),
    ],
)
def test_negation_and_uncertainty_scope(text, status):
    assert lab(text, "Pneumothorax").status == status


def test_aggregation_positive_beats_uncertain_beats_negative():
    assert lab("No effusion. Possible effusion. Small effusion.", "Pleural Effusion").status == 1
    assert lab("No effusion. Possible effusion.", "Pleural Effusion").status == -1
    assert lab("No effusion. Effusion is not seen.", "Pleural Effusion").status == 0


def test_last_mention_with_a_cue_wins_across_the_report():
    text = "FINDINGS: Moderate right effusion.\nIMPRESSION: Effusion, now small."
    assert lab(text, "Pleural Effusion").severity == "small"
    text = "FINDINGS: Moderate right effusion.\nIMPRESSION: Right effusion."
    assert lab(text, "Pleural Effusion").severity == "moderate"


def test_precedence_parameter_is_used():
    text = "Moderate effusion, improved."
    assert label_report(text)["Pleural Effusion"].subcategory == "typical"
    assert label_report(text, precedence="change")["Pleural Effusion"].subcategory == "atypical"
    with pytest.raises(ValueError, match="precedence"):
        label_report(text, precedence="nope")


def test_no_finding_rule():
    # support devices do not count as a finding; other abnormalities do
    assert lab("Endotracheal tube in place. Lungs clear.", "No Finding").status == 1
    assert lab("Endotracheal tube in place.", "Support Devices").status == 1
    assert lab("Mild cardiomegaly.", "No Finding").status is None
    assert lab("Possible small effusion.", "No Finding").status is None
    assert lab("Emphysema.", "No Finding").status is None
    assert lab("No emphysema, no effusion.", "No Finding").status == 1
    assert lab("", "No Finding").status is None


def test_empty_and_odd_input_is_blank():
    for text in ("", "   \n\t", "___", "INDICATION: cough"):
        labels = label_report(text)
        assert set(labels) == set(OBSERVATIONS)
        assert all(v.status is None for v in labels.values()), text


def test_deid_marks_keep_negation_scope():
    assert lab("There are no XXXX of a pleural effusion.", "Pleural Effusion").status == 0
    assert lab("Since ___, small effusion.", "Pleural Effusion").status == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(
                ["___", "XXXX", " " * 50, "\n\n", ".", "no ", "effusion", "mild ", "IMPRESSION:"]
            ),
        ),
        max_size=30,
    ).map("".join)
)
def test_arbitrary_text_never_crashes_and_is_deterministic(text):
    first = label_report(text)
    assert set(first) == set(OBSERVATIONS)
    assert label_report(text) == first
    for label in first.values():
        assert label.status in (None, 1, 0, -1)
        assert (label.subcategory is not None) == (label.status in (1, -1)) or (
            label.status == 1 and label.subcategory is None  # No Finding
        )


def test_huge_whitespace_is_fine():
    labels = label_report(" " * 200_000 + "small effusion" + "\n" * 10_000)
    assert labels["Pleural Effusion"].severity == "small"


# --- lexicon ----------------------------------------------------------------------------------
def test_lexicon_override_extends_phrases(tmp_path):
    custom = tmp_path / "lex"
    shutil.copytree(DEFAULT_LEXICON_DIR, custom)
    with open(custom / "mention" / "pneumothorax.txt", "a", encoding="utf-8") as handle:
        handle.write("\nair leak\n")
    with open(custom / "severity.txt", "a", encoding="utf-8") as handle:
        handle.write("\n[ignore]\nextensive = ignored\n")
    text = "Small air leak."
    assert label_report(text)["Pneumothorax"].status is None
    label = label_report(text, lexicon=Lexicon.load(custom))["Pneumothorax"]
    assert label == ObservationLabel(1, "small", None, "atypical")


def test_lexicon_errors_name_file_and_line(tmp_path):
    custom = tmp_path / "lex"
    shutil.copytree(DEFAULT_LEXICON_DIR, custom)
    (custom / "severity.txt").write_text("tiny = tiny\nhuge = enormous\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"severity.txt:2: 'enormous' is not a Table 1"):
        Lexicon.load(custom)
    shutil.copy(DEFAULT_LEXICON_DIR / "severity.txt", custom / "severity.txt")
    (custom / "mention" / "heart.txt").write_text("heart\n", encoding="utf-8")
    with pytest.raises(ValueError, match="heart.txt: file name is not an observation"):
        Lexicon.load(custom)
    with pytest.raises(FileNotFoundError, match="lexicon directory not found"):
        Lexicon.load(tmp_path / "missing")


# --- CSV and CLI ------------------------------------------------------------------------------
#: A phrase of each report of :func:`_write_reports` (never an observation name alone).
_REPORT_PHRASES = (
    "small left pleural effusion",
    "no pneumothorax",
    "mild cardiomegaly",
    "worsening edema",
    "no acute cardiopulmonary process",
)


def _write_reports(path):
    rows = [
        b"study,text\n",
        b'1,"FINDINGS: Small left pleural effusion.\nIMPRESSION: No pneumothorax."\n',
        b"2,\n",
        b'3,"Mild cardiomegaly \xff\xfe with \x80 worsening edema."\n',
        b'4,"No acute cardiopulmonary process."\n',
    ]
    path.write_bytes(b"".join(rows))


def test_label_reports_csv(tmp_path):
    src, out = tmp_path / "reports.csv", tmp_path / "labels.csv"
    _write_reports(src)
    summary = label_reports(src, out, id_column="study", text_column="text")
    # no UTF-8 character in it: its stray high bytes are read as Windows-1252, and said
    assert (summary.reports, summary.empty, summary.decode_replaced) == (4, 1, 0)
    assert summary.decoded_as.startswith("Windows-1252") and "Windows-1252" in summary.format()
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["study", *label_columns()]
    assert [r["study"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["Pleural Effusion"] == "1" and rows[0]["Pleural Effusion severity"] == "small"
    assert rows[0]["Pleural Effusion subcategory"] == "atypical" and rows[0]["Pneumothorax"] == "0"
    assert all(v == "" for k, v in rows[1].items() if k != "study")
    assert rows[2]["Edema change"] == "worsen" and rows[2]["Edema subcategory"] == "typical"
    assert rows[2]["Cardiomegaly severity"] == "mild"
    assert rows[3]["No Finding"] == "1"
    assert summary.counts["Pleural Effusion"]["positive"] == 1
    assert summary.counts["Pneumothorax"]["negative"] == 1
    assert summary.counts["No Finding"]["blank"] == 3
    assert "reports read: 4" in summary.format()


def test_label_reports_names_missing_column(tmp_path):
    src = tmp_path / "reports.csv"
    _write_reports(src)
    with pytest.raises(ValueError, match="no column 'report'.*--text-column"):
        label_reports(src, tmp_path / "out.csv", id_column="study")


def test_cli_end_to_end(tmp_path, capsys, caplog):
    from finegrain.cli import main

    caplog.set_level(logging.INFO)  # the default verbosity: INFO and above

    src, out = tmp_path / "reports.csv", tmp_path / "labels.csv"
    _write_reports(src)
    code = main(
        [
            "label",
            str(src),
            "-o",
            str(out),
            "--id-column",
            "study",
            "--text-column",
            "text",
            "--no-progress",
            "--precedence",
            "change",
        ]
    )
    assert code == 0
    printed = capsys.readouterr()
    assert "reports read: 4" in printed.out and "empty: 1" in printed.out
    shown = " ".join((printed.out + printed.err + caplog.text).lower().split())
    # report text is never printed or logged; observation names alone are (the counts table)
    for phrase in _REPORT_PHRASES:
        assert phrase not in shown, phrase
    with open(out, encoding="utf-8", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    assert main(["label", str(src), "-o", str(out)]) == 2  # missing column: clean error


@pytest.mark.parametrize(
    ("text", "observation", "severity"),
    [
        ("There are small right and left pleural effusions.", "Pleural Effusion", "small"),
        ("Mild, patchy atelectasis at the bases.", "Atelectasis", "mild"),
        ("There is mild cardiomegaly.", "Cardiomegaly", "mild"),
        ("There appear to be small bilateral effusions.", "Pleural Effusion", "small"),
        ("Minimal scarring and/or atelectasis in the left base.", "Atelectasis", "minimal"),
    ],
)
def test_coordinated_and_existential_modifiers(text, observation, severity):
    assert lab(text, observation).severity == severity


def test_predicative_cue_belongs_to_its_subject():
    text = "The consolidation has decreased and pulmonary edema has largely cleared."
    assert lab(text, "Consolidation").change == "decrease"
    assert lab(text, "Edema").change == "clear"
    text = "Lung volumes are improved with minimal bibasilar atelectasis."
    assert lab(text, "Atelectasis") == ObservationLabel(1, "minimal", None, "atypical")


def test_benchmark_metrics_helper():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "labeler.py"
    spec = importlib.util.spec_from_file_location("bench_labeler", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    gold = [{"id": "a", "X": "1"}, {"id": "b", "X": "0"}, {"id": "c", "X": "1"}]
    pred = {"a": {"X": 1}, "b": {"X": 1}, "c": {"X": 0}}
    table = bench.f1_table(pred, gold, ["X"])
    assert table["X"]["precision"] == 0.5 and table["X"]["recall"] == 0.5
    assert table["micro"]["f1"] == 0.5
    # the error categories of the breakdown
    assert bench.categorise(-1, 0, "Edema", []) == "hedge, gold absent"
    assert bench.categorise(-1, 1, "Edema", []) == "hedge, gold present"
    congested = [(1, "vascular congestion", "mild vascular congestion"), (0, "edema", "no edema")]
    assert bench.categorise(1, 0, "Edema", congested) == "congestion"
    assert bench.categorise(1, 0, "Edema", [(1, "edema", "mild edema")]) == "other"
    swallowed = [(1, "pneumothorax", "deid pneumothorax")]
    assert bench.categorise(1, 0, "Pneumothorax", swallowed) == "deid"
    assert bench.categorise(None, 1, "Pneumothorax", []) == "other"


def test_run_on_sentence_stays_fast_and_labelled():
    labels = label_report("small effusion, " * 3000)  # 48,000 characters, one "sentence"
    assert labels["Pleural Effusion"] == ObservationLabel(1, "small", None, "atypical")


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Interstitial edema difficult to entirely exclude.", -1),
        ("Mild edema cannot be entirely excluded.", -1),
        ("Difficult to exclude early edema.", -1),
        ("Edema is present.", 1),
    ],
)
def test_post_hedges_difficult_to_exclude(text, status):
    assert lab(text, "Edema").status == status


@pytest.mark.parametrize(
    ("text", "status"),
    [
        # exam quality is not a hedge on the finding: the explicit statement decides
        ("Assessment for effusion limited by rotation; no large effusion is seen.", 0),
        ("Evaluation for pleural fluid is limited. Small left effusion.", 1),
        # alone, an unassessed finding stays uncertain, and carries no cue
        ("Evaluation for effusion is limited.", -1),
        ("Effusion is difficult to assess on this portable film.", -1),
        # "limited to" is extent, not exam quality
        ("Small effusion limited to the costophrenic angle.", 1),
    ],
)
def test_exam_quality_is_not_a_hedge(text, status):
    assert lab(text, "Pleural Effusion").status == status


def test_unassessed_mention_carries_no_cue_and_keeps_no_finding_blank():
    labels = label_report("Evaluation for small effusion is limited.")
    assert labels["Pleural Effusion"] == ObservationLabel(-1, None, None, "typical")
    assert labels["No Finding"].status is None


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Basal opacity, an infectious process versus scarring.", -1),
        ("Basal opacity, infectious etiology versus scarring.", -1),
        ("Basal opacity, infectious etiology vs chronic change.", -1),
        # a comma or another mention in between breaks the coordination
        ("Infectious etiology, scarring versus atelectasis.", 1),
        ("Pneumonia in the right base, atelectasis versus scarring on the left.", 1),
    ],
)
def test_versus_coordinates_with_the_mention_head(text, status):
    assert lab(text, "Pneumonia").status == status


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Effusion or atelectasis cannot be excluded.", -1),
        ("Effusion, atelectasis, or consolidation cannot be excluded.", -1),
        ("Effusion or a loculated collection could explain this.", -1),
        ("Effusion and atelectasis are not seen.", 0),
        # without a conjunction the post cue belongs to the last item only
        ("Small effusion, atelectasis cannot be excluded.", 1),
        ("Small effusion and atelectasis, cannot be excluded.", 1),
    ],
)
def test_post_cue_reaches_a_coordinated_mention(text, status):
    assert lab(text, "Pleural Effusion").status == status


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("The heart is possibly enlarged.", -1),
        ("The heart size may be enlarged.", -1),
        # "borderline" grades a size (present), inside or before the mention alike
        ("Cardiac silhouette is borderline enlarged.", 1),
        ("Borderline heart size.", 1),
        ("Borderline enlarged heart.", 1),
        ("The heart is enlarged.", 1),
        ("The heart is not enlarged.", 0),
    ],
)
def test_hedge_inside_a_mention_phrase(text, status):
    assert lab(text, "Cardiomegaly").status == status


def test_indication_does_not_leak_when_findings_exist():
    text = "INDICATION: Edema. Pneumonia?\nFINDINGS: Clear lungs.\nIMPRESSION: Normal chest."
    labels = label_report(text)
    assert labels["Edema"].status is None and labels["Pneumonia"].status is None
    assert labels["No Finding"].status == 1


@pytest.mark.parametrize(
    ("text", "observation"),
    [
        ("Enlarged heart without overt interstitial edema.", "Edema"),
        ("No definite focal consolidation.", "Consolidation"),
        ("Negative for significant pleural effusion.", "Pleural Effusion"),
    ],
)
def test_negation_reaches_through_hedging_adjectives(text, observation):
    assert lab(text, observation).status == 0


@pytest.mark.parametrize(
    "sentence",
    [
        "Heart size is normal.",
        "Normal heart size.",
        "The cardiac silhouette is within normal limits.",
    ],
)
def test_normal_heart_size_is_a_negative_cardiomegaly(sentence):
    # CheXpert (and so MIMIC's labels) reads a normal heart size as Cardiomegaly 0, not blank
    labels = label_report(sentence)
    assert labels["Cardiomegaly"].status == 0
    assert labels["No Finding"].status == 1


def test_stable_heart_size_says_nothing_about_cardiomegaly():
    assert label_report("Heart size is stable.")["Cardiomegaly"].status is None


def test_duplicate_ids_keep_the_first_row_and_are_listed(tmp_path, caplog):
    src, out = tmp_path / "reports.csv", tmp_path / "labels.csv"
    src.write_text(
        'id,report\n7,"Large pleural effusion."\n8,"Mild edema."\n'
        '7,"No pleural effusion."\n9,"Normal."\n8,"Severe edema."\n'
    )
    summary = label_reports(src, out)
    assert summary.duplicates == [("7", 4, 2), ("8", 6, 3)]  # (id, line left out, line kept)
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ["7", "8", "9"]
    assert rows[0]["Pleural Effusion"] == "1" and rows[1]["Edema subcategory"] == "atypical"
    said = summary.format() + caplog.text
    assert "id '7' on line 4 (kept line 2)" in said and "id '8' on line 6 (kept line 3)" in said


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('id,report\n1,"Mild edema.\n2,No edema.\n3,Normal.\n', "line 2: a quoted field"),
        ('id,report\n1,"Mild edema.\n2,"No edema."\n3,Normal.\n', "line 2: a quoted field"),
        ('id,report\n1,Mild edema.\n2,"No edema.",extra\n', "line 3: 3 fields, expected 2"),
    ],
)
def test_unbalanced_quotes_never_merge_rows(tmp_path, content, match):
    src = tmp_path / "reports.csv"
    src.write_text(content)
    with pytest.raises(ValueError, match=rf"reports\.csv: {match}"):
        label_reports(src, tmp_path / "labels.csv")
    assert not (tmp_path / "labels.csv").exists()


@pytest.mark.parametrize(
    ("degrees", "severity"), [("most-significant", "moderate"), ("last", "small")]
)
def test_cli_degrees_rule_reaches_the_labels(tmp_path, degrees, severity):
    """`finegrain label --degrees` chooses among several degrees of one finding."""
    from finegrain.cli import main

    src, out = tmp_path / "reports.csv", tmp_path / "labels.csv"
    with open(src, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "report"])
        writer.writerow(["r1", "Moderate right pleural effusion. Small left pleural effusion."])
    assert main(["label", str(src), "-o", str(out), "--degrees", degrees, "--no-progress"]) == 0
    with open(out, encoding="utf-8", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert row["Pleural Effusion"] == "1"
    assert row["Pleural Effusion severity"] == severity


def test_label_never_writes_over_its_input(tmp_path, capsys):
    from finegrain.cli import main

    reports = tmp_path / "r.csv"
    reports.write_text("id,report\n1,FINDINGS: Small effusion.\n", encoding="utf-8")
    before = reports.read_bytes()
    assert main(["label", str(reports), "-o", str(reports)]) == 2
    assert "is the input" in capsys.readouterr().err
    assert reports.read_bytes() == before
    (tmp_path / "sub").mkdir()
    same = tmp_path / "sub" / ".." / "r.csv"  # the same file, spelled differently
    assert main(["label", str(reports), "-o", str(same)]) == 2
    assert reports.read_bytes() == before


def _reports_text(text: str) -> str:
    return f'id,report\n1,"{text}"\n2,"No acute cardiopulmonary process."\n'


@pytest.mark.parametrize(
    ("encode", "decoded_as"),
    [
        (lambda t: t.encode("utf-16"), "UTF-16 (its byte-order mark)"),
        (lambda t: t.encode("utf-16-le"), "UTF-16 LE (no byte-order mark"),
        (lambda t: t.encode("utf-32"), "UTF-32 (its byte-order mark)"),
        (lambda t: t.encode("utf-8-sig"), "UTF-8 (its byte-order mark)"),
        (lambda t: t.encode("latin-1"), "Windows-1252 (not UTF-8, and no UTF-8 character"),
    ],
    ids=["utf-16", "utf-16-le", "utf-32", "utf-8-bom", "latin-1"],
)
def test_reports_in_other_encodings_are_read_right_and_said(tmp_path, encode, decoded_as):
    """A UTF-16 reports file failed on "no column 'id'" (its header mojibake); a Latin-1 one
    lost its "effusión" to U+FFFD."""
    from finegrain.reports.labels_csv import read_reports

    text = "Grande effusión. Moderate pulmonary edema."
    src = tmp_path / "reports.csv"
    src.write_bytes(encode(_reports_text(text)))
    rows, replaced, how = read_reports(src, "id", "report")
    assert [r[:2] for r in rows] == [("1", text), ("2", "No acute cardiopulmonary process.")]
    assert replaced == 0 and how.startswith(decoded_as)
    summary = label_reports(src, tmp_path / "labels.csv")
    assert summary.counts["Edema"]["positive"] == 1 and summary.decode_replaced == 0
    assert f"read as {decoded_as}" in summary.format()


def test_encoding_option_and_damaged_utf8(tmp_path, capsys):
    from finegrain.cli import main

    src = tmp_path / "reports.csv"
    text = _reports_text("Small effusión, ça va.").encode("utf-8")
    src.write_bytes(text.replace(b"\xc3\xa7", b"\xe7"))  # one Latin-1 byte in a UTF-8 file
    summary = label_reports(src, tmp_path / "l.csv")
    assert summary.decode_replaced == 1 and summary.decoded_as == ""
    assert "--encoding" in summary.format()
    # --encoding: read strictly with it, an undecodable byte named
    assert main(["label", str(src), "-o", str(tmp_path / "l2.csv"), "--encoding", "utf-8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"finegrain label: error: {src}: line 2, byte 21 (0xe7) is not utf-8"
    latin = tmp_path / "latin.csv"
    latin.write_bytes(_reports_text("Small effusión.").encode("latin-1"))
    assert main(["label", str(latin), "-o", str(tmp_path / "l3.csv"), "--encoding", "latin-1"]) == 0
    assert "read as latin-1 (as asked)" in capsys.readouterr().out
    assert main(["label", str(latin), "-o", str(tmp_path / "l4.csv"), "--encoding", "nope"]) == 2
    assert "unknown encoding 'nope'" in capsys.readouterr().err
