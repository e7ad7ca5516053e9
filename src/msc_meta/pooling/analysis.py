"""What ``msc-meta pool`` computes: table rows -> effect sizes -> pooled fit.

This module turns the selected rows of an outcome table into one
:class:`Analysis`: the studies that were pooled (with labels, counts and
their own estimates), the rows left out and why, the fitted model(s), and
one-line notes on anything a reader must know (exclusions, continuity
corrections, fragile settings, a control arm counted twice). It computes
only; ``msc_meta.report`` prints.

Rules (``shared/cli-contract.md``, ``msc-meta pool``):

* rows without counts are listed as excluded, never pooled;
* the default measure is RR when the selected rows with counts include a
  comparison, else PLO; it is chosen once for the whole selection, so that
  ``--by`` subgroups share one scale;
* under a two-arm measure (RR, OR, RD) single-arm rows are excluded; under a
  single-arm measure (PR, PLO, PFT, PAS) the treatment arms of two-arm rows
  are pooled, with a note;
* studies with no events (or only events) in both arms carry no information
  on RR or OR and are dropped from those pools, as metafor's ``drop00=TRUE``
  (the default of ``rma.mh()`` and ``rma.peto()``); RD keeps them;
* k = 1: the "pooled" row is the study's own estimate, with no heterogeneity.

The subgroup test of :func:`run_pool_by` is the test for subgroup
differences of meta's ``update(m, subgroup=)`` / metafor's approach of
fitting one model per subgroup and then an FE model to the subgroup
estimates: Q_between = sum_g w_g (theta_g - theta_w)^2 with w_g = 1/se_g^2,
on G - 1 degrees of freedom (Borenstein et al. 2009, ch. 19).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from msc_meta.errors import UsageError
from msc_meta.pooling.results import PoolResult

SINGLE_ARM_MEASURES = ("PR", "PLO", "PFT", "PAS")
TWO_ARM_MEASURES = ("RR", "OR", "RD")
MEASURES = SINGLE_ARM_MEASURES + TWO_ARM_MEASURES
COMMON_METHODS = ("FE", "MH", "PETO")
RANDOM_METHODS = ("DL", "REML", "ML", "PM", "HE", "SJ", "HS", "EB")
METHODS = COMMON_METHODS + RANDOM_METHODS
# escalc(add=, to="only0") adds nothing for these (metafor sets add <- 0).
NO_CC_MEASURES = ("PFT", "PAS")
BLANK_GROUP = "(blank)"


@dataclass(frozen=True)
class StudyLine:
    """One pooled study: its counts and its own effect on both scales."""

    study_id: str
    row_number: int
    events_t: int
    n_t: int
    events_c: int | None
    n_c: int | None
    yi: float                 # analysis scale (log RR, logit, ...)
    vi: float
    estimate: float           # natural scale
    ci_low: float
    ci_high: float
    weight: float | None      # percent of the main fit; None if not pooled
    cc_added: bool


@dataclass(frozen=True)
class Excluded:
    study_id: str
    row_number: int
    reason: str


@dataclass(frozen=True)
class Analysis:
    """One pool of one outcome (or of one ``--by`` subgroup of it)."""

    outcome: str
    timepoint_weeks: float | None
    unit: str | None
    group: str | None                 # the --by value, else None
    measure: str
    result: PoolResult | None         # the requested fit; None when nothing was pooled
    common: PoolResult | None         # FE fit shown beside a random-effects fit
    studies: tuple[StudyLine, ...]
    excluded: tuple[Excluded, ...]
    notes: tuple[str, ...]
    method: str = "REML"
    level: float = 95.0
    hksj: bool = False
    pi: str = "hts"
    cc: float = 0.5
    by: str | None = None

    @property
    def k(self) -> int:
        return 0 if self.result is None else self.result.k


@dataclass(frozen=True)
class SubgroupTest:
    """Test for subgroup differences (Q between subgroups, chi-square)."""

    q_between: float
    df: int
    pval: float
    by: str
    groups: tuple[str, ...] = field(default_factory=tuple)  # the subgroups it used
    test: str = "chi2"


# ---------------------------------------------------------------- public API

def run_pool(table, *, outcome, timepoint=None, unit=None, measure=None,
             method="REML", hksj=False, pi="hts", cc=0.5, level=95.0) -> Analysis:
    """Pool one outcome of ``table``; see the module docstring for the rules.

    Raises ``UsageError`` for options that cannot work together or when no
    study is left to pool.
    """
    from msc_meta.data import select

    measure, method, pi = _check_options(measure, method, hksj, pi)
    rows = select(table, outcome, timepoint=timepoint, unit=unit)
    measure = _resolve_measure(rows, measure, method)
    analysis = _pool_rows(rows, outcome=outcome, timepoint=timepoint, unit=unit,
                          group=None, measure=measure, method=method, hksj=hksj,
                          pi=pi, cc=cc, level=level)
    if analysis.result is None:
        raise UsageError(_nothing_to_pool_message(outcome, measure, analysis.excluded))
    return analysis


def run_pool_by(table, by, *, outcome, timepoint=None, unit=None, measure=None,
                method="REML", hksj=False, pi="hts", cc=0.5, level=95.0
                ) -> tuple[list[Analysis], SubgroupTest | None]:
    """One :class:`Analysis` per value of column ``by``, and the subgroup test.

    Blank values form their own group, ``(blank)``. A subgroup with nothing
    to pool is kept (with its exclusions) but left out of the test. The test
    is ``None`` when fewer than two subgroups have a pooled estimate.
    """
    from msc_meta.data import select

    measure, method, pi = _check_options(measure, method, hksj, pi)
    rows = select(table, outcome, timepoint=timepoint, unit=unit)
    measure = _resolve_measure(rows, measure, method)

    # A column the file lacks would put every row in "(blank)": refuse it.
    table.require_column(by)
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(_group_label(row.value(by)), []).append(row)
    # Sort labels so that the output does not depend on row order; blanks last.
    labels = sorted(groups, key=lambda g: (g == BLANK_GROUP, _natural_key(g)))

    analyses = [
        _pool_rows(groups[label], outcome=outcome, timepoint=timepoint, unit=unit,
                   group=label, measure=measure, method=method, hksj=hksj, pi=pi,
                   cc=cc, level=level, by=by)
        for label in labels
    ]
    if all(a.result is None for a in analyses):
        excluded = tuple(e for a in analyses for e in a.excluded)
        raise UsageError(_nothing_to_pool_message(outcome, measure, excluded))
    return analyses, subgroup_test(analyses, by)


def subgroup_test(analyses, by) -> SubgroupTest | None:
    """Q_between over the subgroups with a pooled estimate (chi-square, G-1 df).

    As meta's test for subgroup differences and metafor's recipe
    ``rma(theta_g, sei=se_g, method="FE")`` -> ``QE``: the subgroup
    estimates are weighted by 1/se_g^2, with se_g the standard error of each
    subgroup's own fit (random-effects when the method is random).
    """
    pooled = [a for a in analyses if a.result is not None
              and math.isfinite(a.result.theta) and math.isfinite(a.result.se)
              and a.result.se > 0]
    if len(pooled) < 2:
        return None
    theta = np.array([a.result.theta for a in pooled])
    w = 1.0 / np.array([a.result.se for a in pooled]) ** 2
    theta_w = np.sum(w * theta) / np.sum(w)
    q = float(np.sum(w * (theta - theta_w) ** 2))
    df = len(pooled) - 1
    return SubgroupTest(q_between=q, df=df, pval=float(special.chdtrc(df, q)), by=by,
                        groups=tuple(a.group for a in pooled))


# ---------------------------------------------------------------- internals

def _check_options(measure, method, hksj, pi):
    method = (method or "REML").upper()
    if method not in METHODS:
        raise UsageError(f"--method {method}: unknown method; choose one of {', '.join(METHODS)}")
    if measure is not None:
        measure = measure.upper()
        if measure not in MEASURES:
            raise UsageError(f"--measure {measure}: unknown measure; choose one of {', '.join(MEASURES)}")
        _check_measure_method(measure, method)
    if hksj and method in ("MH", "PETO"):
        # metafor's rma.mh() and rma.peto() have no test="knha".
        raise UsageError(f"--hksj applies to inverse-variance fits, not --method {method}; "
                         "use --method FE or a random-effects method")
    pi = (pi or "hts").lower()
    if pi not in ("hts", "z"):
        raise UsageError(f"--pi {pi}: choose hts or z")
    return measure, method, pi


def _check_measure_method(measure, method):
    if method == "MH" and measure not in ("RR", "OR", "RD"):
        raise UsageError(f"--method MH pools RR, OR or RD, not {measure}; "
                         "use --measure RR|OR|RD or another method")
    if method == "PETO" and measure != "OR":
        raise UsageError(f"--method PETO pools odds ratios only; use --measure OR (not {measure})")


def _resolve_measure(rows, measure, method):
    counted = [r for r in rows if r.has_counts]
    any_comparison = any(r.is_comparison for r in counted)
    if measure is None:
        # MH/PETO only exist for two-arm data, so they imply a two-arm default.
        measure = "RR" if any_comparison else "PLO"
        if method == "PETO":
            measure = "OR"
        elif method == "MH" and not any_comparison:
            measure = "RR"
        _check_measure_method(measure, method)
    if measure in TWO_ARM_MEASURES and counted and not any_comparison:
        raise UsageError(f"--measure {measure} compares two arms, but every selected row with counts "
                         "is single-arm; use --measure PLO, PR, PFT or PAS")
    return measure


def _pool_rows(rows, *, outcome, timepoint, unit, group, measure, method, hksj, pi, cc,
               level, by=None) -> Analysis:
    two_arm = measure in TWO_ARM_MEASURES
    excluded: list[Excluded] = []
    kept = []
    arms_only = 0
    for row in rows:
        reason = _exclusion_reason(row, measure)
        if reason is not None:
            excluded.append(Excluded(row.study_id, row.row_number, reason))
            continue
        if not two_arm and row.is_comparison:
            arms_only += 1
        kept.append(row)

    timepoint_weeks = _common_value([r.timepoint_weeks for r in rows], timepoint)
    unit_value = _common_value([r.unit for r in rows], unit)
    base = dict(outcome=outcome, timepoint_weeks=timepoint_weeks, unit=unit_value, group=group,
                measure=measure, method=method, level=level, hksj=hksj, pi=pi, cc=cc, by=by)

    notes: list[str] = []
    if not kept:
        notes.append(_exclusion_note(excluded, len(rows)))
        return Analysis(result=None, common=None, studies=(), excluded=tuple(excluded),
                        notes=tuple(notes), **base)

    es = _effect_sizes(measure, kept, cc)
    # escalc may itself refuse a study (e.g. a zero cell under --cc 0). MH and
    # Peto pool the raw tables, so such a study still counts there (as
    # rma.mh(add=0)); it only lacks its own estimate in the table.
    keep = np.asarray(es.keep, dtype=bool)
    if method in ("MH", "PETO"):
        keep = np.ones(len(kept), dtype=bool)
    if not keep.all():
        for i in np.flatnonzero(~keep):
            why = es.reasons[i] or f"{measure} not estimable for this study"
            excluded.append(Excluded(kept[i].study_id, kept[i].row_number, why))
        kept = [r for r, k in zip(kept, keep) if k]
        es = _effect_sizes(measure, kept, cc) if kept else None
        if not kept:
            notes.append(_exclusion_note(excluded, len(rows)))
            return Analysis(result=None, common=None, studies=(), excluded=tuple(excluded),
                            notes=tuple(notes), **base)

    yi = np.asarray(es.yi, dtype=float)
    vi = np.asarray(es.vi, dtype=float)
    ni = np.asarray(es.ni, dtype=float)
    cc_added = _cc_flags(es, len(kept))
    k = len(kept)

    if k == 1 and not (math.isfinite(yi[0]) and math.isfinite(vi[0])):
        # Only MH/PETO keep such a study (cc = 0, zero cell); alone it has no estimate.
        excluded.append(Excluded(kept[0].study_id, kept[0].row_number,
                                 f"zero cell and no continuity correction (--cc {cc:g}): "
                                 f"{measure} not estimable from this study alone"))
        notes.append(_exclusion_note(excluded, len(rows)))
        return Analysis(result=None, common=None, studies=(), excluded=tuple(excluded),
                        notes=tuple(notes), **base)
    if k == 1:
        result = _single_study_result(measure, method, yi[0], vi[0], ni, level, hksj)
        common = None
    else:
        result, common = _fit(measure, method, kept, yi, vi, ni, hksj=hksj, pi=pi, cc=cc,
                              level=level)

    from msc_meta.effects import study_estimate

    low, high = _study_ci(es, level)
    # Each study on its own n (matters for PFT), as metafor summary(escalc()).
    estimate = np.asarray(study_estimate(es), dtype=float)
    weights = list(result.weights) if result.weights else [None] * k
    studies = tuple(
        StudyLine(study_id=r.study_id, row_number=r.row_number, events_t=r.events_t, n_t=r.n_t,
                  events_c=r.events_c if two_arm else None, n_c=r.n_c if two_arm else None,
                  yi=float(yi[i]), vi=float(vi[i]), estimate=float(estimate[i]),
                  ci_low=float(low[i]), ci_high=float(high[i]),
                  weight=None if weights[i] is None else float(weights[i]),
                  cc_added=bool(cc_added[i]))
        for i, r in enumerate(kept)
    )

    if excluded:
        notes.append(_exclusion_note(excluded, len(rows)))
    if arms_only:
        notes.append(f"{measure} is a single-arm measure: the treatment arms of {arms_only} "
                     f"two-arm row{'s' if arms_only > 1 else ''} are pooled and their control "
                     "arms ignored")
    n_cc = int(np.sum(cc_added))
    if n_cc:
        if method == "MH":
            where = "to the study estimates and Q (the MH estimate itself uses the raw counts)"
        elif method == "PETO":
            where = "to the study odds ratios shown (the Peto estimate uses the raw counts)"
        else:
            where = "before pooling"
        notes.append(f"zero cells: continuity correction {cc:g} added to every cell of {n_cc} "
                     f"stud{'ies' if n_cc > 1 else 'y'} {where}")
    no_own = [r.study_id for r, y in zip(kept, yi) if not math.isfinite(y)]
    if no_own:
        notes.append(f"{', '.join(no_own)}: no study-level {measure} without a continuity correction "
                     f"(--cc {cc:g}); still pooled by {method} from the raw counts")
    if k == 1:
        notes.append(f"k = 1: the pooled row is {kept[0].study_id}'s own estimate; "
                     "heterogeneity cannot be estimated")
    else:
        notes.extend(_fragility_notes(result, method, k, hksj, pi))
    if two_arm:
        notes.extend(_shared_control_notes(kept))
    notes.extend(_engine_notes(result.notes, notes))

    return Analysis(result=result, common=common, studies=studies, excluded=tuple(excluded),
                    notes=tuple(notes), **base)


def _exclusion_reason(row, measure) -> str | None:
    if not row.has_counts:
        return _no_counts_reason(row)
    if measure in TWO_ARM_MEASURES:
        if not row.is_comparison:
            return f"single-arm row: no control arm for {measure}"
        if measure in ("RR", "OR"):
            if row.events_t == 0 and row.events_c == 0:
                return f"no events in either arm: no information on {measure} (dropped as metafor drop00)"
            if row.events_t == row.n_t and row.events_c == row.n_c:
                return f"events in every participant of both arms: no information on {measure} " \
                       "(dropped as metafor drop00)"
    return None


def _no_counts_reason(row) -> str:
    printed = []
    pct_t, pct_c = getattr(row, "pct_t", None), getattr(row, "pct_c", None)
    # pct_* hold the percentage as printed (text), so show it verbatim.
    if pct_t and pct_c:
        printed.append(f"{_pct(pct_t)} vs {_pct(pct_c)} printed")
    elif pct_t:
        printed.append(f"{_pct(pct_t)} printed")
    note = (getattr(row, "note", None) or "").strip()
    if note:
        printed.append(note if len(note) <= 100 else note[:99].rstrip() + "…")
    detail = "; ".join(printed) if printed else "no percentage or count given"
    return f"no counts in the source: {detail}"


def _pct(printed) -> str:
    text = str(printed).strip()
    return text if text.endswith("%") else f"{text}%"


def _exclusion_note(excluded, n_rows) -> str:
    if not excluded:
        return f"none of the {n_rows} selected rows could be pooled"
    kinds: dict[str, int] = {}
    for e in excluded:
        kind = e.reason.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    parts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    return f"{len(excluded)} of {n_rows} selected rows left out ({parts}); listed under 'Left out'"


def _nothing_to_pool_message(outcome, measure, excluded) -> str:
    if not excluded:
        return f"outcome {outcome}: no rows to pool"
    if all(e.reason.startswith("no counts in the source") for e in excluded):
        ids = ", ".join(f"{e.study_id} (row {e.row_number})" for e in excluded[:3])
        more = f" and {len(excluded) - 3} more" if len(excluded) > 3 else ""
        return (f"outcome {outcome}: nothing to pool: the source gives no counts for any selected "
                f"row, only percentages or statements ({ids}{more}); `msc-meta studies` lists them")
    first = excluded[0]
    more = f" (and {len(excluded) - 1} more)" if len(excluded) > 1 else ""
    return (f"outcome {outcome}: nothing left to pool with {measure}: "
            f"{first.study_id} (row {first.row_number}) {first.reason}{more}")


def _effect_sizes(measure, rows, cc):
    from msc_meta.effects import escalc

    events_t = np.array([r.events_t for r in rows], dtype=float)
    n_t = np.array([r.n_t for r in rows], dtype=float)
    if measure in TWO_ARM_MEASURES:
        events_c = np.array([r.events_c for r in rows], dtype=float)
        n_c = np.array([r.n_c for r in rows], dtype=float)
        return escalc(measure, events_t, n_t, events_c, n_c, cc=cc)
    return escalc(measure, events_t, n_t, cc=cc)


def _cc_flags(es, k):
    flags = getattr(es, "cc_added", None)
    if flags is None:
        return np.zeros(k, dtype=bool)
    flags = np.asarray(flags)
    if flags.ndim == 0:
        return np.full(k, bool(flags))
    return flags.astype(bool)


def _study_ci(es, level):
    from msc_meta.effects import study_ci

    low, high = study_ci(es, level)
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def _back(measure, x, ni):
    from msc_meta.effects import transform_back

    return np.asarray(transform_back(measure, np.asarray(x, dtype=float), ni=ni), dtype=float)


def _fit(measure, method, rows, yi, vi, ni, *, hksj, pi, cc, level):
    """Dispatch to the estimator; random-effects fits also get the FE fit."""
    if method in ("MH", "PETO"):
        from msc_meta.pooling import mh

        ai = np.array([r.events_t for r in rows], dtype=float)
        n1i = np.array([r.n_t for r in rows], dtype=float)
        ci = np.array([r.events_c for r in rows], dtype=float)
        n2i = np.array([r.n_c for r in rows], dtype=float)
        if method == "MH":
            return mh.pool_mh(measure, ai, n1i, ci, n2i, level=level, cc=cc), None
        return mh.pool_peto(ai, n1i, ci, n2i, level=level), None

    from msc_meta.pooling.rma import pool_rma

    result = pool_rma(yi, vi, method=method, measure=measure, ni=ni, hksj=hksj, pi=pi, level=level)
    if method == "FE":
        return result, None
    common = pool_rma(yi, vi, method="FE", measure=measure, ni=ni, hksj=False, pi=pi, level=level)
    return result, common


def _single_study_result(measure, method, yi, vi, ni, level, hksj) -> PoolResult:
    """k = 1: the study's own estimate with a z-based CI and no heterogeneity.

    metafor fits k = 1 too (tau2 = 0, QE = 0, QEp = 1); heterogeneity is
    reported as missing here because nothing was estimated. The CI is
    z-based even under --hksj: a t with k - 1 = 0 df does not exist.
    """
    se = math.sqrt(vi)
    z = float(special.ndtri(0.5 + level / 200.0))
    low, high = yi - z * se, yi + z * se
    stat = yi / se if se > 0 else math.nan
    pval = float(2.0 * special.ndtr(-abs(stat))) if math.isfinite(stat) else math.nan
    nat = _back(measure, np.array([yi, low, high]), ni)
    nan = math.nan
    return PoolResult(
        measure=measure, method=method, k=1, theta=float(yi), se=se,
        theta_ci_low=float(low), theta_ci_high=float(high),
        estimate=float(nat[0]), ci_low=float(nat[1]), ci_high=float(nat[2]),
        stat=float(stat), pval=pval, tau2=nan, tau=nan, i2=nan, h2=nan,
        q=0.0, q_df=0, q_pval=nan, weights=(100.0,), level=level, test="z", df=None,
        hksj=False, random=method in RANDOM_METHODS,
    )


def _fragility_notes(result, method, k, hksj, pi):
    notes = []
    if method in RANDOM_METHODS:
        if not hksj and k < 5:
            notes.append(f"with k = {k} the z-based CI is too narrow (it ignores the uncertainty "
                         "in tau²); consider --hksj")
        if pi == "hts" and k < 3:
            notes.append(f"prediction interval undefined for k = {k}: --pi hts needs k ≥ 3 "
                         "(t with k-2 df); --pi z gives a normal-quantile interval")
        if k < 10 and getattr(result, "tau2", 0) == 0 and k >= 2:
            notes.append(f"tau² estimated as 0 from k = {k} studies: this does not show that the "
                         "studies agree, only that k is too small to see how they differ")
    return notes


def _engine_notes(engine, ours):
    """The estimator's own notes, minus those that repeat one of ours in other words."""
    said_pi = any(n.startswith("prediction interval undefined") for n in ours)
    said_tau0 = any(n.startswith("tau² estimated as 0") for n in ours)
    for note in engine:
        if note in ours or (said_pi and "prediction interval" in note) \
                or (said_tau0 and "boundary 0" in note):
            continue
        yield note


def _shared_control_notes(rows):
    """Study groups of one trial with identical control counts: a shared placebo arm?"""
    by_trial: dict[tuple, list] = {}
    for r in rows:
        trial = (getattr(r, "trial", None) or "").strip()
        if not trial:
            continue
        by_trial.setdefault((trial, r.events_c, r.n_c), []).append(r.study_id)
    notes = []
    for (trial, e, n), ids in by_trial.items():
        if len(ids) > 1:
            notes.append(f"trial {trial}: {', '.join(ids)} have identical control arms ({e}/{n}), "
                         f"probably one placebo arm counted {len(ids)} times, which overstates "
                         "the precision (a later version adds --multiarm)")
    return notes


def _common_value(values, given):
    if given is not None:
        return given
    distinct = {v for v in values if v is not None and v != ""}
    return distinct.pop() if len(distinct) == 1 else None


def _group_label(value) -> str:
    if value is None:
        return BLANK_GROUP
    if isinstance(value, float):
        if math.isnan(value):
            return BLANK_GROUP
        return f"{value:g}"
    text = str(value).strip()
    return text if text else BLANK_GROUP


def _natural_key(label: str):
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label.lower())


__all__ = ["Analysis", "Excluded", "StudyLine", "SubgroupTest", "run_pool", "run_pool_by",
           "subgroup_test"]
