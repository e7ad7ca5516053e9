"""``msc-meta bias``: small-study effects (Egger's test, trim-and-fill)."""

from __future__ import annotations

import click

from msc_meta.report.terminal import diagnostic

from msc_meta.cli.forest import image_output_option
from msc_meta.cli.options import (data_option, fit_options, json_option, multiarm_option,
                                  outcome_type_options, selection_options)

EPILOG = """\b
Examples:
  msc-meta bias --outcome fistula_closure --timepoint 208 --unit patient
  msc-meta bias --data my_table.csv --outcome remission --method DL --json
  msc-meta bias --outcome fistula_closure --timepoint 208 --unit fistula --multiarm split -o funnel.png --contours

\b
Egger's test is metafor regtest(): a meta-regression of the effects on their
standard errors with the pooled model's method (--hksj gives a t test).
Trim-and-fill is metafor trimfill() with the L0 estimator; its adjusted
estimate is a sensitivity analysis, not a corrected effect. With fewer than
10 studies both have too little power to mean much, and the output warns.
"""


@click.command(epilog=EPILOG)
@data_option
@selection_options
@fit_options
@outcome_type_options
@multiarm_option
@json_option
@image_output_option(required=False,
                     help="Also draw a funnel plot (with trim-and-fill's filled studies) to FILE: "
                          ".png, .svg or .pdf (not -: stdout carries the results).",
                     stdout_ok=False)
@click.option("--contours", is_flag=True,
              help="Draw a contour-enhanced funnel (regions of p < 0.01, 0.05, 0.10 around no "
                   "effect; Peters et al. 2008) instead of the pseudo-CI region.")
def bias(data_path, outcome, timepoint, unit, measure, method, hksj, cc, level, r, scale, multiarm,
         as_json, output, force, contours):
    """Small-study effects: Egger's regression test and trim-and-fill, as metafor.

    Studies are selected and their effects computed exactly as `pool` does.
    """
    from msc_meta.data import load_table
    from msc_meta.io_safe import check_output_early
    from msc_meta.pooling.bias import run_small_study
    from msc_meta.report import diagnostics_tables as report

    check_output_early(output, force=force)
    table = load_table(data_path)
    result = run_small_study(table, outcome=outcome, timepoint=timepoint, unit=unit,
                             measure=measure, method=method, hksj=hksj, cc=cc, level=level,
                             multiarm=multiarm, r=r, scale=scale)
    if output:
        from msc_meta.plot.funnel import save_funnel

        path = save_funnel(result, output, force=force, contours=contours)
        diagnostic(f"msc-meta: funnel plot written to {path}")
    from msc_meta.report.units import units_in_table

    units = units_in_table(result.measure, result.studies, table, result.scale)
    if as_json:
        click.echo(report.dumps(report.bias_document(result, units)))
    else:
        report.print_renderables(report.render_bias(result, units))
