"""``finegrain label --explain`` / ``explain_report``: the words that made each label, as the
labeler read them, consistent with the labels themselves, and never printed or logged."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finegrain.reports import explain_report, label_report, label_reports
from finegrain.reports.engine import _piece_offsets, _pieces
from finegrain.reports.lexicon import default_lexicon

REPORT = (
    "INDICATION: r/o PNA.\n"
    "FINDINGS: Moderate left pleural effusion, decreasing in size since the prior. "
    "Possible RLL PNA. No PTX. Heart size is at the upper limits of normal.\n"
    "IMPRESSION: Effusion, now small."
)


def _record(records: list[dict], observation: str) -> dict:
    [record] = [r for r in records if r["observation"] == observation]
    return record


def test_explain_gives_the_words_behind_each_label():
    records = explain_report(REPORT)
    effusion = _record(records, "Pleural Effusion")
    assert (effusion["status"], effusion["severity"], effusion["change"]) == (
        1,
        "small",
        "decrease",
    )
    first, second = effusion["mentions"]
    assert first["sentence"].startswith("moderate left pleural effusion, decreasing in size")
    assert first["mention"] == "pleural effusion"
    assert first["degrees"] == [{"words": "moderate", "term": "moderate", "current": False}]
    assert first["change"] == {"words": "decreasing", "term": "decrease"}
    assert first["trigger"] is None
    # the degree marked current decides across the report
    assert second["degrees"] == [{"words": "small", "term": "small", "current": True}]
    # the trigger of a hedge and of a negation, with the abbreviation as written
    pneumonia = _record(records, "Pneumonia")
    assert pneumonia["status"] == -1
    assert [(m["mention"], m["trigger"]) for m in pneumonia["mentions"]] == [("pna", "possible")]
    assert pneumonia["mentions"][0]["sentence"] == "possible rll pna"  # not the indication's
    ptx = _record(records, "Pneumothorax")
    assert [(m["mention"], m["trigger"], m["status"]) for m in ptx["mentions"]] == [
        ("ptx", "no", 0)
    ]
    heart = _record(records, "Cardiomegaly")
    assert heart["status"] == 0 and heart["mentions"][0]["trigger"] == "normal"
    # no record for what the report does not mention
    assert {r["observation"] for r in records} == {
        "Pleural Effusion",
        "Pneumonia",
        "Pneumothorax",
        "Cardiomegaly",
    }


def test_explain_maps_words_back_over_abbreviations():
    [record] = [
        r
        for r in explain_report("Small b/l effusions w/o PTX.")
        if r["observation"] == "Pneumothorax"
    ]
    [mention] = record["mentions"]
    assert mention["sentence"] == "small b/l effusions w/o ptx"
    assert (mention["mention"], mention["trigger"]) == ("ptx", "w/o")
    [effusion] = explain_report("Small b/l effusions w/o PTX.")[1:2]
    assert effusion["mentions"][0]["degrees"][0]["words"] == "small"


def test_unassessed_and_no_finding_records():
    [record] = explain_report("Evaluation for pleural fluid is limited.")
    assert record["status"] == -1
    assert record["mentions"][0]["unassessed"] is True
    assert record["mentions"][0]["trigger"] == "is limited"
    [normal] = explain_report("Normal chest radiograph.")
    assert (normal["observation"], normal["status"], normal["mentions"]) == ("No Finding", 1, [])
    [other] = explain_report("Emphysema.")
    assert other["observation"] == "No Finding" and other["status"] is None
    assert other["mentions"][0]["mention"] == "emphysema"
    assert explain_report("") == []


_WORDS = st.sampled_from(
    [
        *(
            [
                "no",
                "small",
                "moderate",
                "left",
                "right",
                "pleural",
                "effusion",
                "ptx",
                "pna",
                "b/l",
                "w/o",
                "edema",
                "heart",
            ]
        ),
        *(
            [
                "size",
                "is",
                "at",
                "the",
                "upper",
                "limits",
                "of",
                "normal,",
                "which",
                "was",
                "improved",
                "but",
                "persistent",
            ]
        ),
        *(
            [
                "possible",
                "previously",
                "now",
                "mildly",
                "to",
                "markedly",
                "enlarged",
                "cardiomegaly",
            ]
        ),
        *(".", ";", "\n\n", "xxxx", "___"),
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_WORDS, max_size=40).map(" ".join))
def test_explanations_agree_with_the_labels(text):
    labels = label_report(text)
    records = explain_report(text)
    for record in records:
        label = labels[record["observation"]]
        assert (record["status"], record["severity"], record["change"]) == (
            label.status,
            label.severity,
            label.change,
        )
        for mention in record["mentions"]:
            assert mention["mention"] in mention["sentence"]
            for degree in mention["degrees"]:
                assert degree["words"] in mention["sentence"]
    mentioned = {r["observation"] for r in records}
    for observation, label in labels.items():
        if label.status is not None and observation != "No Finding":
            assert observation in mentioned


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab .;\n?!", max_size=3000))
def test_sentence_offsets_match_the_sentences(body):
    pieces = list(_pieces(body))
    offsets = _piece_offsets(body)
    assert len(offsets) == len(pieces)
    for offset, piece in zip(offsets, pieces, strict=True):
        assert body[offset : offset + len(piece)] == piece


def _write(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("id,report\n")
        for report_id, text in rows:
            handle.write(f'{report_id},"{text}"\n')


def test_label_reports_writes_reasons_only_when_asked(tmp_path):
    src = tmp_path / "reports.csv"
    _write(src, [("a", REPORT), ("b", ""), ("c", "Normal chest.")])
    label_reports(src, tmp_path / "labels.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "reports.csv"]
    label_reports(src, tmp_path / "labels2.csv", explain=tmp_path / "reasons.jsonl")
    assert (tmp_path / "labels.csv").read_bytes() == (tmp_path / "labels2.csv").read_bytes()
    lines = [json.loads(line) for line in (tmp_path / "reasons.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == ["a"] * 4 + ["c"]
    assert lines[:4] == [{"id": "a", **record} for record in explain_report(REPORT)]
    with pytest.raises(ValueError, match="the same file as the labels CSV"):
        label_reports(src, tmp_path / "x.csv", explain=tmp_path / "x.csv")


def test_cli_explain_prints_and_logs_no_report_text(tmp_path, capsys, caplog):
    from finegrain.cli import main

    caplog.set_level(logging.INFO)
    src, out, reasons = tmp_path / "reports.csv", tmp_path / "labels.csv", tmp_path / "r.jsonl"
    _write(src, [("a", REPORT)])
    code = main(["label", str(src), "-o", str(out), "--explain", str(reasons), "--no-progress"])
    assert code == 0
    shown = " ".join((capsys.readouterr().out + caplog.text).lower().split())
    assert "reasons written to" in shown
    for phrase in ("pleural effusion, decreasing", "rll pna", "upper limits of normal"):
        assert phrase not in shown
    assert "upper limits of normal" in reasons.read_text(encoding="utf-8")
    out.unlink()  # the reasons file is an output too: not replaced without --overwrite
    assert main(["label", str(src), "-o", str(out), "--explain", str(reasons)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and not out.exists()


def test_explain_is_a_separate_path_of_the_same_engine():
    # the default path collects no evidence: analyse without a list returns the same labels
    from finegrain.reports.aggregate import study_labels
    from finegrain.reports.engine import analyse

    lex = default_lexicon()
    evidence: list = []
    assert study_labels(analyse(REPORT, lex, evidence)) == study_labels(analyse(REPORT, lex))
    assert len(evidence) == 5  # one per mention of the labelled sections
