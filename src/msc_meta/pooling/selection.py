"""Which rows an analysis uses: the one selection path of every command.

Every command that analyses rows of an outcome table (``pool``, ``forest``,
``sensitivity``, ``regress``, ``bias``, ``sof``, ``bayes``, ``fragility``,
``export`` and the library's ``pool_many``) selects them here, so that all
of them see the same studies and leave out the same rows for the same
reasons:

1. :func:`msc_meta.data.select` keeps one outcome at one time point and
   unit (rows without counts included: they are listed, never pooled);
2. :func:`drop_overlaps` leaves out a row whose people a finer selected
   row already counts (``subgroup_of``), with the reason. The lineage is
   always that of the whole table: a subset of it (one analysis of
   ``export --all``, one group of ``pool_many``) would lose the links that
   run through rows of other outcomes.

:func:`analysis_keys` lists every analysis a table holds (outcome x time
point x unit), for ``export --all`` and for the tests that prove that every
command pools what ``pool`` pools.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Excluded:
    """A selected row left out of a pool, and why (shown under 'Left out')."""

    study_id: str
    row_number: int
    reason: str


@dataclass(frozen=True)
class Selection:
    """The rows of one analysis: ``rows`` to analyse, ``overlapping`` left out.

    ``overlapping`` holds ``(Excluded, row)`` pairs, so that ``--by`` can
    still place a left-out row in its subgroup.
    """

    outcome: str
    timepoint: float | str | None
    unit: str | None
    rows: tuple
    overlapping: tuple


def select_rows(table, outcome, timepoint=None, unit=None, *, lineage=None) -> Selection:
    """Select one analysis of ``table`` (see the module docstring).

    ``lineage`` (``OutcomeTable.ancestors()`` of the whole table) may be
    passed by callers that select many analyses of one table, so that it is
    computed once; it defaults to that of ``table``.
    """
    from msc_meta.data import select

    view = select_columns(table, outcome, timepoint, unit)
    if view is not None:
        return Selection(outcome=outcome, timepoint=timepoint, unit=unit, rows=view, overlapping=())
    rows = select(table, outcome, timepoint=timepoint, unit=unit)
    kept, dropped = drop_overlaps(table.ancestors() if lineage is None else lineage, rows)
    return Selection(outcome=outcome, timepoint=timepoint, unit=unit, rows=tuple(kept),
                     overlapping=tuple(dropped))


def select_columns(table, outcome, timepoint=None, unit=None):
    """The common case of :func:`select_rows` on the table's columns, or None.

    A ``RowsView`` when the selection is plain: a table loaded from a file
    (``table.data`` present) with no ``subgroup_of`` links, rows matching the
    outcome, one time point and one unit (as given or as found), and
    ``timepoint`` not ``"any"``. Anything else (including every case that is an
    error) returns None, and :func:`select_rows` takes the per-row path, which
    says what is wrong.
    """
    import math

    import numpy as np

    from msc_meta.data.columns import RowsView, column_keys
    from msc_meta.data.keys import key

    data = getattr(table, "_data", None)
    if data is None or timepoint == "any" or not isinstance(outcome, str):
        return None
    facts = _facts(data)
    if facts["linked"]:
        return None
    code = facts["outcome_codes"].get(key(outcome))
    if code is None:
        return None
    index = facts["rows_of"][code]          # the outcome's rows, in table order
    weeks = data.values["timepoint_weeks"]
    if timepoint == "blank":
        index = index[np.isnan(weeks[index])]
    elif timepoint is not None:
        if not isinstance(timepoint, (int, float)) or not math.isfinite(timepoint):
            return None
        with np.errstate(invalid="ignore"):
            index = index[np.abs(weeks[index] - timepoint) <= 1e-9]
    if index.size == 0:
        return None
    col = data.values["unit"]
    if index.size == len(col) and (index.size == 0 or index[-1] == index.size - 1):
        units = col                     # every row of the table, in order (index is increasing)
    else:
        units = [col[i] for i in index.tolist()]
    if unit is not None:
        wanted = key(unit)
        keep = np.fromiter((key(u) == wanted for u in units), dtype=bool, count=len(units))
        index, units = index[keep], [u for u, k in zip(units, keep) if k]
        if index.size == 0:
            return None
    distinct = _distinct(units)          # keys of the distinct texts: as of all texts
    if len(set(column_keys(distinct) if None not in distinct else distinct)) > 1:
        return None
    chosen = weeks[index]
    if not (np.isnan(chosen).all() or (chosen == chosen[0]).all()):
        return None
    return RowsView(data, index)


def _distinct(texts) -> list:
    """The distinct values of a list of texts (None = blank), in order of first appearance;
    one C pass when every cell holds the first one (a table of one outcome, one unit)."""
    if texts and texts.count(texts[0]) == len(texts):
        return [texts[0]]
    return list(dict.fromkeys(texts))


def _facts(data) -> dict:
    """Per table, computed once: outcome codes by key, and whether any subgroup_of is filled."""
    import numpy as np

    from msc_meta.data.keys import key

    facts = getattr(data, "_selection_facts", None)
    if facts is None:
        outcomes = data.values["outcome"]
        codes: dict = {}
        by_text = {text: codes.setdefault(key(text), len(codes)) for text in _distinct(outcomes)}
        if len(by_text) == 1:       # one outcome text: every row, in order (no code per row)
            rows_of = [np.arange(len(outcomes), dtype=np.int64)]
        else:
            coded = np.fromiter(map(by_text.__getitem__, outcomes), dtype=np.int64,
                                count=len(outcomes))
            order = np.argsort(coded, kind="stable")
            bounds = np.searchsorted(coded[order], np.arange(len(codes) + 1))
            rows_of = [order[bounds[c]:bounds[c + 1]] for c in range(len(codes))]
        facts = dict(outcome_codes=codes, linked=data.filled("subgroup_of"), rows_of=rows_of)
        data._selection_facts = facts
    return facts


def drop_overlaps(lineage, rows):
    """Leave out rows whose people a finer selected row already counts.

    ``lineage`` maps a study group to all its larger groups (``subgroup_of``,
    followed transitively). When a selection holds a group with counts and
    one of its ancestors, the ancestor's row is left out, so that no patient
    is pooled twice; the finer rows carry the design information (dose,
    cohort). Linear in the number of rows times the depth of the lineage.
    Returns the kept rows and a list of ``(Excluded, row)`` pairs.
    """
    finer_of: dict[str, list[str]] = {}
    for row in rows:
        if row.has_data:
            for ancestor in lineage.get(row.study_id, ()):
                finer_of.setdefault(ancestor, []).append(row.study_id)
    kept, dropped = [], []
    for row in rows:
        finer = [sid for sid in finer_of.get(row.study_id, ()) if sid != row.study_id]
        if row.has_data and finer:
            reason = (f"its people are already counted in {', '.join(finer)} (subgroup_of): "
                      "pooling both would count them twice")
            dropped.append((Excluded(row.study_id, row.row_number, reason), row))
        else:
            kept.append(row)
    return kept, dropped


def analysis_keys(table) -> list[tuple[str, float | str, str | None]]:
    """Every analysis ``table`` holds: ``(outcome, timepoint, unit)`` for :func:`select_rows`.

    A blank time point becomes ``"blank"`` (``--timepoint blank``), a blank
    unit ``None``. Sorted by outcome, then time point (blank last), then unit.
    """
    data = getattr(table, "_data", None)
    if data is not None:        # read from the columns: no Row objects
        weeks = [None if w != w else w for w in data.values["timepoint_weeks"].tolist()]
        keys = set(zip(data.values["outcome"], weeks, data.values["unit"]))
    else:
        keys = {(row.outcome, row.timepoint_weeks, row.unit) for row in table.rows}
    order = sorted(keys, key=lambda s: (s[0], s[1] is None, s[1] or 0.0, s[2] or ""))
    return [(outcome, "blank" if weeks is None else weeks, unit) for outcome, weeks, unit in order]


__all__ = ["Excluded", "Selection", "analysis_keys", "drop_overlaps", "select_rows"]
