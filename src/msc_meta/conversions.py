"""Spread reported another way, converted to the SD (and mean) the effect sizes need.

Each function is vectorised (numpy arrays or floats, NaN for a blank cell,
NaN out where the input cannot be converted) and names its source; the
assumptions are in ``docs/methods.md``. Reference values: metafor and the
formulas evaluated in R (``tests/r/fixtures_outcomes.R``).

- :func:`sd_from_se`: SEM -> SD, ``sd = se * sqrt(n)`` (Cochrane Handbook
  6.5.2.2).
- :func:`sd_from_ci`: CI of a mean -> SD, ``sd = sqrt(n) (hi - lo) /
  (2 t_{n-1})`` (Handbook 6.5.2.2, the small-sample form).
- :func:`t_from_p`, :func:`sd_change_from_t`, :func:`sd_change_from_p`:
  a paired t statistic or two-sided p-value with n -> SD of the change
  (Handbook 6.5.2.3 and 6.5.2.8).
- :func:`sd_change_from_r`, :func:`r_from_sds`: SD of the change from the
  pre and post SDs and r, and the r they imply (Handbook 6.5.2.8).
- :func:`mean_sd_from_quantiles`: median with IQR and/or range -> mean and
  SD (Wan et al. 2014, BMC Med Res Methodol 14:135; or metafor 4's default
  "luo/wan/shi" of ``conv.fivenum()``), with its skewness test.

Imports numpy and msc_meta._dist only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msc_meta._dist import norm_ppf, t_isf
from msc_meta.errors import UsageError


def _arr(x):
    return np.asarray(x, dtype=float)


def _level(level) -> float:
    level = float(level)
    if not 0.0 < level < 100.0:
        raise UsageError(f"confidence level must be between 0 and 100 (percent), got {level:g}")
    return level


def sd_from_se(se, n):
    """SD from the standard error of a mean: ``sd = se * sqrt(n)``.

    Cochrane Handbook (version 6.4), section 6.5.2.2. Assumes ``se`` is the
    SEM of a single group of ``n`` participants (not the SE of a difference).
    NaN where se < 0 or n < 1.
    """
    se, n = np.broadcast_arrays(_arr(se), _arr(n))
    with np.errstate(invalid="ignore"):
        ok = (se >= 0) & (n >= 1)
        return np.where(ok, se * np.sqrt(np.where(ok, n, 1.0)), np.nan)


def ci_quantile(n, level=95.0, dist="t"):
    """The quantile a CI of a mean of ``n`` values is ``mean -/+ q * se`` with.

    ``dist="t"``: ``t_{n-1}`` at ``1 - (1 - level/100)/2`` (R ``qt(0.975, n - 1)``),
    what a study computing the CI from its own SD uses; the Handbook's 3.92 =
    2 x 1.96 is its large-n limit. ``dist="z"``: the normal quantile (1.96).
    """
    level = _level(level)
    q = (1.0 - level / 100.0) / 2.0
    n = _arr(n)
    if dist == "z":
        return np.full(n.shape, float(-norm_ppf(q))) if n.ndim else float(-norm_ppf(q))
    if dist != "t":
        raise UsageError(f"dist must be 't' or 'z', got {dist!r}")
    with np.errstate(invalid="ignore"):
        df = np.where(n >= 2, n - 1.0, np.nan)
    out = t_isf(np.full(df.shape, q) if df.ndim else q, df)
    return out


def sd_from_ci(ci_low, ci_high, n, level=95.0, dist="t"):
    """SD from the CI of a single group's mean.

    ``sd = sqrt(n) (hi - lo) / (2 q)``, Cochrane Handbook 6.5.2.2, with
    ``q = t_{n-1, 1-alpha/2}`` by default (the Handbook: for small samples,
    "say less than 60", divide by 2 t rather than 3.92; the t quantile is
    right for every n, since a study's CI from its own SD uses it, and tends
    to 1.96 for large n). ``dist="z"`` uses 1.96 (for a CI known to be z-based).
    Assumes a symmetric CI of a mean; NaN where hi < lo or n < 2.
    """
    lo, hi, n = np.broadcast_arrays(_arr(ci_low), _arr(ci_high), _arr(n))
    q = ci_quantile(n, level, dist)
    with np.errstate(invalid="ignore"):
        ok = (hi >= lo) & (n >= 2)
        return np.where(ok, np.sqrt(np.where(ok, n, 1.0)) * (hi - lo) / (2.0 * q), np.nan)


def t_from_p(p, n):
    """|t| of a paired t-test with ``n`` pairs from its two-sided p-value.

    ``t = t_{n-1}`` quantile at ``1 - p/2`` (R ``qt(p/2, n - 1, lower.tail =
    FALSE)``), Cochrane Handbook 6.5.2.3. Assumes the p-value is exact
    (not "p < 0.05") and comes from a paired t-test. NaN unless 0 < p <= 1, n >= 2.
    """
    p, n = np.broadcast_arrays(_arr(p), _arr(n))
    with np.errstate(invalid="ignore"):
        ok = (p > 0) & (p <= 1) & (n >= 2)
    out = t_isf(np.where(ok, p / 2.0, 0.25), np.where(ok, n - 1.0, 1.0))
    return np.where(ok, out, np.nan)


def sd_change_from_t(mean_change, t, n):
    """SD of the within-person change from a paired t statistic.

    ``sd_change = |mean_change| sqrt(n) / |t|`` (the paired t is
    ``mean_change / (sd_change / sqrt(n))``), Cochrane Handbook 6.5.2.3 and
    6.5.2.8. NaN where t = 0 or n < 2.
    """
    md, t, n = np.broadcast_arrays(_arr(mean_change), _arr(t), _arr(n))
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (t != 0) & (n >= 2)
        return np.where(ok, np.abs(md) * np.sqrt(np.where(ok, n, 1.0)) / np.abs(t), np.nan)


def sd_change_from_p(mean_change, p, n):
    """SD of the change from a paired test's two-sided p-value: :func:`t_from_p`, then
    :func:`sd_change_from_t`."""
    return sd_change_from_t(mean_change, t_from_p(p, n), n)


def sd_change_from_r(sd_pre, sd_post, r):
    """``sd_change = sqrt(sd_pre² + sd_post² - 2 r sd_pre sd_post)`` (Handbook 6.5.2.8)."""
    a, b, r = np.broadcast_arrays(_arr(sd_pre), _arr(sd_post), _arr(r))
    with np.errstate(invalid="ignore"):
        ok = (np.abs(r) <= 1) & (a >= 0) & (b >= 0)
        return np.where(ok, np.sqrt(np.clip(a ** 2 + b ** 2 - 2.0 * r * a * b, 0.0, None)), np.nan)


def r_from_sds(sd_pre, sd_post, sd_change):
    """The pre/post correlation the three SDs imply (Cochrane Handbook 6.5.2.8).

    ``r = (sd_pre² + sd_post² - sd_change²) / (2 sd_pre sd_post)``. NaN where an
    SD is <= 0 or the SDs are inconsistent (|r| > 1: no such correlation).
    """
    a, b, c = np.broadcast_arrays(_arr(sd_pre), _arr(sd_post), _arr(sd_change))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a ** 2 + b ** 2 - c ** 2) / (2.0 * a * b)
        ok = (a > 0) & (b > 0) & (c >= 0) & (np.abs(r) <= 1)
    return np.where(ok, r, np.nan)


# ---------------------------------------------------------------------------
# median and quartiles / range -> mean and SD
# ---------------------------------------------------------------------------

QUANTILE_METHODS = ("wan2014", "luo/wan/shi")


@dataclass(frozen=True)
class MeanSD:
    """Mean and SD estimated from a median with its IQR and/or range, per study."""

    mean: np.ndarray
    sd: np.ndarray
    case: tuple          # "range", "iqr", "both" or None (not enough values)
    skew_stat: np.ndarray   # the skewness test statistic (metafor attr "tval")
    skew_crit: np.ndarray   # its critical value (attr "crit")
    skewed: np.ndarray      # stat >= crit: the data look skewed
    reasons: tuple       # None, or why no mean/SD was estimated


def mean_sd_from_quantiles(median, n, *, q1=None, q3=None, minimum=None, maximum=None,
                           method="wan2014", test=True) -> MeanSD:
    """Mean and SD from a median with the range (min, max), the IQR (q1, q3), or both.

    ``method="wan2014"`` (Wan, Wang, Liu & Tong 2014, BMC Med Res Methodol
    14:135): with ``xi = 2 Phi^-1((n - 0.375)/(n + 0.25))`` and ``eta = 2
    Phi^-1((0.75 n - 0.125)/(n + 0.25))``,

    - range:  mean = (min + 2 median + max)/4,         sd = (max - min)/xi   (eq. 9)
    - IQR:    mean = (q1 + median + q3)/3,             sd = (q3 - q1)/eta    (eq. 16)
    - both:   mean = (min + 2 q1 + 2 median + 2 q3 + max)/8,
              sd = ((max - min)/xi + (q3 - q1)/eta)/2                         (eq. 12, 10)

    ``method="luo/wan/shi"`` (metafor 4's default): the mean by Luo et al. 2018
    (Stat Methods Med Res 27:1785; w = 4/(4 + n^0.75), 0.7 + 0.39/n, and the
    two weights 2.2/(2.2 + n^0.75), 0.7 - 0.72/n^0.55 for both), the SD by
    Wan et al. for the range or the IQR and by Shi et al. 2020 (Res Synth
    Methods 11:641; w = 1/(1 + 0.07 n^0.6)) for both.

    Exactly metafor ``conv.fivenum(min, q1, median, q3, max, n, method=...,
    dist="norm", test=test)`` (metafor >= 4.0): studies with n < 5 get no
    estimate; with ``test=True`` (conv.fivenum's default) a study whose
    quantiles fail the skewness test of Shi et al. (``skewed``) gets none
    either, since the normal-theory formulas assume symmetric data. Values
    not in the order min <= q1 <= median <= q3 <= max get no estimate and a
    reason (conv.fivenum stops).
    """
    if method not in QUANTILE_METHODS:
        raise UsageError(f"method must be one of {', '.join(QUANTILE_METHODS)}, got {method!r}")
    med = np.atleast_1d(_arr(median))
    k = med.shape[0]

    def col(x):
        return np.full(k, np.nan) if x is None else np.broadcast_to(np.atleast_1d(_arr(x)), (k,)).astype(float)

    a, q1, q3, b, n = col(minimum), col(q1), col(q3), col(maximum), col(n)
    mean = np.full(k, np.nan)
    sd = np.full(k, np.nan)
    stat = np.full(k, np.nan)
    crit = np.full(k, np.nan)
    skewed = np.zeros(k, dtype=bool)
    cases, reasons = [], []
    for i in range(k):
        has_range = not (np.isnan(a[i]) or np.isnan(b[i]))
        has_iqr = not (np.isnan(q1[i]) or np.isnan(q3[i]))
        case = "both" if has_range and has_iqr else "range" if has_range else "iqr" if has_iqr else None
        cases.append(case)
        values = [v for v in (a[i], q1[i], med[i], q3[i], b[i]) if not np.isnan(v)]
        if case is None or np.isnan(med[i]):
            reasons.append("needs the median with the IQR (q1, q3) and/or the range (min, max)")
            continue
        if np.isnan(n[i]) or n[i] < 5:
            reasons.append("n must be at least 5 to estimate a mean and SD from quantiles "
                           "(as metafor conv.fivenum)")
            continue
        if any(x > y for x, y in zip(values, values[1:])):
            reasons.append("quantiles not in order (min <= q1 <= median <= q3 <= max)")
            continue
        ni = n[i]
        xi = 2.0 * float(norm_ppf((ni - 0.375) / (ni + 0.25)))
        eta = 2.0 * float(norm_ppf((0.75 * ni - 0.125) / (ni + 0.25)))
        with np.errstate(invalid="ignore", divide="ignore"):
            if case == "range":
                stat[i] = abs((a[i] + b[i] - 2.0 * med[i]) / (b[i] - a[i]))
                crit[i] = 1.0 / np.log(ni + 9.0) + 2.5 / (ni + 1.0)
            elif case == "iqr":
                stat[i] = abs((q1[i] + q3[i] - 2.0 * med[i]) / (q3[i] - q1[i]))
                crit[i] = 2.65 / np.sqrt(ni) - 6.0 / ni ** 2
            else:
                stat[i] = max(2.65 * np.log(0.6 * ni) / np.sqrt(ni)
                              * abs((a[i] + b[i] - 2.0 * med[i]) / (b[i] - a[i])),
                              abs((q1[i] + q3[i] - 2.0 * med[i]) / (q3[i] - q1[i])))
                crit[i] = 3.0 / np.sqrt(ni) - 40.0 / ni ** 3
        skewed[i] = bool(stat[i] >= crit[i])
        if test and skewed[i]:
            reasons.append(f"the quantiles look skewed (Shi et al. test statistic {stat[i]:.3g} >= "
                           f"{crit[i]:.3g}): a mean and SD from them would assume symmetry")
            continue
        if case == "range":
            if method == "wan2014":
                mean[i] = (a[i] + 2.0 * med[i] + b[i]) / 4.0
            else:
                w = 4.0 / (4.0 + ni ** 0.75)
                mean[i] = w * (a[i] + b[i]) / 2.0 + (1.0 - w) * med[i]
            sd[i] = (b[i] - a[i]) / xi
        elif case == "iqr":
            if method == "wan2014":
                mean[i] = (q1[i] + med[i] + q3[i]) / 3.0
            else:
                w = 0.7 + 0.39 / ni
                mean[i] = w * (q1[i] + q3[i]) / 2.0 + (1.0 - w) * med[i]
            sd[i] = (q3[i] - q1[i]) / eta
        else:
            if method == "wan2014":
                mean[i] = (a[i] + 2.0 * q1[i] + 2.0 * med[i] + 2.0 * q3[i] + b[i]) / 8.0
                sd[i] = 0.5 * ((b[i] - a[i]) / xi + (q3[i] - q1[i]) / eta)
            else:
                w1 = 2.2 / (2.2 + ni ** 0.75)
                w2 = 0.7 - 0.72 / ni ** 0.55
                mean[i] = w1 * (a[i] + b[i]) / 2.0 + w2 * (q1[i] + q3[i]) / 2.0 + (1.0 - w1 - w2) * med[i]
                w = 1.0 / (1.0 + 0.07 * ni ** 0.6)
                sd[i] = w * (b[i] - a[i]) / xi + (1.0 - w) * (q3[i] - q1[i]) / eta
        reasons.append(None)
    return MeanSD(mean=mean, sd=sd, case=tuple(cases), skew_stat=stat, skew_crit=crit,
                  skewed=skewed, reasons=tuple(reasons))


# ---------------------------------------------------------------------------
# the pool path: every conversion of a table's columns, in one place
# ---------------------------------------------------------------------------

# Where the assumed r of a paired row would otherwise apply, the pool notes a
# sensitivity over these values (``pooling.analysis``).
R_SENSITIVITY = (0.2, 0.5, 0.8)


# How a value the effect sizes read was had when the table did not give it, by kind: what
# ``Filled.kinds`` records per column and study, and the words tables say it in (footnotes).
CONVERSION_KINDS = {
    "sem": "SD from the SEM: sd = se·√n (Cochrane Handbook 6.5.2.2)",
    "ci": "SD from the CI of the mean: sd = √n (upper − lower)/(2 t_n−1) (Cochrane Handbook 6.5.2.2)",
    "ci_midpoint": "mean: the midpoint of its CI",
    "quantiles": ("mean and SD from the median with the IQR and/or range (Wan et al. 2014, "
                  "as metafor conv.fivenum; assumes roughly normal data)"),
    "sd_change_from_p": ("SD of the change from the paired p-value with n: t = t_n−1 quantile "
                         "at 1 − p/2, sd = |change|·√n/t (Cochrane Handbook 6.5.2.3)"),
    "sd_change_from_t": ("SD of the change from the paired t with n: sd = |change|·√n/|t| "
                         "(Cochrane Handbook 6.5.2.3)"),
    "r_from_p": ("r implied by the SDs and the SD of the change from the paired p-value "
                 "(Cochrane Handbook 6.5.2.3, 6.5.2.8)"),
    "r_from_t": ("r implied by the SDs and the SD of the change from the paired t "
                 "(Cochrane Handbook 6.5.2.3, 6.5.2.8)"),
    "assumed_r": "r assumed (--r): the study reports none",
    # sd_pre = sd_post = the SD of the change with r = 0.5: not the study's values, only what
    # makes escalc's MC and SMCC read exactly the SD of the change; tables show that instead
    "stand_in": "stands in for the SD of the change (not a value of the study)",
}


@dataclass(frozen=True)
class Filled:
    """What :func:`fill_spreads` did, per study.

    ``notes``: None or the conversions used (or why one could not be made), in
    words; ``kinds``: column -> list with the ``CONVERSION_KINDS`` key of each
    study's filled value (None where the table gave it), for the columns it
    filled; ``sd_change``: the SD of the change from a paired test (NaN where
    none was derived).
    """

    notes: list
    kinds: dict
    sd_change: np.ndarray


def _g(x) -> str:
    return f"{x:.4g}"


def _say(notes, i, text):
    notes[i] = text if notes[i] is None else f"{notes[i]}; {text}"


def _mark(kinds, column, k, i, kind):
    found = kinds.get(column)
    if found is None:       # one list per column, made once: O(k) in all
        found = kinds[column] = [None] * k
    found[i] = kind


def fill_spreads(family, columns, column, *, level=95.0) -> Filled:
    """Fill the blank SDs (and means) a family's measures read from a spread given another way.

    ``columns`` maps the measure's input columns (and n) to float arrays (NaN:
    blank) and is filled in place; ``column(name)`` gives any other column of
    the same rows (``schema.SPREAD_COLUMNS``) as a float array. A given SD (or
    r) always wins; a blank one is converted from, in this order:

    - two-group and one-group means, per arm: the SEM (:func:`sd_from_se`),
      the 95% CI of the mean (:func:`sd_from_ci`, t quantile with n - 1 df;
      the mean from the CI's midpoint when blank), the median with the IQR
      and/or the range (:func:`mean_sd_from_quantiles`, Wan et al. 2014, with
      metafor conv.fivenum's skewness test);
    - paired means: each SD from its SEM; when r is blank, the paired
      ``t_stat`` or two-sided ``p_value`` with n gives the SD of the change
      (:func:`sd_change_from_t`, :func:`sd_change_from_p`), and with both SDs
      the r they imply (:func:`r_from_sds`), which escalc's MC, SMCC and SMCR
      then read; without the SDs, MC and SMCC need only the SD of the change
      (``sd_pre = sd_post = sd_change`` with ``r = 0.5`` give exactly
      ``sd_change``), SMCR cannot be had.

    Returns a :class:`Filled`: per study the conversions used in words (or
    why one could not be made), for the notes, and by column the kind of each
    filled value (``CONVERSION_KINDS``), for the tables. Imports nothing
    beyond numpy.
    """
    k = _length(columns)
    done = Filled(notes=[None] * k, kinds={}, sd_change=np.full(k, np.nan))
    if family in ("means_two", "means_one"):
        for arm in ("t", "c") if family == "means_two" else ("t",):
            _fill_arm(arm, columns, column, done, level)
    elif family == "means_paired":
        _fill_paired(columns, column, done)
    return done


def _length(columns) -> int:
    for values in columns.values():
        return int(np.asarray(values).shape[0])
    return 0


def _fill_arm(arm, columns, column, done, level):
    notes, k = done.notes, len(done.notes)
    sd, mean = columns.get(f"sd_{arm}"), columns.get(f"mean_{arm}")
    if sd is None or mean is None:
        return
    n = columns.get(f"n_{arm}")
    n = column(f"n_{arm}") if n is None else n
    se = column(f"se_{arm}")
    use = np.isnan(sd) & ~np.isnan(se)
    sd[use] = sd_from_se(se, n)[use]
    for i in np.flatnonzero(use):
        _say(notes, i, f"sd_{arm} from the SEM (sd = se·√n, Cochrane Handbook 6.5.2.2)")
        _mark(done.kinds, f"sd_{arm}", k, i, "sem")
    lo, hi = column(f"mean_ci_low_{arm}"), column(f"mean_ci_high_{arm}")
    use = np.isnan(sd) & ~np.isnan(lo) & ~np.isnan(hi)
    if use.any():
        sd[use] = sd_from_ci(lo, hi, n, level=level)[use]
        mid = use & np.isnan(mean)
        mean[mid] = ((lo + hi) / 2.0)[mid]
        for i in np.flatnonzero(use):
            _say(notes, i, f"sd_{arm} from the {level:g}% CI of the mean (sd = √n (upper − lower)/"
                           f"(2 t_n−1), Cochrane Handbook 6.5.2.2)"
                           + (f", mean_{arm} its midpoint" if mid[i] else ""))
            _mark(done.kinds, f"sd_{arm}", k, i, "ci")
            if mid[i]:
                _mark(done.kinds, f"mean_{arm}", k, i, "ci_midpoint")
    med = column(f"median_{arm}")
    use = np.isnan(sd) & ~np.isnan(med)
    if use.any():
        idx = np.flatnonzero(use)
        est = mean_sd_from_quantiles(med[idx], n[idx], q1=column(f"q1_{arm}")[idx],
                                     q3=column(f"q3_{arm}")[idx], minimum=column(f"min_{arm}")[idx],
                                     maximum=column(f"max_{arm}")[idx], method="wan2014")
        words = {"range": "range", "iqr": "IQR", "both": "IQR and range"}
        for j, i in enumerate(idx):
            if est.reasons[j] is not None:
                _say(notes, i, f"median_{arm} not converted to a mean and SD: {est.reasons[j]}")
                continue
            sd[i] = est.sd[j]
            took_mean = bool(np.isnan(mean[i]))
            if took_mean:
                mean[i] = est.mean[j]
                _mark(done.kinds, f"mean_{arm}", k, i, "quantiles")
            _mark(done.kinds, f"sd_{arm}", k, i, "quantiles")
            _say(notes, i, f"{f'mean_{arm} and ' if took_mean else ''}sd_{arm} from the median with the "
                           f"{words[est.case[j]]} (Wan et al. 2014, as metafor conv.fivenum(method = "
                           f"\"wan2014\"); assumes roughly normal data)")


def _fill_paired(columns, column, done):
    notes, kinds, k = done.notes, done.kinds, len(done.notes)
    n = columns.get("n_t")
    n = column("n_t") if n is None else n
    sds = {}
    for when in ("pre", "post"):
        sd = columns.get(f"sd_{when}")
        sd = column(f"sd_{when}").copy() if sd is None else sd
        se = column(f"se_{when}")
        use = np.isnan(sd) & ~np.isnan(se)
        sd[use] = sd_from_se(se, n)[use]
        for i in np.flatnonzero(use):
            _say(notes, i, f"sd_{when} from the SEM (sd = se·√n, Cochrane Handbook 6.5.2.2)")
            _mark(kinds, f"sd_{when}", k, i, "sem")
        sds[when] = sd
    r = columns.get("r")
    if r is None:
        return
    change = columns["mean_post"] - columns["mean_pre"]
    t_given, p = column("t_stat"), column("p_value")
    t = np.where(np.isnan(t_given), t_from_p(p, n), np.abs(t_given))
    use = np.isnan(r) & ~np.isnan(t) & ~np.isnan(change)
    sdd = sd_change_from_t(change, t, n)
    implied = r_from_sds(sds["pre"], sds["post"], sdd)
    own_sds = "sd_post" in columns      # MC, SMCC: the SD of the change is enough
    for i in np.flatnonzero(use):
        if np.isnan(sdd[i]):
            _say(notes, i, "no SD of the change from the paired test (the change or t is 0, or n < 2)")
            continue
        from_t = not np.isnan(t_given[i])
        source = f"t = {_g(abs(t_given[i]))}" if from_t else f"p = {_g(p[i])} (t = {_g(t[i])})"
        said = (f"SD of the change {_g(sdd[i])} from the paired {source} with n = {_g(n[i])} "
                f"(sd = |change|·√n/t, t_n−1; Cochrane Handbook 6.5.2.3)")
        if not np.isnan(implied[i]):
            r[i] = implied[i]
            said += f", with the SDs the r it implies, r = {_g(implied[i])} (Handbook 6.5.2.8)"
            _mark(kinds, "r", k, i, "r_from_t" if from_t else "r_from_p")
        elif not (np.isnan(sds["pre"][i]) or np.isnan(sds["post"][i])):
            said += " — inconsistent with the SDs (|r| > 1): not used"
            _say(notes, i, said)
            continue
        elif own_sds:
            columns["sd_pre"][i] = columns["sd_post"][i] = sdd[i]
            r[i] = 0.5
            done.sd_change[i] = sdd[i]
            for name in ("sd_pre", "sd_post", "r"):
                _mark(kinds, name, k, i, "stand_in")
            _mark(kinds, "sd_change", k, i, "sd_change_from_t" if from_t else "sd_change_from_p")
        else:
            said += "; SMCR also needs sd_pre and r, which the study does not give"
        _say(notes, i, said)
    for when in ("pre", "post"):
        if f"sd_{when}" in columns:
            keep = np.isnan(columns[f"sd_{when}"])
            columns[f"sd_{when}"][keep] = sds[when][keep]


__all__ = ["CONVERSION_KINDS", "Filled", "MeanSD", "QUANTILE_METHODS", "ci_quantile", "mean_sd_from_quantiles", "r_from_sds",
           "sd_change_from_p", "sd_change_from_r", "sd_change_from_t", "sd_from_ci", "sd_from_se",
           "t_from_p", "fill_spreads", "R_SENSITIVITY"]
