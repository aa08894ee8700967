"""The paper's division rule (Table 1) and its precedence parameter."""

from __future__ import annotations

import pytest

from finegrain.division import CHANGE_CUES, PRECEDENCES, SEVERITY_CUES, divide


def test_table1_sides():
    atypical = {"trace", "small", "tiny", "minor", "minimal", "mild", "mild-to-moderate"}
    typical = {
        "large",
        "massive",
        "substantial",
        "moderate",
        "moderate-to-severe",
        "acute",
        "severe",
    }
    assert {t for t, s in SEVERITY_CUES.items() if s == "atypical"} == atypical
    assert {t for t, s in SEVERITY_CUES.items() if s == "typical"} == typical
    assert {t for t, s in CHANGE_CUES.items() if s == "atypical"} == {
        "clear",
        "resolution",
        "improve",
        "decrease",
    }
    assert {t for t, s in CHANGE_CUES.items() if s == "typical"} == {
        "progress",
        "worsen",
        "increase",
    }


@pytest.mark.parametrize("precedence", PRECEDENCES)
def test_no_cue_is_typical(precedence):
    assert divide(None, None, precedence) == "typical"
    assert divide("", "", precedence) == "typical"


@pytest.mark.parametrize("precedence", PRECEDENCES)
def test_single_dimension_decides_alone(precedence):
    for term, side in SEVERITY_CUES.items():
        assert divide(term, None, precedence) == side
    for term, side in CHANGE_CUES.items():
        assert divide(None, term, precedence) == side


@pytest.mark.parametrize(
    ("severity", "change", "precedence", "expected"),
    [
        ("moderate", "improve", "severity", "typical"),
        ("moderate", "improve", "change", "atypical"),
        ("moderate", "improve", "typical-wins", "typical"),
        ("moderate", "improve", "atypical-wins", "atypical"),
        ("mild", "worsen", "severity", "atypical"),
        ("mild", "worsen", "change", "typical"),
        ("mild", "worsen", "typical-wins", "typical"),
        ("mild", "worsen", "atypical-wins", "atypical"),
        ("small", "decrease", "typical-wins", "atypical"),
        ("severe", "increase", "atypical-wins", "typical"),
    ],
)
def test_opposite_cues_follow_precedence(severity, change, precedence, expected):
    assert divide(severity, change, precedence) == expected


def test_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="unknown precedence 'loudest'"):
        divide("mild", None, "loudest")
    with pytest.raises(ValueError, match="severity cue 'huge'"):
        divide("huge", None)
    with pytest.raises(ValueError, match="change cue 'better'"):
        divide(None, "better")
