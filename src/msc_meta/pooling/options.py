"""The options of a pool: one validated object, built once and passed whole.

:class:`PoolOptions` holds what every fitted analysis needs (measure,
method, HKSJ, prediction interval, continuity correction, level, shared
control arms, study intervals). :meth:`PoolOptions.build` is the one place
where they are checked, alone and together; the CLI builds the object once
from its flags and every command, the batch engine and the results carry
it.

Errors speak the library's vocabulary (``method='MH' pools RR, OR or RD``);
:class:`OptionError` keeps the option names apart from the prose so that
the CLI shows the same message with its flags (``--method MH pools ...``).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, fields, replace

from msc_meta import registry
from msc_meta.errors import UsageError

PI_METHODS = ("hts", "z")
MULTIARM_MODES = ("combine", "split", "keep")
STUDY_CI_METHODS = ("exact", "wilson", "wald")
SCALES = ("log", "identity")
LEVEL_RANGE = (50.0, 99.99)
CC_RANGE = (0.001, 1.0)          # or exactly 0 (no correction)


class OptionError(UsageError):
    """A bad option, worded for whoever asked: the library or the command line.

    ``template`` names options as format fields: ``{method:MH}`` is the
    option ``method`` with the value MH, ``{hksj:}`` the option alone. The
    library reads them as ``method='MH'`` and ``hksj``; :meth:`for_cli` as
    ``--method MH`` and ``--hksj``.
    """

    def __init__(self, template: str):
        self.template = template
        super().__init__(self.render("library"))

    def render(self, vocabulary: str) -> str:
        return _Formatter(vocabulary).format(self.template)

    def for_cli(self) -> str:
        return self.render("cli")


class _Formatter(string.Formatter):
    def __init__(self, vocabulary):
        self.vocabulary = vocabulary

    def get_value(self, key, args, kwargs):
        return key

    def format_field(self, name, spec):
        if self.vocabulary == "cli":
            flag = "--" + name.replace("_", "-")
            return f"{flag} {spec}" if spec else flag
        return f"{name}={spec!r}" if spec else name


def _quote(value) -> str:
    """A user's value inside a template: braces doubled so that format() keeps them."""
    return str(value).replace("{", "{{").replace("}", "}}")


@dataclass(frozen=True)
class PoolOptions:
    """Validated options of one pool (or of every pool of a batch)."""

    measure: str | None = None       # None: chosen from the rows (registry.default_measure)
    method: str = "REML"
    hksj: bool = False
    pi: str = "hts"
    cc: float = 0.5
    level: float = 95.0
    multiarm: str = "combine"
    study_ci: str | None = "wald"    # None: exact for proportions (the pool command's default)
    r: float | None = None           # assumed pre/post correlation of paired means (--r)
    scale: str | None = None         # scale of generic effects (GEN: log | identity; --scale)

    @classmethod
    def build(cls, **values) -> "PoolOptions":
        """Check every option alone and together; raise :class:`OptionError`.

        An option not given (or given as None, but for ``study_ci``, where
        None asks for the pool command's default) takes the default of the
        fields above: the defaults live in one place.
        """
        defaults = cls()
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UsageError(f"unknown pooling option(s): {', '.join(unknown)}")
        given = {k: v for k, v in values.items() if v is not None or k == "study_ci"}
        merged = {**{name: getattr(defaults, name) for name in names}, **given}
        return cls._checked(**merged)

    @classmethod
    def _checked(cls, measure, method, hksj, pi, cc, level, multiarm, study_ci, r=None,
                 scale=None) -> "PoolOptions":
        method = _method(method)
        measure = None if measure is None else _measure(measure)
        if measure is not None:
            check_measure_method(measure, method)
        r = _r(r)
        scale = None if scale is None else _choice("scale", scale, SCALES)
        if measure is not None:
            check_measure_scale(measure, scale)
        spec = registry.method(method)
        if hksj and not spec.hksj:
            # metafor's rma.mh(), rma.peto() and rma.glmm() have no test="knha"
            raise OptionError(f"{{hksj:}} applies to inverse-variance fits, not {{method:{method}}}; "
                              "use {method:FE} or a random-effects method")
        pi = _choice("pi", pi, PI_METHODS)
        multiarm = _choice("multiarm", multiarm, MULTIARM_MODES)
        if spec.kind == "glmm" and multiarm == "split":
            raise OptionError(f"{{method:{method}}} fits binomial counts, and {{multiarm:split}} makes "
                              "the shared control's counts non-integer; use {multiarm:combine} (or keep)")
        if study_ci is not None:
            study_ci = _choice("study_ci", study_ci, STUDY_CI_METHODS)
        return cls(measure=measure, method=method, hksj=bool(hksj), pi=pi, cc=_cc(cc),
                   level=_level(level), multiarm=multiarm, study_ci=study_ci, r=r, scale=scale)

    def with_measure(self, measure: str) -> "PoolOptions":
        """The same options with the measure the rows decided (checked against the method)."""
        measure = _measure(measure)
        check_measure_method(measure, self.method)
        check_measure_scale(measure, self.scale)
        return replace(self, measure=measure)

    def to_dict(self) -> dict:
        return {"measure": self.measure, "method": self.method, "hksj": self.hksj, "pi": self.pi,
                "cc": self.cc, "level": self.level, "multiarm": self.multiarm,
                "study_ci": self.study_ci,
                # the options of other outcome types only when given (a locked table's options stay)
                **{name: getattr(self, name) for name in ("r", "scale")
                   if getattr(self, name) is not None}}


def check_measure_scale(measure: str, scale: str | None) -> None:
    """``scale`` (--scale) belongs to the measures that take one (GEN)."""
    if scale is None:
        return
    scaled = registry.measures(scaled=True, every=True)
    if measure.upper() not in scaled:
        raise OptionError(f"{{scale:{_quote(scale)}}} is the scale of generic effects "
                          f"({', '.join(scaled)}); {_quote(measure)} has its own scale")


def check_measure_method(measure: str, method: str) -> None:
    """Refuse a method that cannot pool the measure (MH: RR, OR, RD; Peto: OR; GLMM: PLO, OR)."""
    spec = registry.method(method)
    if spec.pools(measure):
        return
    family = registry.measure(measure).family
    if family != "counts" and not spec.inverse_variance:
        raise OptionError(f"{{method:{method}}} pools event counts only; {_quote(measure)} is a "
                          f"measure of {registry.FAMILIES[family]} (family {family}): use "
                          "{method:FE} or a random-effects method such as REML")
    allowed = spec.measures
    if len(allowed) == 1:
        raise OptionError(f"{{method:{method}}} pools {registry.measure(allowed[0]).title.lower()}s "
                          f"only; use {{measure:{allowed[0]}}} (not {_quote(measure)})")
    names = ", ".join(allowed[:-1]) + " or " + allowed[-1]
    if spec.kind == "glmm":
        raise OptionError(f"{{method:{method}}} fits proportions (PLO) or odds ratios (OR) by their "
                          f"binomial likelihood; use {{measure:PLO}} or OR (not {_quote(measure)})")
    raise OptionError(f"{{method:{method}}} pools {names}, not {_quote(measure)}; "
                      f"use {{measure:{'|'.join(allowed)}}} or another method")


def _method(value) -> str:
    return _registered("method", value, registry.is_method, registry.methods())


def _measure(value) -> str:
    return _registered("measure", value, registry.is_measure, registry.measures())


def _registered(option, value, known, names) -> str:
    name = str(value).upper()
    if not known(name):
        raise OptionError(f"{{{option}:{_quote(name)}}}: unknown {option}; choose one of "
                          f"{', '.join(names)}")
    return name


def _choice(option, value, choices) -> str:
    value = str(value).lower()
    if value not in choices:
        raise OptionError(f"{{{option}:{_quote(value)}}}: choose one of {', '.join(choices)}")
    return value


def _r(value) -> float | None:
    if value is None:
        return None
    r = float(value)
    if not (math.isfinite(r) and -1.0 < r < 1.0):
        raise OptionError(f"{{r:{_quote(value)}}}: the assumed correlation is a number between "
                          "-1 and 1 (exclusive), e.g. 0.5")
    return r


def _cc(value) -> float:
    cc = float(value)
    if not (cc == 0.0 or CC_RANGE[0] <= cc <= CC_RANGE[1]):
        raise OptionError(f"{{cc:{_quote(value)}}}: the continuity correction is 0 (none) or a "
                          f"number from {CC_RANGE[0]:g} to {CC_RANGE[1]:g}, e.g. 0.5")
    return cc


def _level(value) -> float:
    level = float(value)
    if not (math.isfinite(level) and LEVEL_RANGE[0] <= level <= LEVEL_RANGE[1]):
        raise OptionError(f"{{level:{_quote(value)}}}: the confidence level is a percentage from "
                          f"{LEVEL_RANGE[0]:g} to {LEVEL_RANGE[1]:g}, e.g. 95")
    return level


__all__ = ["OptionError", "PoolOptions", "check_measure_method", "check_measure_scale"]
