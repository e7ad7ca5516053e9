"""Random-intercept logistic model (binomial-normal GLMM) for single-arm proportions.

Model (metafor ``rma.glmm(measure="PLO", method="ML")``, fitted there by
``lme4::glmer(cbind(xi, ni - xi) ~ 1 + (1 | study), family=binomial,
nAGQ=7)``): study i has ``x_i ~ Binomial(n_i, expit(beta + tau * u_i))``
with ``u_i ~ N(0, 1)``. The exact binomial likelihood replaces the normal
approximation of the inverse-variance methods, so 0/n and n/n studies need
no continuity correction and tiny studies are not given spurious precision
(Stijnen, Hamza & Ozdemir 2010, Stat Med 29:3046; Hamza et al. 2008).

Marginal likelihood: adaptive Gauss-Hermite quadrature exactly as lme4's
``glmerAGQ``: per study, the conditional mode ``u*`` of
``d(u) = u^2 + binomial deviance residual`` and the scale
``s = (1 + tau^2 n p(1-p))^(-1/2)`` at the mode; then

    -2 log L_i = d(u*) + log(1/s^2) - 2 log sum_k w_k exp(-(d(u* + z_k s) - d(u*))/2 + z_k^2/2)

with the nAGQ-point Gauss-Hermite rule for the standard normal (lme4
``GHrule``). nAGQ = 1 is the Laplace approximation. (beta, tau) maximise
the sum (ML) by damped Newton on the exact gradient of this AGQ deviance
(differentiated through the modes by the implicit function theorem) until
the Newton step is ~1e-10, so the optimum does not depend on an optimiser's
stopping rule; the standard error of beta comes from the inverse of the
observed information of (tau, beta), as lme4's ``vcov()`` does, with the
Hessian from central differences of the exact gradient.

Heterogeneity, as ``rma.glmm`` reports it: the Wald-type and likelihood-ratio
tests of the fixed-effect model against the saturated (one logit per study)
logistic regression, both fitted by R's ``glm()`` whose IRLS iterations are
reproduced here (so that 0/n and n/n studies, whose saturated fit diverges,
give R's numbers); I^2 and H^2 from tau^2 and the "typical" within-study
variance of the escalc logits (``vi`` with 1/2 added to studies with a zero
cell), as metafor does for GLMMs.

numpy and the standard library only: no scipy, so that ``pool``'s guidance
can fit the model to check that a suggested ``--method GLMM`` runs
(``msc_meta.pooling.guidance``) without paying scipy's import. The normal
and chi² functions come from ``msc_meta._dist``; expit, log_expit and
xlogy are scipy.special's formulas (below); the log binomial coefficients
are constants of the data (``_log_choose``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from msc_meta._dist import chdtrc, gammaln, ndtr, ndtri
from msc_meta.errors import ComputationError, UsageError
from msc_meta.pooling.glmm_checks import or_divergence, or_refusal, plo_refusal
from msc_meta.pooling.results import PoolResult

# lme4's logit link clamps eta to +-30 (DBL_EPSILON floors); glm() then works
# with these clamped values, which decide where the saturated fit stops.
_EPS = np.finfo(float).eps
_THRESH = 30.0
# Safety bounds for pathological data (an ordinary fit converges in < 15
# Newton iterations and < 800 AGQ evaluations of the two-arm model).
# Near-separated two-arm data are refused by an explicit rule before
# these are reached (glmm_checks.or_divergence).
_MAX_NEWTON = 100
_OR_MAX_EVALUATIONS = 15000
_NOT_CONVERGED = ("the GLMM did not converge (the likelihood seems to have no finite maximum: studies "
                  "close to complete separation); use an inverse-variance method such as --method REML, "
                  "or `msc-meta bayes`")


# ---------------------------------------------------------------------------
# scipy.special's logistic pieces, same formulas (scipy/special _logit.h, xlogy)
# ---------------------------------------------------------------------------

def expit(x):
    """1 / (1 + e^-x), scipy.special.expit's formula (0 for x < -709, where e^-x overflows)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def log_expit(x):
    """log expit(x) without cancellation, scipy.special.log_expit's piecewise formula.

    scipy: x - log1p(e^x) for x < 0, -log1p(e^-x) otherwise; written here as
    min(x, 0) - log1p(e^-|x|), the same floating-point operations on both
    sides (one pass, no branch arrays). No exponential overflows, and log p
    stays finite (about x) far into the lower tail.
    """
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def xlogy(x, y):
    """x log y with 0 log y = 0 (scipy.special.xlogy): the binomial's 0 log 0 terms.

    Here x are counts and y proportions, never nan (where scipy's 0 log nan
    would be nan); log y = -inf for y = 0 < x, as scipy, without a warning.
    """
    with np.errstate(divide="ignore"):
        return x * np.log(np.where(x == 0, 1.0, y))


def _log_choose(x, n):
    """log C(n, x) per study/arm: constants of the data, from math.lgamma (few values)."""
    return gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)


@dataclass(frozen=True)
class GlmmFit:
    """A fitted binomial-normal GLMM (logit link, random intercept).

    ``pool`` is the same fit as a ``PoolResult`` (method ``"GLMM"``; its
    ``q`` is the Wald-type test, as metafor prints first). The other fields
    are what ``rma.glmm`` reports beyond it.
    """

    pool: PoolResult
    beta: float
    se: float
    tau2: float
    qe_wld: float            # Wald-type test for heterogeneity (metafor QE.Wld)
    qe_wld_pval: float
    qe_lrt: float            # likelihood-ratio test (metafor QE.LRT)
    qe_lrt_pval: float
    qe_df: int
    loglik: float            # ML log-likelihood (exact saturated model as reference)
    loglik_fe: float         # fixed-effect logistic model
    deviance: float          # -2 log L relative to the saturated model (lme4's deviance)
    vt: float                # typical within-study variance used for I^2
    n_agq: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    gradient: tuple[float, float] = (0.0, 0.0)   # d deviance / d (tau, beta) at the optimum

    def to_dict(self) -> dict:
        out = self.pool.to_dict()
        out.update({
            "qe_wld": _num(self.qe_wld), "qe_wld_pval": _num(self.qe_wld_pval),
            "qe_lrt": _num(self.qe_lrt), "qe_lrt_pval": _num(self.qe_lrt_pval),
            "qe_df": self.qe_df, "loglik": _num(self.loglik), "n_agq": self.n_agq,
        })
        return out


def _num(x):
    return x if x is not None and math.isfinite(x) else None


def gauss_hermite_normal(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for integrals against the standard normal density (lme4 ``GHrule``)."""
    from numpy.polynomial.hermite_e import hermegauss

    z, w = hermegauss(n_points)
    return z, w / w.sum()


# ---------------------------------------------------------------------------
# binomial pieces
# ---------------------------------------------------------------------------

def _dev_resid(eta, x, n):
    """Binomial deviance residual of each study at logit eta (saturated = 0)."""
    # 2 [x log(x/(n p)) + (n-x) log((n-x)/(n (1-p)))], with 0 log 0 = 0;
    # log p and log(1-p) from log_expit so that extreme eta stay finite.
    m = n - x
    return 2.0 * (xlogy(x, x / n) - x * log_expit(eta) + xlogy(m, m / n) - m * log_expit(-eta))


def _conditional_modes(a, c, theta, x, n, u0):
    """Per-study mode of ``d(u) = u^2 + sum_j devres(a_j + theta c_j u)``, safeguarded Newton.

    ``a``, ``x``, ``n`` are (k, m): m observations per study sharing one
    random effect with coefficients ``c`` (m,). d is convex in u, so Newton
    with step halving converges; it stops when the step is below 1e-13
    (relative), or after 200 steps (quadratic convergence needs < 10).
    """
    def dcond(u):
        return u * u + _dev_resid(a + theta * c * u[:, None], x, n).sum(axis=1)

    u = u0.copy()
    if theta == 0.0:
        return np.zeros(x.shape[0])
    dc = dcond(u)
    for _ in range(200):
        p = expit(a + theta * c * u[:, None])
        grad = 2.0 * u - 2.0 * theta * np.sum(c * (x - n * p), axis=1)
        hess = 2.0 + 2.0 * theta * theta * np.sum(c * c * n * p * (1.0 - p), axis=1)
        step = grad / hess
        new_u = u - step
        new_dc = dcond(new_u)
        # A full Newton step can overshoot when theta is large: halve where it did not decrease.
        for _halving in range(60):
            bad = new_dc > dc + 1e-12 * np.abs(dc)
            if not bad.any():
                break
            step = np.where(bad, step / 2.0, step)
            new_u = u - step
            new_dc = dcond(new_u)
        u, dc = new_u, new_dc
        if np.max(np.abs(step)) < 1e-13 * (1.0 + np.max(np.abs(u))):
            break
    return u


def _agq_terms(a, c, theta, x, n, nodes, weights, u0, with_grad=False):
    """Per-study lme4 AGQ deviance ``-2 log L_i`` and, optionally, its exact gradient.

    ``eta_ij = a_ij + theta c_j u_i`` (see ``_conditional_modes``). With
    ``d_k = d(u* + z_k s)`` the deviance is (lme4 ``glmerAGQ``)

        -2 log L_i = log(1 + theta^2 W) - 2 log sum_k w_k exp(-d_k/2 + z_k^2/2),

    ``W = sum_j c_j^2 n_j p_j (1 - p_j)`` at the mode, ``s = (1 + theta^2 W)^(-1/2)``.
    The gradient in ``a_ij`` and ``theta`` differentiates through the mode by
    the implicit function theorem (``d'(u*) = 0``) and through ``s``.
    Returns (terms, modes) or (terms, modes, dterms/da (k, m), dterms/dtheta (k,)).
    """
    theta = float(theta)
    u = _conditional_modes(a, c, theta, x, n, u0)
    p = expit(a + theta * c * u[:, None])
    v = n * p * (1.0 - p)
    big_w = np.sum(c * c * v, axis=1)
    big_l = 1.0 + theta * theta * big_w
    s = big_l ** -0.5
    uk = u[:, None] + nodes[None, :] * s[:, None]                       # (k, K)
    eta_k = a[:, :, None] + theta * c[None, :, None] * uk[:, None, :]   # (k, m, K)
    dk = uk * uk + _dev_resid(eta_k, x[:, :, None], n[:, :, None]).sum(axis=1)
    expo = -0.5 * dk + 0.5 * nodes[None, :] ** 2 + np.log(weights)[None, :]
    top = expo.max(axis=1)
    lse = top + np.log(np.sum(np.exp(expo - top[:, None]), axis=1))
    terms = np.log(big_l) - 2.0 * lse
    if not with_grad:
        return terms, u
    pi_k = np.exp(expo - lse[:, None])                                  # node posteriors
    r = x - n * p
    # mode derivatives (implicit function theorem on 2u - 2 theta sum c r = 0)
    du_da = -theta * c * v / big_l[:, None]                             # (k, m)
    du_dt = (np.sum(c * r, axis=1) - theta * u * big_w) / big_l         # (k,)
    # log(1 + theta^2 W) and s = exp(-ld/2): W moves with eta* = a + theta c u*
    dv = c * c * v * (1.0 - 2.0 * p)                                    # dW/deta*_j
    dld_da = theta * theta * (dv + np.sum(dv * theta * c, axis=1, keepdims=True) * du_da) / big_l[:, None]
    deta_dt = c * u[:, None] + theta * c * du_dt[:, None]
    dld_dt = (2.0 * theta * big_w + theta * theta * np.sum(dv * deta_dt, axis=1)) / big_l
    # d_k at the nodes: partials, and d'(u_k) times d(u_k) = du* + z_k ds
    rk = x[:, :, None] - n[:, :, None] * expit(eta_k)                   # (k, m, K)
    dprime = 2.0 * uk - 2.0 * theta * np.sum(c[None, :, None] * rk, axis=1)   # (k, K)
    zs = nodes[None, :] * (-0.5 * s[:, None])                           # d(z_k s)/d ld
    # a_il: partial -2 r_lk, plus dprime (du*/da_l + z_k ds/da_l)
    ddk_da = (-2.0 * rk + dprime[:, None, :] * (du_da[:, :, None] + zs[:, None, :] * dld_da[:, :, None]))
    ddk_dt = (-2.0 * uk * np.sum(c[None, :, None] * rk, axis=1)
              + dprime * (du_dt[:, None] + zs * dld_dt[:, None]))
    g_a = dld_da + np.sum(pi_k[:, None, :] * ddk_da, axis=2)
    g_t = dld_dt + np.sum(pi_k * ddk_dt, axis=1)
    return terms, u, g_a, g_t


def agq_deviance(beta_eta, theta, x, n, nodes, weights, u0=None):
    """lme4's AGQ deviance (-2 log L relative to the saturated model) and the modes.

    ``beta_eta`` is the fixed part of the linear predictor per study.
    """
    x = np.asarray(x, dtype=float)
    beta_eta = np.broadcast_to(np.asarray(beta_eta, dtype=float), x.shape)
    u0 = np.zeros(x.shape[0]) if u0 is None else u0
    terms, u = _agq_terms(beta_eta[:, None], np.ones(1), abs(float(theta)), x[:, None],
                          np.asarray(n, dtype=float)[:, None], nodes, weights, u0)
    return float(np.sum(terms)), u


def _loglik_saturated(x, n):
    m = n - x
    return float(np.sum(_log_choose(x, n) + xlogy(x, x / n) + xlogy(m, m / n)))


def _binom_loglik(x, n, mu):
    m = n - x
    return float(np.sum(_log_choose(x, n) + xlogy(x, mu) + xlogy(m, 1.0 - mu)))


def _linkinv(eta):
    # R's C-level logit_linkinv: exp(eta) floored / capped beyond +-30.
    e = np.where(eta < -_THRESH, _EPS, np.where(eta > _THRESH, 1.0 / _EPS, np.exp(np.clip(eta, -_THRESH, _THRESH))))
    return e / (1.0 + e)


def _mu_eta(eta):
    opexp = 1.0 + np.exp(np.clip(eta, -_THRESH, _THRESH))
    return np.where((eta > _THRESH) | (eta < -_THRESH), _EPS, np.exp(np.clip(eta, -_THRESH, _THRESH)) / (opexp * opexp))


def _glm_binomial_irls(x, n, design, epsilon=1e-8, maxit=25):
    """R's ``glm.fit`` for a binomial logit model, iteration for iteration.

    Returns (coef, eta, mu, w) where ``w`` are the working weights of the last
    iteration (those R's ``vcov()`` uses). Reproducing R matters only for the
    saturated fit with 0/n or n/n studies, whose MLE is infinite: R stops at
    its deviance criterion and the heterogeneity tests use that stopping point.
    """
    y = x / n
    mu = (n * y + 0.5) / (n + 1.0)
    eta = np.log(mu / (1.0 - mu))
    devold = float(np.sum(_dev_resid_mu(y, mu, n)))
    coef = None
    w2 = None
    for _ in range(maxit):
        varmu = mu * (1.0 - mu)
        mu_eta = _mu_eta(eta)
        z = eta + (y - mu) / mu_eta
        w2 = n * mu_eta * mu_eta / varmu
        sw = np.sqrt(w2)
        coef, *_ = np.linalg.lstsq(design * sw[:, None], z * sw, rcond=None)
        eta = design @ coef
        mu = _linkinv(eta)
        dev = float(np.sum(_dev_resid_mu(y, mu, n)))
        if abs(dev - devold) / (abs(dev) + 0.1) < epsilon:
            break
        devold = dev
    return coef, eta, mu, w2


def _dev_resid_mu(y, mu, n):
    return 2.0 * n * (xlogy(y, y / mu) + xlogy(1.0 - y, (1.0 - y) / (1.0 - mu)))


def _heterogeneity_tests(x, n):
    """QE.Wld, QE.LRT, ll.FE, ll.QE as rma.glmm (glm fits of the FE and saturated models)."""
    k = x.shape[0]
    _, _, mu_fe, _ = _glm_binomial_irls(x, n, np.ones((k, 1)))
    ll_fe = _binom_loglik(x, n, mu_fe)
    # Saturated: one logit per study. The Wald test that all logits are equal
    # is invariant to the parametrisation (R uses intercept + k-1 contrasts).
    _, eta_qe, mu_qe, w_qe = _glm_binomial_irls(x, n, np.eye(k))
    ll_qe = _binom_loglik(x, n, mu_qe)
    eta_bar = np.sum(w_qe * eta_qe) / np.sum(w_qe)
    qe_wld = max(0.0, float(np.sum(w_qe * (eta_qe - eta_bar) ** 2)))
    qe_lrt = max(0.0, -2.0 * (ll_fe - ll_qe))
    return qe_wld, qe_lrt, ll_fe, ll_qe


def _fd_hessian(gradient, par, rel=1e-5):
    """Hessian as central differences of the exact gradient, symmetrised.

    Differencing the analytic gradient (not the deviance twice, as lme4's
    ``deriv12`` does) leaves an error of ~1e-9 relative.
    """
    m = par.shape[0]
    hess = np.empty((m, m))
    for j in range(m):
        e = np.zeros(m)
        e[j] = rel * max(1.0, abs(par[j]))
        hess[:, j] = (gradient(par + e) - gradient(par - e)) / (2.0 * e[j])
    return 0.5 * (hess + hess.T)


def _newton_direction(hess, g):
    """Newton direction -H^-1 g, with |eigenvalues| (floored) where H is not positive definite."""
    lam, vec = np.linalg.eigh(hess)
    definite = bool(lam.min() > 0.0)
    lam = np.maximum(np.abs(lam), 1e-8 * max(1.0, float(np.max(np.abs(lam)))))
    return -(vec @ ((vec.T @ g) / lam)), definite


def _minimise(objective, gradient, par, *, max_step=2.0, max_iter=_MAX_NEWTON, diverged=None):
    """Damped Newton on a smooth deviance until the Newton step is below 1e-10 (relative).

    Each iteration: exact gradient, Hessian by ``_fd_hessian``, the Newton
    step capped at ``max_step`` per coordinate and halved until the deviance
    decreases (Armijo). A step below 1e-6 is taken whole when the deviance
    does not rise beyond rounding: in that quadratic-convergence region the
    decrease (~|g|^2) is smaller than the rounding of the deviance. Converged
    when the Hessian is positive definite and the Newton step (so the
    gradient) is ~0; ``ComputationError`` after ``max_iter`` iterations.
    ``diverged(par)``, if given, is asked after every accepted step and
    returns a refusal message (raised) or None.
    """
    par = np.array(par, dtype=float)
    f = objective(par)
    for _ in range(max_iter):
        g = gradient(par)
        step, definite = _newton_direction(_fd_hessian(gradient, par), g)
        step *= min(1.0, max_step / max(float(np.max(np.abs(step))), 1e-300))
        scale = 1.0 + float(np.max(np.abs(par)))
        t = 1.0
        for _halving in range(60):
            new = par + t * step
            fn = objective(new)
            if fn <= f + 1e-4 * t * float(g @ step) or (
                    t * np.max(np.abs(step)) < 1e-6 * scale and fn <= f + 1e-12 * (1.0 + abs(f))):
                break
            t /= 2.0
        else:
            raise ComputationError(_NOT_CONVERGED)
        par, f = new, fn
        refusal = diverged(par) if diverged is not None else None
        if refusal is not None:
            raise ComputationError(refusal)
        if definite and np.max(np.abs(step)) < 1e-10 * scale:
            return par
    raise ComputationError(_NOT_CONVERGED)


def _fit_from_starts(deviance, gradient, starts, diverged=None):
    """``_minimise`` from the first start, and from the next ones only while the fit ends at tau = 0.

    The likelihood of these models is usually unimodal in tau > 0; the
    boundary is the risky case. Returns (|theta|, beta) and the deviance.
    """
    best, best_dev = None, math.inf
    for start in starts:
        if best is not None and best[0] > 1e-6:
            break
        par = _minimise(deviance, gradient, start, diverged=diverged)
        par[0] = abs(par[0])                     # the deviance is even in theta
        dev = deviance(par)
        if dev < best_dev:
            best, best_dev = par, dev
    return best, best_dev


def _dl_start(yi, vi, centre):
    """Starting points (theta, beta): a DerSimonian-Laird tau (at least 0.3) and tau = 1."""
    wi = 1.0 / vi
    ybar = np.sum(wi * yi) / wi.sum()
    q = float(np.sum(wi * (yi - ybar) ** 2))
    k = yi.shape[0]
    tau2_dl = max(0.0, (q - (k - 1)) / (wi.sum() - np.sum(wi ** 2) / wi.sum()))
    return [np.array([max(math.sqrt(tau2_dl), 0.3), centre]), np.array([1.0, centre])]


def _plo_objective(x, n, nodes, weights):
    """Deviance and exact gradient in (theta, beta) of the PLO model (modes warm-started)."""
    k = x.shape[0]
    xs, ns, ones = x[:, None], n[:, None], np.ones(1)
    modes = {"u": np.zeros(k)}

    def evaluate(par, with_grad):
        out = _agq_terms(np.full((k, 1), float(par[1])), ones, float(par[0]), xs, ns, nodes, weights,
                         modes["u"], with_grad)
        modes["u"] = out[1]
        return out

    def deviance(par):
        return float(np.sum(evaluate(par, False)[0]))

    def gradient(par):
        _, _, g_a, g_t = evaluate(par, True)
        return np.array([np.sum(g_t), np.sum(g_a)])

    return deviance, gradient


def glmm_plo(events, n, *, n_agq: int = 7, level: float = 95.0, cc: float = 0.5,
             starts=None) -> GlmmFit:
    """Fit the random-intercept logistic model to single-arm counts ``events/n`` by ML.

    Matches metafor ``rma.glmm(measure="PLO", xi=events, ni=n, nAGQ=n_agq)``
    (lme4 backend): ``beta`` (pooled logit), its Wald z test and CI, tau^2,
    I^2 / H^2, QE.Wld and QE.LRT. ``cc`` is only used for the escalc
    variances behind I^2 (metafor's ``add=1/2``), never for the fit.
    ``starts`` (a list of (tau, beta)) replaces the default starting points.
    """
    x = np.asarray(events, dtype=float).ravel()
    n = np.asarray(n, dtype=float).ravel()
    k = x.shape[0]
    _check_plo(x, n, n_agq)
    nodes, weights = gauss_hermite_normal(int(n_agq))
    deviance, gradient = _plo_objective(x, n, nodes, weights)

    a = np.where((x == 0) | (x == n), cc, 0.0)
    yi = np.log((x + a) / (n - x + a))
    vi = 1.0 / (x + a) + 1.0 / (n - x + a)
    beta_fe = math.log(x.sum() / (n - x).sum())
    if starts is None:
        starts = _dl_start(yi, vi, beta_fe)
    par, dev = _fit_from_starts(deviance, gradient, [np.asarray(s, dtype=float) for s in starts])

    # The boundary tau = 0 is the fixed-effect logistic model, whose MLE is
    # closed-form; tau = 0 is a stationary point of the (even) deviance.
    dev_fe = deviance(np.array([0.0, beta_fe]))
    if dev >= dev_fe - 1e-10 or par[0] < 1e-6:
        par = np.array([0.0, beta_fe])
    theta, beta = float(par[0]), float(par[1])
    dev = deviance(par)

    # Observed information of (theta, beta) -> var(beta): lme4 vcov() = 2 H^-1.
    if theta > 0.0:
        var_beta = _var_beta(_fd_hessian(gradient, par))
    else:
        # At theta = 0, lme4 falls back to the fixed-effect information.
        p = expit(beta)
        var_beta = 1.0 / float(np.sum(n * p * (1.0 - p)))

    qe_wld, qe_lrt, ll_fe, ll_qe = _heterogeneity_tests(x, n)
    return _glmm_fit(
        "PLO", expit, k=k, beta=beta, var_beta=var_beta, theta=theta, wi=1.0 / vi,
        qe_wld=qe_wld, qe_lrt=qe_lrt, ll_fe=ll_fe, loglik=_loglik_saturated(x, n) - dev / 2.0,
        dev=dev, n_agq=n_agq, level=level, gradient=gradient(par) if theta > 0.0 else np.zeros(2),
        model="GLMM (binomial-normal, logit link)",
        boundary="the fit equals the fixed-effect logistic model")


def _var_beta(hess):
    """var(beta) = the beta element of 2 H^-1 (lme4 ``vcov()``), H the deviance Hessian."""
    try:
        var_beta = float(2.0 * np.linalg.inv(hess)[1, 1])
    except np.linalg.LinAlgError:
        var_beta = float("nan")
    if not (var_beta > 0):
        raise ComputationError("the GLMM information matrix is not positive definite")
    return var_beta


def _check_plo(x, n, n_agq):
    """Input checks of ``glmm_plo`` (UsageError), and data with no finite ML estimate (ComputationError)."""
    k = x.shape[0]
    if n.shape[0] != k:
        raise UsageError("events and n must have the same length")
    if k < 2:
        raise UsageError("the GLMM needs at least 2 studies")
    if np.any(n < 1) or np.any(x < 0) or np.any(x > n):
        raise UsageError("the GLMM needs 0 <= events <= n and n >= 1")
    refusal = plo_refusal(x, n)
    if refusal is not None:
        raise ComputationError(refusal)
    if int(n_agq) < 1:
        raise UsageError("nAGQ must be at least 1")


def _glmm_fit(measure, back, *, k, beta, var_beta, theta, wi, qe_wld, qe_lrt, ll_fe, loglik,
              dev, n_agq, level, gradient, model, boundary) -> GlmmFit:
    """Wald CI and test, prediction interval, metafor's QE tests and I²/H² of a fitted GLMM.

    metafor's I² for GLMMs sets tau² against the typical within-study
    variance of the escalc values (i2def "1": (k-p)/tr(P)); ``wi`` are their
    inverse variances. ``back`` maps the analysis scale to the natural one.
    """
    se = math.sqrt(var_beta)
    tau2 = theta * theta
    qe_df = k - 1
    qe_wld_p = float(chdtrc(qe_df, qe_wld))
    qe_lrt_p = float(chdtrc(qe_df, qe_lrt))
    vt = (k - 1) / (wi.sum() - np.sum(wi ** 2) / wi.sum())
    i2 = 100.0 * tau2 / (vt + tau2)
    h2 = tau2 / vt + 1.0

    crit = float(ndtri(1.0 - (1.0 - level / 100.0) / 2.0))
    zval = beta / se
    pval = float(2.0 * ndtr(-abs(zval)))
    lo, hi = beta - crit * se, beta + crit * se
    pi_half = crit * math.sqrt(var_beta + tau2)
    notes = [
        f"{model}, ML with {int(n_agq)}-point adaptive Gauss-Hermite quadrature; "
        "no continuity correction in the fit",
        f"heterogeneity: Wald-type QE = {qe_wld:.4g} (p = {qe_wld_p:.3g}), "
        f"likelihood-ratio QE = {qe_lrt:.4g} (p = {qe_lrt_p:.3g}), df = {qe_df}",
        "study weights are not defined for the GLMM (exact binomial likelihood)",
    ]
    if tau2 == 0.0:
        notes.append(f"tau^2 estimated at 0 (boundary): {boundary}")
    pool = PoolResult(
        measure=measure, method="GLMM", k=k, theta=beta, se=se,
        theta_ci_low=lo, theta_ci_high=hi,
        estimate=float(back(beta)), ci_low=float(back(lo)), ci_high=float(back(hi)),
        stat=zval, pval=pval, tau2=tau2, tau=theta, i2=float(i2), h2=float(h2),
        q=qe_wld, q_df=qe_df, q_pval=qe_wld_p,
        weights=tuple([float("nan")] * k), level=float(level), test="z", random=True,
        theta_pi_low=beta - pi_half, theta_pi_high=beta + pi_half,
        pi_low=float(back(beta - pi_half)), pi_high=float(back(beta + pi_half)), pi_method="z",
        notes=tuple(notes),
    )
    return GlmmFit(pool=pool, beta=beta, se=se, tau2=tau2, qe_wld=qe_wld, qe_wld_pval=qe_wld_p,
                   qe_lrt=qe_lrt, qe_lrt_pval=qe_lrt_p, qe_df=qe_df, loglik=loglik, loglik_fe=ll_fe,
                   deviance=dev, vt=float(vt), n_agq=int(n_agq), notes=tuple(notes),
                   gradient=(float(gradient[0]), float(gradient[1])))


# ---------------------------------------------------------------------------
# two-arm odds ratio: unconditional model with fixed study effects (UM.FS)
# ---------------------------------------------------------------------------

def _profile_intercepts(study_fn, alpha):
    """Profile out the study intercepts alpha_i of UM.FS: per-study safeguarded Newton.

    ``study_fn(alpha)`` returns ``_agq_terms`` with gradient; study i's
    term depends on alpha_i only, so each alpha_i is a 1-d problem (exact
    gradient, curvature by central differences of it). Stops when every step
    is below 1e-12 (relative); ``ComputationError`` if an intercept runs
    off (no finite maximum) within 100 steps. Returns alpha and its terms.
    """
    out = study_fn(alpha)
    for _ in range(100):
        g = out[2].sum(axis=1)
        h = 1e-6 * np.maximum(1.0, np.abs(alpha))
        curv = (study_fn(alpha + h)[2].sum(axis=1) - study_fn(alpha - h)[2].sum(axis=1)) / (2.0 * h)
        step = np.clip(np.where(curv > 0, g / np.where(curv > 0, curv, 1.0), np.sign(g)), -2.0, 2.0)
        for _halving in range(60):
            new_out = study_fn(alpha - step)
            bad = new_out[0] > out[0] + 1e-12 * (1.0 + np.abs(out[0]))
            if not bad.any():
                break
            step = np.where(bad, step / 2.0, step)
        alpha, out = alpha - step, new_out
        if np.max(np.abs(step)) < 1e-12 * (1.0 + np.max(np.abs(alpha))):
            return alpha, out
    raise ComputationError(_NOT_CONVERGED)


def _or_objective(x, n, nodes, weights):
    """Profile deviance in (theta, beta) of UM.FS and its exact gradient (envelope theorem).

    At the profiled intercepts d dev / d alpha = 0, so the gradient in
    (theta, beta) is the partial one. Counts AGQ evaluations against
    ``_OR_MAX_EVALUATIONS``; remembers the last point's result.
    """
    k = x.shape[0]
    zcoef, treat = np.array([0.5, -0.5]), np.array([1.0, 0.0])
    state = {"u": np.zeros(k), "alpha": np.log((x[:, 1] + 0.5) / (n[:, 1] - x[:, 1] + 0.5)), "calls": 0,
             "last": (None, None)}

    def study_fn(theta, beta):
        def terms(alpha):
            state["calls"] += 1
            if state["calls"] > _OR_MAX_EVALUATIONS:
                raise ComputationError(_NOT_CONVERGED)
            out = _agq_terms(alpha[:, None] + beta * treat[None, :], zcoef, theta, x, n, nodes, weights,
                             state["u"], True)
            state["u"] = out[1]
            return out
        return terms

    def profile(par):
        key = (float(par[0]), float(par[1]))
        if state["last"][0] != key:
            alpha, out = _profile_intercepts(study_fn(*key), state["alpha"])
            state["alpha"] = alpha
            state["last"] = (key, (float(np.sum(out[0])), np.array([np.sum(out[3]), np.sum(out[2][:, 0])])))
        return state["last"][1]

    return (lambda par: profile(par)[0]), (lambda par: profile(par)[1].copy()), state


def glmm_or(events_t, n_t, events_c, n_c, *, n_agq: int = 7, level: float = 95.0,
            cc: float = 0.5, starts=None) -> GlmmFit:
    """Binomial-normal GLMM for two-arm counts: metafor ``rma.glmm(measure="OR", model="UM.FS")``.

    Unconditional model with fixed study effects (Turner et al. 2000, Stat
    Med 19:3417; Jackson et al. 2018, Stat Med 37:1059 "model 4" with the
    +-1/2 coding): ``logit p_i,T = alpha_i + beta + tau u_i / 2`` and
    ``logit p_i,C = alpha_i - tau u_i / 2``, ``u_i ~ N(0, 1)``, so the
    log odds ratio of study i is ``beta + tau u_i``. ML by lme4's AGQ
    (``nAGQ`` points); the study intercepts ``alpha_i`` are profiled out
    study by study, and se(beta) comes from the profile's observed
    information (equal to the beta element of the full inverse information).
    A fit whose tau² passes ``glmm_checks.OR_TAU2_MAX`` (near-separated
    studies) is refused with a ComputationError naming what runs instead.
    Studies with no events (or only events) in both arms carry no
    information and must be left out by the caller (metafor
    ``drop00=TRUE``); here they raise ``UsageError``. Heterogeneity tests
    (Wald-type and LRT of the common-OR against the study-specific-OR
    logistic model) and I^2 (escalc OR variances with ``cc`` added to
    studies with a zero cell) are metafor's. ``starts`` (a list of
    (tau, beta)) replaces the default starting points.
    """
    a = np.asarray(events_t, dtype=float).ravel()
    n1 = np.asarray(n_t, dtype=float).ravel()
    c = np.asarray(events_c, dtype=float).ravel()
    n2 = np.asarray(n_c, dtype=float).ravel()
    k = a.shape[0]
    _check_or(a, n1, c, n2, n_agq)
    nodes, weights = gauss_hermite_normal(int(n_agq))
    x = np.column_stack([a, c])
    n = np.column_stack([n1, n2])
    deviance, gradient, _ = _or_objective(x, n, nodes, weights)

    add = np.where((a == 0) | (c == 0) | (a == n1) | (c == n2), cc, 0.0)
    yi = np.log((a + add) * (n2 - c + add) / ((n1 - a + add) * (c + add)))
    vi = 1.0 / (a + add) + 1.0 / (n1 - a + add) + 1.0 / (c + add) + 1.0 / (n2 - c + add)
    if starts is None:
        starts = _dl_start(yi, vi, float(np.sum(yi / vi) / np.sum(1.0 / vi)))
    # par[0] is tau (its sign is free): refuse a fit running off to tau² -> infinity
    par, dev = _fit_from_starts(deviance, gradient, [np.asarray(s, dtype=float) for s in starts],
                                diverged=lambda par: or_divergence(a, n1, c, n2, float(par[0]) ** 2))

    # Boundary tau = 0: the common-OR logistic model with study intercepts.
    beta0 = _minimise(lambda b: deviance(np.array([0.0, b[0]])),
                      lambda b: gradient(np.array([0.0, b[0]]))[1:], np.array([par[1]]))
    if dev >= deviance(np.array([0.0, beta0[0]])) - 1e-10 or par[0] < 1e-6:
        par = np.array([0.0, float(beta0[0])])
    theta, beta = float(par[0]), float(par[1])
    dev = deviance(par)
    if theta > 0.0:
        var_beta = _var_beta(_fd_hessian(gradient, par))
    else:
        var_beta = 2.0 / float(_fd_hessian(lambda b: gradient(np.array([0.0, b[0]]))[1:], par[1:])[0, 0])
        if not (var_beta > 0):
            raise ComputationError("the GLMM information matrix is not positive definite")
    qe_wld, qe_lrt, ll_fe = _or_heterogeneity_tests(x, n)
    xr, nr = x.ravel(), n.ravel()
    return _glmm_fit(
        "OR", np.exp, k=k, beta=beta, var_beta=var_beta, theta=theta, wi=1.0 / vi,
        qe_wld=qe_wld, qe_lrt=qe_lrt, ll_fe=ll_fe, loglik=_loglik_saturated(xr, nr) - dev / 2.0,
        dev=dev, n_agq=n_agq, level=level, gradient=gradient(par) if theta > 0.0 else np.zeros(2),
        model="GLMM (binomial-normal, unconditional model with fixed study effects, metafor model UM.FS)",
        boundary="the fit equals the common-OR logistic model")


def _or_heterogeneity_tests(x, n):
    """QE.Wld, QE.LRT and ll.FE of UM.FS: common OR (study intercepts) vs study-specific ORs.

    Both fitted as R's ``glm()`` does; rows are (study, arm), arm T first, as metafor.
    """
    k = x.shape[0]
    treat = np.array([1.0, 0.0])
    xr, nr = x.ravel(), n.ravel()
    design_fe = np.zeros((2 * k, k + 1))
    design_fe[:, 0] = np.tile(treat, k)
    design_fe[np.arange(2 * k), 1 + np.repeat(np.arange(k), 2)] = 1.0
    _, _, mu_fe, _ = _glm_binomial_irls(xr, nr, design_fe)
    ll_fe = _binom_loglik(xr, nr, mu_fe)
    _, eta_qe, mu_qe, w_qe = _glm_binomial_irls(xr, nr, np.eye(2 * k))
    ll_qe = _binom_loglik(xr, nr, mu_qe)
    lor = eta_qe[0::2] - eta_qe[1::2]
    w_lor = 1.0 / (1.0 / w_qe[0::2] + 1.0 / w_qe[1::2])
    lor_bar = np.sum(w_lor * lor) / np.sum(w_lor)
    qe_wld = max(0.0, float(np.sum(w_lor * (lor - lor_bar) ** 2)))
    return qe_wld, max(0.0, -2.0 * (ll_fe - ll_qe)), ll_fe


def _check_or(a, n1, c, n2, n_agq):
    """Input checks of ``glmm_or`` (UsageError), and data with no finite ML estimate (ComputationError)."""
    k = a.shape[0]
    if not (n1.shape[0] == c.shape[0] == n2.shape[0] == k):
        raise UsageError("the two-arm GLMM needs four count vectors of the same length")
    if k < 2:
        raise UsageError("the GLMM needs at least 2 studies")
    if np.any(n1 < 1) or np.any(n2 < 1) or np.any(a < 0) or np.any(c < 0) or np.any(a > n1) or np.any(c > n2):
        raise UsageError("the GLMM needs 0 <= events <= n and n >= 1 in both arms")
    double = ((a == 0) & (c == 0)) | ((a == n1) & (c == n2))
    if np.any(double):
        raise UsageError("studies with no events (or only events) in both arms carry no information "
                         "on the OR; leave them out (metafor drop00=TRUE)")
    refusal = or_refusal(a, n1, c, n2)
    if refusal is not None:
        raise ComputationError(refusal)
    if int(n_agq) < 1:
        raise UsageError("nAGQ must be at least 1")
