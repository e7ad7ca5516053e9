"""``msc-meta labbe``: L'Abbé plot of a two-arm outcome (event risk, control vs treatment)."""

from __future__ import annotations

import click

from msc_meta.cli.forest import image_output_option, multiarm_options
from msc_meta.cli.options import data_option, model_options, selection_options

EPILOG = """\b
Examples:
  msc-meta labbe --outcome fistula_closure --timepoint 24 --unit patient -o labbe.png
  msc-meta labbe --data my_table.csv --outcome remission --measure OR -o labbe.svg

\b
Each study is a circle at (risk in the control arm, risk in the treatment
arm), its area proportional to its weight in the pool; the solid line is no
effect, the dashed one the pooled RR, OR or RD (metafor labbe()). Studies
are selected and pooled exactly as `pool` does; a study with a zero cell
gets the continuity correction (--cc), as in its effect size.
"""


@click.command(epilog=EPILOG)
@data_option
@selection_options
@model_options
@multiarm_options
@image_output_option(required=True, help="Image file: .png, .svg or .pdf, or - for SVG on stdout; "
                                         "an existing file is kept unless --force is given.")
@click.option("--title", default=None, help="Title above the plot.")
def labbe(data_path, outcome, timepoint, unit, measure, method, hksj, pi_method, cc, level,
          multiarm, study_ci, output, force, title):
    """L'Abbé plot: event risk in the control arm against the treatment arm."""
    from msc_meta.data import load_table
    from msc_meta.io_safe import check_output_early
    from msc_meta.plot._common import save_figure, selection_title
    from msc_meta.plot.labbe import labbe_plot
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.labbe import labbe_points
    from msc_meta.report.terminal import diagnostic

    check_output_early(output, force=force)
    table = load_table(data_path)
    analysis = run_pool(table, outcome=outcome, timepoint=timepoint, unit=unit, measure=measure,
                        method=method, hksj=hksj, pi=pi_method, cc=cc, level=level,
                        multiarm=multiarm, study_ci=study_ci)
    points = labbe_points(analysis)
    from msc_meta.data.arms import arm_labels
    from msc_meta.plot.forest import _in_sentence

    arms = tuple(_in_sentence(label) for label in arm_labels(data_path))
    heading = title or ("L'Abb\u00e9 plot: " + selection_title(analysis.outcome,
                                                              analysis.timepoint_weeks, analysis.unit))
    path = save_figure(labbe_plot(points, title=heading, label_t=arms[0], label_c=arms[1]),
                       output, force=force)
    diagnostic(f"msc-meta: L'Abb\u00e9 plot written to {path}")
