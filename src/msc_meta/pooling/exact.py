"""Exact and score methods for tiny counts: per-study proportion intervals and
Fisher's exact test for a 2x2 table.

Why: with 5 or 10 patients per arm the Wald interval of a proportion is
wrong (zero width at 0/n and n/n, below 0 or above 1 elsewhere) and the
chi-square test is not valid, so single studies get exact (Clopper-Pearson)
or score (Wilson) intervals and comparisons get Fisher's exact test.

Everything here is vectorised numpy on top of ``msc_meta._dist`` only (this
module may be imported on the ``pool`` path).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from msc_meta._dist import betaincinv, gammaln, ndtri

from msc_meta.errors import UsageError

PROPORTION_CI_METHODS = ("exact", "wilson", "wald")


@dataclass(frozen=True)
class ProportionCI:
    """Per-study proportion ``x/n`` with its confidence interval.

    Arrays have the broadcast shape of ``x`` and ``n``.
    """

    estimate: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    method: str
    level: float


def _as_counts(x, n):
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    x, n = np.broadcast_arrays(x, n)
    if np.any(n < 1) or np.any(x < 0) or np.any(x > n):
        raise UsageError("proportion_ci needs 0 <= x <= n and n >= 1")
    if np.any(x != np.round(x)) or np.any(n != np.round(n)):
        raise UsageError("proportion_ci needs whole-number counts")
    return x, n


def _alpha(level: float) -> float:
    if not 0.0 < level < 100.0:
        raise UsageError(f"confidence level must be between 0 and 100 percent, got {level}")
    return 1.0 - level / 100.0


def proportion_ci(x, n, method: str = "exact", level: float = 95.0) -> ProportionCI:
    """Confidence interval of a binomial proportion ``x/n``, vectorised.

    ``method``:

    - ``"exact"``: Clopper-Pearson (1934) from beta quantiles, exactly R's
      ``binom.test(x, n)$conf.int``: lower ``qbeta(a/2, x, n-x+1)`` (0 when
      x = 0), upper ``qbeta(1-a/2, x+1, n-x)`` (1 when x = n).
    - ``"wilson"``: Wilson (1927) score interval without continuity
      correction, exactly R's ``prop.test(x, n, correct=FALSE)$conf.int``
      (bounds 0 at x = 0 and 1 at x = n).
    - ``"wald"``: ``p +- z sqrt(p(1-p)/n)``, clipped to [0, 1]; shown for
      comparison only (zero width at 0/n and n/n).

    ``level`` is in percent.
    """
    method = method.lower()
    if method not in PROPORTION_CI_METHODS:
        raise UsageError(f"unknown interval method {method!r}; use one of {', '.join(PROPORTION_CI_METHODS)}")
    x, n = _as_counts(x, n)
    alpha = _alpha(level)
    p = x / n
    if method == "exact":
        # betaincinv(a, b, q) is the q-quantile of Beta(a, b) (scipy >= 1.12
        # dropped its old alias btdtri); the parameters are invalid (0) at
        # the boundaries, where the bound is 0 or 1 by definition.
        with np.errstate(invalid="ignore", divide="ignore"):
            low = np.where(x > 0, betaincinv(np.maximum(x, 1.0), n - x + 1.0, alpha / 2.0), 0.0)
            high = np.where(x < n, betaincinv(x + 1.0, np.maximum(n - x, 1.0), 1.0 - alpha / 2.0), 1.0)
    elif method == "wilson":
        z = ndtri(1.0 - alpha / 2.0)
        z22n = z * z / (2.0 * n)
        half = z * np.sqrt(p * (1.0 - p) / n + z22n / (2.0 * n))
        centre = p + z22n
        denom = 1.0 + 2.0 * z22n
        # R's prop.test sets the bound to exactly 0 / 1 at p = 0 / 1.
        low = np.where(p <= 0.0, 0.0, (centre - half) / denom)
        high = np.where(p >= 1.0, 1.0, (centre + half) / denom)
    else:
        z = ndtri(1.0 - alpha / 2.0)
        half = z * np.sqrt(p * (1.0 - p) / n)
        low = np.clip(p - half, 0.0, 1.0)
        high = np.clip(p + half, 0.0, 1.0)
    return ProportionCI(estimate=p, ci_low=np.asarray(low, dtype=float),
                        ci_high=np.asarray(high, dtype=float), method=method, level=float(level))


# ---------------------------------------------------------------------------
# Fisher's exact test
# ---------------------------------------------------------------------------

# R's fisher.test() counts a table as "as extreme" when its probability is at
# most (1 + 1e-7) times the observed one, so that tables of equal probability
# are not split by rounding.
_FISHER_REL_ERR = 1.0 + 1e-7


def _log_choose(n, k):
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def fisher_exact_pvalue(a, b, c, d, alternative: str = "two-sided") -> float:
    """p-value of Fisher's exact test for the 2x2 table ``[[a, b], [c, d]]``.

    Exactly R's ``fisher.test(matrix(c(a, c, b, d), 2))$p.value`` (rows are
    the arms, columns event / no event): conditional on all margins, ``a``
    is hypergeometric; the two-sided p sums the probabilities of all tables
    no more likely than the observed one (with R's relative tolerance 1e-7);
    ``"greater"`` / ``"less"`` sum the upper / lower tail of ``a``.
    """
    a, b, c, d = (int(v) for v in (a, b, c, d))
    if min(a, b, c, d) < 0:
        raise UsageError("Fisher's exact test needs non-negative cell counts")
    m = a + c          # first column total (events)
    nn = b + d         # second column total (non-events)
    k = a + b          # first row total (arm 1 size)
    lo = max(0, k - nn)
    hi = min(k, m)
    support = np.arange(lo, hi + 1, dtype=float)
    logp = _log_choose(m, support) + _log_choose(nn, k - support) - _log_choose(m + nn, k)
    dens = np.exp(logp - logp.max())
    dens /= dens.sum()
    obs = dens[a - lo]
    if alternative == "two-sided":
        pval = dens[dens <= obs * _FISHER_REL_ERR].sum()
    elif alternative == "greater":
        pval = dens[a - lo:].sum()
    elif alternative == "less":
        pval = dens[: a - lo + 1].sum()
    else:
        raise UsageError(f"unknown alternative {alternative!r}")
    return float(min(1.0, pval))


def fisher_exact_pvalues(events_t, n_t, events_c, n_c, alternative: str = "two-sided") -> np.ndarray:
    """Two-arm counts (``events_t/n_t`` vs ``events_c/n_c``) -> Fisher p-values, one per pair."""
    et, nt, ec, nc = (np.atleast_1d(np.asarray(v)).astype(int) for v in (events_t, n_t, events_c, n_c))
    et, nt, ec, nc = np.broadcast_arrays(et, nt, ec, nc)
    out = np.empty(et.shape, dtype=float)
    for i in np.ndindex(et.shape):
        out[i] = fisher_exact_pvalue(et[i], nt[i] - et[i], ec[i], nc[i] - ec[i], alternative)
    return out
