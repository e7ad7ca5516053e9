"""``msc-meta sof``: GRADE-style summary of findings (absolute effects, NNT)."""

from __future__ import annotations

import click

from msc_meta.cli.forest import multiarm_options
from msc_meta.cli.options import data_option, json_option, model_options, selection_options

EPILOG = """\b
Examples:
  msc-meta sof --outcome fistula_closure --timepoint 24 --unit patient
  msc-meta sof --outcome fistula_closure --timepoint 24 --unit patient --control-risk 0.3
  msc-meta sof --outcome fistula_closure --timepoint 24 --unit patient --method MH --json
  msc-meta sof --data my_table.csv --outcome adverse_events --events harmful

\b
How the numbers are made:
  The pooled relative effect (RR by default) is applied to a control risk
  (CR): risk with MSC = CR x RR (OR: OR*CR/(1-CR+OR*CR); RD: CR + RD), for
  the estimate and both CI bounds; the difference is per 1,000 treated.
  The default CR is the pooled control-arm risk, sum(events_c)/sum(n_c)
  over the pooled studies, counting a control arm shared by several cohorts
  of one trial once (whatever --multiarm); --control-risk sets another
  (e.g. from a cohort study).
  NNT = 1/difference (Altman 1998): NNTB when it favours MSC, NNTH when it
  favours control; when the CI of the difference includes 0 the NNT CI runs
  through infinity ("NNTH a to inf to NNTB b"). Whether more events are good
  is set by --events (default beneficial, e.g. closure).
"""


@click.command(epilog=EPILOG)
@data_option
@selection_options
@model_options
@multiarm_options
@click.option("--by", "by", metavar="COLUMN", default=None,
              help="One row per value of COLUMN (as pool --by).")
@click.option("--control-risk", type=float, default=None, metavar="R",
              help="Assumed control risk as a proportion (0-1). Default: the pooled control-arm "
                   "risk of the studies in the pool.")
@click.option("--events", type=click.Choice(["beneficial", "harmful"]), default="beneficial",
              show_default=True,
              help="Are the outcome's events good (closure, remission) or bad (adverse events)? "
                   "Decides NNTB vs NNTH.")
@json_option
def sof(data_path, outcome, timepoint, unit, measure, method, hksj, pi_method, cc, level,
        multiarm, study_ci, by, control_risk, events, as_json):
    """Summary of findings: absolute effects per 1,000 and the NNT (GRADE style).

    For a two-arm outcome (RR, OR or RD) pooled as `pool` pools it. The
    certainty of the evidence is not graded automatically; the table lists
    the facts that bear on imprecision and inconsistency.
    """
    from msc_meta.data import load_table
    from msc_meta.errors import UsageError
    from msc_meta.pooling.analysis import run_pool, run_pool_by
    from msc_meta.pooling.sof import summary_of_findings

    if control_risk is not None and not 0.0 <= control_risk <= 1.0:
        raise UsageError(f"--control-risk {control_risk:g}: give a proportion between 0 and 1 "
                         f"(e.g. 0.3 for 300 per 1,000)")
    table = load_table(data_path)
    options = dict(outcome=outcome, timepoint=timepoint, unit=unit, measure=measure,
                   method=method, hksj=hksj, pi=pi_method, cc=cc, level=level,
                   multiarm=multiarm, study_ci=study_ci)
    if by:
        analyses, _ = run_pool_by(table, by, **options)
        analyses = [a for a in analyses if a.result is not None]
    else:
        analyses = [run_pool(table, **options)]
    trials = {row.row_number: row.trial for row in table.rows}
    rows = [summary_of_findings(a, control_risk=control_risk, trials=trials, events=events)
            for a in analyses]

    from msc_meta.report import sof_table

    if as_json:
        click.echo(sof_table.to_json(rows, grouped=bool(by)))
    else:
        sof_table.print_report(rows)
