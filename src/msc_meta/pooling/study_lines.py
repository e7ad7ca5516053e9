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


_COLUMNS = ("events_t", "n_t", "events_c", "n_c", "yi", "vi", "estimate", "ci_low", "ci_high",
            "weight", "row_number", "cc_added")


def join_columns(parts) -> dict:
    """The columns of several StudyLines one after another (the ``--by`` JSON and the
    ``export --all`` table write many analyses' studies at once): ``study_id`` a list, the
    others arrays, NaN where a part lacks the column, None where every part lacks it.

    Lines cut from the same columns in order (``of_columns``) are read back as one slice.
    """
    whole = _one_source(parts)
    out = {"study_id": [sid for p in parts for sid in p.study_id] if whole is None
           else whole[0]["study_id"][whole[1]]}
    for name in _COLUMNS:
        if whole is not None and name != "weight":      # weights are each fit's own
            column = whole[0][name]
            out[name] = None if column is None else column[whole[1]]
            continue
        columns = [getattr(p, name) for p in parts]
        if all(c is None for c in columns):
            out[name] = None
        elif any(c is None for c in columns):
            out[name] = np.concatenate([np.full(len(p), np.nan) if c is None
                                        else np.asarray(c, dtype=float)
                                        for p, c in zip(parts, columns)])
        else:
            out[name] = np.concatenate(columns) if columns else np.zeros(0)
    return out


def _one_source(parts):
    """(columns, slice) when the lines are consecutive slices of the same columns, else None."""
    sources = [getattr(p, "source", None) for p in parts]
    if not sources or any(s is None or s[0] is not sources[0][0] for s in sources):
        return None
    if any(a[1].stop != b[1].start for a, b in zip(sources, sources[1:])):
        return None
    return sources[0][0], slice(sources[0][1].start, sources[-1][1].stop)


def _count(x):
    x = float(x)
    return None if x != x else int(x)


__all__ = ["StudyLines", "join_columns"]
