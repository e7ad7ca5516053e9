"""Mantel-Haenszel (RR, OR, RD) and Peto odds-ratio common-effect pools.

Both follow metafor 3.8 exactly (``rma.mh()`` and ``rma.peto()`` with their
defaults): the pooled estimate comes from the raw 2x2 tables (no continuity
correction: ``add=c(1/2, 0)``, ``to=c("only0", "none")``), while Cochran's Q
is computed around that estimate from the ``escalc()`` effect sizes with the
correction and with double-zero tables dropped (``drop00=c(TRUE, FALSE)``).
So ``k`` counts the tables given, and the Q degrees of freedom count the
tables with a computable escalc value (``k.yi - 1``).

Which tables to give is the caller's decision: the CLI contract leaves
double-zero tables out of RR and OR pools (``EffectSizes.keep``). For OR a
double-zero table adds nothing to the MH or Peto estimate anyway; for RR a
table with events in every participant of both arms would add to the MH
sums (it pulls the estimate towards 1) and is left out by the contract.

Imports numpy and msc_meta._dist only (the ``pool`` path).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from msc_meta._dist import chdtrc, ndtr

from msc_meta import registry
from msc_meta.effects import _z_crit, as_column, escalc, transform_back
from msc_meta.errors import ComputationError, UsageError
from msc_meta.pooling.results import PoolResult



def _tables(ai, n1i, ci, n2i, *, counts_checked=False):
    arrays = [as_column(name, values, "counts")
              for name, values in (("events_t", ai), ("n_t", n1i), ("events_c", ci), ("n_c", n2i))]
    k = arrays[0].shape[0]
    if any(arr.shape[0] != k for arr in arrays):
        raise UsageError("events_t, n_t, events_c and n_c must have the same length")
    if k == 0:
        raise UsageError("no studies to pool")
    a, n1, c, n2 = arrays
    for name, arr in (("events_t", a), ("n_t", n1), ("events_c", c), ("n_c", n2)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise UsageError(f"study {int(bad[0]) + 1}: {name} is missing; Mantel-Haenszel and Peto "
                             f"need complete 2x2 tables")
    # escalc validates counts (negative, events > n, n < 1) with a located message
    if not counts_checked:
        escalc("RD", a, n1, c, n2)
    return a, n1, c, n2


def tables_keep(measure, ai, n1i, ci, n2i) -> tuple[np.ndarray, tuple]:
    """Which 2x2 tables may enter an MH (measure RR, OR, RD) or Peto (measure "OR") pool, and why not.

    Unlike ``EffectSizes.keep``, a table is never left out because its own
    effect size needs a continuity correction: MH and Peto use the raw counts,
    so with ``cc=0`` a table with a single zero cell still counts (as
    ``rma.mh(add=0)``). Left out: missing counts, and for RR and OR tables with
    no events (or only events) in both arms, as ``escalc(drop00=TRUE)``.
    """
    es = escalc(measure, ai, n1i, ci, n2i, cc=0.5)
    return es.keep.copy(), es.reasons


def _heterogeneity(yi, vi, beta):
    """Q, its df and p-value, I² and H² as rma.mh: from escalc yi/vi around the MH estimate."""
    ok = np.isfinite(yi) & np.isfinite(vi)
    yi, vi = yi[ok], vi[ok]
    k_yi = int(yi.shape[0])
    if k_yi > 1:
        # a study with vi = 0 (a zero cell under --cc 0) makes Q infinite, as
        # metafor's QE = Inf; then I² is undefined (metafor: NaN), not 0
        with np.errstate(divide="ignore", invalid="ignore"):
            q = float(np.sum((yi - beta) ** 2 / vi))
        q = q if np.isnan(q) else max(0.0, q)
        df = k_yi - 1
        q_pval = float(chdtrc(df, q))
        if np.isfinite(q):
            # metafor gives NaN for I² when Q is exactly 0 (0/0); 0 is what it means
            i2 = max(0.0, 100.0 * (q - df) / q) if q > 0 else 0.0
        else:
            i2 = float("nan")
        h2 = q / df
    else:
        q, df, q_pval, i2, h2 = 0.0, max(k_yi - 1, 0), 1.0, 0.0, 1.0
    return q, df, q_pval, i2, h2, k_yi


def _result(measure, method, k, beta, se, level, q, q_df, q_pval, i2, h2, weights, notes):
    crit = _z_crit(level)
    lo = beta - crit * se
    hi = beta + crit * se
    z = beta / se
    pval = float(2.0 * ndtr(-abs(z)))
    back = transform_back(measure, np.array([beta, lo, hi]))
    return PoolResult(
        measure=measure, method=method, k=int(k), theta=float(beta), se=float(se),
        theta_ci_low=float(lo), theta_ci_high=float(hi),
        estimate=float(back[0]), ci_low=float(back[1]), ci_high=float(back[2]),
        stat=float(z), pval=pval, tau2=0.0, tau=0.0, i2=float(i2), h2=float(h2),
        q=float(q), q_df=int(q_df), q_pval=float(q_pval),
        weights=tuple(np.asarray(weights, dtype=float).tolist()), level=float(level), test="z",
        random=False, notes=tuple(notes),
    )


def cmh_test(ai, n1i, ci, n2i, *, correct=True) -> tuple[float, float]:
    """Cochran-Mantel-Haenszel test of OR = 1 (chi-square, 1 df), as metafor ``rma.mh()``'s ``MH``/``MHp``.

    ``(|sum(a - n1 m1 / N)| - 0.5)^2 / sum(n1 n2 m1 m0 / (N^2 (N - 1)))``
    (Mantel & Haenszel 1959), with the 0.5 continuity correction when
    ``correct`` (metafor's default). NaN when no table has an event, or no
    table has a non-event.
    """
    a, n1, c, n2 = _tables(ai, n1i, ci, n2i)
    b, d = n1 - a, n2 - c
    N = n1 + n2
    xt, yt = a + c, b + d
    if np.sum(xt) == 0 or np.sum(yt) == 0:
        return float("nan"), float("nan")
    num = (abs(float(np.sum(a - (n1 / N) * xt))) - (0.5 if correct else 0.0)) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        # a table with N = 1 cannot exist here (n1, n2 >= 1), so N - 1 > 0
        den = float(np.sum((n1 / N) * (n2 / N) * (xt * (yt / (N - 1.0)))))
    stat = num / den
    return stat, float(chdtrc(1, stat))


def pool_mh(measure, ai, n1i, ci, n2i, *, level=95.0, cc=0.5) -> PoolResult:
    """Mantel-Haenszel common-effect pool of 2x2 tables, exactly as metafor ``rma.mh()``.

    With ``N = n1 + n2`` per table (Mantel & Haenszel 1959):

    - OR ``R/S`` with ``R = sum(a d / N)``, ``S = sum(b c / N)``; variance of
      log OR by Robins, Breslow & Greenland (1986; "Greenland-Robins"):
      ``1/2 [sum(P R_i)/R^2 + sum(P S_i + Q R_i)/(R S) + sum(Q S_i)/S^2]``,
      ``P = (a + d)/N``, ``Q = (b + c)/N``;
    - RR ``R/S`` with ``R = sum(a n2 / N)``, ``S = sum(c n1 / N)``; variance of
      log RR by Greenland & Robins (1985):
      ``sum(n1 n2 (a + c)/N^2 - a c / N) / (R S)``;
    - RD ``sum((a n2 - c n1)/N) / sum(n1 n2 / N)``, variance by Sato, Greenland
      & Robins (1989) as metafor codes it.

    Weights in percent are metafor ``weights()`` of the fit: ``b c / N`` (OR),
    ``c n1 / N`` (RR), ``n1 n2 / N`` (RD), over all tables given. Q, I² and H²
    come from the ``escalc(measure, add=cc, to="only0", drop00=TRUE)`` values
    around the MH estimate; ``cc`` touches only Q, never the MH estimate. For
    OR the Cochran-Mantel-Haenszel test is added to ``notes``.
    """
    if not isinstance(measure, str) or not registry.method("MH").pools(measure):
        raise UsageError(f"Mantel-Haenszel pools RR, OR or RD, not {measure!r}")
    measure = measure.upper()
    a, n1, c, n2 = _tables(ai, n1i, ci, n2i)
    k = a.shape[0]
    beta, se, w = _mh_fit(measure, a, n1, c, n2)
    notes = []
    if measure == "OR":
        stat, p = cmh_test(a, n1, c, n2)
        notes.append(f"Cochran-Mantel-Haenszel test (continuity-corrected): chi2 = {stat:.4g}, "
                     f"df = 1, p = {p:.4g}")
    es = _escalc_for_q(measure, a, n1, c, n2, cc)
    q, q_df, q_pval, i2, h2, k_yi = _heterogeneity(es.yi, es.vi, beta)
    if k_yi < k:
        notes.append(f"Q from the {k_yi} of {k} studies with a computable {measure} "
                     f"(escalc, cc = {cc:g}, double-zero studies dropped)")
    if not np.isfinite(q):
        notes.append(f"Q, I² and H² undefined: a study's own {measure} has zero variance without a "
                     f"continuity correction (cc = {cc:g}); use --cc 0.5 to assess heterogeneity")
    weights = 100.0 * w / np.sum(w)
    return _result(measure, "MH", k, beta, se, level, q, q_df, q_pval, i2, h2, weights, notes)


def mh_estimate(measure, ai, n1i, ci, n2i, *, counts_checked=False) -> tuple[float, float]:
    """The MH estimate and its standard error alone (as :func:`pool_mh`, without Q, weights
    or the CMH test): what guidance needs to know whether MH runs on these tables, O(k).
    ``counts_checked``: the counts already passed escalc's checks (the studies of a pool),
    so they are not checked again (0.2 s at k = 10^6); missing ones are still refused."""
    if not isinstance(measure, str) or not registry.method("MH").pools(measure):
        raise UsageError(f"Mantel-Haenszel pools RR, OR or RD, not {measure!r}")
    tables = _tables(ai, n1i, ci, n2i, counts_checked=counts_checked)
    beta, se, _ = _mh_fit(measure.upper(), *tables, weights=False)
    return beta, se


def _mh_fit(measure, a, n1, c, n2, *, weights=True):
    """(log-scale estimate, its se, unnormalised weights) of :func:`pool_mh`'s formulas;
    raises ComputationError where MH is undefined. ``weights=False``: None for the
    weights, not computed (:func:`mh_estimate`; two passes fewer at k = 10^6)."""
    N = n1 + n2
    if measure == "OR":
        b, d = n1 - a, n2 - c
        R_i = (a / N) * d
        S_i = (b / N) * c
        R, S = float(np.sum(R_i)), float(np.sum(S_i))
        if R == 0 or S == 0:
            raise ComputationError("Mantel-Haenszel OR undefined: "
                                   + ("no table has events in treatment with non-events in control (sum a*d/N = 0)"
                                      if R == 0 else
                                      "no table has non-events in treatment with events in control (sum b*c/N = 0)"))
        P_i = a / N + d / N
        Q_i = b / N + c / N
        beta = float(np.log(R / S))
        se = float(np.sqrt(0.5 * (np.sum(P_i * R_i) / R ** 2 + np.sum(P_i * S_i + Q_i * R_i) / (R * S)
                                  + np.sum(Q_i * S_i) / S ** 2)))
        w = S_i if weights else None
    elif measure == "RR":
        p1, p2 = n1 / N, n2 / N          # each computed once (the same numbers as inline)
        R = float(np.sum(a * p2))
        S = float(np.sum(c * p1))
        if np.sum(a) == 0 or np.sum(c) == 0:
            raise ComputationError("Mantel-Haenszel RR undefined: no events in the "
                                   + ("treatment" if np.sum(a) == 0 else "control") + " arm of any study")
        beta = float(np.log(R / S))
        se = float(np.sqrt(np.sum(p1 * p2 * (a + c) - (a / N) * c) / (R * S)))
        w = (c / N) * n1 if weights else None
    else:  # RD
        sum_w = float(np.sum(n1 * (n2 / N)))
        beta = float(np.sum(a * (n2 / N) - c * (n1 / N)) / sum_w)
        var = (beta * np.sum(c * (n1 / N) ** 2 - a * (n2 / N) ** 2 + (n1 / N) * (n2 / N) * (n2 - n1) / 2.0)
               + np.sum(a * (n2 - c) / N + c * (n1 - a) / N) / 2.0) / sum_w ** 2
        # Sato's variance can round below 0 when every table is (nearly) without
        # variation: refused just below, without numpy's RuntimeWarning
        se = math.sqrt(var) if var > 0 else math.nan
        w = n1 * (n2 / N) if weights else None
    if not np.isfinite(se) or se <= 0:
        raise ComputationError(f"Mantel-Haenszel {measure}: standard error is zero or undefined "
                               f"(every table without variation)")
    return beta, se, w


def _escalc_for_q(measure, a, n1, c, n2, cc):
    """escalc(measure, add=cc, to="only0", drop00=TRUE), which rma.mh uses for Q."""
    es = escalc(measure, a, n1, c, n2, cc=cc)
    if measure == "RD":
        # our escalc keeps double-zero RD studies (the contract); rma.mh's Q drops them
        drop = ((a == 0) & (c == 0)) | ((a == n1) & (c == n2))
        return _masked(es, drop)
    return es


def _masked(es, drop):
    return replace(es, yi=np.where(drop, np.nan, es.yi), vi=np.where(drop, np.nan, es.vi))


def pool_peto(ai, n1i, ci, n2i, *, level=95.0) -> PoolResult:
    """Peto's one-step odds ratio (Yusuf et al. 1985), exactly as metafor ``rma.peto()``.

    ``log OR = sum(O - E) / sum(V)``, ``se = 1/sqrt(sum V)``, with
    ``O = a``, ``E = (a + c) n1 / N`` and hypergeometric variance
    ``V = (a + c)(b + d) n1 n2 / (N^2 (N - 1))`` from the raw tables.
    Q = ``sum((O - E)^2 / V) - (sum(O - E))^2 / sum(V)`` over tables with
    ``V > 0``; its df is the number of tables with a computable escalc PETO
    value (double-zero tables dropped) minus one, as metafor. Weights are
    ``V`` in percent (metafor ``weights()``).
    """
    a, n1, c, n2 = _tables(ai, n1i, ci, n2i)
    b, d = n1 - a, n2 - c
    N = n1 + n2
    k = a.shape[0]
    xt, yt = a + c, b + d
    E = xt * n1 / N
    V = xt * yt * (n1 / N) * (n2 / N) / (N - 1.0)
    sum_v = float(np.sum(V))
    if sum_v == 0:
        raise ComputationError("Peto OR undefined: one of the two outcomes never occurred in any study")
    beta = float(np.sum(a - E) / sum_v)
    se = float(np.sqrt(1.0 / sum_v))
    pos = V > 0
    k_pos = int(np.sum(pos))
    q = max(0.0, float(np.sum((a[pos] - E[pos]) ** 2 / V[pos]) - np.sum(a - E) ** 2 / sum_v))
    # escalc("PETO", add=1/2, to="only0", drop00=TRUE): only which tables give a value matters here
    double = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    k_yi = int(np.sum(~double))
    q_df = max(k_yi - 1, 0)
    if k_pos > 1:
        q_pval = float(chdtrc(k_yi - 1, q))
        i2 = max(0.0, 100.0 * (q - (k_yi - 1)) / q) if q > 0 else 0.0
        h2 = q / (k_yi - 1)
    else:
        q_pval, i2, h2 = 1.0, 0.0, 1.0
    notes = []
    if k_yi < k:
        notes.append(f"{k - k_yi} of {k} studies without events (or without non-events) in both arms "
                     f"carry no information for the Peto OR")
    weights = 100.0 * V / sum_v
    return _result("OR", "PETO", k, beta, se, level, q, q_df, q_pval, i2, h2, weights, notes)
