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
the sum (ML); the standard error of beta comes from the inverse of the
observed information of (tau, beta), as lme4's ``vcov()`` from its
finite-difference Hessian does.

Heterogeneity, as ``rma.glmm`` reports it: the Wald-type and likelihood-ratio
tests of the fixed-effect model against the saturated (one logit per study)
logistic regression, both fitted by R's ``glm()`` whose IRLS iterations are
reproduced here (so that 0/n and n/n studies, whose saturated fit diverges,
give R's numbers); I^2 and H^2 from tau^2 and the "typical" within-study
variance of the escalc logits (``vi`` with 1/2 added to studies with a zero
cell), as metafor does for GLMMs.

numpy and scipy.special at module level; scipy.optimize inside the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import chdtrc, expit, gammaln, log_expit, ndtr, ndtri, xlogy

from msc_meta.errors import ComputationError, UsageError
from msc_meta.pooling.results import PoolResult

# lme4's logit link clamps eta to +-30 (DBL_EPSILON floors); glm() then works
# with these clamped values, which decide where the saturated fit stops.
_EPS = np.finfo(float).eps
_THRESH = 30.0
# Budget of likelihood evaluations of the two-arm fit (about 1.5 ms each).
_OR_MAX_EVALUATIONS = 15000


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


def _conditional_modes(beta_eta, theta, x, n, u0):
    """Per-study mode of u^2 + devres(beta_eta + theta u) by safeguarded Newton."""
    u = u0.copy()
    if theta == 0.0:
        return np.zeros_like(u)
    dc = u * u + _dev_resid(beta_eta + theta * u, x, n)
    for _ in range(200):
        p = expit(beta_eta + theta * u)
        grad = 2.0 * u - 2.0 * theta * (x - n * p)
        hess = 2.0 + 2.0 * theta * theta * n * p * (1.0 - p)
        step = grad / hess
        new_u = u - step
        new_dc = new_u * new_u + _dev_resid(beta_eta + theta * new_u, x, n)
        # The objective is convex in u, but a full Newton step can overshoot
        # when theta is large: halve where it did not decrease.
        for _halving in range(60):
            bad = new_dc > dc + 1e-12 * np.abs(dc)
            if not bad.any():
                break
            step = np.where(bad, step / 2.0, step)
            new_u = u - step
            new_dc = new_u * new_u + _dev_resid(beta_eta + theta * new_u, x, n)
        u, dc = new_u, new_dc
        if np.max(np.abs(step)) < 1e-13 * (1.0 + np.max(np.abs(u))):
            break
    return u


def agq_deviance(beta_eta, theta, x, n, nodes, weights, u0=None):
    """lme4's AGQ deviance (-2 log L relative to the saturated model) and the modes.

    ``beta_eta`` is the fixed part of the linear predictor per study.
    """
    beta_eta = np.broadcast_to(np.asarray(beta_eta, dtype=float), x.shape)
    theta = abs(float(theta))  # the likelihood is even in theta
    if u0 is None:
        u0 = np.zeros_like(x)
    u = _conditional_modes(beta_eta, theta, x, n, u0)
    eta = beta_eta + theta * u
    p = expit(eta)
    d0 = u * u + _dev_resid(eta, x, n)
    ld_l2 = np.log1p(theta * theta * n * p * (1.0 - p))
    s = np.exp(-0.5 * ld_l2)
    uk = u[:, None] + nodes[None, :] * s[:, None]
    dk = uk * uk + _dev_resid(beta_eta[:, None] + theta * uk, x[:, None], n[:, None])
    expo = -0.5 * (dk - d0[:, None]) + 0.5 * nodes[None, :] ** 2
    mult = np.sum(weights[None, :] * np.exp(expo), axis=1)
    dev = float(np.sum(d0 + ld_l2 - 2.0 * np.log(mult)))
    return dev, u


def _loglik_saturated(x, n):
    m = n - x
    return float(np.sum(gammaln(n + 1) - gammaln(x + 1) - gammaln(m + 1)
                        + xlogy(x, x / n) + xlogy(m, m / n)))


def _binom_loglik(x, n, mu):
    m = n - x
    return float(np.sum(gammaln(n + 1) - gammaln(x + 1) - gammaln(m + 1) + xlogy(x, mu) + xlogy(m, 1.0 - mu)))


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


def _newton_polish(objective, gradient, par, steps=20):
    """Newton steps on a (theta >= 0, beta) deviance from where a quasi-Newton
    optimizer stopped, with numerical derivatives; stops when a step would
    not lower the deviance or is below 1e-10."""
    for _ in range(steps):
        g = gradient(par, 1e-5)
        h = _numeric_hessian(objective, par, np.array([1e-4, 1e-4]))
        try:
            step = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        new = par - step
        new[0] = max(new[0], 0.0)
        if objective(new) > objective(par) + 1e-10:
            break
        par = new
        if np.max(np.abs(step)) < 1e-10:
            break
    return par


def _numeric_hessian(f, x0, step):
    """Central-difference Hessian (the stencil of lme4's ``deriv12``)."""
    m = x0.shape[0]
    f0 = f(x0)
    h = np.zeros((m, m))
    for j in range(m):
        ej = np.zeros(m)
        ej[j] = step[j]
        h[j, j] = (f(x0 + ej) - 2.0 * f0 + f(x0 - ej)) / step[j] ** 2
        for i in range(j):
            ei = np.zeros(m)
            ei[i] = step[i]
            h[i, j] = h[j, i] = (f(x0 + ei + ej) - f(x0 + ei - ej) - f(x0 - ei + ej) + f(x0 - ei - ej)) / (
                4.0 * step[i] * step[j])
    return h


def glmm_plo(events, n, *, n_agq: int = 7, level: float = 95.0, cc: float = 0.5) -> GlmmFit:
    """Fit the random-intercept logistic model to single-arm counts ``events/n`` by ML.

    Matches metafor ``rma.glmm(measure="PLO", xi=events, ni=n, nAGQ=n_agq)``
    (lme4 backend): ``beta`` (pooled logit), its Wald z test and CI, tau^2,
    I^2 / H^2, QE.Wld and QE.LRT. ``cc`` is only used for the escalc
    variances behind I^2 (metafor's ``add=1/2``), never for the fit.
    """
    from scipy.optimize import minimize

    x = np.asarray(events, dtype=float).ravel()
    n = np.asarray(n, dtype=float).ravel()
    k = x.shape[0]
    if n.shape[0] != k:
        raise UsageError("events and n must have the same length")
    if k < 2:
        raise UsageError("the GLMM needs at least 2 studies")
    if np.any(n < 1) or np.any(x < 0) or np.any(x > n):
        raise UsageError("the GLMM needs 0 <= events <= n and n >= 1")
    if np.all(x == 0) or np.all(x == n):
        raise ComputationError("the GLMM has no finite estimate when every study has 0 events "
                               "(or only events): the pooled logit is infinite")
    if np.all((x == 0) | (x == n)):
        # Some studies at 0%, the others at 100%: the likelihood grows without
        # bound as tau -> infinity (lme4 stops at an arbitrary huge tau²).
        raise ComputationError("the GLMM has no finite estimate when every study has 0 events or only "
                               "events (complete separation: tau² grows without bound); use an "
                               "inverse-variance method such as --method REML, or `msc-meta bayes`")
    if int(n_agq) < 1:
        raise UsageError("nAGQ must be at least 1")
    nodes, weights = gauss_hermite_normal(int(n_agq))

    modes = {"u": np.zeros(k)}

    def deviance(par):
        theta, beta = float(par[0]), float(par[1])
        dev, u = agq_deviance(beta, theta, x, n, nodes, weights, modes["u"])
        modes["u"] = u
        return dev

    def gradient(par, h=1e-6):
        g = np.empty(2)
        for j in range(2):
            e = np.zeros(2)
            e[j] = h
            g[j] = (deviance(par + e) - deviance(par - e)) / (2.0 * h)
        return g

    # Start: the pooled logit, and tau from a moment estimate on the escalc logits.
    a = np.where((x == 0) | (x == n), cc, 0.0)
    yi = np.log((x + a) / (n - x + a))
    vi = 1.0 / (x + a) + 1.0 / (n - x + a)
    wi = 1.0 / vi
    beta0 = math.log(x.sum() / (n - x).sum()) if 0 < x.sum() < n.sum() else float(np.sum(wi * yi) / wi.sum())
    ybar = np.sum(wi * yi) / wi.sum()
    q = float(np.sum(wi * (yi - ybar) ** 2))
    tau2_dl = max(0.0, (q - (k - 1)) / (wi.sum() - np.sum(wi ** 2) / wi.sum()))
    starts = [np.array([max(math.sqrt(tau2_dl), 0.3), beta0]), np.array([1.0, beta0])]

    best = None
    for start in starts:
        # A second start only when the first ends at tau = 0 (the likelihood
        # of this model is usually unimodal; the boundary is the risky case).
        if best is not None and best.x[0] > 1e-6:
            break
        modes["u"] = np.zeros(k)
        res = minimize(deviance, start, jac=gradient, method="L-BFGS-B",
                       bounds=[(0.0, None), (None, None)],
                       options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    par = np.array(best.x, dtype=float)

    # The boundary fit tau = 0 is the fixed-effect logistic model, whose
    # MLE is closed-form. The deviance is even in tau, so its gradient in tau
    # vanishes at 0 and a quasi-Newton run can stall there: compare explicitly.
    beta_fe = math.log(x.sum() / (n - x).sum())
    dev_fe = deviance(np.array([0.0, beta_fe]))
    if best.fun >= dev_fe - 1e-10 or par[0] < 1e-6:
        par = np.array([0.0, beta_fe])
    else:
        # Newton polish (L-BFGS-B stops on a relative change of the deviance).
        par = _newton_polish(deviance, gradient, par)
    theta, beta = float(par[0]), float(par[1])
    dev = deviance(par)

    # Observed information of (theta, beta) -> var(beta): lme4 vcov() = 2 H^-1.
    if theta > 0.0:
        hess = _numeric_hessian(deviance, par, np.array([1e-4, 1e-4]))
        try:
            vcov = 2.0 * np.linalg.inv(hess)
            var_beta = float(vcov[1, 1])
        except np.linalg.LinAlgError:
            var_beta = float("nan")
        if not (var_beta > 0):
            raise ComputationError("the GLMM information matrix is not positive definite")
    else:
        # At theta = 0, lme4 falls back to the fixed-effect information.
        p = expit(beta)
        var_beta = 1.0 / float(np.sum(n * p * (1.0 - p)))

    qe_wld, qe_lrt, ll_fe, ll_qe = _heterogeneity_tests(x, n)
    return _glmm_fit(
        "PLO", expit, k=k, beta=beta, var_beta=var_beta, theta=theta, wi=wi,
        qe_wld=qe_wld, qe_lrt=qe_lrt, ll_fe=ll_fe, loglik=_loglik_saturated(x, n) - dev / 2.0,
        dev=dev, n_agq=n_agq, level=level,
        model="GLMM (binomial-normal, logit link)",
        boundary="the fit equals the fixed-effect logistic model")


def _glmm_fit(measure, back, *, k, beta, var_beta, theta, wi, qe_wld, qe_lrt, ll_fe, loglik,
              dev, n_agq, level, model, boundary) -> GlmmFit:
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
                   deviance=dev, vt=float(vt), n_agq=int(n_agq), notes=tuple(notes))


# ---------------------------------------------------------------------------
# two-arm odds ratio: unconditional model with fixed study effects (UM.FS)
# ---------------------------------------------------------------------------

def _grouped_terms(eta_fixed, zcoef, theta, x, n, nodes, weights, u0):
    """Per-study -2 log L_i (lme4 AGQ) for one scalar random effect per study.

    Study i has m observations (columns of ``eta_fixed``, ``x``, ``n``); the
    random effect enters observation j with coefficient ``zcoef[j]``:
    ``eta_ij = eta_fixed_ij + theta * zcoef_j * u_i``. Returns the terms and
    the conditional modes.
    """
    theta = abs(float(theta))
    zc = zcoef[None, :]

    def dcond(u):
        eta = eta_fixed + theta * zc * u[:, None]
        return u * u + _dev_resid(eta, x, n).sum(axis=1)

    u = u0.copy() if theta > 0 else np.zeros(x.shape[0])
    if theta > 0:
        dc = dcond(u)
        for _ in range(200):
            p = expit(eta_fixed + theta * zc * u[:, None])
            grad = 2.0 * u - 2.0 * theta * np.sum(zc * (x - n * p), axis=1)
            hess = 2.0 + 2.0 * theta * theta * np.sum(zc * zc * n * p * (1.0 - p), axis=1)
            step = grad / hess
            new_u = u - step
            new_dc = dcond(new_u)
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
    eta = eta_fixed + theta * zc * u[:, None]
    p = expit(eta)
    d0 = u * u + _dev_resid(eta, x, n).sum(axis=1)
    ld_l2 = np.log1p(theta * theta * np.sum(zc * zc * n * p * (1.0 - p), axis=1))
    s = np.exp(-0.5 * ld_l2)
    uk = u[:, None] + nodes[None, :] * s[:, None]                       # (k, K)
    eta_k = eta_fixed[:, :, None] + theta * zc[:, :, None] * uk[:, None, :]
    dk = uk * uk + _dev_resid(eta_k, x[:, :, None], n[:, :, None]).sum(axis=1)
    expo = -0.5 * (dk - d0[:, None]) + 0.5 * nodes[None, :] ** 2
    mult = np.sum(weights[None, :] * np.exp(expo), axis=1)
    return d0 + ld_l2 - 2.0 * np.log(mult), u


def glmm_or(events_t, n_t, events_c, n_c, *, n_agq: int = 7, level: float = 95.0,
            cc: float = 0.5) -> GlmmFit:
    """Binomial-normal GLMM for two-arm counts: metafor ``rma.glmm(measure="OR", model="UM.FS")``.

    Unconditional model with fixed study effects (Turner et al. 2000, Stat
    Med 19:3417; Jackson et al. 2018, Stat Med 37:1059 "model 4" with the
    +-1/2 coding): ``logit p_i,T = alpha_i + beta + tau u_i / 2`` and
    ``logit p_i,C = alpha_i - tau u_i / 2``, ``u_i ~ N(0, 1)``, so the
    log odds ratio of study i is ``beta + tau u_i``. ML by lme4's AGQ
    (``nAGQ`` points); the study intercepts ``alpha_i`` are profiled out
    study by study, and se(beta) comes from the profile's observed
    information (equal to the beta element of the full inverse information).
    Studies with no events (or only events) in both arms carry no
    information and must be left out by the caller (metafor
    ``drop00=TRUE``); here they raise ``UsageError``. Heterogeneity tests
    (Wald-type and LRT of the common-OR against the study-specific-OR
    logistic model) and I^2 (escalc OR variances with ``cc`` added to
    studies with a zero cell) are metafor's.
    """
    from scipy.optimize import minimize

    a = np.asarray(events_t, dtype=float).ravel()
    n1 = np.asarray(n_t, dtype=float).ravel()
    c = np.asarray(events_c, dtype=float).ravel()
    n2 = np.asarray(n_c, dtype=float).ravel()
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
    if np.all(a == 0) or np.all(c == 0) or np.all(a == n1) or np.all(c == n2):
        raise ComputationError("the GLMM has no finite odds ratio when one arm has no events "
                               "(or only events) in every study")
    if np.all(((a == n1) & (c == 0)) | ((a == 0) & (c == n2))):
        # Every study's own OR is +inf or -inf (both occur, else caught above):
        # the likelihood grows without bound as tau -> infinity, and the fit
        # would search for ever (metafor ends at an arbitrary huge tau²).
        raise ComputationError("the GLMM has no finite estimate: in every study one arm has all "
                               "events and the other none (complete separation); use an "
                               "inverse-variance method such as --method REML, or `msc-meta bayes`")
    if int(n_agq) < 1:
        raise UsageError("nAGQ must be at least 1")
    nodes, weights = gauss_hermite_normal(int(n_agq))
    x = np.column_stack([a, c])
    n = np.column_stack([n1, n2])
    zcoef = np.array([0.5, -0.5])
    treat = np.array([1.0, 0.0])
    state = {"u": np.zeros(k), "alpha": np.log((c + 0.5) / (n2 - c + 0.5)), "calls": 0}

    def terms(theta, beta, alpha):
        # A fit takes 1,000-2,000 evaluations; data on the edge of separation
        # can make the search wander for many minutes: stop it instead.
        state["calls"] += 1
        if state["calls"] > _OR_MAX_EVALUATIONS:
            raise ComputationError("the GLMM did not converge (the likelihood seems to have no finite "
                                   "maximum: studies close to complete separation); use an "
                                   "inverse-variance method such as --method REML, or `msc-meta bayes`")
        t, u = _grouped_terms(alpha[:, None] + beta * treat[None, :], zcoef, theta, x, n, nodes, weights,
                              state["u"])
        state["u"] = u
        return t

    def profile(par):
        theta, beta = float(par[0]), float(par[1])
        alpha = state["alpha"].copy()
        h = 1e-5
        f0 = terms(theta, beta, alpha)
        for _ in range(100):
            fp = terms(theta, beta, alpha + h)
            fm = terms(theta, beta, alpha - h)
            g = (fp - fm) / (2.0 * h)
            curv = (fp - 2.0 * f0 + fm) / (h * h)
            step = np.where(curv > 0, g / np.where(curv > 0, curv, 1.0), np.sign(g))
            step = np.clip(step, -2.0, 2.0)
            new = alpha - step
            f_new = terms(theta, beta, new)
            for _halving in range(40):
                bad = f_new > f0 + 1e-12 * np.abs(f0)
                if not bad.any():
                    break
                step = np.where(bad, step / 2.0, step)
                new = alpha - step
                f_new = terms(theta, beta, new)
            alpha, f0 = new, f_new
            if np.max(np.abs(step)) < 1e-10:
                break
        state["alpha"] = alpha
        return float(np.sum(f0))

    def gradient(par, h=1e-6):
        g = np.empty(2)
        for j in range(2):
            e = np.zeros(2)
            e[j] = h
            g[j] = (profile(par + e) - profile(par - e)) / (2.0 * h)
        return g

    # Start: the MH-like pooled log OR from the escalc values and a DL tau.
    add = np.where((a == 0) | (c == 0) | (a == n1) | (c == n2), cc, 0.0)
    yi = np.log((a + add) * (n2 - c + add) / ((n1 - a + add) * (c + add)))
    vi = 1.0 / (a + add) + 1.0 / (n1 - a + add) + 1.0 / (c + add) + 1.0 / (n2 - c + add)
    wi = 1.0 / vi
    ybar = float(np.sum(wi * yi) / wi.sum())
    q = float(np.sum(wi * (yi - ybar) ** 2))
    tau2_dl = max(0.0, (q - (k - 1)) / (wi.sum() - np.sum(wi ** 2) / wi.sum()))
    starts = [np.array([max(math.sqrt(tau2_dl), 0.3), ybar]), np.array([1.0, ybar])]

    best = None
    for start in starts:
        if best is not None and best.x[0] > 1e-6:
            break
        res = minimize(profile, start, jac=gradient, method="L-BFGS-B",
                       bounds=[(0.0, None), (None, None)],
                       options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    par = np.array(best.x, dtype=float)

    # Boundary tau = 0: the common-OR logistic model with study intercepts.
    res0 = minimize(lambda b: profile(np.array([0.0, b[0]])), np.array([par[1]]), method="BFGS",
                    options={"gtol": 1e-10})
    dev0 = float(res0.fun)
    if best.fun >= dev0 - 1e-10 or par[0] < 1e-6:
        par = np.array([0.0, float(res0.x[0])])
    else:
        par = _newton_polish(profile, gradient, par)
    theta, beta = float(par[0]), float(par[1])
    dev = profile(par)

    if theta > 0.0:
        hmat = _numeric_hessian(profile, par, np.array([1e-4, 1e-4]))
        try:
            var_beta = float(2.0 * np.linalg.inv(hmat)[1, 1])
        except np.linalg.LinAlgError:
            var_beta = float("nan")
    else:
        h = 1e-4
        curv = (profile(np.array([0.0, beta + h])) - 2.0 * dev + profile(np.array([0.0, beta - h]))) / h ** 2
        var_beta = 2.0 / curv
    if not (var_beta > 0):
        raise ComputationError("the GLMM information matrix is not positive definite")

    # Heterogeneity: common OR (study intercepts) vs study-specific ORs, as
    # glm() fits them. Rows are (study, arm) with arm T first, as metafor.
    xr = x.ravel()
    nr = n.ravel()
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
    qe_lrt = max(0.0, -2.0 * (ll_fe - ll_qe))
    return _glmm_fit(
        "OR", np.exp, k=k, beta=beta, var_beta=var_beta, theta=theta, wi=wi,
        qe_wld=qe_wld, qe_lrt=qe_lrt, ll_fe=ll_fe, loglik=_loglik_saturated(xr, nr) - dev / 2.0,
        dev=dev, n_agq=n_agq, level=level,
        model="GLMM (binomial-normal, unconditional model with fixed study effects, metafor model UM.FS)",
        boundary="the fit equals the common-OR logistic model")

