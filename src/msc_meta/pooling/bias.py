"""Small-study effects: Egger's regression test and trim-and-fill, as metafor.

* ``egger_test`` is metafor ``regtest(res)`` with its defaults
  (``model = "rma"``, ``predictor = "sei"``): the meta-regression
  ``yi = b0 + b1 sei_i`` fitted with the pooled model's tau² method (and its
  Knapp-Hartung t test if the pool used one); the test of ``b1 = 0`` is the
  test for funnel-plot asymmetry (Egger et al. 1997, BMJ 315:629; Sterne &
  Egger 2005), and ``b0`` is the "limit estimate" at sei = 0.
* ``trim_and_fill`` is metafor ``trimfill(res)``: estimator L0 (Duval &
  Tweedie 2000, Biometrics 56:455), side chosen from the sign of the Egger
  slope, studies mirrored about the trimmed estimate, and the filled data
  refitted with the same method. The filled model keeps the pooled model's
  test and level (as ``trimfill(res, test = res$test)``; metafor's bare
  ``trimfill()`` refits with z).

Both have little power with few studies; callers must say so (k < 10).
The funnel plot's data (yi, sei and the filled studies) are in the results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from msc_meta import registry
from msc_meta.errors import ComputationError, UsageError
from msc_meta.pooling.metareg import MetaRegression, _raw_counts_only, fit_mods, regression_methods

FEW_STUDIES = 10
FEW_STUDIES_WARNING = ("fewer than 10 studies: small-study tests have too little power "
                       "to be meaningful")


@dataclass(frozen=True)
class EggerTest:
    """metafor ``regtest()``: meta-regression of yi on sei."""

    stat: float               # z, or t under Knapp-Hartung ("zval" in metafor)
    pval: float
    test: str                 # "z" or "t"
    df: int | None            # k - 2 under Knapp-Hartung
    slope: float              # coefficient of sei (the asymmetry)
    slope_se: float
    limit_estimate: float     # intercept: the effect at sei = 0 (analysis scale)
    limit_ci_low: float
    limit_ci_high: float
    fit: MetaRegression

    def to_dict(self) -> dict:
        return {"stat": _f(self.stat), "pval": _f(self.pval), "test": self.test, "df": self.df,
                "slope": _f(self.slope), "slope_se": _f(self.slope_se),
                "limit_estimate": _f(self.limit_estimate), "limit_ci_low": _f(self.limit_ci_low),
                "limit_ci_high": _f(self.limit_ci_high)}


@dataclass(frozen=True)
class TrimFill:
    """metafor ``trimfill()`` result; values on the analysis scale."""

    k0: int                    # studies filled
    se_k0: float
    side: str                  # "left" or "right": where studies were judged missing
    estimator: str             # "L0"
    k: int                     # studies in the filled model (observed + filled)
    theta: float               # filled model's pooled effect
    se: float
    theta_ci_low: float
    theta_ci_high: float
    tau2: float
    stat: float
    pval: float
    yi_filled: tuple[float, ...]   # the imputed studies (funnel plot), analysis scale
    vi_filled: tuple[float, ...]
    fill_source: tuple[int, ...]   # index (in the input order) of the study each fill mirrors

    def to_dict(self) -> dict:
        return {"k0": self.k0, "se_k0": _f(self.se_k0), "side": self.side,
                "estimator": self.estimator, "k": self.k, "theta": _f(self.theta),
                "se": _f(self.se), "theta_ci_low": _f(self.theta_ci_low),
                "theta_ci_high": _f(self.theta_ci_high), "tau2": _f(self.tau2),
                "yi_filled": [_f(v) for v in self.yi_filled],
                "vi_filled": [_f(v) for v in self.vi_filled]}


@dataclass(frozen=True)
class SmallStudyResult:
    k: int
    method: str
    egger: EggerTest | None
    trimfill: TrimFill | None
    yi: tuple[float, ...]            # funnel plot data, analysis scale
    sei: tuple[float, ...]
    warning: str | None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _f(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _check(yi, vi, method):
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    if yi.shape != vi.shape or yi.ndim != 1:
        raise ComputationError("yi and vi must be 1-D arrays of the same length")
    method = method.upper()
    if method not in regression_methods():
        raise UsageError(f"small-study tests need an inverse-variance model: method {method} "
                         f"is not available (choose one of {', '.join(regression_methods())})")
    return yi, vi, method


def egger_test(yi, vi, *, method="REML", knha=False, level=95.0) -> EggerTest:
    """Egger's regression test as metafor ``regtest(rma(yi, vi, method=, test=))``.

    Fits ``rma(yi, vi, mods = ~ sqrt(vi), method=, test=)`` and tests the
    slope of sei: z test, or t with k - 2 df under Knapp-Hartung. Needs
    k >= 3 for random-effects methods (two coefficients and tau²).
    """
    yi, vi, method = _check(yi, vi, method)
    needed = 2 if method == "FE" else 3
    if len(yi) < needed:
        raise UsageError(f"Egger's test needs at least {needed} studies with method {method} "
                         f"(intercept, slope{'' if method == 'FE' else ' and tau²'}); k = {len(yi)}")
    sei = np.sqrt(vi)
    X = np.column_stack([np.ones_like(yi), sei])
    fit = fit_mods(yi, vi, X, names=("intercept", "sei"), method=method, knha=knha,
                   level=level, r2=False)
    if fit.p != 2:
        raise ComputationError("Egger's test: the standard errors are all equal, "
                               "so there is no slope to test")
    return EggerTest(stat=fit.stat[1], pval=fit.pval[1], test=fit.test, df=fit.ddf,
                     slope=fit.beta[1], slope_se=fit.se[1], limit_estimate=fit.beta[0],
                     limit_ci_low=fit.ci_low[0], limit_ci_high=fit.ci_high[0], fit=fit)


def _intercept_fit(yi, vi, method, knha=False, level=95.0) -> MetaRegression:
    return fit_mods(yi, vi, np.ones((len(yi), 1)), names=("intercept",), method=method,
                    knha=knha, level=level, r2=False)


def trim_and_fill(yi, vi, *, method="REML", knha=False, level=95.0, side=None,
                  maxiter=100) -> TrimFill:
    """Trim-and-fill as metafor ``trimfill(res)`` with estimator L0.

    Port of metafor 3.8 ``trimfill.rma.uni``: side from the sign of the slope
    of ``rma(yi, vi, mods = sqrt(vi))`` (negative: studies missing on the
    right); outcomes flipped so the missing side is the left; then, until k0
    settles, fit the intercept-only model to the k - k0 smallest outcomes,
    rank |yi - beta| (ties by order), ``S_r`` = sum of the ranks of positive
    deviations and ``L0 = (4 S_r - k (k + 1)) / (2k - 1)``, rounded half to
    even and truncated at 0. The k0 largest outcomes are mirrored about the
    last trimmed estimate (with their variances) and all k + k0 refitted.
    """
    yi, vi, method = _check(yi, vi, method)
    k = len(yi)
    if k < 2:
        raise UsageError("trim-and-fill needs at least 2 studies")
    if side is None:
        if k < (2 if method == "FE" else 3):
            raise UsageError(f"trim-and-fill picks its side from the regression of yi on sei, "
                             f"which needs at least {2 if method == 'FE' else 3} studies with "
                             f"method {method}; k = {k}")
        X = np.column_stack([np.ones(k), np.sqrt(vi)])
        slope_fit = fit_mods(yi, vi, X, method=method, r2=False)
        side = "right" if slope_fit.p > 1 and slope_fit.beta[1] < 0 else "left"
    elif side not in ("left", "right"):
        raise UsageError("side must be 'left' or 'right'")

    sign = -1.0 if side == "right" else 1.0
    y = sign * yi
    order = np.argsort(y, kind="stable")
    y, v = y[order], vi[order]

    k0, k0_previous, iterations = 0, -1, 0
    beta = math.nan
    se_k0 = math.nan
    y_centred = y
    while k0 != k0_previous:
        k0_previous = k0
        iterations += 1
        if iterations > maxiter:
            raise ComputationError("trim-and-fill did not converge")
        if k - k0 < (1 if method == "FE" else 2):
            raise ComputationError("trim-and-fill trimmed too many studies to refit the model")
        beta = _intercept_fit(y[: k - k0], v[: k - k0], method).beta[0]
        y_centred = y - beta
        ranks = np.empty(k)
        ranks[np.argsort(np.abs(y_centred), kind="stable")] = np.arange(1, k + 1)
        signed = np.sign(y_centred) * ranks
        s_r = signed[signed > 0].sum()
        k0_raw = (4.0 * s_r - k * (k + 1)) / (2.0 * k - 1.0)
        var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0_raw ** 3 + 27 * k0_raw ** 2 + 17 * k0_raw
                  - 18 * k * k0_raw ** 2 - 18 * k * k0_raw + 6 * k ** 2 * k0_raw) / 24.0
        se_k0 = 4.0 * math.sqrt(var_sr) / (2.0 * k - 1.0) if var_sr >= 0 else math.nan
        k0 = max(0, int(np.round(k0_raw)))     # np.round: half to even, as R's round()
        se_k0 = max(0.0, se_k0) if math.isfinite(se_k0) else se_k0

    if k0 > 0:
        # Mirror the k0 most extreme outcomes about the trimmed estimate.
        y_fill = sign * (2.0 * beta - y[k - k0:])
        v_fill = v[k - k0:]
        source = tuple(int(i) for i in order[k - k0:])
        fit = _intercept_fit(np.concatenate([yi, y_fill]), np.concatenate([vi, v_fill]), method,
                             knha=knha, level=level)
    else:
        y_fill = np.empty(0)
        v_fill = np.empty(0)
        source = ()
        fit = _intercept_fit(yi, vi, method, knha=knha, level=level)
    return TrimFill(k0=k0, se_k0=float(se_k0), side=side, estimator="L0", k=fit.k,
                    theta=fit.beta[0], se=fit.se[0], theta_ci_low=fit.ci_low[0],
                    theta_ci_high=fit.ci_high[0], tau2=fit.tau2, stat=fit.stat[0],
                    pval=fit.pval[0], yi_filled=tuple(map(float, y_fill)),
                    vi_filled=tuple(map(float, v_fill)), fill_source=source)


def small_study_effects(yi, vi, *, method="REML", knha=False, level=95.0) -> SmallStudyResult:
    """Egger's test and trim-and-fill together, with the k < 10 warning.

    A test that cannot be computed (too few studies for the model, equal
    standard errors) is None with a note saying why; the warning is always
    set when k < 10 (Sterne et al. 2011, BMJ 343:d4002: below 10 studies
    these tests cannot tell chance from asymmetry).
    """
    yi, vi, method = _check(yi, vi, method)
    k = len(yi)
    notes: list[str] = []
    egger = None
    trimfill = None
    try:
        egger = egger_test(yi, vi, method=method, knha=knha, level=level)
    except (UsageError, ComputationError) as err:
        notes.append(f"Egger's test not computed: {err}")
    try:
        trimfill = trim_and_fill(yi, vi, method=method, knha=knha, level=level)
    except (UsageError, ComputationError) as err:
        notes.append(f"trim-and-fill not computed: {err}")
    warning = FEW_STUDIES_WARNING if k < FEW_STUDIES else None
    return SmallStudyResult(k=k, method=method, egger=egger, trimfill=trimfill,
                            yi=tuple(map(float, yi)), sei=tuple(map(float, np.sqrt(vi))),
                            warning=warning, notes=tuple(notes))


# --------------------------------------------------------------------------- table -> tests


@dataclass(frozen=True)
class SmallStudyAnalysis:
    """What ``msc-meta bias`` computes, with the trim-and-fill estimate on the natural scale."""

    outcome: str
    timepoint_weeks: float | None
    unit: str | None
    measure: str
    method: str
    level: float
    result: SmallStudyResult
    studies: tuple                       # msc_meta.pooling.analysis.StudyLine
    excluded: tuple                      # msc_meta.pooling.analysis.Excluded
    trimfill_estimate: float | None      # natural scale
    trimfill_ci_low: float | None
    trimfill_ci_high: float | None
    notes: tuple[str, ...]
    scale: str | None = None             # GEN: the scale of the given effects (--scale)


def study_sizes(lines, measure) -> np.ndarray:
    """escalc's ni: n_t for single-arm measures, n_t + n_c for two-arm ones (NaN where a row
    has no n, e.g. rates or generic effects: only PFT's back-transformation reads ni)."""
    two_arm = registry.measure(measure).two_arm

    def n(value):
        return math.nan if value is None else float(value)

    return np.array([n(s.n_t) + (n(s.n_c) if two_arm and s.n_c is not None else 0.0)
                     for s in lines], dtype=float)


def run_small_study(table, *, outcome, timepoint=None, unit=None, measure=None, method="REML",
                    hksj=False, cc=0.5, level=95.0, multiarm="combine", r=None,
                    scale=None) -> SmallStudyAnalysis:
    """Select rows and compute effect sizes exactly as ``pool``, then Egger and trim-and-fill.

    Every measure of the registry: the tests work on the analysis scale (yi, vi), and the
    trim-and-fill estimate is back-transformed as the measure says (GEN on its ``scale``).
    ``r`` and ``scale`` are ``pool``'s ``--r`` (paired means) and ``--scale`` (GEN).
    """
    from msc_meta.effects import transform_back
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.metareg import INVERSE_VARIANCE_ONLY, _study_notes

    method = (method or "REML").upper()
    if _raw_counts_only(method):
        raise UsageError(INVERSE_VARIANCE_ONLY.format(what="bias", method=method))
    analysis = run_pool(table, outcome=outcome, timepoint=timepoint, unit=unit, measure=measure,
                        method=method, hksj=hksj, pi="z", cc=cc, level=level, multiarm=multiarm,
                        r=r, scale=scale)
    scale = analysis.options.scale
    lines = analysis.studies
    yi = np.array([s.yi for s in lines])
    vi = np.array([s.vi for s in lines])
    result = small_study_effects(yi, vi, method=method, knha=hksj, level=level)
    estimate = low = high = None
    if result.trimfill is not None:
        tf = result.trimfill
        ni = study_sizes(lines, analysis.measure)
        ni_all = np.concatenate([ni, ni[list(tf.fill_source)]])
        nat = transform_back(analysis.measure, np.array([tf.theta, tf.theta_ci_low, tf.theta_ci_high]),
                             ni=ni_all, scale=scale)
        estimate, low, high = (float(v) for v in nat)
    rows = {row.row_number: row for row in table.rows}
    notes = list(result.notes)
    notes.extend(_study_notes(lines, [rows[s.row_number] for s in lines], analysis.measure, cc))
    if result.trimfill is not None and result.trimfill.k0 > 0:
        notes.append(f"trim-and-fill imputed {result.trimfill.k0} stud"
                     f"{'ies' if result.trimfill.k0 > 1 else 'y'} on the {result.trimfill.side}: "
                     "its adjusted estimate is a sensitivity analysis, not a corrected effect "
                     "(asymmetry has causes other than publication bias)")
    return SmallStudyAnalysis(outcome=analysis.outcome, timepoint_weeks=analysis.timepoint_weeks,
                              unit=analysis.unit, measure=analysis.measure, method=method,
                              level=float(level), result=result, studies=lines,
                              excluded=analysis.excluded, trimfill_estimate=estimate,
                              trimfill_ci_low=low, trimfill_ci_high=high, notes=tuple(notes),
                              scale=scale)
