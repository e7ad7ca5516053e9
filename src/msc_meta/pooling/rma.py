"""Inverse-variance common-effect and random-effects models, as metafor ``rma.uni()``.

One engine serves one pool and thousands: :func:`fit_batch` works on 2-D
arrays ``Y, V`` (groups × kmax, padded) with a boolean ``mask``, and
:func:`pool_rma` is ``fit_batch`` on a single row. All formulas are those of
metafor 3.8.1 for the intercept-only model (``rma(yi, vi, method=, test=)``,
``predict()``, ``confint()``, ``weights()``):

- pooled effect ``θ = Σw y / Σw``, ``se = 1/sqrt(Σw)``, ``w = 1/(v + τ²)``
  (τ² = 0 for ``FE``); Wald z test and CI.
- Hartung-Knapp-Sidik-Jonkman (``test="knha"``; Hartung & Knapp 2001, Sidik
  & Jonkman 2002): ``se² · Σw (y-θ)²/(k-1)``, t with k-1 df. As metafor the
  factor is not truncated at 1 (it may shrink the CI), and it is 0 when the
  weighted residual sum of squares is below machine epsilon.
- Cochran's Q with FE weights, ``Q_df = k - 1``, ``Q_p`` from chi².
- I² and H²: random-effects fits ``I² = 100 τ²/(s² + τ²)``, ``H² = 1 + τ²/s²``
  with the typical within-study variance ``s² = (k-1)Σw/((Σw)² - Σw²)``,
  w = 1/v (Higgins & Thompson 2002; metafor ``vt``); FE fits
  ``I² = max(0, 100 (Q - (k-1))/Q)``, ``H² = Q/(k-1)``.
- Prediction interval ``θ ± crit · sqrt(τ² + se²)``: ``pi="hts"`` uses
  t with k-2 df (Higgins, Thompson & Spiegelhalter 2009; undefined for
  k < 3); ``pi="z"`` is metafor ``predict()``'s default, the CI's critical
  value (z, or t with k-1 df under HKSJ, reported as ``pi_method="t"``).
  FE fits have no prediction interval (metafor ``predict()`` gives none).
- Q-profile CI of τ² (Viechtbauer 2007; metafor ``confint()``): the τ² where
  the generalised Q equals the chi²(k-1) quantiles, searched on
  ``[0, max(100, 10 τ²)]``; a bound beyond that limit is reported at the
  limit (metafor's ">"), and a CI entirely below Q's range is [0, 0]. I² and
  H² CIs follow from the τ² bounds and s².

Only numpy and msc_meta._dist (scipy-free distribution functions) are imported at module level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from msc_meta._dist import chdtrc, chdtri, ndtr, ndtri, stdtr, stdtrit

from msc_meta import registry
from msc_meta.errors import ComputationError, UsageError
from msc_meta.pooling.results import PoolResult
from msc_meta.pooling.tau2 import (
    DEFAULT_MAXITER,
    DEFAULT_TOL,
    as_batch,
    check_method,
    estimate_tau2,
    generalized_q,
    solve_q,
    tau2_dl,
    tau2_eb,
    tau2_he,
    tau2_hs,
    tau2_ml,
    tau2_pm,
    tau2_reml,
    tau2_sj,
    typical_variance,
)

__all__ = [
    "BatchFit", "fit_batch", "pool_rma", "pool_rma_batch", "pool_rma_common", "pool_rma_pair", "qprofile_tau2_ci",
    "tau2_dl", "tau2_reml", "tau2_ml", "tau2_pm", "tau2_he", "tau2_sj", "tau2_hs", "tau2_eb",
]

_EPS = np.finfo(float).eps
VARIANCE_RATIO_WARN = 1e7   # metafor rma.uni: warns when max(vi)/min(vi) >= 1e7


def variance_ratio(V, mask):
    """``max(vi)/min(vi)`` per group (metafor rma.uni's check before fitting)."""
    return np.where(mask, V, -np.inf).max(axis=1) / np.where(mask, V, np.inf).min(axis=1)


def variance_ratio_note(ratio):
    """The note for an extreme variance ratio, worded after metafor's warning."""
    return (f"ratio of largest to smallest sampling variance is {ratio:.3g} (metafor warns from 1e7: "
            "'may not be able to obtain stable results'); the largest studies dominate every weight")


@dataclass(frozen=True)
class BatchFit:
    """Fitted models of many pools, on the analysis scale; arrays of shape (groups,).

    Field names follow :class:`~msc_meta.pooling.results.PoolResult`. Values
    that do not apply are NaN (e.g. ``df`` for a z test, PI bounds when
    undefined, CIs of τ² for FE). ``weights`` is (groups, kmax) in percent,
    0 in padded cells. ``converged`` is False where the τ² iteration failed;
    that group's numbers are NaN and ``messages`` says why. ``test`` and
    ``pi_method`` are per group because k = 1 forces a z test (as metafor).
    """

    method: str
    level: float
    hksj: bool
    pi: str
    k: np.ndarray
    theta: np.ndarray
    se: np.ndarray
    theta_ci_low: np.ndarray
    theta_ci_high: np.ndarray
    stat: np.ndarray
    pval: np.ndarray
    test: np.ndarray            # "z" or "t" per group
    df: np.ndarray              # t degrees of freedom, NaN for z
    tau2: np.ndarray
    tau: np.ndarray
    se_tau2: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_pval: np.ndarray
    s2: np.ndarray              # typical within-study variance (metafor vt)
    theta_pi_low: np.ndarray
    theta_pi_high: np.ndarray
    pi_method: tuple            # "hts" / "z" / "t", or None where no PI
    tau2_ci_low: np.ndarray
    tau2_ci_high: np.ndarray
    i2_ci_low: np.ndarray
    i2_ci_high: np.ndarray
    h2_ci_low: np.ndarray
    h2_ci_high: np.ndarray
    iterations: np.ndarray
    weights: np.ndarray
    mask: np.ndarray
    converged: np.ndarray
    messages: tuple             # None where converged
    notes: tuple                # tuple of notes (str) per group

    @property
    def groups(self) -> int:
        return int(self.k.shape[0])

    @property
    def random(self) -> bool:
        return self.method != "FE"


def _check_options(method, pi, level):
    method = check_method(method)
    pi = str(pi).lower()
    if pi not in ("hts", "z"):
        raise UsageError(f"unknown prediction interval {pi!r}: choose hts or z")
    level = float(level)
    if not 0.0 < level < 100.0:
        raise UsageError(f"confidence level must be between 0 and 100 (percent), got {level:g}")
    return method, pi, level


def qprofile_tau2_ci(Y, V, mask, tau2, level=95.0, *, q0=None, dq0=None):
    """Q-profile confidence interval of τ² (Viechtbauer 2007), as metafor ``confint(fit)``.

    Bounds solve ``Q(τ²) = chi²_{k-1}`` quantiles (upper quantile for the
    lower bound) on ``[0, tau2.max]``, ``tau2.max = max(100, 10 τ²)``. As
    metafor: if ``Q(0)`` is below the lower quantile both bounds are 0; a
    bound whose root lies beyond ``tau2.max`` is set to ``tau2.max``.
    ``q0``: ``generalized_q`` at τ² = 0 of every group, when the caller has it
    (the fit's Cochran Q); ``dq0``: its derivative, with which both root searches
    (which start at τ² = 0) take their first step without evaluating Q there again.
    Returns (low, high, high_at_limit); NaN where k < 2.
    """
    Y, V, mask, k = as_batch(Y, V, mask)
    tau2 = np.asarray(tau2, dtype=float).reshape(-1)
    G = Y.shape[0]
    low = np.full(G, np.nan)
    high = np.full(G, np.nan)
    at_limit = np.zeros(G, dtype=bool)
    ok = (k > 1) & np.isfinite(tau2)
    if not ok.any():
        return low, high, at_limit
    idx = np.nonzero(ok)[0]
    rows = idx if idx.size < G else slice(None)        # all rows: no copies of Y, V, mask
    Yi, Vi, Mi = Y[rows], V[rows], mask[rows]
    df = (k[idx] - 1).astype(float)
    alpha = 1.0 - level / 100.0
    crit_u = chdtri(df, alpha / 2.0)           # upper alpha/2 quantile
    crit_l = chdtri(df, 1.0 - alpha / 2.0)     # lower alpha/2 quantile
    tmax = np.maximum(100.0, 10.0 * tau2[idx])
    zeros = np.zeros(idx.size)
    if q0 is None:
        q_min, dq_min = generalized_q(Yi, Vi, Mi, zeros)
    else:
        q_min = np.asarray(q0)[idx]
        dq_min = None if dq0 is None else np.asarray(dq0)[idx]
    q_max, _ = generalized_q(Yi, Vi, Mi, tmax)

    lo = np.full(idx.size, np.nan)
    hi = np.full(idx.size, np.nan)
    # upper bound (metafor's order: the lower-bound branch may overwrite both)
    all_below = q_min < crit_l
    hi_limit = ~all_below & (q_max > crit_l)
    solve_hi = ~all_below & ~hi_limit
    lo[all_below] = 0.0
    hi[all_below] = 0.0
    hi[hi_limit] = tmax[hi_limit]
    if solve_hi.any():
        s = np.nonzero(solve_hi)[0]
        at = s if s.size < idx.size else slice(None)
        root, _ = solve_q(Yi[at], Vi[at], Mi[at], crit_l[s], zeros[s], tmax[s],
                          at_lo=_at(q_min, dq_min, s))
        hi[s] = root
    # lower bound
    both_limit = q_max > crit_u
    lo_zero = ~both_limit & (q_min < crit_u)
    solve_lo = ~both_limit & ~lo_zero
    lo[both_limit] = tmax[both_limit]
    hi[both_limit] = tmax[both_limit]
    lo[lo_zero] = 0.0
    if solve_lo.any():
        s = np.nonzero(solve_lo)[0]
        at = s if s.size < idx.size else slice(None)
        root, _ = solve_q(Yi[at], Vi[at], Mi[at], crit_u[s], zeros[s], tmax[s],
                          at_lo=_at(q_min, dq_min, s))
        lo[s] = root
    low[idx] = lo
    high[idx] = hi
    at_limit[idx] = hi_limit | both_limit
    return low, high, at_limit


def _at(q, dq, s):
    """Q and Q' at τ² = 0 of rows ``s``, for ``solve_q(at_lo=)`` (None when Q' is not known)."""
    return None if dq is None else (q[s], dq[s])


def fit_batch(Y, V, mask=None, *, method="REML", hksj=False, pi="hts", level=95.0,
              tol=DEFAULT_TOL, maxiter=DEFAULT_MAXITER, beside=None) -> BatchFit:
    """Fit ``rma(yi, vi, method=method, test="knha" if hksj else "z")`` to every row.

    Analysis scale only (no back-transformation). Groups whose τ² iteration
    does not converge are NaN with ``converged=False`` and a message; the
    others are unaffected. Each group's numbers equal those of fitting it
    alone (the only coupling is that rows are computed side by side).
    ``beside``: a fit of the same ``Y, V, mask`` by another method, whose
    τ²-free parts (``s²``, Cochran's Q) are taken instead of computed again
    (the common-effect fit beside a random-effects one: two passes over
    10^6 studies fewer).
    """
    method, pi, level = _check_options(method, pi, level)
    Y, V, mask, k = as_batch(Y, V, mask)
    G = Y.shape[0]
    if (k == 0).any():
        raise UsageError(f"no studies to pool in group {int(np.nonzero(k == 0)[0][0]) + 1}")
    kf = k.astype(float)
    alpha = 1.0 - level / 100.0
    est = estimate_tau2(method, Y, V, mask, tol=tol, maxiter=maxiter)
    tau2 = est.tau2                                       # NaN where not converged
    # Fisher scoring computed s² for its stopping rule; the FE fit beside takes the other fit's
    s2 = beside.s2 if beside is not None else est.s2 if est.s2 is not None else typical_variance(V, mask)

    W = np.where(mask, 1.0 / (V + tau2[:, None]), 0.0)
    sw = W.sum(axis=1)
    theta = (W * Y).sum(axis=1) / sw
    se = np.sqrt(1.0 / sw)
    weights = 100.0 * W / sw[:, None]

    # HKSJ needs k >= 2; metafor falls back to z for k = 1
    use_t = np.full(G, bool(hksj)) & (k > 1)
    df = np.where(use_t, kf - 1.0, np.nan)
    if hksj:
        rss, _ = generalized_q(Y, V, mask, tau2)   # Σw(y-θ)², computed stably
        with np.errstate(invalid="ignore", divide="ignore"):
            s2w = np.where(rss <= _EPS, 0.0, rss / (kf - 1.0))
        se = np.where(use_t, se * np.sqrt(s2w), se)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = theta / se
    dft = np.where(use_t, df, 1.0)
    crit = np.where(use_t, stdtrit(dft, 1.0 - alpha / 2.0), ndtri(1.0 - alpha / 2.0))
    pval = np.where(use_t, 2.0 * stdtr(dft, -np.abs(stat)), 2.0 * ndtr(-np.abs(stat)))
    ci_low = theta - crit * se
    ci_high = theta + crit * se

    # Cochran's Q with FE weights; k = 1 gives metafor's Q = 0, p = 1
    if beside is None:
        q_fe, dq_fe = generalized_q(Y, V, mask, np.zeros(G))
        q = np.where(k > 1, np.maximum(q_fe, 0.0), 0.0)
    else:
        q = beside.q
    q_df = k - 1
    q_pval = np.where(k > 1, chdtrc(np.maximum(kf - 1.0, 1.0), q), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "FE":
            # metafor: max(0, 100 (Q - df)/Q), which is 0 also when Q = 0
            i2 = np.where(q > 0, np.maximum(0.0, 100.0 * (q - (kf - 1.0)) / q), 0.0)
            h2 = q / (kf - 1.0)
        else:
            i2 = 100.0 * tau2 / (s2 + tau2)
            h2 = tau2 / s2 + 1.0
    i2 = np.where(k > 1, i2, 0.0)
    h2 = np.where(k > 1, h2, 1.0)

    # prediction interval
    pi_low = np.full(G, np.nan)
    pi_high = np.full(G, np.nan)
    pi_method: list = [None] * G
    if method != "FE":
        if pi == "hts":
            has = k >= 3
            crit_pi = stdtrit(np.maximum(kf - 2.0, 1.0), 1.0 - alpha / 2.0)
        else:
            has = np.ones(G, dtype=bool)
            crit_pi = crit
        has = has & est.converged
        half = crit_pi * np.sqrt(tau2 + se * se)
        pi_low = np.where(has, theta - half, np.nan)
        pi_high = np.where(has, theta + half, np.nan)
        for g in range(G):
            if has[g]:
                pi_method[g] = "hts" if pi == "hts" else ("t" if use_t[g] else "z")

    # Q-profile CIs of τ², I², H²
    nan = np.full(G, np.nan)
    t_lo, t_hi, at_limit = nan, nan, np.zeros(G, dtype=bool)
    if method != "FE":
        t_lo, t_hi, at_limit = qprofile_tau2_ci(Y, V, mask, tau2, level,
                                                q0=q_fe if beside is None else None,
                                                dq0=dq_fe if beside is None else None)
    with np.errstate(divide="ignore", invalid="ignore"):
        i2_lo = 100.0 * t_lo / (s2 + t_lo)
        i2_hi = 100.0 * t_hi / (s2 + t_hi)
        h2_lo = t_lo / s2 + 1.0
        h2_hi = t_hi / s2 + 1.0

    ratio = variance_ratio(V, mask)
    notes = []
    for g in range(G):
        n = []
        if not est.converged[g]:
            n.append(est.messages[g])
        if ratio[g] >= VARIANCE_RATIO_WARN:
            n.append(variance_ratio_note(ratio[g]))
        if k[g] == 1:
            n.append("k = 1: the pooled effect is that study's estimate; no heterogeneity can be estimated")
            if hksj:
                n.append("HKSJ needs k >= 2; a z test was used (as metafor)")
        elif method != "FE":
            if k[g] == 2:
                n.append("k = 2: tau² is very imprecise")
            if est.truncated[g]:
                n.append(f"{method} estimate of tau² was negative and is truncated at 0")
            elif est.converged[g] and tau2[g] <= 1e-8 * s2[g]:
                n.append("tau² is estimated at (or numerically at) its boundary 0")
            n.extend(est.iteration_notes(g))
            if at_limit[g]:
                n.append(f"Q-profile CI of tau² reaches the search limit {max(100.0, 10 * tau2[g]):g}; "
                         "the upper bound is at least this")
            if pi == "hts" and k[g] < 3:
                n.append("the hts prediction interval needs k >= 3 (t with k-2 df); none given")
        if use_t[g] and se[g] == 0.0:
            n.append("HKSJ: the weighted residuals are all 0, so se = 0 (as metafor); the CI has no width")
        notes.append(tuple(n))

    iterations = est.iterations
    return BatchFit(
        method=method, level=level, hksj=bool(hksj), pi=pi, k=k,
        theta=theta, se=se, theta_ci_low=ci_low, theta_ci_high=ci_high,
        stat=stat, pval=pval, test=np.where(use_t, "t", "z"), df=df,
        tau2=tau2, tau=np.sqrt(tau2), se_tau2=est.se_tau2, i2=i2, h2=h2,
        q=q, q_df=q_df, q_pval=q_pval, s2=s2,
        theta_pi_low=pi_low, theta_pi_high=pi_high, pi_method=tuple(pi_method),
        tau2_ci_low=t_lo, tau2_ci_high=t_hi, i2_ci_low=i2_lo, i2_ci_high=i2_hi,
        h2_ci_low=h2_lo, h2_ci_high=h2_hi, iterations=iterations,
        weights=weights, mask=mask, converged=est.converged.copy(), messages=est.messages,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------
# PoolResult (one group, with the natural scale)
# ---------------------------------------------------------------------------

def _back(measure, x, ni, scale=None):
    if measure == "GEN" and scale is None:
        return np.asarray(x, dtype=float)
    from msc_meta.effects import transform_back

    return np.asarray(transform_back(measure, x, ni=ni, scale=scale), dtype=float)


def _scale_values(fit: BatchFit, groups) -> np.ndarray:
    """θ, its CI and PI of ``groups`` on the analysis scale, (len(groups), 5)."""
    return np.stack([fit.theta[groups], fit.theta_ci_low[groups], fit.theta_ci_high[groups],
                     fit.theta_pi_low[groups], fit.theta_pi_high[groups]], axis=-1)


def result_of(fit: BatchFit, g: int, *, measure="GEN", ni=None, scale=None, nat=None) -> PoolResult:
    """The PoolResult of group ``g`` of a batch fit; natural scale via ``transform_back``.

    ``ni`` (sample sizes of that group's studies) is needed for PFT, whose
    back-transformation uses their harmonic mean (metafor ``transf.ipft.hm``).
    ``nat``: the 5 natural-scale values already back-transformed (``pool_rma_batch``
    does all groups at once; element-wise, so the same numbers).
    """
    measure = str(measure).upper()
    if not fit.converged[g]:
        raise ComputationError(fit.messages[g])
    if measure == "PFT" and ni is None:
        raise UsageError("PFT back-transformation needs the studies' sample sizes (ni)")
    if nat is None:
        nat = _back(measure, _scale_values(fit, g), ni, scale)
    return results_of(fit, [g], measure=measure, nat=np.asarray(nat, dtype=float)[None, :])[0]


def pool_rma_batch(Y, V, mask=None, *, method="REML", measure="GEN", ni=None, hksj=False,
                   pi="hts", level=95.0, errors="raise", tol=DEFAULT_TOL,
                   maxiter=DEFAULT_MAXITER, scale=None) -> list:
    """:func:`fit_batch` then one PoolResult per group.

    ``ni`` is (groups, kmax) like ``Y`` (needed for PFT). ``errors="raise"``
    raises ComputationError for the first group that did not converge;
    ``errors="none"`` puts None in its place instead.
    """
    _check_errors(errors)
    fit = fit_batch(Y, V, mask, method=method, hksj=hksj, pi=pi, level=level, tol=tol, maxiter=maxiter)
    return _results(fit, measure, ni, errors, scale)


def pool_rma_pair(Y, V, mask=None, *, method="REML", measure="GEN", ni=None, hksj=False,
                  pi="hts", level=95.0, errors="raise", tol=DEFAULT_TOL,
                  maxiter=DEFAULT_MAXITER, scale=None) -> tuple[list, list]:
    """:func:`pool_rma_batch` with ``method`` and with ``FE`` (no HKSJ) on the same studies.

    The common-effect fit shown beside a random-effects one: the same numbers as a
    second ``pool_rma_batch(method="FE", hksj=False)``, but it takes ``s²`` and
    Cochran's Q from the first fit (``fit_batch(beside=)``) instead of computing
    them again. The first fit's ``errors`` are raised before the second is made.
    """
    _check_errors(errors)
    kw = dict(pi=pi, level=level, tol=tol, maxiter=maxiter)
    fit = fit_batch(Y, V, mask, method=method, hksj=hksj, **kw)
    results = _results(fit, measure, ni, errors, scale)
    common = fit_batch(Y, V, mask, method="FE", hksj=False, beside=fit, **kw)
    return results, _results(common, measure, ni, errors, scale)


def _check_errors(errors):
    if errors not in ("raise", "none"):
        raise UsageError(f"errors must be 'raise' or 'none', got {errors!r}")


def _results(fit: BatchFit, measure, ni, errors, scale) -> list:
    """The PoolResult of every group of ``fit`` (None, or raised, where it did not converge)."""
    ni_rows = None if ni is None else np.asarray(ni, dtype=float).reshape(fit.mask.shape)
    # every group's natural scale in one call, unless it depends on the group's ni (PFT)
    nat_all = None
    if str(measure).upper() != "PFT" and fit.groups > 1:
        nat_all = _back(str(measure).upper(), _scale_values(fit, slice(None)), None, scale)
    out = []
    for g in range(fit.groups):
        if not fit.converged[g]:
            if errors == "raise":
                where = f" (group {g + 1})" if fit.groups > 1 else ""
                raise ComputationError(fit.messages[g] + where)
            out.append(None)
            continue
        if nat_all is not None:
            out.append(g)           # built below, all groups at once
            continue
        ni_g = None if ni_rows is None else ni_rows[g][fit.mask[g]]
        out.append(result_of(fit, g, measure=measure, ni=ni_g, scale=scale))
    if nat_all is not None:
        done = [g for g in out if type(g) is int]
        for g, result in zip(done, results_of(fit, done, measure=measure, nat=nat_all[done])):
            out[g] = result
    return out


def results_of(fit: BatchFit, groups, *, measure, nat) -> list:
    """:func:`result_of` of the converged ``groups`` of ``fit``, each the same PoolResult.

    Every array is turned into Python numbers once (``tolist``), not one
    ``float()`` per field and group: ``--by`` and ``export --all`` build two
    results per analysis for 10^4 analyses. ``nat``: the natural-scale values
    of those groups (len(groups), 5): estimate, CI and PI bounds.
    """
    from msc_meta.pooling.results import build_results

    measure = str(measure).upper()
    idx = np.asarray(groups, dtype=np.int64)

    def col(x):
        return np.asarray(x)[idx].tolist()

    def ints(x):
        return np.asarray(x)[idx].astype(np.int64).tolist()

    def opt(x, where=None, *, picked=False):       # picked: x holds these groups only
        x = np.asarray(x, dtype=float)
        x = x if picked else x[idx]
        keep = np.isfinite(x) if where is None else np.isfinite(x) & where
        return [v if ok else None for v, ok in zip(x.tolist(), keep.tolist())]

    random = fit.method != "FE"
    t_test = (np.asarray(fit.test)[idx] == "t")
    has_pi = np.array([fit.pi_method[g] is not None for g in idx.tolist()], dtype=bool)
    nat_g = np.asarray(nat, dtype=float)
    weights = _weights_of(fit, idx)
    n = idx.size
    iterations = ints(fit.iterations) if registry.method(fit.method).fisher_scoring else [None] * n
    none = [None] * n
    columns = dict(
        measure=[measure] * n, method=[fit.method] * n, k=ints(fit.k),
        theta=col(fit.theta), se=col(fit.se),
        theta_ci_low=col(fit.theta_ci_low), theta_ci_high=col(fit.theta_ci_high),
        estimate=nat_g[:, 0].tolist(), ci_low=nat_g[:, 1].tolist(), ci_high=nat_g[:, 2].tolist(),
        stat=col(fit.stat), pval=col(fit.pval), tau2=col(fit.tau2), tau=col(fit.tau),
        i2=col(fit.i2), h2=col(fit.h2), q=col(fit.q), q_df=ints(fit.q_df), q_pval=col(fit.q_pval),
        weights=weights, level=[fit.level] * n,
        test=["t" if t else "z" for t in t_test.tolist()],
        df=[v if t else None for v, t in zip(col(fit.df), t_test.tolist())],
        hksj=(t_test & bool(fit.hksj)).tolist(), random=[random] * n,
        se_tau2=opt(fit.se_tau2) if random else none,
        theta_pi_low=opt(fit.theta_pi_low, has_pi), theta_pi_high=opt(fit.theta_pi_high, has_pi),
        pi_low=opt(nat_g[:, 3], has_pi, picked=True),
        pi_high=opt(nat_g[:, 4], has_pi, picked=True),
        pi_method=[fit.pi_method[g] for g in idx.tolist()],
        tau2_ci_low=opt(fit.tau2_ci_low), tau2_ci_high=opt(fit.tau2_ci_high),
        i2_ci_low=opt(fit.i2_ci_low), i2_ci_high=opt(fit.i2_ci_high),
        h2_ci_low=opt(fit.h2_ci_low), h2_ci_high=opt(fit.h2_ci_high),
        iterations=iterations, notes=[fit.notes[g] for g in idx.tolist()],
    )
    return build_results(columns, n)


def _weights_of(fit, idx) -> list:
    """The study weights of groups ``idx`` of ``fit``, a tuple of Python floats each."""
    if idx.size == 1:       # one pool (of up to 10^6 studies): no copies of its weights
        g = int(idx[0])
        w = fit.weights[g] if fit.mask[g].all() else fit.weights[g][fit.mask[g]]
        return [tuple(np.asarray(w, dtype=float).tolist())]
    mask = fit.mask[idx]
    cut = np.cumsum(mask.sum(axis=1))[:-1].tolist()
    flat = np.asarray(fit.weights[idx][mask], dtype=float).tolist()
    return [tuple(flat[a:b]) for a, b in zip([0] + cut, cut + [len(flat)])]


def pool_rma(yi, vi, *, method="REML", measure="GEN", ni=None, hksj=False, pi="hts",
             level=95.0, tol=DEFAULT_TOL, maxiter=DEFAULT_MAXITER, scale=None) -> PoolResult:
    """Pool one set of studies as metafor ``rma(yi, vi, method=, test=)``.

    ``method``: FE, DL, REML, ML, PM, HE, SJ, HS or EB. ``hksj=True`` is
    ``test="knha"``. ``pi``: "hts" (t, k-2 df) or "z" (metafor predict()).
    ``measure`` names the analysis scale for the natural-scale fields
    (GEN = no transformation); PFT needs ``ni``. Raises ComputationError when
    an iterative estimator does not converge, naming an alternative.
    """
    Y, V, mask, ni_rows = _one_group(yi, vi, ni)
    return pool_rma_batch(Y, V, mask, method=method, measure=measure, ni=ni_rows, hksj=hksj, pi=pi,
                          level=level, tol=tol, maxiter=maxiter, scale=scale)[0]


def pool_rma_common(yi, vi, *, method="REML", measure="GEN", ni=None, hksj=False, pi="hts",
                    level=95.0, tol=DEFAULT_TOL, maxiter=DEFAULT_MAXITER,
                    scale=None) -> tuple[PoolResult, PoolResult]:
    """:func:`pool_rma` with ``method`` and the common-effect (FE) fit beside it (:func:`pool_rma_pair`)."""
    Y, V, mask, ni_rows = _one_group(yi, vi, ni)
    results, commons = pool_rma_pair(Y, V, mask, method=method, measure=measure, ni=ni_rows,
                                     hksj=hksj, pi=pi, level=level, tol=tol, maxiter=maxiter,
                                     scale=scale)
    return results[0], commons[0]


def _one_group(yi, vi, ni):
    """``Y, V, mask`` and ``ni=`` of :func:`pool_rma_batch` for one set of studies."""
    yi = np.asarray(yi, dtype=float).reshape(-1)
    vi = np.asarray(vi, dtype=float).reshape(-1)
    if yi.shape != vi.shape:
        raise UsageError(f"yi and vi differ in length ({yi.size} and {vi.size})")
    if yi.size == 0:
        raise UsageError("no studies to pool")
    ni_rows = None if ni is None else np.asarray(ni, dtype=float).reshape(1, -1)
    return yi[None, :], vi[None, :], np.ones((1, yi.size), dtype=bool), ni_rows
