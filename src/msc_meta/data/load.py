"""Reading and validating outcome tables (and totals tables) from CSV.

Everything a user can get wrong in a file becomes one ``InputError`` naming
the file, the spreadsheet row and the column (see the validation table in
``msc_meta.data.schema``). A table that loads is internally sane: counts are
whole numbers with ``0 <= events <= n`` and ``n >= 1``, arms are complete,
(study_id, outcome, timepoint_weeks, unit) is unique, and each key (study_id,
outcome, trial, a study_id named in subgroup_of) is spelt one way only, so
that two spellings of one key (``msc_meta.data.keys.key``) never become two
studies or two outcomes.

Uses the ``csv`` module only (no pandas) so that ``msc-meta pool`` starts fast.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping

from msc_meta.data import schema
from msc_meta.data.keys import is_invisible, key
from msc_meta.errors import InputError, UsageError

# ---------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Row:
    """One row of the outcome table: one outcome, one time point, one study group.

    ``row_number`` is the spreadsheet row (header = 1, first data row = 2).
    Counts are ``None`` where the source gives none; ``pct_t``/``pct_c`` are
    the percentages as printed (text, because the number of decimals sets the
    rounding tolerance of ``msc-meta check``).
    """

    row_number: int
    study_id: str
    outcome: str
    events_t: int | None = None
    n_t: int | None = None
    events_c: int | None = None
    n_c: int | None = None
    trial: str | None = None
    subgroup_of: str | None = None     # ';'-separated study_ids of larger groups holding these people
    timepoint_weeks: float | None = None
    unit: str | None = None
    pct_t: str | None = None
    pct_c: str | None = None
    design: str | None = None
    product: str | None = None
    cell_source: str | None = None
    donor: str | None = None
    route: str | None = None
    dose_text: str | None = None
    source: str | None = None
    quote: str | None = None
    note: str | None = None
    bind: str | None = None            # how each number is read from the quote (msc_meta.data.bind)
    dose_cells: float | None = None
    # outcome types beyond counts (schema.OUTCOME_TYPE_COLUMNS); None when blank or absent
    mean_t: float | None = None
    sd_t: float | None = None
    se_t: float | None = None
    mean_c: float | None = None
    sd_c: float | None = None
    se_c: float | None = None
    mean_pre: float | None = None
    mean_post: float | None = None
    sd_pre: float | None = None
    sd_post: float | None = None
    r: float | None = None
    time_t: float | None = None
    time_c: float | None = None
    cor_t: float | None = None
    yi: float | None = None
    vi: float | None = None
    sei: float | None = None
    effect: float | None = None
    effect_ci_low: float | None = None
    effect_ci_high: float | None = None
    effect_level: float | None = None
    # spread given another way (schema.SPREAD_COLUMNS), converted by conversions.fill_spreads
    se_pre: float | None = None
    se_post: float | None = None
    mean_ci_low_t: float | None = None
    mean_ci_high_t: float | None = None
    mean_ci_low_c: float | None = None
    mean_ci_high_c: float | None = None
    median_t: float | None = None
    q1_t: float | None = None
    q3_t: float | None = None
    min_t: float | None = None
    max_t: float | None = None
    median_c: float | None = None
    q1_c: float | None = None
    q3_c: float | None = None
    min_c: float | None = None
    max_c: float | None = None
    p_value: float | None = None
    t_stat: float | None = None
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}),
                                     hash=False, compare=True)

    @property
    def has_counts(self) -> bool:
        """True when the treatment (or single) arm has events and n: the row can be pooled."""
        return self.events_t is not None and self.n_t is not None

    @property
    def family(self) -> str | None:
        """The input family (``registry.FAMILIES``) the row's filled columns make.

        The first family of ``schema.FAMILY_MARKERS`` with a marker column
        filled (generic, correlations, paired means, two-group means,
        one-group means, two-group rates, one-group rates), else ``counts``
        when events_t and n_t are given, else None (no data: e.g. only a
        percentage printed, or only the arm sizes).
        """
        for family, markers in schema.FAMILY_MARKERS:
            if any(getattr(self, name) is not None for name in markers):
                return family
        return "counts" if self.has_counts else None

    @property
    def has_data(self) -> bool:
        """True when the row holds the inputs of some outcome type (it may be pooled)."""
        return self.family is not None

    @property
    def parents(self) -> tuple[str, ...]:
        """The study groups this group is part of (``subgroup_of``), e.g. a cohort of its trial's total."""
        return _parents(self.subgroup_of)

    @property
    def is_comparison(self) -> bool:
        """True when the row has a control arm with counts (loading guarantees treatment counts too)."""
        return self.events_c is not None and self.n_c is not None

    def value(self, column: str):
        """Any column by name: typed for the known columns, raw text (or None if blank) for extra ones.

        Raises ``UsageError`` for a column the table does not have (e.g. a
        misspelt ``--by`` column), listing the columns that exist.
        """
        if column in schema.KNOWN_COLUMNS:
            return getattr(self, column)
        if column in self.extra:
            text = self.extra[column].strip()
            return text or None
        known = ", ".join(list(schema.CURATED_COLUMNS) + [c for c in schema.OUTCOME_TYPE_COLUMNS
                                                            if getattr(self, c) is not None]
                          + list(self.extra))
        raise UsageError(f"there is no column '{column}' in the outcome table; columns are: {known}")

    def to_dict(self) -> dict:
        """Plain-JSON dictionary: ``row``, every known column (None when blank or absent), then extra columns."""
        out: dict = {"row": self.row_number}
        for name in schema.CURATED_COLUMNS:
            out[name] = getattr(self, name)
        for name in schema.OUTCOME_TYPE_COLUMNS:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name, text in self.extra.items():
            out.setdefault(name, text.strip() or None)
        return out


class OutcomeTable:
    """A loaded, validated outcome table. ``columns`` are the header names in file order.

    Held as typed columns (``data``: ``msc_meta.data.columns.TableColumns``);
    ``rows`` (one ``Row`` per study) are built from them on first use. A table
    built from rows (tests, the in-memory tables of ``pool_many``) gets its
    columns on first use instead.
    """

    def __init__(self, path: str, columns: tuple[str, ...], rows: tuple | None = None, *,
                 data=None):
        self.path = path
        self.columns = tuple(columns)
        if rows is None and data is None:
            raise ValueError("OutcomeTable needs rows or data")
        self._rows = None if rows is None else tuple(rows)
        self._data = data

    @property
    def rows(self) -> tuple[Row, ...]:
        if self._rows is None:
            self._rows = self._data.rows()
        return self._rows

    @property
    def data(self):
        """The table's typed columns (``TableColumns``)."""
        if self._data is None:
            from msc_meta.data.columns import TableColumns

            self._data = TableColumns.from_rows(self._rows)
        return self._data

    def __repr__(self) -> str:
        return f"OutcomeTable(path={self.path!r}, columns={self.columns!r}, rows={len(self)})"

    def __len__(self) -> int:
        return len(self._rows) if self._rows is not None else self._data.n

    def __iter__(self):
        return iter(self.rows)

    def outcomes(self) -> tuple[str, ...]:
        """Outcome keys in order of first appearance."""
        return tuple(dict.fromkeys(row.outcome for row in self.rows))

    def rows_of(self, outcome: str) -> tuple[Row, ...]:
        """The rows of one outcome (compared as keys), from an index built once per table:
        selecting every analysis of a table (``export --all``) stays linear in its rows."""
        index = self.__dict__.get("_outcome_index")
        if index is None:
            index = {}
            for row in self.rows:
                index.setdefault(key(row.outcome), []).append(row)
            index = {k: tuple(v) for k, v in index.items()}
            self.__dict__["_outcome_index"] = index   # a cache: the table is immutable
        return index.get(key(outcome), ())

    def ancestors(self) -> dict[str, frozenset[str]]:
        """Each study group's larger groups under ``subgroup_of``, followed transitively.

        A cohort followed up at 4 years is part of its randomised cohort, which
        is part of the trial's treated total: both are its ancestors. A cycle
        (reported by ``msc-meta check``) just stops the walk. Computed once per
        table (the table is immutable).
        """
        cached = self.__dict__.get("_ancestors")
        if cached is None:
            cached = self._walk_ancestors()
            self.__dict__["_ancestors"] = cached
        return cached

    def _walk_ancestors(self) -> dict[str, frozenset[str]]:
        spelling: dict[str, str] = {}                 # key -> the study_id as the table writes it
        parents: dict[str, set[str]] = {}
        if self._data is not None:
            pairs = zip(self._data.values["study_id"], self._data.values["subgroup_of"])
        else:
            pairs = ((row.study_id, row.subgroup_of) for row in self._rows)
        for study_id, sub in pairs:
            spelling.setdefault(key(study_id), study_id)
            parents.setdefault(key(study_id), set()).update(key(p) for p in _parents(sub))
        out: dict[str, frozenset[str]] = {}
        for study, direct in parents.items():
            seen: set[str] = set()
            todo = list(direct)
            while todo:
                p = todo.pop()
                if p not in seen:
                    seen.add(p)
                    todo.extend(parents.get(p, ()))
            out[spelling[study]] = frozenset(spelling.get(p, p) for p in seen)
        return out

    def require_column(self, column: str) -> None:
        """Raise ``UsageError`` unless ``column`` is a header of this table (for ``--by``, ``--order``)."""
        if column not in self.columns:
            raise UsageError(
                f"there is no column '{column}' in {self.path}; columns are: {', '.join(self.columns)}")


def _parents(subgroup_of: str | None) -> tuple[str, ...]:
    if not subgroup_of:
        return ()
    return tuple(p.strip() for p in subgroup_of.split(";") if p.strip())


@dataclass(frozen=True)
class TotalsRow:
    """One row of totals.csv: a total the source states for some arms of a trial."""

    row_number: int
    trial: str
    timepoint_weeks: float | None
    unit: str | None
    arm: str                      # treatment | control | all
    members: tuple[str, ...]      # study_ids whose arms make up the total
    total_n: int
    source: str | None = None
    quote: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class TotalsTable:
    path: str
    columns: tuple[str, ...]
    rows: tuple[TotalsRow, ...]


# ---------------------------------------------------------------------------
# Paths of the packaged data


def curated_path() -> Path:
    """The curated outcomes.csv shipped inside the package (installed or editable)."""
    from importlib.resources import files

    return Path(str(files("msc_meta.data").joinpath("outcomes.csv")))


def curated_totals_path() -> Path:
    """The curated totals.csv shipped next to outcomes.csv."""
    from importlib.resources import files

    return Path(str(files("msc_meta.data").joinpath("totals.csv")))


# ---------------------------------------------------------------------------
# Public loaders


def load_table(path: str | os.PathLike | None = None) -> OutcomeTable:
    """Read and validate an outcome table; ``None`` reads the curated one.

    Raises ``InputError`` (one line: file, row, column, what is wrong) for
    every problem listed in ``msc_meta.data.schema``.
    """
    if path is None:
        path = curated_path()
        if not path.is_file():
            raise InputError("the curated outcome table is missing from this installation "
                             "(reinstall msc-meta, or give your own with --data)", path=str(path))
    import gc

    from msc_meta.data import columns

    enabled = gc.isenabled()
    gc.disable()        # millions of new strings and no cycles: the collector would only rescan them
    try:
        raw = read_csv_columns(path, schema.required_columns, schema.KNOWN_COLUMNS,
                               what="outcome table", typed=columns.plain_text_columns())
        data = columns.typed_columns(raw)
        columns.check_unique_keys(raw.path, data)
        columns.check_one_spelling(raw.path, data)
    finally:
        if enabled:
            gc.enable()
    return OutcomeTable(path=raw.path, columns=raw.header, data=data)


def load_totals(path: str | os.PathLike | None = None) -> TotalsTable:
    """Read and validate a totals table (``None`` = the curated totals.csv)."""
    if path is None:
        path = curated_totals_path()
    known = frozenset(schema.TOTALS_COLUMNS)
    raw = read_csv_records(path, schema.TOTALS_REQUIRED_COLUMNS, known, what="totals table")
    rows = tuple(_make_totals_row(raw, number, cells) for number, cells in raw.records)
    return TotalsTable(path=raw.path, columns=raw.header, rows=rows)


def select(table: OutcomeTable, outcome: str, timepoint: float | str | None = None,
           unit: str | None = None) -> tuple[Row, ...]:
    """The rows of one outcome at one time point and unit, rows without counts included.

    ``timepoint`` is a number of weeks, ``"blank"`` (the rows whose source
    states no time point) or ``"any"`` (every time point together, each study
    group at most once). ``outcome`` and ``unit`` are compared as keys
    (``msc_meta.data.keys.key``): ``CLOSURE`` selects the rows of ``closure``.

    Rows whose counts are blank are returned too: the analysis layer lists
    them as not pooled. Raises ``UsageError`` when nothing matches (naming
    what exists) and when the outcome has several time points or units and
    none was chosen (naming them and the option that picks one), because
    pooling 24-week with 52-week results, or patients with fistulas, would
    be wrong.
    """
    rows = list(table.rows_of(outcome))
    if not rows:
        keys = ", ".join(table.outcomes()) or "(none)"
        raise UsageError(f"no rows with outcome '{outcome}' in {table.path}; outcomes are: {keys}")
    if timepoint == "blank":
        chosen = [row for row in rows if row.timepoint_weeks is None]
        if not chosen:
            raise UsageError(f"outcome '{outcome}' has no rows without a time point; "
                             f"time points: {_list_values((r.timepoint_weeks for r in rows), 'timepoint_weeks', ' weeks')}")
        rows = chosen
    elif timepoint is not None and timepoint != "any":
        if not math.isfinite(timepoint):
            raise UsageError(f"--timepoint {timepoint}: give a number of weeks, e.g. 24")
        chosen = [row for row in rows if row.timepoint_weeks is not None
                  and math.isclose(row.timepoint_weeks, timepoint, rel_tol=0, abs_tol=1e-9)]
        if not chosen:
            raise UsageError(f"outcome '{outcome}' has no rows at --timepoint {format_weeks(timepoint)}; "
                             f"time points: {_list_values((r.timepoint_weeks for r in rows), 'timepoint_weeks', ' weeks')}")
        rows = chosen
    if unit is not None:
        chosen = [row for row in rows if key(row.unit) == key(unit)]
        if not chosen:
            raise UsageError(f"outcome '{outcome}' has no rows with --unit {unit}"
                             f"{_at(timepoint)}; units: {_list_values((r.unit for r in rows), 'unit')}")
        rows = chosen
    # Units first: under 'any' the same study in two units is not "two time points".
    units = {key(row.unit) for row in rows}
    if len(units) > 1 and (timepoint is not None or len({r.timepoint_weeks for r in rows}) == 1):
        raise UsageError(f"outcome '{outcome}'{_at(timepoint)} counts different units "
                         f"({_list_values((r.unit for r in rows), 'unit')}); choose one with --unit patient|fistula")
    if timepoint == "any":
        _one_time_point_per_study(outcome, rows)
    elif len({row.timepoint_weeks for row in rows}) > 1:
        raise UsageError(f"outcome '{outcome}' was assessed at several time points "
                         f"({_list_values((r.timepoint_weeks for r in rows), 'timepoint_weeks', ' weeks')}); "
                         "choose one with --timepoint WEEKS (or 'blank', or 'any' to pool them together)")
    return tuple(rows)


def _one_time_point_per_study(outcome: str, rows) -> None:
    """Under ``--timepoint any`` a study group may enter once: the same people
    at two time points are not two studies."""
    seen: dict[str, Row] = {}
    for row in rows:
        if not row.has_data:
            continue
        if key(row.study_id) in seen:
            first = seen[key(row.study_id)]
            raise UsageError(
                f"outcome '{outcome}': study {row.study_id} has counts at "
                f"{format_weeks(first.timepoint_weeks)} and {format_weeks(row.timepoint_weeks)} weeks "
                f"(rows {first.row_number} and {row.row_number}); --timepoint any would count "
                "its people twice: choose one time point with --timepoint WEEKS")
        seen[key(row.study_id)] = row


def format_weeks(weeks: float | None) -> str:
    """24.0 -> '24', 2.5 -> '2.5', None -> '(blank)'."""
    if weeks is None:
        return "(blank)"
    if not math.isfinite(weeks):
        return f"{weeks:g}"
    return f"{weeks:g}" if weeks != int(weeks) else str(int(weeks))


def _at(timepoint) -> str:
    if timepoint == "blank":
        return " without a time point"
    if timepoint is None or timepoint == "any":
        return ""
    return f" at {format_weeks(timepoint)} weeks"


def _list_values(values: Iterable, column: str, suffix: str = "") -> str:
    unique = dict.fromkeys(values)
    known = sorted(v for v in unique if v is not None)
    shown = ", ".join(format_weeks(v) if isinstance(v, float) else str(v) for v in known)
    shown = shown + suffix if shown else ""
    if None in unique:
        how = ("which --timepoint blank selects" if column == "timepoint_weeks"
               else "which no option selects")
        blank = f"rows with {column} blank, {how}"
        shown = f"{shown}; and {blank}" if shown else blank
    return shown


# ---------------------------------------------------------------------------
# Reading the file: size, encoding, delimiter, CSV records


@dataclass(frozen=True)
class RawTable:
    path: str
    header: tuple[str, ...]
    records: tuple[tuple[int, dict[str, str]], ...]   # (spreadsheet row, column -> raw text)
    delimiter: str


@dataclass(frozen=True)
class RawColumns:
    """The cells of a CSV file as columns of raw text (the header's names, blank ones dropped)."""

    path: str
    header: tuple[str, ...]
    numbers: list[int]                  # spreadsheet row of each record
    cells: dict[str, list[str]]         # column -> raw text, one per record
    delimiter: str
    # columns the plain reader (msc_meta.data.plain) has already typed as typed_columns would
    typed: Mapping[str, object] = field(default_factory=dict)
    unique_study_keys: bool = False     # proven by the plain reader: every study_id a different key
    blank_free: frozenset[str] = frozenset()    # typed columns the plain reader found without a blank


def _read_bytes(path: Path) -> bytes:
    # A seam for tests: root can read chmod-000 files, so permission errors
    # are simulated by replacing this function.
    with open(path, "rb") as handle:
        return handle.read()


def read_csv_records(path: str | os.PathLike, required: tuple[str, ...], known: frozenset[str],
                     *, what: str = "table") -> RawTable:
    """Read a CSV file into raw text cells, one dict per record (``read_csv_columns``, by row)."""
    raw = read_csv_columns(path, required, known, what=what)
    columns = [raw.cells[name] for name in raw.header]
    out = tuple((number, dict(zip(raw.header, cells)))
                for number, cells in zip(raw.numbers, zip(*columns)))
    return RawTable(path=raw.path, header=raw.header, records=out, delimiter=raw.delimiter)


def read_csv_columns(path: str | os.PathLike, required, known: frozenset[str],
                     *, what: str = "table", typed: tuple[str, ...] | None = None) -> RawColumns:
    """Read a CSV file into columns of raw text, refusing what cannot be read reliably.

    Plain files (ASCII, no double quote, no control character, no cell over
    ``MAX_CELL_CHARS``) are split by lines and delimiters, which is exactly
    what the csv module makes of them, without one Python list per record;
    any other file goes through the csv module record by record. With
    ``typed`` (the text columns typed by stripping alone), an ordinary plain
    file is read by ``msc_meta.data.plain`` instead, which also types its
    count and text columns; it declines anything else, and this reader runs.
    """
    import gc

    shown = str(path)
    text = _read_text(Path(path), shown, what)
    sep_line = _SEP_LINE.match(text)
    if sep_line:
        # Excel's "sep=;" directive names the delimiter; Excel hides the line,
        # so rows are numbered without it, as the spreadsheet shows them.
        text = text[sep_line.end():]
        delimiter = sep_line.group(1)
    else:
        delimiter = _sniff_delimiter(text, known)
    if typed is not None:
        from msc_meta.data import plain

        fast = plain.read_columns(text, delimiter, shown, required, typed)
        if fast is not None:
            return fast
    enabled = gc.isenabled()
    gc.disable()        # millions of new strings and no cycles: the collector would only rescan them
    try:
        plain = _plain_records(text, delimiter, shown)
        header_row, header, numbers, body = plain or _csv_records(text, delimiter, shown)
        # A missing column explains a row of the "wrong" length (e.g. a title line
        # above the header), so it is reported first.
        if callable(required):
            required = tuple(required(header))
        _check_required(shown, header_row, header, required)
        if plain:
            columns = _plain_body_columns(shown, header, numbers, body, delimiter)
        else:
            columns = _csv_body_columns(shown, header, numbers, body)
    finally:
        if enabled:
            gc.enable()
    keep = _check_header_columns(shown, header_row, header, columns)
    if not numbers:
        raise InputError(f"has a header but no data rows (an empty {what})", path=shown)
    return RawColumns(path=shown, header=tuple(header[i] for i in keep), numbers=numbers,
                      cells={header[i]: columns[i] for i in keep}, delimiter=delimiter)


def _read_text(p: Path, shown: str, what: str) -> str:
    """The file's text: size, kind and encoding checked (see the schema's validation table)."""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError("the file does not exist", path=shown) from None
    except PermissionError:
        raise InputError("cannot be read (permission denied)", path=shown) from None
    except OSError as err:
        raise InputError(f"cannot be read ({err.strerror or err})", path=shown) from None
    if p.is_dir():
        raise InputError(f"is a folder, not a file; give the path of the {what} (a .csv file)", path=shown)
    if not stat.S_ISREG(st.st_mode):
        # A pipe or device could block forever or never end: refuse rather than hang.
        raise InputError(f"is not a regular file (a pipe or a device); save the {what} to a file first",
                         path=shown)
    if st.st_size > schema.MAX_FILE_BYTES:
        raise InputError(_too_large(st.st_size, what), path=shown)
    try:
        data = _read_bytes(p)
    except PermissionError:
        raise InputError("cannot be read (permission denied)", path=shown) from None
    except IsADirectoryError:
        raise InputError(f"is a folder, not a file; give the path of the {what} (a .csv file)",
                         path=shown) from None
    except OSError as err:
        raise InputError(f"cannot be read ({err.strerror or err})", path=shown) from None
    if len(data) > schema.MAX_FILE_BYTES:   # e.g. a file that grew since stat()
        raise InputError(_too_large(len(data), what), path=shown)

    text = _decode(data, shown)
    if not text or text.isspace():      # not text.strip(), without copying the text
        raise InputError("the file is empty", path=shown)
    return text


def _plain_records(text: str, delimiter: str, shown: str):
    """(header row, header, row numbers, body lines) of a plain file, or None when it is not plain.

    Plain: ASCII, no double quote, no control character, no line longer than
    ``MAX_CELL_CHARS``. Its records are then its lines (LF, CRLF or CR, as the
    csv module reads them) and its cells what lies between delimiters.
    """
    if not text.isascii() or '"' in text or _CONTROL.search(text):
        return None
    lines = text.splitlines()
    if max(map(len, lines)) > schema.MAX_CELL_CHARS:
        return None
    numbers = list(range(1, len(lines) + 1))
    blanks = delimiter + " \t"
    if "" in map(str.strip, lines, itertools.repeat(blanks)):     # blank rows are skipped
        kept = [(i + 1, line) for i, line in enumerate(lines) if line.strip(blanks)]
        if not kept:
            raise InputError("the file is empty", path=shown)
        numbers, lines = [k for k, _ in kept], [line for _, line in kept]
    header = [c.strip() for c in lines[0].split(delimiter)]
    return numbers[0], header, numbers[1:], lines[1:]


def _plain_body_columns(shown, header, numbers, body, delimiter) -> list[list[str]]:
    width = len(header)
    counts = list(map(str.count, body, [delimiter] * len(body)))
    if counts and (min(counts) != width - 1 or max(counts) != width - 1):
        i = next(i for i, c in enumerate(counts) if c != width - 1)
        raise InputError(
            f"has {counts[i] + 1} cells but the header has {width} columns "
            "(a comma inside a text that is not in double quotes, or a missing cell?)",
            path=shown, row=numbers[i])
    flat = delimiter.join(body).split(delimiter) if body else []
    return [flat[j::width] for j in range(width)]


def _csv_records(text: str, delimiter: str, shown: str):
    """(header row, header, row numbers, body records) through the csv module."""
    records = _parse_csv(text, delimiter, shown)
    records = [(number, cells) for number, cells in records if any(c.strip() for c in cells)]
    if not records:
        raise InputError("the file is empty", path=shown)
    header_row, header_cells = records[0]
    _check_cells(shown, header_row, None, header_cells)
    header = [_strip(c) for c in header_cells]      # also a second BOM (file saved twice)
    body = records[1:]
    return header_row, header, [number for number, _ in body], [cells for _, cells in body]


def _csv_body_columns(shown, header, numbers, body) -> list[list[str]]:
    for number, cells in zip(numbers, body):
        _check_long_cells(shown, number, header, cells)
        if len(cells) != len(header):
            raise InputError(
                f"has {len(cells)} cells but the header has {len(header)} columns "
                "(a comma inside a text that is not in double quotes, or a missing cell?)",
                path=shown, row=number)
        _check_cells(shown, number, header, cells)
    if not body:
        return [[] for _ in header]
    return [list(col) for col in zip(*body)]


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _decode(data: bytes, shown: str) -> str:
    """UTF-8 (BOM optional) or UTF-16 (BOM, or unmistakable zero bytes); bad bytes kept as surrogates.

    Undecodable bytes become lone surrogates (``surrogateescape``) so that the
    CSV parser can still tell *which row and column* hold them; the first one
    is reported by ``_check_bad_bytes``.
    """
    if data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError("starts like a UTF-16 text file but is not valid UTF-16; "
                             "save it as 'CSV UTF-8'", path=shown) from None
    if data.startswith(b"PK\x03\x04"):
        raise InputError("is not a text CSV file (it looks like an Excel workbook or a zip archive); "
                         "save it as 'CSV UTF-8 (comma delimited)'", path=shown)
    if data.startswith(b"%PDF"):
        raise InputError("is a PDF, not a CSV file", path=shown)
    if b"\x00" in data:
        head = data[:4000]
        even, odd = head[0::2], head[1::2]
        # UTF-16 without a BOM: ASCII text leaves every other byte zero.
        if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            encoding = "utf-16-le"
        elif even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
            encoding = "utf-16-be"
        else:
            raise InputError("is not a text CSV file (it contains binary data)", path=shown)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            raise InputError("is not a text CSV file (it contains binary data)", path=shown) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="surrogateescape")


def _too_large(size: int, what: str) -> str:
    limit = schema.MAX_FILE_BYTES
    return (f"is {size:,} bytes ({size / 1e6:.1f} MB); {what}s over {limit:,} bytes "
            f"({limit / 1e6:g} MB) are refused (is this the right file?)")


_SEP_LINE = re.compile(r"\A[ \t]*sep=([,;\t])[ \t]*(?:\r\n|\r|\n)")
_BAD_BYTE = re.compile("[\udc80-\udcff]")


def _check_cells(shown: str, number: int, header: list[str] | None, cells: list[str]) -> None:
    """Per cell: the length limit, bytes that are not UTF-8, then control characters."""
    joined = "".join(cells)
    if len(joined) <= schema.MAX_CELL_CHARS and joined.isascii() and joined.isprintable():
        return      # the common case: short printable ASCII has none of these problems
    _check_long_cells(shown, number, header, cells)
    _check_bad_bytes(shown, number, header, cells)
    _check_control_characters(shown, number, header, cells)


def _where_cell(header: list[str] | None, i: int) -> tuple[str | None, str]:
    """(column name, "" ) for a data cell; (None, " (header cell N)") for a header cell."""
    if header is None:
        return None, f" (header cell {i + 1})"
    return (header[i] if i < len(header) else None), ""


def _check_long_cells(shown: str, number: int, header: list[str] | None, cells: list[str]) -> None:
    for i, cell in enumerate(cells):
        if len(cell) <= schema.MAX_CELL_CHARS:
            continue
        column, where = _where_cell(header, i)
        lines = cell.count("\n") + cell.count("\r") - cell.count("\r\n")
        if lines:
            # Only a double-quoted cell can hold line breaks: this one swallowed many lines.
            cause = (f" and spans {lines + 1:,} lines: probably a double quote opened in row {number} "
                     "is closed only much further down (a missing closing \")")
        else:
            cause = "; is the file a table? (a cell holds one value or a short text)"
        raise InputError(f"a cell{where} is {len(cell):,} characters long, over the limit of "
                         f"{schema.MAX_CELL_CHARS:,} characters{cause}",
                         path=shown, row=number, column=column)


# C0 controls other than tab, line feed and carriage return, DEL and the C1
# controls: no spreadsheet shows them, and printed they can drive the terminal.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK_OR_TAB = re.compile("[\t\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def _check_control_characters(shown: str, number: int, header: list[str] | None, cells: list[str]) -> None:
    for i, cell in enumerate(cells):
        column, where = _where_cell(header, i)
        match = _CONTROL.search(cell)
        if match is None and (header is None or column in schema.KEY_COLUMNS):
            # a key (and a column name) is one line: no line break or tab inside
            match = _LINE_BREAK_OR_TAB.search(_strip(cell))
        if match is None:
            continue
        shown_cell = _strip(cell)
        if len(shown_cell) > 40:
            shown_cell = shown_cell[:37] + "..."
        what = (f"a line break or tab ({match.group()}); a {'column name' if header is None else column} "
                "must be on one line" if not _CONTROL.match(match.group())
                else f"a control character ({match.group()}) that a spreadsheet does not show; delete it")
        raise InputError(f"'{shown_cell}'{where} contains {what}", path=shown, row=number, column=column)


def _check_bad_bytes(shown: str, number: int, header: list[str] | None, cells: list[str]) -> None:
    for i, cell in enumerate(cells):
        match = _BAD_BYTE.search(cell)
        if match is None:
            continue
        raw = cell.encode("utf-8", "surrogateescape")
        as_cp1252 = raw.decode("cp1252", errors="replace").strip()
        if len(as_cp1252) > 40:
            as_cp1252 = as_cp1252[:37] + "..."
        column = header[i] if header is not None and i < len(header) else None
        where = "" if header is not None else f" (header cell {i + 1})"
        byte = ord(match.group()) - 0xDC00
        raise InputError(
            f"contains a byte that is not valid UTF-8 (0x{byte:02X}){where}; the file seems to be saved "
            f"as Latin-1/Windows-1252 (it would read '{as_cp1252}'): save it as 'CSV UTF-8' and try again",
            path=shown, row=number, column=column)


def _sniff_delimiter(text: str, known: frozenset[str]) -> str:
    """Comma, semicolon or tab: the one whose header cells are most often known column names."""
    best, best_score = ",", -1
    head = text[:1_000_000]     # the header is the first record: no need to copy a large file
    for delimiter in (",", ";", "\t"):
        reader = csv.reader(io.StringIO(head, newline=""), delimiter=delimiter)
        try:
            header = next((rec for rec in reader if any(c.strip() for c in rec)), [])
        except csv.Error:
            continue
        score = sum(1 for c in header if c.strip().lstrip("\ufeff").strip() in known)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _parse_csv(text: str, delimiter: str, shown: str) -> list[tuple[int, list[str]]]:
    """All records with their spreadsheet row numbers (blank lines counted, quoted line breaks not).

    The csv module's own cell limit is lifted (the file is at most
    ``MAX_FILE_BYTES``), so that a cell over ``MAX_CELL_CHARS`` is reported by
    ``_check_long_cells`` with its row, column and length, and an unclosed
    quote as such.
    """
    old_limit = csv.field_size_limit()
    csv.field_size_limit(max(old_limit, schema.MAX_FILE_BYTES + 1))
    try:
        return _parse_csv_records(text, delimiter, shown)
    finally:
        csv.field_size_limit(old_limit)


def _parse_csv_records(text: str, delimiter: str, shown: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records = []
    number = 0
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            message = str(err)
            if "unexpected end of data" in message or "EOF" in message:
                raise InputError(f"a double-quoted text starting in row {number} is never closed "
                                 "(a missing closing \")", path=shown, row=number) from None
            if "field larger than field limit" in message:    # not reached: the limit is lifted
                raise InputError(f"a cell is longer than {csv.field_size_limit():,} characters",
                                 path=shown, row=number) from None
            if "expected after" in message:
                raise InputError("a double quote in the middle of a cell: a text with quotes must be "
                                 "wrapped in double quotes, with each inner quote doubled (\"\")",
                                 path=shown, row=number) from None
            raise InputError(f"is not valid CSV ({message})", path=shown, row=number) from None
        records.append((number, cells))
    return records


def _check_required(shown: str, header_row: int, header: list[str], required) -> None:
    present = set(header)
    for name in required:
        if name not in present:
            similar = [h for h in header if h and h.lower().replace(" ", "_") == name]
            hint = (f" (found '{similar[0]}': column names are lower case, with _ for spaces)"
                    if similar else "")
            found = ", ".join(h for h in header if h) or "nothing"
            if len(found) > 120:
                found = found[:117] + "..."
            raise InputError(f"the required column is missing{hint}; required: {', '.join(required)}; "
                             f"the header has: {found}", path=shown, row=header_row, column=name)


def _check_header_columns(shown: str, header_row: int, header: list[str], columns) -> list[int]:
    """Validate header names (blank, repeated); return the indexes of the columns to keep."""
    seen: dict[str, int] = {}
    keep = []
    for i, name in enumerate(header):
        if not name:
            if any(cell.strip() for cell in columns[i]):
                raise InputError(f"header cell {i + 1} is blank but its column holds data; "
                                 "give the column a name", path=shown, row=header_row)
            continue   # trailing empty columns of a spreadsheet export
        if name in seen:
            raise InputError(f"the column name appears twice in the header (cells {seen[name] + 1} "
                             f"and {i + 1}); each column name must be unique",
                             path=shown, row=header_row, column=name)
        seen[name] = i
        keep.append(i)
    return keep


# ---------------------------------------------------------------------------
# Typed cells


_MISSING_WORDS = {"na", "n/a", "nan", "null", "none", "-", "--", "\u2013", "\u2014", "?", ".", "nr", "n.r."}
_INF_WORDS = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "\u221e"}
_WHOLE = re.compile(r"^\+?(\d+)(?:\.0*)?$", re.ASCII)
_NEGATIVE = re.compile(r"^-\d+(?:\.\d*)?$", re.ASCII)
_DECIMAL = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+)$", re.ASCII)
_THOUSANDS = re.compile(r"^\d{1,3}(?:[, \u00a0\u202f']\d{3})+$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")
_PCT = re.compile(r"^\d+(?:\.\d+)?$", re.ASCII)


def parse_count(text: str, *, path: str, row: int, column: str) -> int | None:
    """A count cell: blank -> None; whole numbers only (``3.0`` is read as 3)."""
    s = _strip(text)
    if not s:
        return None
    if s.isdigit() and s.isascii() and len(s) < 10:      # the common case: plain digits
        return int(s)

    def fail(message):
        raise InputError(message, path=path, row=row, column=column)

    low = s.lower()
    if low in _MISSING_WORDS:
        fail(f"'{s}' is not a count; leave the cell empty when the source gives no number")
    if low in _INF_WORDS:
        fail(f"'{s}' (infinite) is not a count; counts are whole numbers of participants or fistulas")
    match = _WHOLE.match(s)
    if match:
        value = int(match.group(1))
        if value > schema.MAX_COUNT:
            fail(f"{value} is implausibly large for a count (over 1,000,000,000); check the cell")
        return value
    if _NEGATIVE.match(s):
        fail(f"'{s}' is negative; counts cannot be below 0")
    if _THOUSANDS.match(s):
        fail(f"'{s}' has a thousands separator; write the count with digits only "
             f"(e.g. {re.sub(r'[^0-9]', '', s)})")
    if _DECIMAL.match(s) or _DECIMAL_COMMA.match(s):
        fail(f"'{s}' is not a whole number; counts are numbers of participants or fistulas")
    if s.endswith("%"):
        fail(f"'{s}' is a percentage, not a count; put printed percentages in pct_t / pct_c")
    if not s.isascii():
        fail(f"'{s}' is not written with the digits 0-9; type the count again with plain digits")
    try:
        number = float(s)
    except ValueError:
        fail(f"'{s}' is not a number; counts are whole numbers written with digits")
    if not math.isfinite(number):
        fail(f"'{s}' is not a count; counts are whole numbers of participants or fistulas")
    fail(f"'{s}' is not a whole number written with digits (write e.g. 1000, not 1e3)")
    return None   # unreachable


class NumberError(ValueError):
    """A number cell or option value that is refused; ``str(err)`` says why, without file or row."""


_PLAIN_NUMBER = re.compile(r"^\+?(?:\d+(?:\.\d*)?|\.\d+)$", re.ASCII)
_SCIENTIFIC = re.compile(r"^\+?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$", re.ASCII)
_DECIMAL_COMMA_SCIENTIFIC = re.compile(r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$")
_NON_FINITE = {"inf", "infinity", "nan", "\u221e"}
WEEKS_HINT = "write the number of weeks only, e.g. 24 (a year is 52)"
DOSE_HINT = "write the number of cells, e.g. 3e7 or 30000000 (words go in dose_text)"


def _strict_number(s: str, *, hint: str, scientific: bool, decimal_comma: bool) -> float:
    """A non-blank cell as a number, or ``NumberError``: ASCII digits, one optional decimal point
    (a decimal comma where ``decimal_comma``), an optional leading +, and an exponent
    (``3e7``) only where ``scientific``. No underscores (``1_0``), no inf or nan, no minus:
    a minus sign raises ``NumberError`` whose ``args[1]`` is the value without it."""
    original = s
    if decimal_comma and (_DECIMAL_COMMA.match(s) or _DECIMAL_COMMA_SCIENTIFIC.match(s)):
        s = s.replace(",", ".")
    shape = _SCIENTIFIC if scientific else _PLAIN_NUMBER
    if shape.match(s):
        return float(s)
    if s.startswith("-") and shape.match(s[1:]):
        raise NumberError(f"'{original}' is negative", float(s[1:]))
    if not s.isascii():
        raise NumberError(f"'{original}' is not written with the digits 0-9; {hint}")
    if s.lower().lstrip("+-") in _NON_FINITE:
        raise NumberError(f"'{original}' is not a finite number; {hint}")
    if "_" in s and shape.match(s.replace("_", "")):
        raise NumberError(f"'{original}' has an underscore; {hint}")
    if not scientific and _SCIENTIFIC.match(s.lstrip("-")):
        raise NumberError(f"'{original}' is in scientific notation; {hint}")
    raise NumberError(f"'{original}' is not a number; {hint}")


def weeks_from_text(text: str, *, decimal_comma: bool = False) -> float | None:
    """A time point in weeks (blank -> None), as strictly as ``parse_count``; ``NumberError`` otherwise.

    Plain decimal numbers only (``24``, ``2.5``, ``+24``; ``24,5`` in a semicolon or tab file):
    no scientific notation, underscores, inf, nan or minus sign (not even ``-0``), and at most
    ``schema.MAX_WEEKS``. Used for the ``timepoint_weeks`` column and the ``--timepoint`` option.
    """
    s = _strip(text)
    if not s:
        return None
    try:
        value = _strict_number(s, hint=WEEKS_HINT, scientific=False, decimal_comma=decimal_comma)
    except NumberError as err:
        if len(err.args) > 1:        # a minus sign
            if err.args[1] == 0:
                raise NumberError(f"'{s}' has a minus sign; a time point is weeks after treatment "
                                  "(write 0)") from None
            raise NumberError(f"'{s}' is negative; a time point is weeks after treatment") from None
        raise
    if value > schema.MAX_WEEKS:
        raise NumberError(f"'{s}' weeks is over {schema.MAX_WEEKS:,} weeks (100 years), "
                          f"the largest time point accepted; {WEEKS_HINT}")
    return value


def dose_from_text(text: str, *, decimal_comma: bool = False) -> float | None:
    """A number of cells (blank -> None): like ``weeks_from_text`` but scientific notation is
    allowed (``3e7``, ``1.2E8``), and the value must be from 1 to ``schema.MAX_DOSE_CELLS``."""
    s = _strip(text)
    if not s:
        return None
    try:
        value = _strict_number(s, hint=DOSE_HINT, scientific=True, decimal_comma=decimal_comma)
    except NumberError as err:
        if len(err.args) > 1:
            raise NumberError(f"'{s}' is not a positive number of cells") from None
        raise
    if value == 0:
        raise NumberError(f"'{s}' is not a positive number of cells")
    if value < 1:
        raise NumberError(f"'{s}' is less than one cell; {DOSE_HINT}")
    if value > schema.MAX_DOSE_CELLS:
        largest = f"{schema.MAX_DOSE_CELLS:.0e}".replace("e+", "e")
        raise NumberError(f"'{s}' is over {largest} cells, the largest dose accepted; check the cell")
    return value


def parse_timepoint(text: str, *, path: str, row: int, column: str = "timepoint_weeks",
                    decimal_comma: bool = False) -> float | None:
    try:
        return weeks_from_text(text, decimal_comma=decimal_comma)
    except NumberError as err:
        raise InputError(str(err), path=path, row=row, column=column) from None


def parse_dose(text: str, *, path: str, row: int, column: str = "dose_cells",
               decimal_comma: bool = False) -> float | None:
    try:
        return dose_from_text(text, decimal_comma=decimal_comma)
    except NumberError as err:
        raise InputError(str(err), path=path, row=row, column=column) from None


def parse_unit(text: str, *, path: str, row: int, column: str = "unit") -> str | None:
    s = key(_strip(text))
    if not s:
        return None
    if s not in schema.UNITS:
        raise InputError(f"'{text.strip()}' is not a unit; use {' or '.join(schema.UNITS)} "
                         "(what the n of the row counts)", path=path, row=row, column=column)
    return s


def _parse_pct(text: str, *, path: str, row: int, column: str, decimal_comma: bool) -> str | None:
    s = _strip(text)
    if not s:
        return None
    s = s.rstrip("%").strip()
    if decimal_comma and _DECIMAL_COMMA.match(s):
        s = s.replace(",", ".")
    if not _PCT.match(s) or float(s) > 100:
        raise InputError(f"'{text.strip()}' is not a percentage between 0 and 100; write the number as "
                         "printed in the source, e.g. 63 or 43.3", path=path, row=row, column=column)
    return s


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = _strip(value)
    return value or None


def _strip(text: str) -> str:
    """``str.strip`` that also removes invisible characters at the ends (``keys.is_invisible``:
    byte-order marks, zero-width spaces, right-to-left marks, soft hyphens...), which editors
    and copy-paste leave behind."""
    if text.isascii():
        return text.strip()       # exact: no invisible characters are ASCII
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or is_invisible(text[start])):
        start += 1
    while end > start and (text[end - 1].isspace() or is_invisible(text[end - 1])):
        end -= 1
    return text[start:end]


def _make_row(raw: RawTable, number: int, cells: dict[str, str]) -> Row:
    path = raw.path
    decimal_comma = raw.delimiter != ","
    values: dict = {}
    for column in ("study_id", "outcome"):
        text = _text(cells.get(column))
        if text is None:
            raise InputError("is blank; every row needs a study_id and an outcome",
                             path=path, row=number, column=column)
        values[column] = text
    for column in schema.COUNT_COLUMNS:
        values[column] = parse_count(cells.get(column, ""), path=path, row=number, column=column)
    values["timepoint_weeks"] = parse_timepoint(cells.get("timepoint_weeks", ""), path=path, row=number,
                                                decimal_comma=decimal_comma)
    values["unit"] = parse_unit(cells.get("unit", ""), path=path, row=number)
    for column in schema.PCT_COLUMNS:
        values[column] = _parse_pct(cells.get(column, ""), path=path, row=number, column=column,
                                    decimal_comma=decimal_comma)
    values["dose_cells"] = parse_dose(cells.get("dose_cells", ""), path=path, row=number,
                                      decimal_comma=decimal_comma)
    for column in schema.OUTCOME_TYPE_COLUMNS:
        values[column] = parse_measurement(cells.get(column, ""), path=path, row=number,
                                           column=column, decimal_comma=decimal_comma)
    for column in schema.TEXT_COLUMNS:
        if column not in values:
            values[column] = _text(cells.get(column))
    _check_arms(path, number, values)
    _check_one_type(path, number, values)
    extra = {name: text for name, text in cells.items() if name not in schema.KNOWN_COLUMNS}
    for column in schema.ROB_COLUMNS:
        if column in extra:
            extra[column] = parse_rob(extra[column], path=path, row=number, column=column)
    return Row(row_number=number, extra=MappingProxyType(extra), **values)


def parse_rob(text: str, *, path: str, row: int, column: str) -> str:
    """A risk-of-bias judgement (``schema.ROB_LEVELS``, any case and spacing) written the one
    way listed there, so that ``--by rob_overall`` and the traffic lights see one value; blank
    stays blank."""
    s = " ".join(_strip(text).lower().replace("_", " ").split())
    if not s or s in schema.ROB_LEVELS:
        return s
    raise InputError(f"'{_strip(text)}' is not a risk-of-bias judgement; write one of "
                     f"{', '.join(schema.ROB_LEVELS)} (RoB 2), or leave the cell empty",
                     path=path, row=row, column=column)


def _check_arms(path: str, number: int, v: dict) -> None:
    def fail(message, column):
        raise InputError(message, path=path, row=number, column=column)

    for arm in ("t", "c"):
        events, n = v[f"events_{arm}"], v[f"n_{arm}"]
        if v.get(f"time_{arm}") is not None:
            # incidence rates: events over person-time; n (if given) may be below the events
            if n == 0:
                fail(f"n_{arm} is 0; an arm needs at least one participant (or fistula)", f"n_{arm}")
            continue
        if events is not None and n is None:
            fail(f"events_{arm} is given but n_{arm} is blank; give both, or neither", f"n_{arm}")
        if n == 0:
            fail(f"n_{arm} is 0; an arm needs at least one participant (or fistula)", f"n_{arm}")
        if events is not None and events > n:
            fail(f"events_{arm} ({events}) is larger than n_{arm} ({n})", f"events_{arm}")
    if v.get("time_t") is not None or v.get("time_c") is not None:
        return
    if v["n_c"] is not None and v["events_c"] is None and v["events_t"] is not None:
        # A row with treatment events and a control size but no control events
        # is half a comparison; arm sizes alone are allowed only on rows that
        # have no event counts at all (percentage-only rows).
        fail("n_c is given but events_c is blank; give both control counts, or neither", "events_c")
    if v["events_c"] is not None and v["events_t"] is None:
        fail("control counts are given but events_t is blank; fill events_t, or leave the control "
             "counts empty too (put them in note)", "events_t")


def _check_one_type(path: str, number: int, v: dict) -> None:
    """A row holds one outcome type: the marker columns of two families (or of one family
    beside event counts without person-time) would make it ambiguous which is pooled."""
    found = [(family, next(c for c in markers if v.get(c) is not None))
             for family, markers in schema.FAMILY_MARKERS
             if any(v.get(c) is not None for c in markers)]
    rates = {"rates_two", "rates_one"}
    means = {"means_two", "means_one"}
    families = {f for f, _ in found}
    if families <= rates or families <= means:   # a two-group row also fills the _t markers
        found = found[:1]
    if v.get("events_t") is not None and found and found[0][0] not in rates:
        found.append(("counts", "events_t"))
    if len(found) > 1:
        (first, col1), (second, col2) = found[0], found[1]
        raise InputError(f"holds {col1} ({first.replace('_', ' ')}) and {col2} "
                         f"({second.replace('_', ' ')}); a row holds one outcome type: put the "
                         "other in a row of its own (another outcome key)",
                         path=path, row=number, column=col2)


_MEASUREMENT_HINT = "write a number with digits, e.g. 12.5, -3.1 or 2e-4"


def parse_measurement(text: str, *, path: str, row: int, column: str,
                      decimal_comma: bool = False) -> float | None:
    """A number of an outcome-type column (``schema.OUTCOME_TYPE_COLUMNS``; blank -> None).

    As strict as the other number columns (``_strict_number``: digits, one decimal point,
    an exponent; no inf, nan, underscores, thousands separators). Means and effects
    (``schema.SIGNED_COLUMNS``) may be negative; SDs, SEs, variances and person-time
    (``schema.POSITIVE_COLUMNS``) must be > 0; ``r`` and ``cor_t`` lie in [-1, 1];
    ``effect_level`` is a percentage between 0 and 100.
    """
    s = _strip(text)
    if not s:
        return None

    def fail(message):
        raise InputError(message, path=path, row=row, column=column)

    if s.lower() in _MISSING_WORDS:
        fail(f"'{s}' is not a number; leave the cell empty when the source gives no number")
    try:
        value = _strict_number(s, hint=_MEASUREMENT_HINT, scientific=True,
                               decimal_comma=decimal_comma)
    except NumberError as err:
        if len(err.args) < 2:
            fail(str(err))
        value = -err.args[1]
    if column in schema.POSITIVE_COLUMNS and not value > 0:
        what = "person-time" if column.startswith("time_") else "a spread (SD, SE or variance)"
        fail(f"'{s}' is not above 0; {column} is {what} and must be > 0")
    if column in schema.CORRELATION_COLUMNS and not -1.0 <= value <= 1.0:
        fail(f"'{s}' is not a correlation; {column} lies between -1 and 1")
    if column in schema.PVALUE_COLUMNS and not 0.0 < value <= 1.0:
        fail(f"'{s}' is not a p-value; write the exact two-sided p, e.g. 0.006 (above 0, at most 1)")
    if column in schema.LEVEL_COLUMNS and not 0.0 < value < 100.0:
        fail(f"'{s}' is not a confidence level; write the percentage, e.g. 95 (between 0 and 100)")
    return value


_SAME_KEY = "capitals, character width and invisible characters do not make keys different"


def _check_unique_keys(path: str, rows: tuple[Row, ...]) -> None:
    """(study_id, outcome, timepoint_weeks, unit), compared as keys, is unique."""
    seen: dict[tuple, Row] = {}
    for row in rows:
        row_key = (key(row.study_id), key(row.outcome), row.timepoint_weeks, row.unit)
        if row_key in seen:
            first = seen[row_key]
            spelt = ""
            if (first.study_id, first.outcome) != (row.study_id, row.outcome):
                spelt = (f"; row {first.row_number} writes it ({first.study_id}, {first.outcome}): "
                         f"{_SAME_KEY}")
            raise InputError(
                f"repeats row {first.row_number}: the same study_id, outcome, timepoint_weeks and unit "
                f"({row.study_id}, {row.outcome}, {format_weeks(row.timepoint_weeks)}, {row.unit or '(blank)'})"
                f"{spelt}; each outcome may appear once per study group, time point and unit",
                path=path, row=row.row_number, column="study_id")
        seen[row_key] = row


def _check_one_spelling(path: str, rows: tuple[Row, ...]) -> None:
    """Each key is written one way: ``Closure`` in one row and ``closure`` in another would be
    two outcomes (``--outcome closure`` silently missing a row), ``A`` and ``A`` + a
    right-to-left mark two studies. The table is refused, naming both rows, rather than guessed."""
    first: dict[tuple[str, str], Row] = {}
    what = {"study_id": "study group", "outcome": "outcome", "trial": "trial"}
    for row in rows:
        for column, noun in what.items():
            text = getattr(row, column)
            if text is None:
                continue
            other = first.setdefault((column, key(text)), row)
            if getattr(other, column) != text:
                raise InputError(
                    f"'{text}' and '{getattr(other, column)}' (row {other.row_number}) are the same "
                    f"{noun} written differently ({_SAME_KEY}); write it the same way on every row",
                    path=path, row=row.row_number, column=column)
    for row in rows:
        for parent in row.parents:
            study = first.get(("study_id", key(parent)))
            if study is not None and study.study_id != parent:
                raise InputError(
                    f"names '{parent}', but the study_id is written '{study.study_id}' (row "
                    f"{study.row_number}); write it the same way ({_SAME_KEY})",
                    path=path, row=row.row_number, column="subgroup_of")


def _make_totals_row(raw: RawTable, number: int, cells: dict[str, str]) -> TotalsRow:
    path = raw.path
    trial = _text(cells.get("trial"))
    if trial is None:
        raise InputError("is blank; every totals row names its trial", path=path, row=number, column="trial")
    arm = (_text(cells.get("arm")) or "").lower()
    if arm not in schema.TOTALS_ARMS:
        raise InputError(f"'{cells.get('arm', '').strip()}' is not an arm; use treatment, control or all",
                         path=path, row=number, column="arm")
    members = tuple(m.strip() for m in cells.get("members", "").split(";") if m.strip())
    if not members:
        raise InputError("is blank; list the study_ids that make up the total, separated by ;",
                         path=path, row=number, column="members")
    if len({key(m) for m in members}) != len(members):
        raise InputError("lists a study_id twice", path=path, row=number, column="members")
    total = parse_count(cells.get("total_n", ""), path=path, row=number, column="total_n")
    if total is None or total < 1:
        raise InputError("must be a count of at least 1 (the total the source states)",
                         path=path, row=number, column="total_n")
    return TotalsRow(
        row_number=number, trial=trial,
        timepoint_weeks=parse_timepoint(cells.get("timepoint_weeks", ""), path=path, row=number,
                                        decimal_comma=raw.delimiter != ","),
        unit=parse_unit(cells.get("unit", ""), path=path, row=number),
        arm=arm, members=members, total_n=total,
        source=_text(cells.get("source")), quote=_text(cells.get("quote")), note=_text(cells.get("note")),
    )


__all__ = [
    "Row", "OutcomeTable", "TotalsRow", "TotalsTable", "curated_path", "curated_totals_path",
    "load_table", "load_totals", "select", "format_weeks", "parse_count", "read_csv_records",
    "NumberError", "weeks_from_text", "dose_from_text", "parse_measurement",
]
