"""Shared test helpers: the curated table's path, a CSV writer, and CLI runners.

``run_cli(*args)`` runs ``msc_meta.cli.main`` in-process (fast) and returns
``(exit_code, stdout, stderr)``; an uncaught exception (a traceback for the
user) propagates and fails the test. ``run_cli_process`` does the same in a
fresh ``python -m msc_meta`` process, for what only a real process shows.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest


@pytest.fixture
def curated_path() -> Path:
    """The packaged outcomes.csv; skips the test while the curated file does not exist yet."""
    from msc_meta.data import curated_path as packaged

    path = packaged()
    if not path.is_file():
        pytest.skip("the curated outcomes.csv is not there yet")
    return path


def write_table(path: Path, rows, columns=None, *, encoding: str = "utf-8", newline: str = "\n",
                delimiter: str = ",") -> Path:
    """Write ``rows`` to ``path``: a list of dicts (columns = union of keys unless given), or raw str/bytes."""
    path = Path(path)
    if isinstance(rows, bytes):
        path.write_bytes(rows)
        return path
    if isinstance(rows, str):
        path.write_bytes(rows.encode(encoding))
        return path
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, delimiter=delimiter, lineterminator=newline,
                            extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


@pytest.fixture
def tmp_table(tmp_path):
    """``tmp_table(rows, name="table.csv", columns=None, encoding=, newline=, delimiter=) -> Path``."""
    def write(rows, name: str = "table.csv", columns=None, **options) -> Path:
        return write_table(tmp_path / name, rows, columns, **options)

    return write


def run_cli_in_process(*args: str) -> tuple[int, str, str]:
    from msc_meta.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def run_cli_subprocess(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "msc_meta", *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def run_cli():
    return run_cli_in_process


@pytest.fixture
def run_cli_process():
    return run_cli_subprocess
