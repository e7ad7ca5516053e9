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
standard error), ``trimfill`` and the funnel plot's centre. τ² comes from
the one engine of ``pool`` (:func:`msc_meta.pooling.tau2.estimate_tau2`
with the design ``X``), and so do β̂, its covariance and QE
(:func:`~msc_meta.pooling.tau2.wls_fit`, a QR of ``W^½X``: O(k p²), no k×k
matrix). An intercept-only model (X = 1) takes exactly the path of ``pool``.
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
from msc_meta.pooling.tau2 import as_batch, as_design, estimate_tau2, generalized_q, typical_variance, wls_fit

def regression_methods() -> tuple[str, ...]:
    """The methods a meta-regression fits: the inverse-variance ones (FE and every tau² estimator)."""
    return registry.methods(inverse_variance=True)


def _raw_counts_only(method) -> bool:
    """MH and Peto pool raw 2x2 tables: no yi, vi to regress, cumulate or test."""
    spec = registry.method(method) if registry.is_method(method) else None
    return spec is not None and spec.kind == "common" and not spec.inverse_variance

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


# --------------------------------------------------------------------------- design


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


# --------------------------------------------------------------------------- tau²


def tau2_mods(yi, vi, X, method: str) -> tuple[float, int | None]:
    """Residual heterogeneity τ² of a meta-regression, as metafor ``rma.uni``: ``(tau2, iterations)``.

    The estimators (DL, HE, HS, SJ, ML, REML, EB, PM; Viechtbauer 2005,
    J Educ Behav Stat 30:261; Raudenbush 2009) are those of
    :func:`msc_meta.pooling.tau2.estimate_tau2` with the design ``X``, which
    also rescues a Fisher scoring that does not converge; a ComputationError
    only where even that fails. ``iterations`` is None for the
    non-iterative estimators.
    """
    est = _estimate(yi, vi, X, method)
    iterative = registry.is_method(est.method) and registry.method(est.method).fisher_scoring
    return float(est.tau2[0]), (int(est.iterations[0]) if iterative else None)


def _estimate(yi, vi, X, method):
    Y, V, mask, _ = as_batch(yi, vi)
    est = estimate_tau2(method, Y, V, mask, X=np.asarray(X, dtype=float)[None])
    if not est.converged[0]:
        raise ComputationError(est.messages[0])
    return est


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
        # metafor warns here too; the fit keeps its digits (tests/test_tau2_engine.py)
        notes.append(variance_ratio_note(ratio))
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

    est = _estimate(yi, vi, X, method)
    tau2 = float(est.tau2[0])
    iterations = int(est.iterations[0]) if registry.method(method).fisher_scoring else None
    notes.extend(est.iteration_notes(0))     # as pool says them
    Y, V, mask, _ = as_batch(yi, vi)
    design = as_design(X, Y, mask)           # None for the intercept-only model
    beta, inv, rss = (a[0] for a in wls_fit(Y, V, mask, np.array([tau2]), design))
    s2w = 1.0
    ddf = None
    if knha:
        if method == "FE":
            notes.append("Knapp-Hartung is not meant for FE models (metafor warns too)")
        s2w = 0.0 if rss <= np.finfo(float).eps else float(rss) / (k - p)
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
        qe = max(0.0, float(generalized_q(Y, V, mask, np.zeros(1), design)[0][0]))
        qe_pval = float(special.chdtrc(k - p, qe))
        vt = float(typical_variance(V, mask, design)[0])
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
            r2_value = _adjusted_r2_weighted(yi, vi, design)
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


def _adjusted_r2_weighted(yi, vi, design):
    # summary(lm(yi ~ X, weights = 1/vi))$adj.r.squared, truncated at 0, in percent.
    k, p = design.shape[1:]
    if np.allclose(yi, yi[0]):
        return 0.0
    if k <= p:
        # saturated: lm's adjusted R² is 0/0 (R gives NaN with a warning)
        return float("nan")
    Y, V, mask, _ = as_batch(yi, vi)
    zero = np.zeros(1)
    rss = wls_fit(Y, V, mask, zero, design)[2][0]
    tss = generalized_q(Y, V, mask, zero)[0][0]
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
