"""The outcome's units (days, mm, points) beside a measure's label, where the measure has them.

A table may name the units of a continuous outcome in an optional text column,
``outcome_units`` (e.g. ``days``; any extra column is kept as text by the
loader). Measures whose natural-scale values are in those units (the
registry's ``Measure.units``: MD, MC, MN, MNLN) show them beside their label,
e.g. ``MD (days)``; standardised, ratio and count measures never do. When the
pooled rows disagree on the units (or leave them blank) nothing is shown: the
label must not claim a unit the rows do not share. Presentation only.
"""

from __future__ import annotations

from typing import Mapping

from msc_meta import registry

UNITS_COLUMN = "outcome_units"


def units_of(measure: str, studies, rows: Mapping[int, object], scale: str | None = None) -> str | None:
    """The one ``outcome_units`` value of the rows behind ``studies`` (StudyLine-like, with
    ``row_number``), when ``measure`` is in the outcome's units; else None."""
    if not registry.measure(measure, scale).units:
        return None
    found = set()
    for study in studies:
        row = rows.get(getattr(study, "row_number", None))
        value = _value(row)
        found.add(value.strip() if isinstance(value, str) else None)
    if len(found) != 1:
        return None
    return found.pop() or None


def units_in_table(measure: str, studies, table, scale: str | None = None) -> str | None:
    """:func:`units_of` over a loaded ``OutcomeTable``. ``studies`` may be a lazy iterable:
    it is read only when the measure has units and the table the column (a pool of 10^6
    risk ratios never builds its study lines here)."""
    if UNITS_COLUMN not in getattr(table, "columns", ()) or not registry.measure(measure, scale).units:
        return None
    return units_of(measure, studies, {row.row_number: row for row in table.rows}, scale)


def row_units(row) -> str | None:
    """The ``outcome_units`` text of one table row (None when the table has no such column
    or the cell is blank)."""
    value = _value(row)
    return value.strip() or None if isinstance(value, str) else None


def with_units(label: str, units: str | None) -> str:
    """``MD`` -> ``MD (days)``; the label alone without units."""
    return f"{label} ({units})" if units else label


def scale_with_units(spec, units: str | None) -> str:
    """The analysis scale in words, with the units only where that scale is the natural one
    (MD: "mean difference (days)"; MNLN's log mean has none)."""
    return with_units(spec.scale, units if spec.back == "identity" else None)


def _value(row):
    if row is None:
        return None
    from msc_meta.errors import UsageError

    getter = getattr(row, "value", None)
    try:
        return getter(UNITS_COLUMN) if getter is not None else None
    except UsageError:      # a table without the column: no units
        return None
