"""``msc-meta forest``: draw a forest plot of one outcome to PNG, SVG or PDF."""

from __future__ import annotations

import click

from msc_meta.report.terminal import diagnostic

from msc_meta.cli.options import data_option, model_options, multiarm_option, selection_options, study_ci_option

EPILOG = """\b
Examples:
  msc-meta forest --outcome fistula_closure --timepoint 24 --unit patient -o closure.png
  msc-meta forest --outcome fistula_closure --timepoint 208 --unit patient --hksj -o closure.pdf
  msc-meta forest --outcome fistula_closure --timepoint 24 --unit patient --by cell_source -o by_source.svg
  msc-meta forest --outcome fistula_closure --timepoint 24 --unit patient -o f.png \\
      --favours-left "Favours control" --favours-right "Favours MSC"

\b
What is drawn (the RevMan layout):
  each study's events/total per arm, weight and effect [CI], a square sized
  by its weight and its CI line (an arrow where it leaves the axis); the
  common-effect (grey) and random-effects (black) diamonds; the prediction
  interval (red bar); heterogeneity (tau², I², Q) and the test for the
  overall effect; with --by, a subtotal per subgroup, the total, and the
  test for subgroup differences. Ratios use a log axis with the null line
  at 1. Rows left out of the pool are listed under the plot with the reason.
  The favours labels default to "More events with control / MSC": say
  which side is better with --favours-left/--favours-right.
"""


def multiarm_options(f):
    """``--multiarm`` and ``--study-ci`` as ``pool`` has them, so that forest,
    sof and export pool exactly as ``pool`` does."""
    return multiarm_option(study_ci_option(f))


def image_output_option(*, required: bool, help: str, stdout_ok: bool = True):
    """``-o/--output FILE`` for an image, and ``--force``. A suffix other than
    .png/.svg/.pdf fails at once (exit 2), before any pooling; so does an
    existing file without ``--force`` (``io_safe.check_output_early``).
    ``-o -`` writes SVG to stdout where ``stdout_ok``; commands whose stdout
    carries their table (bias, regress) refuse it. Used by forest, bias, regress."""
    def check(ctx, param, value):
        if value is not None:
            from msc_meta.errors import UsageError
            from msc_meta.io_safe import is_stdout
            from msc_meta.plot._common import output_format

            if is_stdout(value) and not stdout_ok:
                raise click.BadParameter(
                    f"-: stdout carries the {ctx.info_name} results; give the plot a file "
                    f"name ending in .png, .svg or .pdf")
            try:
                output_format(value)
            except UsageError as err:
                raise click.BadParameter(str(err)) from None
        return value

    def decorate(f):
        f = click.option("--force", is_flag=True,
                         help="Replace the image file if it exists.")(f)
        return click.option("-o", "--output", "output", required=required, default=None,
                            metavar="FILE", callback=check, help=help)(f)

    return decorate


@click.command(epilog=EPILOG)
@data_option
@selection_options
@model_options
@multiarm_options
@click.option("--by", "by", metavar="COLUMN", default=None,
              help="One subgroup per value of COLUMN, with subtotals and the test for subgroup "
                   "differences.")
@image_output_option(required=True,
                     help="Image file: .png, .svg or .pdf (the suffix picks the format), or - "
                          "to write SVG to stdout; an existing file is kept unless --force "
                          "is given.")
@click.option("--title", default=None, help="Title above the plot (default: outcome, time point, unit).")
@click.option("--favours-left", default=None, metavar="TEXT",
              help="Label under the left half of the axis (e.g. 'Favours control').")
@click.option("--favours-right", default=None, metavar="TEXT",
              help="Label under the right half of the axis (e.g. 'Favours MSC').")
def forest(data_path, outcome, timepoint, unit, measure, method, hksj, pi_method, cc, level,
           multiarm, study_ci, by, output, force, title, favours_left, favours_right):
    """Draw a forest plot of one outcome to PNG, SVG or PDF.

    Pools exactly as `pool` does (same options, same exclusions and notes)
    and draws the result in the layout of a Cochrane review.
    """
    from msc_meta.data import load_table
    from msc_meta.io_safe import check_output_early
    from msc_meta.pooling.analysis import run_pool, run_pool_by

    check_output_early(output, force=force)
    table = load_table(data_path)
    options = dict(outcome=outcome, timepoint=timepoint, unit=unit, measure=measure,
                   method=method, hksj=hksj, pi=pi_method, cc=cc, level=level,
                   multiarm=multiarm, study_ci=study_ci)
    overall = test = None
    if by:
        analyses, test = run_pool_by(table, by, **options)
        overall = run_pool(table, **options)
    else:
        analyses = [run_pool(table, **options)]

    from msc_meta.plot._common import save_figure
    from msc_meta.plot.forest import forest_plot

    fig = forest_plot(analyses, overall=overall, subgroup_test=test, title=title,
                      favours_left=favours_left, favours_right=favours_right, cc=cc)
    path = save_figure(fig, output, force=force)
    diagnostic(f"msc-meta: forest plot written to {path}")
