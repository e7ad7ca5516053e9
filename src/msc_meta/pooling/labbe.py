"""Event rates of the two arms of each study, for the L'Abbé plot (L'Abbé et al. 1987, Ann
Intern Med 107:224; metafor ``labbe()``).

metafor ``labbe(res)`` draws, for each study of a two-arm count model, the control arm's
outcome (x) against the treatment arm's (y) on the measure's scale: log risks for RR,
logits for OR, risks for RD, with the model's continuity correction added to the cells of
a study with a zero cell (``escalc(add=, to="only0")``), and the pooled effect as the line
``y = x + theta``. The plot shows them back on the risk scale, where that line is the curve
:func:`effect_curve`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msc_meta import registry
from msc_meta.errors import UsageError


@dataclass(frozen=True)
class LabbePoints:
    study_ids: tuple[str, ...]
    risk_t: np.ndarray            # treatment-arm risk, with the correction where it was added
    risk_c: np.ndarray
    weight: np.ndarray            # percent of the pooled model (equal when it has none)
    measure: str
    theta: float                  # pooled effect, analysis scale
    estimate: float               # pooled effect, natural scale


def labbe_points(analysis) -> LabbePoints:
    """The arms' risks of an ``Analysis`` of two-arm counts (RR, OR, RD): events/n, or
    (events + cc)/(n + 2 cc) for a study whose effect was computed with the correction, as
    metafor ``labbe()`` does."""
    spec = registry.measure(analysis.measure)
    if spec.family != "counts" or not spec.two_arm:
        names = registry.measures(family="counts", arms=2)
        two_arm = ", ".join(names[:-1]) + f" or {names[-1]}"
        raise UsageError(f"a L'Abbé plot compares the event risks of two arms: it needs two-arm "
                         f"counts (events and n in both arms) pooled as {two_arm}; these studies "
                         f"were pooled as {analysis.measure}")
    lines = analysis.studies
    cc = analysis.cc or 0.0
    add = np.array([cc if s.cc_added else 0.0 for s in lines])
    et = np.array([s.events_t for s in lines], dtype=float)
    nt = np.array([s.n_t for s in lines], dtype=float)
    ec = np.array([s.events_c for s in lines], dtype=float)
    nc = np.array([s.n_c for s in lines], dtype=float)
    weights = np.array([s.weight if s.weight is not None and np.isfinite(s.weight) else np.nan
                        for s in lines])
    if not np.isfinite(weights).any():
        weights = np.full(len(lines), 100.0 / max(len(lines), 1))
    fit = analysis.result
    return LabbePoints(study_ids=tuple(s.study_id for s in lines),
                       risk_t=(et + add) / (nt + 2 * add), risk_c=(ec + add) / (nc + 2 * add),
                       weight=np.nan_to_num(weights, nan=0.0), measure=analysis.measure,
                       theta=fit.theta, estimate=fit.estimate)


def effect_curve(measure: str, theta: float, risk_c, *, iterations: int = 200):
    """The treatment-arm risk at which a study with control risk ``risk_c`` has the effect
    ``theta`` (analysis scale): metafor labbe()'s line ``y = x + theta`` on the risk scale.

    Solved by bisection on the measure's own effect-size function (registry), which rises
    with the treatment risk for every two-arm count measure (RR: ``risk_c·exp(theta)``, OR:
    odds ``·exp(theta)``, RD: ``risk_c + theta``); NaN where no risk in (0, 1) gives
    ``theta``.
    """
    effect = registry.measure(measure).effect_function()
    pc = np.asarray(risk_c, dtype=float)

    def yi(pt):
        return np.asarray(effect(pt, 1.0 - pt, pc, 1.0 - pc)[0], dtype=float)

    lo = np.full(pc.shape, 1e-12)
    hi = np.full(pc.shape, 1.0 - 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        reachable = (yi(lo) <= theta) & (theta <= yi(hi))
        for _ in range(iterations):
            mid = (lo + hi) / 2
            below = yi(mid) < theta
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
            if np.all(hi - lo < 1e-15):
                break
    return np.where(reachable, (lo + hi) / 2, np.nan)
