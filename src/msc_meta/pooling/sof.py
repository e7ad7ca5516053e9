"""Absolute effects and numbers needed to treat for a summary of findings.

:func:`finding` makes one GRADE summary-of-findings row of any pooled
outcome (risks, means, mean changes, rates, standardised differences,
single groups; the block comment before it says how); the rest of this
docstring is about risks, whose rules :func:`summary_of_findings` keeps.

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
class _Selection:
    """Which pool a summary-of-findings row is about (the fields every row starts with)."""

    outcome: str
    timepoint_weeks: float | None
    unit: str | None
    group: str | None
    by: str | None
    measure: str


@dataclass(frozen=True)
class SummaryOfFindings(_Selection):
    """One summary-of-findings row (GRADE-style), risks per 1,000."""

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


def apply_baseline(rule: str, baseline: float, effect: float) -> float:
    """The value with the intervention, given the comparator's value ``baseline`` and a pooled
    effect on the natural scale; ``rule`` is the measure's ``registry.Measure.baseline``.

    ratio: b x (RR, IRR, ratio of means); odds: x b / (1 - b + x b) (OR; GRADE handbook
    5.2.2, Cochrane Handbook 14.1.5); difference: b + x (RD, MD, mean change, IRD);
    sqrt_difference: (sqrt(b) + x)^2 (IRSD, the inverse of its square-root transform).
    """
    if rule == "ratio":
        return baseline * effect
    if rule == "odds":
        if math.isinf(effect):
            return 1.0
        return effect * baseline / (1.0 - baseline + effect * baseline)
    if rule == "difference":
        return baseline + effect
    if rule == "sqrt_difference":
        root = math.sqrt(baseline) + effect
        return root * root if root > 0 else 0.0
    raise ValueError(f"no rule to apply an effect to a comparator value: {rule!r}")


def intervention_risk(measure: str, control_risk: float, effect: float) -> float:
    """Risk with the intervention at ``control_risk`` given a pooled effect
    on the natural scale (GRADE handbook / Cochrane Handbook 14.1.5)."""
    spec = registry.measure(measure)
    if not spec.absolute:
        raise UsageError(f"absolute effects per 1,000 need a two-arm measure of risks "
                         f"({', '.join(registry.measures(arms=2, family='counts'))}), not {measure}")
    return apply_baseline(spec.baseline, control_risk, effect)


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


def _per_1000(risk):
    return None if risk is None else 1000 * risk


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
        # a ratio applied to a zero risk is zero whatever the ratio: not an estimate of "no
        # difference", so the absolute effects are not estimable (shown as a dash)
        notes.append(f"control risk is 0: a relative effect gives no absolute effect; "
                     f"set --control-risk")
        risks = [None] * 3
        rd = rd_lo = rd_hi = None
        nnt = NumberNeeded(value=None, kind=None, ci_low=None, ci_high=None,
                           crosses_infinity=False, nntb_bound=None, nnth_bound=None,
                           text="not estimable (control risk 0; set --control-risk)")
    else:
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
        intervention_per_1000=_per_1000(risks[0]), intervention_ci_low=_per_1000(risks[1]),
        intervention_ci_high=_per_1000(risks[2]),
        rd_per_1000=_per_1000(rd), rd_ci_low=_per_1000(rd_lo), rd_ci_high=_per_1000(rd_hi),
        events=events, nnt=nnt, i2=result.i2, pi_low=result.pi_low, pi_high=result.pi_high,
        flags=tuple(flags), notes=tuple(notes) + tuple(getattr(analysis, "notes", ()) or ()),
    )


# ============================================================================
# A GRADE summary-of-findings row for any outcome type
# ============================================================================
#
# One row per outcome, as the Cochrane / GRADEpro summary-of-findings table
# (Schünemann et al., Cochrane Handbook chapter 14; GRADE handbook 5.2):
# outcome and time point, participants (studies), the relative effect, the
# anticipated absolute effects (the comparator's value and the value with the
# intervention, with the difference), the certainty of the evidence, comments.
#
# How the absolute effect is made depends on the measure (registry fields
# ``absolute``, ``baseline``, ``standardised``, ``family``, ``arms``):
#
# - risks (RR, OR, RD): per 1,000 at the control risk, as summary_of_findings;
# - other comparisons with a ``baseline`` rule (MD, ROM, MC, IRR, IRD, IRSD):
#   the comparator's value from the pooled studies (two-group means: the
#   n-weighted mean of the control arms; paired means: the n-weighted mean
#   before; rates: sum of control events / sum of control person-time, per
#   1,000 units of person-time), or the rater's ``assumed_control``; the
#   value with the intervention by the rule, the difference in the outcome's
#   units (Cochrane Handbook 14.1.5.2);
# - standardised differences (SMD, SMC): no comparator value; re-expressed by
#   Cohen's rule of thumb (|g| 0.2 small, 0.5 moderate, 0.8 large; Cohen 1988,
#   Cochrane Handbook 15.5.3.1), and back to a familiar scale as SMD x SD only
#   when the rater gives that SD (Cochrane Handbook 15.5.3.2);
# - one-group measures (proportions, means, rates): the pooled value itself
#   (proportions and rates per 1,000), with no comparator and no relative effect;
# - correlations and generic effects: the pooled value only; an absolute
#   effect needs a comparator they do not carry.

PER_1000_FAMILIES = ("counts", "rates_one", "rates_two")
CONTINUOUS_FAMILIES = ("means_two", "means_paired", "means_one")
# Cohen (1988) thresholds for |SMD|, as the Cochrane Handbook 15.5.3.1 quotes them
COHEN = ((0.8, "large"), (0.5, "moderate"), (0.2, "small"), (0.0, "less than small"))
# GRADE rules of thumb for the optimal information size (Guyatt et al. 2011, GRADE
# guidelines 6, J Clin Epidemiol 64:1283-1293): 300 events for a dichotomous outcome,
# 400 participants for a continuous one
OIS_EVENTS = 300
OIS_PARTICIPANTS = 400


@dataclass(frozen=True)
class Absolute:
    """The anticipated absolute effect of one outcome (see the block comment above)."""

    kind: str                      # risk, comparison, standardised, single_group, none
    scale: str                     # "per 1,000", "per 1,000 person-time", the outcome's units
    comparator_label: str | None   # "Risk with control", "Mean with control", "Mean before"...
    comparator: float | None       # on the shown scale (x 1,000 where per 1,000)
    comparator_source: str | None
    value: float | None            # with the intervention (or the single group's value)
    value_ci_low: float | None
    value_ci_high: float | None
    difference: float | None       # value - comparator (or SMD x SD)
    difference_ci_low: float | None
    difference_ci_high: float | None
    text: str                      # the difference in words, as a SoF table prints it
    interpretation: str | None = None   # SMD: Cohen's rule of thumb

    def to_dict(self) -> dict:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class Finding(_Selection):
    """One row of a multi-outcome summary-of-findings table."""

    natural: str                   # what the estimate is ("RR", "MD", "Proportion")
    relative: bool                 # the estimate is a relative effect (a ratio)
    method: str
    level: float
    k: int
    participants: float | None     # shared control arms counted once; None for rates
    person_time: float | None
    events: float | None           # both arms (counts and rates)
    estimate: float                # pooled, natural scale: equals pool --json
    ci_low: float
    ci_high: float
    absolute: Absolute
    certainty: object              # certainty.Certainty
    hints: tuple[str, ...]
    comments: str | None
    notes: tuple[str, ...]
    risk: SummaryOfFindings | None = None   # risks: the per-1,000 details and the NNT

    def to_dict(self) -> dict:
        data = {key: getattr(self, key) for key in (
            "outcome", "timepoint_weeks", "unit", "group", "by", "measure", "natural", "relative",
            "method", "level", "k", "participants", "person_time", "events", "estimate", "ci_low",
            "ci_high")}
        data["absolute"] = self.absolute.to_dict()
        data.update(self.certainty.to_dict())
        data["hints"] = list(self.hints)
        data["comments"] = self.comments
        data["notes"] = list(self.notes)
        if self.risk is not None:
            legacy = self.risk.to_dict()
            legacy.pop("notes")          # the row's notes (above) hold them
            data.update({k: v for k, v in legacy.items() if k not in data})
        return jsonable(data)


def finding(analysis, *, ratings=None, design: tuple = (None, None), control_risk=None,
            trials=None, events: str = "beneficial") -> Finding:
    """One summary-of-findings row of a pooled ``Analysis`` (any measure).

    ``ratings`` (``certainty.Ratings`` or None) holds the rater's judgements
    and per-outcome inputs (assumed comparator value, units, SD, events,
    comments); ``design`` is ``(design, where it came from)`` as inferred
    from the table (:func:`inferred_design`); ``control_risk`` and
    ``events`` are the command-line defaults a file row overrides.
    """
    from msc_meta.pooling.certainty import grade

    result = analysis.result
    if result is None:
        raise UsageError(f"{analysis.outcome}: nothing was pooled, so there is no summary of findings")
    spec = measure_of(analysis)
    assumed = ratings.assumed_control if ratings is not None else None
    if ratings is not None and ratings.events:
        events = ratings.events
    notes: list[str] = []
    risk = None
    if spec.absolute:
        cr = control_risk if assumed is None else assumed
        if assumed is not None and not 0 <= assumed <= 1:
            raise _file_error(ratings, "assumed_control",
                              f"{assumed:g} is not a risk; a control risk is a proportion from 0 to 1")
        risk = summary_of_findings(analysis, control_risk=cr, trials=trials, events=events)
        absolute = _risk_absolute(risk)
        notes.extend(risk.notes)
        if assumed is not None:
            notes.append(f"control risk from {ratings.source}")
    else:
        absolute = _other_absolute(analysis, spec, ratings, notes)
        if control_risk is not None:
            notes.append(f"--control-risk applies to risks (two-arm counts), not to "
                         f"{spec.natural}: not used here")
        notes.extend(getattr(analysis, "notes", ()) or ())
    arms = _arms(analysis, spec, trials or {})
    cert = grade(ratings, *design)
    hints = _hints(analysis, spec, arms, risk)
    return Finding(
        outcome=analysis.outcome, timepoint_weeks=analysis.timepoint_weeks, unit=analysis.unit,
        group=getattr(analysis, "group", None), by=getattr(analysis, "by", None),
        measure=analysis.measure, natural=spec.natural, relative=bool(spec.log_axis and spec.two_arm),
        method=result.method, level=result.level, k=result.k,
        participants=arms["participants"], person_time=arms["person_time"], events=arms["events"],
        estimate=result.estimate, ci_low=result.ci_low, ci_high=result.ci_high,
        absolute=absolute, certainty=cert, hints=hints,
        comments=ratings.comments if ratings is not None else None,
        notes=tuple(notes), risk=risk)


def measure_of(analysis):
    """The registry's measure of an analysis, on its ``--scale`` (GEN)."""
    spec = registry.measure(analysis.measure)
    if spec.scales:
        spec = registry.measure(analysis.measure, getattr(analysis.options, "scale", None))
    return spec


def _file_error(ratings, column, message):
    from msc_meta.errors import InputError

    if ratings is not None and ratings.path is not None:
        return InputError(message, path=ratings.path, row=ratings.row, column=column)
    return UsageError(message)


def _risk_absolute(row: SummaryOfFindings) -> Absolute:
    return Absolute(
        kind="risk", scale="per 1,000", comparator_label="Risk with control",
        comparator=row.control_per_1000, comparator_source=row.control_risk_source,
        value=row.intervention_per_1000, value_ci_low=row.intervention_ci_low,
        value_ci_high=row.intervention_ci_high, difference=row.rd_per_1000,
        difference_ci_low=row.rd_ci_low, difference_ci_high=row.rd_ci_high,
        text=difference_text(row.rd_per_1000, row.rd_ci_low, row.rd_ci_high, "per 1,000",
                             more="more", fewer="fewer", digits=0))


def difference_text(diff, low, high, scale: str, *, more="higher", fewer="lower",
                    digits: int = 2) -> str:
    """'124 more per 1,000 (from 12 fewer to 300 more)', as GRADEpro words an absolute effect."""
    def word(x):
        if x is None or not math.isfinite(x):
            return "\u2014"
        text = f"{abs(x):,.{digits}f}"
        if float(text.replace(",", "")) == 0:
            return text
        return f"{text} {more if x > 0 else fewer}"

    head = word(diff)
    return f"{head} {scale} (from {word(low)} to {word(high)})".replace("  ", " ")


def _column(line, name):
    for column, value in getattr(line, "inputs", ()) or ():
        if column == name:
            return value
    return getattr(line, name, None)


def _pooled_lines(analysis):
    return [line for line in analysis.studies if line.weight is not None]


def _comparator(analysis, spec) -> tuple[float, str] | None:
    """The comparator's value from the pooled studies, and how it was made."""
    lines = _pooled_lines(analysis)
    if spec.family == "rates_two":
        events = sum(_column(l, "events_c") or 0 for l in lines)
        time = sum(_column(l, "time_c") or 0 for l in lines)
        if time <= 0:
            return None
        return events / time, f"pooled control arms: {events:g} events / {time:g} person-time"
    mean, n = ("mean_pre", "n_t") if spec.family == "means_paired" else ("mean_c", "n_c")
    pairs = [(_column(l, mean), _column(l, n)) for l in lines]
    pairs = [(m, w) for m, w in pairs if m is not None and w]
    if not pairs:
        return None
    total = sum(w for _, w in pairs)
    value = sum(m * w for m, w in pairs) / total
    lo, hi = min(m for m, _ in pairs), max(m for m, _ in pairs)
    what = "before" if spec.family == "means_paired" else "control arms"
    spread = f", range {lo:.4g} to {hi:.4g}" if len(pairs) > 1 else ""
    return value, f"n-weighted mean {what} of the pooled studies{spread}"


def _scale(spec, ratings) -> tuple[str, float]:
    """What the absolute effects are in, and the factor from the natural scale to it."""
    units = ratings.units if ratings is not None and ratings.units else None
    if spec.family not in PER_1000_FAMILIES:
        return units or "units of the outcome", 1.0
    if spec.family == "counts":
        return "per 1,000", 1000.0
    return f"per 1,000 {units or 'person-time units'}", 1000.0


def _other_absolute(analysis, spec, ratings, notes) -> Absolute:
    """The absolute effect of a measure other than a risk (see the block comment above)."""
    result = analysis.result
    effect = (result.estimate, result.ci_low, result.ci_high)
    scale, factor = _scale(spec, ratings)
    if spec.standardised:
        return _standardised(spec, *effect, ratings, notes)
    if spec.baseline and (spec.two_arm or spec.family == "means_paired"):
        return _comparison(analysis, spec, effect, ratings, scale, factor)
    if spec.arms == 1 and spec.family in PER_1000_FAMILIES + CONTINUOUS_FAMILIES:
        digits = 0 if factor == 1000.0 else 2
        shown = [factor * x for x in effect]
        return Absolute(
            kind="single_group", scale=scale, comparator_label=None, comparator=None,
            comparator_source=None, value=shown[0], value_ci_low=shown[1], value_ci_high=shown[2],
            difference=None, difference_ci_low=None, difference_ci_high=None,
            text=f"{shown[0]:,.{digits}f} {scale} (from {shown[1]:,.{digits}f} to "
                 f"{shown[2]:,.{digits}f}); one group, no comparator")
    return _none(spec, f"no absolute effect: a pooled {spec.natural} carries no comparator "
                       f"value to apply it to")


def _comparison(analysis, spec, effect, ratings, scale: str, factor: float) -> Absolute:
    """A comparison applied to the comparator's value: the rater's ``assumed_control`` (a mean,
    or a rate per unit of person-time), else the pooled studies' (:func:`_comparator`)."""
    assumed = ratings.assumed_control if ratings is not None else None
    if assumed is not None:
        if spec.baseline in ("ratio", "sqrt_difference") and assumed < 0:
            raise _file_error(ratings, "assumed_control",
                              f"{assumed:g} is negative; a {spec.natural} applies to a mean or "
                              f"rate of 0 or more")
        base, source = assumed, f"assumed: {ratings.source}"
    else:
        found = _comparator(analysis, spec)
        if found is None:
            return _none(spec, "no comparator value in the pooled studies; give "
                               "assumed_control in the certainty file")
        base, source = found
    value = [factor * apply_baseline(spec.baseline, base, x) for x in effect]
    diff = [v - factor * base for v in value]
    label = "Mean before" if spec.family == "means_paired" else (
        "Rate with control" if spec.family == "rates_two" else "Mean with control")
    per_1000 = factor == 1000.0
    return Absolute(
        kind="comparison", scale=scale, comparator_label=label, comparator=factor * base,
        comparator_source=source, value=value[0], value_ci_low=value[1], value_ci_high=value[2],
        difference=diff[0], difference_ci_low=diff[1], difference_ci_high=diff[2],
        text=difference_text(*diff, scale, more="more" if per_1000 else "higher",
                             fewer="fewer" if per_1000 else "lower", digits=0 if per_1000 else 2))


def _none(spec, why: str) -> Absolute:
    return Absolute(kind="none", scale="", comparator_label=None, comparator=None,
                    comparator_source=None, value=None, value_ci_low=None, value_ci_high=None,
                    difference=None, difference_ci_low=None, difference_ci_high=None, text=why)


def cohen_size(smd: float) -> str:
    """Cohen's (1988) words for |SMD| (Cochrane Handbook 15.5.3.1: a rule of thumb only)."""
    size = abs(smd)
    return next(word for bound, word in COHEN if size >= bound)


def _standardised(spec, est, lo, hi, ratings, notes) -> Absolute:
    interpretation = (f"{cohen_size(est)} effect (CI from {cohen_size(lo)} to {cohen_size(hi)}"
                      f"{', crossing no effect' if lo <= 0 <= hi else ''}), Cohen's rule of thumb "
                      f"(0.2 small, 0.5 moderate, 0.8 large)")
    sd = ratings.sd if ratings is not None else None
    if sd is None:
        return Absolute(
            kind="standardised", scale="SD units", comparator_label=None, comparator=None,
            comparator_source=None, value=None, value_ci_low=None, value_ci_high=None,
            difference=est, difference_ci_low=lo, difference_ci_high=hi,
            text=difference_text(est, lo, hi, "SD", digits=2) + "; not back-converted: give sd "
                 "(and units) in the certainty file for a familiar scale",
            interpretation=interpretation)
    units = ratings.units or "units of the familiar scale"
    diff = [sd * x for x in (est, lo, hi)]
    notes.append(f"{spec.natural} re-expressed as a mean difference: SMD x SD with SD = {sd:g} "
                 f"{units} ({ratings.source}; Cochrane Handbook 15.5.3.2)")
    return Absolute(
        kind="standardised", scale=units, comparator_label=None, comparator=None,
        comparator_source=f"SD {sd:g} from {ratings.source}", value=None, value_ci_low=None,
        value_ci_high=None, difference=diff[0], difference_ci_low=diff[1], difference_ci_high=diff[2],
        text=difference_text(*diff, units, digits=2) + f" (SMD x SD {sd:g})",
        interpretation=interpretation)


def _arms(analysis, spec, trials) -> dict:
    """Participants, person-time and events of the pooled studies (a shared control once)."""
    lines = _pooled_lines(analysis)
    if spec.family == "counts":
        if spec.two_arm:
            arms = pooled_arms(analysis.studies, trials)
            return {"participants": _whole(arms["n_t"] + arms["n_c"]), "person_time": None,
                    "events": _whole(arms["events_t"] + arms["events_c"])}
        return {"participants": _whole(sum(l.n_t for l in lines)), "person_time": None,
                "events": _whole(sum(l.events_t for l in lines))}
    if spec.family.startswith("rates"):
        cols = ("t", "c") if spec.two_arm else ("t",)
        time = sum(_column(l, f"time_{a}") or 0 for l in lines for a in cols)
        events = sum(_column(l, f"events_{a}") or 0 for l in lines for a in cols)
        return {"participants": None, "person_time": _whole(time), "events": _whole(events)}
    n = 0.0
    seen = set()
    for line in lines:
        n += _column(line, "n_t") or 0
        n_c = _column(line, "n_c")
        if n_c is None:
            continue
        key = (trials.get(line.row_number), _column(line, "mean_c"), _column(line, "sd_c"), n_c)
        if key[0] and getattr(line, "control_share", None) is None and key in seen:
            continue
        seen.add(key)
        n += n_c
    return {"participants": _whole(n) if n else None, "person_time": None, "events": None}


def _hints(analysis, spec, arms, risk) -> tuple[str, ...]:
    """Facts that bear on the certainty, labelled as hints: never a rating."""
    result = analysis.result
    hints = [f"k = {result.k} stud{'y' if result.k == 1 else 'ies'}"]
    if result.k == 1:
        hints.append("inconsistency: one study, cannot be assessed")
    elif result.i2 is not None and math.isfinite(result.i2):
        hints.append(f"inconsistency: I\u00b2 = {result.i2:.0f}%" + (" (\u2265 50%)" if result.i2 >= 50 else ""))
    null = spec.null
    if null is not None and result.ci_low <= null <= result.ci_high:
        hints.append(f"imprecision: the {result.level:g}% CI includes no effect ({spec.natural} = {null:g})")
    if arms["events"] is not None and arms["events"] < OIS_EVENTS:
        hints.append(f"imprecision: {arms['events']:g} events (< {OIS_EVENTS}, GRADE's rule of thumb "
                     f"for the optimal information size)")
    elif spec.family in CONTINUOUS_FAMILIES and arms["participants"] is not None \
            and arms["participants"] < OIS_PARTICIPANTS:
        hints.append(f"imprecision: {arms['participants']:g} participants (< {OIS_PARTICIPANTS}, "
                     f"GRADE's rule of thumb for a continuous outcome)")
    if spec.arms == 1:
        hints.append("single-group evidence, no control group (GRADE: rated as observational)")
    if risk is not None and any("shared control arm counted per comparison" in f for f in risk.flags):
        hints.append("comparisons share a control arm (--multiarm keep): not independent")
    return tuple(hints)


def inferred_design(analysis, designs) -> tuple[str | None, str | None]:
    """The design GRADE starts from, read from the pooled rows' ``design`` column.

    Comparisons whose every row is a randomised trial (``design`` ending in
    ``rct``) start as randomised; single-group measures, and comparisons of
    other designs, as observational. Mixed or blank designs: None (the rater
    must say). ``designs`` maps a row number to its ``design`` text.
    """
    spec = measure_of(analysis)
    rows = [r for line in _pooled_lines(analysis) for r in (line.member_rows or (line.row_number,))]
    if spec.arms == 1:
        return "observational", "single-group measure: no randomised comparison"
    texts = {(designs.get(r) or "").strip().lower() for r in rows}
    if not texts or "" in texts:
        return None, None
    randomised = {t.endswith("rct") for t in texts}
    if randomised == {True}:
        return "randomised", f"design column: {', '.join(sorted(texts))}"
    if randomised == {False}:
        return "observational", f"design column: {', '.join(sorted(texts))}"
    return None, None
