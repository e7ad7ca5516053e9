"""The README's example output is what the commands print today."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _examples():
    text = README.read_text(encoding="utf-8")
    for block in re.findall(r"```\n(\$ msc-meta [^\n]*\n.*?)```", text, flags=re.S):
        command, _, output = block.partition("\n")
        yield command[2:], output


@pytest.mark.parametrize("command, output", list(_examples()))
def test_readme_example_output(monkeypatch, run_cli, command, output):
    monkeypatch.setenv("COLUMNS", "100")
    args = command.split()[1:]
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert [line.rstrip() for line in out.splitlines()] == output.rstrip("\n").splitlines()


def test_readme_has_examples():
    assert len(list(_examples())) >= 2
