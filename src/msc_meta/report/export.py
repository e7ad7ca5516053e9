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
        return _options_of(analysis, options)

    for analysis in analyses:
        method = _row_method(analysis, options.get("method"))
        base = {**_analysis_cells(analysis), **opts_of(analysis)}
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
        notes = " | ".join(getattr(analysis, "notes", ()) or ())
        for model, fit in _fits_of(analysis):
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
    if isinstance(rows, TidyTable):
        from msc_meta.progress import many_objects

        if fmt == "csv":
            with many_objects():        # the texts of 10^5 rows' cells
                return write_output(path, lambda stream: write_csv_table(rows, stream),
                                    force=force)
        with many_objects():
            rows = rows.rows()
    writer = write_csv if fmt == "csv" else write_json
    return write_output(path, lambda stream: writer(rows, stream), force=force)


# --------------------------------------------------------------------------
# tidy rows held as columns (export --all: 10^5 rows and more)
# --------------------------------------------------------------------------

class TidyTable:
    """Tidy rows held as columns, in blocks of rows of one kind.

    The rows are those of :func:`tidy_rows`; ``rows()`` gives them as dicts and
    ``values(column)`` one column's cells (None when empty). ``blocks``: per kind
    of row, ``(positions, repeats, cells)``: the rows' positions in the table, how
    many of them each analysis has (in order), and ``column -> cells`` (a list of
    plain values, or ``(kind, array)`` for the float, count and boolean columns of
    the study rows, NaN where empty). ``base``: ``column -> one value per analysis``,
    repeated on each of its rows. ``write_csv_table`` writes each block's lines from
    its columns, each column's cells formatted at once, without a dict or a
    ``csv_cell`` call per row.
    """

    def __init__(self, columns: tuple, n: int, blocks: list, base: dict | None = None):
        self.columns, self.n, self.blocks, self.base = tuple(columns), n, blocks, base or {}

    def __len__(self) -> int:
        return self.n

    def rows(self) -> list[dict]:
        names = self.columns
        return [dict(zip(names, cells)) for cells in zip(*(self.values(c) for c in names))]

    def values(self, column) -> list:
        return self._scatter(column, _block_values, None)

    def count(self, column, value) -> int:
        return self.values(column).count(value)

    def lines(self) -> list[str]:
        """Every row's CSV line (without its line end), in order."""
        return self._merge([self._block_lines(*block) for block in self.blocks])

    def _cells(self, column, repeats, cells, convert, empty):
        import numpy as np

        if column in cells:
            return convert(cells[column], int(np.sum(repeats)) if len(repeats) else None)
        if column in self.base:
            per = np.fromiter(convert(self.base[column]), dtype=object, count=len(repeats))
            return np.repeat(per, repeats).tolist()
        return None if empty is None else empty

    def _block_lines(self, positions, repeats, cells) -> list[str]:
        """The block's lines: a run of columns that repeat per analysis (its base cells,
        constants, blanks) is joined once per analysis, then repeated on its rows."""
        import numpy as np

        if not len(positions):
            return []
        analyses = len(repeats)
        pieces, run = [], []

        def close_run():
            if run:
                per = np.fromiter(map(",".join, zip(*run)), dtype=object, count=analyses)
                pieces.append(np.repeat(per, repeats).tolist())
                run.clear()

        for column in self.columns:
            block = cells.get(column)
            if isinstance(block, tuple) and block[0] == "const":
                run.append([csv_texts([block[1]])[0]] * analyses)
            elif block is not None:
                close_run()
                pieces.append(_block_texts(block, len(positions)))
            elif column in self.base:
                run.append(self._base_texts(column))
            else:
                run.append([""] * analyses)
        close_run()
        return list(map(",".join, zip(*pieces)))

    def _base_texts(self, column) -> list[str]:
        """CSV cells of a per-analysis column (every block repeats them)."""
        texts = self.__dict__.setdefault("_texts", {})
        if column not in texts:
            texts[column] = csv_texts(self.base[column])
        return texts[column]

    def _scatter(self, column, convert, empty):
        parts = []
        for positions, repeats, cells in self.blocks:
            part = self._cells(column, repeats, cells, convert, None) if len(positions) else []
            parts.append([empty] * len(positions) if part is None else part)
        return self._merge(parts)

    def _merge(self, parts) -> list:
        import numpy as np

        if len(self.blocks) == 1:
            return parts[0]
        out = np.empty(self.n, dtype=object)
        for (positions, _, _), part in zip(self.blocks, parts):
            if len(positions):
                out[positions] = np.fromiter(part, dtype=object, count=len(positions))
        return out.tolist()


def _block_values(cells, n=None) -> list:
    """A block's plain values (``tidy_rows``' cells: None where empty)."""
    if isinstance(cells, tuple):
        kind, x = cells
        if kind == "const":
            return [x] * n
        if kind == "counts":
            return [None if v != v else int(v) for v in x.tolist()]
        if kind == "bools":
            return x.tolist()
        return [v if v - v == 0 else None for v in x.tolist()]
    return _plain_column(cells)


def _block_texts(cells, n=None) -> list[str]:
    """A block's CSV cells."""
    if isinstance(cells, tuple):
        kind, x = cells
        if kind == "const":
            return csv_texts([x]) * n
        if kind == "counts":
            return _count_texts(x)
        if kind == "bools":
            return [("FALSE", "TRUE")[v] for v in x.tolist()]
        return float_texts(x)
    return csv_texts(cells)


def tidy_table(analyses: Sequence) -> TidyTable:
    """The rows of ``tidy_rows([a])`` for each analysis ``a``, one after another, as a
    :class:`TidyTable`. Analyses whose studies are not columnar (other outcome types,
    multi-arm lines) are turned into rows by ``tidy_rows`` and then into columns."""
    from msc_meta.progress import many_objects

    with many_objects():
        return _tidy_table(list(analyses))


def _tidy_table(analyses) -> TidyTable:
    if not all(_columnar_lines(a.studies) for a in analyses):
        rows = [row for a in analyses for row in tidy_rows([a])]
        import numpy as np

        columns = columns_of(rows)
        block = (np.arange(len(rows)), [], {c: [row.get(c) for row in rows] for c in columns})
        return TidyTable(columns, len(rows), [block])
    return _TidyBuilder(analyses).table()


def _columnar_lines(studies) -> bool:
    """An empty study list, or a columnar one (pooling.study_lines.StudyLines)."""
    return not len(studies) or (hasattr(studies, "kept") and hasattr(studies, "yi"))


class _TidyBuilder:
    """:func:`tidy_table` of analyses with columnar study lists: per analysis its studies,
    its excluded rows, then its pooled fits (the order of ``tidy_rows``)."""

    def __init__(self, analyses):
        import numpy as np

        self.np = np
        self.analyses = analyses
        self.fits = [_fits_of(a) for a in analyses]
        self.n_s = np.array([len(a.studies) for a in analyses], dtype=np.int64)
        self.n_e = np.array([len(a.excluded) for a in analyses], dtype=np.int64)
        self.n_p = np.array([len(f) for f in self.fits], dtype=np.int64)
        self.per = self.n_s + self.n_e + self.n_p
        self.n = int(self.per.sum())
        start = np.concatenate([[0], np.cumsum(self.per)[:-1]]).astype(np.int64)
        self.pos_s = _spans(start, self.n_s, np)
        self.pos_e = _spans(start + self.n_s, self.n_e, np)
        self.pos_p = _spans(start + self.n_s + self.n_e, self.n_p, np)

    def table(self) -> TidyTable:
        base = self._base()      # its method: the study and excluded rows' (pooled: their fit's)
        blocks = []
        for kind, positions, count, cells in (
                ("study", self.pos_s, self.n_s, self._study_cells),
                ("excluded", self.pos_e, self.n_e, self._excluded_cells),
                ("pooled", self.pos_p, self.n_p, self._pooled_cells)):
            cells = cells() if len(positions) else {}
            cells["row_type"] = ("const", kind)
            blocks.append((positions, count, cells))
        extra = [k for k, _ in EXTRA_OPTION_KEYS if k in base]
        return TidyTable(COLUMNS + tuple(extra), self.n, blocks, base)

    def _base(self) -> dict:
        """Per analysis, the cells all its rows repeat (``tidy_rows``' base, options, method)."""
        from msc_meta.pooling.analysis import Analysis

        of_options: dict = {}       # an Analysis' option cells are its options object's
        options = [_options_of(a) if type(a) is not Analysis else
                   of_options.get(id(a.options)) or of_options.setdefault(id(a.options),
                                                                            _options_of(a))
                   for a in self.analyses]
        cells = [{**_analysis_cells(a), "method": _row_method(a)} for a in self.analyses]
        per_analysis = {key: [c[key] for c in cells] for key in cells[0]} if cells else {}
        for key in dict.fromkeys(k for o in options for k in o):
            per_analysis[key] = [o.get(key) for o in options]
        return per_analysis

    def _study_cells(self) -> dict:
        """``_columnar_study_cells`` of every analysis, their columns joined."""
        from msc_meta.pooling.study_lines import join_columns

        np = self.np
        columns = join_columns([a.studies for a in self.analyses if len(a.studies)])
        n = len(columns["study_id"])
        cells = {"study_id": columns["study_id"]}
        for name, kind in (("row_number", "counts"), ("cc_added", "bools"), ("events_t", "counts"),
                           ("n_t", "counts"), ("events_c", "counts"), ("n_c", "counts"),
                           ("yi", "floats"), ("vi", "floats"), ("weight", "floats"),
                           ("estimate", "floats"), ("ci_low", "floats"), ("ci_high", "floats")):
            column = columns[name]
            if kind == "bools":
                cells[name] = (kind, np.asarray(column, dtype=bool))
            else:
                cells[name] = (kind, np.full(n, np.nan) if column is None
                               else np.asarray(column, dtype=float))
        return cells

    def _excluded_cells(self) -> dict:
        every = [ex for a in self.analyses for ex in a.excluded]
        return {"study_id": [_plain_or_none(ex.study_id) for ex in every],
                "row_number": [_plain_or_none(getattr(ex, "row_number", None)) for ex in every],
                "reason": [_plain_or_none(ex.reason) for ex in every]}

    def _pooled_cells(self) -> dict:
        from operator import attrgetter

        rows = [(a, model, fit) for a, fits in zip(self.analyses, self.fits) for model, fit in fits]
        cells: dict = {"model": [model for _, model, _ in rows],
                       "method": [fit.method for _, _, fit in rows]}
        if all(POOL_KEYS_SET <= _field_names(fit) for _, _, fit in rows):
            columns = zip(*map(attrgetter(*POOL_KEYS), (fit for _, _, fit in rows)))
        else:
            columns = ([getattr(fit, key) if key in _field_names(fit) else None
                        for _, _, fit in rows] for key in POOL_KEYS)
        for key, column in zip(POOL_KEYS, columns):
            cells[key] = list(column)
        notes = {id(a): " | ".join(getattr(a, "notes", ()) or ()) or None for a in self.analyses}
        cells["notes"] = [notes[id(a)] for a, _, _ in rows]
        cells["guidance"] = [getattr(a, "guidance", None) for a, _, _ in rows]
        return cells


POOL_KEYS_SET = frozenset(POOL_KEYS)


def _plain_column(values: list) -> list:
    """``_plain`` of each cell (None kept): a column of plain types needs only its
    non-finite floats made None."""
    if set(map(type, values)) <= {str, int, bool, float, _NONE}:
        return [None if type(v) is float and v - v != 0 else v for v in values]
    return [_plain_or_none(v) for v in values]


def _spans(starts, sizes, np):
    """The positions ``starts[i] .. starts[i] + sizes[i]`` of every i, in order."""
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    return np.arange(total, dtype=np.int64) + offsets


def _analysis_cells(analysis) -> dict:
    """The cells that say which analysis a row belongs to (every row of it repeats them)."""
    return {"analysis": analysis_label(analysis), "measure": analysis.measure,
            "outcome": analysis.outcome, "timepoint_weeks": analysis.timepoint_weeks,
            "unit": analysis.unit, "by": getattr(analysis, "by", None),
            "group": getattr(analysis, "group", None)}


def _row_method(analysis, default=None):
    """The method of an analysis' study and excluded rows: its fit's, else the one asked for."""
    result = analysis.result
    return result.method if result is not None else getattr(analysis, "method", default)


def _fits_of(analysis) -> list:
    """The (model, fit) pairs of an analysis' pooled rows, as ``tidy_rows`` lists them."""
    result = analysis.result
    fits = []
    if result is not None:
        fits.append(("random" if result.random else "common", result))
    common = getattr(analysis, "common", None)
    if common is not None and common is not result:
        fits.append(("common", common))
    return fits


def _options_of(analysis, options=None) -> dict:
    """The option cells of an analysis' rows: its own, else ``options``' (objects without them)."""
    options = options or {}
    out = {key: getattr(analysis, key, options.get(key)) for key in OPTION_KEYS}
    run_with = getattr(analysis, "options", None)
    for column, name in EXTRA_OPTION_KEYS:
        value = getattr(run_with, name, None)
        if value is not None:
            out[column] = value
    return out


def _plain_or_none(value):
    return None if value is None else _plain(value)


def write_csv_table(table: TidyTable, stream) -> None:
    """``write_csv`` of a :class:`TidyTable`: the same text, written from its columns."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(table.columns)
    lines = table.lines()
    step = 20_000           # lines per write: a few MB of text at a time
    for lo in range(0, len(lines), step):
        stream.write("\n".join(lines[lo:lo + step]) + "\n")


_NONE = type(None)
_NEEDS_QUOTES = (",", '"', "\n", "\r")


def csv_texts(values: Sequence) -> list[str]:
    """Each cell's text in a CSV line, as ``csv.writer`` writes ``csv_cell`` of it (blank for
    None). Floats by ``float_texts``; a column of one other type formats each distinct value
    once; text that the writer would quote is quoted by the writer itself (``_quoted``)."""
    kinds = set(map(type, values)) - {_NONE}
    if not kinds:
        return [""] * len(values)
    if kinds == {float}:
        import numpy as np

        return float_texts(np.array([math.nan if v is None else v for v in values], dtype=float))
    if kinds == {str} and _plain_texts(values):
        return ["" if v is None else v for v in values] if None in values else list(values)
    if len(kinds) == 1 and kinds <= {str, int, bool}:
        distinct = dict.fromkeys(values)
        for v in distinct:
            distinct[v] = "" if v is None else _quoted(csv_cell(v))
        return list(map(distinct.__getitem__, values))
    return ["" if v is None else _quoted(csv_cell(v)) for v in values]


def _plain_texts(values) -> bool:
    """Is every text its own CSV cell: none starts as a formula, none needs quotes? (one
    search over the texts joined by a character that is neither)"""
    joined = "\x00" + "\x00".join(filter(None, values))      # None and "" need nothing
    return not any(ch in joined for ch in _NEEDS_QUOTES) and \
        not any("\x00" + p in joined for p in FORMULA_PREFIXES)


def float_texts(x) -> list[str]:
    """``csv_cell`` of each float of the array ``x`` (blank for NaN and infinities) at C
    speed: orjson writes a float exactly as ``repr`` does wherever ``repr`` uses no exponent
    (0 and 1e-4 <= |x| < 1e16; tests/test_export_columns.py checks it); the others are
    written by ``repr`` one by one."""
    import numpy as np
    import orjson

    if not len(x):
        return []
    # orjson writes NaN and infinities as null: blank cells (no number's text holds "null")
    texts = orjson.dumps(np.ascontiguousarray(x, dtype=np.float64),
                         option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1] \
        .replace("null", "").split(",")
    finite = np.isfinite(x)
    size = np.abs(np.where(finite, x, 0.0))
    for i in np.flatnonzero(finite & ~(((size >= 1e-4) & (size < 1e16)) | (x == 0))).tolist():
        texts[i] = csv_cell(float(x[i]))
    return texts


def _count_texts(x) -> list[str]:
    """Counts held as floats (NaN where blank) as the integers ``csv_cell`` writes."""
    import numpy as np

    import orjson

    missing = np.isnan(x)
    if not len(x):
        return []
    texts = orjson.dumps(np.where(missing, 0, x).astype(np.int64),
                         option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1].split(",")
    for i in np.flatnonzero(missing).tolist():
        texts[i] = ""
    return texts


def _quoted(text: str) -> str:
    """``text`` as ``csv.writer`` writes it in a line (quoted when it holds a delimiter, a
    quote or a line break)."""
    if not any(ch in text for ch in _NEEDS_QUOTES):
        return text
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([text, ""])
    return buffer.getvalue()[:-2]
