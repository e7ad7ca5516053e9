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
shared rules of that family (``msc_meta.effects``: missing counts, the
continuity correction, drop00) and returns ``(yi, vi)`` as numpy arrays.
For the ``counts`` family: one arm ``f(x, m)`` (events, non-events), two
arms ``f(a, b, c, d)`` (the 2x2 cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Callable

# ---------------------------------------------------------------------------
# measures
# ---------------------------------------------------------------------------

COUNTS_ONE_ARM = ("events_t", "n_t")
COUNTS_TWO_ARMS = ("events_t", "n_t", "events_c", "n_c")


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
    family: str = "counts"         # the input type: counts (more with the outcome-types issue)
    bounds: tuple[float, float] | None = None   # range on the natural scale, for linear axes

    @property
    def arms(self) -> int:
        """2 when the measure compares a treatment with a control arm, else 1."""
        return 2 if any(col.endswith("_c") for col in self.inputs) else 1

    @property
    def two_arm(self) -> bool:
        return self.arms == 2

    def effect_function(self) -> Callable:
        return _resolve(self.effect)


_MEASURES: dict[str, Measure] = {}


def register_measure(measure: Measure) -> Measure:
    """Add (or replace) a measure; returns it. The CLI's choices are read at start-up."""
    _MEASURES[measure.name.upper()] = measure
    return measure


def unregister_measure(name: str) -> None:
    """Remove a measure (for tests that register a toy one)."""
    _MEASURES.pop(name.upper(), None)


def measure(name: str) -> Measure:
    """The measure called ``name`` (any case); ``KeyError`` with the known names otherwise."""
    try:
        return _MEASURES[str(name).upper()]
    except KeyError:
        raise KeyError(f"unknown measure {name!r}; known: {', '.join(_MEASURES)}") from None


def is_measure(name) -> bool:
    return isinstance(name, str) and name.upper() in _MEASURES


def measures(*, arms: int | None = None, family: str | None = None) -> tuple[str, ...]:
    """Names of the registered measures, in registration order, optionally filtered."""
    return tuple(m.name for m in _MEASURES.values()
                 if (arms is None or m.arms == arms) and (family is None or m.family == family))


def default_measure(two_arm: bool, family: str = "counts") -> str:
    """What ``pool`` uses when no ``--measure`` is given (the contract: PLO for
    single-arm rows, RR for comparisons)."""
    return _DEFAULTS[(family, 2 if two_arm else 1)]


_DEFAULTS = {("counts", 1): "PLO", ("counts", 2): "RR"}

_E = "msc_meta.effects:"

for _m in (
    Measure("PR", "Proportion", "Proportion", "proportion", "Proportion", COUNTS_ONE_ARM,
            _E + "raw_proportion", test_null_text="proportion = 0", bounds=(0.0, 1.0)),
    Measure("PLO", "Proportion", "Proportion", "logit proportion", "Logit proportion",
            COUNTS_ONE_ARM, _E + "logit_proportion", back="expit",
            test_null_text="proportion = 0.5", bounds=(0.0, 1.0)),
    Measure("PFT", "Proportion", "Proportion", "Freeman-Tukey double arcsine",
            "Double arcsine proportion", COUNTS_ONE_ARM, _E + "double_arcsine_proportion",
            back="ipft", uses_cc=False, test_null_text="proportion = 0", bounds=(0.0, 1.0)),
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
):
    register_measure(_m)


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
    inverse_variance: bool = True  # pools yi, vi (else the raw counts)
    measures: tuple[str, ...] | None = None   # the measures it pools (None: every measure)
    hksj: bool = True              # takes --hksj (metafor test="knha")
    fallback: str = ""             # what to try when it does not converge
    revman: str = "IV"             # RevMan's name of the method in a forest plot's header
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
    Method("FE", "common", "FE", "inverse variance"),
    Method("MH", "common", "MH", "Mantel-Haenszel", inverse_variance=False,
           measures=("RR", "OR", "RD"), hksj=False, default_measure={1: "RR", 2: "RR"},
           revman="M-H"),
    Method("PETO", "common", "Peto", "Peto", inverse_variance=False, measures=("OR",), hksj=False,
           default_measure={1: "OR", 2: "OR"}, revman="Peto"),
    Method("DL", "random", "DL", "DerSimonian-Laird"),
    Method("REML", "random", "REML", "restricted maximum likelihood", iterative=True,
           fallback="try --method PM or DL"),
    Method("ML", "random", "ML", "maximum likelihood", iterative=True,
           fallback="try --method REML, PM or DL"),
    Method("PM", "random", "PM", "Paule-Mandel", iterative=True, fallback="try --method DL"),
    Method("HE", "random", "HE", "Hedges"),
    Method("SJ", "random", "SJ", "Sidik-Jonkman"),
    Method("HS", "random", "HS", "Hunter-Schmidt"),
    Method("EB", "random", "EB", "empirical Bayes", iterative=True,
           fallback="try --method REML, PM or DL"),
    Method("GLMM", "glmm", "GLMM", "binomial-normal GLMM", iterative=True, inverse_variance=False,
           measures=("PLO", "OR"), hksj=False, default_measure={1: "PLO", 2: "OR"}, revman="GLMM"),
):
    register_method(_m)


def _resolve(target):
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


__all__ = ["Measure", "Method", "default_measure", "is_measure", "is_method", "measure",
           "measures", "method", "methods", "register_measure", "register_method",
           "unregister_measure"]
