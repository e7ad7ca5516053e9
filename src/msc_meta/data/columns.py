"""The outcome table as typed columns: what ``load_table`` builds and the hot paths read.

One numpy float array per number column (counts, ``schema.FLOAT_COLUMNS``,
``schema.OUTCOME_TYPE_COLUMNS``; NaN where the cell is blank), one list per
text column (``None`` where blank), and the spreadsheet row numbers. Which
column is which comes from ``schema``: a column declared there flows through
without changes here.

Validation keeps one rule set: the per-cell parsers of ``msc_meta.data.load``
(``parse_count``, ``parse_timepoint`` ...) and its per-row checks
(``_make_row``: arms, one outcome type). Here each parser runs once per
*distinct* cell text of a column (a million rows hold a few thousand distinct
counts), and the per-row checks are written as array expressions that flag
rows. A flagged row (or a row holding a refused cell) is then run through
``_make_row`` itself, in row order, so the first error raised, and its
message (file, row, column, what is wrong), is exactly the per-row loader's.

``Row`` objects (``msc-meta check``, ``bind``, ``studies``) are built lazily
from the columns (:meth:`TableColumns.row`); ``pool`` and the batch paths
read the columns.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np

from msc_meta.data import schema
from msc_meta.data.keys import key
from msc_meta.errors import InputError

NAN = math.nan


def number_columns() -> tuple[str, ...]:
    """Columns held as float arrays (NaN = blank), from the schema."""
    return tuple(dict.fromkeys(schema.COUNT_COLUMNS + schema.FLOAT_COLUMNS
                               + schema.OUTCOME_TYPE_COLUMNS))


def text_columns() -> tuple[str, ...]:
    """Columns held as lists of text (None = blank), from the schema."""
    return tuple(dict.fromkeys(schema.TEXT_COLUMNS + schema.PCT_COLUMNS))


_PARSED_TEXT = ("unit",) + schema.PCT_COLUMNS      # text columns with a parser (typed_columns)


def plain_text_columns() -> tuple[str, ...]:
    """Text columns typed by stripping alone (no parser): the plain reader may type them."""
    return tuple(c for c in text_columns() if c not in _PARSED_TEXT)


class TableColumns:
    """Typed columns of a validated outcome table (see the module docstring)."""

    def __init__(self, numbers, values: dict, extra: dict):
        self.numbers = np.asarray(numbers, dtype=np.int64)   # spreadsheet rows
        self.values = values        # known column -> float array or list (all schema columns)
        self.extra = extra          # unknown column -> list of raw text
        self.n = int(self.numbers.size)

    def __len__(self) -> int:
        return self.n

    def column(self, name):
        """A known column (array or list) or an extra one (list of raw text)."""
        if name in self.values:
            return self.values[name]
        return self.extra[name]

    def present(self, name) -> np.ndarray:
        """True where the column's cell is filled."""
        col = self.values.get(name)
        if col is None:
            return np.zeros(self.n, dtype=bool)
        if isinstance(col, np.ndarray):
            return ~np.isnan(col)
        return np.fromiter((v is not None for v in col), dtype=bool, count=self.n)

    def filled(self, name) -> bool:
        """Does any row fill this column? (cached: the columns do not change once checked)"""
        cache = self.__dict__.setdefault("_filled", {})
        if name not in cache:
            col = self.values.get(name)
            if col is None:
                cache[name] = False
            elif isinstance(col, np.ndarray):
                cache[name] = not bool(np.isnan(col).all())
            else:       # list.count runs in C: 10^6 blank cells in ~5 ms
                cache[name] = col.count(None) != len(col) if isinstance(col, list) \
                    else any(v is not None for v in col)
        return cache[name]

    def any_family_marker(self) -> bool:
        """Does any row fill a column that marks an outcome type other than counts? (cached:
        asked once per analysis, 10,000 times by export --all)"""
        found = self.__dict__.get("_any_family_marker")
        if found is None:
            found = self.__dict__["_any_family_marker"] = any(
                self.filled(c) for _, markers in schema.FAMILY_MARKERS for c in markers)
        return found

    def row(self, i: int):
        """Row ``i`` (0-based) as a ``load.Row``, built from the columns."""
        from msc_meta.data.load import Row

        values = {}
        for name, col in self.values.items():
            v = col[i]
            if isinstance(col, np.ndarray):
                v = None if v != v else (int(v) if name in schema.COUNT_COLUMNS else float(v))
            values[name] = v
        extra = {name: col[i] for name, col in self.extra.items()}
        return Row(row_number=int(self.numbers[i]), extra=MappingProxyType(extra), **values)

    def rows(self, index=None) -> tuple:
        index = range(self.n) if index is None else index
        return tuple(self.row(int(i)) for i in index)

    @classmethod
    def from_rows(cls, rows) -> "TableColumns":
        """Columns of ``Row`` objects (tables built in memory, e.g. by tests)."""
        n = len(rows)
        values: dict = {}
        for name in number_columns():
            values[name] = np.array([_nan(getattr(r, name, None)) for r in rows], dtype=float)
        for name in text_columns():
            values[name] = [getattr(r, name, None) for r in rows]
        names = dict.fromkeys(name for r in rows for name in getattr(r, "extra", {}))
        extra = {name: [r.extra.get(name, "") for r in rows] for name in names}
        return cls(np.array([r.row_number for r in rows], dtype=np.int64).reshape(n), values, extra)


def _nan(v):
    return NAN if v is None else float(v)


# ---------------------------------------------------------------------------
# Typing and validating the raw text columns


def typed_columns(raw) -> TableColumns:
    """Validate ``raw`` (``load.RawColumns``) and type its columns; ``InputError`` as the per-row loader."""
    from msc_meta.data import load

    path, n = raw.path, len(raw.numbers)
    decimal_comma = raw.delimiter != ","
    cells = raw.cells
    typed = raw.typed       # columns the plain reader typed, exactly as below (msc_meta.data.plain)
    flagged = np.zeros(n, dtype=bool)
    values: dict = {}
    # A column the file lacks is blank in every row: one shared, read-only column for all.
    no_numbers = np.full(n, NAN)
    no_numbers.flags.writeable = False
    no_texts = [None] * n

    def typed_column(name, convert, missing):
        """The column ``name``: as the plain reader typed it, ``missing`` if the file lacks
        it, else ``convert(cells)`` (values, rows to re-read per row or None)."""
        if name in typed:
            values[name] = typed[name]
            return
        col = cells.get(name)
        if col is None:
            values[name] = missing
            return
        values[name], bad = convert(col)
        if bad is not None:
            flagged[:] |= bad

    def parse_numbers(name, parse):
        digits = name in schema.COUNT_COLUMNS
        typed_column(name, lambda col: _numbers(col, parse, digits=digits), no_numbers)

    for name in schema.COUNT_COLUMNS:
        parse_numbers(name, lambda t, c=name: load.parse_count(t, path=path, row=0, column=c))
    parse_numbers("timepoint_weeks", lambda t: load.weeks_from_text(t, decimal_comma=decimal_comma))
    parse_numbers("dose_cells", lambda t: load.dose_from_text(t, decimal_comma=decimal_comma))
    for name in schema.OUTCOME_TYPE_COLUMNS:
        parse_numbers(name, lambda t, c=name: load.parse_measurement(
            t, path=path, row=0, column=c, decimal_comma=decimal_comma))
    for name in number_columns():
        if name in values:
            continue
        col = cells.get(name)
        if col is None:
            values[name] = no_numbers
            continue
        # a number column without a parser here: its filled cells go through the per-row loader
        values[name] = np.full(n, NAN)
        flagged |= np.fromiter((bool(c.strip()) for c in col), dtype=bool, count=n)

    def parse_texts(name, parse):
        typed_column(name, lambda col: _texts(col, parse), no_texts)

    parse_texts("unit", lambda t: load.parse_unit(t, path=path, row=0))
    for name in schema.PCT_COLUMNS:
        parse_texts(name, lambda t, c=name: load._parse_pct(t, path=path, row=0, column=c,
                                                            decimal_comma=decimal_comma))
    for name in plain_text_columns():
        parse_texts(name, None)
    for name in ("study_id", "outcome"):
        col = values[name]
        if name not in raw.blank_free and None in col:
            flagged |= np.fromiter((v is None for v in col), dtype=bool, count=n)
    absent = {name for name, col in values.items() if col is no_numbers}
    flagged |= _arm_problems(values, n, absent) | _type_problems(values, n, absent)
    extra = {name: col for name, col in cells.items() if name not in schema.KNOWN_COLUMNS}
    for name in schema.ROB_COLUMNS:
        if name in extra:           # kept as text, in the one spelling load.parse_rob writes
            extra[name], bad = _texts(extra[name], lambda t, c=name: load.parse_rob(
                t, path=path, row=0, column=c))
            extra[name] = ["" if v is None else v for v in extra[name]]
            if bad is not None:
                flagged |= bad
    table = TableColumns(raw.numbers, values, extra)
    if raw.unique_study_keys:
        table.unique_studies = True     # check_unique_keys: nothing to compare
    if flagged.any():
        _per_row(raw, table, np.flatnonzero(flagged))
    return table


def _numbers(col, parse, *, digits=False):
    """A float array (NaN = blank) and the rows whose cell the parser refuses (or None).

    ``digits``: the column is a count, which ``parse_count`` reads as the integer
    whenever the cell is 1-9 plain ASCII digits (its own shortcut)."""
    n = len(col)
    joined = ",".join(col) if digits and n >= 64 else ""
    # every cell filled (no empty cell between, before or after commas) and plain digits
    if joined and joined[0] != "," and joined[-1] != "," and ",," not in joined \
            and joined.isascii() and joined.replace(",", "").isdigit():
        # numpy's C parser reads each cell as int(text) does (2.3x map(int) on 10^6 cells);
        # a number beyond int64 saturates, so it fails the MAX_COUNT test below as it should
        values = np.fromstring(joined, dtype=np.int64, sep=",")
        # parse_count reads plain digits as int(text), refusing only values over MAX_COUNT;
        # a cell holding a comma (a ";" file) splits in two, and the count tells
        if values.shape[0] == n and values.max() <= schema.MAX_COUNT:
            return values.astype(float), None
    parsed, refused = {}, set()
    for text in dict.fromkeys(col):
        try:
            parsed[text] = _nan(parse(text))
        except (InputError, ValueError):
            parsed[text] = NAN
            refused.add(text)
    arr = np.fromiter(map(parsed.__getitem__, col), dtype=float, count=n)
    bad = np.fromiter(map(refused.__contains__, col), dtype=bool, count=n) if refused else None
    return arr, bad


def _texts(col, parse):
    """Text values (None = blank) and the rows whose cell the parser refuses (or None)."""
    from msc_meta.data.load import _text

    n = len(col)
    if parse is None and "".join(col).isascii():
        out = list(map(str.strip, col))        # exact for ASCII: no invisible characters
        if "" in out:
            out = [v or None for v in out]
        return out, None
    parsed, refused = {}, set()
    for text in dict.fromkeys(col):
        try:
            parsed[text] = _text(text) if parse is None else parse(text)
        except (InputError, ValueError):
            parsed[text] = None
            refused.add(text)
    out = list(map(parsed.__getitem__, col))
    bad = np.fromiter(map(refused.__contains__, col), dtype=bool, count=n) if refused else None
    return out, bad


def _filled(v, name, n, absent) -> np.ndarray:
    """True where the number column's cell is filled (``absent``: columns the file lacks)."""
    return np.zeros(n, dtype=bool) if name in absent else ~np.isnan(v[name])


def _arm_problems(v, n, absent=frozenset()) -> np.ndarray:
    """Rows ``load._check_arms`` refuses, as array expressions (the same rules)."""
    bad = np.zeros(n, dtype=bool)
    has = {name: _filled(v, name, n, absent) for name in ("events_t", "n_t", "events_c", "n_c",
                                                          "time_t", "time_c")}
    for arm in ("t", "c"):
        events, size = v[f"events_{arm}"], v[f"n_{arm}"]
        timed = has[f"time_{arm}"]
        with np.errstate(invalid="ignore"):
            zero = size == 0
            over = events > size
        bad |= timed & zero
        bad |= ~timed & ((has[f"events_{arm}"] & ~has[f"n_{arm}"]) | zero | over)
    untimed = ~(has["time_t"] | has["time_c"])
    bad |= untimed & has["n_c"] & ~has["events_c"] & has["events_t"]
    bad |= untimed & has["events_c"] & ~has["events_t"]
    return bad


def _type_problems(v, n, absent=frozenset()) -> np.ndarray:
    """Rows ``load._check_one_type`` refuses (two outcome types in one row), as array expressions."""
    rates, means = {"rates_two", "rates_one"}, {"means_two", "means_one"}
    present = {}
    for family, markers in schema.FAMILY_MARKERS:
        mask = np.zeros(n, dtype=bool)
        for c in markers:
            if c not in absent:
                mask |= ~np.isnan(v[c])
        present[family] = mask
    if not any(m.any() for m in present.values()):
        return np.zeros(n, dtype=bool)
    count = sum(m.astype(np.int64) for m in present.values())
    only_rates = count == sum(present[f].astype(np.int64) for f in rates if f in present)
    only_means = count == sum(present[f].astype(np.int64) for f in means if f in present)
    found = np.where(only_rates | only_means, np.minimum(count, 1), count)
    # the first family found (FAMILY_MARKERS order) is a rates family only when all are rates
    first_rates = np.zeros(n, dtype=bool)
    decided = np.zeros(n, dtype=bool)
    for family, _ in schema.FAMILY_MARKERS:
        first_rates |= ~decided & present[family] & (family in rates)
        decided |= present[family]
    counts = ~np.isnan(v["events_t"]) & (found > 0) & ~first_rates
    return (found + counts) > 1


def _per_row(raw, table: TableColumns, index) -> None:
    """Run the per-row loader on flagged rows, in row order: it raises the first error."""
    from msc_meta.data import load

    header = tuple(raw.cells)
    for i in index:
        cells = {name: raw.cells[name][i] for name in header}
        row = load._make_row(raw, int(raw.numbers[i]), cells)   # raises the exact error
        for name, col in table.values.items():      # a flag the rules let pass: its values
            value = getattr(row, name)
            if isinstance(col, np.ndarray):
                if not (value is None and col[i] != col[i]) and col[i] != value:
                    col[i] = _nan(value)
            elif col[i] != value:
                col[i] = value


# ---------------------------------------------------------------------------
# Checks across rows


def column_keys(col) -> list:
    """``keys.key`` of every cell of a text column (vectorised for plain ASCII)."""
    if not col:
        return []       # "".split gives [""]: a column without spellings would look like one
    if None not in col:
        joined = "\x00".join(col)
        if joined.isascii() and not any(ch in joined for ch in " \t\n\r\x0b\x0c"):
            lowered = joined.lower()
            # already lower case: each text is its own key (no new string per row)
            return list(col) if lowered == joined else lowered.split("\x00")
    return list(map(key, col))


def check_unique_keys(path, table: TableColumns) -> None:
    """(study_id, outcome, timepoint_weeks, unit), compared as keys, is unique (``load._check_unique_keys``)."""
    from msc_meta.data import load

    if getattr(table, "unique_studies", False):
        return      # the plain reader found every study_id a different key
    v = table.values
    study_keys = column_keys(v["study_id"])
    table.unique_studies = len(set(study_keys)) == len(study_keys)
    if table.unique_studies:
        return      # the common case: every study group once
    weeks = [None if w != w else float(w) for w in v["timepoint_weeks"].tolist()]
    keys = list(zip(study_keys, _outcome_keys(v["outcome"]), weeks, v["unit"]))
    if len(set(keys)) == len(keys):
        return
    count: dict = {}
    for k in keys:
        count[k] = count.get(k, 0) + 1
    index = [i for i, k in enumerate(keys) if count[k] > 1]
    load._check_unique_keys(path, table.rows(index))


def _outcome_keys(col) -> list:
    mapping = {text: key(text) for text in dict.fromkeys(col)}
    return list(map(mapping.__getitem__, col))


def check_one_spelling(path, table: TableColumns) -> None:
    """Each key is written one way (``load._check_one_spelling``); the parents of ``subgroup_of`` too."""
    from msc_meta.data import load

    v = table.values
    suspects = np.zeros(table.n, dtype=bool)
    for column in ("study_id", "outcome", "trial"):
        if column == "study_id" and getattr(table, "unique_studies", False):
            continue    # each key once, so each key is written one way
        col = v[column]
        spellings = set(col)
        spellings.discard(None)
        if len(set(column_keys(list(spellings)))) == len(spellings):
            continue
        count: dict = {}
        for t in spellings:
            count[key(t)] = count.get(key(t), 0) + 1
        suspects |= np.fromiter((t is not None and count[key(t)] > 1 for t in col), dtype=bool,
                                count=table.n)
    if suspects.any():
        load._check_one_spelling(path, table.rows(np.flatnonzero(suspects)))
    parents = v["subgroup_of"]
    if not table.filled("subgroup_of"):
        return
    first: dict = {}
    for sid, number in zip(v["study_id"], table.numbers.tolist()):
        first.setdefault(key(sid), (sid, number))
    for text, number in zip(parents, table.numbers.tolist()):
        if not text:
            continue
        for parent in (p.strip() for p in text.split(";") if p.strip()):
            study = first.get(key(parent))
            if study is not None and study[0] != parent:
                raise InputError(
                    f"names '{parent}', but the study_id is written '{study[0]}' (row "
                    f"{study[1]}); write it the same way ({load._SAME_KEY})",
                    path=path, row=number, column="subgroup_of")


__all__ = ["TableColumns", "check_one_spelling", "check_unique_keys", "column_keys",
           "number_columns", "text_columns", "typed_columns"]


# ---------------------------------------------------------------------------
# Selected rows as a view on the columns


class RowsView:
    """Some rows of a table (``index`` into its ``TableColumns``), read by column.

    A sequence of ``Row`` (built on access, for the code that needs one row at
    a time: notes, exclusion reasons, a study's line) and :meth:`column` for
    the array code (effect sizes, exclusion masks, guidance).
    """

    __slots__ = ("data", "index", "_rows", "_full", "_families")

    def __init__(self, data: TableColumns, index):
        self.data = data
        self.index = np.asarray(index, dtype=np.int64)
        self._rows: dict = {}
        # every row of the table, in order: its columns are the table's (no copy)
        self._full = self.index.size == data.n and (
            data.n == 0 or (self.index[0] == 0 and self.index[-1] == data.n - 1
                            and bool((np.diff(self.index) == 1).all())))
        self._families = None

    def __len__(self) -> int:
        return int(self.index.size)

    def __bool__(self) -> bool:
        return self.index.size > 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        row = self._rows.get(i)
        if row is None:
            row = self._rows[i] = self.data.row(int(self.index[i]))
        return row

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def take(self, positions) -> "RowsView":
        """The rows at ``positions`` (0-based within this view)."""
        return RowsView(self.data, self.index[np.asarray(positions, dtype=np.int64)])

    def column(self, name):
        """This view's part of a column: a float array (numbers) or a list (text)."""
        col = self.data.column(name)
        if self._full:
            return col
        if isinstance(col, np.ndarray):
            return col[self.index]
        return [col[i] for i in self.index.tolist()]

    def present(self, name) -> np.ndarray:
        col = self.data.values.get(name)
        if not self.data.filled(name):
            return np.zeros(len(self), dtype=bool)
        if isinstance(col, np.ndarray):
            return ~np.isnan(self.column(name))
        return np.fromiter((v is not None for v in self.column(name)), dtype=bool, count=len(self))

    @property
    def row_numbers(self) -> np.ndarray:
        return self.data.numbers[self.index]

    def families(self) -> list:
        """Each row's outcome type, as ``Row.family`` (None: no data)."""
        if self._families is None:
            self._families = self._find_families()
        return self._families

    def family_mask(self, *families) -> np.ndarray:
        """True where the row's outcome type (:meth:`families`) is one of ``families``; without
        a text per row when no row marks a type other than counts (every table of counts)."""
        if self._families is None and not self.data.any_family_marker():
            counts = self._counts()
            if "counts" in families:
                return counts | ~counts if None in families else counts
            return ~counts if None in families else np.zeros(len(self), dtype=bool)
        return np.fromiter((f in families for f in self.families()), dtype=bool, count=len(self))

    def _counts(self) -> np.ndarray:
        return self.present("events_t") & self.present("n_t")

    def _find_families(self) -> list:
        n = len(self)
        if not self.data.any_family_marker():
            return np.where(self._counts(), "counts", None).tolist()
        out = np.full(n, None, dtype=object)
        decided = np.zeros(n, dtype=bool)
        for family, markers in schema.FAMILY_MARKERS:
            mask = np.zeros(n, dtype=bool)
            for c in markers:
                mask |= self.present(c)
            out[mask & ~decided] = family
            decided |= mask
        counts = ~decided & self.present("events_t") & self.present("n_t")
        out[counts] = "counts"
        return out.tolist()


def concat(views) -> RowsView | None:
    """One view of several views of the same table (None when they are not)."""
    views = list(views)
    if not views or not all(isinstance(v, RowsView) and v.data is views[0].data for v in views):
        return None
    return RowsView(views[0].data, np.concatenate([v.index for v in views]))


def rows_column(rows, name, *, numbers=True):
    """Column ``name`` of ``rows`` (a view, or any sequence of row objects): a float array
    (None -> NaN) when ``numbers``, else a list."""
    if isinstance(rows, RowsView):
        col = rows.column(name)
        return col if not numbers or isinstance(col, np.ndarray) else np.array(col, dtype=float)
    values = [getattr(r, name, None) for r in rows]
    if not numbers:
        return values
    return np.array([NAN if v is None else v for v in values], dtype=float)
