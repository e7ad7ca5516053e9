"""The notes of a pool: what was left out and why, and what a reader must know.

Exclusion reasons, the exclusion summary, the k = 1 explanation, and the
warnings metafor prints silently or not at all (a z-based CI at small k, an
undefined prediction interval, tau² = 0 from few studies, an HKSJ interval
narrower than the common-effect one, a PR interval outside [0, 1], a GLMM
tau² near separation). Computation only: the report layer prints them.
"""

from __future__ import annotations

import math

import numpy as np

from msc_meta import registry
from msc_meta.pooling.multiarm import count_text


def pool_notes(*, measure, options, kept, yi, cc_added, result, common, excluded, n_rows,
               multiarm_notes, arms_only, es=None, facts=None) -> list[str]:
    """Every note of a pool of ``kept`` studies, in the order the table prints them.

    ``facts``: this pool's :class:`StudyFacts` when the caller found them for
    many pools at once (:func:`study_facts_many`); else they are found here.
    """
    if facts is None:
        facts = study_facts(kept, yi, cc_added)
    notes: list[str] = []
    if excluded:
        notes.append(exclusion_note(excluded, n_rows))
    notes.extend(multiarm_notes)
    if not facts.one_timepoint:
        notes.extend(_timepoint_notes(kept))
    notes.extend(assumption_notes(kept, es))
    if arms_only:
        notes.append(f"{measure} is a single-arm measure: the treatment arms of {arms_only} "
                     f"two-arm row{'s' if arms_only > 1 else ''} are pooled and their control "
                     "arms ignored")
    k = len(kept)
    notes.extend(_cc_notes(measure, options, k, facts))
    if k == 1:
        notes.append(single_study_note(kept[0], measure, options.method, bool(cc_added[0]),
                                       options.cc, options.study_ci))
    else:
        notes.extend(fragility_notes(result, options.method, k, options.hksj, options.pi))
        notes.extend(hksj_narrower_note(result, common))
        notes.extend(scale_notes(measure, options.method, result))
    notes.extend(engine_notes(result.notes, notes))
    return notes


class StudyFacts:
    """What the notes read of a pool's studies: continuity-corrected studies, the ids of
    those without their own estimate (non-finite yi), one time point or several."""

    __slots__ = ("n_cc", "no_own", "one_timepoint")

    def __init__(self, n_cc, no_own, one_timepoint):
        self.n_cc, self.no_own, self.one_timepoint = n_cc, no_own, one_timepoint


def study_facts(kept, yi, cc_added) -> StudyFacts:
    """:class:`StudyFacts` of one pool."""
    return study_facts_many(kept, yi, cc_added, np.array([0, len(kept)]))[0]


def study_facts_many(kept, yi, cc_added, bounds) -> list[StudyFacts]:
    """:class:`StudyFacts` of many pools at once: their studies one after another in
    ``kept`` (rows or a view), ``yi`` and ``cc_added``, pool g at ``bounds[g]:bounds[g + 1]``."""
    bounds = np.asarray(bounds, dtype=np.int64)
    starts, sizes = bounds[:-1], np.diff(bounds)
    group = np.repeat(np.arange(sizes.size), sizes)
    n_cc = np.bincount(group, weights=np.asarray(cc_added, dtype=bool),
                       minlength=sizes.size).astype(np.int64).tolist()
    no_yi = ~np.isfinite(np.asarray(yi, dtype=float))
    weeks = _weeks(kept)
    first = weeks[np.minimum(starts, max(len(weeks) - 1, 0))][group] if len(weeks) else weeks
    other = ~((weeks == first) | (np.isnan(weeks) & np.isnan(first)))
    several = np.bincount(group, weights=other, minlength=sizes.size) > 0
    with_no_yi = set(group[no_yi].tolist())
    out = []
    for g, (lo, hi) in enumerate(zip(starts.tolist(), bounds[1:].tolist())):
        no_own = [kept[i].study_id for i in range(lo, hi) if no_yi[i]] if g in with_no_yi else []
        out.append(StudyFacts(n_cc[g], no_own, not several[g]))
    return out


def _weeks(kept) -> np.ndarray:
    """The studies' time points, NaN where blank."""
    if hasattr(kept, "column"):     # a view on the table's columns
        return np.asarray(kept.column("timepoint_weeks"), dtype=float)
    return np.array([np.nan if r.timepoint_weeks is None else r.timepoint_weeks for r in kept],
                    dtype=float)


def _timepoint_notes(kept):
    """Studies of different time points pooled together (``StudyFacts.one_timepoint`` false)."""
    from msc_meta.data.load import format_weeks

    when = ", ".join(f"{r.study_id} {format_weeks(r.timepoint_weeks)}"
                     + (" wk" if r.timepoint_weeks is not None else "") for r in kept)
    return [f"studies assessed at different time points are pooled together (--timepoint any): {when}"]


def _cc_notes(measure, options, k, facts):
    notes = []
    method, cc = options.method, options.cc
    n_cc = facts.n_cc
    if n_cc and k > 1:      # at k = 1 the single-study note says it
        if method == "MH":
            where = "to the study estimates and Q (the MH estimate itself uses the raw counts)"
        elif method == "PETO":
            where = "to the study odds ratios shown (the Peto estimate uses the raw counts)"
        elif registry.method(method).kind == "glmm":
            where = (f"for {'their own estimates' if n_cc > 1 else 'its own estimate'} (yi, vi); "
                     "the GLMM fits the raw counts")
        else:
            where = "before pooling"
        notes.append(f"zero cells: continuity correction {cc:g} added to every cell of {n_cc} "
                     f"stud{'ies' if n_cc > 1 else 'y'} {where}")
    no_own = facts.no_own
    if no_own:
        notes.append(f"{', '.join(no_own)}: no study-level {measure} without a continuity correction "
                     f"(--cc {cc:g}); still pooled by {method} from the raw counts")
    if options.study_ci != "wald" and not registry.measure(measure).two_arm and k > 1:
        how = "exact (Clopper-Pearson)" if options.study_ci == "exact" else "Wilson score"
        pooled = ("the GLMM fits the raw counts" if registry.method(method).kind == "glmm"
                  else f"the pool uses the {measure} values yi, vi")
        notes.append(f"study rows show x/n with its {how} interval (--study-ci {options.study_ci}); "
                     f"{pooled}")
    return notes


def assumption_notes(kept, es) -> list[str]:
    """What study values assumed (``EffectSizes.notes``: an r taken from ``--r``, a standard
    error from a CI), one note per distinct assumption, naming the studies."""
    if es is None or not any(getattr(es, "notes", ()) or ()):
        return []       # (any: one C pass over 10^6 blank notes)
    by_text: dict[str, list[str]] = {}
    for i, text in enumerate(es.notes):
        if text:
            by_text.setdefault(text, []).append(kept[i].study_id)
    return [f"{text} ({', '.join(ids)})" for text, ids in by_text.items()]


_FAMILY_WORDS = {
    "counts": "event counts", "means_two": "two-group means", "means_paired": "paired means",
    "means_one": "one-group means", "rates_two": "two-group rates", "rates_one": "one-group rates",
    "correlations": "correlation", "generic": "generic effect",
}


def family_words(family) -> str:
    """A family in a few words, for reasons and headers ("two-group means")."""
    return _FAMILY_WORDS.get(family, str(family).replace("_", " "))


def exclusion_reason(row, measure) -> str | None:
    spec = registry.measure(measure)
    family = getattr(row, "family", "counts" if row.has_counts else None)
    if family is None:
        return no_counts_reason(row)
    if family != spec.family:
        return (f"{family_words(family)} row: not pooled with {measure}, a measure of "
                f"{family_words(spec.family)} ({', '.join(registry.family_columns(spec.family))})")
    if spec.family != "counts":
        return None        # blank or invalid inputs: effects.compute gives the reason
    if not row.has_counts:
        return no_counts_reason(row)
    if spec.two_arm:
        if not row.is_comparison:
            return f"single-arm row: no control arm for {measure}"
        if spec.drop00:
            if row.events_t == 0 and row.events_c == 0:
                return f"no events in either arm: no information on {measure} (dropped as metafor drop00)"
            if row.events_t == row.n_t and row.events_c == row.n_c:
                return f"events in every participant of both arms: no information on {measure} " \
                       "(dropped as metafor drop00)"
    return None


def no_counts_reason(row) -> str:
    printed = []
    pct_t, pct_c = getattr(row, "pct_t", None), getattr(row, "pct_c", None)
    # pct_* hold the percentage as printed (text), so show it verbatim.
    if pct_t and pct_c:
        printed.append(f"{_pct(pct_t)} vs {_pct(pct_c)} printed")
    elif pct_t:
        printed.append(f"{_pct(pct_t)} printed")
    note = (getattr(row, "note", None) or "").strip()
    if note:
        printed.append(note)      # whole: the table and the figure wrap it
    detail = "; ".join(printed) if printed else "no percentage or count given"
    return f"no counts in the source: {detail}"


def _pct(printed) -> str:
    text = str(printed).strip()
    return text if text.endswith("%") else f"{text}%"


def exclusion_note(excluded, n_rows) -> str:
    if not excluded:
        return f"none of the {n_rows} selected rows could be pooled"
    kinds: dict[str, int] = {}
    for e in excluded:
        kind = e.reason.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    parts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    return f"{len(excluded)} of {n_rows} selected rows left out ({parts}); listed under 'Left out'"


def nothing_to_pool_message(outcome, measure, excluded) -> str:
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


def single_study_note(study, measure, method, cc_added, cc, study_ci) -> str:
    """What the pooled row of k = 1 is: the study's Wald estimate, whatever --method says.

    With an exact or Wilson study interval (single-arm measures) the study
    row and the pooled row show different intervals for the same study: say why.
    """
    how = f"its {measure} with a Wald CI"
    if cc_added:
        how += f" ({cc:g} added to every cell for the zero cell)"
    unused = ""
    spec = registry.method(method)
    if spec.kind != "common" or not spec.inverse_variance:     # FE of one study is its estimate
        unused = f"; no {method} model was fitted to one study"
    text = f"k = 1: the pooled row is {study.study_id}'s own estimate, {how}{unused}"
    if study_ci != "wald" and not registry.measure(measure).two_arm:
        kind = "exact (Clopper-Pearson)" if study_ci == "exact" else "Wilson score"
        text += (f"; the study row shows {count_text(study.events_t)}/{count_text(study.n_t)} "
                 f"with its {kind} interval (--study-ci {study_ci}), hence the two different "
                 "intervals for one study")
    return text + "; heterogeneity cannot be estimated"


def scale_notes(measure, method, result):
    """Warnings about the scale of a fit that metafor prints silently."""
    notes = []
    spec = registry.measure(measure)
    proportion = spec.natural == "Proportion" and spec.back == "identity"
    if proportion and (result.ci_low < 0 or result.ci_high > 1):
        notes.append("the PR confidence interval runs below 0 or above 1 (a normal approximation "
                     "on the proportion scale, as metafor gives it); PLO, PFT or --method GLMM "
                     "keep intervals inside [0, 1]")
    if registry.method(method).kind == "glmm" and result.tau2 is not None and result.tau2 > 9:
        notes.append(f"tau on the logit scale is {math.sqrt(result.tau2):.1f}: the counts are close "
                     "to separation (studies at or near 0% or 100%) and the GLMM's tau² is "
                     "unstable; read the pooled estimate with care, or see `msc-meta bayes`")
    return notes


def hksj_narrower_note(result, common):
    """HKSJ can give a CI narrower than the common-effect one when the studies agree more
    than their variances predict (variance factor q < 1); metafor does not truncate q, and
    neither do we, but the reader must know (Jackson et al. 2017, Stat Med 36:3923)."""
    if not (result.hksj and common is not None):
        return []
    width = result.theta_ci_high - result.theta_ci_low
    common_width = common.theta_ci_high - common.theta_ci_low
    if not (math.isfinite(width) and math.isfinite(common_width) and width < common_width):
        return []
    return ["the HKSJ CI is narrower than the common-effect CI (the studies vary less than "
            "their variances predict); a cautious reader takes the wider of the two "
            "(Jackson et al. 2017)"]


def fragility_notes(result, method, k, hksj, pi):
    notes = []
    kind = registry.method(method).kind
    random = kind in ("random", "glmm")
    if kind == "random" and not hksj and k < 5:
        notes.append(f"with k = {k} the z-based CI is too narrow (it ignores the uncertainty "
                     "in tau²); consider --hksj")
    if random and pi == "hts" and k < 3:
        notes.append(f"prediction interval undefined for k = {k}: --pi hts needs k ≥ 3 "
                     "(t with k-2 df); --pi z gives a normal-quantile interval")
    if random and k < 10 and getattr(result, "tau2", 0) == 0 and k >= 2:
        notes.append(f"tau² estimated as 0 from k = {k} studies: this does not show that the "
                     "studies agree, only that k is too small to see how they differ")
    return notes


def engine_notes(engine, ours):
    """The estimator's own notes, minus those that repeat one of ours in other words."""
    said_pi = any(n.startswith("prediction interval undefined") for n in ours)
    said_tau0 = any(n.startswith("tau² estimated as 0") for n in ours)
    for note in engine:
        if note in ours or (said_pi and "prediction interval" in note) \
                or (said_tau0 and ("boundary 0" in note or "0 (boundary)" in note)):
            continue
        yield note


__all__ = ["StudyFacts", "assumption_notes", "engine_notes", "family_words", "exclusion_note",
           "exclusion_reason", "fragility_notes", "hksj_narrower_note", "no_counts_reason",
           "nothing_to_pool_message", "pool_notes", "scale_notes", "single_study_note",
           "study_facts", "study_facts_many"]
