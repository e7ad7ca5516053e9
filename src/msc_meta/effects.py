"""Per-study effect sizes and their back-transformations, as metafor ``escalc()``.

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

from dataclasses import dataclass

import numpy as np
from msc_meta._dist import expit, ndtri

from msc_meta import registry
from msc_meta.errors import InputError, UsageError


@dataclass(frozen=True)
class EffectSizes:
    """Per-study effect sizes of one measure, as ``escalc()`` returns them.

    ``yi``/``vi`` are on the analysis scale (log RR, logit, ...), NaN where the
    study gives no usable value; ``keep`` says whether a study may enter a pool
    of this measure and ``reasons`` why not (None when kept). ``ni`` is the
    uncorrected number of participants (``n_t``, or ``n_t + n_c``), which the
    PFT back-transformation needs (escalc's ``attr(yi, "ni")``).
    """

    measure: str
    yi: np.ndarray
    vi: np.ndarray
    ni: np.ndarray
    keep: np.ndarray
    reasons: tuple
    cc_added: np.ndarray

    @property
    def k(self) -> int:
        return int(self.yi.shape[0])


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


def transform_back(measure, x, ni=None) -> np.ndarray:
    """Back-transform values on the analysis scale to the natural scale.

    PR, RD: identity. PLO: inverse logit (metafor ``transf.ilogit``).
    PAS: ``sin(x)^2`` clamped to [0, 1] below 0 and above pi/2
    (``transf.iarcsin``). RR, OR: ``exp``. PFT: inverse Freeman-Tukey double
    arcsine with the harmonic mean of ``ni`` (Miller 1978; metafor
    ``transf.ipft.hm(x, targs=list(ni=ni))``, including its clamping to 0 and
    1 beyond the transforms of 0/n and n/n). Vectorised; NaN stays NaN.
    """
    back = registry.measure(_check_measure(measure)).back
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
        sei = np.sqrt(es.vi)
    lo = es.yi - crit * sei
    hi = es.yi + crit * sei
    if registry.measure(es.measure).back == "ipft":
        return _ipft(lo, es.ni), _ipft(hi, es.ni)
    return transform_back(es.measure, lo), transform_back(es.measure, hi)


def study_estimate(es: EffectSizes) -> np.ndarray:
    """Per-study point estimate on the natural scale (PFT with each study's own n)."""
    if registry.measure(es.measure).back == "ipft":
        return _ipft(es.yi, es.ni)
    return transform_back(es.measure, es.yi)


def _z_crit(level) -> float:
    level = float(level)
    if not 0.0 < level < 100.0:
        raise UsageError(f"confidence level must be between 0 and 100 (percent), got {level:g}")
    return float(-ndtri((1.0 - level / 100.0) / 2.0))


def _check_measure(measure) -> str:
    if not registry.is_measure(measure):
        raise UsageError(f"unknown effect measure {measure!r}: choose one of "
                         f"{', '.join(registry.measures())}")
    return measure.upper()


# ---------------------------------------------------------------------------
# escalc
# ---------------------------------------------------------------------------

def _counts(name, values, k=None):
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be numbers (counts), got {values!r}") from None
    if arr.ndim != 1:
        raise UsageError(f"{name} must be a one-dimensional sequence of counts")
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
    cc = float(cc)
    if not np.isfinite(cc) or cc < 0:
        raise UsageError(f"continuity correction must be a number >= 0, got {cc:g}")
    x = _counts("events_t", events_t)
    k = x.shape[0]
    n1 = _counts("n_t", n_t, k)
    if not spec.two_arm:
        if events_c is not None or n_c is not None:
            raise UsageError(f"measure {spec.name} is a single-arm measure: control counts (events_c, "
                             f"n_c) are only used by {', '.join(registry.measures(arms=2))}")
        return _escalc_single(spec, x, n1, cc)
    if events_c is None or n_c is None:
        raise UsageError(f"measure {spec.name} compares two arms: it needs control counts (events_c and n_c)")
    c = _counts("events_c", events_c, k)
    n2 = _counts("n_c", n_c, k)
    return _escalc_two(spec, x, n1, c, n2, cc)


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
    _check_events(np.where(missing_t, 0, a), np.where(missing_t, 1, n1), "events_t", "n_t")
    _check_events(np.where(missing_c, 0, c), np.where(missing_c, 1, n2), "events_c", "n_c")
    b = n1 - a
    d = n2 - c
    with np.errstate(invalid="ignore"):
        double_zero = ~missing & (a == 0) & (c == 0)
        double_all = ~missing & (b == 0) & (d == 0)
        dropped = (double_zero | double_all) if spec.drop00 else np.zeros_like(missing)
        zero = ~missing & ~dropped & ((a == 0) | (b == 0) | (c == 0) | (d == 0))
    add = cc if spec.uses_cc else 0.0
    cc_added = zero & (add > 0)
    cells = [np.where(zero, v + add, v) for v in (a, b, c, d)]
    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi = spec.effect_function()(*cells)
    yi = np.where(dropped, np.nan, yi)
    vi = np.where(dropped, np.nan, vi)
    reasons = []
    for i in range(a.shape[0]):
        if missing_c[i] and not missing_t[i]:
            reasons.append(f"no control arm (events_c or n_c blank): {measure} needs a comparison")
        elif missing[i]:
            reasons.append("counts missing (events_t or n_t blank)")
        elif double_zero[i] and spec.drop00:
            reasons.append(f"no events in either arm (double zero): {measure} undefined")
        elif double_all[i] and spec.drop00:
            reasons.append(f"events in every participant of both arms: {measure} not estimable "
                           f"(left out as escalc drop00)")
        else:
            reasons.append(None)
    return _finish(measure, yi, vi, n1 + n2, reasons, cc_added, zero & (add == 0))


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


def _finish(measure, yi, vi, ni, reasons, cc_added, zero_uncorrected) -> EffectSizes:
    # escalc returns +-Inf for log(0); a pool can use neither that nor vi <= 0
    yi = np.where(np.isfinite(yi), yi, np.nan)
    vi = np.where(np.isfinite(vi), vi, np.nan)
    with np.errstate(invalid="ignore"):
        usable = ~np.isnan(yi) & ~np.isnan(vi) & (vi > 0)
    reasons = list(reasons)
    for i in np.flatnonzero(~usable):
        if reasons[i] is None:
            if zero_uncorrected[i]:
                reasons[i] = (f"zero cell and no continuity correction (cc = 0): {measure} "
                              f"has infinite or zero variance")
            else:
                reasons[i] = f"{measure} not computable for this study (undefined or zero variance)"
    keep = np.array([r is None for r in reasons], dtype=bool)
    return EffectSizes(measure=measure, yi=yi, vi=vi, ni=np.asarray(ni, dtype=float), keep=keep,
                       reasons=tuple(reasons), cc_added=np.asarray(cc_added, dtype=bool))
