"""Absolute effects and numbers needed to treat for a summary of findings.

A pooled relative effect becomes an absolute one at an assumed control risk
(CR), as in GRADE summary-of-findings tables (Guyatt et al. 2013, "GRADE
guidelines 12/13", J Clin Epidemiol 66:158-172 and 173-183; Cochrane
Handbook chapter 14.1.5):

- RR: intervention risk = CR x RR
- OR: intervention risk = OR x CR / (1 - CR + OR x CR)
- RD: intervention risk = CR + RD

each applied to the point estimate and to both CI bounds (all three maps are
increasing in the effect, so the CI maps to a CI). The risk difference at
that CR is intervention risk - CR; risks are reported per 1,000.

Default CR: the pooled control-arm risk ``sum(events_c) / sum(n_c)`` over
the studies in the pool, counting a shared control arm once (rows of the
same ``trial`` whose control counts are identical are taken to be one
placebo group, as in the bmMSC dose-finding trial's cohorts).

NNT = 1 / |RD| (Altman 1998, BMJ 317:1309-1312, "Confidence intervals for
the number needed to treat"): an NNTB (benefit) or NNTH (harm) depending on
whether the difference favours the intervention; "favours" depends on
whether the events are beneficial (e.g. fistula closure, the default) or
harmful (e.g. adverse events). The CI is 1/RD at the RD CI bounds; when the
RD CI includes 0 the NNT CI passes through infinity and is reported in two
parts, "NNTH a to infinity to NNTB b", as Altman recommends.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

from msc_meta import registry
from msc_meta.errors import UsageError
from msc_meta.pooling.results import jsonable



@dataclass(frozen=True)
class NumberNeeded:
    """NNT with Altman's (1998) confidence interval.

    ``value`` is 1/|RD| (None when RD = 0: infinite); ``kind`` is "NNTB" or
    "NNTH" (None when RD = 0). When the RD CI excludes 0, ``ci_low`` and
    ``ci_high`` bound the NNT of the same kind. When it includes 0,
    ``crosses_infinity`` is true and the CI is the union of "NNTB from
    ``nntb_bound``" and "NNTH from ``nnth_bound``", both up to infinity.
    """

    value: float | None
    kind: str | None
    ci_low: float | None
    ci_high: float | None
    crosses_infinity: bool
    nntb_bound: float | None
    nnth_bound: float | None
    text: str


@dataclass(frozen=True)
class SummaryOfFindings:
    """One summary-of-findings row (GRADE-style), risks per 1,000."""

    outcome: str
    timepoint_weeks: float | None
    unit: str | None
    group: str | None
    by: str | None
    measure: str
    method: str
    level: float
    k: int
    participants: float           # shared control arms counted once (int unless divided)
    total_events: float           # both arms, shared control arms counted once
    relative_effect: float        # RR / OR (or RD) with its CI, natural scale
    relative_ci_low: float
    relative_ci_high: float
    control_risk: float           # proportion
    control_risk_source: str      # "pooled control arms" or "set with --control-risk"
    control_per_1000: float
    intervention_per_1000: float
    intervention_ci_low: float
    intervention_ci_high: float
    rd_per_1000: float
    rd_ci_low: float
    rd_ci_high: float
    events: str                   # "beneficial" or "harmful"
    nnt: NumberNeeded
    i2: float
    pi_low: float | None
    pi_high: float | None
    flags: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """JSON-ready dictionary (NaN/inf -> None); NNT fields flattened."""
        data = asdict(self)
        nnt = data.pop("nnt")
        data.update({
            "nnt": nnt["value"], "nnt_type": nnt["kind"],
            "nnt_ci_low": nnt["ci_low"], "nnt_ci_high": nnt["ci_high"],
            "nnt_ci_crosses_infinity": nnt["crosses_infinity"],
            "nntb_bound": nnt["nntb_bound"], "nnth_bound": nnt["nnth_bound"],
            "nnt_text": nnt["text"],
        })
        return jsonable(data)


def intervention_risk(measure: str, control_risk: float, effect: float) -> float:
    """Risk with the intervention at ``control_risk`` given a pooled effect
    on the natural scale (GRADE handbook / Cochrane Handbook 14.1.5)."""
    if measure == "RR":
        return control_risk * effect
    if measure == "OR":
        if math.isinf(effect):
            return 1.0
        return effect * control_risk / (1.0 - control_risk + effect * control_risk)
    if measure == "RD":
        return control_risk + effect
    raise UsageError(f"absolute effects need a two-arm measure (RR, OR or RD), not {measure}")


def number_needed(rd: float, rd_low: float, rd_high: float, *, events: str = "beneficial",
                  level: float = 95.0) -> NumberNeeded:
    """NNT and its CI from a risk difference (intervention - control) and its CI.

    Altman DG (1998) BMJ 317:1309. ``events="harmful"`` flips which
    direction is a benefit (fewer adverse events is a benefit).
    """
    sign = 1.0 if events == "beneficial" else -1.0
    # benefit-signed differences: positive = the intervention does better
    b, lo, hi = sign * rd, sign * rd_low, sign * rd_high
    if lo > hi:
        lo, hi = hi, lo
    value = 1.0 / abs(b) if b != 0 else None
    kind = None if b == 0 else ("NNTB" if b > 0 else "NNTH")
    crosses = lo <= 0 <= hi
    ci_low = ci_high = nntb_bound = nnth_bound = None
    if not crosses:
        ci_low, ci_high = sorted((1.0 / abs(lo), 1.0 / abs(hi)))
    else:
        nntb_bound = 1.0 / hi if hi > 0 else None
        nnth_bound = 1.0 / -lo if lo < 0 else None
    lvl = f"{level:g}% CI"
    point = f"{kind} {_fmt_nnt(value)}" if kind else "NNT infinite (no difference)"
    if not crosses:
        ci = f"{kind or ('NNTB' if lo > 0 else 'NNTH')} {_fmt_nnt(ci_low)} to {_fmt_nnt(ci_high)}"
    else:
        parts = []
        if nnth_bound is not None:
            parts.append(f"NNTH {_fmt_nnt(nnth_bound)}")
        parts.append("\u221e")
        if nntb_bound is not None:
            parts.append(f"NNTB {_fmt_nnt(nntb_bound)}")
        ci = " to ".join(parts)
    return NumberNeeded(value=value, kind=kind, ci_low=ci_low, ci_high=ci_high,
                        crosses_infinity=crosses, nntb_bound=nntb_bound, nnth_bound=nnth_bound,
                        text=f"{point} ({lvl} {ci})")


def _fmt_nnt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "\u221e"
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def pooled_arms(studies: Sequence, trials: Mapping[int, str | None] | None = None) -> dict:
    """Sums over the pooled studies (``weight`` not None), counting a shared
    control arm once.

    Lines built by ``--multiarm combine``/``split`` (``control_share`` set)
    already carry their share of the shared control, so their control counts
    are summed as they are. Other lines of the same ``trial`` with identical
    control counts (``--multiarm keep``) are taken to be one placebo group
    and counted once. Returns ``events_t, n_t, events_c, n_c`` (floats when
    a control was divided) and ``shared`` (control arms not counted again).
    """
    trials = trials or {}
    events_t = n_t = events_c = n_c = 0
    shared = 0
    seen = set()
    for line in studies:
        if line.weight is None or line.n_c is None or line.events_c is None:
            continue
        events_t += line.events_t
        n_t += line.n_t
        trial = trials.get(line.row_number)
        if getattr(line, "control_share", None) is None and trial:
            key = (trial, line.events_c, line.n_c)
            if key in seen:
                shared += 1
                continue
            seen.add(key)
        events_c += line.events_c
        n_c += line.n_c
    return {"events_t": _whole(events_t), "n_t": _whole(n_t), "events_c": _whole(events_c),
            "n_c": _whole(n_c), "shared": shared}


def _whole(x):
    """Sums of split controls (1/3 + 1/3 + 1/3) back to the integer they are."""
    return int(round(x)) if abs(x - round(x)) < 1e-9 else float(x)


def summary_of_findings(analysis, *, control_risk: float | None = None,
                        trials: Mapping[int, str | None] | None = None,
                        events: str = "beneficial") -> SummaryOfFindings:
    """Absolute effects of one pooled two-arm analysis (see module doc).

    ``analysis`` is a ``msc_meta.pooling.analysis.Analysis``; its primary
    fit (``result``: random effects, or the common effect for FE/MH/PETO)
    is used. ``trials`` maps a study's ``row_number`` to its ``trial`` so
    that shared control arms count once.
    """
    result = analysis.result
    if result is None:
        raise UsageError(f"{analysis.outcome}: nothing was pooled, so there is no summary of findings")
    measure = analysis.measure
    if not registry.measure(measure).absolute:
        raise UsageError(f"summary of findings needs a two-arm outcome pooled as RR, OR or RD; "
                         f"{analysis.outcome} was pooled as {measure} (single-arm proportions "
                         f"have no control risk)")
    if events not in ("beneficial", "harmful"):
        raise UsageError(f"--events must be beneficial or harmful, not {events!r}")
    arms = pooled_arms(analysis.studies, trials)
    notes: list[str] = []
    if control_risk is None:
        if arms["n_c"] == 0:
            raise UsageError("no control arm among the pooled studies; give --control-risk")
        cr = arms["events_c"] / arms["n_c"]
        source = "pooled control arms"
        notes.append(f"control risk = pooled control-arm risk {arms['events_c']:g}/{arms['n_c']:g} "
                     f"= {1000 * cr:.0f} per 1,000 (shared control arms counted once)")
    else:
        if not 0 <= control_risk <= 1:
            raise UsageError(f"--control-risk must be a proportion between 0 and 1, got {control_risk}")
        cr = float(control_risk)
        source = "set with --control-risk"
        notes.append(f"control risk set by the user: {1000 * cr:.0f} per 1,000")
    if arms["shared"]:
        notes.append(f"{arms['shared']} control arm(s) shared within a trial counted once in the "
                     f"control risk and participants (the pool itself counts them per comparison)")

    est, lo, hi = result.estimate, result.ci_low, result.ci_high
    raw = [intervention_risk(measure, cr, x) for x in (est, lo, hi)]
    risks = [min(max(r, 0.0), 1.0) for r in raw]
    if any(r != c for r, c in zip(raw, risks)):
        notes.append(f"{measure} at this control risk implies a risk outside 0-1000 per 1,000: "
                     f"capped (a constant {measure} cannot hold at this control risk)")
    if cr == 0 and registry.measure(measure).log_axis:      # a ratio
        notes.append(f"control risk is 0: a relative effect gives no absolute difference; "
                     f"set --control-risk")
    rd, rd_lo, rd_hi = (r - cr for r in risks)
    nnt = number_needed(rd, rd_lo, rd_hi, events=events, level=result.level)

    null = registry.measure(measure).null
    flags = []
    if lo <= null <= hi:
        flags.append(f"imprecision: the {result.level:g}% CI includes no effect")
    total_events = arms["events_t"] + arms["events_c"]
    if total_events < 300:
        flags.append(f"imprecision: {total_events:g} events in total (< 300, GRADE rule of thumb "
                     f"for the optimal information size)")
    if result.k > 1 and result.i2 is not None and math.isfinite(result.i2) and result.i2 >= 50:
        flags.append(f"inconsistency: I\u00b2 = {result.i2:.0f}%")
    if result.k == 1:
        flags.append("single study: consistency cannot be assessed")
    if arms["shared"]:
        flags.append("shared control arm counted per comparison in the pool (--multiarm keep): "
                     "comparisons are not independent")
    return SummaryOfFindings(
        outcome=analysis.outcome, timepoint_weeks=analysis.timepoint_weeks, unit=analysis.unit,
        group=getattr(analysis, "group", None), by=getattr(analysis, "by", None), measure=measure, method=result.method,
        level=result.level, k=result.k,
        participants=_whole(arms["n_t"] + arms["n_c"]), total_events=_whole(total_events),
        relative_effect=est, relative_ci_low=lo, relative_ci_high=hi,
        control_risk=cr, control_risk_source=source, control_per_1000=1000 * cr,
        intervention_per_1000=1000 * risks[0], intervention_ci_low=1000 * risks[1],
        intervention_ci_high=1000 * risks[2],
        rd_per_1000=1000 * rd, rd_ci_low=1000 * rd_lo, rd_ci_high=1000 * rd_hi,
        events=events, nnt=nnt, i2=result.i2, pi_low=result.pi_low, pi_high=result.pi_high,
        flags=tuple(flags), notes=tuple(notes) + tuple(getattr(analysis, "notes", ()) or ()),
    )
