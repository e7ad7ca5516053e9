"""Every example in a command's --help runs on the shipped table (the help must teach true things)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from msc_meta.cli import COMMANDS, cli

PLACEHOLDERS = ("my_table", "my_outcomes", "mine.csv")
SOURCES = next((p for p in (Path(__file__).resolve().parents[2] / "shared" / "sources",
                            Path("/work/shared/sources")) if p.is_dir()), None)


def _examples():
    import importlib

    epilogs = [cli.epilog or ""]
    for module, function, _ in COMMANDS.values():
        epilogs.append(getattr(importlib.import_module(module), function).epilog or "")
    lines, pending = [], ""
    for text in epilogs:
        for raw in text.splitlines():
            line = raw.strip()
            if pending:
                line, pending = pending + " " + line, ""
            if line.endswith("\\"):
                pending = line[:-1].strip()
                continue
            if line.startswith("msc-meta ") and not any(p in line for p in PLACEHOLDERS):
                lines.append(line)
    return sorted(set(lines))


EXAMPLES = _examples()


def test_there_are_examples():
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("line", EXAMPLES)
def test_help_example_runs(line, run_cli, tmp_path):
    args = shlex.split(line.split(" | ")[0])[1:]      # the msc-meta part of a pipeline
    if "../shared/sources" in args:
        if SOURCES is None:
            pytest.skip("the source documents are not beside this checkout")
        args = [str(SOURCES) if a == "../shared/sources" else a for a in args]
    cwd = os.getcwd()
    os.chdir(tmp_path)               # -o files land here
    try:
        code, out, err = run_cli(*args)
    finally:
        os.chdir(cwd)
    assert code == 0, f"{line}\n{err}"
    assert "Traceback" not in err
