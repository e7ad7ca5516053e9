"""``--by``: one pool per value of a column, and the test for subgroup differences.

The test is meta's ``update(m, subgroup=)`` / metafor's approach of fitting
one model per subgroup and then an FE model to the subgroup estimates:
Q_between = sum_g w_g (theta_g - theta_w)^2 with w_g = 1/se_g^2, on G - 1
degrees of freedom (Borenstein et al. 2009, ch. 19). Each subgroup is pooled
as ``analysis.run_pool`` pools a selection, all of them at once
(``analysis.pool_groups``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from msc_meta import _dist as special
from msc_meta.data.columns import RowsView
from msc_meta.errors import UsageError
from msc_meta.pooling.analysis import (Analysis, listed_rows, pool_groups, options_of,
                                       resolve_options)
from msc_meta.pooling.multiarm import apply_multiarm, source_ids
from msc_meta.pooling.notes import nothing_to_pool_message
from msc_meta.pooling.options import PoolOptions
from msc_meta.pooling.selection import select_rows

BLANK_GROUP = "(blank)"


@dataclass(frozen=True)
class SubgroupTest:
    """Test for subgroup differences (Q between subgroups, chi-square)."""

    q_between: float
    df: int
    pval: float
    by: str
    groups: tuple[str, ...] = field(default_factory=tuple)  # the subgroups it used
    test: str = "chi2"




def run_pool_by(table, by, *, outcome, timepoint=None, unit=None, options: PoolOptions | None = None,
                **values) -> tuple[list[Analysis], SubgroupTest | None]:
    """One :class:`Analysis` per value of column ``by``, and the subgroup test.

    Blank values form their own group, ``(blank)``. A subgroup with nothing
    to pool is kept (with its exclusions) but left out of the test. The test
    is ``None`` when fewer than two subgroups have a pooled estimate.

    Shared control arms are found over the whole selection, so that the
    control also counts once in the subgroup test: under ``combine`` the
    members in one subgroup are combined, and a control shared by G
    subgroups is divided evenly among them; under ``split`` it is divided
    among all its comparisons, wherever they fall.
    """
    options = options_of(options, values)
    from msc_meta.progress import many_objects

    with many_objects():
        return _pool_by(table, by, outcome, timepoint, unit, options)


def _pool_by(table, by, outcome, timepoint, unit, options):
    chosen = select_rows(table, outcome, timepoint, unit)
    rows, overlapping = listed_rows(chosen.rows), list(chosen.overlapping)
    options = resolve_options(rows, options)

    # A column the file lacks would put every row in "(blank)": refuse it.
    table.require_column(by)
    units, multiarm_notes = apply_multiarm(rows, options.measure, options.multiarm,
                                           group_of=lambda r: _group_label(r.value(by)))
    groups = _by_groups(units, by)
    for _, row in overlapping:
        # a subgroup may hold only left-out rows: it is still listed
        groups.setdefault(_group_label(row.value(by)), [])
    # Sort labels so that the output does not depend on row order; blanks last.
    labels = sorted(groups, key=lambda g: (g == BLANK_GROUP, _natural_key(g)))

    left_out: dict[str, list] = {}
    for excluded, row in overlapping:
        left_out.setdefault(_group_label(row.value(by)), []).append((excluded, row))
    specs = []
    for label in labels:
        notes = []
        if multiarm_notes:
            ids = {m for u in groups[label] for m in source_ids(u)}
            notes = [text for text, who in multiarm_notes if who & ids]
        specs.append(dict(rows=groups[label], outcome=outcome, timepoint=timepoint, unit=unit,
                          group=label, by=by, multiarm_notes=notes,
                          pre_excluded=left_out.get(label, [])))
    analyses = pool_groups(specs, options)
    if all(a.result is None for a in analyses):
        excluded = tuple(e for a in analyses for e in a.excluded)
        raise UsageError(nothing_to_pool_message(outcome, options.measure, excluded))
    return analyses, subgroup_test(analyses, by)


def _by_groups(units, by) -> dict:
    """Subgroup label -> its rows, in order of first appearance (a view's rows grouped by column)."""
    groups: dict[str, list] = {}
    if isinstance(units, RowsView):
        values = units.column(by)
        if isinstance(values, np.ndarray):
            values = [None if v != v else v for v in values.tolist()]
        label_of = {v: _group_label(_typed(by, v)) for v in dict.fromkeys(values)}
        code_of: dict[str, int] = {}           # labels in order of first appearance
        for label in label_of.values():
            code_of.setdefault(label, len(code_of))
        value_code = {v: code_of[label] for v, label in label_of.items()}
        codes = np.fromiter(map(value_code.__getitem__, values), dtype=np.int64, count=len(values))
        order = np.argsort(codes, kind="stable")            # rows of a label in table order
        bounds = np.searchsorted(codes[order], np.arange(len(code_of) + 1)).tolist()
        return {label: units.take(order[bounds[c]:bounds[c + 1]]) for label, c in code_of.items()}
    for unit_row in units:
        groups.setdefault(_group_label(unit_row.value(by)), []).append(unit_row)
    return groups


def _typed(column, value):
    """A column's cell as ``Row.value`` gives it (extra columns: stripped text, None if blank)."""
    from msc_meta.data import schema

    if column in schema.KNOWN_COLUMNS or value is None:
        return value
    return value.strip() or None


def subgroup_test(analyses, by) -> SubgroupTest | None:
    """Q_between over the subgroups with a pooled estimate (chi-square, G-1 df).

    As meta's test for subgroup differences and metafor's recipe
    ``rma(theta_g, sei=se_g, method="FE")`` -> ``QE``: the subgroup
    estimates are weighted by 1/se_g^2, with se_g the standard error of each
    subgroup's own fit (random-effects when the method is random).
    """
    pooled = [a for a in analyses if a.result is not None
              and math.isfinite(a.result.theta) and math.isfinite(a.result.se)
              and a.result.se > 0]
    if len(pooled) < 2:
        return None
    theta = np.array([a.result.theta for a in pooled])
    w = 1.0 / np.array([a.result.se for a in pooled]) ** 2
    theta_w = np.sum(w * theta) / np.sum(w)
    q = float(np.sum(w * (theta - theta_w) ** 2))
    df = len(pooled) - 1
    return SubgroupTest(q_between=q, df=df, pval=float(special.chdtrc(df, q)), by=by,
                        groups=tuple(a.group for a in pooled))




def _group_label(value) -> str:
    if value is None:
        return BLANK_GROUP
    if isinstance(value, float):
        if math.isnan(value):
            return BLANK_GROUP
        return f"{value:g}"
    text = str(value).strip()
    return text if text else BLANK_GROUP


def _natural_key(label: str):
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label.lower())


__all__ = ["BLANK_GROUP", "SubgroupTest", "run_pool_by", "subgroup_test"]
