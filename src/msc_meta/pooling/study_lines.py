"""The pooled studies of one analysis as columns (``Analysis.studies`` of a columnar pool).

A sequence of ``analysis.StudyLine`` (built on access, for the forest table,
plots and reports) that also hands its columns to the ``--json`` writer, so
that a pool of a million studies never makes a million objects.
"""

from __future__ import annotations

import numpy as np


class StudyLines:
    """Per-study lines of a pool of event counts, held as arrays (see the module docstring)."""

    def __init__(self, kept, two_arm, yi, vi, estimate, low, high, weights, cc_added):
        n = len(kept)
        self.kept = kept                       # data.columns.RowsView of the pooled rows
        self.two_arm = bool(two_arm)
        self.study_id = kept.column("study_id")
        self.row_number = kept.row_numbers
        self.events_t = kept.column("events_t")
        self.n_t = kept.column("n_t")
        self.events_c = kept.column("events_c") if two_arm else None
        self.n_c = kept.column("n_c") if two_arm else None
        self.yi = np.asarray(yi, dtype=float)
        self.vi = np.asarray(vi, dtype=float)
        self.estimate = np.asarray(estimate, dtype=float)
        self.ci_low = np.asarray(low, dtype=float)
        self.ci_high = np.asarray(high, dtype=float)
        self.weight = None if weights is None or len(weights) == 0 \
            else np.asarray(weights, dtype=float)
        self.cc_added = np.asarray(cc_added, dtype=bool).reshape(n)

    @classmethod
    def of_columns(cls, kept, columns, part, weights) -> "StudyLines":
        """The lines of ``kept`` from columns of many groups' studies (``part`` of each, a
        slice), as ``StudyLines(kept, ...)`` makes them: ``pooling.batch.many_analyses``."""
        self = cls.__new__(cls)
        self.source = (columns, part)      # json_out joins the lines of many groups from it
        self.kept = kept
        self.two_arm = bool(columns["two_arm"])
        for name in ("study_id", "row_number", "events_t", "n_t", "events_c", "n_c", "yi", "vi",
                     "estimate", "ci_low", "ci_high", "cc_added"):
            column = columns[name]
            setattr(self, name, None if column is None else column[part])
        self.weight = None if weights is None or len(weights) == 0 \
            else np.asarray(weights, dtype=float)
        return self

    def __len__(self) -> int:
        return len(self.study_id)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        from msc_meta.pooling.analysis import StudyLine

        i = range(len(self))[i]
        count = _count
        return StudyLine(
            study_id=self.study_id[i], row_number=int(self.row_number[i]),
            events_t=count(self.events_t[i]), n_t=count(self.n_t[i]),
            events_c=count(self.events_c[i]) if self.two_arm else None,
            n_c=count(self.n_c[i]) if self.two_arm else None,
            yi=float(self.yi[i]), vi=float(self.vi[i]), estimate=float(self.estimate[i]),
            ci_low=float(self.ci_low[i]), ci_high=float(self.ci_high[i]),
            weight=None if self.weight is None else float(self.weight[i]),
            cc_added=bool(self.cc_added[i]))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __eq__(self, other):
        return tuple(self) == tuple(other)

    def __hash__(self):
        return hash(tuple(self))


def _count(x):
    x = float(x)
    return None if x != x else int(x)


__all__ = ["StudyLines"]
