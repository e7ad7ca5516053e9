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
* k = 1: the "pooled" row is the study's own estimate, with no heterogeneity;
* multi-arm trials (``multiarm=``, ``msc_meta.pooling.multiarm``):
  comparisons sharing one control arm are combined (the default
  everywhere), split or kept;
* per-study intervals of single-arm measures (``study_ci=``): ``wald`` is
  metafor's ``summary(escalc())`` (``yi -/+ z sqrt(vi)`` back-transformed);
  ``exact`` (Clopper-Pearson) and ``wilson`` are computed from the raw
  counts x/n (``msc_meta.pooling.exact.proportion_ci``), and the study's
  shown estimate is then x/n itself. They change what is shown, never what
  is pooled (``yi``, ``vi``);
* ``method="GLMM"``: the binomial-normal models of ``msc_meta.pooling.glmm``,
  exact binomial likelihood, no continuity correction: for PLO the
  random-intercept model (metafor ``rma.glmm(measure="PLO")``), for OR the
  unconditional model with fixed study effects (``rma.glmm(measure="OR",
  model="UM.FS")``). It implies OR for comparisons, PLO for single arms, and
  refuses ``--multiarm split`` (non-integer counts have no binomial
  likelihood);
* ``guidance``: one line naming the better-suited methods when k < 5 or an
  arm has no events (or only events); ``msc_meta.pooling.guidance`` offers
  only those that run on the pooled studies.

``--by`` (one pool per subgroup, and the test for subgroup differences) is
``msc_meta.pooling.subgroups``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from msc_meta import _dist as special
from msc_meta import registry
from msc_meta.data.columns import RowsView, concat, rows_column
from msc_meta.errors import UsageError
from msc_meta.pooling.fit import fit_many, single_study_result
from msc_meta.pooling.guidance import guidance_for
from msc_meta.pooling.multiarm import MultiArmUnit, apply_multiarm, shared_control_sets, source_ids
from msc_meta.pooling.notes import (exclusion_note, exclusion_reason, nothing_to_pool_message,
                                    pool_notes)
from msc_meta.pooling.options import OptionError, PoolOptions, check_measure_method
from msc_meta.pooling.results import PoolResult
from msc_meta.pooling.selection import Excluded, select_rows
from msc_meta.pooling.study_lines import StudyLines

# ``study_ci=None`` (what ``pool`` passes by default) means exact intervals for
# proportions: Clopper-Pearson keeps its coverage at 0/n, n/n and n = 4, and is
# R meta's metaprop() default. The library default stays "wald" (metafor's
# study interval).
CLI_DEFAULT_STUDY_CI = "exact"


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
    weight: float | None      # percent of the main fit; None if not pooled; NaN for GLMM
    cc_added: bool
    # Multi-arm trials: "combine" (this line sums the treatment arms of
    # ``members``) or "split" (this line's control is the shared control
    # divided among ``members``); None for an ordinary row.
    multiarm: str | None = None
    members: tuple[str, ...] = ()
    member_rows: tuple[int, ...] = ()
    control_share: float | None = None   # fraction of the shared control in this line
    # The row's outcome type (registry.FAMILIES) and its input columns as the table gives
    # them (column -> value), e.g. mean_t, sd_t, n_t, ... for two-group means.
    family: str = "counts"
    inputs: tuple = ()
    # The values its effect size read, after the conversions: (column, value, kind) with
    # kind a conversions.CONVERSION_KINDS key, or None where the table gave the value
    # (EffectSizes.used); () for counts.
    used: tuple = ()


@dataclass(frozen=True)
class Analysis:
    """One pool of one outcome (or of one ``--by`` subgroup of it).

    ``options`` are the options it was pooled with, the measure and the
    study interval resolved (``PoolOptions``); ``measure`` is that measure.
    """

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
    options: PoolOptions = field(default_factory=PoolOptions)
    by: str | None = None
    guidance: str | None = None       # one line: a better-suited method, or None
    suggestions: tuple = ()           # guidance.Suggestion: what the guidance offers (each runs)
    # Where a study took the assumed r (--r): the pooled estimate at each r of
    # conversions.R_SENSITIVITY, as RSensitivity; None when no study took it.
    r_sensitivity: tuple | None = None

    @property
    def k(self) -> int:
        return 0 if self.result is None else self.result.k

    method = property(lambda self: self.options.method)
    level = property(lambda self: self.options.level)
    hksj = property(lambda self: self.options.hksj)
    pi = property(lambda self: self.options.pi)
    cc = property(lambda self: self.options.cc)
    multiarm = property(lambda self: self.options.multiarm)
    study_ci = property(lambda self: self.options.study_ci or "wald")


@dataclass(frozen=True)
class RSensitivity:
    """The pool with ``r`` in place of the assumed r (``--r``): its natural-scale estimate and CI."""

    r: float
    estimate: float
    ci_low: float
    ci_high: float


# ---------------------------------------------------------------- public API

def run_pool(table, *, outcome, timepoint=None, unit=None, options: PoolOptions | None = None,
             **values) -> Analysis:
    """Pool one outcome of ``table``; see the module docstring for the rules.

    ``options`` is a :class:`PoolOptions` (or give its fields as keywords:
    ``measure=``, ``method=``, ``hksj=``, ``pi=``, ``cc=``, ``level=``,
    ``multiarm=``, ``study_ci=``). Raises ``UsageError`` for options that
    cannot work together or when no study is left to pool.
    """
    spec, options = _plan(table, outcome, timepoint, unit, options_of(options, values))
    analysis = pool_groups([spec], options)[0]
    if analysis.result is None:
        raise UsageError(nothing_to_pool_message(outcome, options.measure, analysis.excluded))
    return analysis


def run_pool_all(table, keys, options: PoolOptions) -> list:
    """``run_pool`` for every ``(outcome, timepoint, unit)`` of ``keys``, fitted together.

    Analyses that share a measure are fitted in one vectorised pass (as
    ``pool --by``); each equals its own ``run_pool``. Returns, per key, the
    :class:`Analysis` or the ``UsageError`` that ``run_pool`` would raise.
    """
    from msc_meta.progress import many_objects

    with many_objects():
        return _pool_all(table, keys, options)


def _pool_all(table, keys, options) -> list:
    out: list = [None] * len(keys)
    plans: dict[str, list] = {}
    for i, planned in enumerate(_plans(table, keys, options)):
        if isinstance(planned, UsageError):
            out[i] = planned
            continue
        spec, resolved = planned
        plans.setdefault(resolved.measure, []).append((i, spec, resolved))
    for planned in plans.values():
        # the options of one measure are the same object for all: fit them as one batch
        analyses = pool_groups([spec for _, spec, _ in planned], planned[0][2])
        for (i, _, resolved), analysis in zip(planned, analyses):
            out[i] = analysis if analysis.result is not None else UsageError(
                nothing_to_pool_message(keys[i][0], resolved.measure, analysis.excluded))
    return out


def _plan(table, outcome, timepoint, unit, options):
    """Select, resolve the options and handle shared controls: one group to pool."""
    chosen = select_rows(table, outcome, timepoint, unit)
    rows = listed_rows(chosen.rows)
    return _planned(chosen, rows, resolve_options(rows, options))


def _planned(chosen, rows, options):
    """The group to pool of a selection whose options are resolved (shared controls handled)."""
    units, multiarm_notes = apply_multiarm(rows, options.measure, options.multiarm)
    spec = dict(rows=units, outcome=chosen.outcome, timepoint=chosen.timepoint, unit=chosen.unit,
                group=None, by=None, multiarm_notes=[text for text, _ in multiarm_notes],
                pre_excluded=list(chosen.overlapping))
    return spec, options


def _plans(table, keys, options) -> list:
    """``_plan`` of every key (``run_pool_all``), or the UsageError it raises; the options of
    all selections resolved together (``batch.resolve_many``)."""
    from msc_meta.pooling.batch import resolve_many

    chosen: list = []
    for outcome, timepoint, unit in keys:
        try:
            chosen.append(select_rows(table, outcome, timepoint, unit))
        except UsageError as err:
            chosen.append(err)
    selected = [c for c in chosen if not isinstance(c, UsageError)]
    rows = [listed_rows(c.rows) for c in selected]
    resolved = iter(zip(selected, rows, resolve_many(rows, options)))
    out = []
    for c in chosen:
        if isinstance(c, UsageError):
            out.append(c)
            continue
        c, view, opts = next(resolved)
        try:
            out.append(opts if isinstance(opts, UsageError) else _planned(c, view, opts))
        except UsageError as err:
            out.append(err)
    return out


def listed_rows(rows):
    """The selected rows as a list, or the view on the table's columns as it is."""
    return rows if isinstance(rows, RowsView) else list(rows)


def options_of(options, values) -> PoolOptions:
    """``options`` itself, or a :class:`PoolOptions` built from keyword values (not both)."""
    if options is None:
        return PoolOptions.build(**values)
    if values:
        raise UsageError(f"give options= or the option keywords ({', '.join(values)}), not both")
    return options


def resolve_options(rows, options: PoolOptions) -> PoolOptions:
    """The options with the measure the rows decide and the study interval it implies."""
    from dataclasses import replace

    options = options.with_measure(resolve_measure(rows, options))
    return replace(options, study_ci=resolve_study_ci(options.measure, options.study_ci))


# ---------------------------------------------------------------- the measure

def resolve_measure(rows, options: PoolOptions) -> str:
    """The measure asked for, or the default the rows and the method imply.

    No measure given: the selected rows' outcome type (``Row.family``)
    decides. A selection mixing types is refused (``pool`` pools one
    measure: choose it). Counts: the method's own (Peto: OR; GLMM: OR for
    comparisons, PLO for single arms; MH: RR), else RR when the selected
    rows with counts include a comparison and PLO when not; other types:
    ``registry.default_measure(..., family)`` (MD, MC, MN, IRR, IR, ZCOR,
    GEN). It is chosen once for the whole selection, so that ``--by``
    subgroups share one scale. MH, Peto and the GLMM pool event counts only.
    """
    families = _families(rows)
    measure = options.measure
    if measure is None:
        if len(families) > 1:
            listed = "; ".join(
                f"{family} (rows {', '.join(str(r.row_number) for r in who[:3])}"
                f"{' ...' if len(who) > 3 else ''})" for family, who in families.items())
            choices = " or ".join(f"{{measure:{registry.default_measure(True, f)}}}"
                                  for f in families)
            raise OptionError(f"the selected rows hold different outcome types: {listed}; "
                              f"pool pools one measure: choose {choices} (rows of the other "
                              "types are then listed as left out)")
        family = next(iter(families), "counts")
        if family != "counts":
            if not registry.method(options.method).inverse_variance:
                raise OptionError(f"{{method:{options.method}}} pools event counts only; the selected "
                                  f"rows hold {registry.FAMILIES[family]} (family {family}): use "
                                  "{method:FE} or a random-effects method such as REML")
            two = family.endswith("_two")
            return registry.default_measure(two, family)
    counted, any_comparison = _counted(rows)
    if measure is None:
        arms = 2 if any_comparison else 1
        measure = registry.method(options.method).default_measure.get(arms) \
            or registry.default_measure(any_comparison)
        check_measure_method(measure, options.method)
    spec = registry.measure(measure)
    if spec.family == "counts" and spec.two_arm and counted and not any_comparison:
        first = registry.default_measure(False)
        others = [m for m in registry.measures(arms=1, family="counts") if m != first]
        rest = (", ".join(others[:-1]) + " or " + others[-1]) if len(others) > 1 else "".join(others)
        raise OptionError(f"{{measure:{measure}}} compares two arms, but every selected row with "
                          f"counts is single-arm; use {{measure:{first}}}{', ' + rest if rest else ''}")
    return measure


def _counted(rows) -> tuple[bool, bool]:
    """(any selected row with counts, any of them a comparison), rows of other types aside."""
    if isinstance(rows, RowsView):
        counts = rows.present("events_t") & rows.present("n_t") & rows.family_mask("counts", None)
        comparison = counts & rows.present("events_c") & rows.present("n_c")
        return bool(counts.any()), bool(comparison.any())
    counted = [r for r in rows if r.has_counts and _family(r) in ("counts", None)]
    return bool(counted), any(r.is_comparison for r in counted)


def _family(row):
    """A row's outcome type; rows built elsewhere (tests, multi-arm units) without one hold counts."""
    family = getattr(row, "family", None)
    if family is None and not hasattr(row, "family"):
        return "counts" if row.has_counts else None
    return family


def _families(rows) -> dict:
    """Outcome type -> the selected rows holding it (rows without data left aside)."""
    out: dict = {}
    if isinstance(rows, RowsView):
        if len(rows) and rows.family_mask("counts").all():     # counts in every row: the view
            return {"counts": rows}
        families = rows.families()
        kinds = dict.fromkeys(families)
        if len(kinds) == 1 and None not in kinds:      # one type in every row: the view itself
            return {next(iter(kinds)): rows}
        for family in kinds:
            if family is not None:
                out[family] = rows.take([i for i, f in enumerate(families) if f == family])
        return out
    for row in rows:
        family = _family(row)
        if family is not None:
            out.setdefault(family, []).append(row)
    return out


def resolve_study_ci(measure, study_ci) -> str:
    """None means the ``pool`` command's default: exact for proportions, Wald for comparisons."""
    if registry.measure(measure).two_arm or registry.measure(measure).family != "counts":
        if study_ci not in (None, "wald"):
            single = ", ".join(registry.measures(arms=1))
            raise OptionError(f"{{study_ci:{study_ci}}} applies to single-arm proportions ({single}); "
                              f"the study intervals of {measure} are Wald intervals as metafor's")
        return "wald"
    return study_ci or CLI_DEFAULT_STUDY_CI


# ---------------------------------------------------------------- one pool

@dataclass
class PreparedStudies:
    """The studies of one pool after every exclusion rule, with their effect sizes."""

    kept: list                     # rows (or multi-arm units) to pool
    es: object                     # EffectSizes of ``kept`` (None when nothing is left)
    excluded: list                 # Excluded, in the order the rules met them
    n_rows: int                    # table rows the selection stood for
    arms_only: int                 # two-arm rows pooled by their treatment arm only

    @property
    def yi(self):
        return np.asarray(self.es.yi, dtype=float)

    @property
    def vi(self):
        return np.asarray(self.es.vi, dtype=float)

    @property
    def ni(self):
        return np.asarray(self.es.ni, dtype=float)


def prepare_studies(rows, measure, method, cc, pre_excluded=(), *, r=None,
                    scale=None) -> PreparedStudies:
    """Apply the exclusion rules of the module docstring and compute the effect sizes.

    Shared by ``run_pool`` and the batch engine (``pooling.batch``), so that
    both leave out exactly the same studies for the same reasons.
    ``pre_excluded`` holds ``(Excluded, row)`` pairs already left out (e.g.
    by ``selection.drop_overlaps``).
    """
    return prepare_many([(rows, pre_excluded)], measure, method, cc, r=r, scale=scale)[0]


def prepare_many(groups, measure, method, cc, *, r=None, scale=None) -> list[PreparedStudies]:
    """:func:`prepare_studies` for many ``(rows, pre_excluded)`` groups, with one escalc call.

    escalc works study by study, so computing every group's effect sizes in
    one call and splitting them gives each group what it would get alone.
    """
    views = [rows for rows, _ in groups]
    if len(views) > 1 and concat(views) is not None:
        plans = _kept_views(views, measure, [[e for e, _ in pre] for _, pre in groups])
    else:
        plans = [_kept_rows(rows, measure, pre) for rows, pre in groups]
    every = concat(kept for kept, *_ in plans)
    if every is None:
        every = [row for kept, *_ in plans for row in kept]
    es_all = _effect_sizes(measure, every, cc, r=r, scale=scale) if every else None
    # escalc refused no study: _usable has nothing to leave out of a group of k >= 2
    usable = es_all is not None and bool(np.all(es_all.keep))
    out, start = [], 0
    for kept, excluded, n_rows, arms_only in plans:
        es = es_all.take(slice(start, start + len(kept))) if kept else None
        start += len(kept)
        if usable and len(kept) > 1:
            out.append(PreparedStudies(kept, es, excluded, n_rows, arms_only))
        else:
            out.append(_usable(kept, es, excluded, n_rows, arms_only, measure, method, cc))
    return out


def _kept_rows(rows, measure, pre_excluded):
    """The rows the exclusion rules keep, those they leave out (with why), and counts for the notes."""
    two_arm = registry.measure(measure).two_arm
    excluded: list[Excluded] = [e for e, _ in pre_excluded]
    if isinstance(rows, RowsView):
        return _kept_view(rows, measure, excluded)
    # A combined comparison stands for several table rows: count those.
    n_rows = sum(getattr(r, "source_rows", 1) for r in rows) + len(excluded)
    kept, arms_only = [], 0
    for row in rows:
        reason = exclusion_reason(row, measure)
        if reason is not None:
            excluded.append(Excluded(row.study_id, row.row_number, reason))
            continue
        if not two_arm and row.is_comparison and registry.measure(measure).family == "counts":
            arms_only += 1
        kept.append(row)
    return kept, excluded, n_rows, arms_only


def _kept_view(rows, measure, excluded):
    """``_kept_rows`` on a view: ``exclusion_reason``'s rules as masks, its text for the rows left out."""
    return _kept_views([rows], measure, [excluded])[0]


def _kept_views(views, measure, excluded):
    """``_kept_view`` of many views of one table at once (``--by``, ``export --all``): the masks
    computed on all their rows together, then split."""
    spec = registry.measure(measure)
    rows = views[0] if len(views) == 1 else concat(views)
    counts = rows.family_mask("counts")
    leave = ~(counts if spec.family == "counts" else rows.family_mask(spec.family))
    comparison = rows.present("events_c") & rows.present("n_c")
    if spec.family == "counts" and spec.two_arm:
        leave |= counts & ~comparison
        if spec.drop00:
            a, n1 = rows.column("events_t"), rows.column("n_t")
            c, n2 = rows.column("events_c"), rows.column("n_c")
            leave |= counts & comparison & (((a == 0) & (c == 0)) | ((a == n1) & (c == n2)))
    bounds = np.cumsum([0] + [len(v) for v in views])
    for i in np.flatnonzero(leave).tolist():
        row = rows[i]
        g = int(np.searchsorted(bounds, i, side="right")) - 1
        excluded[g].append(Excluded(row.study_id, row.row_number, exclusion_reason(row, measure)))
    keep = ~leave
    arms = keep & comparison if not spec.two_arm and spec.family == "counts" else None
    # per view: rows left out, single-arm rows of two-arm rows (counted for all views at once)
    n_left = np.diff(np.concatenate([[0], np.cumsum(leave)])[bounds]).tolist()
    n_arms = [0] * len(views) if arms is None else \
        np.diff(np.concatenate([[0], np.cumsum(arms)])[bounds]).tolist()
    plans = []
    for g, view in enumerate(views):
        lo, hi = int(bounds[g]), int(bounds[g + 1])
        kept = RowsView(view.data, rows.index[lo:hi][keep[lo:hi]])
        plans.append((kept, excluded[g], len(view) + len(excluded[g]) - n_left[g], n_arms[g]))
    return plans


def _usable(kept, es, excluded, n_rows, arms_only, measure, method, cc) -> PreparedStudies:
    """Leave out the studies escalc itself refuses (for inverse-variance methods)."""
    if not kept:
        return PreparedStudies([], None, excluded, n_rows, arms_only)
    # escalc may itself refuse a study (e.g. a zero cell under --cc 0). MH and
    # Peto pool the raw tables, so such a study still counts there (as
    # rma.mh(add=0)); it only lacks its own estimate in the table. So does
    # the GLMM, which needs no continuity correction at all.
    keep = np.asarray(es.keep, dtype=bool)
    if not registry.method(method).inverse_variance:
        keep = np.ones(len(kept), dtype=bool)
    if not keep.all():
        for i in np.flatnonzero(~keep):
            why = es.reasons[i] or f"{measure} not estimable for this study"
            excluded.append(Excluded(kept[i].study_id, kept[i].row_number, why))
        kept = kept.take(np.flatnonzero(keep)) if isinstance(kept, RowsView) \
            else [r for r, k in zip(kept, keep) if k]
        if not kept:
            return PreparedStudies([], None, excluded, n_rows, arms_only)
        es = es.take(np.flatnonzero(keep))
    if len(kept) == 1 and not (math.isfinite(es.yi[0]) and math.isfinite(es.vi[0]) and es.vi[0] > 0):
        # Only MH/PETO/GLMM keep such a study (cc = 0, zero cell); alone it has no estimate.
        excluded.append(Excluded(kept[0].study_id, kept[0].row_number,
                                 f"zero cell and no continuity correction (--cc {cc:g}): "
                                 f"{measure} not estimable from this study alone"))
        return PreparedStudies([], None, excluded, n_rows, arms_only)
    return PreparedStudies(kept, es, excluded, n_rows, arms_only)


def pool_groups(specs, options) -> list[Analysis]:
    """Pool each group of ``specs`` (rows, labels, notes); the fits of all groups in one pass."""
    from msc_meta.progress import many_objects

    with many_objects():
        return _pool_all_groups(specs, options)


def _pool_all_groups(specs, options) -> list[Analysis]:
    measure = options.measure
    prepared = prepare_many([(spec["rows"], spec["pre_excluded"]) for spec in specs], measure,
                            options.method, options.cc, r=options.r, scale=options.scale)
    fits = _fit_prepared(measure, options, prepared)
    analyses = None
    if len(specs) > 1:      # --by, export --all: what each group needs found for all at once
        from msc_meta.pooling.batch import many_analyses

        analyses = many_analyses(specs, prepared, fits, options)
    if analyses is None:
        analyses = _analyses_of(specs, prepared, fits, options)
    return _with_r_sensitivity(specs, prepared, analyses, options)


def _analyses_of(specs, prepared, fits, options) -> list[Analysis]:
    """:func:`analysis_of` of each group, one by one."""
    from msc_meta.progress import progress

    # labels, notes and guidance are per group: a bar on a terminal for a long --by or --all
    with progress(len(specs), "pooling groups", min_steps=500) as advance:
        analyses = []
        for spec, prep, fit in zip(specs, prepared, fits):
            analyses.append(analysis_of(spec, prep, fit, options))
            advance()
    return analyses


def _assumed_r(prep) -> bool:
    """Did a study of this group take the assumed r (``--r``) in place of its own?"""
    from msc_meta.effects import ASSUMED_R_MARK

    # the distinct notes only: 10^6 studies share a handful of texts (or have none)
    return prep.es is not None and any(prep.es.notes) and any(
        text and ASSUMED_R_MARK in text for text in set(prep.es.notes))


def _with_r_sensitivity(specs, prepared, analyses, options):
    """Where a pool rests on the assumed r, a note with the pooled estimate and CI at
    r = 0.2, 0.5 and 0.8 (``conversions.R_SENSITIVITY``) in place of the assumed one."""
    from dataclasses import replace

    if options.r is None:
        return analyses
    which = [i for i, (prep, a) in enumerate(zip(prepared, analyses))
             if a.result is not None and _assumed_r(prep)]
    if not which:
        return analyses
    from msc_meta.conversions import R_SENSITIVITY

    lines = {i: [] for i in which}
    for alt in R_SENSITIVITY:
        alt_options = replace(options, r=alt)
        alt_prep = prepare_many([(specs[i]["rows"], specs[i]["pre_excluded"]) for i in which],
                                options.measure, options.method, options.cc, r=alt,
                                scale=options.scale)
        for i, fit in zip(which, _fit_prepared(options.measure, alt_options, alt_prep)):
            if fit is not None:
                res = fit[0]
                lines[i].append(RSensitivity(alt, float(res.estimate), float(res.ci_low),
                                             float(res.ci_high)))
    out = list(analyses)
    for i in which:
        said = "; ".join(f"r = {s.r:g}: {s.estimate:.4g} [{s.ci_low:.4g}, {s.ci_high:.4g}]"
                         for s in lines[i])
        note = (f"sensitivity to the assumed r (--r {options.r:g}) of the studies that report none: "
                f"pooled {options.measure} with its {options.level:g}% CI at " + said)
        out[i] = replace(analyses[i], notes=analyses[i].notes + (note,),
                         r_sensitivity=tuple(lines[i]))
    return out


def _fit_prepared(measure, options, prepared):
    """(result, common) for each prepared group: None when nothing is left, k = 1 on its own."""
    fits = [None] * len(prepared)
    many = []
    for i, prep in enumerate(prepared):
        if len(prep.kept) == 1:
            fits[i] = (single_study_result(measure, options.method, prep.yi[0], prep.vi[0],
                                           prep.ni, options.level, options.scale), None)
        elif prep.kept:
            many.append(i)
    groups = [(prepared[i].kept, prepared[i].yi, prepared[i].vi, prepared[i].ni) for i in many]
    for i, fit in zip(many, fit_many(measure, options, groups)):
        fits[i] = fit
    return fits


_FIND = object()        # analysis_of: guidance not given, find it


def analysis_of(spec, prep, fit, options, *, place=None, studies=None, facts=None,
                advice=_FIND) -> Analysis:
    """The :class:`Analysis` of one group: its ``spec`` (rows, labels, notes), its prepared
    studies and its fit (None when nothing was pooled).

    ``place`` (time point, unit), ``studies``, ``facts`` (the notes' ``StudyFacts``) and
    ``advice`` (a Guidance or None): this group's, when the caller found them for many
    groups at once (``batch.many_analyses``); else they are found here.
    """
    rows, measure, multiarm_notes = spec["rows"], options.measure, spec["multiarm_notes"]
    excluded, kept, es, n_rows = prep.excluded, prep.kept, prep.es, prep.n_rows
    if place is None:
        place = (_common_of(rows, "timepoint_weeks", spec["timepoint"]),
                 _common_of(rows, "unit", spec["unit"]))
    base = dict(outcome=spec["outcome"], group=spec["group"], measure=measure, options=options,
                by=spec["by"], timepoint_weeks=place[0], unit=place[1])
    if fit is None:
        notes = [exclusion_note(excluded, n_rows), *multiarm_notes]
        return Analysis(result=None, common=None, studies=(), excluded=tuple(excluded),
                        notes=tuple(notes), **base)
    result, common = fit
    cc_added = cc_flags(es, len(kept))
    if studies is None:
        studies = _study_lines(kept, es, result, options, cc_added)
    notes = pool_notes(measure=measure, options=options, kept=kept, yi=prep.yi,
                       cc_added=cc_added, result=result, common=common, excluded=excluded,
                       n_rows=n_rows, multiarm_notes=multiarm_notes, arms_only=prep.arms_only,
                       es=es, facts=facts)
    if advice is _FIND:
        advice = guidance_for(measure, options.method, options.hksj, kept, options.cc,
                              options.multiarm)
    return Analysis(result=result, common=common, studies=studies, excluded=tuple(excluded),
                    notes=tuple(notes), guidance=None if advice is None else advice.text(),
                    suggestions=() if advice is None else advice.suggestions, **base)


def _study_lines(kept, es, result, options, cc_added) -> tuple[StudyLine, ...]:
    spec = registry.measure(es.measure)
    two_arm = spec.two_arm
    columns = registry.family_columns(spec.family)
    yi, vi = np.asarray(es.yi, dtype=float), np.asarray(es.vi, dtype=float)
    estimate, low, high = study_intervals(es, kept, options.study_ci, options.level)
    if isinstance(kept, RowsView) and spec.family == "counts":
        # fromiter: half the time of np.asarray on a tuple of 10^6 floats, the same numbers
        weights = np.fromiter(result.weights, dtype=float, count=len(result.weights))
        return StudyLines(kept, two_arm, yi, vi, estimate, low, high, weights, cc_added)
    weights = list(result.weights) if result.weights else [None] * len(kept)
    return tuple(
        StudyLine(study_id=r.study_id, row_number=r.row_number, events_t=r.events_t, n_t=r.n_t,
                  events_c=r.events_c if two_arm else None, n_c=r.n_c if two_arm else None,
                  yi=float(yi[i]), vi=float(vi[i]), estimate=float(estimate[i]),
                  ci_low=float(low[i]), ci_high=float(high[i]),
                  weight=None if weights[i] is None else float(weights[i]),
                  cc_added=bool(cc_added[i]),
                  multiarm=r.multiarm if isinstance(r, MultiArmUnit) else None,
                  members=r.members if isinstance(r, MultiArmUnit) else (),
                  member_rows=r.member_rows if isinstance(r, MultiArmUnit) else (),
                  control_share=r.control_share if isinstance(r, MultiArmUnit) else None,
                  family=spec.family,
                  inputs=() if spec.family == "counts" else _inputs(r, columns, es.notes, i),
                  used=es.used[i] if es.used else ())
        for i, r in enumerate(kept))


def _inputs(row, columns, notes, i) -> tuple:
    """A study's input columns, then the spreads given another way that it fills
    (``schema.SPREAD_COLUMNS``), then ``conversion``: what its values assumed or were
    converted from (``EffectSizes.notes``), when anything was."""
    from msc_meta.data.schema import SPREAD_COLUMNS

    out = [(c, getattr(row, c, None)) for c in columns]
    out += [(c, getattr(row, c)) for c in SPREAD_COLUMNS if getattr(row, c, None) is not None]
    if notes and notes[i]:
        out.append(("conversion", notes[i]))
    return tuple(out)


def _effect_sizes(measure, rows, cc, *, r=None, scale=None):
    """Effect sizes from the columns the measure reads (registry: ``Measure.inputs``).

    Counts: ``escalc``; other outcome types: ``effects.compute`` with the
    assumed ``r`` (``--r``, for rows without one) and the scale of generic
    effects (``--scale``).
    """
    from msc_meta import effects

    spec = registry.measure(measure)
    if spec.family == "counts":
        columns = [rows_column(rows, name) for name in spec.inputs]
        return effects.escalc(measure, *columns, cc=cc)
    names = dict.fromkeys(spec.inputs + ("n_t", "n_c"))
    # a copy (np.array): fill_spreads fills blanks in place, never in the table's own columns
    columns = {name: np.array(rows_column(rows, name), dtype=float) for name in names}
    filled = _fill_spreads(spec.family, columns, rows)
    used = _used(spec, columns, filled, r)      # before compute(), which may correct cells
    es = effects.compute(measure, columns, cc=cc, r=r if "r" in spec.inputs else None,
                         scale=scale if spec.scales else None)
    return replace(_add_notes(es, filled.notes), used=used)


def _used(spec, columns, filled, r) -> tuple:
    """Per study, the (column, value, kind) its effect size reads: the measure's inputs after
    the conversions (kind: ``conversions.CONVERSION_KINDS``, None where the table gave the
    value), the assumed r (``--r``) where the row has none, and a derived SD of the change."""
    names = [n for n in spec.inputs if n in columns]
    kinds = filled.kinds
    values = {n: columns[n] for n in names}
    if "r" in values and r is not None:
        blank = np.isnan(values["r"])
        if blank.any():
            values["r"] = np.where(blank, r, values["r"])
            own = kinds.get("r", [None] * len(blank))
            kinds = {**kinds, "r": ["assumed_r" if b else x for b, x in zip(blank, own)]}
    k = len(filled.notes)
    value_of = [np.asarray(values[n], dtype=float).tolist() for n in names]
    kind_of = [kinds[n] if n in kinds else [None] * k for n in names]
    out = [tuple(zip(names, v, w)) for v, w in zip(zip(*value_of), zip(*kind_of))]
    for i in np.flatnonzero(~np.isnan(filled.sd_change)):
        out[i] += (("sd_change", float(filled.sd_change[i]), kinds["sd_change"][i]),)
    return tuple(out)


def _fill_spreads(family, columns, rows):
    """Blank SDs (and means) from a spread given another way, in place, before compute():
    ``conversions.fill_spreads`` (SEM, CI of a mean, median with IQR/range, paired t or p);
    returns its ``Filled``: a note per study naming the conversion, the kind of each
    filled value."""
    from msc_meta.conversions import fill_spreads

    def column(name):
        return np.array(rows_column(rows, name), dtype=float)

    return fill_spreads(family, columns, column)


def _add_notes(es, extra):
    """EffectSizes with the conversion notes added to its own per-study notes."""
    from dataclasses import replace

    if not any(extra):
        return es
    own = list(es.notes) if es.notes else [None] * es.k
    merged = tuple(a if b is None else (b if a is None else f"{a}; {b}") for a, b in zip(own, extra))
    # a study left out says what its conversion did (or why there was none)
    reasons = tuple(a if a is None or b is None else f"{a} ({b})" for a, b in zip(es.reasons, extra))
    return replace(es, notes=merged, reasons=reasons)


def cc_flags(es, k):
    """Which of the ``k`` studies had the continuity correction added."""
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


def study_intervals(es, rows, method, level):
    """Each study's estimate and CI on the natural scale, as ``study_ci`` asks.

    ``wald``: metafor ``summary(escalc())`` (each study on its own n, which
    matters for PFT). ``exact``/``wilson`` (single-arm measures): the raw
    proportion x/n with its Clopper-Pearson or Wilson interval, which keep
    their coverage at 0/n and n/n and in studies of a handful of patients.
    """
    spec = registry.measure(es.measure)
    if method == "wald" or spec.two_arm or spec.family != "counts":
        from msc_meta.effects import study_estimate

        low, high = _study_ci(es, level)
        return np.asarray(study_estimate(es), dtype=float), low, high
    from msc_meta.pooling.exact import proportion_ci

    x = rows_column(rows, "events_t")
    n = rows_column(rows, "n_t")
    ci = proportion_ci(x, n, method=method, level=level)
    return (np.asarray(ci.estimate, dtype=float), np.asarray(ci.ci_low, dtype=float),
            np.asarray(ci.ci_high, dtype=float))


def column_values(rows, name) -> list:
    """A column of ``rows`` as the rows hold it (None where blank)."""
    if isinstance(rows, RowsView):
        col = rows.column(name)
        if isinstance(col, np.ndarray):
            return [None if v != v else v for v in col.tolist()]
        return col
    return [getattr(r, name) for r in rows]


def _common_of(rows, name, given):
    """:func:`common_value` of column ``name`` of ``rows``; on a view, from its column as it is
    (no list of a million cells: the distinct filled values of an array, or the set of texts)."""
    if given is not None and given not in ("blank", "any"):
        return given
    if not isinstance(rows, RowsView):
        return common_value(column_values(rows, name), given)
    col = rows.column(name)
    if isinstance(col, np.ndarray):
        found = col[~np.isnan(col)]
        return float(found[0]) if found.size and bool((found == found[0]).all()) else None
    distinct = set(col) - {None, ""}
    return distinct.pop() if len(distinct) == 1 else None


def common_value(values, given):
    if given is not None and given not in ("blank", "any"):
        return given
    distinct = {v for v in values if v is not None and v != ""}
    return distinct.pop() if len(distinct) == 1 else None


__all__ = ["Analysis", "Excluded", "MultiArmUnit", "RSensitivity", "StudyLine", "apply_multiarm",
           "prepare_many", "prepare_studies", "resolve_measure", "resolve_options", "run_pool",
           "run_pool_all", "shared_control_sets"]
