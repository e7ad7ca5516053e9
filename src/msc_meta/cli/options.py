"""Options shared by several commands, so that each is spelled and documented once."""

from __future__ import annotations

import math
import re

import click

from msc_meta import registry
from msc_meta.data import schema as _schema  # noqa: F401  (registers the families the loader reads)


class Registered(click.Choice):
    """--measure/--method choices read from the registry when the option is parsed, so that
    a measure registered by a plug-in or a test is a valid choice."""

    def __init__(self, names):
        self._names = names
        super().__init__(names(), case_sensitive=False)

    @property
    def choices(self):
        return tuple(self._names())

    @choices.setter
    def choices(self, value):
        pass


MEASURE_CHOICE = Registered(registry.measures)
METHOD_CHOICE = Registered(registry.methods)


def data_option(f):
    return click.option(
        # readable=False: click's own check would report an unreadable file in
        # its three-line usage format; the loader says it in one line instead.
        "--data", "data_path", type=click.Path(dir_okay=True, readable=False, path_type=str), default=None,
        help="Outcome table (CSV). Default: the curated table shipped with msc-meta.",
    )(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout instead of the table.")(f)


def table_file_options(*, required: bool, output_help: str):
    """``-o/--output FILE``, ``--format csv|json`` and ``--force`` of a command that writes a
    table (export, sof); :func:`table_format` reads the format."""
    def decorate(f):
        f = click.option("--force", is_flag=True, help="Replace FILE if it exists.")(f)
        f = click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default=None,
                         help="Format of -o: csv or json (default: from the file name, "
                              "else csv).")(f)
        return click.option("-o", "--output", "output", required=required, default=None,
                            metavar="FILE", help=output_help)(f)
    return decorate


def table_format(output, fmt) -> str:
    """The format of a table file: ``--format``, else json for a .json name, else csv."""
    return fmt or ("json" if str(output).lower().endswith(".json") else "csv")


class Timepoint(click.ParamType):
    """WEEKS, or ``blank`` (rows that state no time point) or ``any`` (all time points).

    WEEKS is read by the parser of the ``timepoint_weeks`` column
    (``msc_meta.data.load.weeks_from_text``): plain decimal digits from 0 to
    5200, so ``2_4``, ``-0``, ``1e30``, ``nan`` and ``inf`` are refused here as
    they are in a table.
    """

    name = "timepoint"

    def convert(self, value, param, ctx):
        from msc_meta.data.load import NumberError, weeks_from_text

        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = repr(float(value)) if math.isfinite(value) else str(value)
        text = str(value).strip()
        if text.lower() in ("blank", "any"):
            return text.lower()
        try:
            weeks = weeks_from_text(text)
        except NumberError as err:
            self.fail(f"{err}; or 'blank' or 'any'", param, ctx)
        if weeks is None:
            self.fail("give a number of weeks, e.g. 24, or 'blank' or 'any'", param, ctx)
        return weeks


# A decimal number as typed on a command line: digits, one optional point, an
# optional exponent. Python's float() would also take 1_0, nan, inf, ' 5 '.
_OPTION_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$", re.ASCII)


class BoundedFloat(click.FloatRange):
    """A float option that says its accepted range in words, and refuses nan, inf and ``1_0``.

    ``min``/``max`` are the closed range; ``zero_or_from`` admits 0 besides the range
    ``[zero_or_from, max]`` (``--cc``: 0 means no correction, tiny positives only overflow).
    """

    def __init__(self, min: float, max: float, accepted: str, zero_or_from: float | None = None):
        super().__init__(min=min, max=max)
        self.accepted = accepted
        self.zero_or_from = zero_or_from

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            text = str(value).strip()
            if not _OPTION_NUMBER.match(text):
                self.fail(f"{value!r} is not a number; {self.accepted}", param, ctx)
            number = float(text)
        ok = math.isfinite(number) and self.min <= number <= self.max
        if ok and self.zero_or_from is not None:
            ok = number == 0 or number >= self.zero_or_from
        if not ok:
            self.fail(f"{value!r} is out of range; {self.accepted}", param, ctx)
        return number

    def _describe_range(self) -> str:
        return self.accepted


# --level: below 50 % an interval is more likely to miss than to cover; 99.99 %
# is as far as the normal and t quantiles stay meaningful with a few studies.
LEVEL = BoundedFloat(50, 99.99, "the confidence level is a percentage from 50 to 99.99, e.g. 95")

# --cc: a fraction of a participant added to each cell of a study with a zero
# cell. Published choices (0.5 by default in metafor, RevMan and meta; 0.1,
# 0.01 and 1 in sensitivity analyses, e.g. Sweeting et al. 2004) lie in
# [0.001, 1]. Below 0.001 a zero cell's log odds and variance (1/cc) reach
# magnitudes where the study only vanishes from the pool (or, below ~1e-308,
# the arithmetic overflows); above 1 the correction outweighs the data of a
# small arm. 0 turns the correction off (such studies are then left out).
CC = BoundedFloat(0, 1, "the continuity correction is 0 (none) or a number from 0.001 to 1, e.g. 0.5",
                  zero_or_from=0.001)


def timepoint_unit_options(f):
    """--timepoint and --unit, spelled once for every command that selects rows."""
    f = click.option("--unit", type=click.Choice(["patient", "fistula"]), default=None,
                     help="Keep rows whose n counts patients or fistulas.")(f)
    f = click.option("--timepoint", type=Timepoint(), default=None, metavar="WEEKS",
                     help="Keep rows assessed at this time point (weeks), e.g. 24 or 208; "
                          "'blank' keeps the rows whose source states no time point, 'any' "
                          "pools every time point together (each study once; the output "
                          "lists the time points).")(f)
    return f


def outcome_or_all_options(dest: str, into: str):
    """--outcome (optional) or --all, with --timepoint and --unit: for commands that can cover
    every analysis of the table (export, report). ``dest`` names --all's parameter."""
    def decorate(f):
        f = click.option("--all", dest, is_flag=True,
                         help=f"Every poolable outcome x time point x unit of the table {into}.")(f)
        f = timepoint_unit_options(f)
        return click.option("--outcome", default=None, metavar="KEY",
                            help="Outcome key, e.g. fistula_closure (see `msc-meta studies`); "
                                 "or use --all.")(f)
    return decorate


def require_outcome_or_all(outcome, timepoint, unit, every: bool, verb: str) -> None:
    """--outcome KEY or --all, not both and not neither (``verb``: what --all does, e.g. "exports")."""
    from msc_meta.errors import UsageError

    if every and (outcome or timepoint is not None or unit):
        raise UsageError(f"--all {verb} every outcome, time point and unit: drop --outcome, "
                         "--timepoint and --unit, or drop --all")
    if not every and not outcome:
        raise UsageError("give --outcome KEY (see `msc-meta studies`) or --all")


def selection_options(f):
    f = timepoint_unit_options(f)
    f = click.option("--outcome", required=True, metavar="KEY",
                     help="Outcome key, e.g. fistula_closure (see `msc-meta studies`).")(f)
    return f


def fit_options(f):
    """--measure --method --hksj --cc --level: the options of any fitted model."""
    f = click.option("--level", type=LEVEL, default=95.0, show_default=True,
                     help="Confidence level in percent, from 50 to 99.99.")(f)
    f = click.option("--cc", type=CC, default=0.5, show_default=True,
                     help="Continuity correction added to every cell of a study with a zero cell "
                          "(PR, PLO, RR, OR, RD; as escalc(add=, to='only0')): 0 (none) or "
                          "0.001 to 1.")(f)
    f = click.option("--hksj", is_flag=True,
                     help="Hartung-Knapp-Sidik-Jonkman CI (t with k-1 df; metafor test='knha').")(f)
    f = click.option("--method", type=METHOD_CHOICE, default="REML",
                     show_default=True, metavar=f"[{'|'.join(registry.methods())}]",
                     help="FE inverse-variance common effect; MH Mantel-Haenszel; PETO; "
                          "a random-effects tau² estimator as metafor rma(); or GLMM "
                          "(binomial-normal model for PLO or OR, as rma.glmm()).")(f)
    f = click.option("--measure", type=MEASURE_CHOICE, default=None,
                     metavar=f"[{'|'.join(registry.measures())}]",
                     help="Effect measure as metafor escalc(). Default: PLO for single-arm "
                          "rows, RR for comparisons; for other outcome types MD, MC, MN, IRR, "
                          "IR, ZCOR or GEN, from the columns the rows fill.")(f)
    return f


def model_options(f):
    """The fit options plus --pi, as in the CLI contract for `pool`."""
    f = click.option("--pi", "pi_method", type=click.Choice(["hts", "z"], case_sensitive=False), default="hts",
                     show_default=True,
                     help="Prediction interval: hts = t with k-2 df (Higgins et al. 2009); "
                          "z = normal quantile (metafor predict()).")(f)
    return fit_options(f)


# --r: an assumed pre/post correlation of paired means; strictly inside (-1, 1).
R_VALUE = BoundedFloat(-0.9999, 0.9999, "the assumed correlation r is a number between -1 and 1 "
                       "(exclusive), e.g. 0.5")


def outcome_type_options(f):
    """--r and --scale: what outcome types beyond counts may need (paired means, generic effects)."""
    f = click.option("--scale", type=click.Choice(["log", "identity"], case_sensitive=False),
                     default=None,
                     help="Scale of generic effects (GEN): log for ratios (HR, adjusted OR), "
                          "identity for differences. Needed for rows that give an effect with "
                          "its CI (effect, effect_ci_low, effect_ci_high).")(f)
    f = click.option("--r", "r", type=R_VALUE, default=None, metavar="VALUE",
                     help="Assumed pre/post correlation for paired means (MC, SMCC, SMCR) on rows "
                          "that give no r; always reported in the notes.")(f)
    return f


def multiarm_option(f):
    """--multiarm: how comparisons that share one control arm are pooled (default combine)."""
    return click.option(
        "--multiarm", type=click.Choice(["combine", "split", "keep"], case_sensitive=False),
        default="combine", show_default=True,
        help="Comparisons sharing one control arm (same trial, identical control counts): "
             "combine their treatment arms, split the control evenly among them, or keep "
             "them (control counted several times; Cochrane Handbook 23.3.4).")(f)


def study_ci_option(f):
    """--study-ci: the per-study interval of single-arm proportions."""
    return click.option(
        "--study-ci", "study_ci", type=click.Choice(["exact", "wilson", "wald"], case_sensitive=False),
        default=None,
        help="Per-study CI of single-arm proportions (PR, PLO, PFT, PAS): exact "
             "Clopper-Pearson (default, as R meta's metaprop), Wilson score, or wald "
             "(metafor's escalc-scale interval). Two-arm measures: Wald only.")(f)
