"""``msc-meta fragility``: Fisher's exact test and the fragility index of each two-arm row."""

from __future__ import annotations

import click

from msc_meta.cli.options import data_option, json_option

EPILOG = """\b
Examples:
  msc-meta fragility
  msc-meta fragility --outcome fistula_closure --timepoint 24
  msc-meta fragility --json

\b
Reading the output:
  For a significant result (Fisher p < 0.05) the index is the number of
  patients in the arm with the lower event proportion who would have had
  to have the event for p to reach 0.05 (Walsh et al. 2014). An index of 1
  or 2 means the conclusion hangs on one or two patients. For a result
  that is not significant, the reverse index is the fewest changes of
  outcome that would have made it significant. See docs/methods.md.
"""


@click.command(epilog=EPILOG)
@data_option
@click.option("--outcome", default=None, metavar="KEY",
              help="Only this outcome (default: every outcome with two-arm counts).")
@click.option("--timepoint", type=float, default=None, metavar="WEEKS",
              help="Only rows assessed at this time point (weeks).")
@click.option("--unit", type=click.Choice(["patient", "fistula"]), default=None,
              help="Only rows whose n counts patients or fistulas.")
@json_option
def fragility(data_path, outcome, timepoint, unit, as_json):
    """Fragility index of each two-arm result (Fisher's exact test, two-sided, 0.05).

    One line per two-arm row with counts: the Fisher exact p-value, whether
    it is below 0.05, and the fragility index (or the reverse index when it
    is not significant).
    """
    import math

    from msc_meta.data import load_table
    from msc_meta.errors import UsageError
    from msc_meta.pooling.fragility import fragility_index

    table = load_table(data_path)
    rows = list(table.rows)
    if outcome is not None:
        rows = [r for r in rows if r.outcome == outcome]
        if not rows:
            keys = ", ".join(table.outcomes()) or "(none)"
            raise UsageError(f"no rows with outcome '{outcome}' in {table.path}; outcomes are: {keys}")
    if timepoint is not None:
        rows = [r for r in rows if r.timepoint_weeks is not None
                and math.isclose(r.timepoint_weeks, timepoint, rel_tol=0, abs_tol=1e-9)]
    if unit is not None:
        rows = [r for r in rows if r.unit == unit]
    two_arm = [r for r in rows if r.is_comparison and r.has_counts]
    no_counts = sum(1 for r in rows if not r.is_comparison
                    and (r.pct_c is not None or r.events_c is not None or r.n_c is not None))
    single = sum(1 for r in rows if r.has_counts and not r.is_comparison)
    if not two_arm:
        what = f"outcome '{outcome}'" if outcome else "the selection"
        raise UsageError(f"{what} has no two-arm rows with counts in {table.path}"
                         f"{' (with these --timepoint/--unit)' if timepoint is not None or unit else ''}: "
                         "the fragility index needs events and n in both arms")
    items = [(r, fragility_index(r.events_t, r.n_t, r.events_c, r.n_c)) for r in two_arm]

    from msc_meta.report import tiny_tables

    if as_json:
        click.echo(tiny_tables.fragility_json(items))
    else:
        tiny_tables.print_fragility(items, skipped=no_counts, single_arm=single)
