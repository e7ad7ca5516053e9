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
* multi-arm trials (``multiarm=``): comparisons of one ``trial`` with
  identical control counts share one control arm (e.g. three dose cohorts
  against one placebo group). ``combine`` sums their treatment arms into one
  comparison, ``split`` divides the control's events and n evenly among them
  (non-integer counts), ``keep`` pools them as they are (the control then
  counts several times; a note says so). Cochrane Handbook (Higgins et al.
  2023) section 23.3.4. Only two-arm measures are affected: single-arm
  measures ignore control arms anyway. The ``pool`` command defaults to
  ``combine``; the library default ``keep`` preserves what callers written
  before ``multiarm`` existed get;
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
from msc_meta import _dist as special

from msc_meta.errors import UsageError
from msc_meta.pooling.guidance import guidance_for
from msc_meta.pooling.results import PoolResult
from msc_meta.pooling.selection import Excluded, select_rows

SINGLE_ARM_MEASURES = ("PR", "PLO", "PFT", "PAS")
TWO_ARM_MEASURES = ("RR", "OR", "RD")
MEASURES = SINGLE_ARM_MEASURES + TWO_ARM_MEASURES
COMMON_METHODS = ("FE", "MH", "PETO")
RANDOM_METHODS = ("DL", "REML", "ML", "PM", "HE", "SJ", "HS", "EB")
GLMM_METHODS = ("GLMM",)
GLMM_MEASURES = ("PLO", "OR")
METHODS = COMMON_METHODS + RANDOM_METHODS + GLMM_METHODS
MULTIARM_MODES = ("combine", "split", "keep")
STUDY_CI_METHODS = ("exact", "wilson", "wald")
# ``study_ci=None`` (what ``pool`` passes by default) means exact intervals for
# proportions: Clopper-Pearson keeps its coverage at 0/n, n/n and n = 4, and is
# R meta's metaprop() default. The library default stays "wald" (metafor's
# study interval). Shared control arms are combined by default everywhere
# (library, pool_many and every command but regress, which keeps the dose
# cohorts apart on purpose), so a pool_many row equals what `pool` prints.
CLI_DEFAULT_STUDY_CI = "exact"
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
    weight: float | None      # percent of the main fit; None if not pooled; NaN for GLMM
    cc_added: bool
    # Multi-arm trials: "combine" (this line sums the treatment arms of
    # ``members``) or "split" (this line's control is the shared control
    # divided among ``members``); None for an ordinary row.
    multiarm: str | None = None
    members: tuple[str, ...] = ()
    member_rows: tuple[int, ...] = ()
    control_share: float | None = None   # fraction of the shared control in this line


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
    multiarm: str = "keep"            # combine | split | keep (as requested)
    study_ci: str = "wald"            # how the study CIs were computed
    guidance: str | None = None       # one line: a better-suited method, or None
    suggestions: tuple = ()           # guidance.Suggestion: what the guidance offers (each runs)

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
             method="REML", hksj=False, pi="hts", cc=0.5, level=95.0,
             multiarm="combine", study_ci="wald") -> Analysis:
    """Pool one outcome of ``table``; see the module docstring for the rules.

    ``multiarm`` (combine | split | keep) says how comparisons sharing one
    control arm are pooled; ``study_ci`` (exact | wilson | wald) how the
    per-study intervals of single-arm measures are computed. Raises
    ``UsageError`` for options that cannot work together or when no study
    is left to pool.
    """
    measure, method, pi, multiarm, study_ci = _check_options(measure, method, hksj, pi,
                                                             multiarm, study_ci)
    chosen = select_rows(table, outcome, timepoint, unit)
    rows, overlapping = list(chosen.rows), list(chosen.overlapping)
    measure = _resolve_measure(rows, measure, method)
    study_ci = _resolve_study_ci(measure, study_ci)
    units, multiarm_notes = apply_multiarm(rows, measure, multiarm)
    analysis = _pool_rows(units, outcome=outcome, timepoint=timepoint, unit=unit,
                          group=None, measure=measure, method=method, hksj=hksj,
                          pi=pi, cc=cc, level=level, multiarm=multiarm, study_ci=study_ci,
                          multiarm_notes=[text for text, _ in multiarm_notes],
                          pre_excluded=overlapping)
    if analysis.result is None:
        raise UsageError(_nothing_to_pool_message(outcome, measure, analysis.excluded))
    return analysis


def run_pool_by(table, by, *, outcome, timepoint=None, unit=None, measure=None,
                method="REML", hksj=False, pi="hts", cc=0.5, level=95.0,
                multiarm="combine", study_ci="wald") -> tuple[list[Analysis], SubgroupTest | None]:
    """One :class:`Analysis` per value of column ``by``, and the subgroup test.

    Blank values form their own group, ``(blank)``. A subgroup with nothing
    to pool is kept (with its exclusions) but left out of the test. The test
    is ``None`` when fewer than two subgroups have a pooled estimate.

    Shared control arms are found over the whole selection, so that the
    control also counts once in the subgroup test: under ``combine`` the
    members in one subgroup are combined, and a control shared by G
    subgroups is divided evenly among them; under ``split`` it is divided
    among all its comparisons, wherever they fall.
    """
    measure, method, pi, multiarm, study_ci = _check_options(measure, method, hksj, pi,
                                                             multiarm, study_ci)
    chosen = select_rows(table, outcome, timepoint, unit)
    rows, overlapping = list(chosen.rows), list(chosen.overlapping)
    measure = _resolve_measure(rows, measure, method)
    study_ci = _resolve_study_ci(measure, study_ci)

    # A column the file lacks would put every row in "(blank)": refuse it.
    table.require_column(by)
    units, multiarm_notes = apply_multiarm(rows, measure, multiarm,
                                           group_of=lambda r: _group_label(r.value(by)))
    groups: dict[str, list] = {}
    for unit_row in units:
        groups.setdefault(_group_label(unit_row.value(by)), []).append(unit_row)
    for _, row in overlapping:
        # a subgroup may hold only left-out rows: it is still listed
        groups.setdefault(_group_label(row.value(by)), [])
    # Sort labels so that the output does not depend on row order; blanks last.
    labels = sorted(groups, key=lambda g: (g == BLANK_GROUP, _natural_key(g)))

    analyses = []
    for label in labels:
        ids = {m for u in groups[label] for m in _source_ids(u)}
        notes = [text for text, who in multiarm_notes if who & ids]
        pre = [(e, r) for e, r in overlapping if _group_label(r.value(by)) == label]
        analyses.append(_pool_rows(groups[label], outcome=outcome, timepoint=timepoint, unit=unit,
                                   group=label, measure=measure, method=method, hksj=hksj, pi=pi,
                                   cc=cc, level=level, by=by, multiarm=multiarm,
                                   study_ci=study_ci, multiarm_notes=notes, pre_excluded=pre))
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

def _check_options(measure, method, hksj, pi, multiarm="keep", study_ci="wald"):
    method = (method or "REML").upper()
    if method not in METHODS:
        raise UsageError(f"--method {method}: unknown method; choose one of {', '.join(METHODS)}")
    if measure is not None:
        measure = measure.upper()
        if measure not in MEASURES:
            raise UsageError(f"--measure {measure}: unknown measure; choose one of {', '.join(MEASURES)}")
        _check_measure_method(measure, method)
    if hksj and method in ("MH", "PETO", "GLMM"):
        # metafor's rma.mh(), rma.peto() and rma.glmm() have no test="knha".
        raise UsageError(f"--hksj applies to inverse-variance fits, not --method {method}; "
                         "use --method FE or a random-effects method")
    pi = (pi or "hts").lower()
    if pi not in ("hts", "z"):
        raise UsageError(f"--pi {pi}: choose hts or z")
    multiarm = (multiarm or "keep").lower()
    if multiarm not in MULTIARM_MODES:
        raise UsageError(f"--multiarm {multiarm}: choose one of {', '.join(MULTIARM_MODES)}")
    if method == "GLMM" and multiarm == "split":
        raise UsageError("--method GLMM fits binomial counts, and --multiarm split makes the shared "
                         "control's counts non-integer; use --multiarm combine (or keep)")
    if study_ci is not None:
        study_ci = study_ci.lower()
        if study_ci not in STUDY_CI_METHODS:
            raise UsageError(f"--study-ci {study_ci}: choose one of {', '.join(STUDY_CI_METHODS)}")
    return measure, method, pi, multiarm, study_ci


def _check_measure_method(measure, method):
    if method == "MH" and measure not in ("RR", "OR", "RD"):
        raise UsageError(f"--method MH pools RR, OR or RD, not {measure}; "
                         "use --measure RR|OR|RD or another method")
    if method == "PETO" and measure != "OR":
        raise UsageError(f"--method PETO pools odds ratios only; use --measure OR (not {measure})")
    if method == "GLMM" and measure not in GLMM_MEASURES:
        raise UsageError(f"--method GLMM fits proportions (PLO) or odds ratios (OR) by their binomial "
                         f"likelihood; use --measure PLO or OR (not {measure})")


def _resolve_measure(rows, measure, method):
    counted = [r for r in rows if r.has_counts]
    any_comparison = any(r.is_comparison for r in counted)
    if measure is None:
        # MH/PETO only exist for two-arm data, so they imply a two-arm default.
        measure = "RR" if any_comparison else "PLO"
        if method == "PETO" or (method == "GLMM" and any_comparison):
            measure = "OR"
        elif method == "MH" and not any_comparison:
            measure = "RR"
        _check_measure_method(measure, method)
    if measure in TWO_ARM_MEASURES and counted and not any_comparison:
        raise UsageError(f"--measure {measure} compares two arms, but every selected row with counts "
                         "is single-arm; use --measure PLO, PR, PFT or PAS")
    return measure


def _resolve_study_ci(measure, study_ci):
    """None means the ``pool`` command's default: exact for proportions, Wald for comparisons."""
    if measure in TWO_ARM_MEASURES:
        if study_ci not in (None, "wald"):
            raise UsageError(f"--study-ci {study_ci} applies to single-arm proportions (PR, PLO, PFT, "
                             f"PAS); the study intervals of {measure} are Wald intervals as metafor's")
        return "wald"
    return study_ci or CLI_DEFAULT_STUDY_CI


# ---------------------------------------------------------------- multi-arm trials

@dataclass(frozen=True)
class MultiArmUnit:
    """A comparison built from rows that share one control arm (combined or split).

    Stands in for a table ``Row`` in the pool: counts and ``study_id`` are its
    own, anything else (``trial``, ``timepoint_weeks``, ``row_number``,
    ``value(column)``, ...) is read from ``base``, the first member row.
    """

    base: object
    study_id: str
    events_t: float
    n_t: float
    events_c: float
    n_c: float
    multiarm: str                  # "combine" or "split"
    members: tuple[str, ...]
    member_rows: tuple[int, ...]
    control_share: float           # fraction of the shared control this unit carries

    def __getattr__(self, name):
        # Only reached for attributes not defined above.
        return getattr(object.__getattribute__(self, "base"), name)

    def value(self, column):
        if column in ("study_id", "events_t", "n_t", "events_c", "n_c"):
            return getattr(self, column)
        return self.base.value(column)

    @property
    def source_rows(self) -> int:
        return len(self.member_rows) if self.multiarm == "combine" else 1


def shared_control_sets(rows, measure) -> list[tuple[tuple, list]]:
    """Rows of one ``trial`` with identical control counts: one control arm, several comparisons.

    ``select()`` has already fixed the outcome, time point and unit, so the
    key is (trial, events_c, n_c). Only two-arm measures use control arms.
    Returns ``[((trial, events_c, n_c), [rows...]), ...]`` in table order.
    """
    if measure not in TWO_ARM_MEASURES:
        return []
    sets: dict[tuple, list] = {}
    for r in rows:
        trial = (getattr(r, "trial", None) or "").strip()
        if not trial or not (r.has_counts and r.is_comparison):
            continue
        sets.setdefault((trial, r.events_c, r.n_c), []).append(r)
    return [(key, members) for key, members in sets.items() if len(members) > 1]


def apply_multiarm(rows, measure, mode, *, group_of=None):
    """Combine or split comparisons sharing a control arm (Cochrane Handbook 23.3.4).

    ``combine``: the treatment arms of a trial's comparisons are summed into
    one comparison against the control, counted once. With ``group_of``
    (``--by``), only members of one subgroup are combined, and a control
    shared by G subgroups is divided evenly among them, so that the subgroup
    test does not count it G times either. ``split``: each comparison keeps
    its treatment arm and gets events_c/m of n_c/m (m comparisons);
    non-integer counts are what the Handbook describes and escalc accepts.
    ``keep``: rows unchanged, with a note that the control counts m times.

    Returns the rows to pool (``MultiArmUnit`` in place of changed rows, at
    the first member's position) and notes as ``(text, frozenset(ids))``.
    """
    sets = shared_control_sets(rows, measure)
    if not sets:
        return list(rows), []
    taken_ids = {r.study_id for r in rows}
    replace: dict[int, object] = {}
    notes: list[tuple[str, frozenset]] = []
    for (trial, e, n), members in sets:
        ids = [r.study_id for r in members]
        m = len(members)
        who = frozenset(ids)
        arm = f"({_count_text(e)}/{_count_text(n)})"
        if mode == "keep":
            notes.append((f"trial {trial}: {', '.join(ids)} share one control arm {arm}, counted {m} "
                          f"times (--multiarm keep): this overstates the precision; --multiarm "
                          f"combine or split counts it once", who))
            continue
        if mode == "split":
            rows_of = tuple(r.row_number for r in members)
            for r in members:
                replace[id(r)] = MultiArmUnit(
                    base=r, study_id=r.study_id, events_t=r.events_t, n_t=r.n_t,
                    events_c=_count(e / m), n_c=_count(n / m), multiarm="split",
                    members=tuple(ids), member_rows=rows_of, control_share=1.0 / m)
            notes.append((f"trial {trial}: {', '.join(ids)} share one control arm {arm}; its events "
                          f"and participants are split evenly among the {m} comparisons "
                          f"({_count_text(e / m)}/{_count_text(n / m)} each) so that it counts once "
                          "(--multiarm split, Cochrane Handbook 23.3.4); the comparisons remain "
                          "correlated, which the model ignores", who))
            continue
        # combine
        parts: dict[object, list] = {}
        for r in members:
            parts.setdefault(group_of(r) if group_of else None, []).append(r)
        g = len(parts)
        made = []
        for part in parts.values():
            part_ids = tuple(r.study_id for r in part)
            label = _combined_label(part_ids, trial, taken_ids) if len(part) > 1 else part_ids[0]
            taken_ids.add(label)
            unit = MultiArmUnit(
                base=part[0], study_id=label, events_t=sum(r.events_t for r in part),
                n_t=sum(r.n_t for r in part), events_c=_count(e / g), n_c=_count(n / g),
                multiarm="combine", members=part_ids, member_rows=tuple(r.row_number for r in part),
                control_share=1.0 / g)
            replace[id(part[0])] = unit
            for r in part[1:]:
                replace[id(r)] = None
            made.append(unit)
        if g == 1:
            u = made[0]
            notes.append((f"trial {trial}: {', '.join(ids)} share one control arm {arm}; their "
                          f"treatment arms are combined into one comparison, {u.study_id} "
                          f"({_count_text(u.events_t)}/{_count_text(u.n_t)} vs {_count_text(e)}/"
                          f"{_count_text(n)}), so that the control counts once (--multiarm combine, "
                          "Cochrane Handbook 23.3.4)", who))
        else:
            notes.append((f"trial {trial}: {', '.join(ids)} share one control arm {arm} but fall in "
                          f"{g} subgroups: the arms within a subgroup are combined and the control "
                          f"is divided evenly among the {g} subgroups ({_count_text(e / g)}/"
                          f"{_count_text(n / g)} each), so that it counts once, also in the subgroup "
                          "test (--multiarm combine, Cochrane Handbook 23.3.4)", who))
    units = []
    for r in rows:
        new = replace.get(id(r), r)
        if new is not None:
            units.append(new)
    return units, notes


def _combined_label(ids, trial, taken) -> str:
    """leiden_bmmsc_c1, leiden_bmmsc_c2 -> leiden_bmmsc_c1+c2; else D1+D2, else the trial."""
    import os.path

    prefix = os.path.commonprefix(list(ids))
    cut = max(prefix.rfind(sep) for sep in "_-. ")
    tails = [i[cut + 1:] for i in ids]
    if cut >= 0 and all(tails):
        label = ids[0][:cut + 1] + "+".join(tails)
    else:
        label = "+".join(ids)
    if len(label) > 40:
        label = trial
    while label in taken:
        label += " (combined)"
    return label


def _count(x):
    """Whole counts as int (0/3 split three ways is 0/1), others as float."""
    x = float(x)
    return int(x) if x.is_integer() else x


def _count_text(x) -> str:
    x = float(x)
    return f"{int(x)}" if x.is_integer() else f"{x:.2f}".rstrip("0").rstrip(".")


def _source_ids(unit) -> tuple[str, ...]:
    members = getattr(unit, "members", None) if isinstance(unit, MultiArmUnit) else None
    return members or (unit.study_id,)


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


def prepare_studies(rows, measure, method, cc, pre_excluded=()) -> PreparedStudies:
    """Apply the exclusion rules of the module docstring and compute the effect sizes.

    Shared by ``run_pool`` and the batch engine (``pooling.batch``), so that
    both leave out exactly the same studies for the same reasons.
    ``pre_excluded`` holds ``(Excluded, row)`` pairs already left out (e.g.
    by ``selection.drop_overlaps``).
    """
    two_arm = measure in TWO_ARM_MEASURES
    excluded: list[Excluded] = [e for e, _ in pre_excluded]
    # A combined comparison stands for several table rows: count those.
    n_rows = sum(getattr(r, "source_rows", 1) for r in rows) + len(excluded)
    kept, arms_only = [], 0
    for row in rows:
        reason = _exclusion_reason(row, measure)
        if reason is not None:
            excluded.append(Excluded(row.study_id, row.row_number, reason))
            continue
        if not two_arm and row.is_comparison:
            arms_only += 1
        kept.append(row)
    if not kept:
        return PreparedStudies([], None, excluded, n_rows, arms_only)

    es = _effect_sizes(measure, kept, cc)
    # escalc may itself refuse a study (e.g. a zero cell under --cc 0). MH and
    # Peto pool the raw tables, so such a study still counts there (as
    # rma.mh(add=0)); it only lacks its own estimate in the table. So does
    # the GLMM, which needs no continuity correction at all.
    keep = np.asarray(es.keep, dtype=bool)
    if method in ("MH", "PETO", "GLMM"):
        keep = np.ones(len(kept), dtype=bool)
    if not keep.all():
        for i in np.flatnonzero(~keep):
            why = es.reasons[i] or f"{measure} not estimable for this study"
            excluded.append(Excluded(kept[i].study_id, kept[i].row_number, why))
        kept = [r for r, k in zip(kept, keep) if k]
        if not kept:
            return PreparedStudies([], None, excluded, n_rows, arms_only)
        es = _effect_sizes(measure, kept, cc)
    if len(kept) == 1 and not (math.isfinite(es.yi[0]) and math.isfinite(es.vi[0]) and es.vi[0] > 0):
        # Only MH/PETO/GLMM keep such a study (cc = 0, zero cell); alone it has no estimate.
        excluded.append(Excluded(kept[0].study_id, kept[0].row_number,
                                 f"zero cell and no continuity correction (--cc {cc:g}): "
                                 f"{measure} not estimable from this study alone"))
        return PreparedStudies([], None, excluded, n_rows, arms_only)
    return PreparedStudies(kept, es, excluded, n_rows, arms_only)


def _pool_rows(rows, *, outcome, timepoint, unit, group, measure, method, hksj, pi, cc,
               level, by=None, multiarm="keep", study_ci="wald", multiarm_notes=(),
               pre_excluded=()) -> Analysis:
    two_arm = measure in TWO_ARM_MEASURES
    prep = prepare_studies(rows, measure, method, cc, pre_excluded)
    excluded, kept, es, n_rows = prep.excluded, prep.kept, prep.es, prep.n_rows

    timepoint_weeks = _common_value([r.timepoint_weeks for r in rows], timepoint)
    unit_value = _common_value([r.unit for r in rows], unit)
    base = dict(outcome=outcome, timepoint_weeks=timepoint_weeks, unit=unit_value, group=group,
                measure=measure, method=method, level=level, hksj=hksj, pi=pi, cc=cc, by=by,
                multiarm=multiarm, study_ci=study_ci)

    notes: list[str] = []
    if not kept:
        notes.append(_exclusion_note(excluded, n_rows))
        notes.extend(multiarm_notes)
        return Analysis(result=None, common=None, studies=(), excluded=tuple(excluded),
                        notes=tuple(notes), **base)

    yi, vi, ni = prep.yi, prep.vi, prep.ni
    cc_added = _cc_flags(es, len(kept))
    k = len(kept)
    if k == 1:
        result = _single_study_result(measure, method, yi[0], vi[0], ni, level, hksj)
        common = None
    else:
        result, common = _fit(measure, method, kept, yi, vi, ni, hksj=hksj, pi=pi, cc=cc,
                              level=level)

    estimate, low, high = _study_intervals(es, kept, study_ci, level)
    weights = list(result.weights) if result.weights else [None] * k
    studies = tuple(
        StudyLine(study_id=r.study_id, row_number=r.row_number, events_t=r.events_t, n_t=r.n_t,
                  events_c=r.events_c if two_arm else None, n_c=r.n_c if two_arm else None,
                  yi=float(yi[i]), vi=float(vi[i]), estimate=float(estimate[i]),
                  ci_low=float(low[i]), ci_high=float(high[i]),
                  weight=None if weights[i] is None else float(weights[i]),
                  cc_added=bool(cc_added[i]),
                  multiarm=r.multiarm if isinstance(r, MultiArmUnit) else None,
                  members=r.members if isinstance(r, MultiArmUnit) else (),
                  member_rows=r.member_rows if isinstance(r, MultiArmUnit) else (),
                  control_share=r.control_share if isinstance(r, MultiArmUnit) else None)
        for i, r in enumerate(kept)
    )

    if excluded:
        notes.append(_exclusion_note(excluded, n_rows))
    notes.extend(multiarm_notes)
    if len({r.timepoint_weeks for r in kept}) > 1:
        from msc_meta.data.load import format_weeks

        when = ", ".join(f"{r.study_id} {format_weeks(r.timepoint_weeks)}"
                         + (" wk" if r.timepoint_weeks is not None else "") for r in kept)
        notes.append(f"studies assessed at different time points are pooled together "
                     f"(--timepoint any): {when}")
    if prep.arms_only:
        arms_only = prep.arms_only
        notes.append(f"{measure} is a single-arm measure: the treatment arms of {arms_only} "
                     f"two-arm row{'s' if arms_only > 1 else ''} are pooled and their control "
                     "arms ignored")
    n_cc = int(np.sum(cc_added))
    if n_cc and k > 1:      # at k = 1 the single-study note says it
        if method == "MH":
            where = "to the study estimates and Q (the MH estimate itself uses the raw counts)"
        elif method == "PETO":
            where = "to the study odds ratios shown (the Peto estimate uses the raw counts)"
        elif method == "GLMM" and k > 1:
            where = (f"for {'their own estimates' if n_cc > 1 else 'its own estimate'} (yi, vi); "
                     "the GLMM fits the raw counts")
        else:
            where = "before pooling"
        notes.append(f"zero cells: continuity correction {cc:g} added to every cell of {n_cc} "
                     f"stud{'ies' if n_cc > 1 else 'y'} {where}")
    no_own = [r.study_id for r, y in zip(kept, yi) if not math.isfinite(y)]
    if no_own:
        notes.append(f"{', '.join(no_own)}: no study-level {measure} without a continuity correction "
                     f"(--cc {cc:g}); still pooled by {method} from the raw counts")
    if study_ci != "wald" and measure in SINGLE_ARM_MEASURES and k > 1:
        how = "exact (Clopper-Pearson)" if study_ci == "exact" else "Wilson score"
        pooled = ("the GLMM fits the raw counts" if method == "GLMM" and k > 1
                  else f"the pool uses the {measure} values yi, vi")
        notes.append(f"study rows show x/n with its {how} interval (--study-ci {study_ci}); {pooled}")
    if k == 1:
        notes.append(_single_study_note(kept[0], measure, method, bool(cc_added[0]), cc, study_ci))
    else:
        notes.extend(_fragility_notes(result, method, k, hksj, pi))
        notes.extend(_hksj_narrower_note(result, common))
        notes.extend(_scale_notes(measure, method, result))
    notes.extend(_engine_notes(result.notes, notes))

    advice = guidance_for(measure, method, hksj, kept, cc, multiarm)
    return Analysis(result=result, common=common, studies=studies, excluded=tuple(excluded),
                    notes=tuple(notes), guidance=None if advice is None else advice.text(),
                    suggestions=() if advice is None else advice.suggestions, **base)


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
        printed.append(note)      # whole: the table and the figure wrap it
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


def _study_intervals(es, rows, method, level):
    """Each study's estimate and CI on the natural scale, as ``study_ci`` asks.

    ``wald``: metafor ``summary(escalc())`` (each study on its own n, which
    matters for PFT). ``exact``/``wilson`` (single-arm measures): the raw
    proportion x/n with its Clopper-Pearson or Wilson interval, which keep
    their coverage at 0/n and n/n and in studies of a handful of patients.
    """
    if method == "wald" or es.measure in TWO_ARM_MEASURES:
        from msc_meta.effects import study_estimate

        low, high = _study_ci(es, level)
        return np.asarray(study_estimate(es), dtype=float), low, high
    from msc_meta.pooling.exact import proportion_ci

    x = np.array([r.events_t for r in rows], dtype=float)
    n = np.array([r.n_t for r in rows], dtype=float)
    ci = proportion_ci(x, n, method=method, level=level)
    return (np.asarray(ci.estimate, dtype=float), np.asarray(ci.ci_low, dtype=float),
            np.asarray(ci.ci_high, dtype=float))


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

    if method == "GLMM":
        return _fit_glmm(measure, rows, pi=pi, level=level), None

    from msc_meta.pooling.rma import pool_rma

    result = pool_rma(yi, vi, method=method, measure=measure, ni=ni, hksj=hksj, pi=pi, level=level)
    if method == "FE":
        return result, None
    common = pool_rma(yi, vi, method="FE", measure=measure, ni=ni, hksj=False, pi=pi, level=level)
    return result, common


def _fit_glmm(measure, rows, *, pi, level) -> PoolResult:
    """Binomial-normal GLMM on the raw counts (metafor ``rma.glmm``).

    PLO: random-intercept logistic model (``rma.glmm(measure="PLO")``); OR:
    unconditional model with fixed study effects (``model="UM.FS"``).
    metafor's ``predict()`` gives a GLMM a normal-quantile prediction
    interval; under ``--pi hts`` (the default of ``pool``) the interval is
    ``beta -/+ t(k-2) sqrt(se^2 + tau^2)`` as for every other random-effects
    fit (Higgins, Thompson & Spiegelhalter 2009), undefined for k < 3. The
    variances behind I² use metafor's default ``add=1/2``, whatever ``--cc``.
    """
    import dataclasses

    from msc_meta.pooling import glmm

    x = np.array([r.events_t for r in rows], dtype=float)
    n = np.array([r.n_t for r in rows], dtype=float)
    if measure == "OR":
        c = np.array([r.events_c for r in rows], dtype=float)
        m = np.array([r.n_c for r in rows], dtype=float)
        result = glmm.glmm_or(x, n, c, m, level=level, cc=0.5).pool
    else:
        result = glmm.glmm_plo(x, n, level=level, cc=0.5).pool
    if pi != "hts":
        return result
    k = result.k
    if k < 3:
        return dataclasses.replace(result, theta_pi_low=None, theta_pi_high=None, pi_low=None,
                                   pi_high=None, pi_method="hts")
    alpha = 1.0 - level / 100.0
    crit = float(special.stdtrit(k - 2, 1.0 - alpha / 2.0))
    half = crit * math.sqrt(result.se ** 2 + result.tau2)
    lo, hi = result.theta - half, result.theta + half
    nat = _back(measure, np.array([lo, hi]), None)
    return dataclasses.replace(result, theta_pi_low=lo, theta_pi_high=hi,
                               pi_low=float(nat[0]), pi_high=float(nat[1]), pi_method="hts")


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


def _single_study_note(study, measure, method, cc_added, cc, study_ci) -> str:
    """What the pooled row of k = 1 is: the study's Wald estimate, whatever --method says.

    With an exact or Wilson study interval (single-arm measures) the study
    row and the pooled row show different intervals for the same study: say why.
    """
    how = f"its {measure} with a Wald CI"
    if cc_added:
        how += f" ({cc:g} added to every cell for the zero cell)"
    unused = ""
    if method in ("GLMM", "MH", "PETO") or method in RANDOM_METHODS:
        unused = f"; no {method} model was fitted to one study"
    text = f"k = 1: the pooled row is {study.study_id}'s own estimate, {how}{unused}"
    if study_ci != "wald" and measure in SINGLE_ARM_MEASURES:
        kind = "exact (Clopper-Pearson)" if study_ci == "exact" else "Wilson score"
        text += (f"; the study row shows {_count_text(study.events_t)}/{_count_text(study.n_t)} "
                 f"with its {kind} interval (--study-ci {study_ci}), hence the two different "
                 "intervals for one study")
    return text + "; heterogeneity cannot be estimated"


def _scale_notes(measure, method, result):
    """Warnings about the scale of a fit that metafor prints silently."""
    notes = []
    if measure == "PR" and (result.ci_low < 0 or result.ci_high > 1):
        notes.append("the PR confidence interval runs below 0 or above 1 (a normal approximation "
                     "on the proportion scale, as metafor gives it); PLO, PFT or --method GLMM "
                     "keep intervals inside [0, 1]")
    if method == "GLMM" and result.tau2 is not None and result.tau2 > 9:
        notes.append(f"tau on the logit scale is {math.sqrt(result.tau2):.1f}: the counts are close "
                     "to separation (studies at or near 0% or 100%) and the GLMM's tau² is "
                     "unstable; read the pooled estimate with care, or see `msc-meta bayes`")
    return notes


def _hksj_narrower_note(result, common):
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


def _fragility_notes(result, method, k, hksj, pi):
    notes = []
    random = method in RANDOM_METHODS or method == "GLMM"
    if method in RANDOM_METHODS and not hksj and k < 5:
        notes.append(f"with k = {k} the z-based CI is too narrow (it ignores the uncertainty "
                     "in tau²); consider --hksj")
    if random and pi == "hts" and k < 3:
        notes.append(f"prediction interval undefined for k = {k}: --pi hts needs k ≥ 3 "
                     "(t with k-2 df); --pi z gives a normal-quantile interval")
    if random and k < 10 and getattr(result, "tau2", 0) == 0 and k >= 2:
        notes.append(f"tau² estimated as 0 from k = {k} studies: this does not show that the "
                     "studies agree, only that k is too small to see how they differ")
    return notes


def _engine_notes(engine, ours):
    """The estimator's own notes, minus those that repeat one of ours in other words."""
    said_pi = any(n.startswith("prediction interval undefined") for n in ours)
    said_tau0 = any(n.startswith("tau² estimated as 0") for n in ours)
    for note in engine:
        if note in ours or (said_pi and "prediction interval" in note) \
                or (said_tau0 and ("boundary 0" in note or "0 (boundary)" in note)):
            continue
        yield note


def _common_value(values, given):
    if given is not None and given not in ("blank", "any"):
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
