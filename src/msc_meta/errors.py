"""Errors that reach the user as one clear line, never as a traceback.

Exit codes follow the CLI contract: 2 for bad usage or bad input, 1 for a
computation or check that found a problem.
"""

from __future__ import annotations


class MscMetaError(Exception):
    """Base class: ``str(err)`` is the whole message shown to the user."""

    exit_code = 2


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
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class UsageError(MscMetaError):
    """Options that cannot work together, or select nothing to analyse."""

    exit_code = 2


class ComputationError(MscMetaError):
    """A numerical method failed (e.g. an iterative estimator did not converge)."""

    exit_code = 1
