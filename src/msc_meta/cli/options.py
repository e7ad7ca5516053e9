"""Options shared by several commands, so that each is spelled and documented once."""

from __future__ import annotations

import click

MEASURES = ("PR", "PLO", "PFT", "PAS", "RR", "OR", "RD")
METHODS = ("FE", "MH", "PETO", "DL", "REML", "ML", "PM", "HE", "SJ", "HS", "EB", "GLMM")


def data_option(f):
    return click.option(
        "--data", "data_path", type=click.Path(dir_okay=True, path_type=str), default=None,
        help="Outcome table (CSV). Default: the curated table shipped with msc-meta.",
    )(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout instead of the table.")(f)


class Timepoint(click.ParamType):
    """WEEKS, or ``blank`` (rows that state no time point) or ``any`` (all time points)."""

    name = "timepoint"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        if text in ("blank", "any"):
            return text
        try:
            return float(text)
        except ValueError:
            self.fail(f"{value!r} is not a number of weeks, 'blank' or 'any'", param, ctx)


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


def selection_options(f):
    f = timepoint_unit_options(f)
    f = click.option("--outcome", required=True, metavar="KEY",
                     help="Outcome key, e.g. fistula_closure (see `msc-meta studies`).")(f)
    return f


def fit_options(f):
    """--measure --method --hksj --cc --level: the options of any fitted model."""
    f = click.option("--level", type=click.FloatRange(min=50, max=99.99), default=95.0, show_default=True,
                     help="Confidence level in percent.")(f)
    f = click.option("--cc", type=click.FloatRange(min=0), default=0.5, show_default=True,
                     help="Continuity correction added to every cell of a study with a zero cell "
                          "(PR, PLO, RR, OR, RD; as escalc(add=, to='only0')).")(f)
    f = click.option("--hksj", is_flag=True,
                     help="Hartung-Knapp-Sidik-Jonkman CI (t with k-1 df; metafor test='knha').")(f)
    f = click.option("--method", type=click.Choice(METHODS, case_sensitive=False), default="REML",
                     show_default=True, metavar=f"[{'|'.join(METHODS)}]",
                     help="FE inverse-variance common effect; MH Mantel-Haenszel; PETO; "
                          "a random-effects tau² estimator as metafor rma(); or GLMM "
                          "(binomial-normal model for PLO or OR, as rma.glmm()).")(f)
    f = click.option("--measure", type=click.Choice(MEASURES, case_sensitive=False), default=None,
                     metavar=f"[{'|'.join(MEASURES)}]",
                     help="Effect measure as metafor escalc(). Default: PLO for single-arm "
                          "rows, RR for comparisons.")(f)
    return f


def model_options(f):
    """The fit options plus --pi, as in the CLI contract for `pool`."""
    f = click.option("--pi", "pi_method", type=click.Choice(["hts", "z"], case_sensitive=False), default="hts",
                     show_default=True,
                     help="Prediction interval: hts = t with k-2 df (Higgins et al. 2009); "
                          "z = normal quantile (metafor predict()).")(f)
    return fit_options(f)


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
