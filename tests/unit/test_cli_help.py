"""Every subcommand, argument and option of the command line says what it is for."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardiogate.cli import _parser, main


def _walk(
    parser: argparse.ArgumentParser, path: str = "cardiogate"
) -> Iterator[tuple[str, str | None]]:
    """(where, help) of every subcommand and argument of ``parser`` and its subparsers."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            described = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", described.get(name)
                yield from _walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            name = "/".join(action.option_strings) or action.dest
            yield f"{path} {name}", action.help


def _says_something(text: str | None) -> bool:
    """Help that is more than an environment variable's name."""
    if text is None or text == argparse.SUPPRESS:
        return False
    return bool(re.search(r"[a-z]{2,}", re.sub(r"CARDIOGATE_\w+", "", text)))


def test_every_subcommand_and_option_has_a_help_text() -> None:
    found = dict(_walk(_parser()))
    assert "cardiogate synth --seed" in found  # the walk reaches subcommands' options
    assert "cardiogate route explain target" in found  # and nested subcommands' arguments
    assert "cardiogate review export" in found
    missing = sorted(where for where, text in found.items() if not _says_something(text))
    assert missing == []


def test_the_walk_finds_an_option_without_help() -> None:
    parser = _parser()
    parser.add_argument("--undocumented")
    assert dict(_walk(parser))["cardiogate --undocumented"] is None


def test_synth_help_shows_the_texts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["synth", "--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps at the terminal width
    assert "ct: a cardiac CT series; xa: an angiography cine" in out
    assert "the same seed writes the same series" in out


def test_an_error_with_json_is_also_a_json_object_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert main(["analyze", str(missing), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"error": f"no such file or folder: {missing}"}
    assert f"no such file or folder: {missing}" in captured.err
    assert main(["analyze", str(missing)]) == 2
    assert capsys.readouterr().out == ""  # without --json, stdout stays empty
