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

Computation: the first crossing along each path is found by galloping and
bisection (p rises monotonically towards the null and falls away from it),
not by one Fisher test per patient; arms of more than ``MAX_PATIENTS``
patients together are refused with a one-line message.

Walsh M, Srinathan SK, McAuley DF, et al. The statistical significance of
randomized controlled trial results is frequently fragile: a case for a
Fragility Index. J Clin Epidemiol 2014;67:622-628.
"""

from __future__ import annotations

from dataclasses import dataclass

from msc_meta.errors import UsageError
import numpy as np

from msc_meta.pooling.exact import _FISHER_REL_ERR, _log_choose, fisher_exact_pvalue


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


MAX_PATIENTS = 200_000     # both arms together; beyond, refused: a balanced reverse index
                           # then needs ~1000s of Fisher tests of ~10^4 terms (15 s at 100,000 per arm)
_WINDOW_FROM = 5_000       # smaller arms: R's full sum, exactly as before


@dataclass(frozen=True)
class Comparisons:
    """The two-arm comparisons of a selection, and what was not one."""

    comparisons: tuple        # rows (or combined multi-arm units) with counts in both arms
    no_counts: int            # two-arm rows whose source gives no counts
    single_arm: int           # rows with counts in one arm only
    other_families: tuple = ()   # outcome types other than counts among the selected rows


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
    found, no_counts, single, others = [], 0, 0, {}
    for key in keys:
        rows = select_rows(table, *key, lineage=lineage).rows
        for r in rows:
            if getattr(r, "family", "counts") not in ("counts", None):
                others[r.family] = None
        rows = [r for r in rows if getattr(r, "family", "counts") in ("counts", None)]
        no_counts += sum(1 for r in rows if not r.has_counts
                         and (r.pct_c is not None or r.events_c is not None or r.n_c is not None))
        single += sum(1 for r in rows if r.has_counts and not r.is_comparison)
        two_arm = [r for r in rows if r.has_counts and r.is_comparison]
        found.extend(apply_multiarm(two_arm, "RD", multiarm)[0])
    return Comparisons(tuple(found), no_counts, single, tuple(others))


def _matches(timepoint, wanted) -> bool:
    if wanted is None or wanted == "any":
        return True
    if wanted == "blank" or timepoint == "blank":
        return timepoint == wanted
    return abs(timepoint - wanted) <= 1e-9


def _p(a, n1, c, n2) -> float:
    """Two-sided Fisher p of a/n1 vs c/n2 (R fisher.test), windowed for large tables."""
    if min(n1, n2) <= _WINDOW_FROM:
        return fisher_exact_pvalue(a, n1 - a, c, n2 - c)
    return _p_windowed(a, n1, c, n2)


def _p_windowed(a, n1, c, n2):
    """:func:`fisher_exact_pvalue`, summing only the tables it does not round to 0.

    Its pmf ``exp(logp - max)`` is exactly 0 in double precision below
    ``-745``; the hypergeometric log-pmf is concave, so once both ends of a
    window around the mean (and ``a``) are below -750 every table outside
    it contributes 0 as well. Same terms, so the same p up to summation
    rounding, in O(sd) instead of O(n) work per test.
    """
    m, nn, k = a + c, (n1 - a) + (n2 - c), n1
    lo, hi = max(0, k - nn), min(k, m)
    N = m + nn
    mean = k * m / N
    sd = (k * m * nn * (N - k) / (N * N * max(N - 1, 1))) ** 0.5
    half = 40.0 * sd + 10.0
    while True:
        x0 = int(max(lo, min(a, mean - half)))
        x1 = int(min(hi, max(a, mean + half)))
        x = np.arange(x0, x1 + 1, dtype=float)
        logp = _log_choose(m, x) + _log_choose(nn, k - x)
        top = logp.max()
        if (x0 == lo or logp[0] - top < -750) and (x1 == hi or logp[-1] - top < -750):
            break
        half *= 2.0
    dens = np.exp(logp - top)
    dens /= dens.sum()
    return float(min(1.0, dens[dens <= dens[a - x0] * _FISHER_REL_ERR].sum()))


def _first(pred, lo, hi):
    """Smallest m in [lo, hi] with ``pred(m)``, for a predicate false then true; None if none.

    Galloping (lo+1, lo+2, lo+4, ...) then bisection: O(log(hi - lo)) calls of
    ``pred`` instead of the O(hi - lo) of a scan.
    """
    if lo > hi:
        return None
    if pred(lo):
        return lo
    bad, step = lo, 1
    while True:
        probe = min(bad + step, hi)
        if pred(probe):
            break
        if probe == hi:
            return None
        bad, step = probe, 2 * step
    good = probe
    while good - bad > 1:
        mid = (bad + good) // 2
        bad, good = (bad, mid) if pred(mid) else (mid, good)
    return good


def _check_size(n1, n2):
    if n1 + n2 > MAX_PATIENTS:
        raise UsageError(f"fragility index: {n1 + n2:,} patients are more than the {MAX_PATIENTS:,} "
                         "this command computes (each Fisher test sums over every possible table)")


def _forward(a, n1, c, n2, alpha):
    """Walsh's index: events added to the lower-proportion arm until p >= alpha.

    Along that path p rises until the proportions meet (``eq`` steps) and
    falls after, so "p >= alpha" is false-then-true on [1, eq] and the first
    crossing is found by bisection; past ``eq`` only step eq+1 can be the
    first one. Returns (m or None, arm).
    """
    low_is_t = a * n2 < c * n1 or (a * n2 == c * n1 and a <= c)
    if low_is_t:
        room, eq = n1 - a, -(-(c * n1 - a * n2) // n2)      # ceil: first m with (a+m)/n1 >= c/n2
        pred = lambda m: _p(a + m, n1, c, n2) >= alpha  # noqa: E731
    else:
        room, eq = n2 - c, -(-(a * n2 - c * n1) // n1)
        pred = lambda m: _p(a, n1, c + m, n2) >= alpha  # noqa: E731
    hi = min(room, max(eq, 1))
    m = _first(pred, 1, hi)
    if m is None and hi < room and pred(hi + 1):
        m = hi + 1
    return m, ("treatment" if low_is_t else "control")


def _reverse_direction(a, n1, c, n2, dt, dc, alpha):
    """Fewest changes j (treatment, sign dt) + l (control, sign dc) giving p < alpha.

    Moving the arms further apart only lowers p, so for each j the least l
    that works, L(j), is a first crossing (bisection) and L falls as j rises:
    one staircase walk over j (stopping once j alone reaches the best total)
    visits O(best + L) tables instead of the O(best²) splits of a scan.
    Returns (m, j) of the smallest m, smallest j on ties; None if none.
    """
    jmax, lmax = (n1 - a if dt > 0 else a), (n2 - c if dc > 0 else c)
    sig = lambda j, l: _p(a + dt * j, n1, c + dc * l, n2) < alpha  # noqa: E731
    j = _first(lambda j: sig(j, lmax), 0, jmax)        # fewer treatment changes never suffice
    if j is None:
        return None
    l = _first(lambda l: sig(j, l), 0, lmax)
    best = (j + l, j)
    while j < jmax and j + 1 < best[0]:
        j += 1
        while l > 0 and sig(j, l - 1):
            l -= 1
        if j + l < best[0]:
            best = (j + l, j)
    return best


def fragility_index(events_t: int, n_t: int, events_c: int, n_c: int, alpha: float = 0.05) -> Fragility:
    """Fragility index (Walsh 2014), or the reverse index when not significant.

    See the module docstring for the exact convention. The first crossings
    are found by bisection (see :func:`_forward`, :func:`_reverse_direction`)
    and equal the one-patient-at-a-time scan; tests/test_fragility.py checks
    that on every table with arms up to 12 patients and on random tables.
    """
    a, n1, c, n2 = (int(v) for v in (events_t, n_t, events_c, n_c))
    if n1 < 1 or n2 < 1 or not (0 <= a <= n1) or not (0 <= c <= n2):
        raise UsageError(f"fragility index needs 0 <= events <= n in both arms, got {a}/{n1} vs {c}/{n2}")
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must be between 0 and 1, got {alpha}")
    _check_size(n1, n2)
    p0 = _p(a, n1, c, n2)
    common = dict(events_t=a, n_t=n1, events_c=c, n_c=n2, fisher_pval=p0, alpha=alpha)
    if p0 < alpha:
        m, arm = _forward(a, n1, c, n2, alpha)
        return Fragility(significant=True, fragility_index=m, changed_arm=arm if m else None, **common)
    # Reverse: move the arms apart. d = (sign for treatment, sign for control).
    if a * n2 > c * n1:
        directions = [(1, -1)]
    elif a * n2 < c * n1:
        directions = [(-1, 1)]
    else:
        directions = [(1, -1), (-1, 1)]
    found = [r for r in (_reverse_direction(a, n1, c, n2, dt, dc, alpha) for dt, dc in directions) if r]
    if not found:
        return Fragility(significant=False, fragility_index=None, changed_arm=None, **common)
    m, j = min(found, key=lambda r: r[0])     # min keeps the first direction on ties, as the scan
    arm = "both" if 0 < j < m else ("treatment" if j == m else "control")
    return Fragility(significant=False, fragility_index=m, changed_arm=arm, **common)


def _fragility_index_scan(a, n1, c, n2, alpha=0.05):
    """The one-patient-at-a-time definition, O(n²) Fisher tests: the reference for tests."""
    p0 = _p(a, n1, c, n2)
    if p0 < alpha:
        low_is_t = a * n2 < c * n1 or (a * n2 == c * n1 and a <= c)
        for m in range(1, ((n1 - a) if low_is_t else (n2 - c)) + 1):
            if (_p(a + m, n1, c, n2) if low_is_t else _p(a, n1, c + m, n2)) >= alpha:
                return m, "treatment" if low_is_t else "control"
        return None, None
    directions = ([(1, -1)] if a * n2 > c * n1 else [(-1, 1)] if a * n2 < c * n1
                  else [(1, -1), (-1, 1)])
    for m in range(1, n1 + n2 + 1):
        for dt, dc in directions:
            for j in range(m + 1):
                aa, cc = a + dt * j, c + dc * (m - j)
                if 0 <= aa <= n1 and 0 <= cc <= n2 and _p(aa, n1, cc, n2) < alpha:
                    return m, "both" if 0 < j < m else ("treatment" if j == m else "control")
    return None, None
