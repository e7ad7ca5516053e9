"""``msc-meta lock``: write the results lock that ``msc-meta check --lock`` compares against."""

from __future__ import annotations

import click

from msc_meta.cli.options import data_option

EPILOG = """\b
Examples:
  msc-meta lock -o results.lock.json
  msc-meta lock -o - --data my_table.csv

\b
The shipped lock is data/results.lock.json; CI runs
`msc-meta check --lock data/results.lock.json`, and after a deliberate
change of a number or of the pooling code the lock is updated, from the
repository root, with `msc-meta lock -o data/results.lock.json --force`
(commit the diff: it shows what moved).

\b
The lock holds every curated number (exact) and the pooled result (k,
measure, method, estimate, CI, tau2) of every outcome x time point x unit
of the table, pooled with pool's default options (recorded in the file).
JSON with sorted keys, so that a diff of two locks is readable. The file is
written completely before it appears under its name, and an existing lock is
replaced only with --force: updating the lock is a deliberate act.
"""


@click.command("lock", epilog=EPILOG)
@data_option
@click.option("--totals", "totals_path", default=None, metavar="FILE",
              help="totals.csv whose totals to lock. Default: the shipped one when --data is not given.")
@click.option("-o", "--output", "output", required=True, metavar="FILE", help="Lock file to write, or - for stdout.")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def lock(data_path, totals_path, output, force):
    """Write every curated number and every pooled result to a lock file (JSON)."""
    from msc_meta.data import curated_totals_path, load_table, load_totals
    from msc_meta.data.lock import build_lock, dumps
    from msc_meta.io_safe import write_output
    from msc_meta.report.terminal import diagnostic

    table = load_table(data_path)
    totals = None
    if totals_path is not None:
        totals = load_totals(totals_path)
    elif data_path is None and curated_totals_path().is_file():
        totals = load_totals(None)
    text = dumps(build_lock(table, totals))
    where = write_output(output, lambda handle: handle.write(text), force=force)
    if where != "stdout":
        diagnostic(f"wrote {where}: {len(table.rows)} rows, the pooled results of every analysis")
