"""Every effect measure and every pooling method, each defined once.

Every module that needs to know what a measure or a method is (its arms
and input columns, null value, analysis scale and back-transformation,
continuity-correction rule, axis and labels; a method's kind and what to
suggest instead) reads it here, as metafor's ``escalc.r`` and PyMARE's
effect-size expressions gather theirs. Adding a measure is one
:func:`register_measure` call with its effect-size function (and its
fixtures); nothing else spells out a list of measures or methods.

This module imports nothing heavy: ``msc-meta --help`` and the option
choices read it before numpy is loaded. Effect-size functions are named
here (``"msc_meta.effects:risk_ratio"``) and imported when first used, or
given as callables.

An effect-size function gets the cells of its input family after the
shared rules of that family (``msc_meta.effects``: missing inputs, invalid
values, the continuity correction, drop00) and returns ``(yi, vi)`` as numpy
arrays. For the ``counts`` family: one arm ``f(x, m)`` (events, non-events),
two arms ``f(a, b, c, d)`` (the 2x2 cells). For every other family the
function takes the measure's ``inputs`` columns, in that order, after the
family's preparation (e.g. ``MD``: ``f(mean_t, sd_t, n_t, mean_c, sd_c, n_c)``;
``IRR``: ``f(events_t, time_t, events_c, time_c)`` after the correction).

Families (the input type of a row; ``FAMILIES`` below): ``counts``,
``means_two``, ``means_paired``, ``means_one``, ``rates_two``, ``rates_one``,
``correlations``, ``generic``. ``effects.compute`` takes every registered
measure; :func:`measures` (the command line's ``--measure`` choices) lists
only those of the families the table loader reads (:func:`table_families`,
today ``counts``), until the loader integration adds the others with
:func:`add_table_family`.

A measure whose back-transformation depends on an option (``GEN``: the
``--scale`` of the given effects) lists its ``scales``; :func:`measure` with
``scale=`` returns the measure as it is on that scale (its ``back``, ``null``,
axis and titles), and ``EffectSizes.scale`` carries the scale a set of
effect sizes was computed on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import import_module
from typing import Callable

# ---------------------------------------------------------------------------
# measures
# ---------------------------------------------------------------------------

COUNTS_ONE_ARM = ("events_t", "n_t")
COUNTS_TWO_ARMS = ("events_t", "n_t", "events_c", "n_c")
MEANS_TWO_GROUPS = ("mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c")
MEANS_ONE_GROUP = ("mean_t", "sd_t", "n_t")
# paired before/after, as escalc(m1i=mean_post, m2i=mean_pre, sd1i=sd_pre, sd2i=sd_post, ni=n_t, ri=r)
MEANS_PAIRED = ("mean_post", "mean_pre", "sd_pre", "sd_post", "n_t", "r")
MEANS_PAIRED_RAW = ("mean_post", "mean_pre", "sd_pre", "n_t", "r")   # SMCR: no sd_post
RATES_TWO_GROUPS = ("events_t", "time_t", "events_c", "time_c")
RATES_ONE_GROUP = ("events_t", "time_t")
CORRELATION = ("cor_t", "n_t")
# generic: yi with vi or sei (analysis scale), or effect with its CI (natural scale)
GENERIC = ("yi", "vi", "sei", "effect", "effect_ci_low", "effect_ci_high", "effect_level")

FAMILIES = {
    "counts": "events and participants (2x2 tables, or x of n)",
    "means_two": "two-group means (mean, SD, n per arm)",
    "means_paired": "paired before/after means in one group (means, SDs, n, r)",
    "means_one": "one-group means (mean, SD, n)",
    "rates_two": "two-group incidence rates (events and person-time per arm)",
    "rates_one": "one-group incidence rates (events, person-time)",
    "correlations": "correlation coefficients (r, n)",
    "generic": "pre-computed effects (yi with vi or sei, or an estimate with its CI)",
}


# bayes: the default prior on tau for log, logit and other scale-free analysis scales: half-normal
# with scale 0.5 (Friede et al. 2017, Biom J 59:658; Roever et al. 2021, Res Synth Methods 12:448).
DEFAULT_TAU_PRIOR = "halfnormal:0.5"


@dataclass(frozen=True)
class Scale:
    """How a measure with an optional scale (GEN) reads and shows its values on one scale."""

    name: str                      # "log" | "identity"
    back: str                      # back-transformation to the natural scale
    natural: str                   # what a value is on the natural scale
    title: str                     # natural-scale axis title
    scale: str                     # analysis scale in words
    scale_title: str               # analysis-scale axis title
    null: float                    # no effect on the natural scale
    log_axis: bool = False
    tau_prior: str | None = DEFAULT_TAU_PRIOR   # bayes: default prior on tau (see Measure)


@dataclass(frozen=True)
class Measure:
    """One effect measure, as metafor ``escalc(measure=name)`` defines it."""

    name: str                      # "RR"
    title: str                     # "Risk ratio": plot axis on the natural scale
    natural: str                   # what a value is on the natural scale ("RR", "Proportion")
    scale: str                     # analysis scale in words ("log RR", "logit proportion")
    scale_title: str               # analysis-scale axis title ("Log risk ratio"), as metafor's funnel()
    inputs: tuple[str, ...]        # table columns it reads, in the order the effect function takes them
    effect: str | Callable         # "module:function" or a callable: cells -> (yi, vi)
    back: str | Callable = "identity"   # identity | exp | expit | iarcsin | ipft, or a callable(x)
    null: float | None = None      # "no effect" on the natural scale (None: no reference line)
    log_axis: bool = False         # ratios: log axis in tables and figures
    uses_cc: bool = True           # escalc(add=cc, to="only0") applies
    drop00: bool = False           # studies with no (or only) events in both arms carry no information
    absolute: bool = False         # sof can express it as absolute effects per 1,000
    test_null_text: str = ""       # what theta = 0 means, where it is not "no effect"
    family: str = "counts"         # the input type, one of FAMILIES
    bounds: tuple[float, float] | None = None   # range on the natural scale, for linear axes
    reference: str = ""            # where the measure is defined, beyond escalc (plain text)
    positive: tuple[str, ...] = ()  # inputs that must be > 0 (their log is taken: ROM, MNLN)
    scales: tuple[Scale, ...] = ()  # GEN: the scales it can be on (the first is the default)
    # bayes: the default prior on tau (analysis scale); None where that scale carries the
    # outcome's own units (MD in days, mm, points...), where no one scale fits every outcome:
    # `bayes` then asks for --prior-tau
    tau_prior: str | None = DEFAULT_TAU_PRIOR
    units: bool = False            # natural-scale values are in the outcome's units (the
                                   # outcome_units column of the table names them)
    # sof: how a pooled effect x turns the comparator's value b into the value with the
    # intervention ("ratio" b*x, "odds" b*x/(1-b+b*x), "difference" b+x, "sqrt_difference"
    # (sqrt(b)+x)^2; "" none), and whether x is in SD units (re-expressed, not applied)
    baseline: str = ""
    standardised: bool = False

    @cached_property       # asked per analysis by --by and export --all (10^4 of them)
    def arms(self) -> int:
        """2 when the measure compares a treatment with a control arm, else 1."""
        return 2 if any(col.endswith("_c") for col in self.inputs) else 1

    @property
    def two_arm(self) -> bool:
        return self.arms == 2

    def effect_function(self) -> Callable:
        return _resolve(self.effect)

    def on_scale(self, scale: str | None) -> "Measure":
        """This measure as it is on ``scale`` (GEN); measures without scales ignore None."""
        if not self.scales:
            if scale is not None and scale != self.scale_name:
                raise ValueError(f"measure {self.name} has a fixed scale; --scale applies to "
                                 f"{', '.join(measures(scaled=True, every=True))}")
            return self
        if scale is None:
            chosen = self.scales[0]
        else:
            chosen = next((s for s in self.scales if s.name == str(scale).lower()), None)
            if chosen is None:
                raise ValueError(f"unknown scale {scale!r} for {self.name}: choose one of "
                                 f"{', '.join(s.name for s in self.scales)}")
        return replace(self, back=chosen.back, natural=chosen.natural, title=chosen.title,
                       scale=chosen.scale, scale_title=chosen.scale_title, null=chosen.null,
                       log_axis=chosen.log_axis, tau_prior=chosen.tau_prior, scales=(chosen,))

    @property
    def scale_name(self) -> str | None:
        """The name of the scale a scaled measure is on (None for fixed-scale measures)."""
        return self.scales[0].name if self.scales else None


_MEASURES: dict[str, Measure] = {}
_FAMILY_COLUMNS: dict = {}      # family_columns' answers; emptied when a measure is (un)registered


def register_measure(measure: Measure) -> Measure:
    """Add (or replace) a measure; returns it. The CLI's choices are read at start-up."""
    _MEASURES[measure.name.upper()] = measure
    _FAMILY_COLUMNS.clear()
    return measure


def unregister_measure(name: str) -> None:
    """Remove a measure (for tests that register a toy one)."""
    _MEASURES.pop(name.upper(), None)
    _FAMILY_COLUMNS.clear()


def measure(name: str, scale: str | None = None) -> Measure:
    """The measure called ``name`` (any case); ``KeyError`` with the known names otherwise.

    ``scale`` (GEN: "log" or "identity") returns the measure as it is on that
    scale; None gives a scaled measure on its first (default) scale.
    """
    try:
        spec = _MEASURES[str(name).upper()]
    except KeyError:
        raise KeyError(f"unknown measure {name!r}; known: {', '.join(_MEASURES)}") from None
    return spec.on_scale(scale) if (spec.scales or scale is not None) else spec


def is_measure(name) -> bool:
    return isinstance(name, str) and name.upper() in _MEASURES


def measures(*, arms: int | None = None, family: str | None = None,
             scaled: bool | None = None, every: bool = False) -> tuple[str, ...]:
    """Names of the registered measures, in registration order, optionally filtered
    by arms, family, or whether they take a scale (GEN).

    Without ``family`` (and unless ``every``), only the measures of the families
    the table loader reads (:func:`table_families`): what the command line
    offers as ``--measure``. ``family=`` or ``every=True`` lists the others,
    which ``effects.compute`` takes whatever the loader reads.
    """
    shown = (lambda m: True) if (every or family is not None) else (
        lambda m: m.family in _TABLE_FAMILIES)
    return tuple(m.name for m in _MEASURES.values()
                 if shown(m) and (arms is None or m.arms == arms)
                 and (family is None or m.family == family)
                 and (scaled is None or bool(m.scales) == scaled))


# The input families the table loader (msc_meta.data) and the commands read today. Only
# their measures are offered on the command line (measures()); effects.compute takes every
# registered measure. The loader/CLI integration of the outcome-types issue adds a family
# here (add_table_family) once the loader reads its columns and pool passes them on.
_TABLE_FAMILIES = {"counts"}


def table_families() -> tuple[str, ...]:
    """The families whose columns the table loader reads (their measures are CLI choices)."""
    return tuple(f for f in FAMILIES if f in _TABLE_FAMILIES)


def add_table_family(family: str) -> None:
    """Offer a family's measures on the command line (the loader now reads its columns)."""
    if family not in FAMILIES:
        raise KeyError(f"unknown input family {family!r}; known: {', '.join(FAMILIES)}")
    _TABLE_FAMILIES.add(family)


def remove_table_family(family: str) -> None:
    """Stop offering a family's measures on the command line (for tests)."""
    _TABLE_FAMILIES.discard(family)


def families() -> tuple[str, ...]:
    """The input families, in the order of ``FAMILIES``."""
    return tuple(FAMILIES)


def family_columns(family: str) -> tuple[str, ...]:
    """The input columns of a family: those its measures read, in registration order
    (``counts``: events_t, n_t, events_c, n_c; ``means_two``: mean_t, sd_t, n_t, ...)."""
    if family not in FAMILIES:
        raise KeyError(f"unknown input family {family!r}; known: {', '.join(FAMILIES)}")
    names = _FAMILY_COLUMNS.get(family)     # asked per analysis: cached until a measure changes
    if names is None:
        found: dict[str, None] = {}
        for m in _MEASURES.values():
            if m.family == family:
                found.update(dict.fromkeys(m.inputs))
        names = _FAMILY_COLUMNS[family] = tuple(found)
    return names


def default_measure(two_arm: bool, family: str = "counts") -> str:
    """What ``pool`` uses when no ``--measure`` is given.

    Counts (the contract): PLO for single-arm rows, RR for comparisons. Other
    families: MD for two-group means, MC for paired means, MN for one-group
    means, IRR / IR for rates, ZCOR for correlations (Fisher's z, whose
    variance does not depend on r: metafor's documented way to pool
    correlations, back-transformed with transf.ztor), GEN for generic effects.
    A family with one arm only ignores ``two_arm``.
    """
    try:
        return _DEFAULTS[(family, 2 if two_arm else 1)]
    except KeyError:
        try:
            return _DEFAULTS[(family, 1 if two_arm else 2)]
        except KeyError:
            raise KeyError(f"unknown input family {family!r}; known: {', '.join(FAMILIES)}") from None


_DEFAULTS = {("counts", 1): "PLO", ("counts", 2): "RR", ("means_two", 2): "MD",
             ("means_paired", 1): "MC", ("means_one", 1): "MN", ("rates_two", 2): "IRR",
             ("rates_one", 1): "IR", ("correlations", 1): "ZCOR", ("generic", 1): "GEN"}

_E = "msc_meta.effects:"

for _m in (
    Measure("PR", "Proportion", "Proportion", "proportion", "Proportion", COUNTS_ONE_ARM,
            _E + "raw_proportion", test_null_text="proportion = 0", bounds=(0.0, 1.0)),
    Measure("PLO", "Proportion", "Proportion", "logit proportion", "Logit proportion",
            COUNTS_ONE_ARM, _E + "logit_proportion", back="expit",
            test_null_text="proportion = 0.5", bounds=(0.0, 1.0)),
    Measure("PFT", "Proportion", "Proportion", "Freeman-Tukey double arcsine",
            "Double arcsine proportion", COUNTS_ONE_ARM, _E + "double_arcsine_proportion",
            back="ipft", uses_cc=False, test_null_text="proportion = 0", bounds=(0.0, 1.0),
            reference="Freeman MF, Tukey JW (1950). Ann Math Stat 21:607-611; Miller JJ (1978). "
                      "Am Stat 32:138."),
    Measure("PAS", "Proportion", "Proportion", "arcsine square root", "Arcsine proportion",
            COUNTS_ONE_ARM, _E + "arcsine_proportion", back="iarcsin", uses_cc=False,
            test_null_text="proportion = 0", bounds=(0.0, 1.0)),
    Measure("RR", "Risk ratio", "RR", "log RR", "Log risk ratio", COUNTS_TWO_ARMS,
            _E + "log_risk_ratio", back="exp", null=1.0, log_axis=True, drop00=True,
            absolute=True),
    Measure("OR", "Odds ratio", "OR", "log OR", "Log odds ratio", COUNTS_TWO_ARMS,
            _E + "log_odds_ratio", back="exp", null=1.0, log_axis=True, drop00=True,
            absolute=True),
    Measure("RD", "Risk difference", "RD", "risk difference", "Risk difference",
            COUNTS_TWO_ARMS, _E + "risk_difference", null=0.0, absolute=True, bounds=(-1.0, 1.0)),
    # two-group means (escalc m1i=mean_t, sd1i=sd_t, n1i=n_t, m2i=mean_c, sd2i=sd_c, n2i=n_c)
    Measure("MD", "Mean difference", "MD", "mean difference", "Mean difference",
            MEANS_TWO_GROUPS, _E + "mean_difference", null=0.0, uses_cc=False, family="means_two",
            tau_prior=None, units=True),
    Measure("SMD", "Standardised mean difference", "SMD", "standardised mean difference (Hedges' g)",
            "Standardized mean difference", MEANS_TWO_GROUPS, _E + "standardised_mean_difference",
            null=0.0, uses_cc=False, family="means_two"),
    Measure("SMDH", "Standardised mean difference", "SMD",
            "standardised mean difference (heteroscedastic)", "Standardized mean difference",
            MEANS_TWO_GROUPS, _E + "standardised_mean_difference_heteroscedastic", null=0.0,
            uses_cc=False, family="means_two"),
    Measure("ROM", "Ratio of means", "Ratio of means", "log ratio of means", "Log ratio of means",
            MEANS_TWO_GROUPS, _E + "log_ratio_of_means", back="exp", null=1.0, log_axis=True,
            uses_cc=False, family="means_two", positive=("mean_t", "mean_c")),
    # paired before/after in one group
    Measure("MC", "Mean change", "Mean change", "mean change (post - pre)", "Mean change",
            MEANS_PAIRED, _E + "mean_change", null=0.0, uses_cc=False, family="means_paired",
            tau_prior=None, units=True),
    Measure("SMCC", "Standardised mean change", "SMC",
            "standardised mean change (change-score standardisation)", "Standardized mean change",
            MEANS_PAIRED, _E + "standardised_mean_change_change_sd", null=0.0,
            uses_cc=False, family="means_paired"),
    Measure("SMCR", "Standardised mean change", "SMC",
            "standardised mean change (raw-score standardisation by sd_pre)",
            "Standardized mean change", MEANS_PAIRED_RAW, _E + "standardised_mean_change_raw_sd",
            null=0.0, uses_cc=False, family="means_paired"),
    # one-group means
    Measure("MN", "Mean", "Mean", "mean", "Mean", MEANS_ONE_GROUP, _E + "raw_mean",
            test_null_text="mean = 0", uses_cc=False, family="means_one", tau_prior=None,
            units=True),
    Measure("MNLN", "Mean", "Mean", "log mean", "Log mean", MEANS_ONE_GROUP, _E + "log_mean",
            back="exp", log_axis=True, test_null_text="mean = 1", uses_cc=False, family="means_one",
            positive=("mean_t",), units=True),
    # incidence rates (events per unit of person-time)
    Measure("IRR", "Incidence rate ratio", "IRR", "log IRR", "Log incidence rate ratio",
            RATES_TWO_GROUPS, _E + "log_incidence_rate_ratio", back="exp", null=1.0,
            log_axis=True, drop00=True, family="rates_two"),
    Measure("IRD", "Incidence rate difference", "IRD", "incidence rate difference",
            "Incidence rate difference", RATES_TWO_GROUPS, _E + "incidence_rate_difference",
            null=0.0, family="rates_two", tau_prior=None),
    Measure("IRSD", "Square-root incidence rate difference", "IRSD",
            "square-root incidence rate difference", "Square root incidence rate difference",
            RATES_TWO_GROUPS, _E + "sqrt_incidence_rate_difference", null=0.0, uses_cc=False,
            family="rates_two", tau_prior=None),
    Measure("IR", "Incidence rate", "Incidence rate", "incidence rate", "Incidence rate",
            RATES_ONE_GROUP, _E + "raw_incidence_rate", test_null_text="rate = 0",
            family="rates_one", tau_prior=None),
    Measure("IRLN", "Incidence rate", "Incidence rate", "log incidence rate", "Log incidence rate",
            RATES_ONE_GROUP, _E + "log_incidence_rate", back="exp", log_axis=True,
            test_null_text="rate = 1", family="rates_one"),
    # correlations
    Measure("COR", "Correlation", "r", "correlation", "Correlation coefficient", CORRELATION,
            _E + "raw_correlation", null=0.0, uses_cc=False, family="correlations", bounds=(-1.0, 1.0)),
    Measure("ZCOR", "Correlation", "r", "Fisher's z", "Fisher's z transformed correlation "
            "coefficient", CORRELATION, _E + "fisher_z_correlation", back="tanh", null=0.0,
            uses_cc=False, family="correlations", bounds=(-1.0, 1.0)),
    # generic: effects computed elsewhere, on the scale --scale names
    Measure("GEN", "Effect", "Effect", "effect", "Effect", GENERIC, _E + "generic_effect",
            null=0.0, uses_cc=False, family="generic",
            scales=(Scale("identity", "identity", "Effect", "Effect", "effect", "Effect", 0.0,
                          tau_prior=None),
                    Scale("log", "exp", "Ratio", "Ratio", "log ratio", "Log ratio", 1.0,
                          log_axis=True))),
):
    register_measure(_m)

# How a summary of findings applies each measure to a comparator value (GRADE handbook 5.2;
# Cochrane Handbook 14.1.5 and 15.5.3): kept in one block so that the table above reads as
# escalc's, and sof reads these fields, never names.
for _name, _baseline, _standardised in (
        ("RR", "ratio", False), ("OR", "odds", False), ("RD", "difference", False),
        ("MD", "difference", False), ("ROM", "ratio", False), ("MC", "difference", False),
        ("IRR", "ratio", False), ("IRD", "difference", False), ("IRSD", "sqrt_difference", False),
        ("SMD", "", True), ("SMDH", "", True), ("SMCC", "", True), ("SMCR", "", True)):
    register_measure(replace(_MEASURES[_name], baseline=_baseline, standardised=_standardised))


# ---------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Method:
    """One pooling method: its kind, what it accepts, and how it is named."""

    name: str                      # "REML"
    kind: str                      # common | random | glmm
    label: str                     # in table titles ("REML", "MH", "Peto")
    long_label: str                # on a pooled row ("Mantel-Haenszel", "inverse variance")
    iterative: bool = False        # an iterative estimator (may fail to converge)
    fisher_scoring: bool = False   # tau² by Fisher scoring (metafor's REML, ML, EB)
    inverse_variance: bool = True  # pools yi, vi (else the raw counts)
    measures: tuple[str, ...] | None = None   # the measures it pools (None: every measure)
    hksj: bool = True              # takes --hksj (metafor test="knha")
    fallback: str = ""             # what to try when it does not converge
    revman: str = "IV"             # RevMan's name of the method in a forest plot's header
    metafor: str = ""              # the metafor call it reproduces
    reference: str = ""            # where the method is defined (plain text)
    default_measure: dict = field(default_factory=dict)   # arms -> the measure it implies

    @property
    def random(self) -> bool:
        return self.kind in ("random", "glmm")

    def pools(self, measure_name: str) -> bool:
        return self.measures is None or measure_name.upper() in self.measures


_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    _METHODS[method.name.upper()] = method
    return method


def method(name: str) -> Method:
    try:
        return _METHODS[str(name).upper()]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(_METHODS)}") from None


def is_method(name) -> bool:
    return isinstance(name, str) and name.upper() in _METHODS


def methods(*, kind: str | None = None, inverse_variance: bool | None = None) -> tuple[str, ...]:
    return tuple(m.name for m in _METHODS.values()
                 if (kind is None or m.kind == kind)
                 and (inverse_variance is None or m.inverse_variance == inverse_variance))


for _m in (
    Method("FE", "common", "FE", "inverse variance",
           metafor='rma(method="FE")', reference=''),
    Method("MH", "common", "MH", "Mantel-Haenszel", inverse_variance=False,
           measures=("RR", "OR", "RD"), hksj=False, default_measure={1: "RR", 2: "RR"},
           revman="M-H",
           metafor='rma.mh()', reference='Mantel N, Haenszel W (1959). J Natl Cancer Inst 22:719-748; Greenland S, Robins JM (1985). Biometrics 41:55-68; Robins J, Breslow N, Greenland S (1986). Biometrics 42:311-323; Sato T, Greenland S, Robins JM (1989). Biometrics 45:1323-1324.'),
    Method("PETO", "common", "Peto", "Peto", inverse_variance=False, measures=("OR",), hksj=False,
           default_measure={1: "OR", 2: "OR"}, revman="Peto",
           metafor='rma.peto()', reference='Yusuf S, Peto R, Lewis J, Collins R, Sleight P (1985). Prog Cardiovasc Dis 27:335-371.'),
    Method("DL", "random", "DL", "DerSimonian-Laird",
           metafor='rma(method="DL")', reference='DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Control Clin Trials 7:177-188.'),
    Method("REML", "random", "REML", "restricted maximum likelihood", iterative=True,
           fisher_scoring=True, fallback="try --method PM or DL",
           metafor='rma(method="REML")', reference='Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the random-effects model. J Educ Behav Stat 30:261-293.'),
    Method("ML", "random", "ML", "maximum likelihood", iterative=True, fisher_scoring=True,
           fallback="try --method REML, PM or DL",
           metafor='rma(method="ML")', reference='Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the random-effects model. J Educ Behav Stat 30:261-293.'),
    Method("PM", "random", "PM", "Paule-Mandel", iterative=True, fallback="try --method DL",
           metafor='rma(method="PM")', reference='Paule RC, Mandel J (1982). Consensus values and weighting factors. J Res Natl Bur Stand 87:377-385.'),
    Method("HE", "random", "HE", "Hedges",
           metafor='rma(method="HE")', reference='Hedges LV (1983). A random effects model for effect sizes. Psychol Bull 93:388-395.'),
    Method("SJ", "random", "SJ", "Sidik-Jonkman",
           metafor='rma(method="SJ")', reference='Sidik K, Jonkman JN (2005). Simple heterogeneity variance estimation for meta-analysis. J R Stat Soc C 54:367-384.'),
    Method("HS", "random", "HS", "Hunter-Schmidt",
           metafor='rma(method="HS")', reference='Hunter JE, Schmidt FL (2004). Methods of Meta-Analysis, 2nd ed. Sage.'),
    Method("EB", "random", "EB", "empirical Bayes", iterative=True, fisher_scoring=True,
           fallback="try --method PM (the same estimator, found by root finding) or DL",
           metafor='rma(method="EB")', reference='Morris CN (1983). Parametric empirical Bayes inference. J Am Stat Assoc 78:47-55.'),
    Method("GLMM", "glmm", "GLMM", "binomial-normal GLMM", iterative=True, inverse_variance=False,
           measures=("PLO", "OR"), hksj=False, default_measure={1: "PLO", 2: "OR"}, revman="GLMM",
           metafor='rma.glmm()', reference='Stijnen T, Hamza TH, Ozdemir P (2010). Random effects meta-analysis of event outcome in the framework of the generalized linear mixed model. Stat Med 29:3046-3067.'),
):
    register_method(_m)


def _resolve(target):
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


__all__ = ["FAMILIES", "Measure", "Method", "Scale", "add_table_family", "default_measure",
           "families", "family_columns", "is_measure", "is_method", "measure", "measures", "method", "methods",
           "register_measure", "register_method", "remove_table_family", "table_families",
           "unregister_measure"]
