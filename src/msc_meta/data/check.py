"""Consistency checks of an outcome table: the CI guard behind ``msc-meta check``.

Loading (``msc_meta.data.load``) already refuses malformed files; these
checks look for numbers that are well-formed but do not agree with each
other or with the sources:

``pct``
    A printed percentage must equal ``100 * events / n`` within the rounding
    its decimals imply: "63" allows [62.5, 63.5], "43.3" allows
    [43.25, 43.35] (inclusive, plus 1e-9 for floating point). A row with a
    printed percentage and ``n`` but no event count must have *some* whole
    count out of ``n`` that rounds to it (otherwise percentage and ``n``
    cannot both be right).
``arm_size``
    Rows of one study group at one time point and unit must agree on ``n_t``,
    and on ``n_c`` where given. The row that differs from the most common
    value is reported (on a tie, the later row).
``subgroup``
    ``subgroup_of`` names study groups that exist in the table, is the same
    on every row of a study group, never makes a group part of itself, and
    a part is never larger than the whole (``n_t`` at the same time point
    and unit).
``totals``
    Each row of totals.csv: the members' ``n_t`` summed (arm ``treatment``),
    their shared ``n_c`` counted once (``control``), or both (``all``), at the
    row's time point and unit, must equal the ``total_n`` the source states.
``bind``, ``numbers``, ``timepoint`` (when the table has a ``bind`` column, and always with a sources folder)
    Every number of a row (counts, printed percentages, time point, dose) is
    read from the row's quote by its ``bind`` entry and must equal the cell;
    see ``msc_meta.data.check_bind`` and docs/data.md ("Binding numbers"). A
    number that merely appears somewhere in the quote does not count.
``source_file``, ``quote`` (only with a sources folder)
    The ``source`` file must exist; each span of the ``quote`` (spans are
    joined by " … ") must occur verbatim in it once every whitespace run is
    collapsed to one space on both sides. A row with counts but no quote fails.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from msc_meta.data.check_bind import check_bindings
from msc_meta.data.keys import key
from msc_meta.data.load import OutcomeTable, Row, TotalsTable, format_weeks

CHECKS = ("pct", "arm_size", "subgroup", "totals", "source_file", "quote", "bind", "numbers", "timepoint",
          "lock")

# Floating-point slack on the rounding interval of a printed percentage.
PCT_SLACK = 1e-9


@dataclass(frozen=True)
class CheckFailure:
    row: int | None          # spreadsheet row in `file` (header = 1); None for a lock difference
    study_id: str | None     # for totals failures: the members, ';'-separated
    outcome: str | None
    check: str               # one of CHECKS
    reason: str
    file: str

    def to_dict(self) -> dict:
        return {"row": self.row, "study_id": self.study_id, "outcome": self.outcome,
                "check": self.check, "reason": self.reason, "file": self.file}


@dataclass(frozen=True)
class CheckReport:
    rows_checked: int
    failures: tuple[CheckFailure, ...]
    checks_run: tuple[str, ...]
    skipped: tuple[str, ...]        # one sentence per check that did not run, and why
    path: str
    totals_path: str | None = None
    sources_dir: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {
            "rows_checked": self.rows_checked,
            "failures": [f.to_dict() for f in self.failures],
            "ok": self.ok,
            "checks": list(self.checks_run),
            "skipped": list(self.skipped),
            "data": self.path,
            "totals": self.totals_path,
            "sources": self.sources_dir,
        }


def run_checks(table: OutcomeTable, totals: TotalsTable | None = None,
               sources_dir: str | Path | None = None, *, totals_skipped: str | None = None) -> CheckReport:
    """Run every applicable check; failures come sorted by file and row."""
    failures: list[CheckFailure] = []
    run = ["pct", "arm_size", "subgroup"]
    skipped: list[str] = []
    failures += check_pct(table)
    failures += check_arm_size(table)
    failures += check_subgroups(table)
    if totals is not None:
        run.append("totals")
        failures += check_totals(table, totals)
    else:
        skipped.append(totals_skipped or "totals: not checked (no totals file)")
    if sources_dir is not None:
        run += ["source_file", "quote"]
        failures += check_sources(table, sources_dir)
    else:
        skipped.append("sources: quotes not checked (give --sources DIR)")
    if sources_dir is not None or "bind" in table.columns:
        run += ["bind", "numbers", "timepoint"]
        failures += [_failure(table, row, kind, reason)
                     for row, kind, reason in check_bindings(table, sources_dir)]
    else:
        skipped.append("bind: numbers not checked against the quotes (the table has no bind column; "
                       "--sources requires one)")
    order = {table.path: 0}
    failures.sort(key=lambda f: (order.get(f.file, 1), f.row, CHECKS.index(f.check)))
    return CheckReport(
        rows_checked=len(table.rows), failures=tuple(failures), checks_run=tuple(run),
        skipped=tuple(skipped), path=table.path,
        totals_path=totals.path if totals is not None else None,
        sources_dir=str(sources_dir) if sources_dir is not None else None,
    )


def with_lock(report: CheckReport, table: OutcomeTable, totals: TotalsTable | None, lock_path: str) -> CheckReport:
    """The report plus one ``lock`` failure per difference between the lock file and the table of today
    (``msc_meta.data.lock``: curated numbers exact, pooled floats to a relative 1e-9)."""
    from dataclasses import replace

    from msc_meta.data.lock import build_lock, diff_locks, read_lock

    old = read_lock(lock_path)
    lines = diff_locks(old, build_lock(table, totals))
    extra = tuple(CheckFailure(row=None, study_id=None, outcome=None, check="lock", reason=line, file=lock_path)
                  for line in lines)
    return replace(report, failures=report.failures + extra, checks_run=report.checks_run + ("lock",))


def _failure(table: OutcomeTable, row: Row, check: str, reason: str) -> CheckFailure:
    return CheckFailure(row=row.row_number, study_id=row.study_id, outcome=row.outcome,
                        check=check, reason=reason, file=table.path)


# ---------------------------------------------------------------------------
# pct


def pct_interval(printed: str) -> tuple[float, float]:
    """The interval a printed percentage stands for: '63' -> (62.5, 63.5); '43.3' -> (43.25, 43.35)."""
    decimals = len(printed.split(".", 1)[1]) if "." in printed else 0
    value = float(printed)
    half = 0.5 * 10.0 ** (-decimals)
    return value - half, value + half


def pct_matches(printed: str, events: int, n: int) -> bool:
    low, high = pct_interval(printed)
    pct = 100.0 * events / n
    return low - PCT_SLACK <= pct <= high + PCT_SLACK


def check_pct(table: OutcomeTable) -> list[CheckFailure]:
    failures = []
    for row in table.rows:
        for arm in ("t", "c"):
            printed = getattr(row, f"pct_{arm}")
            if printed is None:
                continue
            events, n = getattr(row, f"events_{arm}"), getattr(row, f"n_{arm}")
            low, high = pct_interval(printed)
            if events is not None and n is not None:
                if not pct_matches(printed, events, n):
                    failures.append(_failure(table, row, "pct", (
                        f"pct_{arm} is printed as {printed}% but 100 × {events}/{n} = "
                        f"{100.0 * events / n:.4g}% (rounding allows {low:g} to {high:g})")))
            elif n is not None:
                # Only the percentage and n are known: some whole count must fit.
                fits = [e for e in range(math.floor(low * n / 100) - 1, math.ceil(high * n / 100) + 2)
                        if 0 <= e <= n and pct_matches(printed, e, n)]
                if not fits:
                    failures.append(_failure(table, row, "pct", (
                        f"pct_{arm} is printed as {printed}% but no whole count out of n_{arm} = {n} "
                        f"gives that (rounding allows {low:g} to {high:g})")))
    return failures


# ---------------------------------------------------------------------------
# arm_size


def _group_key(row: Row) -> tuple:
    return (key(row.study_id), row.timepoint_weeks, row.unit)


def _describe_group(row: Row) -> str:
    return (f"study {row.study_id} at {format_weeks(row.timepoint_weeks)} weeks, "
            f"unit {row.unit or '(blank)'}")


def check_arm_size(table: OutcomeTable) -> list[CheckFailure]:
    groups: dict[tuple, list[Row]] = {}
    for row in table.rows:
        groups.setdefault(_group_key(row), []).append(row)
    failures = []
    for rows in groups.values():
        for column in ("n_t", "n_c"):
            given = [r for r in rows if getattr(r, column) is not None]
            counts = Counter(getattr(r, column) for r in given)
            if len(counts) < 2:
                continue
            # most_common keeps first-seen order on ties, so the later row is the odd one.
            usual = counts.most_common(1)[0][0]
            agreeing = [str(r.row_number) for r in given if getattr(r, column) == usual]
            for r in given:
                if getattr(r, column) != usual:
                    failures.append(_failure(table, r, "arm_size", (
                        f"{column} is {getattr(r, column)} but row{'s' if len(agreeing) > 1 else ''} "
                        f"{', '.join(agreeing)} of the same {_describe_group(r)} give{'' if len(agreeing) > 1 else 's'} "
                        f"{usual}")))
    return failures


# ---------------------------------------------------------------------------
# subgroup


def check_subgroups(table: OutcomeTable) -> list[CheckFailure]:
    failures = []
    studies = {key(row.study_id) for row in table.rows}
    first: dict[str, Row] = {}
    for row in table.rows:
        study = key(row.study_id)
        if study not in first:
            first[study] = row
        elif {key(p) for p in row.parents} != {key(p) for p in first[study].parents}:
            failures.append(_failure(table, row, "subgroup", (
                f"subgroup_of is '{row.subgroup_of or ''}' but row {first[study].row_number} of the "
                f"same study {row.study_id} gives '{first[study].subgroup_of or ''}'")))
        for parent in row.parents:
            if key(parent) not in studies:
                failures.append(_failure(table, row, "subgroup", (
                    f"subgroup_of names '{parent}', which is not a study_id of this table")))
    lineage = table.ancestors()
    n_t = {(key(r.study_id), r.timepoint_weeks, r.unit): r.n_t for r in table.rows if r.n_t is not None}
    for row in table.rows:
        if row.study_id in lineage.get(row.study_id, ()) and row is first[key(row.study_id)]:
            failures.append(_failure(table, row, "subgroup", (
                f"subgroup_of makes {row.study_id} part of itself")))
        if row.n_t is None:
            continue
        for parent in row.parents:
            whole = n_t.get((key(parent), row.timepoint_weeks, row.unit))
            if whole is not None and row.n_t > whole:
                failures.append(_failure(table, row, "subgroup", (
                    f"n_t is {row.n_t}, more than the {whole} of {parent}, which it is part of")))
    return failures


# ---------------------------------------------------------------------------
# totals


def check_totals(table: OutcomeTable, totals: TotalsTable) -> list[CheckFailure]:
    by_study: dict[str, list[Row]] = {}
    for row in table.rows:
        by_study.setdefault(key(row.study_id), []).append(row)
    failures = []
    for total in totals.rows:
        members = ";".join(total.members)
        where = f"at {format_weeks(total.timepoint_weeks)} weeks, unit {total.unit or '(blank)'}"

        def fail(reason, total=total, members=members):
            failures.append(CheckFailure(row=total.row_number, study_id=members, outcome=None,
                                         check="totals", reason=reason, file=totals.path))

        sizes_t: dict[str, int] = {}
        sizes_c: dict[str, int] = {}
        problems = []          # one failure per totals row, naming every member at fault
        for member in total.members:
            if key(member) not in by_study:
                problems.append(f"study {member} (a member of trial {total.trial}) is not in the outcome table")
                continue
            rows = [r for r in by_study[key(member)]
                    if r.timepoint_weeks == total.timepoint_weeks and r.unit == total.unit]
            if not rows:
                problems.append(f"study {member} has no row {where}")
                continue
            other_trials = sorted({r.trial for r in rows
                                   if r.trial is not None and key(r.trial) != key(total.trial)})
            if other_trials:
                problems.append(f"study {member} belongs to trial {', '.join(other_trials)} in the outcome "
                                f"table, not to {total.trial}")
                continue
            # Disagreeing rows are the arm_size check's business; use the usual value here.
            n_t = Counter(r.n_t for r in rows if r.n_t is not None)
            n_c = Counter(r.n_c for r in rows if r.n_c is not None)
            if n_t:
                sizes_t[member] = n_t.most_common(1)[0][0]
            if n_c:
                sizes_c[member] = n_c.most_common(1)[0][0]
        if problems:
            fail("; ".join(problems))
            continue
        total_found = 0
        parts = []
        if total.arm in ("treatment", "all"):
            missing = [m for m in total.members if m not in sizes_t]
            if missing:
                fail(f"no n_t {where} for {', '.join(missing)}")
                continue
            total_found += sum(sizes_t.values())
            parts += [f"{m} {sizes_t[m]}" for m in total.members]
        if total.arm in ("control", "all"):
            shared = sorted(set(sizes_c.values()))
            if not shared:
                fail(f"no member has n_c {where}, so the control arm cannot be checked")
                continue
            if len(shared) > 1:
                given = ", ".join(f"{m} {n}" for m, n in sizes_c.items())
                fail(f"the members give different control arm sizes ({given}); "
                     "a shared control arm must have one n_c")
                continue
            total_found += shared[0]
            parts.append(f"control {shared[0]}")
        if total_found != total.total_n:
            fail(f"the {total.arm} arm{'s' if total.arm != 'control' else ''} of trial {total.trial} {where} "
                 f"add up to {total_found} ({' + '.join(parts)}) but the source states {total.total_n}")
    return failures


# ---------------------------------------------------------------------------
# sources

_WHITESPACE = re.compile(r"\s+")
SPAN_SEPARATOR = "…"


def collapse_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def quote_spans(quote: str) -> list[str]:
    """The verbatim spans of a quote: one, or several joined by " … " (an ellipsis between spaces)."""
    return [collapse_whitespace(span) for span in collapse_whitespace(quote).split(f" {SPAN_SEPARATOR} ")]


def _read_source(folder: Path, name: str, texts: dict) -> str | None:
    if name not in texts:
        try:
            raw = (folder / name).read_bytes()
        except OSError:
            texts[name] = None
        else:
            texts[name] = collapse_whitespace(raw.decode("utf-8-sig", errors="replace"))
    return texts[name]


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _quote_failure(table: OutcomeTable, row: Row, folder: Path, texts: dict) -> CheckFailure | None:
    counts_given = any(getattr(row, c) is not None for c in ("events_t", "n_t", "events_c", "n_c"))
    if row.quote is None:
        return _failure(table, row, "quote", "has counts but no quote to check them against") if counts_given else None
    if row.source is None:
        return _failure(table, row, "source_file", "has a quote but no source file named")
    text = _read_source(folder, row.source, texts)
    if text is None:
        return _failure(table, row, "source_file", f"source file {row.source} is not in {folder}")
    spans = quote_spans(row.quote)
    missing = [(k, span) for k, span in enumerate(spans, start=1) if span not in text]
    if not missing:
        return None
    if len(spans) == 1:
        return _failure(table, row, "quote", f"the quote does not occur verbatim in {row.source}")
    which = "; ".join(f'span {k} of the quote ("{_short(span)}")' for k, span in missing)
    return _failure(table, row, "quote", f"{which} does not occur verbatim in {row.source}")
    return None


def check_sources(table: OutcomeTable, sources_dir: str | Path) -> list[CheckFailure]:
    """Each row's source file exists and each span of its quote occurs in it verbatim."""
    folder, texts = Path(sources_dir), {}
    found = (_quote_failure(table, row, folder, texts) for row in table.rows)
    return [failure for failure in found if failure is not None]
