"""Bayesian random-effects meta-analysis by numerical integration (no MCMC).

The normal-normal hierarchical model of Roever's ``bayesmeta`` (Roever C.
Bayesian random-effects meta-analysis using the bayesmeta R package. J Stat
Softw 2020;93(6)):

    y_i | theta_i ~ N(theta_i, v_i),   theta_i | mu, tau ~ N(mu, tau^2)
    =>  y_i | mu, tau ~ N(mu, v_i + tau^2)

with a prior on the heterogeneity ``tau`` (half-normal(S) by default,
S = 0.5 on the log RR / log OR / logit scale, a "weakly informative" choice
for binary outcomes; Friede et al. 2017, Biom J 59:658; Roever et al.
2021, Res Synth Methods 12:448) and a flat or normal prior on ``mu``.

Computation (as bayesmeta, "direct algorithm"): conditional on tau, mu has a
conjugate normal posterior, so mu integrates out analytically:

    w_i = 1 / (v_i + tau^2),  P = sum w_i + 1/s^2,  mu_hat = (sum w_i y_i + m/s^2) / P
    p(tau | y) ∝ p(tau) * prod (v_i + tau^2)^(-1/2) * P^(-1/2)
                 * exp(-1/2 [sum w_i (y_i - mu_hat)^2 + (mu_hat - m)^2 / s^2])

(flat prior on mu: drop the 1/s^2 terms; then p(tau | y) is the prior times
the restricted likelihood of tau, so its mode under a uniform prior is the
REML estimate). The marginal posterior of tau is evaluated on a fine grid
in log tau (two passes: locate the mass, then integrate it with the
trapezoidal rule, which is spectrally accurate for such smooth densities),
and the posterior of mu is the mixture sum_j pi_j N(mu_hat(tau_j), 1/P(tau_j)).
Quantiles of mu (median, credible interval), of the effect theta_new of a
new study (mixture of N(mu_hat, 1/P + tau^2)) and P(mu > null) follow from
the mixture CDF, inverted by safeguarded Newton iterations.

numpy and scipy.special only; a fit takes a few milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri

from msc_meta import registry
from msc_meta.errors import ComputationError, UsageError

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------
# priors
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TauPrior:
    """Prior on the between-study standard deviation tau (not tau^2).

    ``kind`` is ``halfnormal`` (scale ``a``), ``halfcauchy`` (scale ``a``) or
    ``uniform`` (on [``a``, ``b``]).
    """

    kind: str
    a: float
    b: float | None = None

    @property
    def label(self) -> str:
        if self.kind == "uniform":
            return f"uniform:{self.a:g}:{self.b:g}"
        return f"{self.kind}:{self.a:g}"

    def logpdf(self, tau: np.ndarray) -> np.ndarray:
        tau = np.asarray(tau, dtype=float)
        if self.kind == "halfnormal":
            return math.log(2.0) - _LOG_SQRT_2PI - math.log(self.a) - 0.5 * (tau / self.a) ** 2
        if self.kind == "halfcauchy":
            return math.log(2.0 / (math.pi * self.a)) - np.log1p((tau / self.a) ** 2)
        inside = (tau >= self.a) & (tau <= self.b)
        return np.where(inside, -math.log(self.b - self.a), -np.inf)

    def support(self) -> tuple[float, float]:
        """Range holding all but ~1e-15 of the prior mass (the grid's outer limits)."""
        if self.kind == "halfnormal":
            return 0.0, self.a * 8.3   # P(|Z| > 8.3) ~ 1e-16
        if self.kind == "halfcauchy":
            return 0.0, self.a * 1e15
        return self.a, self.b


@dataclass(frozen=True)
class MuPrior:
    """Prior on the overall effect mu: flat (improper) or normal(mean, sd)."""

    kind: str
    mean: float = 0.0
    sd: float = math.inf

    @property
    def label(self) -> str:
        return "flat" if self.kind == "flat" else f"normal:{self.mean:g}:{self.sd:g}"


def _positive(text: str, what: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{what} {spec!r}: {text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise UsageError(f"{what} {spec!r}: the scale must be a positive number")
    return value


def parse_tau_prior(spec: str | TauPrior) -> TauPrior:
    """``halfnormal:S`` | ``halfcauchy:S`` | ``uniform:A:B`` -> :class:`TauPrior`."""
    if isinstance(spec, TauPrior):
        return spec
    parts = str(spec).strip().lower().split(":")
    kind = parts[0].replace("-", "").replace("_", "")
    what = "--prior-tau"
    if kind in ("halfnormal", "halfcauchy"):
        if len(parts) != 2:
            raise UsageError(f"{what} {spec!r}: write {kind}:SCALE, e.g. {kind}:0.5")
        return TauPrior(kind, _positive(parts[1], what, spec))
    if kind == "uniform":
        if len(parts) != 3:
            raise UsageError(f"{what} {spec!r}: write uniform:LOWER:UPPER, e.g. uniform:0:2")
        try:
            lo, hi = float(parts[1]), float(parts[2])
        except ValueError:
            raise UsageError(f"{what} {spec!r}: the bounds must be numbers") from None
        if not (0.0 <= lo < hi and math.isfinite(hi)):
            raise UsageError(f"{what} {spec!r}: need 0 <= LOWER < UPPER (finite)")
        return TauPrior("uniform", lo, hi)
    raise UsageError(f"{what} {spec!r}: unknown prior; use halfnormal:SCALE, halfcauchy:SCALE "
                     "or uniform:LOWER:UPPER")


def parse_mu_prior(spec: str | MuPrior | None) -> MuPrior:
    """``flat`` | ``normal:MEAN:SD`` -> :class:`MuPrior`."""
    if spec is None:
        return MuPrior("flat")
    if isinstance(spec, MuPrior):
        return spec
    parts = str(spec).strip().lower().split(":")
    if parts == ["flat"]:
        return MuPrior("flat")
    if parts[0] == "normal":
        if len(parts) != 3:
            raise UsageError(f"--prior-mu {spec!r}: write normal:MEAN:SD, e.g. normal:0:2")
        try:
            mean = float(parts[1])
        except ValueError:
            raise UsageError(f"--prior-mu {spec!r}: the mean must be a number") from None
        if not math.isfinite(mean):
            raise UsageError(f"--prior-mu {spec!r}: the mean must be finite")
        return MuPrior("normal", mean, _positive(parts[2], "--prior-mu", spec))
    raise UsageError(f"--prior-mu {spec!r}: use flat or normal:MEAN:SD")


# ---------------------------------------------------------------------------
# the marginal posterior of tau on a grid
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TauPosterior:
    """Grid representation of p(tau | y) and of mu | tau, y.

    ``weight`` are the quadrature masses of the grid points (sum 1), so that
    E[f(tau)] ~ sum weight_j f(tau_j); ``density`` is p(tau_j | y) itself.
    """

    tau: np.ndarray
    weight: np.ndarray
    density: np.ndarray
    mu_mean: np.ndarray      # E[mu | tau_j, y]
    mu_var: np.ndarray       # var[mu | tau_j, y]
    log_evidence: float      # log of the normalising constant (up to the flat prior's constant)

    def cdf(self, t: float) -> float:
        """P(tau <= t | y), by interpolating the cumulative quadrature in log tau."""
        cum = _cumulative(self)
        if t <= self.tau[0]:
            return 0.0
        if t >= self.tau[-1]:
            return 1.0
        return float(np.interp(math.log(t), np.log(self.tau), cum))

    def quantile(self, q) -> np.ndarray:
        cum = _cumulative(self)
        logt = np.interp(np.asarray(q, dtype=float), cum, np.log(self.tau))
        return np.exp(logt)

    def mode(self) -> float:
        """Posterior mode of tau (parabolic refinement of the grid maximum)."""
        j = int(np.argmax(self.density))
        if j == 0:
            # The grid starts just above the prior's lower end (0, or A of
            # uniform:A:B); a maximum there is a mode at that end.
            return 0.0 if self.tau[0] < 1e-6 * self.tau[-1] else float(self.tau[0])
        if j == len(self.tau) - 1:
            return float(self.tau[j])
        x = self.tau[j - 1:j + 2]
        y = np.log(self.density[j - 1:j + 2])
        denom = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
        a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / denom
        b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / denom
        return float(-b / (2.0 * a)) if a < 0 else float(self.tau[j])


def _cumulative(post: TauPosterior) -> np.ndarray:
    # Trapezoid in log tau of density * tau, normalised; starts at 0.
    v = np.log(post.tau)
    f = post.density * post.tau
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(v))])
    return cum / cum[-1]


def _conditional(y, v, tau, mu_prior: MuPrior):
    """For each tau: log p(y | tau) (mu integrated out), E[mu | tau, y], var[mu | tau, y]."""
    tau2 = (tau * tau)[:, None]
    s2 = v[None, :] + tau2
    w = 1.0 / s2
    prec = w.sum(axis=1)
    num = (w * y[None, :]).sum(axis=1)
    if mu_prior.kind == "normal":
        prec0 = 1.0 / mu_prior.sd ** 2
        prec = prec + prec0
        num = num + prec0 * mu_prior.mean
    mean = num / prec
    resid = (w * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
    loglik = -0.5 * np.log(s2).sum(axis=1) - 0.5 * np.log(prec) - 0.5 * resid
    if mu_prior.kind == "normal":
        loglik = loglik - 0.5 * (mean - mu_prior.mean) ** 2 / mu_prior.sd ** 2 - math.log(mu_prior.sd)
    return loglik, mean, 1.0 / prec


def tau_posterior(yi, vi, prior_tau="halfnormal:0.5", prior_mu="flat", n_grid: int = 2001) -> TauPosterior:
    """Marginal posterior of tau on an adaptive log-tau grid (see the module docstring)."""
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    tp = parse_tau_prior(prior_tau)
    mp = parse_mu_prior(prior_mu)
    if y.size == 0 or y.size != v.size:
        raise UsageError("Bayesian pooling needs matching, non-empty yi and vi")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise UsageError("Bayesian pooling needs finite effect sizes and positive variances")
    # Every tau prior offered is proper, so p(tau | y) is proper even for
    # k = 1 with a flat prior on mu (then mu | tau, y is N(y, v + tau^2)).

    lo, hi = tp.support()
    # Below ~1e-9 of the smallest within-study SD, tau^2 changes no weight
    # (relative 1e-18): the posterior there is flat in tau and its mass
    # (~ tau_lo * density) is negligible.
    scale = math.sqrt(float(np.min(v)))
    floor = 1e-9 * min(scale, (hi if hi > 0 else scale))
    lo_t = max(lo, floor)

    def log_density_v(logt):
        t = np.exp(logt)
        ll, _, _ = _conditional(y, v, t, mp)
        return ll + tp.logpdf(t) + logt     # density in log tau (Jacobian tau)

    # Pass 1: locate the mass on a coarse grid over the whole prior support.
    g1 = np.linspace(math.log(lo_t), math.log(hi), 801)
    f1 = log_density_v(g1)
    if not np.any(np.isfinite(f1)):
        raise ComputationError("the posterior of tau vanishes on the whole prior support")
    keep = np.flatnonzero(f1 > np.max(f1) - 40.0)    # exp(-40) ~ 4e-18 of the peak
    a_idx = max(int(keep[0]) - 2, 0)
    b_idx = min(int(keep[-1]) + 2, g1.size - 1)
    # Pass 2: the mass region, finely; the ends stay inside the prior support.
    g2 = np.linspace(g1[a_idx], g1[b_idx], int(n_grid))
    f2 = log_density_v(g2)
    fmax = np.max(f2)
    dens_v = np.exp(f2 - fmax)
    h = g2[1] - g2[0]
    trap = np.full(g2.size, h)
    trap[0] = trap[-1] = h / 2.0
    mass = trap * dens_v
    total = mass.sum()
    tau = np.exp(g2)
    _, mean, var = _conditional(y, v, tau, mp)
    density = dens_v / total / tau          # p(tau | y)
    return TauPosterior(tau=tau, weight=mass / total, density=density, mu_mean=mean, mu_var=var,
                        log_evidence=float(fmax + math.log(total)))


# ---------------------------------------------------------------------------
# normal mixtures
# ---------------------------------------------------------------------------

def mixture_cdf(x, weight, mean, sd) -> np.ndarray:
    """sum_j weight_j Phi((x - mean_j) / sd_j), vectorised over x."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    z = (x[:, None] - mean[None, :]) / sd[None, :]
    return (ndtr(z) * weight[None, :]).sum(axis=1)


def _mixture_pdf(x, weight, mean, sd):
    z = (x[:, None] - mean[None, :]) / sd[None, :]
    return (np.exp(-0.5 * z * z - _LOG_SQRT_2PI) / sd[None, :] * weight[None, :]).sum(axis=1)


def mixture_quantile(q, weight, mean, sd, tol: float = 1e-12) -> np.ndarray:
    """Quantiles of a normal mixture: Newton steps on the CDF kept inside a bisection bracket."""
    q = np.atleast_1d(np.asarray(q, dtype=float))
    keep = weight > 1e-300
    weight, mean, sd = weight[keep] / weight[keep].sum(), mean[keep], sd[keep]
    lo = np.full(q.shape, float(np.min(mean - 40.0 * sd)))
    hi = np.full(q.shape, float(np.max(mean + 40.0 * sd)))
    # Start at the quantile of the moment-matched normal.
    m1 = float(np.sum(weight * mean))
    sd1 = math.sqrt(float(np.sum(weight * (sd ** 2 + (mean - m1) ** 2))))
    x = np.clip(m1 + sd1 * ndtri(q), lo, hi)
    for _ in range(200):
        f = mixture_cdf(x, weight, mean, sd) - q
        lo = np.where(f < 0, x, lo)
        hi = np.where(f > 0, x, hi)
        dens = _mixture_pdf(x, weight, mean, sd)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x - f / dens
        bisect = 0.5 * (lo + hi)
        ok = np.isfinite(newton) & (newton > lo) & (newton < hi)
        new = np.where(ok, newton, bisect)
        step = np.abs(new - x)
        x = new
        if np.all((step <= tol * (1.0 + np.abs(x))) | (hi - lo <= tol * (1.0 + np.abs(x)))):
            break
    return x


# ---------------------------------------------------------------------------
# the fit
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BayesResult:
    """Posterior summaries; names follow the ``msc-meta bayes`` JSON contract."""

    measure: str | None
    k: int
    level: float
    prior_tau: str
    prior_mu: str
    theta_median: float          # mu, analysis scale
    theta_ci_low: float          # equal-tailed credible interval
    theta_ci_high: float
    theta_mean: float
    theta_sd: float
    estimate: float | None       # natural scale, from the same quantiles
    ci_low: float | None
    ci_high: float | None
    tau_median: float
    tau_ci_low: float
    tau_ci_high: float
    tau_mode: float
    theta_pred_low: float        # new study's theta, analysis scale
    theta_pred_high: float
    pred_low: float | None       # natural scale
    pred_high: float | None
    p_benefit: float | None      # P(mu > null | y); None for measures without a null (PLO, MN)
    null: float | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    scale: str | None = None     # GEN: the scale of the given effects

    def to_dict(self) -> dict:
        from dataclasses import asdict

        def clean(value):
            if isinstance(value, float):
                return value if math.isfinite(value) else None
            if isinstance(value, tuple):
                return [clean(v) for v in value]
            return value

        return {key: clean(value) for key, value in asdict(self).items()}


def _back(measure, x, ni, scale=None):
    if measure is None:
        return None
    from msc_meta.effects import transform_back

    return float(np.asarray(transform_back(measure, np.asarray([x], dtype=float), ni, scale=scale),
                            dtype=float)[0])


def unit_information_sd(vi, ni) -> float:
    """The unit-information standard deviation sqrt(sum n_i / sum 1/v_i) (Roever et al. 2021,
    Res Synth Methods 12:448, eq. 6; bayesmeta ``uisd()``): the within-study SD of one
    participant on the analysis scale, a yardstick for a prior on tau in the outcome's units.
    NaN when a study has no n."""
    ni = np.asarray(ni, dtype=float)
    vi = np.asarray(vi, dtype=float)
    return float(math.sqrt(np.sum(ni) / np.sum(1.0 / vi)))


def bayes_re(yi, vi, *, prior_tau="halfnormal:0.5", prior_mu="flat", level: float = 95.0,
             measure: str | None = None, ni=None, n_grid: int = 2001,
             scale: str | None = None) -> BayesResult:
    """Bayesian random-effects pool of ``yi`` (analysis scale) with variances ``vi``.

    Returns posterior medians and equal-tailed ``level``% credible intervals
    of mu and tau, the posterior predictive interval of a new study's theta,
    and for measures with a null value (the registry's ``null``: RR, OR, RD,
    MD, SMD, MC, IRR, COR, ZCOR, GEN, ...) ``p_benefit`` = P(mu > 0 | y), on
    the analysis scale, i.e. P(RR > 1), P(RD > 0), P(MD > 0), P(r > 0).
    ``ni`` (sample sizes) is needed only for the PFT back-transformation;
    ``scale`` is the scale of GEN effects (``--scale``).
    """
    if not 0.0 < level < 100.0:
        raise UsageError(f"--level {level}: must be between 0 and 100")
    tp = parse_tau_prior(prior_tau)
    mp = parse_mu_prior(prior_mu)
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(vi, dtype=float).ravel()
    post = tau_posterior(y, v, tp, mp, n_grid=n_grid)
    alpha = 1.0 - level / 100.0
    qs = np.array([alpha / 2.0, 0.5, 1.0 - alpha / 2.0])

    w = post.weight
    sd_mu = np.sqrt(post.mu_var)
    mu_q = mixture_quantile(qs, w, post.mu_mean, sd_mu)
    pred_sd = np.sqrt(post.mu_var + post.tau ** 2)
    pred_q = mixture_quantile(qs[[0, 2]], w, post.mu_mean, pred_sd)
    tau_q = post.quantile(qs)
    theta_mean = float(np.sum(w * post.mu_mean))
    theta_sd = math.sqrt(float(np.sum(w * (post.mu_var + (post.mu_mean - theta_mean) ** 2))))

    m = measure.upper() if measure else None
    # Every registered null maps to 0 on the analysis scale (log 1, atanh 0, a difference of 0).
    null = 0.0 if m is not None and registry.measure(m, scale).null is not None else None
    p_benefit = None
    if null is not None:
        # P(mu > 0) = sum_j w_j Phi(mean_j / sd_j); log_ndtr keeps tiny tails exact.
        p_benefit = float(np.sum(w * np.exp(log_ndtr((post.mu_mean - null) / sd_mu))))

    k = int(y.size)
    notes = [f"Bayesian normal-normal random-effects model: prior tau ~ {tp.label}, "
             f"prior mu ~ {mp.label}; posterior by numerical integration over tau"]
    if k < 5:
        notes.append(f"k = {k}: the posterior of tau is dominated by its prior; "
                     "results depend on the prior choice (try another --prior-tau)")
    if mp.kind == "flat" and k == 1:
        notes.append("k = 1: with a flat prior on mu the posterior of mu is the study's estimate "
                     "widened by the prior on tau")

    ni_arr = None if ni is None else np.asarray(ni, dtype=float)
    return BayesResult(
        measure=m, k=k, level=float(level), prior_tau=tp.label, prior_mu=mp.label,
        theta_median=float(mu_q[1]), theta_ci_low=float(mu_q[0]), theta_ci_high=float(mu_q[2]),
        theta_mean=theta_mean, theta_sd=theta_sd,
        estimate=_back(m, mu_q[1], ni_arr, scale), ci_low=_back(m, mu_q[0], ni_arr, scale),
        ci_high=_back(m, mu_q[2], ni_arr, scale),
        tau_median=float(tau_q[1]), tau_ci_low=float(tau_q[0]), tau_ci_high=float(tau_q[2]),
        tau_mode=post.mode(),
        theta_pred_low=float(pred_q[0]), theta_pred_high=float(pred_q[1]),
        pred_low=_back(m, pred_q[0], ni_arr, scale), pred_high=_back(m, pred_q[1], ni_arr, scale),
        p_benefit=p_benefit, null=null, notes=tuple(notes), scale=scale,
    )
