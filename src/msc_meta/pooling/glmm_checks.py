"""When the binomial-normal GLMM has no finite estimate: its refusals, numpy only.

Kept apart from ``msc_meta.pooling.glmm`` (which needs scipy) so that the
guidance of every ``pool`` can ask whether ``--method GLMM`` would run
without paying for scipy's import.
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
