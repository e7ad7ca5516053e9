"""The ``bind``, ``numbers`` and ``timepoint`` checks: every number of a row is read from its quote.

Rule (shared/cli-contract.md, "msc-meta check"; notation in ``msc_meta.data.bind``
and docs/data.md): each number of a row -- counts, printed percentages, the
time point and the dose -- must have a ``bind`` entry, and the value that entry
reads from the quote (or derives from quoted numbers) must equal the cell.
A number that merely appears somewhere in the quote does not count.

Failures are ``(row, kind, reason)`` with kind ``bind`` (the entry cannot be
read or does not hold: text not in the quote, a cell line not in the source's
layout, a ``same`` without a row to lean on), ``numbers`` (a count,
percentage or dose unbound, or different from what its entry reads) or
``timepoint`` (the same for ``timepoint_weeks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from msc_meta.data import bind as b
from msc_meta.data.keys import key
from msc_meta.data.load import OutcomeTable, Row

# Relative tolerance when a dose read as A × 10^E is compared with dose_cells.
DOSE_RTOL = 1e-9


def _collapse(text: str | None) -> str:
    return " ".join((text or "").split())


@dataclass
class RowContext:
    """What a row's references are read against."""
    row: Row
    quote: str
    note: str
    source_lines: list[str] | None       # raw lines of the source (None: no sources given)
    problems: list[tuple[str, str]] = field(default_factory=list)
    layouts: dict = field(default_factory=dict)   # (source, joined cells) -> starts a source line?


def _in_quote(ctx: RowContext, text: str, what: str) -> None:
    found = ctx.quote.count(_collapse(text))
    if found == 0:
        raise b.BindError(f'{what} "{text}" is not in the quote')
    if found > 1:
        raise b.BindError(f'{what} "{text}" occurs {found} times in the quote; quote more of it')


def _cell_layout(ctx: RowContext, line: str) -> None:
    """The cells joined by single spaces (an empty cell leaves two spaces) must start a source line."""
    joined = " ".join(b.table_cells(line))
    _in_quote(ctx, joined, "cell line")
    if ctx.source_lines is None:
        return
    seen = (ctx.row.source, joined)
    if seen not in ctx.layouts:
        ctx.layouts[seen] = any(s.lstrip().startswith(joined) for s in ctx.source_lines)
    if not ctx.layouts[seen]:
        raise b.BindError(f'cell line "{line}" does not match the layout of any line of {ctx.row.source} '
                          "(cells are separated by one space there; an empty cell leaves two)")


def _text_of(ctx: RowContext, ref: b.Ref) -> str:
    if ref.kind == "quote":
        _in_quote(ctx, ref.text, "text")
        return ref.text
    if ref.kind == "cell":
        _cell_layout(ctx, ref.text)
        return b.table_cells(ref.text)[ref.column] if 0 < ref.column < len(b.table_cells(ref.text)) else ""
    raise b.BindError(f"sci() takes a quoted text or a cell(), not {ref.describe()}")


def _from_pct(ctx: RowContext, column: str) -> float:
    from msc_meta.data.check import pct_matches

    arm = column[-1]
    printed, n = getattr(ctx.row, f"pct_{arm}"), getattr(ctx.row, f"n_{arm}")
    if not column.startswith("events_") or printed is None or n is None:
        raise b.BindError(f"from_pct derives events from pct_{arm} and n_{arm}; {column} cannot use it here")
    fits = [e for e in range(n + 1) if pct_matches(printed, e, n)]
    if len(fits) != 1:
        raise b.BindError(f"{len(fits)} whole counts out of {n} round to {printed}% "
                          f"({', '.join(map(str, fits)) or 'none'}); exactly one must")
    return float(fits[0])


def read_ref(ctx: RowContext, column: str, ref: b.Ref) -> float:
    """The value one reference gives for ``column`` of the row (raises BindError)."""
    is_time = column == "timepoint_weeks"
    if ref.kind in ("quote", "note"):
        if ref.kind == "note":
            if not is_time:
                raise b.BindError(f'note"..." may bind timepoint_weeks only, not {column}')
            if ctx.note.count(_collapse(ref.text)) == 0:
                raise b.BindError(f'note text "{ref.text}" is not in the note')
        else:
            _in_quote(ctx, ref.text, "text")
        if is_time:
            return b.pick(b.times_in(ref.text), ref.index, "stated time", f'"{ref.text}"')
        return b.pick(b.numbers_in(ref.text), ref.index, "number", f'"{ref.text}"')
    if ref.kind == "cell":
        _cell_layout(ctx, ref.text)
        return b.cell_value(ref.text, ref.column, ref.index)
    if ref.kind in ("zero", "one"):
        _in_quote(ctx, ref.text, "phrase")
        return 0.0 if ref.kind == "zero" else 1.0
    if ref.kind == "sci":
        return b.sci_value(_text_of(ctx, ref.inner))
    if ref.kind == "from_pct":
        return _from_pct(ctx, column)
    raise b.BindError(f"{ref.describe()} cannot be used in a sum")


def read_binding(ctx: RowContext, binding: b.Binding) -> float:
    """The value an entry gives: its references added and subtracted."""
    return sum(sign * read_ref(ctx, binding.column, ref) for sign, ref in binding.terms)


def cell_value(row: Row, column: str) -> float | None:
    value = getattr(row, column)
    return None if value is None else float(value)


def agrees(column: str, cell: float, bound: float) -> bool:
    if column == "dose_cells":
        return abs(cell - bound) <= DOSE_RTOL * max(abs(cell), abs(bound))
    return cell == bound


def _kind(column: str) -> str:
    return "timepoint" if column == "timepoint_weeks" else "numbers"


def _show(column: str, value: float) -> str:
    if column == "dose_cells":
        return f"{value:g}"
    return f"{value:g}" if value != int(value) else str(int(value))


# ---------------------------------------------------------------------------
# the check


def _group(row: Row, column: str, study: str | None = None) -> tuple:
    """Where ``same`` looks: the study group at the row's time point and unit (any row, for the dose)."""
    study = key(study or row.study_id)
    if column == "dose_cells":
        return (study, column)
    return (study, row.timepoint_weeks, row.unit, column)


def _source_lines(folder, name: str | None, cache: dict) -> list[str] | None:
    if folder is None or name is None:
        return None
    if name not in cache:
        try:
            text = (folder / name).read_bytes().decode("utf-8-sig", errors="replace")
        except OSError:
            text = None       # the source_file check reports it
        # A no-break space is a space (it sits inside cells, as in "1 × 107").
        cache[name] = None if text is None else \
            text.replace("\xa0", " ").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return cache[name]


def check_row_bindings(ctx: RowContext, anchors: dict, deferred: list) -> None:
    """Direct entries of one row: read, compare, remember as anchors; ``same`` entries wait."""
    row = ctx.row
    try:
        bindings = b.parse_bind(row.bind)
    except b.BindError as err:
        ctx.problems.append(("bind", f"the bind cell cannot be read: {err}"))
        return
    for column in b.BINDABLE:
        cell, binding = cell_value(row, column), bindings.get(column)
        if binding is None:
            if cell is not None:
                ctx.problems.append((_kind(column), f"{column} = {_show(column, cell)} is not bound to the quote "
                                                    "(add a bind entry)"))
            continue
        if cell is None:
            ctx.problems.append((_kind(column), f"bind gives {column} but the cell is blank"))
            continue
        if binding.is_same:
            deferred.append((ctx, binding, cell))
            continue
        try:
            bound = read_binding(ctx, binding)
        except b.BindError as err:
            ctx.problems.append(("bind", f"{binding.written}: {err}"))
            continue
        anchors.setdefault(_group(row, column), []).append((row.row_number, bound))
        if not agrees(column, cell, bound):
            ctx.problems.append((_kind(column), f"{column} is {_show(column, cell)} but {binding.expression} "
                                                f"reads {_show(column, bound)}"))


def check_same(ctx: RowContext, binding: b.Binding, cell: float, anchors: dict) -> None:
    """A ``same`` entry: some row of the named group binds the column directly, to this value."""
    sign, ref = binding.terms[0]
    column = binding.column
    if len(binding.terms) > 1 or sign != 1:
        ctx.problems.append(("bind", f"{column}: same stands alone, not in a sum"))
        return
    found = anchors.get(_group(ctx.row, column, ref.text), [])
    where = ref.text or ctx.row.study_id
    if not found:
        ctx.problems.append(("bind", f"{column} = {ref.describe()}: no row of {where} "
                                     f"{'' if column == 'dose_cells' else 'at this time point and unit '}"
                                     f"binds {column} to its quote"))
        return
    values = sorted({v for _, v in found})
    if not any(agrees(column, cell, v) for v in values):
        rows = ", ".join(str(r) for r, _ in found)
        ctx.problems.append((_kind(column), f"{column} is {_show(column, cell)} but row{'s' if len(found) > 1 else ''} "
                                            f"{rows} of {where} bind{'' if len(found) > 1 else 's'} "
                                            f"{', '.join(_show(column, v) for v in values)}"))


def check_bindings(table: OutcomeTable, sources_dir=None) -> list[tuple[Row, str, str]]:
    """Every number of every row against its bind entry; ``(row, kind, reason)`` for each failure."""
    from pathlib import Path

    folder = Path(sources_dir) if sources_dir is not None else None
    cache: dict = {}
    anchors: dict = {}
    deferred: list = []
    contexts, layouts = [], {}
    for row in table.rows:
        if row.quote is None and any(cell_value(row, c) is not None for c in b.BINDABLE):
            if folder is None:       # with sources, the quote check reports the row
                contexts.append(RowContext(row, "", "", None, [("bind", "has numbers but no quote to bind them to")]))
            continue
        ctx = RowContext(row, _collapse(row.quote), _collapse(row.note),
                         _source_lines(folder, row.source, cache), layouts=layouts)
        contexts.append(ctx)
        check_row_bindings(ctx, anchors, deferred)
    for ctx, binding, cell in deferred:
        check_same(ctx, binding, cell, anchors)
    return [(ctx.row, kind, reason) for ctx in contexts for kind, reason in ctx.problems]
