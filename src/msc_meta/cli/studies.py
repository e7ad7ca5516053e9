"""``msc-meta studies``: the evidence table (or every row as JSON)."""

from __future__ import annotations

import click

from msc_meta.cli.options import data_option, json_option
from msc_meta.report.terminal import json_document


@click.command("studies")
@data_option
@click.option("--outcome", default=None, metavar="KEY", help="Show only this outcome (e.g. fistula_closure).")
@json_option
def studies(data_path, outcome, as_json):
    """List the outcome table, one row per outcome, time point and study group.

    Rows whose source gives no count are listed too, with the percentage the
    source printed; they are never pooled.
    """
    import shutil
    import sys

    from msc_meta.data import load_table
    from msc_meta.data.keys import key
    from msc_meta.errors import UsageError

    table = load_table(data_path)
    rows = table.rows
    if outcome is not None:
        rows = tuple(r for r in rows if key(r.outcome) == key(outcome))
        if not rows:
            raise UsageError(f"no rows with outcome '{outcome}' in {table.path}; "
                             f"outcomes are: {', '.join(table.outcomes())}")
    if as_json:
        from msc_meta.report.studies_table import studies_json

        click.echo(json_document(studies_json(rows)))
        return
    from msc_meta.report.studies_table import render_studies

    width = shutil.get_terminal_size((80, 24)).columns
    color = sys.stdout.isatty()
    click.echo(render_studies(table, rows, width=max(width, 40), color=color), nl=False)
