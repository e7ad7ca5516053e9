"""The evidence table of ``msc-meta studies``: one line per outcome row, readable at 80 columns.

Presentation only: percentages shown are ``100 * events / n`` of the row's
own counts; a row without counts shows "—" and the percentage the source
printed instead, "(63%)", so that nothing is silently hidden.
"""

from __future__ import annotations

from msc_meta.data.load import OutcomeTable, Row, format_weeks


def format_dose(row: Row) -> str | None:
    """dose_text when given (it says what the source says), else dose_cells as 3×10^7."""
    if row.dose_text:
        return row.dose_text
    if row.dose_cells is None:
        return None
    mantissa, exponent = f"{row.dose_cells:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    exponent = int(exponent)
    if exponent < 3:
        return f"{row.dose_cells:g} cells"
    return f"{mantissa}×10^{exponent} cells"


def format_arm(events: int | None, n: int | None, printed: str | None) -> str:
    """'21/30' over '70.0%'; without a count '—/30' (or '—') over '(63%)', the percentage the source printed."""
    if events is not None and n is not None:
        return f"{events}/{n}\n{100.0 * events / n:.1f}%"
    count = f"—/{n}" if n is not None else "—"
    if printed is not None:
        return f"{count}\n({printed}%)"
    return count


NO_COUNT_LEGEND = ("— = the source gives no count; (63%) = the percentage it printed instead. "
                   "Such rows are listed, never pooled.")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def studies_summary(rows: tuple[Row, ...]) -> str:
    with_counts = sum(1 for r in rows if r.has_counts)
    studies = len({r.study_id for r in rows})
    trials = len({r.trial or r.study_id for r in rows})
    outcomes = len({r.outcome for r in rows})
    comparisons = sum(1 for r in rows if r.is_comparison)
    return (f"{_count(len(rows), 'row')} ({with_counts} with counts, {len(rows) - with_counts} without; "
            f"{comparisons} two-arm), {_count(studies, 'study group')} in {_count(trials, 'trial')}, "
            f"{_count(outcomes, 'outcome')}")


def render_studies(table: OutcomeTable, rows: tuple[Row, ...], *, width: int = 80,
                   color: bool = False) -> str:
    """The rich table as text (ANSI colours only when ``color``)."""
    import io

    from rich import box
    from msc_meta.report.terminal import console as Console
    from rich.table import Table
    from msc_meta.report.terminal import cell as Text

    grid = Table(box=box.SIMPLE_HEAD, show_lines=False, pad_edge=False, expand=False,
                 title=None, header_style="bold")
    # The outcome key is what users type into --outcome: cap the other text
    # columns so that it stays whole when it can (rich's min_width overflows).
    grid.add_column("Study", overflow="fold", max_width=max(width // 5, 8))
    grid.add_column("Design, cells, dose", overflow="fold", max_width=max(width // 5, 10))
    grid.add_column("Outcome", overflow="fold")
    grid.add_column("Treatment", justify="right", overflow="fold")
    grid.add_column("Control", justify="right", overflow="fold")
    for row in rows:
        study = Text(row.study_id, style="bold")
        if row.trial and row.trial != row.study_id:
            study.append(f"\n{row.trial}", style="dim")
        intervention = Text(row.design or "", style="dim")
        cells = ", ".join(x for x in (row.cell_source, row.donor, row.route) if x)
        dose = format_dose(row)
        for part in (cells, dose):
            if part:
                intervention.append(("\n" if intervention else "") + part, style="")
        when = []
        if row.timepoint_weeks is not None:
            when.append(f"{format_weeks(row.timepoint_weeks)} wk")
        if row.unit:
            when.append(f"per {row.unit}")
        outcome = Text(row.outcome)
        if when:
            outcome.append("\n" + ", ".join(when), style="dim")
        treatment = format_arm(row.events_t, row.n_t, row.pct_t)
        if row.is_comparison or row.n_c is not None or row.pct_c is not None:
            control = format_arm(row.events_c, row.n_c, row.pct_c)
        else:
            control = ""
        grid.add_row(study, intervention, outcome, treatment, control)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color,
                      color_system="auto" if color else None, highlight=False, soft_wrap=False)
    console.print(grid)
    if any(not r.has_counts for r in rows):
        console.print(NO_COUNT_LEGEND, style="dim", overflow="fold")
    console.print(f"{studies_summary(rows)}. Source: {table.path}", style="dim", overflow="fold")
    return buffer.getvalue()


def studies_json(rows: tuple[Row, ...]) -> list[dict]:
    """All columns, typed (None when blank), plus ``row`` (spreadsheet row) and extra columns as text."""
    return [row.to_dict() for row in rows]
