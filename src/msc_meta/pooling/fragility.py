"""Fragility index of a two-arm result (Walsh et al. 2014), and its reverse.

The fragility index asks how many patients' outcomes would have to be
different for a "significant" two-arm comparison to lose its significance;
with a handful of patients per arm it is often 1 or 2, which a p-value
alone hides.

Convention (the same one ``tests/r/fixtures_glmm.R`` computes in R with
``fisher.test()``):

* the test is Fisher's exact test, two-sided, at ``alpha`` = 0.05;
* **significant** (p < alpha): in the arm with the lower event proportion
  (Walsh: "the group with the smaller number of events"; the two agree when
  the arms are the same size, and the proportion is what moves the result
  toward the null when they are not), turn non-events into events one
  patient at a time, arm sizes fixed, until p >= alpha. The index is the
  number of patients changed. Equal proportions cannot be significant;
  equal counts with unequal proportions use the proportion. If the arm runs
  out of non-events first, the index is undefined (None);
* **not significant** (p >= alpha): the reverse fragility index is the
  fewest status changes that make p < alpha while moving the arms apart:
  non-event -> event in the arm with the higher proportion and/or
  event -> non-event in the other, over every split of the changes
  (e.g. 2 changes may be 2 + 0, 1 + 1 or 0 + 2). When the proportions are
  equal both directions are tried. None if no such change exists.

Walsh M, Srinathan SK, McAuley DF, et al. The statistical significance of
randomized controlled trial results is frequently fragile: a case for a
Fragility Index. J Clin Epidemiol 2014;67:622-628.
"""

from __future__ import annotations

from dataclasses import dataclass

from msc_meta.errors import UsageError
from msc_meta.pooling.exact import fisher_exact_pvalue


@dataclass(frozen=True)
class Fragility:
    """Fisher p and the (reverse) fragility index of one 2x2 comparison."""

    events_t: int
    n_t: int
    events_c: int
    n_c: int
    fisher_pval: float
    significant: bool
    fragility_index: int | None     # reverse index when not significant; None if undefined
    changed_arm: str | None         # "treatment", "control", "both" or None
    alpha: float = 0.05

    def to_dict(self) -> dict:
        return {
            "events_t": self.events_t, "n_t": self.n_t, "events_c": self.events_c, "n_c": self.n_c,
            "fisher_pval": self.fisher_pval, "significant": self.significant,
            "fragility_index": self.fragility_index, "changed_arm": self.changed_arm,
        }


@dataclass(frozen=True)
class Comparisons:
    """The two-arm comparisons of a selection, and what was not one."""

    comparisons: tuple        # rows (or combined multi-arm units) with counts in both arms
    no_counts: int            # two-arm rows whose source gives no counts
    single_arm: int           # rows with counts in one arm only


def comparisons_of(table, *, outcome=None, timepoint=None, unit=None,
                   multiarm="combine") -> Comparisons:
    """The comparisons ``pool --measure RD`` would pool, through ``pool``'s selection path.

    With ``outcome=None`` every analysis of the table (``analysis_keys``)
    whose time point and unit match the options. Overlapping groups are left
    out and shared control arms combined (or kept) exactly as ``pool`` does,
    so that a combined comparison is tested once, as it is pooled.
    """
    from msc_meta.pooling.multiarm import apply_multiarm
    from msc_meta.pooling.selection import analysis_keys, select_rows

    lineage = table.ancestors()
    if outcome is None:
        keys = [(o, t, u) for o, t, u in analysis_keys(table)
                if _matches(t, timepoint) and (unit is None or u == unit)]
    else:
        keys = [(outcome, timepoint, unit)]
    found, no_counts, single = [], 0, 0
    for key in keys:
        rows = select_rows(table, *key, lineage=lineage).rows
        no_counts += sum(1 for r in rows if not r.has_counts
                         and (r.pct_c is not None or r.events_c is not None or r.n_c is not None))
        single += sum(1 for r in rows if r.has_counts and not r.is_comparison)
        two_arm = [r for r in rows if r.has_counts and r.is_comparison]
        found.extend(apply_multiarm(two_arm, "RD", multiarm)[0])
    return Comparisons(tuple(found), no_counts, single)


def _matches(timepoint, wanted) -> bool:
    if wanted is None or wanted == "any":
        return True
    if wanted == "blank" or timepoint == "blank":
        return timepoint == wanted
    return abs(timepoint - wanted) <= 1e-9


def _p(a, n1, c, n2) -> float:
    return fisher_exact_pvalue(a, n1 - a, c, n2 - c)


def fragility_index(events_t: int, n_t: int, events_c: int, n_c: int, alpha: float = 0.05) -> Fragility:
    """Fragility index (Walsh 2014), or the reverse index when not significant.

    See the module docstring for the exact convention.
    """
    a, n1, c, n2 = (int(v) for v in (events_t, n_t, events_c, n_c))
    if n1 < 1 or n2 < 1 or not (0 <= a <= n1) or not (0 <= c <= n2):
        raise UsageError(f"fragility index needs 0 <= events <= n in both arms, got {a}/{n1} vs {c}/{n2}")
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must be between 0 and 1, got {alpha}")
    p0 = _p(a, n1, c, n2)
    common = dict(events_t=a, n_t=n1, events_c=c, n_c=n2, fisher_pval=p0, alpha=alpha)

    if p0 < alpha:
        # Cross-multiplied comparison of a/n1 and c/n2 keeps it exact.
        low_is_t = a * n2 < c * n1 or (a * n2 == c * n1 and a <= c)
        room = (n1 - a) if low_is_t else (n2 - c)
        for m in range(1, room + 1):
            p = _p(a + m, n1, c, n2) if low_is_t else _p(a, n1, c + m, n2)
            if p >= alpha:
                return Fragility(significant=True, fragility_index=m,
                                 changed_arm="treatment" if low_is_t else "control", **common)
        return Fragility(significant=True, fragility_index=None, changed_arm=None, **common)

    # Reverse: move the arms apart. d = (sign for treatment, sign for control).
    if a * n2 > c * n1:
        directions = [(1, -1)]
    elif a * n2 < c * n1:
        directions = [(-1, 1)]
    else:
        directions = [(1, -1), (-1, 1)]
    for m in range(1, n1 + n2 + 1):
        for dt, dc in directions:
            for j in range(m + 1):
                aa = a + dt * j
                cc = c + dc * (m - j)
                if not (0 <= aa <= n1 and 0 <= cc <= n2):
                    continue
                if _p(aa, n1, cc, n2) < alpha:
                    arm = "both" if 0 < j < m else ("treatment" if j == m else "control")
                    return Fragility(significant=False, fragility_index=m, changed_arm=arm, **common)
    return Fragility(significant=False, fragility_index=None, changed_arm=None, **common)
