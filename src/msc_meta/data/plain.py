"""Reading a plain outcome table at array speed: the bytes, not one string per cell.

A *plain* file (ASCII, no double quote, no control character, no line over
``schema.MAX_CELL_CHARS``) is read by ``load._plain_records`` line by line:
records are its lines (LF, CRLF or CR), cells what lies between delimiters,
blank lines skipped. This module reads such a file the same way with numpy,
a block of lines at a time (so that the arrays stay in the processor's
cache): it finds line ends and delimiters in the bytes, reads the count
columns (``schema.COUNT_COLUMNS``) straight from their digits, and makes
text only for the columns that need it.

It answers only what it can prove: :func:`read_columns` returns ``None``
for anything unusual (not plain, a ragged row, a blank or repeated column
name, a cell with many blanks around it, no data rows ...), and the caller
then runs the per-line reader, so that every error (file, row, column, what)
comes from the one place that words it. What it returns is the per-line
reader's ``load.RawColumns`` (the raw text of a cell is made when asked
for), plus:

- ``typed``: columns typed exactly as ``columns.typed_columns`` types them.
  A count column whose cells are all blank or 1-8 ASCII digits (what
  ``load.parse_count`` reads as ``int(text)`` without another check) as
  floats, NaN = blank; any other count column is left to ``typed_columns``
  as text. The text columns without a parser: the stripped cell, None = blank.
- ``blank_free``: the typed text columns without a blank cell.
- ``unique_study_keys``: every study_id is a different key (``keys.key`` of
  an ASCII label without inner blanks is its lower case).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from msc_meta.data import schema

_NL, _SPACE, _TAB = 10, 32, 9
_PAD = 64                   # spare zero bytes after the data: a word read near the end stays inside
_TEXT, _BLANK, _CONTROL, _DELIMITER, _LINE_END = 0, 1, 2, 3, 4     # byte classes (_classes)
_BLOCK = 1 << 17            # bytes of lines read at a time (measured best: the arrays stay in cache)
_MAX_BAD_LINES = 1000       # more lines of the wrong width: a ragged file, the per-line reader words it
_MAX_STRIP = 64             # more blanks around a cell: let the per-line reader strip them


def read_columns(text: str, delimiter: str, shown: str, required, text_columns):
    """``load.RawColumns`` of a plain ``text``, with ``typed`` columns; ``None`` if not provable.

    ``text_columns``: the columns ``typed_columns`` types by stripping alone.
    """
    from msc_meta.data.load import RawColumns

    data = _plain_bytes(text)
    if data is None:
        return None
    table = _class_table(delimiter)
    head = _header(data, delimiter, required)
    if head is None or bytes([_CONTROL]) in data[:head[2]].translate(table):
        return None             # (a control character, load._CONTROL: not plain)
    header_row, header, body_start = head
    counts = {name for name in header if name in schema.COUNT_COLUMNS}
    while True:
        body = _body(data, table, body_start, header, header_row, counts, text_columns)
        if not isinstance(body, str):
            break
        counts.discard(body)        # a count column to leave to typed_columns, as text
    if body is None:
        return None
    numbers, line_starts, columns, unique = body
    typed, cells, blank_free = {}, {}, set()
    for j, name in enumerate(header):
        kind, values, filled = columns[j]
        if kind == "raw":
            cells[name] = values
            continue
        typed[name] = values
        cells[name] = Cells(data, line_starts, j, delimiter)
        if kind == "text" and filled:
            blank_free.add(name)
    return RawColumns(path=shown, header=tuple(header), numbers=numbers, cells=cells,
                      delimiter=delimiter, typed=typed, unique_study_keys=unique,
                      blank_free=frozenset(blank_free))


def _plain_bytes(text: str) -> bytes | None:
    """The text as bytes with every line ended by LF, or None when it is not ASCII or holds a
    double quote. CRLF and CR become LF: ``str.splitlines`` (the per-line reader) makes the
    same lines of all three."""
    if not text.isascii() or '"' in text:
        return None
    data = text.encode("ascii")
    if "\r" in text:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not data.endswith(b"\n"):
        data += b"\n"
    return data


def _class_table(delimiter: str) -> bytes:
    """``bytes.translate`` table of each byte's class: text, blank (space, tab), control
    (``load._CONTROL`` in ASCII), then the separators: delimiter, line feed."""
    table = bytearray([_CONTROL] * 32 + [_TEXT] * 95 + [_CONTROL] + [_TEXT] * 128)
    table[_SPACE] = table[_TAB] = _BLANK
    table[ord(delimiter)] = _DELIMITER
    table[_NL] = _LINE_END
    return bytes(table)


def _header(data: bytes, delimiter: str, required):
    """(header row, header names, offset of the first body byte) or None.

    None also when the header lacks a required column or has a blank or
    repeated name: the per-line reader words those errors.
    """
    blanks = delimiter + " \t"
    start, number = 0, 1
    while start < len(data):
        end = data.index(b"\n", start)
        if end - start > schema.MAX_CELL_CHARS:
            return None
        line = data[start:end].decode("ascii")
        if line.strip(blanks):
            header = [c.strip() for c in line.split(delimiter)]
            needed = tuple(required(header)) if callable(required) else required
            if not set(needed) <= set(header) or "" in header or len(set(header)) != len(header):
                return None
            return number, header, end + 1
        start, number = end + 1, number + 1
    return None


def _body(data, table, body_start, header, header_row, counts, text_columns):
    """(row numbers, line starts, per column (kind, values, no blank cell?), unique study
    keys?) of the body, read a block of lines at a time; None when not provable, or the name
    of a count column to leave to ``typed_columns`` (as text)."""
    lines = int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8, offset=body_start) == _NL))
    out = _Out(lines, header, counts, text_columns)
    start, row = body_start, header_row + 1
    while start < len(data):
        stop = data.find(b"\n", min(start + _BLOCK, len(data) - 1)) + 1
        classes = data[start:stop].translate(table)
        if bytes([_CONTROL]) in classes:
            return None         # a control character (load._CONTROL): not plain
        # the block's bytes from a few before it (a count's word ends at the count), with
        # spare bytes after it (a text's words run past it): see _word_at
        base = max(start - 8, 0)
        if len(data) - stop >= _PAD:
            a = np.frombuffer(data, dtype=np.uint8, offset=base)
        else:
            a = np.frombuffer(data[base:] + bytes(_PAD), dtype=np.uint8)
        blanks = bytes([_BLANK]) in classes
        block = _block(classes, a, start - base, len(header), row, blanks)
        if block is None:
            return None
        numbers, line_starts, raw, cells, block_lines = block
        rows = out.rows(numbers, line_starts + base)
        for j, name in enumerate(header):
            lengths, ends = cells[j]
            if name in counts:
                if not _counts(a, lengths, ends, out.counts[name][rows]):
                    return name
            elif name in text_columns:
                out.add_text(name, *_texts(a, lengths, ends, keys=name == out.key, blanks=blanks))
            else:
                out.add_text(name, *_texts(a, *raw[j], keys=False, blanks=blanks))
        start, row = stop, row + block_lines
    return out.result(header)


class _Out:
    """The columns of the body, filled a block at a time (arrays made once, at full size)."""

    key = "study_id"        # the column whose keys must all differ (check_unique_keys)

    def __init__(self, lines: int, header, counts, text_columns):
        self.n, self._rows = 0, slice(0, 0)
        self.numbers = np.empty(lines, dtype=np.int64)
        self.line_starts = np.empty(lines, dtype=np.int64)
        self.counts = {name: np.empty(lines) for name in header if name in counts}
        self.kinds = {name: "count" if name in counts else "text" if name in text_columns
                      else "raw" for name in header}
        self.pieces = {name: [] for name in header if name not in counts}
        self.filled = dict.fromkeys(header, True)
        self.hashes = np.empty(lines, dtype=np.uint64) if self.kinds.get(self.key) == "text" else None

    def rows(self, numbers, line_starts) -> slice:
        """Add a block's rows; the slice of the columns they fill."""
        rows = slice(self.n, self.n + numbers.size)
        self.numbers[rows], self.line_starts[rows] = numbers, line_starts
        self.n += numbers.size
        self._rows = rows
        return rows

    def add_text(self, name, piece, filled, hashes) -> None:
        self.pieces[name].append(piece)
        self.filled[name] &= filled
        if name == self.key and self.hashes is not None:
            if hashes is None:
                self.hashes = None
            else:
                self.hashes[self._rows] = hashes

    def result(self, header):
        if self.n == 0:
            return None
        n = self.n
        columns = []
        for name in header:
            kind, filled = self.kinds[name], self.filled[name]
            if kind == "count":
                columns.append((kind, self.counts[name][:n], filled))
            else:
                blank_is_none = kind == "text" and not filled
                columns.append((kind, _strings(self.pieces[name], blank_is_none), filled))
        unique = self.hashes is not None and _all_different(self.hashes[:n])
        return self.numbers[:n], self.line_starts[:n], columns, unique


def _strings(pieces, blank_is_none: bool) -> list:
    """The text of a column from its blocks' pieces (bytes of cells ended by line feeds, or
    ``_Repeated``); a blank cell is None when ``blank_is_none``, else "" (as is every cell
    of a column without blank cells)."""
    if all(isinstance(p, _Repeated) and p.cell == pieces[0].cell for p in pieces):
        cell = pieces[0].cell.decode("ascii")
        return [cell or None if blank_is_none else cell] * sum(p.count for p in pieces)
    values = b"".join(p.joined() if isinstance(p, _Repeated) else p for p in pieces)
    values = values.decode("ascii").split("\n")
    values.pop()
    if blank_is_none:
        values = [v or None for v in values]
    return values


class _Repeated:
    """One cell text repeated: a block whose cells of a column are all the same (e.g. the
    outcome of a table of one outcome) is not split into as many strings."""

    def __init__(self, cell: bytes, count: int):
        self.cell, self.count = cell, count

    def joined(self) -> bytes:
        return (self.cell + b"\n") * self.count


def _block(block_classes: bytes, a, start: int, width: int, row: int, blanks: bool):
    """The lines of a block (``block_classes``: its bytes' classes; ``start``: where it starts
    in ``a``; ``blanks``: it holds spaces or tabs): (row numbers, line starts, raw cells,
    stripped cells, lines), None when not provable. Cells: per column, (lengths, ends)
    arrays; positions are in ``a``.

    Every non-blank line must hold ``width - 1`` delimiters; blank lines (only
    delimiters, spaces and tabs) are skipped, their numbers counted.
    """
    classes = np.frombuffer(block_classes, dtype=np.uint8)
    pos = np.flatnonzero(classes >= _DELIMITER)
    is_end = classes[pos] == _LINE_END
    lines = int(np.count_nonzero(is_end))
    # every line holds width - 1 delimiters when each width-th separator is a line end
    regular = pos.size == width * lines and bool(is_end[width - 1::width].all())
    if blanks:      # blanks at the ends of cells (beside a separator), not only inside them
        blanks = bool(classes[0] == _BLANK or (classes[pos[:-1] + 1] == _BLANK).any()
                      or (classes[pos - 1] == _BLANK).any())
    lengths = np.empty_like(pos)        # a cell starts where the one before it ended + 1
    lengths[0] = pos[0]
    np.subtract(pos[1:], pos[:-1], out=lengths[1:])
    lengths[1:] -= 1
    newlines = pos[width - 1::width] if regular else pos[is_end]
    line_start = np.concatenate(([0], newlines[:-1] + 1))
    line_length = newlines - line_start
    if int(line_length.max()) > schema.MAX_CELL_CHARS:
        return None
    numbers = np.arange(row, row + lines, dtype=np.int64)
    if not regular:
        kept = _kept_lines(block_classes, is_end, line_start, newlines, width)
        if kept is None:
            return None
        cell_kept = np.repeat(kept, np.diff(np.flatnonzero(is_end), prepend=-1))
        pos, lengths = pos[cell_kept], lengths[cell_kept]
        line_start, line_length, numbers = line_start[kept], line_length[kept], numbers[kept]
    pos += start
    line_start += start
    ends, lengths = pos.reshape(-1, width).T, lengths.reshape(-1, width).T
    raw = cells = [(lengths[j], ends[j]) for j in range(width)]
    if blanks:
        cells = [_strip(a, e - n, e) for n, e in raw]
        if any(c is None for c in cells):
            return None
    # lines of delimiters (and blanks) only; without blanks they are width - 1 long
    empty = line_length == width - 1
    if blanks:
        empty = np.logical_and.reduce([n == 0 for n, _ in cells])
    if empty.any():
        numbers, line_start = numbers[~empty], line_start[~empty]
        raw = [(n[~empty], e[~empty]) for n, e in raw]
        cells = [(n[~empty], e[~empty]) for n, e in cells]
    return numbers, line_start, raw, cells, lines


def _kept_lines(block_classes: bytes, is_end, line_start, newlines, width: int):
    """The lines holding ``width`` cells (a mask), when every other line is blank (only
    delimiters, spaces and tabs); else None (a ragged row: the per-line reader words it)."""
    kept = np.diff(np.flatnonzero(is_end), prepend=-1) == width
    odd = np.flatnonzero(~kept)
    blank = bytes([_DELIMITER, _BLANK])
    if odd.size > _MAX_BAD_LINES or any(block_classes[line_start[i]:newlines[i]].strip(blank)
                                        for i in odd.tolist()):
        return None
    return kept


def _strip(a, s0, e0):
    """(lengths, ends) of the cells without the spaces and tabs at their ends (``str.strip`` of
    a plain cell), or None."""
    starts, ends = s0.copy(), e0.copy()
    for bound, step, look in ((starts, 1, 0), (ends, -1, -1)):
        todo = np.arange(bound.size)
        for _ in range(_MAX_STRIP + 1):
            ch = a[bound[todo] + look]
            todo = todo[(starts[todo] < ends[todo]) & ((ch == _SPACE) | (ch == _TAB))]
            if todo.size == 0:
                break
            bound[todo] += step
        else:
            return None
    return ends - starts, ends


def _word_at(a, positions, size: int = 8):
    """The ``size`` bytes from each position as one little-endian word (``a`` ends in spare bytes)."""
    return np.ndarray(shape=(a.size - size + 1,), dtype=f"<u{size}", buffer=a, strides=(1,))[positions]


class _Swar:
    """Constants to read the digits of a word at once (SWAR): one byte a digit, the first byte
    (lowest, little-endian) the most significant. Pairs of digits, then fours, then eights."""

    def __init__(self, size: int):
        self.size, t = size, np.dtype(f"<u{size}").type
        ones = (1 << 8 * size) - 1
        self.zeros = t(0x30303030_30303030 & ones)          # '0' in every byte
        # a byte below 0x80 plus 0x76 reaches 0x80 when it is 10 or more (no carry out)
        self.over_nine, self.top_bits = t(0x76767676_76767676 & ones), t(0x80808080_80808080 & ones)
        # the last L bytes of a word
        self.tail = np.array([ones ^ ((1 << 8 * (size - k)) - 1) for k in range(size + 1)],
                             dtype=f"<u{size}")
        steps = [(0x000F000F_000F000F, 8, 10), (0x000000FF_000000FF, 16, 100),
                 (0x00000000_0000FFFF, 32, 10000)][:size.bit_length() - 1]
        self.steps = [(t(lo & ones), t((lo << shift) & ones), t(shift), t(times))
                      for lo, shift, times in steps]


_SWAR = {4: _Swar(4), 8: _Swar(8)}


def _counts(a, lengths, ends, out) -> bool:
    """Read a count column into ``out`` (floats, NaN = blank); False unless every cell is
    blank or 1-8 digits.

    ``load.parse_count`` reads up to 9 ASCII digits as ``int(text)``, with no other check.
    The digits of a cell are read at once (``_Swar``).
    """
    if lengths.size == 0:
        return True
    longest = int(lengths.max())
    if longest > 8 or int(ends[0]) < 8:
        return False
    c = _SWAR[4 if longest <= 4 else 8]
    x = _word_at(a, ends - c.size, c.size)      # the cell right-aligned in the word's last bytes
    x ^= c.zeros                                # its digits' values (ASCII: every byte < 0x80)
    x &= c.tail[lengths]                        # and 0 before it
    if ((x + c.over_nine) & c.top_bits).any():
        return False                            # a byte outside '0'-'9'
    for lo, hi, shift, times in c.steps:
        x = (x & lo) * times + ((x & hi) >> shift)
    out[:] = x
    out[lengths == 0] = np.nan
    return True


def _texts(a, lengths, ends, *, keys, blanks):
    """(the cells' bytes, each followed by a line feed, or ``_Repeated``; no empty cell?;
    hashes of the keys or None) of a column.

    The hashes (``keys``: study_id) are 64-bit hashes of the lower-cased labels when all are
    ASCII without inner blanks and none is empty; different hashes are different keys."""
    starts = ends - lengths
    longest = int(lengths.max()) if lengths.size else 0
    hashes = None
    if longest >= _PAD - 8:
        joined = _joined(a, starts, lengths)
    else:
        words = _words(a, starts, lengths, longest + 1)     # room for a line feed
        chars = words.view(np.uint8)
        if keys and not (lengths == 0).any() and not (
                blanks and ((chars == _SPACE) | (chars == _TAB)).any()):
            hashes = _hashes(words)
        if lengths.size and (words == words[0]).all():
            joined = _Repeated(chars[0, :int(lengths[0])].tobytes(), lengths.size)
        else:
            joined = chars[chars != 0].tobytes()
    return joined, not (lengths == 0).any(), hashes


def _words(a, starts, lengths, width: int):
    """Each cell's bytes then a line feed, zero-padded to whole words (of 2, 4 or 8 bytes)."""
    size = 2 if width <= 2 else 4 if width <= 4 else 8
    keep, line_feed = _WORD_MASKS[size]
    words = np.empty((starts.size, -(-width // size)), dtype=f"<u{size}")
    if words.shape[1] == 1:                 # every cell shorter than a word
        words[:, 0] = _word_at(a, starts, size)
        words[:, 0] &= keep[lengths]
        words[:, 0] |= line_feed[lengths + 1]
        return words
    for i in range(words.shape[1]):
        rest = np.clip(lengths - size * i, -1, size)     # the cell's bytes in this word
        words[:, i] = _word_at(a, starts + size * i, size)
        words[:, i] &= keep[np.maximum(rest, 0)]
        words[:, i] |= line_feed[rest + 1]
    return words


# per word size: the first L bytes of a word, and a line feed in byte L
_WORD_MASKS = {size: (np.array([(1 << 8 * k) - 1 for k in range(size + 1)], dtype=f"<u{size}"),
                      np.array([0] + [_NL << 8 * k for k in range(size)] + [0], dtype=f"<u{size}"))
               for size in (2, 4, 8)}


def _joined(a, starts, lengths) -> bytes:
    """The cells' bytes, each followed by a line feed (no cell holds one)."""
    if lengths.size == 0:
        return b""
    stops = np.cumsum(lengths + 1)
    index = np.arange(int(stops[-1])) - np.repeat(stops - lengths - 1 - starts, lengths + 1)
    out = a[index]
    out[stops - 1] = _NL
    return out.tobytes()


def _hashes(words):
    """64-bit hashes of the lower-cased labels (``words``: rows of ``_words``); one word is
    its own hash."""
    chars = words.view(np.uint8)
    lower = (chars + 32 * ((chars >= 65) & (chars <= 90)).view(np.uint8)).view(words.dtype)
    hashes = lower[:, 0].astype(np.uint64)
    for k in range(1, lower.shape[1]):
        hashes *= np.uint64(0x9E3779B97F4A7C15)
        hashes ^= lower[:, k]
    return hashes


def _all_different(hashes) -> bool:
    """True when no two hashes are equal (sorts ``hashes`` in place)."""
    hashes.sort()
    return not bool((hashes[1:] == hashes[:-1]).any())


class Cells(Sequence):
    """The raw text of one column's cells, made on access (the per-row loader reads a few
    rows): the ``column``-th piece of the row's line, as the per-line reader splits it."""

    def __init__(self, data: bytes, line_starts, column: int, delimiter: str):
        self._data, self._starts, self._column = data, line_starts, column
        self._delimiter = delimiter

    def __len__(self) -> int:
        return int(self._starts.size)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        start = int(self._starts[i])
        line = self._data[start:self._data.index(b"\n", start)].decode("ascii")
        return line.split(self._delimiter)[self._column]


__all__ = ["Cells", "read_columns"]
