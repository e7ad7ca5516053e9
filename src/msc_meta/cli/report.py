"""``msc-meta report``: one self-contained HTML report of a pool (or of every pool, --all)."""

from __future__ import annotations

from pathlib import Path

import click

from msc_meta.report.terminal import diagnostic

from msc_meta.cli.forest import multiarm_options
from msc_meta.cli.options import (data_option, model_options, outcome_or_all_options,
                                  outcome_type_options, require_outcome_or_all)

EPILOG = """\b
Examples:
  msc-meta report --outcome fistula_closure --timepoint 208 --unit fistula --multiarm split -o closure.html
  msc-meta report --outcome fistula_closure --timepoint 24 --unit patient --hksj -o closure24.html
  msc-meta report --outcome fistula_closure --timepoint 24 --unit patient --by cell_source -o by_source.html
  msc-meta report --all -o everything.html

\b
One HTML file that opens without a network: no scripts, no external style
sheets, fonts or images; the forest plot is inline SVG. It holds what was
pooled and what was left out (with the reasons), the forest plot, the
pooled estimates, heterogeneity (tau², I², Q) and the prediction interval,
leave-one-out results (k >= 2, inverse-variance methods), the methods in
words with references, the source file, verbatim quote and note of every
pooled row, and the versions of msc-meta, Python and its libraries. The
numbers are those of `pool` with the same options, in the same format.
--all reports every outcome x time point x unit of the table that has
something to pool (the others are listed). The file is never replaced
without --force; -o - writes the HTML to stdout.
"""


@click.command(epilog=EPILOG)
@data_option
@outcome_or_all_options("report_all", "in one report")
@model_options
@outcome_type_options
@multiarm_options
@click.option("--by", "by", metavar="COLUMN", default=None,
              help="One pool per value of COLUMN with subtotals and the test for subgroup "
                   "differences (as pool --by).")
@click.option("-o", "--output", "output", required=True, metavar="FILE",
              help="HTML file to write, or - for stdout; an existing file is kept unless --force.")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--certainty", "certainty_path", metavar="FILE", default=None,
              help="The rater's GRADE inputs for the summary-of-findings section (as sof "
                   "--certainty); without it the certainty is 'not rated'.")
def report(data_path, outcome, timepoint, unit, report_all, measure, method, hksj, pi_method, cc,
           level, r, scale, multiarm, study_ci, by, output, force, certainty_path):
    """Write one self-contained HTML report: pool, forest plot, sensitivity, methods, provenance.

    Pools exactly as `pool` does (same selection, options, exclusions and
    notes); the report only presents those results.
    """
    from msc_meta.errors import UsageError
    from msc_meta.io_safe import check_output_early, write_output

    require_outcome_or_all(outcome, timepoint, unit, report_all, "reports")
    check_output_early(output, force=force)      # fail before pooling anything

    from msc_meta.data import load_table
    from msc_meta.data.arms import arm_labels
    from msc_meta.report.html_report import ReportInfo, library_versions, render_html

    table = load_table(data_path)
    labels = arm_labels(data_path)
    if by:
        table.require_column(by)
    options = dict(measure=measure, method=method, hksj=hksj, pi=pi_method, cc=cc, level=level,
                   multiarm=multiarm, study_ci=study_ci, r=r, scale=scale)
    sections, skipped = [], []
    if report_all:
        from msc_meta.pooling.selection import analysis_keys
        from msc_meta.report.export import selection_label

        for key_outcome, key_timepoint, key_unit in analysis_keys(table):
            try:
                sections.append(_section(table, by, options, key_outcome, key_timepoint, key_unit, labels,
                                         anchor=f"a{len(sections) + 1}"))
            except UsageError as err:
                weeks = None if key_timepoint == "blank" else key_timepoint
                skipped.append(f"{selection_label(key_outcome, weeks, key_unit)}: {_words(err)}")
        if not sections:
            raise UsageError("nothing to report: no selection of the table could be pooled")
    else:
        sections.append(_section(table, by, options, outcome, timepoint, unit, labels, anchor="a1"))

    # the curated table is named as such: its install path says nothing to a co-author
    shown_path = str(table.path) if data_path is not None else (
        f"the curated table shipped with msc-meta ({Path(table.path).name})")
    info = ReportInfo(data_path=shown_path, versions=library_versions(),
                      skipped=tuple(skipped), command=_command_line())
    document = render_html(sections, info, sof=_sof_rows(table, sections, certainty_path)).encode("utf-8")
    path = write_output(output, lambda stream: stream.write(document), binary=True, force=force)
    pooled = len(sections)
    diagnostic(f"msc-meta: report of {pooled} analys{'es' if pooled != 1 else 'is'} written to {path}")


def _section(table, by, options, outcome, timepoint, unit, labels, *, anchor):
    """Pool one selection (as `pool`/`forest`), draw it, run leave-one-out; a ReportSection."""
    from msc_meta import registry
    from msc_meta.errors import MscMetaError
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.subgroups import run_pool_by
    from msc_meta.report.html_report import ReportSection

    selection = dict(options, outcome=outcome, timepoint=timepoint, unit=unit)
    overall = test = None
    if by:
        analyses, test = run_pool_by(table, by, **selection)
        overall = run_pool(table, **selection)
    else:
        analyses = [run_pool(table, **selection)]
    primary = overall if overall is not None else analyses[0]

    svg = _forest_svg(analyses, overall, test, options["cc"], anchor, labels)

    sensitivity, reason = None, None
    method = registry.method(primary.method)
    if primary.k < 2:
        reason = (f"leave-one-out needs at least 2 pooled studies; k = {primary.k}, so there is "
                  "nothing to leave out")
    elif not method.inverse_variance:
        reason = (f"leave-one-out refits inverse-variance models (FE or a random-effects method); "
                  f"--method {method.name} pools otherwise")
    else:
        from msc_meta.pooling.sensitivity import run_sensitivity

        try:
            sensitivity = run_sensitivity(table, outcome=outcome, timepoint=timepoint, unit=unit,
                                          measure=primary.measure, method=primary.method,
                                          hksj=primary.hksj, cc=primary.cc, level=primary.level,
                                          multiarm=primary.multiarm, r=primary.options.r,
                                          scale=primary.options.scale)
        except MscMetaError as err:
            reason = _words(err)
    rows = {row.row_number: row for row in table.rows}
    return ReportSection(analyses=tuple(analyses), svg=svg, rows=rows, overall=overall,
                         subgroup_test=test, by=by, sensitivity=sensitivity,
                         sensitivity_reason=reason, anchor=anchor)


def _forest_svg(analyses, overall, test, cc, anchor, labels) -> str:
    """The forest plot as inline SVG (``msc-meta forest``'s figure with the default options)."""
    from msc_meta.plot.forest import forest_plot

    fig = forest_plot(analyses, overall=overall, subgroup_test=test, cc=cc,
                      label_t=labels[0], label_c=labels[1])
    return _svg_of(fig, prefix=anchor)


def _sof_rows(table, sections, certainty_path) -> list:
    """The summary-of-findings rows of the reported pools (as `msc-meta sof` makes them)."""
    from msc_meta.cli.sof import findings_for
    from msc_meta.pooling.certainty import read_certainty_file

    raters = read_certainty_file(certainty_path, table.outcomes()) if certainty_path else ()
    return findings_for(table, [s.primary for s in sections], raters, certainty_path, None,
                     control_risk=None, events="beneficial")


def _svg_of(fig, *, prefix: str) -> str:
    """The figure as SVG text, in memory, ready to inline (msc_meta.report.html_report.inline_svg)."""
    import io

    import matplotlib

    from msc_meta.report.html_report import inline_svg

    buffer = io.StringIO()
    # text stays text (searchable, no embedded glyphs); no date, so equal data give equal files
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "msc-meta"}):
        fig.savefig(buffer, format="svg", facecolor="white",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return inline_svg(buffer.getvalue(), prefix)


def _words(err) -> str:
    for_cli = getattr(err, "for_cli", None)
    return for_cli() if for_cli is not None else str(err)


def _command_line() -> str | None:
    """The report's own command line, from the parsed options (defaults left out), so that a
    reader can rerun it; the output file is not part of it."""
    import shlex

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    words = ["msc-meta", "report"]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in ("output", "force"):
            continue
        value = ctx.params.get(param.name)
        if value is None or value == param.default or value is False:
            continue
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if param.is_flag:
            words.append(flag)
        else:
            text = f"{value:g}" if isinstance(value, float) else str(value)
            words += [flag, shlex.quote(text)]
    return " ".join(words)
