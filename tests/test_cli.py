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


@pytest.mark.parametrize(
    ("flags", "own_debug", "third_party_info"),
    [([], False, False), (["-v"], True, False), (["-vv"], True, True), (["@-v"], True, False)],
)
def test_verbosity_is_for_finegrain_and_third_party_info_stays_quiet(
    flags, own_debug, third_party_info, tmp_path, capsys
):
    """Default: finegrain's INFO shows, other libraries' INFO (onnxscript floods `export`) does
    not; -v shows finegrain's DEBUG; -vv lets other libraries' INFO through too. `-v` works
    before or after the command."""
    import logging

    reports = tmp_path / "reports.csv"
    reports.write_text('id,report\n1,"Mild edema."\n')
    before = [f for f in flags if not f.startswith("@")]
    after = [f[1:] for f in flags if f.startswith("@")]
    args = [*before, "label", str(reports), "-o", str(tmp_path / "l.csv"), "--no-progress"]
    assert main([*args, *after]) == 0
    capsys.readouterr()
    logging.getLogger("finegrain.test").info("own info")
    logging.getLogger("finegrain.test").debug("own debug")
    logging.getLogger("onnxscript.optimizer").info("third-party info")
    logging.getLogger("onnxscript.optimizer").warning("third-party warning")
    err = capsys.readouterr().err
    assert "own info" in err and "third-party warning" in err
    assert ("own debug" in err) == own_debug
    assert ("third-party info" in err) == third_party_info
