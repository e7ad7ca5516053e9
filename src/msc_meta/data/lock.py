"""The results lock: every curated number and every pooled result of a table, to catch silent changes.

``msc-meta lock -o FILE`` writes :func:`build_lock` as JSON (keys sorted, two-space
indent, one trailing newline); ``msc-meta check --lock FILE`` rebuilds it from
the table and the code of today and lists every difference (:func:`diff_locks`).

What is locked (docs/data.md, "The results lock"):

- ``curated``: per row (``study_id / outcome / timepoint / unit``) the numbers
  events_t, n_t, pct_t (as printed), events_c, n_c, pct_c, timepoint_weeks,
  dose_cells, and the columns of other outcome types it fills (means, spreads,
  p-values: ``schema.OUTCOME_TYPE_COLUMNS``); per totals row its ``total_n``.
  Compared exactly.
- ``analyses``: per ``analysis_keys(table)`` entry, ``run_pool`` with its
  default options (recorded under ``options``, read from ``run_pool``'s
  signature so that a changed default shows up as a difference): k, measure,
  method, estimate, ci_low, ci_high, tau2; ``null`` when nothing can be pooled.
  Floats are compared with relative tolerance ``POOLED_RTOL`` (absolute
  ``POOLED_ATOL`` near zero); k, measure and method exactly.
"""

from __future__ import annotations

import json
import math

from msc_meta.data.schema import OUTCOME_TYPE_COLUMNS

FORMAT = 1
POOLED_RTOL = 1e-9
POOLED_ATOL = 1e-12
CURATED_FIELDS = ("events_t", "n_t", "pct_t", "events_c", "n_c", "pct_c", "timepoint_weeks", "dose_cells")
POOLED_FLOATS = ("estimate", "ci_low", "ci_high", "tau2")
POOLED_EXACT = ("k", "measure", "method")


def pool_options() -> dict:
    """The default pooling options (``PoolOptions()``), the options every locked analysis uses:
    a changed default shows up as a difference."""
    from msc_meta.pooling.options import PoolOptions

    return PoolOptions().to_dict()


def _weeks(value) -> str:
    if value is None or value == "blank":
        return "blank"
    return f"{value:g}"


def row_key(row) -> str:
    return f"{row.study_id} / {row.outcome} / {_weeks(row.timepoint_weeks)} / {row.unit or 'blank'}"


def _number(value):
    """JSON-safe: non-finite floats as text ('nan', 'inf', '-inf'), integral floats as they are."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def curated_numbers(table, totals=None) -> dict:
    """Every number of every row (and each totals row's total_n), by row key."""
    out = {row_key(r): {c: _number(getattr(r, c)) for c in CURATED_FIELDS} for r in table.rows}
    for r in table.rows:       # the outcome types beyond counts: the columns a row fills
        out[row_key(r)].update({c: _number(getattr(r, c)) for c in OUTCOME_TYPE_COLUMNS
                                if getattr(r, c) is not None})
    for t in (totals.rows if totals is not None else ()):
        out[f"totals: {t.trial} / {t.arm} / {';'.join(t.members)} / {_weeks(t.timepoint_weeks)} / "
            f"{t.unit or 'blank'}"] = {"total_n": t.total_n}
    return out


def pooled_results(table, options: dict) -> dict:
    """Each analysis of the table pooled with ``options``; ``None`` where nothing can be pooled."""
    from msc_meta.errors import UsageError
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.selection import analysis_keys

    out = {}
    for outcome, timepoint, unit in analysis_keys(table):
        name = f"{outcome} / {_weeks(timepoint)} / {unit or 'blank'}"
        try:
            result = run_pool(table, outcome=outcome, timepoint=timepoint, unit=unit, **options).result
        except UsageError:
            out[name] = None
            continue
        out[name] = {f: _number(getattr(result, f)) for f in POOLED_EXACT + POOLED_FLOATS}
    return out


def build_lock(table, totals=None) -> dict:
    options = pool_options()
    return {
        "format": FORMAT,
        "tolerance": {"curated": "exact", "pooled_rtol": POOLED_RTOL, "pooled_atol": POOLED_ATOL,
                      "pooled_exact": list(POOLED_EXACT)},
        "options": options,
        "curated": curated_numbers(table, totals),
        "analyses": pooled_results(table, options),
    }


def dumps(lock: dict) -> str:
    """Stable text: sorted keys, two-space indent, UTF-8 characters kept, a final newline."""
    return json.dumps(lock, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------
# differences


def _close(old, new) -> bool:
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) \
            and not isinstance(old, bool) and not isinstance(new, bool):
        return math.isclose(old, new, rel_tol=POOLED_RTOL, abs_tol=POOLED_ATOL)
    return old == new


def _show(value) -> str:
    return "blank" if value is None else (repr(value) if isinstance(value, float) else str(value))


def _diff_fields(where: str, old: dict, new: dict, floats=()) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        same = _close(a, b) if name in floats else a == b
        if not same:
            change = ""
            if name in floats and isinstance(a, (int, float)) and isinstance(b, (int, float)) and a:
                change = f" (relative change {abs(b - a) / abs(a):.2g}; tolerance {POOLED_RTOL:g})"
            out.append(f"{where}: {name} {_show(a)} in the lock, {_show(b)} now{change}")
    return out


def _diff_section(section: str, old: dict, new: dict, floats=()) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        where = f"{section} {name}"
        if name not in new:
            out.append(f"{where}: in the lock, gone from the table")
        elif name not in old:
            out.append(f"{where}: new, not in the lock")
        elif old[name] is None or new[name] is None:
            if old[name] != new[name]:
                out.append(f"{where}: {'nothing pooled' if old[name] is None else 'pooled'} in the lock, "
                           f"{'nothing pooled' if new[name] is None else 'pooled'} now")
        else:
            out += _diff_fields(where, old[name], new[name], floats)
    return out


def diff_locks(old: dict, new: dict) -> list[str]:
    """One line per difference: options, curated numbers (exact), pooled results (tolerance)."""
    lines = _diff_fields("options", old.get("options", {}), new["options"])
    lines += _diff_section("curated", old.get("curated", {}), new["curated"])
    lines += _diff_section("analysis", old.get("analyses", {}), new["analyses"], POOLED_FLOATS)
    return lines


def read_lock(path: str) -> dict:
    """The lock file as a dict; UsageError (one line) when it is missing or not a lock."""
    from msc_meta.errors import UsageError

    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        raise UsageError(f"--lock {path}: the file does not exist (write it with msc-meta lock -o {path})") from None
    except IsADirectoryError:
        raise UsageError(f"--lock {path}: is a folder, not a file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"--lock {path}: not a readable JSON lock file ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not {"curated", "analyses"} <= set(doc):
        raise UsageError(f"--lock {path}: not a msc-meta lock file (format {FORMAT}); "
                         f"write one with msc-meta lock -o {path}")
    return doc
