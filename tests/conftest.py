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


# A small valid outcome table (curated columns), its sources and totals: the
# base into which the check tests plant one error at a time.
SOURCE_NAME = "trials.txt"
SOURCE_TEXT = """Trial R (randomised, placebo controlled). Combined remission at week 24:
53 of 107 patients (49.5%) treated with cells and 36 of 105 (34.3%)
given placebo. Clinical remission was reached by 50% of treated patients.
Each treated patient of trial R received 12 x 10^7 cells.

Dose-finding trial D. Three cohorts of five patients each received 1, 3 or 9 x 10^7 cells;
six received placebo. Cohort D1 received 1 x 10^7 cells, D2 3 x 10^7 and D3 9 x 10^7. At week 12, healing occurred in 2 of 5, 3 of 5 and 4 of 5
patients, and in 1 of 6 with placebo. In total 21 patients were randomised.

Case series S: 70% of the patients (21/30) experienced clinical closure, and
43.3% (13/30) achieved radiological remission.
"""

_Q_R = "53 of 107 patients (49.5%) treated with cells and 36 of 105 (34.3%) given placebo"
_Q_D = ("At week 12, healing occurred in 2 of 5, 3 of 5 and 4 of 5 patients, and in 1 of 6 "
        "with placebo.")


def _row(study_id, trial, outcome, weeks, events_t, n_t, pct_t, events_c, n_c, pct_c, design,
         dose, quote, note=""):
    return {"study_id": study_id, "trial": trial, "outcome": outcome, "timepoint_weeks": weeks,
            "unit": "patient", "events_t": events_t, "n_t": n_t, "pct_t": pct_t,
            "events_c": events_c, "n_c": n_c, "pct_c": pct_c, "design": design, "product": "",
            "cell_source": "adipose", "donor": "allogeneic", "route": "local", "dose_cells": dose,
            "dose_text": "", "source": SOURCE_NAME, "quote": quote, "note": note}


def valid_rows() -> list[dict]:
    """Rows 2-8 of a valid table (spreadsheet row = index + 2)."""
    return [
        _row("R", "R", "combined_remission", 24, 53, 107, "49.5", 36, 105, "34.3", "rct", "1.2e8", _Q_R),
        _row("R", "R", "clinical_remission", 24, "", 107, "50", "", 105, "", "rct", "1.2e8",
             "Clinical remission was reached by 50% of treated patients.",
             "n from the combined remission row (107 treated, 105 placebo)"),
        _row("D1", "D", "healing", 12, 2, 5, "", 1, 6, "", "dose_finding_rct", "1e7", _Q_D),
        _row("D2", "D", "healing", 12, 3, 5, "", 1, 6, "", "dose_finding_rct", "3e7", _Q_D),
        _row("D3", "D", "healing", 12, 4, 5, "", 1, 6, "", "dose_finding_rct", "9e7", _Q_D),
        _row("S", "S", "clinical_closure", 24, 21, 30, "70", "", "", "", "case_series", "",
             "70% of the patients (21/30) experienced clinical closure"),
        _row("S", "S", "radiological_remission", 24, 13, 30, "43.3", "", "", "", "case_series", "",
             "43.3% (13/30) achieved radiological remission"),
    ]


_DOSE_R = "Each treated patient of trial R received 12 x 10^7 cells"
_DOSES_D = "Cohort D1 received 1 x 10^7 cells, D2 3 x 10^7 and D3 9 x 10^7"
_HEAL = '"in 2 of 5, 3 of 5 and 4 of 5"'


def _bind_d(k: int, dose: str) -> str:
    return (f"events_t = {_HEAL}[{2 * k - 1}]; n_t = {_HEAL}[{2 * k}]; events_c = \"in 1 of 6\"[1]; "
            f"n_c = \"in 1 of 6\"[2]; timepoint_weeks = \"At week 12\"; dose_cells = sci(\"{dose}\")")


def bound_rows() -> list[dict]:
    """valid_rows() with a bind column, every number bound to its quote (spans joined by " … ")."""
    rows = valid_rows()
    rows[0]["quote"] = "Combined remission at week 24: " + _Q_R + " … " + _DOSE_R
    rows[0]["bind"] = ('events_t = "53 of 107 patients (49.5%)"[1]; n_t = "53 of 107 patients (49.5%)"[2]; '
                       'pct_t = "53 of 107 patients (49.5%)"[3]; events_c = "36 of 105 (34.3%)"[1]; '
                       'n_c = "36 of 105 (34.3%)"[2]; pct_c = "36 of 105 (34.3%)"[3]; '
                       'timepoint_weeks = "at week 24"; dose_cells = sci("12 x 10^7")')
    rows[1]["note"] += ", week 24"
    rows[1]["bind"] = 'n_t = same; pct_t = "50%"; n_c = same; timepoint_weeks = note"week 24"; dose_cells = same'
    for k, dose in ((1, "1 x 10^7"), (2, "3 x 10^7"), (3, "9 x 10^7")):
        rows[1 + k]["quote"] = _Q_D + " … " + _DOSES_D
        rows[1 + k]["bind"] = _bind_d(k, dose)
    for row, frac, pct in ((rows[5], "(21/30)", "70%"), (rows[6], "(13/30)", "43.3%")):
        row["note"] = "Time point week 24 is the curator's reading."
        row["bind"] = (f'events_t = "{frac}"[1]; n_t = "{frac}"[2]; pct_t = "{pct}"; '
                       'timepoint_weeks = note"week 24"')
    return rows


def valid_totals() -> list[dict]:
    """Rows 2-4 of a valid totals table for valid_rows()."""
    base = {"trial": "D", "timepoint_weeks": 12, "unit": "patient", "members": "D1;D2;D3",
            "source": SOURCE_NAME, "quote": "In total 21 patients were randomised.", "note": ""}
    return [dict(base, arm="treatment", total_n=15), dict(base, arm="control", total_n=6),
            dict(base, arm="all", total_n=21)]


@pytest.fixture
def sources_dir(tmp_path) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    (folder / SOURCE_NAME).write_text(SOURCE_TEXT, encoding="utf-8")
    return folder


# Lines a test wants shown after the run (e.g. the mutation guard's score), without -s.
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter):
    for line in SUMMARY:
        terminalreporter.write_line(line)
