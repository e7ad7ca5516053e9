"""Mixed-effects meta-regression, as metafor ``rma(yi, vi, mods = ~ ...)``.

The model is ``yi = X beta + u_i + e_i`` with ``u_i ~ N(0, tau2)`` and
``e_i ~ N(0, vi)`` (Viechtbauer 2010, J Stat Softw 36(3), section 2; metafor
``rma.uni``). ``fit_mods`` estimates tau² by the method chosen, then beta by
weighted least squares with weights ``1/(vi + tau2)``, and reports what
``print.rma.uni`` reports: coefficients with z (or Knapp-Hartung t) tests,
the omnibus moderator test QM (an F test under Knapp-Hartung), the residual
heterogeneity test QE, I², H² and the pseudo-R² (proportion of tau²
explained).

``design_matrix`` turns the right-hand side of a formula (``log10(dose_cells)
+ route``) into a model matrix the way R's ``model.matrix`` does for these
simple terms: numeric columns enter as they are (or transformed),
text columns as treatment (dummy) contrasts with the alphabetically first
level as reference. It is a tiny parser, never ``eval``.

The same fitter serves ``bias`` (Egger's test is a meta-regression on the
standard error) and ``trimfill``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import special

from msc_meta import registry
from msc_meta.errors import ComputationError, UsageError
from msc_meta.pooling.rma import VARIANCE_RATIO_WARN, variance_ratio_note

def regression_methods() -> tuple[str, ...]:
    """The methods a meta-regression fits: the inverse-variance ones (FE and every tau² estimator)."""
    return registry.methods(inverse_variance=True)


def _raw_counts_only(method) -> bool:
    """MH and Peto pool raw 2x2 tables: no yi, vi to regress, cumulate or test."""
    spec = registry.method(method) if registry.is_method(method) else None
    return spec is not None and spec.kind == "common" and not spec.inverse_variance

# metafor's tight fixture control (threshold = tol = 1e-12): we always want the
# exact root, never metafor's default 1e-5 stopping point.
THRESHOLD = 1e-12
MAXITER = 10000
EVTOL = 1e-7          # metafor control evtol: rank check of X'X


@dataclass(frozen=True)
class Coefficient:
    name: str
    estimate: float
    se: float
    stat: float          # z, or t under Knapp-Hartung
    pval: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict:
        return {key: _json_float(getattr(self, key)) if key != "name" else self.name
                for key in ("name", "estimate", "se", "stat", "pval", "ci_low", "ci_high")}


@dataclass(frozen=True)
class MetaRegression:
    """One fitted (mixed-effects) meta-regression model; metafor names in comments."""

    method: str
    test: str                        # "z" or "t" (Knapp-Hartung, metafor test="knha")
    level: float                     # percent
    k: int
    p: int                           # columns of X, intercept included
    names: tuple[str, ...]
    beta: tuple[float, ...]
    se: tuple[float, ...]
    stat: tuple[float, ...]          # zval / tval
    pval: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    vb: tuple[tuple[float, ...], ...]  # var-cov of beta (times s2w under knha)
    tau2: float
    i2: float                        # percent
    h2: float
    r2: float | None                 # percent; None for an intercept-only model
    qm: float                        # QM (chi-square), or F = QM/m under knha
    qm_df: int                       # m, coefficients tested (all but the intercept)
    qm_df2: int | None               # k - p under knha (F denominator df)
    qm_pval: float
    qe: float
    qe_df: int
    qe_pval: float
    s2w: float                       # Knapp-Hartung scale factor (1 for z tests)
    ddf: int | None                  # t degrees of freedom (k - p) under knha
    tau2_intercept_only: float | None = None   # tau2 of the model without moderators (R²)
    iterations: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def coefficients(self) -> list[Coefficient]:
        return [Coefficient(n, b, s, z, pv, lo, hi) for n, b, s, z, pv, lo, hi in
                zip(self.names, self.beta, self.se, self.stat, self.pval, self.ci_low, self.ci_high)]

    def to_dict(self) -> dict:
        """JSON keys of the CLI contract's ``msc-meta regress`` section, plus a few extras."""
        return {
            "method": self.method,
            "test": self.test,
            "level": self.level,
            "k": self.k,
            "p": self.p,
            "coefficients": [c.to_dict() for c in self.coefficients],
            "tau2": _json_float(self.tau2),
            "i2": _json_float(self.i2),
            "h2": _json_float(self.h2),
            "r2": _json_float(self.r2),
            "qm": _json_float(self.qm),
            "qm_df": self.qm_df,
            "qm_df2": self.qm_df2,
            "qm_pval": _json_float(self.qm_pval),
            "qe": _json_float(self.qe),
            "qe_df": self.qe_df,
            "qe_pval": _json_float(self.qe_pval),
            "notes": list(self.notes),
        }


def _json_float(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- linear algebra


def _wls_parts(X: np.ndarray, w: np.ndarray):
    """``(X'WX)^-1`` and the projection ``P = W - W X (X'WX)^-1 X' W`` (metafor's P)."""
    XtWX = X.T @ (w[:, None] * X)
    inv = np.linalg.inv(XtWX)
    WX = w[:, None] * X
    P = np.diag(w) - WX @ inv @ WX.T
    return inv, P


def drop_redundant_columns(X: np.ndarray, names: Sequence[str]):
    """Drop columns that are linear combinations of earlier ones.

    metafor fits ``lm(yi ~ X - 1)`` and drops the coefficients lm reports as
    NA ("Redundant predictors dropped from the model."); lm's pivoting QR
    (tolerance 1e-7) keeps the first of each aliased set, which is what this
    sequential Gram-Schmidt does.
    """
    kept: list[int] = []
    basis: list[np.ndarray] = []
    for j in range(X.shape[1]):
        col = X[:, j].astype(float)
        norm = np.linalg.norm(col)
        resid = col.copy()
        for q in basis:
            resid -= (q @ resid) * q
        rnorm = np.linalg.norm(resid)
        if norm > 0 and rnorm > 1e-7 * norm:
            kept.append(j)
            basis.append(resid / rnorm)
    dropped = tuple(names[j] for j in range(X.shape[1]) if j not in kept)
    return X[:, kept], tuple(names[j] for j in kept), dropped


# --------------------------------------------------------------------------- tau² estimators


def _mad(x: np.ndarray) -> float:
    # R's mad(): 1.4826 * median absolute deviation from the median.
    return 1.4826 * float(np.median(np.abs(x - np.median(x))))


def tau2_mods(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, method: str) -> tuple[float, int | None]:
    """Residual heterogeneity tau² of a meta-regression, as metafor ``rma.uni``.

    Formulas (metafor rma.uni source; Viechtbauer 2005, J Educ Behav Stat
    30:261; Raudenbush 2009): with ``p = ncol(X)`` and ``ymc`` the centred
    outcomes,

    * DL  ``(ymc' P ymc - (k - p)) / tr(P)``, P at ``W = 1/vi``;
    * HE  ``(ymc' P ymc - tr(P V)) / (k - p)``, P the OLS residual maker;
    * HS  ``(ymc' P ymc - k) / sum(1/vi)``;
    * SJ  ``tau0² ymc' P ymc / (k - p)`` with ``tau0² = mean(ymc²)`` and P at
      ``W = 1/(vi + tau0²)``;
    * ML, REML, EB  Fisher scoring from the HE value (step halving at the
      0 bound), with metafor's check that tau² = 0 does not have a higher
      likelihood (then tau² = 0);
    * PM  root of ``ymc' P(tau²) ymc = k - p`` (Paule & Mandel 1982), 0 if
      the Q statistic at 0 is already below k - p.

    All are truncated at 0. Returns ``(tau2, iterations)``.
    """
    k, p = X.shape
    ymc = yi - yi.mean()
    if method == "FE":
        return 0.0, None
    if method == "DL":
        _, P = _wls_parts(X, 1.0 / vi)
        tau2 = (ymc @ P @ ymc - (k - p)) / np.trace(P)
        return max(0.0, float(tau2)), None
    if method == "HS":
        w = 1.0 / vi
        _, P = _wls_parts(X, w)
        return max(0.0, float((ymc @ P @ ymc - k) / w.sum())), None
    if method == "SJ":
        tau2_0 = float(np.mean(ymc ** 2))
        _, P = _wls_parts(X, 1.0 / (vi + tau2_0))
        return max(0.0, float(tau2_0 * (ymc @ P @ ymc) / (k - p))), None
    if method == "PM":
        return _tau2_pm(ymc, vi, X), None
    # HE is both an estimator and the starting value of ML / REML / EB.
    P_ols = np.eye(k) - X @ np.linalg.inv(X.T @ X) @ X.T
    tau2_he = float((ymc @ P_ols @ ymc - np.trace(P_ols * vi[None, :])) / (k - p))
    if method == "HE":
        return max(0.0, tau2_he), None
    if registry.method(method).fisher_scoring:
        return _tau2_fisher_scoring(ymc, vi, X, method, max(0.0, tau2_he))
    raise UsageError(f"method {method} is not available for meta-regression "
                     f"(choose one of {', '.join(regression_methods())})")


def _tau2_fisher_scoring(ymc, vi, X, method, tau2):
    k, p = X.shape
    change = THRESHOLD + 1.0
    iterations = 0
    while change > THRESHOLD:
        iterations += 1
        if iterations > MAXITER:
            raise ComputationError(f"{method}: Fisher scoring for tau² did not converge "
                                   f"in {MAXITER} iterations")
        w = 1.0 / (vi + tau2)
        _, P = _wls_parts(X, w)
        Py = P @ ymc
        if method == "ML":
            adj = (Py @ Py - w.sum()) / np.sum(w ** 2)
        elif method == "REML":
            adj = (Py @ Py - np.trace(P)) / np.sum(P * P)   # tr(PP) = sum(P*P), P symmetric
        else:  # EB
            adj = ((ymc @ Py) * k / (k - p) - k) / w.sum()
        if not np.isfinite(adj):
            # was set to 0, i.e. "converged" wherever the step broke (tr(PP)
            # rounding to 0 at extreme variance ratios): a silent wrong tau²
            raise ComputationError(f"{method}: Fisher scoring for tau² took a non-finite step (sampling "
                                   f"variances {vi.max() / vi.min():.3g} times apart); try --method DL or PM")
        adj = float(adj)
        if tau2 + adj < 0.0:
            # metafor halves the step until it stays inside [0, inf); any
            # finite step is halved to 0 within 2200 halvings (2^-1074)
            if tau2 == 0.0:
                adj = 0.0
            else:
                for _ in range(2200):
                    if tau2 + adj >= 0.0:
                        break
                    adj /= 2.0
        old = tau2
        tau2 = tau2 + adj
        change = abs(tau2 - old)
        if adj > 0.0 and change > 1e-10 * tau2:
            # an upward step below THRESHOLD only because sum(w) is huge at
            # small tau² (vi ratio ~1e16) is a stall, not convergence: EB
            # stopped at 1e-18 beside its root 4.8e-3
            change = THRESHOLD + 1.0
    if method in ("ML", "REML") and tau2 > THRESHOLD:
        # metafor's ll0check: Fisher scoring can stop at a local maximum.
        if _loglik(ymc, vi, X, 0.0, method) - _loglik(ymc, vi, X, tau2, method) > THRESHOLD:
            tau2 = 0.0
    return max(0.0, tau2), iterations


def _loglik(ymc, vi, X, tau2, method):
    k, p = X.shape
    w = 1.0 / (vi + tau2)
    XtWX = X.T @ (w[:, None] * X)
    beta = np.linalg.solve(XtWX, X.T @ (w * ymc))
    rss = float(np.sum(w * (ymc - X @ beta) ** 2))
    if method == "ML":
        return -0.5 * k * math.log(2 * math.pi) - 0.5 * np.sum(np.log(vi + tau2)) - 0.5 * rss
    return (-0.5 * (k - p) * math.log(2 * math.pi) - 0.5 * np.sum(np.log(vi + tau2))
            - 0.5 * np.linalg.slogdet(XtWX)[1] - 0.5 * rss)


def _tau2_pm(ymc, vi, X):
    k, p = X.shape

    def q_minus_target(tau2):
        _, P = _wls_parts(X, 1.0 / (vi + tau2))
        return float(ymc @ P @ ymc) - (k - p)

    if q_minus_target(0.0) < 0:
        return 0.0
    tau2_max = max(100.0, 10.0 * _mad(ymc) ** 2)
    if q_minus_target(tau2_max) > 0:
        raise ComputationError(f"PM: tau² is above {tau2_max:g}; the Paule-Mandel root was not bracketed")
    from scipy.optimize import brentq

    return float(brentq(q_minus_target, 0.0, tau2_max, xtol=1e-14, rtol=1e-14, maxiter=MAXITER))


# --------------------------------------------------------------------------- the fit


def _crit_and_p(stat: np.ndarray, level: float, ddf: int | None):
    alpha = 1.0 - level / 100.0
    if ddf is None:
        return float(special.ndtri(1.0 - alpha / 2.0)), 2.0 * special.ndtr(-np.abs(stat))
    if ddf <= 0:
        return math.nan, np.full_like(stat, math.nan)
    return float(special.stdtrit(ddf, 1.0 - alpha / 2.0)), 2.0 * special.stdtr(ddf, -np.abs(stat))


def fit_mods(yi, vi, X, *, names: Sequence[str] | None = None, method: str = "REML",
             knha: bool = False, level: float = 95.0, r2: bool = True) -> MetaRegression:
    """Fit ``rma(yi, vi, mods = X[, -1], method=, test = "knha" if knha)``.

    ``X`` must hold the intercept as its first column (all ones). Redundant
    columns are dropped as metafor does, with a note. Knapp-Hartung
    (``knha``): ``vb`` is scaled by ``s2w = sum(w (y - X b)²) / (k - p)``,
    coefficient tests use t(k - p) and the moderator test is
    ``F = QM / m`` on (m, k - p) df (Knapp & Hartung 2003, Stat Med 22:2693).

    R² as metafor's default (``r2def = "1"``, Raudenbush 2009):
    ``max(0, 100 (tau²_RE - tau²_ME) / tau²_RE)`` where tau²_RE comes from the
    same method without moderators (0 if that is exactly 0); for FE models
    the adjusted R² of the weighted least-squares regression.
    """
    method = method.upper()
    if method not in regression_methods():
        raise UsageError(f"method {method} is not available for meta-regression "
                         f"(choose one of {', '.join(regression_methods())})")
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    names = tuple(names) if names is not None else tuple(f"x{j}" for j in range(X.shape[1]))
    if names and names[0] != "intercept":
        names = ("intercept",) + tuple(names[1:])
    k = len(yi)
    notes: list[str] = []
    if not (np.all(np.isfinite(yi)) and np.all(np.isfinite(vi))):
        raise ComputationError("meta-regression needs finite yi and vi")
    if np.any(vi <= 0):
        raise ComputationError("meta-regression needs positive sampling variances")
    ratio = float(np.max(vi) / np.min(vi))
    if ratio >= VARIANCE_RATIO_WARN:
        # the k x k fit below loses digits at such ratios (the intercept-only
        # engine of rma.py does not): say so rather than print a number silently
        notes.append(variance_ratio_note(ratio) + "; the meta-regression fit may be imprecise here")
    X, names, dropped = drop_redundant_columns(X, names)
    if dropped:
        notes.append(f"redundant predictors dropped from the model (as metafor): {', '.join(dropped)}")
    k, p = X.shape
    if not np.allclose(X[:, 0], 1.0):
        raise ComputationError("the model matrix must start with the intercept column")
    needed = p if method == "FE" else p + 1
    if k < needed:
        raise UsageError(f"{k} stud{'y is' if k == 1 else 'ies are'} too few for {p} "
                         f"coefficient{'' if p == 1 else 's'}{'' if method == 'FE' else ' and tau²'}: "
                         f"need at least {needed}")
    if np.any(np.linalg.eigvalsh(X.T @ X) <= EVTOL):
        raise ComputationError("model matrix not of full rank: cannot fit the meta-regression")

    tau2, iterations = tau2_mods(yi, vi, X, method)
    w = 1.0 / (vi + tau2)
    inv, _ = _wls_parts(X, w)
    beta = inv @ (X.T @ (w * yi))
    s2w = 1.0
    ddf = None
    if knha:
        if method == "FE":
            notes.append("Knapp-Hartung is not meant for FE models (metafor warns too)")
        rss = float(np.sum(w * (yi - X @ beta) ** 2))
        s2w = 0.0 if rss <= np.finfo(float).eps else rss / (k - p)
        ddf = k - p
    vb = s2w * inv
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = beta / se
    crit, pval = _crit_and_p(stat, level, ddf)
    ci_low = beta - crit * se
    ci_high = beta + crit * se

    # Omnibus test of all coefficients but the intercept (metafor btt = 2:p);
    # of the intercept itself when the model has no moderators.
    btt = np.arange(1, p) if p > 1 else np.arange(0, 1)
    m = len(btt)
    b = beta[btt]
    try:
        qm = float(b @ np.linalg.solve(vb[np.ix_(btt, btt)], b))
    except np.linalg.LinAlgError:
        qm = math.nan
    if knha:
        qm /= m
        qm_df2 = k - p
        qm_pval = float(special.fdtrc(m, qm_df2, qm)) if qm_df2 > 0 else math.nan
    else:
        qm_df2 = None
        qm_pval = float(special.chdtrc(m, qm))

    # Residual heterogeneity (always at FE weights) and I², H² (metafor i2def = "1").
    if k > p:
        _, P_fe = _wls_parts(X, 1.0 / vi)
        qe = max(0.0, float((yi - yi.mean()) @ P_fe @ (yi - yi.mean())))
        qe_pval = float(special.chdtrc(k - p, qe))
        vt = (k - p) / np.trace(P_fe)
        if method == "FE":
            i2 = max(0.0, 100.0 * (qe - (k - p)) / qe) if qe > 0 else 0.0
            h2 = qe / (k - p)
        else:
            i2 = 100.0 * tau2 / (vt + tau2)
            h2 = tau2 / vt + 1.0
    else:
        qe, qe_pval, i2, h2 = 0.0, 1.0, 0.0, 1.0

    r2_value = None
    tau2_re = None
    if r2 and p > 1:
        if method == "FE":
            r2_value = _adjusted_r2_weighted(yi, X, 1.0 / vi)
        else:
            tau2_re, _ = tau2_mods(yi, vi, np.ones((k, 1)), method)
            r2_value = 0.0 if tau2_re == 0.0 else max(0.0, 100.0 * (tau2_re - tau2) / tau2_re)

    return MetaRegression(
        method=method, test="t" if knha else "z", level=float(level), k=k, p=p, names=names,
        beta=tuple(map(float, beta)), se=tuple(map(float, se)), stat=tuple(map(float, stat)),
        pval=tuple(map(float, pval)), ci_low=tuple(map(float, ci_low)), ci_high=tuple(map(float, ci_high)),
        vb=tuple(tuple(map(float, row)) for row in vb), tau2=float(tau2), i2=float(i2), h2=float(h2),
        r2=None if r2_value is None else float(r2_value), qm=qm, qm_df=m, qm_df2=qm_df2,
        qm_pval=qm_pval, qe=qe, qe_df=k - p, qe_pval=qe_pval, s2w=float(s2w), ddf=ddf,
        tau2_intercept_only=tau2_re, iterations=iterations, notes=tuple(notes))


def _adjusted_r2_weighted(yi, X, w):
    # summary(lm(yi ~ X, weights = w))$adj.r.squared, truncated at 0, in percent.
    k, p = X.shape
    if np.allclose(yi, yi[0]):
        return 0.0
    if k <= p:
        # saturated: lm's adjusted R² is 0/0 (R gives NaN with a warning)
        return float("nan")
    XtWX = X.T @ (w[:, None] * X)
    beta = np.linalg.solve(XtWX, X.T @ (w * yi))
    rss = np.sum(w * (yi - X @ beta) ** 2)
    ybar = np.sum(w * yi) / np.sum(w)
    tss = np.sum(w * (yi - ybar) ** 2)
    r2 = 1.0 - rss / tss
    adj = 1.0 - (1.0 - r2) * (k - 1) / (k - p)
    return max(0.0, 100.0 * float(adj))


# --------------------------------------------------------------------------- formulas

_TRANSFORMS = {"log10": np.log10, "log": np.log, "sqrt": np.sqrt}
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_TERM_RE = re.compile(rf"^(?:(?P<fn>log10|log|sqrt)\(\s*(?P<arg>{_NAME})\s*\)|(?P<col>{_NAME}))$")


@dataclass(frozen=True)
class Term:
    """One term of a moderator formula: a column, possibly transformed."""

    column: str
    transform: str | None = None

    @property
    def label(self) -> str:
        return f"{self.transform}({self.column})" if self.transform else self.column


def parse_mods(expr: str) -> tuple[Term, ...]:
    """Parse ``"log10(dose_cells) + route"`` into terms (a leading ``~`` is allowed).

    Grammar: terms separated by ``+``; a term is a column name, or
    ``log10(col)``, ``log(col)`` or ``sqrt(col)``. Anything else (products,
    interactions, arithmetic) is refused with a UsageError: it is never
    evaluated.
    """
    text = (expr or "").strip()
    if text.startswith("~"):
        text = text[1:].strip()
    if not text:
        raise UsageError("--mods is empty: give moderators such as 'log10(dose_cells)' or 'cell_source + route'")
    terms: list[Term] = []
    for raw in text.split("+"):
        part = raw.strip()
        match = _TERM_RE.match(part)
        if not match:
            raise UsageError(f"--mods: cannot read the term '{part}' in '{expr}': a term is a column "
                             "name or log10(column), log(column), sqrt(column), joined by '+'")
        term = Term(match["arg"], match["fn"]) if match["fn"] else Term(match["col"])
        if term not in terms:          # R drops repeated terms too
            terms.append(term)
    return tuple(terms)


def is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in ("", "NA", "na", "NaN", "nan")


def _as_float(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class Design:
    """A model matrix for the rows that have every moderator value."""

    X: np.ndarray                      # (k_used, p), intercept first
    names: tuple[str, ...]             # "intercept", "log10(dose_cells)", "route[local]", ...
    used: np.ndarray                   # bool per input row: kept in the model
    reasons: tuple[str | None, ...]    # per input row: why it was left out (None if used)
    terms: tuple[Term, ...]
    kinds: tuple[str, ...]             # per term: "numeric" or "categorical"
    levels: tuple[tuple[str, ...] | None, ...]   # per term: factor levels (reference first)

    @property
    def k(self) -> int:
        return int(self.used.sum())


def design_matrix(expr: str, columns: Mapping[str, Sequence], *, n: int | None = None,
                  available: Sequence[str] | None = None) -> Design:
    """Model matrix of ``~ expr`` over ``columns`` (column name -> values, one per row).

    A column is numeric if every non-missing value reads as a number; then it
    enters linearly (or transformed). Otherwise it is categorical with
    treatment coding and the alphabetically first level (among the rows used)
    as reference, as R's ``factor`` and ``contr.treatment``. Rows with a
    missing value in any moderator are left out, with the reason. Unknown
    columns, transforms of text columns and transforms of values outside
    their domain (log of 0) raise UsageError naming the column.
    """
    terms = parse_mods(expr)
    known = set(available) if available is not None else set(columns)
    for term in terms:
        if term.column not in known or term.column not in columns:
            listing = ", ".join(sorted(known)) if known else "none"
            raise UsageError(f"--mods: unknown column '{term.column}' (columns: {listing})")
    if n is None:
        n = len(next(iter(columns.values()))) if columns else 0
    reasons: list[str | None] = [None] * n
    for term in terms:
        values = columns[term.column]
        for i in range(n):
            if reasons[i] is None and is_missing(values[i]):
                reasons[i] = f"missing moderator value '{term.column}'"
    used = np.array([r is None for r in reasons], dtype=bool)

    blocks: list[np.ndarray] = [np.ones((int(used.sum()), 1))]
    names: list[str] = ["intercept"]
    kinds: list[str] = []
    levels_out: list[tuple[str, ...] | None] = []
    for term in terms:
        values = [columns[term.column][i] for i in range(n) if used[i]]
        numbers = [_as_float(v) for v in values]
        numeric = all(x is not None for x in numbers) and len(values) > 0
        if term.transform is not None:
            if not numeric:
                bad = next((v for v, x in zip(values, numbers) if x is None), None)
                raise UsageError(f"--mods: {term.label} needs numbers, but column '{term.column}' "
                                 f"holds text (e.g. '{bad}')")
            arr = np.asarray(numbers, dtype=float)
            lower_ok = arr >= 0 if term.transform == "sqrt" else arr > 0
            if not np.all(lower_ok):
                bad = arr[~lower_ok][0]
                raise UsageError(f"--mods: {term.label} is undefined for the value {bad:g} "
                                 f"in column '{term.column}'")
            blocks.append(_TRANSFORMS[term.transform](arr)[:, None])
            names.append(term.label)
            kinds.append("numeric")
            levels_out.append(None)
        elif numeric:
            blocks.append(np.asarray(numbers, dtype=float)[:, None])
            names.append(term.label)
            kinds.append("numeric")
            levels_out.append(None)
        else:
            text = [str(v).strip() for v in values]
            levels = tuple(sorted(set(text)))
            if len(levels) < 2:
                only = levels[0] if levels else "nothing"
                raise UsageError(f"--mods: column '{term.column}' has a single value ('{only}') among "
                                 "the studies analysed, so it cannot explain differences between them")
            dummies = np.array([[1.0 if t == lev else 0.0 for lev in levels[1:]] for t in text])
            blocks.append(dummies.reshape(len(text), len(levels) - 1))
            names.extend(f"{term.column}[{lev}]" for lev in levels[1:])
            kinds.append("categorical")
            levels_out.append(levels)
    X = np.hstack(blocks) if blocks else np.ones((0, 1))
    return Design(X=X, names=tuple(names), used=used, reasons=tuple(reasons), terms=terms,
                  kinds=tuple(kinds), levels=tuple(levels_out))


# --------------------------------------------------------------------------- table -> regression


@dataclass(frozen=True)
class RegressionStudy:
    study_id: str
    row_number: int
    yi: float
    vi: float
    moderators: tuple[tuple[str, object], ...]   # (column, value as in the table)


@dataclass(frozen=True)
class Regression:
    """What ``msc-meta regress`` computes: the fit, the studies in it and those left out."""

    outcome: str
    timepoint_weeks: float | None
    unit: str | None
    measure: str
    mods: str
    fit: MetaRegression
    design: Design
    studies: tuple[RegressionStudy, ...]
    excluded: tuple                     # msc_meta.pooling.analysis.Excluded
    notes: tuple[str, ...]
    scale: str | None = None            # GEN: the scale of the given effects (--scale)


INVERSE_VARIANCE_ONLY = ("{what} fits inverse-variance models: use --method FE or a random-effects "
                         "method (REML, ML, DL, PM, HE, SJ, HS, EB), not {method}")


def run_regression(table, mods: str, *, outcome, timepoint=None, unit=None, measure=None,
                   method="REML", hksj=False, cc=0.5, level=95.0, r=None, scale=None) -> Regression:
    """Select rows and compute effect sizes exactly as ``pool``, then regress on ``mods``.

    Rows ``pool`` leaves out stay out (with its reasons); rows missing a
    moderator value are left out too, with the column named. ``r`` and ``scale``
    are ``pool``'s ``--r`` (paired means) and ``--scale`` (GEN).
    """
    from msc_meta.pooling.analysis import Excluded, run_pool

    method = (method or "REML").upper()
    if _raw_counts_only(method):
        raise UsageError(INVERSE_VARIANCE_ONLY.format(what="regress", method=method))
    terms = parse_mods(mods)
    for term in terms:
        table.require_column(term.column)
    # Dose-response needs each cohort on its own: never combine shared-control arms here.
    analysis = run_pool(table, outcome=outcome, timepoint=timepoint, unit=unit, measure=measure,
                        method=method, hksj=hksj, pi="z", cc=cc, level=level, multiarm="keep",
                        r=r, scale=scale)
    rows = {row.row_number: row for row in table.rows}
    lines = analysis.studies
    needed = list(dict.fromkeys(t.column for t in terms))
    columns = {col: [rows[s.row_number].value(col) for s in lines] for col in needed}
    design = design_matrix(mods, columns, n=len(lines), available=table.columns)
    excluded = list(analysis.excluded)
    for s, reason in zip(lines, design.reasons):
        if reason is not None:
            excluded.append(Excluded(s.study_id, s.row_number, reason))
    used = [s for s, ok in zip(lines, design.used) if ok]
    if not used:
        raise UsageError(f"outcome {outcome}: no study has a value for every moderator in '{mods}'")
    yi = np.array([s.yi for s in used])
    vi = np.array([s.vi for s in used])
    fit = fit_mods(yi, vi, design.X, names=design.names, method=method, knha=hksj, level=level)

    notes = list(fit.notes)
    left = len(lines) - len(used)
    if left:
        notes.append(f"{left} pooled stud{'ies' if left > 1 else 'y'} left out for a missing "
                     "moderator value; listed under 'Left out'")
    notes.extend(_study_notes(used, [rows[s.row_number] for s in used], analysis.measure, cc))
    if fit.k < 10:
        notes.append(f"k = {fit.k}: meta-regression on fewer than 10 studies is exploratory at best "
                     "(Cochrane Handbook 10.11.5.1); one study can drive the slope")
    studies = tuple(
        RegressionStudy(s.study_id, s.row_number, s.yi, s.vi,
                        tuple((col, columns[col][i]) for col in needed))
        for i, s in enumerate(lines) if design.used[i])
    return Regression(outcome=analysis.outcome, timepoint_weeks=analysis.timepoint_weeks,
                      unit=analysis.unit, measure=analysis.measure, mods=mods, fit=fit,
                      design=design, studies=studies, excluded=tuple(excluded), notes=tuple(notes),
                      scale=analysis.options.scale)


def _study_notes(lines, rows, measure, cc) -> list[str]:
    """Notes on the studies a diagnostic uses: zero cells, arms ignored, shared control arms."""
    notes = []
    n_cc = sum(1 for s in lines if s.cc_added)
    if n_cc:
        notes.append(f"zero cells: continuity correction {cc:g} added to every cell of {n_cc} "
                     f"stud{'ies' if n_cc > 1 else 'y'}")
    two_arm = registry.measure(measure).two_arm
    if not two_arm:
        arms = sum(1 for r in rows if r.is_comparison)
        if arms:
            notes.append(f"{measure} is a single-arm measure: the treatment arms of {arms} two-arm "
                         f"row{'s' if arms > 1 else ''} are used and their control arms ignored")
        return notes
    # A combined comparison already counts its control once; a split one
    # carries its share (s.multiarm says which); rows hold the control as printed.
    shared: dict[tuple, list[str]] = {}
    for s, r in zip(lines, rows):
        trial = (r.trial or "").strip()
        if trial and s.multiarm != "combine":
            shared.setdefault((trial, r.events_c, r.n_c, s.multiarm), []).append(s.study_id)
    for (trial, e, n, how), ids in shared.items():
        if len(ids) < 2:
            continue
        if how == "split":
            notes.append(f"trial {trial}: {', '.join(ids)} share one control arm ({e}/{n}), split "
                         f"evenly among the {len(ids)} comparisons (--multiarm split) so that it "
                         "counts once; their effects remain correlated, which the model ignores")
        else:
            notes.append(f"trial {trial}: {', '.join(ids)} share one control arm ({e}/{n}), used "
                         f"{len(ids)} times: their effects are correlated and the model treats them "
                         "as independent, so standard errors are too small and p-values too "
                         "optimistic (for one pooled effect, `pool --multiarm combine` counts the "
                         "control once)")
    return notes
