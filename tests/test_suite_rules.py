"""Rules the test suite keeps so that its tests can fail (checked on the test files' text)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FILES = sorted(p for p in TESTS.glob("*.py") if p.name != Path(__file__).name)

RULES = {
    # shared helpers live in tests/helpers.py (or conftest.py fixtures)
    "a test module imports another test module": re.compile(
        r"^\s*(from\s+test_\w+\s+import|import\s+test_\w+)", re.M
    ),
    # an ImportError of finegrain itself must fail, not skip
    "importorskip of finegrain's own modules": re.compile(r"importorskip\(\s*[\"']finegrain"),
    # a stub patched onto an attribute that does not exist never applies
    "monkeypatch with raising=False": re.compile(r"raising\s*=\s*False"),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_no_test_file_breaks_the_rule(rule):
    offenders = []
    for path in FILES:
        for match in RULES[rule].finditer(path.read_text(encoding="utf-8")):
            line = path.read_text(encoding="utf-8").count("\n", 0, match.start()) + 1
            offenders.append(f"{path.name}:{line}")
    assert offenders == [], f"{rule}: {', '.join(offenders)}"
