"""``msc-meta pool``: parse options, run the analysis, print the table or JSON."""

from __future__ import annotations

import click

from msc_meta.cli.options import (data_option, json_option, model_options, multiarm_option,
                                  outcome_type_options, selection_options, study_ci_option)

EPILOG = """\b
Examples:
  msc-meta pool --outcome fistula_closure --timepoint 208 --unit patient
  msc-meta pool --outcome fistula_closure --timepoint 208 --unit patient --hksj
  msc-meta pool --outcome fistula_closure --timepoint 208 --unit fistula --measure PFT
  msc-meta pool --outcome fistula_closure --timepoint 208 --unit patient --method MH
  msc-meta pool --outcome fistula_closure --timepoint 208 --unit fistula --by dose_cells
  msc-meta pool --outcome fistula_closure --timepoint 208 --unit patient --multiarm split
  msc-meta pool --outcome fistula_closure --timepoint 208 --unit patient --measure PLO --method GLMM
  msc-meta pool --outcome fistula_closure --timepoint 24 --unit patient --json | jq .estimate
  msc-meta pool --data my_table.csv --outcome remission --level 90
  msc-meta pool --data my_table.csv --outcome pain --measure SMD
  msc-meta pool --data my_table.csv --outcome survival --scale log

\b
Reading the output:
  Each study shows its own effect and CI and its weight in the pool; the
  common-effect row assumes one true effect, the random-effects row lets it
  vary between studies (tau²). With few studies (k < 5) prefer --hksj,
  whose t-based CI accounts for the uncertainty in tau². Rows the source
  gives no counts for, and studies with no events in either arm (RR, OR),
  are listed under "Left out" with the reason, never pooled silently.
  When k < 5 or an arm has no events, a "Guidance" line names the method
  that suits such data better (GLMM, Mantel-Haenszel, --hksj, bayes).

\b
Multi-arm trials (--multiarm):
  Rows of one trial with identical control counts (e.g. three dose
  cohorts against one placebo group) share one control arm. The default,
  combine, sums their treatment arms into one comparison so that the
  control counts once (Cochrane Handbook 23.3.4); split divides the
  control's events and n evenly among the comparisons; keep pools them as
  they are (the control then counts several times, with a warning).
  Single-arm measures (PR, PLO, PFT, PAS) ignore control arms.
"""


@click.command(epilog=EPILOG)
@data_option
@selection_options
@model_options
@outcome_type_options
@multiarm_option
@study_ci_option
@click.option("--by", "by", metavar="COLUMN", default=None,
              help="One pool per value of COLUMN (any table column, e.g. cell_source, route, "
                   "design; blank values form a '(blank)' group), then a test for subgroup "
                   "differences.")
@json_option
def pool(data_path, outcome, timepoint, unit, measure, method, hksj, pi_method, cc, level,
         r, scale, multiarm, study_ci, by, as_json):
    """Pool one outcome across studies and print a forest-style table.

    Selects the rows of --outcome (narrowed by --timepoint and --unit),
    computes each study's effect as metafor escalc() and pools them as
    metafor rma() / rma.mh() / rma.peto() / rma.glmm(). The default measure
    is RR when the selected rows compare two arms, otherwise PLO (logit
    proportion); the default method is REML random effects, shown beside
    the common-effect (FE) fit. Comparisons sharing one control arm are
    combined into one (--multiarm combine).
    """
    from msc_meta.data import load_table
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.subgroups import run_pool_by

    table = load_table(data_path)
    options = dict(outcome=outcome, timepoint=timepoint, unit=unit, measure=measure,
                   method=method, hksj=hksj, pi=pi_method, cc=cc, level=level,
                   multiarm=multiarm, study_ci=study_ci, r=r, scale=scale)
    if by:
        analyses, test = run_pool_by(table, by, **options)
    else:
        analyses, test = [run_pool(table, **options)], None

    from msc_meta.report.units import units_in_table

    units = units_in_table(analyses[0].measure, (s for a in analyses for s in a.studies),
                           table, analyses[0].options.scale)
    if as_json:
        import sys

        from msc_meta.report.json_out import to_json, write_json

        stream = getattr(sys.stdout, "buffer", None)
        if stream is None:          # a text-only stdout (tests capturing output)
            click.echo(to_json(analyses, test, grouped=bool(by), units=units))
        else:                       # written piece by piece: 10^6 studies are ~500 MB of JSON
            sys.stdout.flush()
            write_json(stream, analyses, test, grouped=bool(by), units=units)
            stream.flush()
    else:
        from msc_meta.report.forest_table import print_report

        print_report(analyses, test, grouped=bool(by), units=units)
