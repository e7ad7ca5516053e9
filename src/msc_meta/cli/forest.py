"""``msc-meta forest``: draw a forest plot of one outcome to PNG, SVG or PDF."""

from __future__ import annotations

import click

from msc_meta.report.terminal import diagnostic

from msc_meta.cli.options import (data_option, model_options, multiarm_option, outcome_type_options,
                                  selection_options, study_ci_option)

EPILOG = """\b
Examples:
  msc-meta forest --outcome fistula_closure --timepoint 24 --unit patient -o closure.png
  msc-meta forest --outcome fistula_closure --timepoint 208 --unit patient --hksj -o closure.pdf
  msc-meta forest --outcome fistula_closure --timepoint 24 --unit patient --by cell_source -o by_source.svg
  msc-meta forest --outcome fistula_closure --timepoint 24 --unit patient -o f.png \\
      --favours-left "Favours control" --favours-right "Favours MSC"
  msc-meta forest --outcome fistula_closure --timepoint 208 --unit patient --multiarm split \\
      --columns dose_cells --order dose_cells --style journal -o by_dose.pdf

\b
What is drawn (the RevMan layout):
  each study's events/total per arm, weight and effect [CI], a square sized
  by its weight and its CI line (an arrow where it leaves the axis); the
  common-effect (grey) and random-effects (black) diamonds; the prediction
  interval (red bar); heterogeneity (tau², I², Q) and the test for the
  overall effect; with --by, a subtotal per subgroup, the total, and the
  test for subgroup differences. Ratios use a log axis with the null line
  at 1. Rows left out of the pool are listed under the plot with the reason;
  the analysis notes and guidance only with --notes (`pool` prints them).
  Arm headers: --label-t/--label-c, default "Treatment"/"Control" ("MSC"/
  "Control" for the curated table). The favours labels default to what the
  axis means ("More events with control / treatment", "Higher mean ...");
  say which side is better with --favours-left/--favours-right.
  Risk of bias: when the table has RoB 2 columns (rob_d1 ... rob_d5,
  rob_overall: low, some concerns or high), each study gets traffic lights
  and the plot a legend of the domains (--no-rob hides them).
  Long tables: more than --rows-per-page rows (default 60) are split into
  pages: one PDF with several pages, or NAME-1.png, NAME-2.png, ...
"""


def _numbers(ctx, param, value, *, count=None):
    """A comma-separated list of numbers (--xlim LOW,HIGH; --ticks 0.1,1,10)."""
    if value is None:
        return None
    import re

    parts = [p.strip() for p in value.split(",")]
    pattern = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
    if not parts or not all(pattern.match(p) for p in parts):
        raise click.BadParameter(f"{value!r}: give numbers separated by commas, e.g. "
                                 + ("0.1,10" if count == 2 else "0.1,0.5,1,2,10"))
    numbers = tuple(float(p) for p in parts)
    if count is not None and len(numbers) != count:
        raise click.BadParameter(f"{value!r}: give LOW,HIGH (two numbers)")
    return numbers


def _names(ctx, param, value):
    if value is None:
        return ()
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise click.BadParameter(f"{value!r}: give column names separated by commas")
    return names



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
@outcome_type_options
@multiarm_options
@click.option("--by", "by", metavar="COLUMN", default=None,
              help="One subgroup per value of COLUMN, with subtotals and the test for subgroup "
                   "differences (e.g. rob_overall: the risk-of-bias sensitivity split).")
@image_output_option(required=True,
                     help="Image file: .png, .svg or .pdf (the suffix picks the format), or - "
                          "to write SVG to stdout; an existing file is kept unless --force "
                          "is given.")
@click.option("--title", default=None, help="Title above the plot (default: outcome, time point, unit).")
@click.option("--label-t", "label_t", default=None, metavar="TEXT",
              help="Header of the treatment arm's columns (default Treatment; MSC for the curated table).")
@click.option("--label-c", "label_c", default=None, metavar="TEXT",
              help="Header of the control arm's columns (default Control).")
@click.option("--favours-left", default=None, metavar="TEXT",
              help="Label under the left half of the axis (e.g. 'Favours control').")
@click.option("--favours-right", default=None, metavar="TEXT",
              help="Label under the right half of the axis (e.g. 'Favours MSC').")
@click.option("--columns", "columns", default=None, metavar="COL,...", callback=_names,
              help="Extra study columns from the table, left of the counts (e.g. "
                   "year,dose_cells,timepoint_weeks).")
@click.option("--order", default="data", show_default=True, metavar="data|effect|weight|COLUMN",
              help="Study order within each group: table order, effect (ascending), weight "
                   "(largest first) or the ascending values of a table column (e.g. year).")
@click.option("--xlim", default=None, metavar="LOW,HIGH",
              callback=lambda c, p, v: _numbers(c, p, v, count=2),
              help="Axis limits on the natural scale (e.g. 0.1,10 for a ratio); CIs beyond end "
                   "in an arrow.")
@click.option("--ticks", default=None, metavar="T,...", callback=_numbers,
              help="Axis ticks on the natural scale, e.g. 0.1,0.5,1,2,10.")
@click.option("--units", default=None, metavar="TEXT",
              help="Units of the effect, added to the axis title (e.g. mmHg for a mean difference).")
@click.option("--style", type=click.Choice(["revman", "journal"], case_sensitive=False),
              default="revman", show_default=True,
              help="revman: Cochrane RevMan 5 look (blue squares, red prediction interval); "
                   "journal: greyscale for print.")
@click.option("--notes/--no-notes", default=False, show_default=True,
              help="Print the analysis notes and guidance under the plot (`pool` always prints them).")
@click.option("--rob/--no-rob", default=None,
              help="Risk-of-bias traffic lights from the rob_d1 ... rob_d5, rob_overall columns "
                   "(default: drawn when the table has them).")
@click.option("--width", type=click.FloatRange(2, 40), default=None, metavar="INCHES",
              help="Figure width in inches (default: what the columns need); the graph takes the rest.")
@click.option("--height", type=click.FloatRange(1, 100), default=None, metavar="INCHES",
              help="Height of each page in inches (default: 0.2 in a row).")
@click.option("--dpi", type=click.IntRange(50, 1200), default=200, show_default=True,
              help="Resolution of a PNG.")
@click.option("--rows-per-page", "rows_per_page", type=click.IntRange(0, None), default=60,
              show_default=True,
              help="Split a longer plot into pages (a PDF of several pages, or NAME-1.png, "
                   "NAME-2.png, ...); 0: one page however long.")
def forest(data_path, outcome, timepoint, unit, measure, method, hksj, pi_method, cc, level,
           r, scale, multiarm, study_ci, by, output, force, title, label_t, label_c, favours_left,
           favours_right, columns, order, xlim, ticks, units, style, notes, rob, width, height,
           dpi, rows_per_page):
    """Draw a forest plot of one outcome to PNG, SVG or PDF.

    Pools exactly as `pool` does (same options, same exclusions and notes)
    and draws the result in the layout of a Cochrane review.
    """
    from msc_meta.data import load_table
    from msc_meta.io_safe import check_output_early
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.subgroups import run_pool_by

    check_output_early(output, force=force)
    table = load_table(data_path)
    options = dict(outcome=outcome, timepoint=timepoint, unit=unit, measure=measure,
                   method=method, hksj=hksj, pi=pi_method, cc=cc, level=level,
                   multiarm=multiarm, study_ci=study_ci, r=r, scale=scale)
    overall = test = None
    if by:
        analyses, test = run_pool_by(table, by, **options)
        overall = run_pool(table, **options)
    else:
        analyses = [run_pool(table, **options)]

    from msc_meta.plot._common import save_pages
    from msc_meta.data.arms import arm_labels
    from msc_meta.plot.forest import ForestOptions, forest_pages, study_info
    from msc_meta.progress import progress

    default_t, default_c = arm_labels(data_path)
    look = ForestOptions(title=title, favours_left=favours_left, favours_right=favours_right,
                         label_t=label_t or default_t, label_c=label_c or default_c,
                         info=study_info(table, columns, rob=rob, order=order), order=order,
                         xlim=xlim, ticks=ticks, width=width, height=height, notes=notes,
                         style=style.lower(), units=units, rows_per_page=rows_per_page or None)
    k = sum(len(a.studies) for a in analyses)
    pages_guess = 1 if not rows_per_page else -(-(k + 12 * len(analyses)) // rows_per_page)
    with progress(2 * pages_guess, "forest plot") as advance:
        figures = forest_pages(analyses, overall=overall, subgroup_test=test, cc=cc, options=look,
                               progress=advance)
        paths = save_pages(figures, output, dpi=dpi, force=force, progress=advance)
    if len(figures) > 1:
        diagnostic(f"msc-meta: warning: {k} studies: the forest plot is split into "
                   f"{len(figures)} pages of at most {rows_per_page} rows (--rows-per-page; "
                   f"0 keeps one page)")
    elif not rows_per_page and k > 200:
        diagnostic(f"msc-meta: warning: {k} studies on one page make a very tall image; "
                   "--rows-per-page splits it")
    shown = paths[0] if len(paths) == 1 else f"{paths[0]} ... {paths[-1]}"
    diagnostic(f"msc-meta: forest plot written to {shown}")
