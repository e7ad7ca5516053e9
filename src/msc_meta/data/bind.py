"""The ``bind`` column: how each number of a row is read from its quote (docs/data.md, "Binding numbers").

A bind cell holds ``;``-separated entries ``COLUMN = EXPRESSION``. An
expression is one reference, or references joined by ``+`` and ``-``:

``"LITERAL"[K]``
    the K-th number (default: the only one) of LITERAL, a span that occurs in
    the row's quote (whitespace collapsed). A number is a run of digits
    (``63``, ``43.3``; ``4a`` reads 4) or a number word (``two``,
    ``Thirteen``). For ``timepoint_weeks`` the span must state a time
    (``after 4 years``, ``Week 24``, ``3-mo``), converted by :func:`weeks_stated`.
``note"LITERAL"``
    as above, in the row's note: allowed for ``timepoint_weeks`` only (a time
    that is the curator's reading, said in the note).
``cell("LABEL | A | | C", J)[K]``
    a table line written with its cells separated by ``|`` (column 0 is the
    row label); the value is the K-th number of cell J; an empty cell or a
    dash reads 0. The line must be in the quote; with sources, the cells joined
    by single spaces must start a line of the source, so an empty cell shows as
    two spaces in a row there (the PDF text's layout).
``zero("PHRASE")``, ``one("PHRASE")``
    0 or 1 stated in words that hold no digit ("none could be detected",
    "the patient underwent rescue therapy"); PHRASE must be in the quote.
``sci(REF)``
    a dose printed ``A × 10E`` (the PDF text flattens ``10^7`` to ``107``): A × 10**E.
``from_pct``
    (events only) the one whole count out of the arm's n that rounds to the
    arm's printed percentage (derivation rule 2); no other count may round to it.
``same``, ``same(STUDY)``
    the value another row binds directly: a row of this study group (or of
    STUDY) at the same time point and unit; for ``dose_cells``, any row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from msc_meta.data.schema import OUTCOME_TYPE_COLUMNS

# Every column that holds a number of the source: counts, printed percentages, the time
# point, the dose, and the outcome types beyond counts (means, spreads, p-values, ...).
BINDABLE = ("events_t", "n_t", "pct_t", "events_c", "n_c", "pct_c", "timepoint_weeks",
            "dose_cells") + OUTCOME_TYPE_COLUMNS

# Span separator inside a quote: a quote may join several verbatim spans of
# one source with " … " (each span is checked on its own).
SPAN_SEPARATOR = " … "

WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
_WORDS = "|".join(WORD_NUMBERS)
NUMBER_TOKEN = re.compile(rf"\d+(?:\.\d+)?|\b(?:{_WORDS})\b", re.IGNORECASE)

# Time stated in words: "4 years", "4-year", "24 weeks", "14-wk", "3-mo", "12 months", "Week 24", "day 28".
_UNIT = r"(?P<unit>weeks?|wks?|months?|mo|years?|yrs?|days?)"
_TIME_AFTER = re.compile(rf"(?P<n>\d+(?:\.\d+)?|\b(?:{_WORDS}))\s*-?\s*{_UNIT}(?![a-z])", re.IGNORECASE)
_TIME_BEFORE = re.compile(r"\b(?P<unit>week|wk|day|month|year)\s+(?P<n>\d+(?:\.\d+)?)", re.IGNORECASE)
_SCI = re.compile(r"(\d+(?:\.\d+)?)\s*[x×]\s*10\^?(\d{1,2})\b")

_TOKEN = re.compile(r'\s*(?:(?P<str>"[^"]*")|(?P<num>\d+)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>[=;+\-\[\](),]))')


class BindError(ValueError):
    """A bind cell that cannot be read, or a reference that does not hold."""


# ---------------------------------------------------------------------------
# parsing


@dataclass(frozen=True)
class Ref:
    kind: str                 # quote, note, cell, zero, one, sci, from_pct, same
    text: str | None = None   # the literal (quote, note, cell line, phrase); STUDY for same
    index: int | None = None  # [K]
    column: int | None = None  # J of cell()
    inner: "Ref | None" = None  # the argument of sci()

    def describe(self) -> str:
        """The reference as written (for messages)."""
        k = f"[{self.index}]" if self.index is not None else ""
        if self.kind == "quote":
            return f'"{self.text}"{k}'
        if self.kind == "note":
            return f'note"{self.text}"{k}'
        if self.kind == "cell":
            return f'cell("{self.text}", {self.column}){k}'
        if self.kind in ("zero", "one"):
            return f'{self.kind}("{self.text}")'
        if self.kind == "sci":
            return f"sci({self.inner.describe()})"
        if self.kind == "same" and self.text:
            return f"same({self.text})"
        return self.kind


@dataclass(frozen=True)
class Binding:
    column: str
    terms: tuple[tuple[int, Ref], ...]   # (+1 or -1, reference)
    written: str                          # the entry as written

    @property
    def expression(self) -> str:
        """The right-hand side as written."""
        return self.written.split("=", 1)[1].strip()

    @property
    def is_same(self) -> bool:
        return any(ref.kind == "same" for _, ref in self.terms)


def tokenize(text: str) -> list[tuple[str, str, int, int]]:
    """``(kind, text, start, end)`` tokens of a bind cell; kind is str, num, name or op."""
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise BindError(f"cannot read the bind cell at '{text[pos:pos + 20]}'")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind), m.start(kind), m.end(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens, text):
        self.tokens, self.i, self.text = tokens, 0, text

    def peek(self, value=None):
        if self.i >= len(self.tokens):
            return None
        tok = self.tokens[self.i]
        return tok if value is None or tok[1] == value else None

    def take(self, kind=None, value=None, what="a token"):
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind) or (value and tok[1] != value):
            found = f"'{tok[1]}'" if tok else "the end"
            raise BindError(f"expected {what} but found {found}")
        self.i += 1
        return tok[1]

    def string(self):
        return self.take("str", what='a "quoted text"')[1:-1]

    def index(self):
        if not self.peek("["):
            return None
        self.take(value="[")
        k = int(self.take("num", what="a number K in [K]"))
        self.take(value="]", what="']'")
        if k < 1:
            raise BindError("[K] counts from 1")
        return k

    def ref(self) -> Ref:
        tok = self.peek()
        if tok and tok[0] == "str":
            return Ref("quote", self.string(), self.index())
        name = self.take("name", what='a reference ("text", cell(...), same, ...)')
        if name == "note":
            return Ref("note", self.string(), self.index())
        if name in ("from_pct", "same") and not self.peek("("):
            return Ref(name)
        self.take(value="(", what=f"'(' after {name}")
        if name == "cell":
            line = self.string()
            self.take(value=",", what="',' in cell(LINE, J)")
            column = int(self.take("num", what="a column number J"))
            self.take(value=")", what="')'")
            return Ref("cell", line, self.index(), column)
        if name in ("zero", "one"):
            ref = Ref(name, self.string())
        elif name == "sci":
            ref = Ref("sci", inner=self.ref())
        elif name == "same":
            ref = Ref("same", self.take("name", what="a study_id"))
        else:
            raise BindError(f"unknown reference '{name}'")
        self.take(value=")", what="')'")
        return ref

    def entry(self) -> Binding:
        start = self.i
        column = self.take("name", what="a column name")
        if column not in BINDABLE:
            raise BindError(f"'{column}' is not a column that holds a number ({', '.join(BINDABLE[:8])}, "
                            "or a column of another outcome type: mean_pre, se_pre, p_value, ...)")
        self.take(value="=", what=f"'=' after {column}")
        terms = [(1, self.ref())]
        while self.peek("+") or self.peek("-"):
            sign = 1 if self.take() == "+" else -1
            terms.append((sign, self.ref()))
        written = self.text[self.tokens[start][2]:self.tokens[self.i - 1][3]]
        return Binding(column, tuple(terms), written)


def parse_bind(text: str | None) -> dict[str, Binding]:
    """The entries of a bind cell by column; raises BindError (one line) when it cannot be read."""
    if not text or not text.strip():
        return {}
    return dict(_parse_cached(text))


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> tuple[tuple[str, Binding], ...]:
    parser = _Parser(tokenize(text), text)
    out: dict[str, Binding] = {}
    while parser.peek() is not None:
        binding = parser.entry()
        if binding.column in out:
            raise BindError(f"{binding.column} is bound twice")
        out[binding.column] = binding
        if parser.peek() is not None:
            parser.take(value=";", what="';' between entries")
    return tuple(out.items())


# ---------------------------------------------------------------------------
# reading numbers and times


def word_or_number(token: str) -> float:
    return float(WORD_NUMBERS[token.lower()]) if token.lower() in WORD_NUMBERS else float(token)


def numbers_in(text: str) -> list[tuple[str, float]]:
    """Number tokens of a text as (printed, value): digits, or number words zero to twenty."""
    return [(m.group(0), word_or_number(m.group(0))) for m in NUMBER_TOKEN.finditer(text)]


def weeks_stated(number: float, unit: str) -> float:
    """Weeks for a stated time: weeks as they are; 1 year = 52 weeks; months × 52/12 and days / 7,
    rounded to whole weeks (half up), so 3 months = 13, 12 months = 52, 24 months = 104, day 28 = 4."""
    unit = unit.lower()
    if unit.startswith("w"):
        return number
    if unit.startswith("y"):
        return number * 52
    if unit.startswith("m"):
        return float(int(number * 52 / 12 + 0.5))
    return float(int(number / 7 + 0.5))


def times_in(text: str) -> list[tuple[str, float]]:
    """Times stated in a text as (printed, weeks), in order of appearance."""
    found = [(m.start(), m.group(0), weeks_stated(word_or_number(m.group("n")), m.group("unit")))
             for m in _TIME_AFTER.finditer(text)]
    found += [(m.start(), m.group(0), weeks_stated(float(m.group("n")), m.group("unit")))
              for m in _TIME_BEFORE.finditer(text)]
    return [(printed, weeks) for _, printed, weeks in sorted(found)]


def sci_value(text: str) -> float:
    """``12 × 107`` (PDF text of 12 × 10^7) or ``1 × 10^7`` -> 1.2e8 / 1e7."""
    m = _SCI.search(text)
    if not m:
        raise BindError(f'sci(): "{text}" is not written A × 10E')
    return float(m.group(1)) * 10.0 ** int(m.group(2))


def pick(items: list[tuple[str, float]], index: int | None, what: str, where: str) -> float:
    """The index-th item (1-based); without an index there must be exactly one."""
    if index is None:
        if len(items) != 1:
            raise BindError(f"{where} holds {len(items)} {what}s; say which with [K]")
        return items[0][1]
    if index > len(items):
        raise BindError(f"{where} holds {len(items)} {what}{'s' if len(items) != 1 else ''}, not {index}")
    return items[index - 1][1]


def table_cells(line: str) -> list[str]:
    """The cells of a cell() line: split on '|', spaces at the ends of each removed."""
    return [c.strip() for c in line.split("|")]


def cell_value(line: str, column: int, index: int | None) -> float:
    """Number K of cell J of a cell() line; an empty cell or a dash is 0 (derivation rule 5)."""
    cells = table_cells(line)
    if column < 1 or column >= len(cells):
        raise BindError(f'cell(): the line has columns 1 to {len(cells) - 1} after its label, not {column}')
    text = cells[column]
    if text in ("", "-", "–", "—"):
        return 0.0
    return pick(numbers_in(text), index, "number", f'cell {column} "{text}"')
