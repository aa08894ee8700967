"""The command line: every subcommand is registered and explains itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from finegrain.cli import COMMANDS, build_parser, main


def test_every_command_is_registered():
    parser = build_parser()
    registered = set(parser._subparsers._group_actions[0].choices)
    assert registered == {name for name, _ in COMMANDS}


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_command_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"finegrain {name}" in out
    assert len(out.splitlines()) > 5  # a real explanation, not just a usage line


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, _ in COMMANDS:
        assert name in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "finegrain", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("finegrain ")
