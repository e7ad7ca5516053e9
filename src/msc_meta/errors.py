"""Errors that reach the user as one clear line, never as a traceback.

Exit codes follow the CLI contract: 2 for bad usage or bad input, 1 for a
computation or check that found a problem.
"""

from __future__ import annotations

import unicodedata

# Characters that are not control or format characters but still end a line
# (str.splitlines breaks on them) or print as nothing.
_ALSO_ESCAPED = frozenset("\u2028\u2029\u0085\u034f\u115f\u1160\u3164\uffa0")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_invisible(ch: str) -> bool:
    """True for a character that prints as nothing or moves the cursor (control,
    format, line separator, private use, unassigned, lone surrogate)."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn") \
        or ch in _ALSO_ESCAPED


def visible(text: object) -> str:
    """``text`` on one line with every character that prints as nothing, or moves the cursor, shown.

    Line breaks and tabs become ``\\n``, ``\\r``, ``\\t``; other control
    characters ``\\x1b``; invisible format characters (right-to-left mark,
    soft hyphen, zero-width space, byte-order mark...) ``\\u200f``; bytes
    that were not UTF-8 (kept as surrogates) ``\\xf4``. Everything else,
    accented letters included, is left as it is. Applied to every error
    message, so that a cell or a path from the data can never split the
    one-line error or send escape sequences to the terminal.
    """
    text = str(text)
    out = []
    for ch in text:
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif is_invisible(ch):
            code = ord(ch)
            if 0xDC80 <= code <= 0xDCFF:            # an undecodable byte (surrogateescape)
                out.append(f"\\x{code - 0xDC00:02x}")
            elif code <= 0xFF:
                out.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


class MscMetaError(Exception):
    """Base class: ``str(err)`` is the whole message shown to the user, always on one line."""

    exit_code = 2

    def __str__(self) -> str:
        return visible(super().__str__())


class InputError(MscMetaError):
    """Bad input data, located by file, row and column where known.

    ``row`` is the spreadsheet row number: the header is row 1, the first
    data row is row 2 (what Excel or LibreOffice show for that record).
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None,
                 row: int | None = None, column: str | None = None):
        self.message = message
        self.path = path
        self.row = row
        self.column = column
        super().__init__(self.format())

    def format(self) -> str:
        """``<file>[, row R][, column 'C']: <message>``, with data values passed through ``visible``."""
        where = []
        if self.path is not None:
            where.append(visible(self.path))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{visible(self.column)}'")
        prefix = ", ".join(where)
        message = visible(self.message)
        return f"{prefix}: {message}" if prefix else message


class UsageError(MscMetaError):
    """Options that cannot work together, or select nothing to analyse."""

    exit_code = 2


class ComputationError(MscMetaError):
    """A numerical method failed (e.g. an iterative estimator did not converge)."""

    exit_code = 1
