"""``msc-meta fragility``: Fisher's exact test and the fragility index of each two-arm row."""

from __future__ import annotations

import click

from msc_meta.cli.options import data_option, json_option, multiarm_option, timepoint_unit_options

EPILOG = """\b
Examples:
  msc-meta fragility
  msc-meta fragility --outcome fistula_closure --timepoint 24 --unit patient
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


def counts_only_message(outcome, families) -> str:
    """One line: the rows' outcome type (in words and by family name), why the fragility index
    does not apply, and what answers the same question for them."""
    from msc_meta import registry

    what = f"outcome '{outcome}'" if outcome else "the selection"
    held = "; ".join(f"{registry.FAMILIES.get(f, f)} (family {f})" for f in families)
    return (f"{what} holds {held}: the fragility index counts patients whose event would flip "
            "Fisher's exact test, so it applies to event counts in two arms (2x2 tables) only; "
            "for these rows use `msc-meta pool` (the test of the pooled effect) or "
            "`msc-meta sensitivity` (how much the result rests on each study)")


@click.command(epilog=EPILOG)
@data_option
@click.option("--outcome", default=None, metavar="KEY",
              help="Only this outcome (default: every outcome with two-arm counts).")
@timepoint_unit_options
@multiarm_option
@json_option
def fragility(data_path, outcome, timepoint, unit, multiarm, as_json):
    """Fragility index of each two-arm result (Fisher's exact test, two-sided, 0.05).

    One line per two-arm comparison that `pool` would pool (rows selected,
    overlapping groups left out and shared control arms handled exactly as
    `pool` does): the Fisher exact p-value, whether it is below 0.05, and
    the fragility index (or the reverse index when it is not significant).
    """
    from msc_meta.data import load_table
    from msc_meta.errors import UsageError
    from msc_meta.pooling.fragility import comparisons_of, fragility_index

    if multiarm.lower() == "split":
        raise UsageError("--multiarm split makes the shared control's counts non-integer, and "
                         "Fisher's exact test needs whole counts; use --multiarm combine (or keep)")
    table = load_table(data_path)
    found = comparisons_of(table, outcome=outcome, timepoint=timepoint, unit=unit,
                           multiarm=multiarm.lower())
    if not found.comparisons and found.other_families:
        raise UsageError(counts_only_message(outcome, found.other_families))
    if not found.comparisons:
        what = f"outcome '{outcome}'" if outcome else "the selection"
        raise UsageError(f"{what} has no two-arm rows with counts in {table.path}"
                         f"{' (with these --timepoint/--unit)' if timepoint is not None or unit else ''}: "
                         "the fragility index needs events and n in both arms")
    items = [(r, fragility_index(r.events_t, r.n_t, r.events_c, r.n_c)) for r in found.comparisons]

    from msc_meta.report import tiny_tables

    if as_json:
        click.echo(tiny_tables.fragility_json(items))
    else:
        tiny_tables.print_fragility(items, skipped=found.no_counts, single_arm=found.single_arm)
