"""Reading a plain outcome table at array speed: the bytes, not one string per cell.

A *plain* file (ASCII, no double quote, no control character, no line over
``schema.MAX_CELL_CHARS``) is read by ``load._plain_records`` line by line:
records are its lines (LF, CRLF or CR), cells what lies between delimiters,
blank lines skipped. This module reads such a file the same way with numpy:
it finds line ends and delimiters in the bytes, reads the count columns
(``schema.COUNT_COLUMNS``) straight from their digits, and makes text only
for the columns that need it.

It answers only what it can prove: :func:`read_columns` returns ``None``
for anything unusual (not plain, a ragged row, a blank or repeated column
name, a count cell that is not 1-9 plain digits, no data rows ...), and the
caller then runs the per-line reader, so that every error (file, row,
column, what) comes from the one place that words it. What it returns is
the per-line reader's ``load.RawColumns`` plus ``typed``: columns already
typed exactly as ``columns.typed_columns`` types them (counts: ``parse_count``
reads 1-9 ASCII digits as ``int(text)``; text without a parser: the stripped
cell, ``None`` when blank), and ``unique_study_keys`` when every study_id is
a different key (``keys.key``; lower case, for ASCII without inner blanks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from msc_meta.data import schema

_NL, _SPACE, _TAB = 10, 32, 9
_PAD = 64                   # spare zero bytes after the data: a word read near the end stays inside
_TEXT, _BLANK, _CONTROL, _DELIMITER, _LINE_END = 0, 1, 2, 3, 4     # byte classes (_classes)
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
    classes = _classes(data, delimiter)
    if classes is None:
        return None
    head = _header(data, delimiter, required)
    if head is None:
        return None
    a = np.frombuffer(data + bytes(_PAD), dtype=np.uint8)     # spare bytes: see _word_at
    header_row, header, body_start = head
    body = _cells(data, a, classes, body_start, len(header), header_row)
    if body is None:
        return None
    numbers, raw, stripped = body
    typed, cells, unique, blank_free = {}, {}, False, set()
    for name, (s0, e0), (starts, ends) in zip(header, raw, stripped):
        if name in schema.COUNT_COLUMNS:
            values = _counts(a, starts, ends)
            if values is not None:
                typed[name] = values
                cells[name] = Cells(data, s0, e0)
                continue
        elif name in text_columns:
            typed[name], unique_keys = _texts(a, starts, ends, keys=name == "study_id")
            unique = unique or unique_keys
            if not (ends == starts).any():
                blank_free.add(name)
            cells[name] = Cells(data, s0, e0)
            continue
        cells[name] = _texts(a, s0, e0, blank="")[0]
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


def _classes(data: bytes, delimiter: str):
    """Each byte's class (blank: space or tab; separators, delimiter and line feed, last), or
    None when the file holds a control character (``load._CONTROL``: not plain)."""
    table = bytearray([_CONTROL] * 32 + [_TEXT] * 95 + [_CONTROL] + [_TEXT] * 128)
    table[_SPACE] = table[_TAB] = _BLANK
    table[ord(delimiter)] = _DELIMITER
    table[_NL] = _LINE_END
    classes = data.translate(table)
    if bytes([_CONTROL]) in classes:
        return None
    return classes


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


def _cells(data: bytes, a, classes: bytes, body_start: int, width: int, header_row: int):
    """(row numbers, raw bounds, stripped bounds) of the body, or None; bounds: one (starts,
    ends) pair of arrays per column.

    Every non-blank line must hold ``width - 1`` delimiters; blank lines (only
    delimiters, spaces and tabs) are skipped, their numbers counted.
    """
    byte_class = np.frombuffer(classes, dtype=np.uint8)
    pos = np.flatnonzero(byte_class >= _DELIMITER)
    pos = pos[np.searchsorted(pos, body_start):]       # the body's delimiters and line ends
    lines = int(np.count_nonzero(byte_class[body_start:] == _LINE_END))
    if lines == 0:
        return None
    # every line holds width - 1 delimiters when each width-th separator is a line end
    regular = pos.size == width * lines and bool((a[pos[width - 1::width]] == _NL).all())
    if regular:
        line_ends = None
        newlines = pos[width - 1::width]
    else:
        line_ends = np.flatnonzero(a[pos] == _NL)
        newlines = pos[line_ends]
    line_start = np.concatenate(([body_start], newlines[:-1] + 1))
    line_length = newlines - line_start
    if int(line_length.max()) > schema.MAX_CELL_CHARS:
        return None
    numbers = np.arange(header_row + 1, header_row + 1 + lines, dtype=np.int64)
    if regular:
        ends = pos.reshape(-1, width).T.copy()
    else:
        seps = np.diff(line_ends, prepend=-1)           # delimiters + 1 per line
        kept = seps == width
        odd = np.flatnonzero(~kept)
        blanks = bytes([_DELIMITER, _BLANK])
        if odd.size > _MAX_BAD_LINES or any(
                classes[line_start[i]:line_start[i] + line_length[i]].strip(blanks) for i in odd.tolist()):
            return None
        ends = pos[np.repeat(kept, seps)].reshape(-1, width).T.copy()
        line_start, line_length, numbers = line_start[kept], line_length[kept], numbers[kept]
    raw = [(line_start if j == 0 else ends[j - 1] + 1, ends[j]) for j in range(width)]
    blank_cells = bytes([_BLANK]) in classes
    stripped = [_strip(a, s0, e0) for s0, e0 in raw] if blank_cells else raw
    if any(s is None for s, _ in stripped):
        return None
    # lines of delimiters (and blanks) only; without blanks they are width - 1 long
    empty = line_length == width - 1
    if blank_cells:
        empty = np.ones(numbers.size, dtype=bool)
        for starts, stops in stripped:
            empty &= stops == starts
    if empty.any():
        numbers = numbers[~empty]
        raw = [(s0[~empty], e0[~empty]) for s0, e0 in raw]
        stripped = [(s0[~empty], e0[~empty]) for s0, e0 in stripped]
    if numbers.size == 0:
        return None
    return numbers, raw, stripped


def _strip(a, s0, e0):
    """Cell bounds without the spaces and tabs at their ends (``str.strip`` of a plain cell)."""
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
            return None, None
    return starts, ends


def _word_at(a, positions):
    """The 8 bytes from each position as one little-endian 64-bit word (``a`` ends in spare bytes)."""
    return np.ndarray(shape=(a.size - 7,), dtype="<u8", buffer=a, strides=(1,))[positions]


def _counts(a, starts, ends):
    """A count column as floats (NaN = blank), or None unless every cell is blank or 1-8 digits.

    ``load.parse_count`` reads up to 9 ASCII digits as ``int(text)``, with no other check.
    Eight digits are read at once (SWAR: pairs, then fours, then eight).
    """
    lengths = ends - starts
    if int(lengths.max()) > 8 or int(ends[0]) < 8:
        return None
    x = _word_at(a, ends - 8)              # the cell right-aligned in the word's last bytes
    x &= _TAIL[lengths]
    x |= _ZERO_FILL[lengths]                # and '0' before it
    if ((x & _HIGH_NIBBLES) != _ZEROS).any() or (((x + _SIXES) & _HIGH_NIBBLES) != _ZEROS).any():
        return None                         # a byte outside '0'-'9'
    x &= _LOW_NIBBLES
    x = (x & _U64(0x000F000F000F000F)) * _U64(10) + ((x & _U64(0x0F000F000F000F00)) >> _U64(8))
    x = (x & _U64(0x000000FF000000FF)) * _U64(100) + ((x & _U64(0x00FF000000FF0000)) >> _U64(16))
    x = (x & _U64(0x000000000000FFFF)) * _U64(10000) + (x >> _U64(32))
    out = x.astype(float)
    out[lengths == 0] = np.nan
    return out


_U64 = np.uint64
_ZEROS, _SIXES = _U64(0x3030303030303030), _U64(0x0606060606060606)
_HIGH_NIBBLES, _LOW_NIBBLES = _U64(0xF0F0F0F0F0F0F0F0), _U64(0x0F0F0F0F0F0F0F0F)
# the last L bytes of a word, and '0' in the other bytes
_TAIL = np.array([(2**64 - 1) ^ ((1 << 8 * (8 - k)) - 1) for k in range(9)], dtype=np.uint64)
_ZERO_FILL = ~_TAIL & _ZEROS


def _texts(a, starts, ends, *, blank=None, keys=False):
    """The cells as text (``blank`` for an empty one), and with ``keys``, whether they are all
    different keys (``_unique_keys``)."""
    lengths = ends - starts
    longest = int(lengths.max())
    unique = False
    if longest >= _PAD - 8:
        joined = _joined(a, starts, lengths)
    else:
        words = _words(a, starts, lengths, longest + 1)     # room for a line feed after each cell
        chars = words.view(np.uint8)
        if keys and longest > 0:
            unique = _unique_keys(chars, lengths)
        joined = chars[chars != 0].tobytes()
    out = joined.decode("ascii").split("\n")
    out.pop()
    if blank is None and (lengths == 0).any():
        out = [v or None for v in out]
    return out, unique


def _words(a, starts, lengths, width: int):
    """Each cell's bytes then a line feed, zero-padded to a whole number of 64-bit words."""
    words = np.empty((starts.size, -(-width // 8)), dtype="<u8")
    for i in range(words.shape[1]):
        rest = lengths - 8 * i if i else lengths.copy()     # the cell's bytes in this word
        np.clip(rest, -1, 8, out=rest)
        words[:, i] = _word_at(a, starts + 8 * i)
        words[:, i] &= _KEEP[np.maximum(rest, 0)]
        words[:, i] |= _LINE_FEED[rest + 1]
    return words


# the first L bytes of a word, and a line feed in byte L
_KEEP = np.array([(1 << 8 * k) - 1 for k in range(9)], dtype=np.uint64)
_LINE_FEED = np.array([0] + [_NL << 8 * k for k in range(8)] + [0], dtype=np.uint64)


def _joined(a, starts, lengths) -> bytes:
    """The cells' bytes, each followed by a line feed (no cell holds one)."""
    stops = np.cumsum(lengths + 1)
    index = np.arange(int(stops[-1])) - np.repeat(stops - lengths - 1 - starts, lengths + 1)
    out = a[index]
    out[stops - 1] = _NL
    return out.tobytes()


def _unique_keys(chars, lengths) -> bool:
    """True when the labels (``chars``: rows of ``_words``) are all different keys; False:
    undecided (``columns.check_unique_keys`` decides). ``keys.key`` of an ASCII label
    without inner blanks is its lower case; they are compared as 64-bit hashes of it
    (different hashes are different labels)."""
    if (lengths == 0).any() or ((chars == _SPACE) | (chars == _TAB)).any():
        return False
    lower = chars + 32 * ((chars >= 65) & (chars <= 90)).view(np.uint8)       # A-Z -> a-z
    words = lower.view(np.uint64).reshape(lengths.size, -1)
    hashes = words[:, 0].copy()
    for k in range(1, words.shape[1]):
        hashes *= np.uint64(0x9E3779B97F4A7C15)
        hashes ^= words[:, k]
    hashes.sort()
    return not bool((hashes[1:] == hashes[:-1]).any())


class Cells(Sequence):
    """The raw text of a column's cells, made on access (the per-row loader reads a few rows)."""

    def __init__(self, data: bytes, starts, ends):
        self._data, self._starts, self._ends = data, starts, ends

    def __len__(self) -> int:
        return int(self._starts.size)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._data[int(self._starts[i]):int(self._ends[i])].decode("ascii")


__all__ = ["Cells", "read_columns"]
