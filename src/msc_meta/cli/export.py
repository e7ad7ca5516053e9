"""``msc-meta export``: per-study and pooled results as a tidy CSV or JSON file."""

from __future__ import annotations

import click

from msc_meta.report.terminal import diagnostic

from msc_meta.cli.forest import multiarm_options
from msc_meta.cli.options import (data_option, model_options, outcome_or_all_options,
                                  outcome_type_options, require_outcome_or_all, table_file_options,
                                  table_format)

EPILOG = """\b
Examples:
  msc-meta export --outcome fistula_closure --timepoint 24 --unit patient -o closure.csv
  msc-meta export --outcome fistula_closure --timepoint 24 --unit patient --by cell_source -o by_source.json
  msc-meta export --all -o everything.csv
  msc-meta export --all --method DL --hksj -o everything.csv --force
  msc-meta export --outcome fistula_closure --timepoint 208 --unit patient -o - --format json

\b
One row per study per analysis (row_type study), one per pooled fit
(row_type pooled; model random or common), one per row left out (row_type
excluded, with the reason) and with --by one subgroup_test row. The
`analysis` column (e.g. fistula_closure|208w|patient) groups them. Floats
keep full precision. A text cell starting with = + - @ (or a tab) gets a
leading ' so that spreadsheets do not run it as a formula; numbers are never
changed. Study rows of outcome types beyond counts carry the columns their
measure reads (mean_t, sd_t, ..., time_t, cor_t, effect, ...) after the
count columns. --all pools every outcome x time point x unit that has data;
selections with nothing to pool are skipped and listed on stderr. The file
is written completely before it appears under its name, and never replaces
a file (even one created meanwhile) without --force; --force keeps the
replaced file's permissions. -o - writes the CSV (or JSON) to stdout.
"""


@click.command(epilog=EPILOG)
@data_option
@outcome_or_all_options("export_all", "in one file")
@model_options
@outcome_type_options
@multiarm_options
@click.option("--by", "by", metavar="COLUMN", default=None,
              help="One pool per value of COLUMN (as pool --by) plus the subgroup test row.")
@table_file_options(required=True,
                    output_help="File to write, or - for stdout (CSV unless --format json).")
def export(data_path, outcome, timepoint, unit, export_all, measure, method, hksj, pi_method, cc,
           level, r, scale, multiarm, study_ci, by, output, fmt, force):
    """Export per-study and pooled results to CSV or JSON (tidy: one row per study or fit)."""
    from msc_meta.errors import UsageError
    from msc_meta.io_safe import check_output_early
    from msc_meta.report.export import TidyTable, export_rows

    require_outcome_or_all(outcome, timepoint, unit, export_all, "exports")
    fmt = table_format(output, fmt)
    check_output_early(output, force=force)       # fail before pooling anything

    from msc_meta.data import load_table

    table = load_table(data_path)
    options = dict(measure=measure, method=method, hksj=hksj, pi=pi_method, cc=cc, level=level,
                   multiarm=multiarm, study_ci=study_ci, r=r, scale=scale)
    if export_all:
        rows, skipped = _export_all(table, by, options)
        for line in skipped:
            diagnostic(f"msc-meta: note: skipped {line}")
        if not rows:
            raise UsageError("nothing to export: no selection of the table could be pooled")
    else:
        rows = _pool_rows(table, by, dict(options, outcome=outcome, timepoint=timepoint, unit=unit))
    path = export_rows(rows, output, fmt=fmt, force=force)
    n_pooled = rows.count("row_type", "pooled") if isinstance(rows, TidyTable) \
        else sum(1 for r in rows if r["row_type"] == "pooled")
    diagnostic(f"msc-meta: {len(rows)} rows ({n_pooled} pooled) written to {path}")


def _pool_rows(table, by, options) -> list[dict]:
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.subgroups import run_pool_by
    from msc_meta.report.export import tidy_rows

    if by:
        analyses, test = run_pool_by(table, by, **options)
        return tidy_rows(analyses, subgroup_test=test)
    return tidy_rows([run_pool(table, **options)])


def _export_all(table, by, options) -> tuple:
    """Pool every analysis of the table (``selection.analysis_keys``); collect what could not be pooled.

    Each analysis is selected from the whole table, exactly as ``pool``
    selects it (rows with a blank time point form their own analysis, as
    ``--timepoint blank``). Returns the rows (a ``TidyTable`` without ``--by``)
    and the stderr lines of the analyses skipped.
    """
    from msc_meta.errors import UsageError
    from msc_meta.pooling.analysis import run_pool_all
    from msc_meta.pooling.options import PoolOptions
    from msc_meta.pooling.selection import analysis_keys
    from msc_meta.report.export import tidy_table

    keys = analysis_keys(table)
    if not by:
        # one vectorised fit for the analyses that share a measure; the rows held as columns
        pooled = run_pool_all(table, keys, PoolOptions.build(**options))
        skipped = [_skipped(key, r) for key, r in zip(keys, pooled) if isinstance(r, UsageError)]
        return tidy_table([r for r in pooled if not isinstance(r, UsageError)]), skipped
    rows: list[dict] = []
    skipped: list[str] = []
    for outcome, timepoint, unit in keys:
        try:
            rows.extend(_pool_rows(table, by, dict(options, outcome=outcome, timepoint=timepoint,
                                                   unit=unit)))
        except UsageError as err:
            skipped.append(_skipped((outcome, timepoint, unit), err))
    return rows, skipped


def _skipped(key, error) -> str:
    """The stderr line of an analysis ``export --all`` could not pool (k = 0: no counts,
    single-arm rows under a two-arm measure, ...)."""
    from msc_meta.report.export import selection_label

    outcome, timepoint, unit = key
    weeks = None if timepoint == "blank" else timepoint
    return f"{selection_label(outcome, weeks, unit)}: {error}"
