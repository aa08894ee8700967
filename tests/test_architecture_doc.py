"""docs/architecture.md is true to the code: every method, model, preset, selection and launcher
finegrain registers, and every command, is named there (a new one without its line fails)."""

from __future__ import annotations

from pathlib import Path

import pytest

from finegrain.cli import COMMANDS
from finegrain.cli.registered import KINDS, registries

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _named(name: str) -> bool:
    return f"`{name}`" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", KINDS)
def test_every_registered_entry_is_in_the_architecture_doc(kind):
    _, registry = registries()[kind]
    own = [n for n in registry if (registry.module_of(n) or "").startswith("finegrain.")]
    assert own, f"no {kind} registered by finegrain"
    assert [n for n in own if not _named(n)] == [], f"{kind} missing from {DOC}"


def test_every_command_is_in_the_architecture_doc():
    assert [name for name, _ in COMMANDS if not _named(name)] == []


def test_the_check_can_fail():
    assert not _named("no-such-method-xyz")
