"""Tidy export of analyses to CSV or JSON, written safely.

One row per study per analysis, one per pooled result (the random-effects
fit and, beside it, the common-effect fit), one per excluded row (with its
reason), and with ``--by`` one ``subgroup_test`` row per grouping. Columns:

==================  =========================================================
``analysis``        ``outcome|<weeks>w|unit`` (``|column=value`` for a subgroup);
                    ``NA`` stands for a blank time point or unit
``row_type``        ``study``, ``pooled``, ``excluded`` or ``subgroup_test``
``model``           pooled rows: ``random`` or ``common``
``measure``         effect measure (metafor ``escalc()`` names)
``method``          estimator of that row's fit (``FE`` on a common row)
``outcome``, ``timepoint_weeks``, ``unit``, ``by``, ``group``
                    the selection; with ``--by``, the column and its value
pool keys           pooled rows: the ``pool --json`` keys (``k``, ``theta``,
                    ``se``, ``estimate``, ``ci_low``, ``ci_high``, ``pi_low``,
                    ``pi_high``, ``tau2`` ... ``pval``), plus ``test``, ``df``,
                    the Q-profile CIs and ``notes``
study keys          study rows: ``study_id``, ``row_number``, ``events_t``,
                    ``n_t``, ``events_c``, ``n_c``, ``yi``, ``vi``,
                    ``estimate``, ``ci_low``, ``ci_high`` (the study's own
                    effect and CI), ``weight`` (percent), ``cc_added``;
                    for comparisons sharing a control arm, ``multiarm_role``
                    (``combine``/``split``), ``members`` (the study groups,
                    ``;``-separated) and ``control_share``
input columns       study rows of outcome types beyond counts: the columns their
                    measure reads (registry ``family_columns``: ``mean_t``,
                    ``sd_t``, ... ``mean_pre``, ... ``time_t``, ``cor_t``,
                    ``sei``, ``effect`` ...), in place of the counts; only the
                    columns of the types exported appear, after ``control_share``
``reason``          excluded rows: why the row was not pooled
``guidance``        pooled rows: a better-suited method, if the pool names one
options             ``hksj``, ``pi``, ``cc``, ``level``, ``multiarm``,
                    ``study_ci`` as the pool was run; ``scale`` (GEN's
                    ``--scale``) and ``assumed_r`` (``--r``) when given
==================  =========================================================

``estimate``/``ci_low``/``ci_high`` mean the same on every row: an effect on
the natural scale (ratio, difference or proportion). Blank (CSV) / null
(JSON) means "does not apply" or "not defined" (NaN and infinities included).

CSV conventions, chosen so that the file reads back exactly in pandas
(``pd.read_csv``), R (``read.csv``) and spreadsheets:

- floats are written with Python's ``repr``: the shortest text that reads
  back as the same double, so nothing is lost to rounding;
- booleans are ``TRUE``/``FALSE``, the one spelling both R's ``read.csv``
  and pandas read as logical (R leaves ``true`` as text); UTF-8 without a
  byte-order mark;
- **formula injection**: a *text* cell that begins with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return gets a leading apostrophe ``'``, so that
  a spreadsheet shows it as text instead of running it as a formula (OWASP,
  "CSV Injection"). Numbers are never altered (``-0.5`` stays ``-0.5``).
  JSON output is not a spreadsheet format and is written unchanged.

Files are written by ``msc_meta.io_safe.write_output``: into a temporary
file in the target folder, flushed to disk, then published under the target
name without ever replacing a file that exists (or appears meanwhile), or,
with ``force=True``, replacing it atomically and keeping its permissions; a
failure part-way leaves any old file intact and removes the temporary file.
Nothing is written inside the installed package (its curated data must not
be clobbered). ``-`` as the path writes the document to standard output.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Callable, Iterable, Sequence

from msc_meta.errors import UsageError
from msc_meta.io_safe import check_output_path, write_output  # noqa: F401  (library API)
from msc_meta.pooling.results import jsonable

ANALYSIS_KEYS = ("analysis", "row_type", "model", "measure", "method",
                 "outcome", "timepoint_weeks", "unit", "by", "group")
POOL_KEYS = ("k", "theta", "se", "theta_ci_low", "theta_ci_high",
             "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "pi_method",
             "tau2", "tau", "tau2_ci_low", "tau2_ci_high",
             "i2", "i2_ci_low", "i2_ci_high", "h2", "q", "q_df", "q_pval",
             "stat", "pval", "test", "df")
STUDY_KEYS = ("study_id", "row_number", "events_t", "n_t", "events_c", "n_c",
              "yi", "vi", "weight", "cc_added", "multiarm_role", "members", "control_share")
OTHER_KEYS = ("reason", "guidance", "notes")
OPTION_KEYS = ("hksj", "pi", "cc", "level", "multiarm", "study_ci")


def _ordered_columns() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for key in ANALYSIS_KEYS + STUDY_KEYS[:2] + POOL_KEYS + STUDY_KEYS[2:] + OTHER_KEYS + OPTION_KEYS:
        seen.setdefault(key, None)
    return tuple(seen)


COLUMNS = _ordered_columns()


def _input_columns() -> tuple[str, ...]:
    """Every input column of the outcome types beyond counts (registry order), less COLUMNS."""
    from msc_meta import registry

    seen: dict[str, None] = {}
    for family in registry.families():
        if family != "counts":
            seen.update(dict.fromkeys(registry.family_columns(family)))
    return tuple(c for c in seen if c not in COLUMNS)


# Options beyond OPTION_KEYS, as columns only when an analysis was run with them.
EXTRA_OPTION_KEYS = (("scale", "scale"), ("assumed_r", "r"))


def columns_of(rows: Sequence[dict]) -> tuple[str, ...]:
    """COLUMNS, then the input columns and extra options any of ``rows`` holds."""
    present: set = set()
    for row in rows:
        present.update(row)
    extra = [c for c in _input_columns() + tuple(k for k, _ in EXTRA_OPTION_KEYS) if c in present]
    return COLUMNS + tuple(extra)

# Characters that make a spreadsheet treat a cell as a formula (OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# --------------------------------------------------------------------------
# tidy rows
# --------------------------------------------------------------------------

def format_weeks(weeks) -> str:
    """``208.0`` -> ``"208"``, ``2.5`` -> ``"2.5"``, ``None`` -> ``"NA"``."""
    if weeks is None or (isinstance(weeks, float) and math.isnan(weeks)):
        return "NA"
    weeks = float(weeks)
    return str(int(weeks)) if weeks.is_integer() else repr(weeks)


def selection_label(outcome, weeks, unit) -> str:
    """``outcome|<weeks>w|unit``; ``NA`` for a blank time point or unit."""
    when = "NA" if weeks is None else f"{format_weeks(weeks)}w"
    return f"{outcome}|{when}|{unit or 'NA'}"


def analysis_label(analysis) -> str:
    """The ``analysis`` key of a row: ``outcome|<weeks>w|unit[|column=value]``."""
    parts = [selection_label(analysis.outcome, analysis.timepoint_weeks, analysis.unit)]
    if getattr(analysis, "group", None) is not None:
        by = getattr(analysis, "by", None)
        parts.append(f"{by}={analysis.group}" if by else str(analysis.group))
    return "|".join(parts)


def tidy_rows(analyses: Sequence, *, subgroup_test=None, options: dict | None = None) -> list[dict]:
    """Tidy rows (dicts keyed by ``COLUMNS``) of one or more analyses.

    The options columns (``hksj``, ``pi``, ``cc``, ``level``) come from each
    ``Analysis`` (as it was run), or from ``options`` for objects without
    them; they are repeated on every row so that each row stands alone.
    ``subgroup_test`` (from ``run_pool_by``) adds one ``subgroup_test`` row.
    """
    options = options or {}
    rows: list[dict] = []

    def opts_of(analysis) -> dict:
        out = {key: getattr(analysis, key, options.get(key)) for key in OPTION_KEYS}
        run_with = getattr(analysis, "options", None)
        for column, name in EXTRA_OPTION_KEYS:
            value = getattr(run_with, name, None)
            if value is not None:
                out[column] = value
        return out

    for analysis in analyses:
        result = analysis.result
        method = result.method if result is not None else getattr(analysis, "method",
                                                                    options.get("method"))
        base = {"analysis": analysis_label(analysis), "measure": analysis.measure,
                "outcome": analysis.outcome, "timepoint_weeks": analysis.timepoint_weeks,
                "unit": analysis.unit, "by": getattr(analysis, "by", None),
                "group": getattr(analysis, "group", None), **opts_of(analysis)}
        studies = analysis.studies
        if hasattr(studies, "kept") and hasattr(studies, "yi"):   # pooling.study_lines.StudyLines
            rows.extend(dict(base, row_type="study", method=method, **cells)
                         for cells in _columnar_study_cells(studies))
            studies = ()
        for line in studies:
            row = dict(base, row_type="study", method=method)
            for key in STUDY_KEYS + ("estimate", "ci_low", "ci_high"):
                row[key] = getattr(line, key, None)
            # tidy cells are atomic: the combined study groups as one text cell
            row["members"] = ";".join(getattr(line, "members", ()) or ()) or None
            row["multiarm_role"] = getattr(line, "multiarm", None)
            # outcome types beyond counts: the columns the measure read, as the table gave them
            for column, value in getattr(line, "inputs", ()) or ():
                if column not in COLUMNS:       # n_t, yi, vi... are already there
                    row[column] = value
            rows.append(row)
        for ex in analysis.excluded:
            rows.append(dict(base, row_type="excluded", method=method, study_id=ex.study_id,
                             row_number=getattr(ex, "row_number", None), reason=ex.reason))
        fits = []
        if result is not None:
            fits.append(("random" if result.random else "common", result))
        common = getattr(analysis, "common", None)
        if common is not None and common is not result:
            fits.append(("common", common))
        notes = " | ".join(getattr(analysis, "notes", ()) or ())
        for model, fit in fits:
            row = dict(base, row_type="pooled", model=model, method=fit.method)
            names = _field_names(fit)
            for key in POOL_KEYS:
                row[key] = getattr(fit, key) if key in names else None
            row["notes"] = notes or None
            row["guidance"] = getattr(analysis, "guidance", None)
            rows.append(row)
    if subgroup_test is not None and analyses:
        first = analyses[0]
        label = selection_label(first.outcome, first.timepoint_weeks, first.unit) + \
            f"|by={subgroup_test.by}"
        rows.append({
            "analysis": label, "row_type": "subgroup_test", "measure": first.measure,
            "method": getattr(first, "method", None), "outcome": first.outcome,
            "timepoint_weeks": first.timepoint_weeks, "unit": first.unit,
            "by": subgroup_test.by, "group": None, **opts_of(first),
            "q": subgroup_test.q_between, "q_df": subgroup_test.df, "q_pval": subgroup_test.pval,
            "notes": "test for subgroup differences: Q between subgroups, chi-square on "
                     f"{subgroup_test.df} df",
        })
    # most cells of a row are empty (each row type fills its own columns)
    columns = columns_of(rows)
    # each row: an all-empty row in column order, then its own filled cells (a row fills
    # ~25 of ~60 columns; 120,000 rows of export --all)
    empty = dict.fromkeys(columns)
    out = []
    for row in rows:
        cells = empty.copy()
        for key, v in row.items():
            if v is not None and key in cells:
                cells[key] = _plain(v)
        out.append(cells)
    return out


def _columnar_study_cells(studies):
    """The study cells of a columnar study list (counts), as the loop over its StudyLines
    would fill them, without building a StudyLine per study."""
    import numpy as np

    def counts(x):
        return [None if v != v else int(v) for v in np.asarray(x, dtype=float).tolist()]

    n = len(studies)
    none = [None] * n
    two = studies.two_arm
    columns = zip(studies.study_id, np.asarray(studies.row_number).tolist(),
                  counts(studies.events_t), counts(studies.n_t),
                  counts(studies.events_c) if two else none, counts(studies.n_c) if two else none,
                  studies.yi.tolist(), studies.vi.tolist(),
                  none if studies.weight is None else studies.weight.tolist(),
                  studies.cc_added.tolist(), studies.estimate.tolist(), studies.ci_low.tolist(),
                  studies.ci_high.tolist())
    for sid, number, a, b, c, d, y, v, w, cc, e, lo, hi in columns:
        yield {"study_id": sid, "row_number": number, "events_t": a, "n_t": b, "events_c": c,
               "n_c": d, "yi": y, "vi": v, "weight": w, "cc_added": cc, "multiarm_role": None,
               "members": None, "control_share": None, "estimate": e, "ci_low": lo, "ci_high": hi}


_PLAIN = (str, int, bool, type(None))


def _plain(value):
    """``jsonable`` of one cell, with the common types checked first."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    return jsonable(value)


def _field_names(fit) -> frozenset:
    """The dataclass fields of a fit (what ``to_dict`` would hold), by class."""
    names = _FIELDS.get(type(fit))
    if names is None:
        import dataclasses

        names = _FIELDS[type(fit)] = frozenset(f.name for f in dataclasses.fields(fit))
    return names


_FIELDS: dict = {}


# --------------------------------------------------------------------------
# cell formatting
# --------------------------------------------------------------------------

def neutralise_formula(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula (OWASP CSV injection)."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_cell(value) -> str:
    """One CSV cell: floats by ``repr`` (exact round trip), text neutralised."""
    kind = type(value)          # the common exact types first (3 million cells of export --all)
    if kind is float:
        return repr(value) if math.isfinite(value) else ""
    if kind is str:
        return neutralise_formula(value)
    if kind is int:
        return str(value)
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return neutralise_formula(str(value))


def write_csv(rows: Sequence[dict], stream, columns: Sequence[str] | None = None) -> None:
    """``columns`` default: ``columns_of(rows)`` (COLUMNS and any input columns present)."""
    columns = columns_of(rows) if columns is None else columns
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(columns)
    columns = tuple(columns)
    for row in rows:
        # tidy_rows' rows hold exactly the columns, in order: their values need no lookups
        values = row.values() if tuple(row) == columns else map(row.get, columns)
        writer.writerow(["" if v is None else csv_cell(v) for v in values])


def write_json(rows: Sequence[dict], stream) -> None:
    columns = columns_of(rows)        # every object with the same keys, as the CSV's columns
    json.dump([{k: jsonable(row.get(k)) for k in columns} for row in rows], stream,
              indent=2, allow_nan=False, ensure_ascii=False)
    stream.write("\n")


def render(rows: Sequence[dict], fmt: str) -> str:
    buffer = io.StringIO()
    (write_csv if fmt == "csv" else write_json)(rows, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------
# safe file writing
# --------------------------------------------------------------------------

# The one publish function lives in msc_meta.io_safe; check_output_path and
# atomic_write stay here for callers of the library.

def atomic_write(path, write: Callable, *, binary: bool = False, force: bool = False) -> Path:
    """``msc_meta.io_safe.publish``: write ``path`` through a temporary file;
    an existing file is replaced only with ``force`` (keeping its mode)."""
    from msc_meta.io_safe import publish

    return publish(path, write, binary=binary, force=force)


def export_rows(rows: Sequence[dict], path, *, fmt: str = "csv", force: bool = False):
    """Write tidy rows to ``path`` as CSV or JSON (see module doc); ``-`` is
    stdout. Returns the Path written, or ``"stdout"``."""
    if fmt not in ("csv", "json"):
        raise UsageError(f"unknown export format {fmt!r}: use csv or json")
    writer = write_csv if fmt == "csv" else write_json
    return write_output(path, lambda stream: writer(rows, stream), force=force)
