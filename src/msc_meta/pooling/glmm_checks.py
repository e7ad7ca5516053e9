"""When the binomial-normal GLMM has no finite estimate: its refusals, numpy only.

Kept apart from ``msc_meta.pooling.glmm`` (the fit itself) so that the
guidance of every ``pool`` can ask whether ``--method GLMM`` would run
without fitting; only for the data where the divergence rule can fire
(``divergence_possible``) does the guidance run the fit.

Two kinds of refusal. Up front (:func:`plo_refusal`, :func:`or_refusal`):
data whose likelihood has no finite maximum at all (every study at 0% or
100%, one arm without events everywhere, complete separation in every
study). During the fit (:func:`or_divergence`): near-separated data, where
some studies have a zero cell (their own OR is 0 or infinite), can hold a
finite but meaningless maximum far out in tau², which the iterations chase
for thousands of likelihood evaluations (metafor 3.8 ``rma.glmm`` returns
tau² ≈ 1674 on log-OR scale for the data of
``tests/test_glmm_separation.py``, without a warning). The documented rule:
the two-arm GLMM is refused as soon as an accepted iterate has
``tau² > OR_TAU2_MAX`` = 100, a between-study SD of 10 on the log-OR scale
(true study ORs spread over a factor of e^±19.6 ≈ 3e8 around the pooled OR)
that no real heterogeneity produces; the message names the studies with a
zero cell and the methods that do run on these counts (Mantel-Haenszel
when its OR is finite, Peto always), checked here in closed form.
"""

from __future__ import annotations

import numpy as np


def plo_refusal(events, n) -> str | None:
    """Why ``glmm_plo`` has no finite estimate for these counts, or None when it has one.

    Every study at 0 events (or only events): the pooled logit is infinite.
    Some at 0%, the others at 100%: the likelihood grows without bound as
    tau -> infinity (lme4 stops at an arbitrary huge tau²).
    """
    x = np.asarray(events, dtype=float).ravel()
    n = np.asarray(n, dtype=float).ravel()
    if np.all(x == 0) or np.all(x == n):
        return ("the GLMM has no finite estimate when every study has 0 events "
                "(or only events): the pooled logit is infinite")
    if np.all((x == 0) | (x == n)):
        return ("the GLMM has no finite estimate when every study has 0 events or only "
                "events (complete separation: tau² grows without bound); use an "
                "inverse-variance method such as --method REML, or `msc-meta bayes`")
    return None


def or_refusal(a, n1, c, n2) -> str | None:
    """Why ``glmm_or`` has no finite odds ratio for these tables (double zeros removed), or None.

    One arm without events (or with only events) in every study, or complete
    separation in every study (each study's own OR is +inf or -inf): the
    likelihood has no finite maximum.
    """
    a, n1, c, n2 = (np.asarray(v, dtype=float).ravel() for v in (a, n1, c, n2))
    if np.all(a == 0) or np.all(c == 0) or np.all(a == n1) or np.all(c == n2):
        return ("the GLMM has no finite odds ratio when one arm has no events "
                "(or only events) in every study")
    if np.all(((a == n1) & (c == 0)) | ((a == 0) & (c == n2))):
        return ("the GLMM has no finite estimate: in every study one arm has all "
                "events and the other none (complete separation); use an "
                "inverse-variance method such as --method REML, or `msc-meta bayes`")
    return None


OR_TAU2_MAX = 100.0   # log-OR scale; see the module docstring


def zero_cell_studies(a, n1, c, n2) -> np.ndarray:
    """Studies whose own odds ratio is 0 or infinite: a zero cell in their 2x2 table."""
    a, n1, c, n2 = (np.asarray(v, dtype=float).ravel() for v in (a, n1, c, n2))
    return (a == 0) | (a == n1) | (c == 0) | (c == n2)


def divergence_possible(a, n1, c, n2) -> bool:
    """Can :func:`or_divergence` fire on these tables (double zeros removed)? Cheap and conservative.

    Yes when a study has a zero cell: its own log OR is +-infinite, the
    profile likelihood can keep rising in tau², and only the fit tells
    (``tests/test_glmm_separation.py``: fires on one such table, not on
    others). Without zero cells every study's log OR ``y_i`` is finite, and
    the ML tau² of the normal approximation, a weighted mean of
    ``(y_i - mu)² - v_i``, is below ``(max y - min y)²``; so the fit is also
    asked when that spread reaches ``sqrt(OR_TAU2_MAX)`` = 10 on the log-OR
    scale (odds ratios 2e4 apart), far beyond real data. ``msc_meta.pooling.guidance``
    fits the GLMM only when this is True, before suggesting ``--method GLMM``.
    """
    a, n1, c, n2 = (np.asarray(v, dtype=float).ravel() for v in (a, n1, c, n2))
    if zero_cell_studies(a, n1, c, n2).any():
        return True
    with np.errstate(divide="ignore"):
        y = np.log(a) - np.log(n1 - a) - np.log(c) + np.log(n2 - c)
    return bool(y.size) and float(y.max() - y.min()) >= OR_TAU2_MAX ** 0.5


def _raw_count_methods(a, n1, c, n2) -> str:
    """The raw-count methods that give a finite OR here (Robins, Breslow & Greenland 1986; Yusuf 1985)."""
    N = n1 + n2
    mh_finite = (np.sum(a * (n2 - c) / N) > 0) and (np.sum((n1 - a) * c / N) > 0)
    return "--method MH or --method PETO" if mh_finite else "--method PETO (the MH odds ratio is 0 or infinite here)"


def or_divergence(a, n1, c, n2, tau2) -> str | None:
    """The refusal of a two-arm GLMM fit whose iterate reached ``tau2`` (log-OR scale), or None below the rule."""
    if not tau2 > OR_TAU2_MAX:
        return None
    a, n1, c, n2 = (np.asarray(v, dtype=float).ravel() for v in (a, n1, c, n2))
    zero = zero_cell_studies(a, n1, c, n2)
    which = ", ".join(str(i + 1) for i in np.nonzero(zero)[0])
    cause = (f"{int(zero.sum())} of the {zero.size} studies (number {which} in the order given) have a zero "
             "cell, so their own odds ratio is 0 or infinite (quasi-separation)") if zero.any() else \
        "the studies' odds ratios lie too far apart for a normal random effect"
    return (f"the GLMM did not converge: its tau² ran past {OR_TAU2_MAX:g} on the log-OR scale (study odds "
            f"ratios spread over a factor above 1e8), towards an estimate with no meaning: {cause}; "
            f"use {_raw_count_methods(a, n1, c, n2)} on the raw counts, or `msc-meta bayes`")
