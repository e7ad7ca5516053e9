"""Per-study effect sizes and their back-transformations, as metafor ``escalc()``.

:func:`compute` is the entry point for every input family (counts, means,
paired means, incidence rates, correlations, generic effects): it reads the
measure's input columns (``registry.measure(m).inputs``), applies the rules
its family shares (missing and invalid inputs, the continuity correction,
drop00, an assumed r) and calls the measure's function. :func:`escalc` is
the counts-only form the pooling code has always called. The formulas of
the other families are in ``docs/methods.md`` and in each function below.

Single-arm measures (events ``x`` of ``n``): ``PR`` raw proportion, ``PLO``
logit, ``PFT`` Freeman-Tukey double arcsine, ``PAS`` arcsine square root.
Two-arm measures (``a`` of ``n1`` treated vs ``c`` of ``n2`` controls): ``RR``
log risk ratio, ``OR`` log odds ratio, ``RD`` risk difference. Every formula
is metafor 3.8's ``escalc()`` with ``vtype="LS"`` (Viechtbauer 2010, J Stat
Softw 36(3); the escalc help page lists the same formulas).

Zero cells: a continuity correction ``cc`` is added to every cell of a study
that has a zero cell (``escalc(add=cc, to="only0")``) for PR, PLO, RR, OR and
RD; PFT and PAS are defined at 0 and n and get none (escalc's own default,
``add=0`` for them). Studies with zero events in both arms (or events in all
participants of both arms) are unusable for RR and OR: they are flagged
``keep=False`` with a reason, as ``escalc(drop00=TRUE)`` does; RD keeps them.

This module imports numpy and msc_meta._dist only (it is on the ``pool`` path).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
from msc_meta._dist import expit, gammaln, ndtri

from msc_meta import registry
from msc_meta.errors import InputError, UsageError


@dataclass(frozen=True)
class EffectSizes:
    """Per-study effect sizes of one measure, as ``escalc()`` returns them.

    ``yi``/``vi`` are on the analysis scale (log RR, logit, ...), NaN where the
    study gives no usable value; ``keep`` says whether a study may enter a pool
    of this measure and ``reasons`` why not (None when kept). ``ni`` is the
    uncorrected number of participants (``n_t``, or ``n_t + n_c``), which the
    PFT back-transformation needs (escalc's ``attr(yi, "ni")``): total n for
    means and correlations, person-time (``time_t + time_c``) for rates, as
    metafor stores it, and NaN for generic effects without ``n_t``.

    ``scale`` is the scale of a measure that has several (GEN: "identity" or
    "log"), None otherwise; :func:`study_ci` and :func:`study_estimate` read
    it, and :func:`transform_back` takes it as ``scale=``. ``notes`` holds one
    entry per study (None or a sentence) for what the study's value assumed,
    e.g. an r taken from ``--r`` or a CI converted to a standard error.
    """

    measure: str
    yi: np.ndarray
    vi: np.ndarray
    ni: np.ndarray
    keep: np.ndarray
    reasons: tuple
    cc_added: np.ndarray
    scale: str | None = None
    notes: tuple = ()
    # per study, the (column, value, kind) the effect size read after conversions (the pool
    # path fills it: pooling.analysis; () when not filled)
    used: tuple = ()

    @property
    def k(self) -> int:
        return int(self.yi.shape[0])

    def take(self, index) -> "EffectSizes":
        """The studies at ``index`` (an integer array or a slice), in that order.

        escalc works study by study, so the effect sizes of a subset are a
        subset of the effect sizes: many groups are computed in one call and
        then split.
        """
        if isinstance(index, slice):        # a view: O(length of the slice), not O(k)
            def pick(seq):
                return tuple(seq[index]) if seq else seq
        else:
            index = np.asarray(index, dtype=int)

            def pick(seq):
                return tuple(seq[i] for i in index) if seq else seq
        # dataclasses.replace without its __init__ call (no checks to run): 10^4 groups of
        # --by / export --all each take their part of one escalc
        part = object.__new__(type(self))
        part.__dict__.update(self.__dict__, yi=self.yi[index], vi=self.vi[index],
                             ni=self.ni[index], keep=self.keep[index], reasons=pick(self.reasons),
                             cc_added=self.cc_added[index], notes=pick(self.notes),
                             used=pick(self.used))
        return part


# ---------------------------------------------------------------------------
# back-transformations (analysis scale -> natural scale)
# ---------------------------------------------------------------------------

def _pft(p, n):
    """metafor ``transf.pft(p, n)``: Freeman-Tukey transform of a proportion p of n."""
    x = p * n
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1.0))) + np.arcsin(np.sqrt((x + 1.0) / (n + 1.0))))


def _ipft(x, n):
    """Inverse Freeman-Tukey double arcsine (Miller 1978, Am Stat 32:138).

    Exactly metafor ``transf.ipft(xi, ni)``: values with no real inverse are
    NaN, and values beyond the transform of 0/n or n/n are clamped to 0 or 1.
    ``n`` broadcasts against ``x`` (one n, or one per value).
    """
    x = np.asarray(x, dtype=float)
    n = np.broadcast_to(np.asarray(n, dtype=float), x.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = np.sin(2.0 * x)
        inner = 1.0 - (s + (s - 1.0 / s) / n) ** 2
        z = 0.5 * (1.0 - np.sign(np.cos(2.0 * x)) * np.sqrt(inner))
        z = np.where(np.isnan(z), np.nan, z)
        # comparisons with NaN are False, so NaN stays NaN as in R
        z = np.where(x > _pft(1.0, n), 1.0, z)
        z = np.where(x < _pft(0.0, n), 0.0, z)
    return z


def harmonic_mean(ni) -> float:
    """Harmonic mean of the sample sizes, ignoring NaN (metafor ``transf.ipft.hm``)."""
    ni = np.asarray(ni, dtype=float).ravel()
    ni = ni[~np.isnan(ni)]
    if ni.size == 0:
        return float("nan")
    return float(1.0 / np.mean(1.0 / ni))


def transform_back(measure, x, ni=None, *, scale=None) -> np.ndarray:
    """Back-transform values on the analysis scale to the natural scale.

    PR, RD: identity. PLO: inverse logit (metafor ``transf.ilogit``).
    PAS: ``sin(x)^2`` clamped to [0, 1] below 0 and above pi/2
    (``transf.iarcsin``). RR, OR: ``exp``. PFT: inverse Freeman-Tukey double
    arcsine with the harmonic mean of ``ni`` (Miller 1978; metafor
    ``transf.ipft.hm(x, targs=list(ni=ni))``, including its clamping to 0 and
    1 beyond the transforms of 0/n and n/n). Other families: identity for
    MD, SMD, SMDH, MC, SMCC, SMCR, MN, IRD, IRSD, IR, COR; ``exp`` for ROM,
    MNLN, IRR, IRLN; ``tanh`` for ZCOR (``transf.ztor``); GEN by ``scale``
    (``exp`` on "log", identity on "identity", the default). Vectorised; NaN
    stays NaN.
    """
    back = _spec(measure, scale).back
    x = np.asarray(x, dtype=float)
    if callable(back):
        return np.asarray(back(x), dtype=float)
    if back == "ipft":
        if ni is None:
            raise UsageError("PFT back-transformation needs the sample sizes (ni) for their harmonic mean")
        return _ipft(x, harmonic_mean(ni))
    return _BACK[back](x)


def _exp(x):
    with np.errstate(over="ignore"):
        return np.exp(x)


def _iarcsin(x):
    """metafor ``transf.iarcsin``: sin(x)^2, clamped to [0, 1] below 0 and above pi/2."""
    z = np.sin(x) ** 2
    z = np.where(x < 0.0, 0.0, z)
    return np.where(x > np.arcsin(1.0), 1.0, z)


_BACK = {"identity": lambda x: x.copy(), "exp": _exp, "expit": expit, "iarcsin": _iarcsin,
         "tanh": np.tanh}


def study_ci(es: EffectSizes, level=95.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-study Wald CI ``yi -/+ z * sqrt(vi)``, back-transformed to the natural scale.

    As metafor ``summary(escalc(...), transf=...)``; for PFT each study is
    back-transformed with its own n (``transf.ipft`` with ``ni=attr(yi, "ni")``),
    not with the harmonic mean used for the pooled estimate.
    """
    crit = _z_crit(level)
    with np.errstate(invalid="ignore"):
        half = np.sqrt(es.vi)
    half *= crit                      # crit * sei, once for both bounds (the same product)
    lo = es.yi - half
    hi = es.yi + half
    if registry.measure(es.measure).back == "ipft":
        return _ipft(lo, es.ni), _ipft(hi, es.ni)
    return (transform_back(es.measure, lo, scale=es.scale),
            transform_back(es.measure, hi, scale=es.scale))


def study_estimate(es: EffectSizes) -> np.ndarray:
    """Per-study point estimate on the natural scale (PFT with each study's own n)."""
    if registry.measure(es.measure).back == "ipft":
        return _ipft(es.yi, es.ni)
    return transform_back(es.measure, es.yi, scale=es.scale)


@functools.lru_cache(maxsize=64)
def _z_crit(level) -> float:
    level = float(level)
    if not 0.0 < level < 100.0:
        raise UsageError(f"confidence level must be between 0 and 100 (percent), got {level:g}")
    return float(-ndtri((1.0 - level / 100.0) / 2.0))


def _check_measure(measure) -> str:
    if not registry.is_measure(measure):
        raise UsageError(f"unknown effect measure {measure!r}: choose one of "
                         f"{', '.join(registry.measures(every=True))}")
    return measure.upper()


def _spec(measure, scale=None) -> registry.Measure:
    """The registered measure, on ``scale`` for a measure that has scales (GEN)."""
    name = _check_measure(measure)
    try:
        return registry.measure(name, scale)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# ---------------------------------------------------------------------------
# escalc
# ---------------------------------------------------------------------------

def as_column(name, values, what="numbers") -> np.ndarray:
    """``values`` as a one-dimensional float array, or a UsageError naming ``name``."""
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        noun = "numbers" if what == "numbers" else f"numbers ({what})"
        raise UsageError(f"{name} must be {noun}, got {values!r}") from None
    if arr.ndim != 1:
        raise UsageError(f"{name} must be a one-dimensional sequence of {what}")
    return arr


def _counts(name, values, k=None):
    arr = as_column(name, values, "counts")
    if k is not None and arr.shape[0] != k:
        raise UsageError(f"{name} has {arr.shape[0]} values but events_t has {k}")
    bad = np.flatnonzero(arr < 0)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"study {i + 1}: {name} is negative ({arr[i]:g})")
    return arr


def _check_events(events, n, ev_name, n_name):
    bad = np.flatnonzero(events > n)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"study {i + 1}: {ev_name} ({events[i]:g}) is larger than {n_name} ({n[i]:g})")
    bad = np.flatnonzero(n <= 0)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"study {i + 1}: {n_name} must be at least 1, got {n[i]:g}")


def escalc(measure, events_t, n_t, events_c=None, n_c=None, *, cc=0.5) -> EffectSizes:
    """Effect size and sampling variance of each study, exactly as metafor ``escalc()``.

    ``escalc(measure, xi=events_t, ni=n_t, add=cc, to="only0")`` for PR, PLO,
    PFT, PAS and ``escalc(measure, ai=events_t, n1i=n_t, ci=events_c,
    n2i=n_c, add=cc, to="only0", drop00=...)`` for RR, OR, RD, with
    ``vtype="LS"``:

    - PR  ``p = x/n``, ``v = p(1-p)/n``; PLO ``log(p/(1-p))``, ``v = 1/x + 1/(n-x)``
      (both after the correction: 0/n and n/n studies get ``cc`` added to x
      and n-x, so n grows by 2cc);
    - PFT ``(asin(sqrt(x/(n+1))) + asin(sqrt((x+1)/(n+1))))/2``, ``v = 1/(4n+2)``
      (Freeman & Tukey 1950); PAS ``asin(sqrt(p))``, ``v = 1/(4n)``;
    - RR ``log(p1/p2)``, ``v = 1/a - 1/n1 + 1/c - 1/n2``; OR ``log(ad/bc)``,
      ``v = 1/a + 1/b + 1/c + 1/d``; RD ``p1 - p2``, ``v = p1q1/n1 + p2q2/n2``
      (cells of a study with any zero cell get ``cc``).

    Double-zero studies (no events in either arm), and studies with events in
    every participant of both arms, get ``keep=False`` for RR and OR (as
    ``drop00=TRUE``: neither ratio is estimable without borrowing from the
    correction); RD keeps them (RD = 0 is informative). Rows with missing
    counts (NaN, e.g. a single-arm row in a two-arm analysis) get ``keep=False``
    and a reason, never an error. ``cc=0`` reproduces ``add=0``: studies with a
    zero cell then have infinite or zero variance and are left out, with a reason.
    """
    spec = registry.measure(_check_measure(measure))
    if spec.family != "counts":
        raise UsageError(f"measure {spec.name} reads {', '.join(spec.inputs)}, not counts: "
                         f"use effects.compute({spec.name!r}, columns)")
    cc = _check_cc(cc)
    x = _counts("events_t", events_t)
    k = x.shape[0]
    n1 = _counts("n_t", n_t, k)
    if not spec.two_arm:
        if events_c is not None or n_c is not None:
            raise UsageError(f"measure {spec.name} is a single-arm measure: control counts (events_c, "
                             f"n_c) are only used by {', '.join(registry.measures(arms=2, family='counts'))}")
        return _escalc_single(spec, x, n1, cc)
    if events_c is None or n_c is None:
        raise UsageError(f"measure {spec.name} compares two arms: it needs control counts (events_c and n_c)")
    c = _counts("events_c", events_c, k)
    n2 = _counts("n_c", n_c, k)
    return _escalc_two(spec, x, n1, c, n2, cc)


def _check_cc(cc) -> float:
    try:
        cc = float(cc)
    except (TypeError, ValueError):
        raise UsageError(f"continuity correction must be a number >= 0, got {cc!r}") from None
    if not np.isfinite(cc) or cc < 0:
        raise UsageError(f"continuity correction must be a number >= 0, got {cc:g}")
    return cc


def _escalc_single(spec, x, n, cc) -> EffectSizes:
    """One-arm counts: the rules shared by PR, PLO, PFT, PAS, then the measure's formula."""
    missing = np.isnan(x) | np.isnan(n)
    _check_events(np.where(missing, 0, x), np.where(missing, 1, n), "events_t", "n_t")
    m = n - x
    with np.errstate(invalid="ignore"):
        zero = ~missing & ((x == 0) | (m == 0))
    add = cc if spec.uses_cc else 0.0
    cc_added = zero & (add > 0)
    xa = np.where(zero, x + add, x)
    ma = np.where(zero, m + add, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi = spec.effect_function()(xa, ma)
    reasons = ["counts missing (events_t or n_t blank)" if miss else None for miss in missing]
    return _finish(spec.name, yi, vi, n, reasons, cc_added, zero & (add == 0))


# One-arm count measures (escalc, vtype="LS"): x events and m non-events,
# after the continuity correction; n = x + m.

def raw_proportion(x, m):
    """PR: p = x/n, v = p(1-p)/n."""
    n = x + m
    p = x / n
    return p, p * (1.0 - p) / n


def logit_proportion(x, m):
    """PLO: log(x/m), v = 1/x + 1/m."""
    return np.log(x / m), 1.0 / x + 1.0 / m


def arcsine_proportion(x, m):
    """PAS: asin(sqrt(p)), v = 1/(4n)."""
    n = x + m
    return np.arcsin(np.sqrt(x / n)), 1.0 / (4.0 * n)


def double_arcsine_proportion(x, m):
    """PFT (Freeman & Tukey 1950): (asin(sqrt(x/(n+1))) + asin(sqrt((x+1)/(n+1))))/2, v = 1/(4n+2)."""
    n = x + m
    yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1.0))) + np.arcsin(np.sqrt((x + 1.0) / (n + 1.0))))
    return yi, 1.0 / (4.0 * n + 2.0)


def _escalc_two(spec, a, n1, c, n2, cc) -> EffectSizes:
    """2x2 tables: the rules shared by RR, OR, RD (drop00, continuity correction), then the formula."""
    measure = spec.name
    missing_t = np.isnan(a) | np.isnan(n1)
    missing_c = np.isnan(c) | np.isnan(n2)
    missing = missing_t | missing_c
    _check_events(*_filled(missing_t, a, n1), "events_t", "n_t")
    _check_events(*_filled(missing_c, c, n2), "events_c", "n_c")
    b = n1 - a
    d = n2 - c
    with np.errstate(invalid="ignore"):
        double_zero = ~missing & (a == 0) & (c == 0)
        double_all = ~missing & (b == 0) & (d == 0)
        dropped = (double_zero | double_all) if spec.drop00 else np.zeros_like(missing)
        zero = ~missing & ~dropped & ((a == 0) | (b == 0) | (c == 0) | (d == 0))
    add = cc if spec.uses_cc else 0.0
    cc_added = zero & (add > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi = _corrected(spec.effect_function(), (a, b, c, d), zero, add)
    if dropped.any():
        yi[dropped] = np.nan
        vi[dropped] = np.nan
    reasons: list = [None] * a.shape[0]
    # the first rule that applies, for the rows some rule applies to (the rest: None)
    for i in np.flatnonzero(missing | ((double_zero | double_all) & spec.drop00)).tolist():
        if missing_c[i] and not missing_t[i]:
            reasons[i] = f"no control arm (events_c or n_c blank): {measure} needs a comparison"
        elif missing[i]:
            reasons[i] = "counts missing (events_t or n_t blank)"
        elif double_zero[i]:
            reasons[i] = f"no events in either arm (double zero): {measure} undefined"
        else:
            reasons[i] = (f"events in every participant of both arms: {measure} not estimable "
                          f"(left out as escalc drop00)")
    return _finish(measure, yi, vi, n1 + n2, reasons, cc_added, zero & (add == 0))


def _filled(missing, events, n):
    """Events and sizes with blanks filled by 0 and 1 (for the checks), the columns themselves when none is blank."""
    if not missing.any():
        return events, n
    return np.where(missing, 0, events), np.where(missing, 1, n)


def _corrected(effect, cells, zero, add):
    """``effect(*[np.where(zero, v + add, v) for v in cells])`` as new arrays, without
    four corrected copies of the columns.

    The formulas are element-wise, so every row is computed from its own cells: all rows
    from the raw cells, then the rows with a zero cell again from their corrected cells
    (the same numbers, and only those few rows copied at k = 10^6).
    """
    yi, vi = effect(*cells)
    idx = np.flatnonzero(zero)
    if idx.size:
        yz, vz = effect(*[v[idx] + add for v in cells])
        yi[idx] = yz
        vi[idx] = vz
    return yi, vi


# Two-arm count measures (escalc, vtype="LS"): cells a, b (treatment events,
# non-events) and c, d (control), after the continuity correction.

def log_risk_ratio(a, b, c, d):
    """RR: log(p1/p2), v = 1/a - 1/n1 + 1/c - 1/n2."""
    n1, n2 = a + b, c + d
    return np.log(a / n1) - np.log(c / n2), 1.0 / a - 1.0 / n1 + 1.0 / c - 1.0 / n2


def log_odds_ratio(a, b, c, d):
    """OR: log(ad/bc), v = 1/a + 1/b + 1/c + 1/d."""
    return np.log(a / b) - np.log(c / d), 1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d


def risk_difference(a, b, c, d):
    """RD: p1 - p2, v = p1 q1/n1 + p2 q2/n2."""
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    return p1 - p2, p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2


def _finite_or_nan(x):
    """``np.where(np.isfinite(x), x, nan)``; an all-finite ``x`` (a new array of the caller's) as it is."""
    finite = np.isfinite(x)
    return x if finite.all() else np.where(finite, x, np.nan)


def _finish(measure, yi, vi, ni, reasons, cc_added, zero_uncorrected, *, scale=None, notes=None,
            zero_what="zero cell") -> EffectSizes:
    # escalc returns +-Inf for log(0); a pool can use neither that nor vi <= 0
    yi, vi = _finite_or_nan(yi), _finite_or_nan(vi)
    with np.errstate(invalid="ignore"):
        usable = ~np.isnan(yi) & ~np.isnan(vi) & (vi > 0)
    reasons = list(reasons)
    for i in np.flatnonzero(~usable):
        if reasons[i] is None:
            if zero_uncorrected[i]:
                reasons[i] = (f"{zero_what} and no continuity correction (cc = 0): {measure} "
                              f"has infinite or zero variance")
            else:
                reasons[i] = f"{measure} not computable for this study (undefined or zero variance)"
    # every study usable (the common case): no test per study
    keep = np.ones(len(reasons), dtype=bool) if reasons.count(None) == len(reasons) \
        else np.array([r is None for r in reasons], dtype=bool)
    notes = (None,) * len(reasons) if notes is None else notes
    return EffectSizes(measure=measure, yi=yi, vi=vi, ni=np.asarray(ni, dtype=float), keep=keep,
                       reasons=tuple(reasons), cc_added=np.asarray(cc_added, dtype=bool),
                       scale=scale, notes=tuple(notes))


# ---------------------------------------------------------------------------
# compute: every family
# ---------------------------------------------------------------------------

def compute(measure, columns, *, cc=0.5, r=None, scale=None) -> EffectSizes:
    """Effect sizes of ``measure`` from a table's ``columns``, as metafor ``escalc()``.

    ``columns`` maps column names to equal-length sequences of numbers (NaN:
    a blank cell); the measure's ``inputs`` are read from it and a column
    that is absent counts as blank. The measure's family prepares them
    (``registry.FAMILIES``):

    - ``counts``: exactly :func:`escalc` (continuity correction ``cc``,
      drop00; a blank control arm is a reason, not an error);
    - ``means_two``, ``means_one``, ``means_paired``: blank inputs, SD <= 0,
      n < 2, |r| >= 1 and (ROM, MNLN) means <= 0 leave a study out with a
      reason; the paired family takes the ``r`` column, else the assumed
      ``r`` (``--r``), noted per study;
    - ``rates_two``, ``rates_one``: events < 0 or person-time <= 0 are
      reasons; ``cc`` is added to both groups' events when either is 0
      (``escalc(add=cc, to="only0")``; not for IRSD, whose escalc default
      is ``add=0``), IRR drops double-zero studies (``drop00=TRUE``);
    - ``correlations``: |r| >= 1 and n < 4 (escalc gives no variance for
      n <= 3) are reasons;
    - ``generic``: ``yi`` with ``vi`` or ``sei``, else ``effect`` with
      ``effect_ci_low``/``effect_ci_high`` at ``effect_level`` percent
      (default 95) converted on ``scale`` ("log": ratios; "identity"), which
      such rows need stated; ``EffectSizes.scale`` is the scale (identity
      when none is given), which the back-transformations read.

    ``ni`` is what escalc stores in ``attr(yi, "ni")``: total n, or total
    person-time for rates. Never raises for a blank or invalid cell; raises
    ``UsageError`` for an unknown measure, a bad option, or columns that
    are not numbers or not of one length.
    """
    spec = _spec(measure, scale)
    if scale is not None and not spec.scales:
        raise UsageError(f"--scale applies to {', '.join(registry.measures(scaled=True, every=True))}, "
                         f"not to {spec.name}")
    cc = _check_cc(cc)
    r = _check_assumed_r(r)
    try:
        prepare = _FAMILY_PREPARATION[spec.family]
    except KeyError:
        raise UsageError(f"measure {spec.name}: no preparation for input family "
                         f"{spec.family!r}") from None
    return prepare(spec, columns, cc=cc, r=r, scale_given=scale is not None)


def _check_assumed_r(r):
    if r is None:
        return None
    try:
        r = float(r)
    except (TypeError, ValueError):
        raise UsageError(f"the assumed correlation r must be a number, got {r!r}") from None
    if not -1.0 < r < 1.0:
        raise UsageError(f"the assumed correlation r must be between -1 and 1 (exclusive), got {r:g}")
    return r


def _read_columns(spec, columns, names) -> tuple[int, dict]:
    """The named columns as float arrays of one length k (absent: all NaN)."""
    if not hasattr(columns, "get"):
        raise UsageError("columns must be a mapping of column names to values")
    arrays, k = {}, None
    for name in names:
        values = columns.get(name)
        if values is None:
            continue
        arr = as_column(name, values)
        if k is None:
            k, first = arr.shape[0], name
        elif arr.shape[0] != k:
            raise UsageError(f"{name} has {arr.shape[0]} values but {first} has {k}")
        arrays[name] = arr
    if k is None:
        k = _length_of_any(columns)
    for name in names:
        arrays.setdefault(name, np.full(k, np.nan))
    return k, arrays


def _length_of_any(columns) -> int:
    for values in columns.values():
        try:
            return int(np.atleast_1d(np.asarray(values)).shape[0])
        except (TypeError, ValueError):
            continue
    return 0


def _compute_counts(spec, columns, *, cc, r=None, scale_given=False) -> EffectSizes:
    """Counts: today's escalc path; absent control columns are blank cells."""
    k, cols = _read_columns(spec, columns, spec.inputs)
    x = _counts("events_t", cols["events_t"])
    n1 = _counts("n_t", cols["n_t"], k)
    if not spec.two_arm:
        return _escalc_single(spec, x, n1, cc)
    c = _counts("events_c", cols["events_c"], k)
    n2 = _counts("n_c", cols["n_c"], k)
    return _escalc_two(spec, x, n1, c, n2, cc)


# What a valid value of each input column is (beyond being a number), and why.
# (test, message) with the message completed by the value; n's rule depends on the family.

def _valid(name, values, spec):
    """Boolean array: where ``values`` of column ``name`` are valid for ``spec``, and the rule."""
    with np.errstate(invalid="ignore"):
        if name.startswith("sd_"):
            return values > 0, "must be > 0"
        if name in ("n_t", "n_c"):
            if spec.family == "correlations":
                return values >= 4, ("must be at least 4 (escalc gives a correlation no "
                                     "sampling variance for n <= 3)")
            return values >= 2, "must be at least 2 (an SD needs two participants)"
        if name in ("r", "cor_t"):
            return np.abs(values) < 1, "must be between -1 and 1 (exclusive)"
        if name.startswith("time_"):
            return values > 0, "must be > 0 (person-time)"
        if name.startswith("events_"):
            return values >= 0, "must be >= 0"
        if name in spec.positive:
            return values > 0, f"must be > 0 for {spec.name} (its log is taken)"
        return np.isfinite(values), "must be a finite number"


def _check_rows(spec, cols, k, names, *, arm_names=("_t", "_c")):
    """Per-study reason (or None) for blank or invalid inputs among ``names``."""
    reasons = [None] * k
    blank = {n: np.isnan(cols[n]) for n in names}
    control = [n for n in names if n.endswith("_c")]
    treated = [n for n in names if not n.endswith("_c")]
    rules = {n: _valid(n, cols[n], spec) for n in names}
    for i in range(k):
        missing = [n for n in names if blank[n][i]]
        if missing:
            if control and all(blank[n][i] for n in control) and not all(blank[n][i] for n in treated):
                reasons[i] = (f"no control group ({', '.join(control)} blank): {spec.name} "
                              f"needs a comparison")
            else:
                reasons[i] = f"{', '.join(missing)} blank: {spec.name} needs {', '.join(names)}"
            continue
        bad = [f"{n} {rules[n][1]}, got {cols[n][i]:g}" for n in names if not rules[n][0][i]]
        if bad:
            reasons[i] = "; ".join(bad)
    return reasons


def _call(spec, *arrays):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return spec.effect_function()(*arrays)


def _blank_where(reasons, *arrays):
    bad = np.array([r is not None for r in reasons], dtype=bool)
    return [np.where(bad, np.nan, a) for a in arrays]


def _compute_means(spec, columns, *, cc=0.5, r=None, scale_given=False) -> EffectSizes:
    """Two-group and one-group means: blank/invalid inputs, then the measure's formula."""
    k, cols = _read_columns(spec, columns, spec.inputs)
    reasons = _check_rows(spec, cols, k, spec.inputs)
    yi, vi = _blank_where(reasons, *_call(spec, *(cols[n] for n in spec.inputs)))
    ni = cols["n_t"] + cols["n_c"] if "n_c" in spec.inputs else cols["n_t"]
    none = np.zeros(k, dtype=bool)
    return _finish(spec.name, yi, vi, ni, reasons, none, none)


# How a study note says that the assumed r (--r) stood in for the study's own (the pool
# adds a sensitivity over r where it finds it).
ASSUMED_R_MARK = "assumed (--r)"


def _compute_paired(spec, columns, *, cc=0.5, r=None, scale_given=False) -> EffectSizes:
    """Paired before/after means: the ``r`` column, else the assumed r, then the formula."""
    k, cols = _read_columns(spec, columns, spec.inputs)
    notes = [None] * k
    if r is not None and "r" in spec.inputs:
        given = cols["r"]
        assumed = np.isnan(given)
        cols["r"] = np.where(assumed, r, given)
        for i in np.flatnonzero(assumed):
            notes[i] = f"r = {r:g} {ASSUMED_R_MARK}: the study reports no pre/post correlation"
    reasons = _check_rows(spec, cols, k, spec.inputs)
    for i in range(k):
        if reasons[i] is not None and np.isnan(cols["r"][i]):
            reasons[i] = reasons[i] + " (or give an assumed r, --r)"
    yi, vi = _blank_where(reasons, *_call(spec, *(cols[n] for n in spec.inputs)))
    none = np.zeros(k, dtype=bool)
    return _finish(spec.name, yi, vi, cols["n_t"], reasons, none, none, notes=notes)


def _compute_rates(spec, columns, *, cc=0.5, r=None, scale_given=False) -> EffectSizes:
    """Incidence rates: blank/invalid inputs, drop00, the continuity correction, the formula.

    As ``escalc(measure, x1i, t1i, x2i, t2i, add=cc, to="only0", drop00=...)``
    (one group: ``xi, ti``): a study with 0 events in a group gets ``cc``
    added to the events of every group; IRSD takes no correction (escalc's
    default ``add=0`` for it); IRR leaves out studies with no events in
    either group (``drop00=TRUE``); ``ni`` is the total person-time.
    """
    k, cols = _read_columns(spec, columns, spec.inputs)
    reasons = _check_rows(spec, cols, k, spec.inputs)
    bad = np.array([x is not None for x in reasons], dtype=bool)
    events = [n for n in spec.inputs if n.startswith("events_")]
    times = [n for n in spec.inputs if n.startswith("time_")]
    with np.errstate(invalid="ignore"):
        zero = ~bad & np.logical_or.reduce([cols[n] == 0 for n in events])
        both_zero = ~bad & np.logical_and.reduce([cols[n] == 0 for n in events])
    dropped = both_zero if (spec.drop00 and len(events) == 2) else np.zeros(k, dtype=bool)
    zero &= ~dropped
    add = cc if spec.uses_cc else 0.0
    for n in events:
        cols[n] = np.where(zero, cols[n] + add, cols[n])
    yi, vi = _blank_where(reasons, *_call(spec, *(cols[n] for n in spec.inputs)))
    yi = np.where(dropped, np.nan, yi)
    vi = np.where(dropped, np.nan, vi)
    for i in np.flatnonzero(dropped):
        reasons[i] = f"no events in either group (double zero): {spec.name} undefined"
    ni = sum(cols[n] for n in times)
    return _finish(spec.name, yi, vi, ni, reasons, zero & (add > 0), zero & (add == 0),
                   zero_what="zero events")


def _compute_correlations(spec, columns, *, cc=0.5, r=None, scale_given=False) -> EffectSizes:
    """Correlations: |r| < 1 and n >= 4, then the formula (escalc ``ri``, ``ni``)."""
    k, cols = _read_columns(spec, columns, spec.inputs)
    reasons = _check_rows(spec, cols, k, spec.inputs)
    yi, vi = _blank_where(reasons, *_call(spec, *(cols[n] for n in spec.inputs)))
    none = np.zeros(k, dtype=bool)
    return _finish(spec.name, yi, vi, cols["n_t"], reasons, none, none)


def _compute_generic(spec, columns, *, cc=0.5, r=None, scale_given=False) -> EffectSizes:
    """Generic effects: ``yi`` with ``vi`` or ``sei``, else an estimate with its CI.

    A row with ``yi`` uses ``vi`` (else ``sei**2``), as ``escalc(yi=, vi=)`` /
    ``escalc(yi=, sei=)``. A row with ``effect``, ``effect_ci_low`` and
    ``effect_ci_high`` (natural scale) and no ``yi``: on the "log" scale
    ``yi = log(effect)``, ``sei = (log(hi) - log(lo)) / (2 z)``; on
    "identity" ``yi = effect``, ``sei = (hi - lo) / (2 z)``; ``z`` is the
    normal quantile of ``effect_level`` (percent, default 95). The estimate
    must be inside its CI, and on the log scale all three must be > 0. Such
    a row needs the scale stated (``scale=``): read on the wrong scale a
    ratio's CI gives a wrong standard error, so without it the row is left
    out with a reason. Rows with ``yi`` need no scale (it only chooses the
    back-transformation: identity unless "log").
    """
    scale = spec.scale_name
    k, cols = _read_columns(spec, columns, spec.inputs + ("n_t", "n_c"))
    yi = cols["yi"].copy()
    vi = np.where(np.isnan(cols["vi"]), cols["sei"] ** 2, cols["vi"])
    reasons = [None] * k
    notes = [None] * k
    est, lo, hi = cols["effect"], cols["effect_ci_low"], cols["effect_ci_high"]
    level = np.where(np.isnan(cols["effect_level"]), 95.0, cols["effect_level"])
    for i in range(k):
        if not np.isnan(yi[i]):
            if np.isnan(vi[i]):
                reasons[i] = f"yi without vi or sei: {spec.name} needs a variance or standard error"
            elif not np.isfinite(yi[i]) or not np.isfinite(vi[i]) or vi[i] <= 0:
                reasons[i] = f"vi or sei must be > 0 (and yi finite), got yi {yi[i]:g}, vi {vi[i]:g}"
            continue
        given = [n for n, v in (("effect", est[i]), ("effect_ci_low", lo[i]),
                                ("effect_ci_high", hi[i])) if not np.isnan(v)]
        if len(given) < 3:
            missing = [n for n in ("effect", "effect_ci_low", "effect_ci_high") if n not in given]
            reasons[i] = ("no effect given: GEN needs yi with vi or sei, or effect with "
                          "effect_ci_low and effect_ci_high" if not given else
                          f"{', '.join(missing)} blank: an effect needs its CI (or give yi with vi or sei)")
            continue
        if not scale_given:
            reasons[i] = ("an effect with its CI needs the scale it is on: --scale log for ratios "
                          "(HR, OR, RR), --scale identity for differences")
            continue
        yi[i], vi[i], reasons[i] = _effect_from_ci(est[i], lo[i], hi[i], level[i], scale)
        if reasons[i] is None:
            notes[i] = (f"standard error from the {level[i]:g}% CI on the {scale} scale: "
                        f"sei = ({'log(hi) - log(lo)' if scale == 'log' else 'hi - lo'}) / (2 z)")
    yi, vi = _blank_where(reasons, yi, vi)
    yi, vi = _call(spec, yi, vi)
    ni = cols["n_t"] + np.where(np.isnan(cols["n_c"]), 0.0, cols["n_c"])
    none = np.zeros(k, dtype=bool)
    return _finish(spec.name, yi, vi, ni, reasons, none, none, scale=scale, notes=notes)


def _effect_from_ci(est, lo, hi, level, scale):
    """(yi, vi, reason) of one estimate with its CI on the natural scale."""
    if not 0.0 < level < 100.0:
        return np.nan, np.nan, f"effect_level must be between 0 and 100 (percent), got {level:g}"
    if not lo <= est <= hi or lo == hi:
        return np.nan, np.nan, (f"effect {est:g} is not inside its CI [{lo:g}, {hi:g}] "
                                f"(or the CI has no width)")
    z = _z_crit(level)
    if scale == "log":
        if lo <= 0:
            return np.nan, np.nan, (f"effect_ci_low must be > 0 on the log scale (ratios), got {lo:g}; "
                                    f"use --scale identity for differences")
        return float(np.log(est)), float(((np.log(hi) - np.log(lo)) / (2.0 * z)) ** 2), None
    return float(est), float(((hi - lo) / (2.0 * z)) ** 2), None


_FAMILY_PREPARATION = {
    "counts": _compute_counts,
    "means_two": _compute_means,
    "means_one": _compute_means,
    "means_paired": _compute_paired,
    "rates_two": _compute_rates,
    "rates_one": _compute_rates,
    "correlations": _compute_correlations,
    "generic": _compute_generic,
}


# ---------------------------------------------------------------------------
# effect-size functions of the other families (escalc, vtype="LS")
# ---------------------------------------------------------------------------

def cmicalc(m):
    """Exact small-sample bias correction of a standardised mean difference with m df.

    ``c(m) = Γ(m/2) / (sqrt(m/2) Γ((m-1)/2))`` (Hedges 1981; metafor
    ``.cmicalc``), NaN for m <= 1.
    """
    m = np.asarray(m, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = m > 1
        safe = np.where(ok, m, 2.0)
        c = np.exp(gammaln(safe / 2.0) - np.log(np.sqrt(safe / 2.0)) - gammaln((safe - 1.0) / 2.0))
    return np.where(ok, c, np.nan)


def mean_difference(m1, sd1, n1, m2, sd2, n2):
    """MD: m1 - m2, v = sd1²/n1 + sd2²/n2 (unequal variances, escalc vtype LS)."""
    return m1 - m2, sd1 ** 2 / n1 + sd2 ** 2 / n2


def standardised_mean_difference(m1, sd1, n1, m2, sd2, n2):
    """SMD (Hedges' g): c(m) (m1 - m2)/sp with m = n1 + n2 - 2 and the pooled SD sp;
    v = 1/n1 + 1/n2 + g²/(2 (n1 + n2)) (Hedges 1981; escalc vtype LS)."""
    mi = n1 + n2 - 2.0
    sp = np.sqrt(((n1 - 1.0) * sd1 ** 2 + (n2 - 1.0) * sd2 ** 2) / mi)
    g = cmicalc(mi) * (m1 - m2) / sp
    return g, 1.0 / n1 + 1.0 / n2 + g ** 2 / (2.0 * (n1 + n2))


def standardised_mean_difference_heteroscedastic(m1, sd1, n1, m2, sd2, n2):
    """SMDH (Bonett 2009): c(n1 + n2 - 2) (m1 - m2)/s with s² = (sd1² + sd2²)/2;
    v = c² [g² (sd1⁴/(n1-1) + sd2⁴/(n2-1)) / (2 (sd1² + sd2²)²)
            + (sd1²/(n1-1) + sd2²/(n2-1)) / s²] (escalc vtype LS)."""
    c = cmicalc(n1 + n2 - 2.0)
    s2 = (sd1 ** 2 + sd2 ** 2) / 2.0
    g = c * (m1 - m2) / np.sqrt(s2)
    v = (g ** 2 * (sd1 ** 4 / (n1 - 1.0) + sd2 ** 4 / (n2 - 1.0)) / (2.0 * (sd1 ** 2 + sd2 ** 2) ** 2)
         + (sd1 ** 2 / (n1 - 1.0) + sd2 ** 2 / (n2 - 1.0)) / s2)
    return g, c ** 2 * v


def log_ratio_of_means(m1, sd1, n1, m2, sd2, n2):
    """ROM (Hedges et al. 1999): log(m1/m2), v = sd1²/(n1 m1²) + sd2²/(n2 m2²)."""
    return np.log(m1 / m2), sd1 ** 2 / (n1 * m1 ** 2) + sd2 ** 2 / (n2 * m2 ** 2)


def mean_change(m1, m2, sd1, sd2, n, r):
    """MC: m1 - m2 (post - pre), v = (sd1² + sd2² - 2 r sd1 sd2)/n."""
    return m1 - m2, (sd1 ** 2 + sd2 ** 2 - 2.0 * r * sd1 * sd2) / n


def standardised_mean_change_change_sd(m1, m2, sd1, sd2, n, r):
    """SMCC (Gibbons et al. 1993): c(n-1) (m1 - m2)/sd_d with
    sd_d² = sd1² + sd2² - 2 r sd1 sd2; v = 1/n + g²/(2n) (escalc vtype LS)."""
    sdd = np.sqrt(sd1 ** 2 + sd2 ** 2 - 2.0 * r * sd1 * sd2)
    g = cmicalc(n - 1.0) * (m1 - m2) / sdd
    return g, 1.0 / n + g ** 2 / (2.0 * n)


def standardised_mean_change_raw_sd(m1, m2, sd1, n, r):
    """SMCR (Becker 1988): c(n-1) (m1 - m2)/sd1, v = 2(1 - r)/n + g²/(2n) (escalc vtype LS).
    With the contract's mapping sd1 is sd_pre."""
    g = cmicalc(n - 1.0) * (m1 - m2) / sd1
    return g, 2.0 * (1.0 - r) / n + g ** 2 / (2.0 * n)


def raw_mean(m, sd, n):
    """MN: m, v = sd²/n."""
    return m + 0.0, sd ** 2 / n


def log_mean(m, sd, n):
    """MNLN: log(m), v = sd²/(n m²)."""
    return np.log(m), sd ** 2 / (n * m ** 2)


def log_incidence_rate_ratio(x1, t1, x2, t2):
    """IRR: log(x1/t1) - log(x2/t2), v = 1/x1 + 1/x2."""
    return np.log(x1 / t1) - np.log(x2 / t2), 1.0 / x1 + 1.0 / x2


def incidence_rate_difference(x1, t1, x2, t2):
    """IRD: x1/t1 - x2/t2, v = x1/t1² + x2/t2²."""
    ir1, ir2 = x1 / t1, x2 / t2
    return ir1 - ir2, ir1 / t1 + ir2 / t2


def sqrt_incidence_rate_difference(x1, t1, x2, t2):
    """IRSD: sqrt(x1/t1) - sqrt(x2/t2), v = 1/(4 t1) + 1/(4 t2)."""
    return np.sqrt(x1 / t1) - np.sqrt(x2 / t2), 1.0 / (4.0 * t1) + 1.0 / (4.0 * t2)


def raw_incidence_rate(x, t):
    """IR: x/t, v = x/t²."""
    ir = x / t
    return ir, ir / t


def log_incidence_rate(x, t):
    """IRLN: log(x/t), v = 1/x."""
    return np.log(x / t), 1.0 / x


def raw_correlation(r, n):
    """COR: r, v = (1 - r²)²/(n - 1) (escalc vtype LS)."""
    return r + 0.0, (1.0 - r ** 2) ** 2 / (n - 1.0)


def fisher_z_correlation(r, n):
    """ZCOR (Fisher 1921): atanh(r) = log((1 + r)/(1 - r))/2, v = 1/(n - 3)."""
    return 0.5 * np.log((1.0 + r) / (1.0 - r)), 1.0 / (n - 3.0)


def generic_effect(yi, vi):
    """GEN: yi and vi as given (or as converted from an estimate and its CI)."""
    return yi + 0.0, vi + 0.0
