"""``msc-meta sensitivity``: leave-one-out, cumulative and influence analyses."""

from __future__ import annotations

import click

from msc_meta.cli.forest import image_output_option
from msc_meta.cli.options import (data_option, fit_options, json_option, multiarm_option,
                                  outcome_type_options, selection_options)

EPILOG = """\b
Examples:
  msc-meta sensitivity --outcome fistula_closure --timepoint 208 --unit patient --multiarm split
  msc-meta sensitivity --outcome fistula_closure --timepoint 208 --unit fistula --multiarm split --order dose_cells
  msc-meta sensitivity --data my_table.csv --outcome remission --hksj --json
  msc-meta sensitivity --outcome fistula_closure --timepoint 208 --unit patient --multiarm split --plot baujat -o baujat.png

\b
Leave-one-out refits the pool without each study in turn (metafor
leave1out); cumulative adds the studies one at a time in table order, or in
ascending order of --order COLUMN (metafor cumul); influence gives metafor's
influence() diagnostics and marks influential studies with '*'.
--plot loo|cumul|baujat -o FILE draws the leave-one-out or cumulative
forest plot (metafor forest(leave1out()), forest(cumul())) or the Baujat
plot (metafor baujat(): each study's contribution to the heterogeneity
against its influence on the pooled result) besides the table.
"""


@click.command(epilog=EPILOG)
@data_option
@selection_options
@fit_options
@outcome_type_options
@multiarm_option
@click.option("--order", "order_by", metavar="COLUMN", default=None,
              help="Order of the cumulative analysis: ascending values of COLUMN "
                   "(e.g. dose_cells, timepoint_weeks); default table order.")
@json_option
@click.option("--plot", "plot", type=click.Choice(["loo", "cumul", "baujat"], case_sensitive=False),
              default=None,
              help="Draw the leave-one-out or cumulative forest plot, or the Baujat plot, to -o FILE.")
@image_output_option(required=False, stdout_ok=False,
                     help="Image file of --plot: .png, .svg or .pdf; an existing file is kept "
                          "unless --force is given.")
def sensitivity(data_path, outcome, timepoint, unit, measure, method, hksj, cc, level, r, scale,
                multiarm, order_by, as_json, plot, output, force):
    """Leave-one-out, cumulative and influence analyses, as metafor.

    Studies are selected and their effects computed exactly as `pool` does;
    every refit uses the same --method and --hksj setting.
    """
    from msc_meta.data import load_table
    from msc_meta.errors import UsageError
    from msc_meta.io_safe import check_output_early
    from msc_meta.pooling.sensitivity import run_sensitivity
    from msc_meta.report import diagnostics_tables as report

    if (plot is None) != (output is None):
        raise UsageError("--plot loo|cumul|baujat and -o FILE go together")
    check_output_early(output, force=force)
    table = load_table(data_path)
    result = run_sensitivity(table, outcome=outcome, timepoint=timepoint, unit=unit,
                             measure=measure, method=method, hksj=hksj, cc=cc, level=level,
                             order_by=order_by, multiarm=multiarm, r=r, scale=scale)
    from msc_meta.report.units import units_in_table

    units = units_in_table(result.result.measure, result.studies, table, result.result.scale)
    if as_json:
        click.echo(report.dumps(report.sensitivity_document(result, units)))
    else:
        report.print_renderables(report.render_sensitivity(result, units))
    if plot:
        from msc_meta.plot._common import save_figure
        from msc_meta.plot.sensitivity import sensitivity_figure
        from msc_meta.report.terminal import diagnostic

        path = save_figure(sensitivity_figure(result, plot.lower()), output, force=force)
        diagnostic(f"msc-meta: {plot.lower()} plot written to {path}")
