"""``msc-meta regress``: mixed-effects meta-regression of one outcome on moderators."""

from __future__ import annotations

import click

from msc_meta.report.terminal import diagnostic

from msc_meta.cli.forest import image_output_option
from msc_meta.cli.options import (data_option, fit_options, json_option, outcome_type_options,
                                  selection_options)


EPILOG = """\b
Examples:
  msc-meta regress --outcome fistula_closure --timepoint 208 --unit patient --mods "log10(dose_cells)"
  msc-meta regress --outcome fistula_closure --timepoint 208 --unit fistula --mods "log10(dose_cells)" --hksj
  msc-meta regress --data my_table.csv --outcome remission --mods "cell_source + route" --json

\b
--mods is the right-hand side of a model formula: column names joined by
'+'; a term may be log10(col), log(col) or sqrt(col). Numeric columns enter
as slopes; text columns as dummies against their alphabetically first value.
Rows missing a moderator are left out and listed. Coefficients are on the
analysis scale (log RR, logit, ...). With fewer than 10 studies a
meta-regression is exploratory; dose cohorts that share one placebo arm are
correlated, which this model does not yet account for (the output says so).
"""


@click.command(epilog=EPILOG)
@data_option
@selection_options
@click.option("--mods", required=True, metavar="EXPR",
              help="Moderators: e.g. 'log10(dose_cells)' or 'cell_source + route'.")
@fit_options
@outcome_type_options
@json_option
@image_output_option(required=False,
                     help="Also draw a bubble plot (one numeric moderator) to FILE: .png, .svg "
                          "or .pdf (not -: stdout carries the results).",
                     stdout_ok=False)
def regress(data_path, outcome, timepoint, unit, mods, measure, method, hksj, cc, level, r, scale,
            as_json, output, force):
    """Mixed-effects meta-regression on moderators (e.g. dose), as metafor rma(mods=).

    Studies are selected and their effects computed exactly as `pool` does;
    the model is fitted by --method (REML default; FE, DL, ML, PM, HE, SJ,
    HS, EB), with --hksj giving Knapp-Hartung t tests and an F test of the
    moderators (metafor test="knha").
    """
    from msc_meta.data import load_table
    from msc_meta.io_safe import check_output_early
    from msc_meta.pooling.metareg import run_regression
    from msc_meta.report import diagnostics_tables as report

    check_output_early(output, force=force)
    table = load_table(data_path)
    reg = run_regression(table, mods, outcome=outcome, timepoint=timepoint, unit=unit,
                         measure=measure, method=method, hksj=hksj, cc=cc, level=level, r=r,
                         scale=scale)
    figure = None
    if output:
        from msc_meta.plot.bubble import bubble_for

        # drawn before anything is printed, so that a model it cannot draw
        # (not exactly one numeric moderator) fails with nothing on stdout
        figure = bubble_for(reg, table)
    from msc_meta.report.units import units_in_table

    units = units_in_table(reg.measure, reg.studies, table, reg.scale)
    if as_json:
        click.echo(report.dumps(report.regress_document(reg, units)))
    else:
        report.print_renderables(report.render_regress(reg, units))
    if figure is not None:
        from msc_meta.plot._common import save_figure

        diagnostic(f"msc-meta: bubble plot written to {save_figure(figure, output, force=force)}")
