"""``msc-meta sof``: GRADE summary of findings, one outcome or several (absolute effects, certainty)."""

from __future__ import annotations

import click

from msc_meta.cli.forest import multiarm_options
from msc_meta.cli.options import (data_option, json_option, model_options, outcome_type_options,
                                  table_file_options, table_format, timepoint_unit_options)

EPILOG = """\b
Examples:
  msc-meta sof --outcome fistula_closure --timepoint 24 --unit patient
  msc-meta sof --all --timepoint 208 --brief
  msc-meta sof --outcome fistula_closure --outcome partial_fistula_closure --timepoint 208
  msc-meta sof --all --timepoint 208 -o sof.csv
  msc-meta sof --data my_table.csv --all --certainty grade.csv -o sof.csv
  msc-meta sof --outcome fistula_closure --timepoint 24 --unit patient --risk-of-bias serious \\
      --inconsistency not-serious --indirectness not-serious --imprecision serious \\
      --publication-bias undetected
  msc-meta sof --data my_table.csv --outcome pain --measure SMD --certainty grade.csv

\b
How the absolute effects are made (per outcome, from the pooled result):
  risks (RR, OR, RD): applied to a control risk CR: CR x RR, OR*CR/(1-CR+OR*CR),
    CR + RD, per 1,000; CR is the pooled control-arm risk (a shared control
    arm counted once), --control-risk, or assumed_control in the file; NNT
    (Altman 1998) in the notes;
  mean difference, ratio of means, mean change, rate ratio or difference:
    applied to the comparator's mean (or rate per 1,000 person-time) from the
    pooled studies, or assumed_control; the difference in the outcome's units;
  SMD / SMC: Cohen's rule of thumb, and SMD x SD in familiar units only when
    the file gives sd;
  one-group proportions, means and rates: the pooled value, no comparator.

\b
Certainty (GRADE): only from the rater. Give the five domains (risk of bias,
inconsistency, indirectness, imprecision, publication bias: not serious,
serious or very serious) with the options (every outcome) or per outcome in
a CSV file (--certainty FILE; columns in docs/methods.md): randomised
evidence starts high, observational low; each serious concern -1, very
serious -2; large effect, dose-response and confounding may upgrade
observational evidence. Anything not rated prints "not rated"; computed
facts (k, I², CI crossing no effect, optimal information size) print as
hints under the table, never as a rating.
"""

DOMAIN_OPTIONS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision",
                  "publication_bias")


def _domain_options(f):
    for domain in reversed(DOMAIN_OPTIONS):
        words = "not-serious|serious|very-serious"
        if domain == "publication_bias":
            words += "|undetected|strongly-suspected"
        f = click.option(f"--{domain.replace('_', '-')}", domain, default=None, metavar="RATING",
                         help=f"GRADE {domain.replace('_', ' ')} for every outcome: {words}.")(f)
    return f


@click.command(epilog=EPILOG)
@data_option
@click.option("--outcome", "outcomes", multiple=True, metavar="KEY",
              help="Outcome key (see `msc-meta studies`); repeat for a table of several outcomes.")
@click.option("--all", "every", is_flag=True,
              help="Every outcome of the table (narrowed by --timepoint and --unit), one row each.")
@timepoint_unit_options
@model_options
@outcome_type_options
@multiarm_options
@click.option("--by", "by", metavar="COLUMN", default=None,
              help="One row per value of COLUMN (as pool --by; one --outcome only).")
@click.option("--control-risk", type=float, default=None, metavar="R",
              help="Assumed control risk as a proportion (0-1) for risk outcomes. Default: the "
                   "pooled control-arm risk of the studies in the pool.")
@click.option("--events", type=click.Choice(["beneficial", "harmful"]), default="beneficial",
              show_default=True,
              help="Are the outcome's events good (closure, remission) or bad (adverse events)? "
                   "Decides NNTB vs NNTH (the file's events column sets it per outcome).")
@click.option("--certainty", "certainty_path", metavar="FILE", default=None,
              help="CSV of the rater's GRADE inputs, one row per outcome (see docs/methods.md).")
@click.option("--design", type=click.Choice(["randomised", "observational"]), default=None,
              help="Design the certainty starts from (high or low), for every outcome. "
                   "Default: from the pooled rows' design column.")
@_domain_options
@click.option("--intervention", "label_t", default=None, metavar="NAME",
              help="Name of the intervention in the table's title and header "
                   "[default: MSC for the curated table, Treatment for --data].")
@click.option("--brief", is_flag=True,
              help="The table only: no per-outcome certainty inputs, hints and notes under it.")
@table_file_options(required=False,
                    output_help="Write the table as CSV (or JSON: --format json or a .json "
                                "name); - for stdout.")
@json_option
def sof(data_path, outcomes, every, timepoint, unit, measure, method, hksj, pi_method, cc, level,
        r, scale, multiarm, study_ci, by, control_risk, events, certainty_path, design,
        risk_of_bias, inconsistency, indirectness, imprecision, publication_bias, label_t, brief,
        output, fmt, force, as_json):
    """GRADE summary of findings: one row per outcome, absolute effects and certainty.

    Pools each outcome exactly as `pool` does (same selection, options and
    exclusions) and shows its relative effect, absolute effects, participants
    (studies) and the certainty of the evidence as the rater grades it.
    """
    from msc_meta.errors import UsageError
    from msc_meta.io_safe import check_output_early
    from msc_meta.pooling.certainty import ratings_from_options

    if control_risk is not None and not 0.0 <= control_risk <= 1.0:
        raise UsageError(f"--control-risk {control_risk:g}: give a proportion between 0 and 1 "
                         f"(e.g. 0.3 for 300 per 1,000)")
    if every and outcomes:
        raise UsageError("--all covers every outcome: drop --outcome, or drop --all")
    if not every and not outcomes:
        raise UsageError("give --outcome KEY (repeat it for several outcomes; see `msc-meta "
                         "studies`) or --all")
    if by and (every or len(outcomes) > 1):
        raise UsageError("--by splits one outcome: give one --outcome with --by")
    option_ratings = ratings_from_options(dict(
        risk_of_bias=risk_of_bias, inconsistency=inconsistency, indirectness=indirectness,
        imprecision=imprecision, publication_bias=publication_bias, design=design))
    if option_ratings is not None and certainty_path:
        raise UsageError("give the ratings in the --certainty file or as options, not both")
    if output is not None:
        fmt = table_format(output, fmt)
        check_output_early(output, force=force)      # fail before pooling anything

    from msc_meta.data import load_table

    table = load_table(data_path)
    if label_t is None:
        from msc_meta.data.arms import arm_labels

        label_t = arm_labels(data_path)[0]
    rater_rows = ()
    if certainty_path:
        from msc_meta.pooling.certainty import read_certainty_file

        rater_rows = read_certainty_file(certainty_path, table.outcomes())
    options = dict(measure=measure, method=method, hksj=hksj, pi=pi_method, cc=cc, level=level,
                   multiarm=multiarm, study_ci=study_ci, r=r, scale=scale)
    single = not every and len(outcomes) == 1
    analyses = _analyses(table, outcomes, every, timepoint, unit, by, options)
    rows = findings_for(table, analyses, rater_rows, certainty_path, option_ratings,
                     control_risk=control_risk, events=events)
    _unused_ratings(rater_rows, rows, certainty_path)

    from msc_meta.report import sof_table

    grouped = bool(by) or not single
    if output is not None:
        _write(rows, output, fmt, force, grouped)
    elif as_json:
        click.echo(sof_table.to_json(rows, grouped=grouped))
    else:
        sof_table.print_report(rows, label_t=label_t, brief=brief)


def _analyses(table, outcomes, every, timepoint, unit, by, options) -> list:
    """The pooled analyses, each selected exactly as `pool` selects it (pooling/selection.py)."""
    from msc_meta.errors import UsageError
    from msc_meta.pooling.analysis import run_pool, run_pool_all
    from msc_meta.pooling.subgroups import run_pool_by
    from msc_meta.pooling.options import PoolOptions
    from msc_meta.report.export import selection_label
    from msc_meta.report.terminal import diagnostic

    if not every and len(outcomes) == 1:
        selection = dict(options, outcome=outcomes[0], timepoint=timepoint, unit=unit)
        if by:
            analyses, _ = run_pool_by(table, by, **selection)
            return [a for a in analyses if a.result is not None]
        return [run_pool(table, **selection)]
    keys = _keys(table, outcomes, every, timepoint, unit)
    pooled = run_pool_all(table, keys, PoolOptions.build(**options))
    analyses = []
    for (outcome, weeks, key_unit), result in zip(keys, pooled):
        if isinstance(result, UsageError):
            when = None if weeks == "blank" else weeks
            if not every:
                raise UsageError(f"{selection_label(outcome, when, key_unit)}: {result}")
            diagnostic(f"msc-meta: note: skipped {selection_label(outcome, when, key_unit)}: {result}")
        else:
            analyses.append(result)
    if not analyses:
        raise UsageError("nothing to summarise: no selected outcome could be pooled")
    return analyses


def _keys(table, outcomes, every, timepoint, unit) -> list:
    """(outcome, time point, unit) of every analysis asked for, in the table's order of analyses."""
    from msc_meta.data.keys import key
    from msc_meta.errors import UsageError
    from msc_meta.pooling.selection import analysis_keys

    def wanted(k):
        return ((timepoint in (None, "any") or k[1] == timepoint)
                and (unit is None or k[2] == unit))

    every_key = [k for k in analysis_keys(table) if wanted(k)]
    if every:
        if not every_key:
            raise UsageError("no outcome of the table has rows at this --timepoint/--unit")
        return every_key
    keys = []
    for outcome in dict.fromkeys(outcomes):
        mine = [k for k in every_key if key(k[0]) == key(outcome)]
        if not mine:
            raise UsageError(f"outcome '{outcome}' has no rows at this --timepoint/--unit "
                             f"(see `msc-meta studies --outcome {outcome}`)")
        keys.extend(mine)
    return keys


def findings_for(table, analyses, rater_rows, certainty_path, option_ratings, *, control_risk,
              events) -> list:
    from msc_meta.pooling.certainty import rating_for
    from msc_meta.pooling.sof import finding, inferred_design

    trials = {row.row_number: row.trial for row in table.rows}
    designs = {row.row_number: row.design for row in table.rows}
    rows = []
    for analysis in analyses:
        ratings = option_ratings
        if rater_rows:
            ratings = rating_for(rater_rows, analysis.outcome, analysis.timepoint_weeks,
                                 analysis.unit, path=str(certainty_path))
        rows.append(finding(analysis, ratings=ratings, design=inferred_design(analysis, designs),
                            control_risk=control_risk, trials=trials, events=events))
    # comparisons first, then single-group outcomes (no comparator); the table's order within
    return sorted(rows, key=lambda row: row.absolute.kind == "single_group")


def _unused_ratings(rater_rows, rows, path) -> None:
    """A file row that rates none of the outcomes shown is said on stderr (a typo, or another
    selection), never silently ignored."""
    from msc_meta.data.keys import key
    from msc_meta.report.terminal import diagnostic

    for rater in rater_rows:
        if not any(rater.matches(key(r.outcome), r.timepoint_weeks, r.unit) for r in rows):
            diagnostic(f"msc-meta: note: {path}, row {rater.row}: rates {rater.label()}, which is "
                       f"not in this summary of findings")


def _write(rows, output, fmt, force, grouped) -> None:
    from msc_meta.io_safe import write_output
    from msc_meta.report import sof_table
    from msc_meta.report.export import write_csv
    from msc_meta.report.terminal import diagnostic

    if fmt == "json":
        text = sof_table.to_json(rows, grouped=True) + "\n"
        path = write_output(output, lambda stream: stream.write(text), force=force)
    else:
        table = sof_table.csv_rows(rows)
        path = write_output(output, lambda stream: write_csv(table, stream, sof_table.CSV_COLUMNS),
                            force=force)
    diagnostic(f"msc-meta: summary of findings of {len(rows)} outcome(s) written to {path}")
