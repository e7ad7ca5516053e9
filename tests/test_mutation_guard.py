"""Mutation test of the CI guard: every single wrong number in the shipped table must fail ``check``.

For every row of the shipped outcome table, in a copy (with the shipped
totals) in tmp_path: each count changed by +1 and by -1 (when the row stays
loadable: 0 <= events <= n, n >= 1), each printed percentage changed by +1
and -1, each time point moved (+1 week, and to the neighbouring usual time
points: 208 -> 104, 24 -> 52...; a blank time point set to 24), each dose
multiplied by 10, each mean, SEM and p-value changed by one in its last
printed digit, and each before/after pair swapped. ``run_checks`` with the sources must report at least one
failure for each. The sources are ``../shared/sources`` from the repository
root (or $MSC_META_SOURCES); the test is skipped when they are absent.
Numbers that no check can catch in principle are listed in docs/data.md
("What the guard cannot catch"); there are none in the shipped table now.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import pytest

from conftest import SUMMARY
from msc_meta.data import curated_path, curated_totals_path, load_table, load_totals
from msc_meta.data.check import run_checks
from msc_meta.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SOURCES = Path(os.environ.get("MSC_META_SOURCES") or ROOT.parent / "shared" / "sources")
COUNTS = ("events_t", "n_t", "events_c", "n_c")
# The continuous columns of the shipped table (paired before/after means).
MEASUREMENTS = ("mean_pre", "se_pre", "mean_post", "se_post", "p_value")
USUAL_WEEKS = (4, 13, 14, 24, 52, 104, 208, 312)


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def _write(path: Path, header: list[str], rows: list[dict]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _number(text: str) -> str:
    value = float(text)
    return str(int(value)) if value == int(value) else f"{value:g}"


def time_mutations(text: str) -> list[str]:
    """Other time points for a cell: +1 week and the usual time points on either side; blank -> 24."""
    if not text.strip():
        return ["24"]
    weeks = float(text)
    below = [w for w in USUAL_WEEKS if w < weeks][-1:]
    above = [w for w in USUAL_WEEKS if w > weeks][:1]
    return [_number(str(weeks + 1))] + [str(w) for w in below + above]


def mutations(rows: list[dict]):
    """(row index, column, new text) for every single-number change."""
    for i, row in enumerate(rows):
        for column in COUNTS:
            if row[column].strip():
                for step in (1, -1):
                    yield i, column, str(int(row[column]) + step)
        for column in ("pct_t", "pct_c"):
            if row[column].strip():
                for step in (1, -1):
                    yield i, column, _number(str(float(row[column]) + step))
        for new in time_mutations(row["timepoint_weeks"]):
            yield i, "timepoint_weeks", new
        if row["dose_cells"].strip():
            yield i, "dose_cells", f"{float(row['dose_cells']) * 10:g}"
        for column in MEASUREMENTS:
            if row.get(column, "").strip():
                for new in last_digit_mutations(row[column]):
                    yield i, column, new
        if row.get("mean_pre", "").strip() and row.get("mean_post", "").strip():
            # before and after swapped (the CDAI pair is printed after-first)
            yield i, ("mean_pre", "mean_post"), (row["mean_post"], row["mean_pre"])


def last_digit_mutations(text: str) -> list[str]:
    """A measurement changed by one in its last printed digit, up and down (6.1 -> 6.2, 6.0;
    0.006 -> 0.007, 0.005; 270 -> 271, 269), as a slip in copying would change it."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    step = 10.0 ** -decimals
    return [f"{float(text) + d * step:.{decimals}f}" for d in (1, -1)]


def run_mutations(tmp_path: Path, sources: Path) -> tuple[int, int, list[str]]:
    """Apply each mutation to a copy of the shipped table; returns (tried, caught, the ones missed)."""
    header, rows = _read(curated_path())
    totals = load_totals(shutil.copy(curated_totals_path(), tmp_path / "totals.csv"))
    target = tmp_path / "outcomes.csv"
    tried, missed = 0, []
    for i, column, new in mutations(rows):
        columns, values = (column, new) if isinstance(column, tuple) else ((column,), (new,))
        changed = [dict(r, **dict(zip(columns, values))) if j == i else r for j, r in enumerate(rows)]
        try:
            table = load_table(_write(target, header, changed))
        except InputError:
            continue              # not a valid row any more: not a mutation the guard must catch
        tried += 1
        if run_checks(table, totals, sources).ok:
            missed.append(f"row {i + 2} {rows[i]['study_id']} / {rows[i]['outcome']}: "
                          f"{'/'.join(columns)} {'/'.join(rows[i][c] or '(blank)' for c in columns)} -> "
                          f"{'/'.join(values)}")
    return tried, tried - len(missed), missed


@pytest.fixture
def sources() -> Path:
    if not SOURCES.is_dir():
        pytest.skip(f"the source documents are not at {SOURCES} (set MSC_META_SOURCES)")
    return SOURCES


def test_shipped_table_passes_with_sources(sources):
    report = run_checks(load_table(None), load_totals(None), sources)
    assert report.ok, [f.reason for f in report.failures]


def test_every_single_number_change_is_caught(tmp_path, sources):
    tried, caught, missed = run_mutations(tmp_path, sources)
    score = f"mutation guard: caught {caught} of {tried} single-number changes ({100 * caught / tried:.1f} %)"
    SUMMARY.append(score)
    assert tried > 500, score
    assert not missed, score + "; missed:\n" + "\n".join(missed)


def test_time_mutations():
    assert time_mutations("208") == ["209", "104", "312"]
    assert time_mutations("24") == ["25", "14", "52"]
    assert time_mutations("") == ["24"]


def test_last_digit_mutations():
    assert last_digit_mutations("6.1") == ["6.2", "6.0"]
    assert last_digit_mutations("0.006") == ["0.007", "0.005"]
    assert last_digit_mutations("270") == ["271", "269"]


def test_the_continuous_numbers_are_mutated():
    """Every mean, SEM and p-value of the shipped table is among the planted changes."""
    header, rows = _read(curated_path())
    planted = {(i, c) for i, c, _ in mutations(rows) if isinstance(c, str)}
    swapped = {i for i, c, _ in mutations(rows) if isinstance(c, tuple)}
    filled = {(i, c) for i, r in enumerate(rows) for c in MEASUREMENTS if r[c].strip()}
    assert filled and filled <= planted
    assert swapped == {i for i, r in enumerate(rows) if r["mean_pre"].strip()}
