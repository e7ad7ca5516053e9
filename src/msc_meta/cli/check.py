"""``msc-meta check``: internal and source consistency of an outcome table (exit 1 on any failure)."""

from __future__ import annotations

import click

from msc_meta.cli.options import data_option, json_option
from msc_meta.report.terminal import json_document


@click.command("check")
@data_option
@click.option("--totals", "totals_path", type=click.Path(dir_okay=True, readable=False, path_type=str), default=None,
              help="totals.csv of stated trial totals. Default: the shipped one when --data is not given.")
@click.option("--sources", "sources_dir", type=click.Path(path_type=str), default=None, metavar="DIR",
              help="Folder of source documents: check each quote and its numbers against them.")
@click.option("--lock", "lock_path", default=None, metavar="FILE",
              help="Also compare every curated number and pooled result with this lock (msc-meta lock).")
@json_option
def check(data_path, totals_path, sources_dir, lock_path, as_json):
    """Check percentages, arm sizes, totals, the numbers bound to each quote and (with --sources) the quotes.

    Lists every failure with its row and reason, then "N rows checked, M
    failures". With --lock, every difference from the lock file is a failure
    of kind lock. Exit code 0 when all pass, 1 when any fails, 2 for bad input.
    """
    import os
    import sys

    from msc_meta.data import curated_totals_path, load_table, load_totals
    from msc_meta.data.check import run_checks
    from msc_meta.errors import UsageError

    if sources_dir is not None and not os.path.isdir(sources_dir):
        raise UsageError(f"--sources {sources_dir}: "
                         f"{'is a file, not a folder' if os.path.exists(sources_dir) else 'the folder does not exist'}")
    table = load_table(data_path)
    totals = None
    skipped = None
    if totals_path is not None:
        totals = load_totals(totals_path)
    elif data_path is None:
        if curated_totals_path().is_file():
            totals = load_totals(None)
        else:
            skipped = "totals: not checked (no totals.csv ships with this installation)"
    else:
        skipped = "totals: not checked (give --totals with --data)"
    report = run_checks(table, totals, sources_dir, totals_skipped=skipped)
    if lock_path is not None:
        from msc_meta.data.check import with_lock

        report = with_lock(report, table, totals, lock_path)
    if as_json:
        click.echo(json_document(report.to_dict()))
    else:
        from msc_meta.report.check_report import render_check

        click.echo(render_check(report))
    if not report.ok:
        sys.stdout.flush()
        sys.exit(1)
