"""Fit the pooled studies with the method the options name (registry.method).

Inverse-variance methods pool ``yi, vi`` (``rma.pool_rma``, as metafor
``rma()``; a random-effects fit also gets the common-effect fit shown
beside it); Mantel-Haenszel and Peto pool the raw 2x2 tables (``mh``, as
``rma.mh()`` and ``rma.peto()``); the GLMM fits the raw counts by their
binomial likelihood (``glmm``, as ``rma.glmm()``). A single study gets its
own Wald estimate (:func:`single_study_result`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from msc_meta import _dist as special
from msc_meta import registry
from msc_meta.pooling.results import PoolResult


def fit_studies(measure, options, rows, yi, vi, ni) -> tuple[PoolResult, PoolResult | None]:
    """The requested fit of ``rows`` and, for a random-effects fit, the FE fit beside it."""
    method = registry.method(options.method)
    if method.kind == "glmm":
        return fit_glmm(measure, rows, pi=options.pi, level=options.level), None
    if not method.inverse_variance:
        from msc_meta.pooling import mh

        tables = [_column(rows, name) for name in registry.COUNTS_TWO_ARMS]
        if method.name == "MH":
            return mh.pool_mh(measure, *tables, level=options.level, cc=options.cc), None
        return mh.pool_peto(*tables, level=options.level), None

    from msc_meta.pooling.rma import pool_rma, pool_rma_common

    kw = dict(method=method.name, measure=measure, ni=ni, hksj=options.hksj, pi=options.pi,
              level=options.level, scale=_scale(options))
    if method.kind == "common":
        return pool_rma(yi, vi, **kw), None
    return pool_rma_common(yi, vi, **kw)      # the FE fit beside it shares s² and Q


def fit_many(measure, options, groups) -> list[tuple[PoolResult, PoolResult | None]]:
    """:func:`fit_studies` for many groups of k >= 2 at once (``--by``, ``export --all``).

    ``groups``: ``(rows, yi, vi, ni)`` per group. Inverse-variance methods
    are fitted in one vectorised pass (``rma.pool_rma_batch``: the same
    arithmetic as one group alone, padded), the common-effect fit beside a
    random-effects one in a second; other methods group by group. A group
    that does not converge raises the error :func:`fit_studies` raises for it.
    """
    method = registry.method(options.method)
    if not method.inverse_variance or len(groups) < 2:
        from msc_meta.progress import progress

        # GLMM, MH and Peto fit group by group: a bar on a terminal when there are many
        with progress(len(groups), f"fitting {method.name}", min_steps=20) as advance:
            fits = []
            for group in groups:
                fits.append(fit_studies(measure, options, *group))
                advance()
        return fits
    from msc_meta.pooling.rma import pool_rma_batch, pool_rma_pair

    Y, V, N, mask = _padded(groups)
    kw = dict(method=method.name, hksj=options.hksj, measure=measure, ni=N, pi=options.pi,
              level=options.level, errors="none", scale=_scale(options))
    if method.kind == "common":
        results, commons = pool_rma_batch(Y, V, mask, **kw), [None] * len(groups)
    else:
        results, commons = pool_rma_pair(Y, V, mask, **kw)
    for group, result in zip(groups, results):
        if result is None:
            fit_studies(measure, options, *group)     # raises this group's own error
    return list(zip(results, commons))


def _padded(groups):
    kmax = max(len(g[1]) for g in groups)
    Y = np.zeros((len(groups), kmax))
    V = np.ones((len(groups), kmax))
    N = np.ones((len(groups), kmax))
    mask = np.zeros((len(groups), kmax), dtype=bool)
    for row, (_, yi, vi, ni) in enumerate(groups):
        k = len(yi)
        Y[row, :k], V[row, :k], mask[row, :k] = yi, vi, True
        N[row, :k] = ni if ni is not None else 1.0
    return Y, V, N, mask


def fit_glmm(measure, rows, *, pi, level) -> PoolResult:
    """Binomial-normal GLMM on the raw counts (metafor ``rma.glmm``).

    PLO: random-intercept logistic model (``rma.glmm(measure="PLO")``); OR:
    unconditional model with fixed study effects (``model="UM.FS"``).
    metafor's ``predict()`` gives a GLMM a normal-quantile prediction
    interval; under ``pi="hts"`` (the default of ``pool``) the interval is
    ``beta -/+ t(k-2) sqrt(se^2 + tau^2)`` as for every other random-effects
    fit (Higgins, Thompson & Spiegelhalter 2009), undefined for k < 3. The
    variances behind I² use metafor's default ``add=1/2``, whatever ``cc``.
    """
    from msc_meta.pooling import glmm

    x, n = _column(rows, "events_t"), _column(rows, "n_t")
    if registry.measure(measure).two_arm:
        c, m = _column(rows, "events_c"), _column(rows, "n_c")
        result = glmm.glmm_or(x, n, c, m, level=level, cc=0.5).pool
    else:
        result = glmm.glmm_plo(x, n, level=level, cc=0.5).pool
    if pi != "hts":
        return result
    k = result.k
    if k < 3:
        return dataclasses.replace(result, theta_pi_low=None, theta_pi_high=None, pi_low=None,
                                   pi_high=None, pi_method="hts")
    alpha = 1.0 - level / 100.0
    crit = float(special.stdtrit(k - 2, 1.0 - alpha / 2.0))
    half = crit * math.sqrt(result.se ** 2 + result.tau2)
    lo, hi = result.theta - half, result.theta + half
    nat = back_transform(measure, np.array([lo, hi]), None)
    return dataclasses.replace(result, theta_pi_low=lo, theta_pi_high=hi,
                               pi_low=float(nat[0]), pi_high=float(nat[1]), pi_method="hts")


def _scale(options):
    """The scale of generic effects (GEN --scale), None for every other measure."""
    return getattr(options, "scale", None)


def single_study_result(measure, method, yi, vi, ni, level, scale=None) -> PoolResult:
    """k = 1: the study's own estimate with a z-based CI and no heterogeneity.

    metafor fits k = 1 too (tau2 = 0, QE = 0, QEp = 1); heterogeneity is
    reported as missing here because nothing was estimated. The CI is
    z-based even under HKSJ: a t with k - 1 = 0 df does not exist.
    """
    se = math.sqrt(vi)
    z = float(special.ndtri(0.5 + level / 200.0))
    low, high = yi - z * se, yi + z * se
    stat = yi / se if se > 0 else math.nan
    pval = float(2.0 * special.ndtr(-abs(stat))) if math.isfinite(stat) else math.nan
    nat = back_transform(measure, np.array([yi, low, high]), ni, scale)
    nan = math.nan
    return PoolResult(
        measure=measure, method=method, k=1, theta=float(yi), se=se,
        theta_ci_low=float(low), theta_ci_high=float(high),
        estimate=float(nat[0]), ci_low=float(nat[1]), ci_high=float(nat[2]),
        stat=float(stat), pval=pval, tau2=nan, tau=nan, i2=nan, h2=nan,
        q=0.0, q_df=0, q_pval=nan, weights=(100.0,), level=level, test="z", df=None,
        hksj=False, random=registry.method(method).kind == "random",
    )


def back_transform(measure, x, ni, scale=None) -> np.ndarray:
    """Analysis scale -> natural scale (``effects.transform_back``; GEN on ``scale``) as a float array."""
    from msc_meta.effects import transform_back

    return np.asarray(transform_back(measure, np.asarray(x, dtype=float), ni=ni, scale=scale),
                      dtype=float)


def _column(rows, name) -> np.ndarray:
    from msc_meta.data.columns import rows_column

    return rows_column(rows, name)


__all__ = ["back_transform", "fit_glmm", "fit_many", "fit_studies", "single_study_result"]
