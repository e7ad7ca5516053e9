"""The data layer: the outcome table's schema, loading with validation, and consistency checks.

``from msc_meta.data import load_table, select`` is all an analysis needs;
``msc_meta.data.check`` holds the checks behind ``msc-meta check``.
"""

from msc_meta.data.load import (
    OutcomeTable,
    Row,
    TotalsRow,
    TotalsTable,
    curated_path,
    curated_totals_path,
    format_weeks,
    load_table,
    load_totals,
    select,
)

__all__ = [
    "OutcomeTable", "Row", "TotalsRow", "TotalsTable", "curated_path", "curated_totals_path",
    "format_weeks", "load_table", "load_totals", "select",
]
