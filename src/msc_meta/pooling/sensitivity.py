"""Leave-one-out, cumulative and influence analyses, as metafor.

* ``leave_one_out`` = metafor ``leave1out(res)``: the model refitted k times,
  each time without one study.
* ``cumulative`` = metafor ``cumul(res, order=)``: the model fitted to the
  first 1, 2, ..., k studies in the order given (ascending; ties keep the
  table order, as R's ``order()``).
* ``influence_diagnostics`` = metafor ``influence(res)`` for the
  intercept-only model (Viechtbauer & Cheung 2010, Res Synth Methods 1:112):
  externally standardised residuals, DFFITS, Cook's distance, covariance
  ratio, tau² and QE after deletion, hat values, weights, DFBETAS and
  metafor's "influential" flag.

The k sub-analyses are one vectorised call of
:func:`msc_meta.pooling.rma.fit_batch` on (k, k) arrays with a mask (row i
of the leave-one-out mask drops study i; row i of the cumulative mask keeps
the first i + 1 studies), so each row equals fitting that subset alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from msc_meta import _dist as special

from msc_meta.errors import ComputationError, UsageError

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class SubsetFit:
    """One refit of leave-one-out or cumulative analysis (analysis and natural scale)."""

    label: str                # the study omitted (leave-one-out) or added (cumulative)
    k: int
    theta: float
    se: float
    stat: float               # z, or t under HKSJ
    pval: float
    theta_ci_low: float
    theta_ci_high: float
    estimate: float
    ci_low: float
    ci_high: float
    tau2: float
    i2: float
    h2: float
    q: float
    q_pval: float
    converged: bool = True
    message: str | None = None


@dataclass(frozen=True)
class InfluenceRow:
    """metafor ``influence()`` for one study (names as metafor, snake_case)."""

    study_id: str
    rstudent: float
    dffits: float
    cooks_d: float
    cov_r: float
    tau2_del: float
    qe_del: float
    hat: float
    weight: float             # percent
    dfbetas: float
    influential: bool         # metafor's "*"


@dataclass(frozen=True)
class Sensitivity:
    """What ``msc-meta sensitivity`` computes."""

    method: str
    test: str                                  # "z" or "t"
    level: float
    k: int
    measure: str
    leave_one_out: tuple[SubsetFit, ...]
    cumulative: tuple[SubsetFit, ...]
    order: str                                 # "table order" or the column name
    influence: tuple[InfluenceRow, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    scale: str | None = None                   # GEN: the scale of the given effects (--scale)


def _prepare(yi, vi, labels):
    yi = np.asarray(yi, dtype=float).reshape(-1)
    vi = np.asarray(vi, dtype=float).reshape(-1)
    if yi.shape != vi.shape:
        raise UsageError(f"yi and vi differ in length ({yi.size} and {vi.size})")
    k = yi.size
    if k < 2:
        raise UsageError(f"sensitivity analyses need at least 2 studies; k = {k}")
    labels = tuple(str(x) for x in labels) if labels is not None else tuple(f"study {i + 1}" for i in range(k))
    if len(labels) != k:
        raise UsageError("one label per study is needed")
    return yi, vi, labels


def _needs_ni(measure) -> bool:
    """A back-transformation that needs the studies' sample sizes (PFT: transf.ipft.hm)."""
    from msc_meta import registry

    return measure is not None and registry.measure(measure).back == "ipft"


def _natural(measure, theta, lo, hi, ni_rows, scale=None):
    """Back-transform per row, as the registry says (GEN on its ``scale``); PFT uses the
    harmonic mean of each row's own ni."""
    from msc_meta.effects import transform_back

    if measure is None:
        return theta, lo, hi
    if _needs_ni(measure):
        out = np.array([transform_back(measure, np.array([t, a, b]), ni=n)
                        for t, a, b, n in zip(theta, lo, hi, ni_rows)]).reshape(-1, 3)
        return out[:, 0], out[:, 1], out[:, 2]
    nat = transform_back(measure, np.stack([theta, lo, hi]), scale=scale)
    return nat[0], nat[1], nat[2]


def _subset_fits(yi, vi, mask, labels, *, method, hksj, level, measure, ni, scale=None):
    from msc_meta.pooling.rma import fit_batch

    k = yi.size
    Y = np.broadcast_to(yi, (mask.shape[0], k))
    V = np.broadcast_to(vi, (mask.shape[0], k))
    fit = fit_batch(Y, V, mask, method=method, hksj=hksj, pi="z", level=level)
    ni_rows = None
    if _needs_ni(measure):
        if ni is None:
            raise UsageError(f"the {measure} back-transformation needs the studies' sample sizes (ni)")
        ni = np.asarray(ni, dtype=float)
        ni_rows = [ni[row] for row in mask]
    est, lo, hi = _natural(measure, fit.theta, fit.theta_ci_low, fit.theta_ci_high, ni_rows, scale)
    rows = tuple(
        SubsetFit(label=labels[g], k=int(fit.k[g]), theta=float(fit.theta[g]), se=float(fit.se[g]),
                  stat=float(fit.stat[g]), pval=float(fit.pval[g]),
                  theta_ci_low=float(fit.theta_ci_low[g]), theta_ci_high=float(fit.theta_ci_high[g]),
                  estimate=float(est[g]), ci_low=float(lo[g]), ci_high=float(hi[g]),
                  tau2=float(fit.tau2[g]), i2=float(fit.i2[g]), h2=float(fit.h2[g]),
                  q=float(fit.q[g]), q_pval=float(fit.q_pval[g]),
                  converged=bool(fit.converged[g]), message=fit.messages[g])
        for g in range(mask.shape[0]))
    return rows, fit


def leave_one_out(yi, vi, *, labels=None, method="REML", hksj=False, level=95.0,
                  measure=None, ni=None, scale=None) -> tuple[SubsetFit, ...]:
    """metafor ``leave1out(rma(yi, vi, method=, test=))``, one row per omitted study.

    Each row is the model without that study: estimate, CI, z (t) test,
    tau², I², H² and Q, plus the natural scale when ``measure`` is given
    (PFT with the harmonic mean of the remaining studies' ``ni``; GEN on its ``scale``).
    """
    yi, vi, labels = _prepare(yi, vi, labels)
    mask = ~np.eye(yi.size, dtype=bool)
    return _subset_fits(yi, vi, mask, labels, method=method, hksj=hksj, level=level,
                        measure=measure, ni=ni, scale=scale)[0]


def cumulative_order(values) -> tuple[np.ndarray, int]:
    """Ascending order of ``values`` as R's ``order()``: stable, missing values last.

    Numbers sort numerically when every present value is a number, otherwise
    everything sorts as text. Returns the permutation and how many were missing.
    """
    from msc_meta.pooling.metareg import _as_float, is_missing

    missing = [is_missing(v) for v in values]
    present = [v for v, m in zip(values, missing) if not m]
    numbers = [_as_float(v) for v in present]
    numeric = all(x is not None for x in numbers)

    def key(i):
        if missing[i]:
            return (1, 0.0, "")
        v = values[i]
        return (0, _as_float(v), "") if numeric else (0, 0.0, str(v).strip())

    order = sorted(range(len(values)), key=key)    # sorted() is stable
    return np.array(order, dtype=int), sum(missing)


def cumulative(yi, vi, *, order=None, labels=None, method="REML", hksj=False, level=95.0,
               measure=None, ni=None, scale=None) -> tuple[SubsetFit, ...]:
    """metafor ``cumul(res, order=)``: row i pools the first i + 1 studies of ``order``.

    ``order`` is a permutation of ``range(k)`` (default: input order). The
    first row is a single study (tau² = 0, z test, as metafor with k = 1).
    """
    yi, vi, labels = _prepare(yi, vi, labels)
    k = yi.size
    perm = np.arange(k) if order is None else np.asarray(order, dtype=int)
    if sorted(perm.tolist()) != list(range(k)):
        raise UsageError("order must be a permutation of the studies")
    ranks = np.empty(k, dtype=int)
    ranks[perm] = np.arange(k)
    # row g keeps the studies whose position in the order is <= g
    mask = ranks[None, :] <= np.arange(k)[:, None]
    ordered_labels = tuple(labels[i] for i in perm)
    return _subset_fits(yi, vi, mask, ordered_labels, method=method, hksj=hksj, level=level,
                        measure=measure, ni=ni, scale=scale)[0]


def influence_diagnostics(yi, vi, *, labels=None, method="REML", hksj=False,
                          level=95.0) -> tuple[InfluenceRow, ...]:
    """metafor ``influence(res)`` for ``res = rma(yi, vi, method=, test=)`` (intercept only).

    With ``w = 1/(v + tau2)`` of the full fit and, for study i, the fit
    without it (``beta_(i)``, ``vb_(i)``, ``tau2_(i)``, ``QE_(i)``, Knapp-Hartung
    factor ``s2w_(i)``, 1 for z tests), as metafor 3.8 ``influence.rma.uni``:

    * hat ``h_i = w_i / sum(w)``; weight ``100 w_i / sum(w)``;
    * rstudent ``(y_i - beta_(i)) / sqrt(s2w_(i) (v_i + tau2_(i)) + vb_(i))``;
    * dffits ``(beta - beta_(i)) / sqrt(s2w_(i) h_i (tau2_(i) + v_i))``;
    * Cook's d ``(beta - beta_(i))² / vb`` and cov.r ``vb_(i) / vb``;
    * dfbetas ``(beta - beta_(i)) / sqrt(s2w_(i) / sum_j 1/(v_j + tau2_(i)))``
      (sum over all k studies);
    * influential if ``|dffits| > 3 sqrt(p/(k-p))``, ``pchisq(cook.d, 1) > 0.5``,
      ``hat > 3p/k`` or ``|dfbetas| > 1`` (p = 1).
    """
    from msc_meta.pooling.rma import fit_batch

    yi, vi, labels = _prepare(yi, vi, labels)
    k = yi.size
    full = fit_batch(yi[None, :], vi[None, :], np.ones((1, k), dtype=bool), method=method,
                     hksj=hksj, pi="z", level=level)
    if not full.converged[0]:
        raise ComputationError(full.messages[0])
    beta = full.theta[0]
    vb = full.se[0] ** 2
    tau2 = full.tau2[0]
    w = 1.0 / (vi + tau2)
    hat = w / w.sum()
    hat = np.where(hat > 1.0 - 10 * _EPS, 1.0, hat)
    weight = 100.0 * w / w.sum()

    mask = ~np.eye(k, dtype=bool)
    dels = fit_batch(np.broadcast_to(yi, (k, k)), np.broadcast_to(vi, (k, k)), mask,
                     method=method, hksj=hksj, pi="z", level=level)
    beta_del = dels.theta
    vb_del = dels.se ** 2
    tau2_del = dels.tau2
    qe_del = dels.q
    # Knapp-Hartung factor of each deleted fit; a fit of one study uses z (s2w = 1).
    Wd = np.where(mask, 1.0 / (vi[None, :] + tau2_del[:, None]), 0.0)
    if hksj and k > 2:
        rss = (Wd * (yi[None, :] - beta_del[:, None]) ** 2).sum(axis=1)
        s2w_del = np.where(rss <= _EPS, 0.0, rss / (k - 2))
    else:
        s2w_del = np.ones(k)

    with np.errstate(divide="ignore", invalid="ignore"):
        resid = yi - beta_del
        resid = np.where(np.abs(resid) < 100 * _EPS, 0.0, resid)
        rstudent = resid / np.sqrt(vi * s2w_del + vb_del + tau2_del * s2w_del)
        dffits = (beta - beta_del) / np.sqrt(s2w_del * hat * (tau2_del + vi))
        vb_del_all = 1.0 / (1.0 / (vi[None, :] + tau2_del[:, None])).sum(axis=1)
        dfbetas = (beta - beta_del) / np.sqrt(s2w_del * vb_del_all)
        cooks_d = (beta - beta_del) ** 2 / vb
        cov_r = vb_del / vb
    p = 1
    with np.errstate(invalid="ignore"):
        influential = ((np.abs(dffits) > 3.0 * math.sqrt(p / (k - p)))
                       | (special.chdtr(p, cooks_d) > 0.5)
                       | (hat > 3.0 * p / k)
                       | (np.abs(dfbetas) > 1.0))
    bad = ~dels.converged
    influential = np.where(bad, False, influential)
    rows = []
    for i in range(k):
        nan = math.nan
        ok = not bad[i]
        rows.append(InfluenceRow(
            study_id=labels[i],
            rstudent=float(rstudent[i]) if ok else nan, dffits=float(dffits[i]) if ok else nan,
            cooks_d=float(cooks_d[i]) if ok else nan, cov_r=float(cov_r[i]) if ok else nan,
            tau2_del=float(tau2_del[i]) if ok else nan, qe_del=float(qe_del[i]) if ok else nan,
            hat=float(hat[i]), weight=float(weight[i]),
            dfbetas=float(dfbetas[i]) if ok else nan, influential=bool(influential[i])))
    return tuple(rows)


def baujat(yi, vi, *, theta: float, tau2: float, loo) -> tuple[np.ndarray, np.ndarray]:
    """metafor ``baujat(res)`` coordinates (Baujat et al. 2002, Stat Med 21:2641).

    x: each study's squared Pearson residual, its contribution to the heterogeneity,
    ``(y_i - theta)² / (v_i + tau2)`` with the full model's ``theta`` and ``tau2`` (0 for a
    common-effect model: then the x values sum to Q); y: its influence on the pooled
    result, ``(theta_(i) - theta)² / se_(i)²`` with the fit without it (``loo``, the rows of
    :func:`leave_one_out` in study order; under HKSJ its Knapp-Hartung variance, as
    metafor's ``vb``).
    """
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    tau2 = 0.0 if tau2 is None or not math.isfinite(tau2) else float(tau2)
    x = (yi - theta) ** 2 / (vi + tau2)
    theta_del = np.array([f.theta for f in loo], dtype=float)
    se_del = np.array([f.se for f in loo], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = (theta_del - theta) ** 2 / se_del ** 2
    return x, y


# --------------------------------------------------------------------------- table -> analyses


@dataclass(frozen=True)
class SensitivityAnalysis:
    """``Sensitivity`` with the selection it ran on (what ``msc-meta sensitivity`` prints)."""

    outcome: str
    timepoint_weeks: float | None
    unit: str | None
    result: Sensitivity
    full: object                         # PoolResult of the pooled model (all k studies)
    studies: tuple                       # msc_meta.pooling.analysis.StudyLine
    excluded: tuple                      # msc_meta.pooling.analysis.Excluded
    notes: tuple[str, ...]


def run_sensitivity(table, *, outcome, timepoint=None, unit=None, measure=None, method="REML",
                    hksj=False, cc=0.5, level=95.0, order_by: str | None = None,
                    multiarm="combine", r=None, scale=None) -> SensitivityAnalysis:
    """Select rows and compute effect sizes exactly as ``pool``, then the three analyses.

    ``order_by`` names the column whose ascending values order the
    cumulative analysis (ties keep table order; blanks go last, with a note).
    ``r`` and ``scale`` are ``pool``'s ``--r`` (paired means) and ``--scale`` (GEN).
    """
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.bias import study_sizes
    from msc_meta.pooling.metareg import INVERSE_VARIANCE_ONLY, _raw_counts_only, _study_notes

    method = (method or "REML").upper()
    if _raw_counts_only(method):
        raise UsageError(INVERSE_VARIANCE_ONLY.format(what="sensitivity", method=method))
    if order_by is not None:
        table.require_column(order_by)
    analysis = run_pool(table, outcome=outcome, timepoint=timepoint, unit=unit, measure=measure,
                        method=method, hksj=hksj, pi="z", cc=cc, level=level, multiarm=multiarm,
                        r=r, scale=scale)
    scale = analysis.options.scale
    lines = analysis.studies
    if len(lines) < 2:
        only = lines[0].study_id if lines else "none"
        raise UsageError(f"outcome {outcome}: sensitivity analyses need at least 2 pooled studies; "
                         f"only {only} can be pooled")
    rows = {row.row_number: row for row in table.rows}
    labels = [s.study_id for s in lines]
    yi = np.array([s.yi for s in lines])
    vi = np.array([s.vi for s in lines])
    ni = study_sizes(lines, analysis.measure)
    common = dict(labels=labels, method=method, hksj=hksj, level=level)
    notes: list[str] = []

    loo = leave_one_out(yi, vi, measure=analysis.measure, ni=ni, scale=scale, **common)
    if order_by is None:
        perm, order_label = None, "table order"
    else:
        perm, n_missing = cumulative_order([rows[s.row_number].value(order_by) for s in lines])
        order_label = order_by
        if n_missing:
            notes.append(f"cumulative analysis: {n_missing} stud{'ies' if n_missing > 1 else 'y'} "
                         f"without a value of '{order_by}' added last")
    cum = cumulative(yi, vi, order=perm, measure=analysis.measure, ni=ni, scale=scale, **common)
    infl = influence_diagnostics(yi, vi, **common)

    for fit in loo + cum:
        if not fit.converged:
            notes.append(f"{fit.label}: {fit.message}")
    flagged = [r.study_id for r in infl if r.influential]
    if flagged:
        notes.append(f"influential by metafor's criteria: {', '.join(flagged)}")
    if len(lines) < 5:
        notes.append(f"k = {len(lines)}: every leave-one-out fit rests on {len(lines) - 1} "
                     "studies; read the ranges, not the p-values")
    notes.extend(_study_notes(lines, [rows[s.row_number] for s in lines], analysis.measure, cc))
    result = Sensitivity(method=method, test="t" if hksj else "z", level=float(level),
                         k=len(lines), measure=analysis.measure, leave_one_out=loo,
                         cumulative=cum, order=order_label, influence=infl, notes=tuple(notes),
                         scale=scale)
    return SensitivityAnalysis(outcome=analysis.outcome, timepoint_weeks=analysis.timepoint_weeks,
                               unit=analysis.unit, result=result, full=analysis.result,
                               studies=lines, excluded=analysis.excluded, notes=tuple(notes))
