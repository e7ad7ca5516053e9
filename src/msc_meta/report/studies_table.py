"""The evidence table of ``msc-meta studies``: one line per outcome row, readable at 80 columns.

Presentation only: percentages shown are ``100 * events / n`` of the row's
own counts; a row without counts shows "—" and the percentage the source
printed instead, "(63%)", so that nothing is silently hidden. Rows of other
outcome types show their inputs as the table gives them, by type
(:func:`format_inputs`), e.g. ``6.1 → 2.6 mm``, ``SEM 1.2/0.9``, ``p = 0.006``, ``n = 9``,
one line each.
"""

from __future__ import annotations

from msc_meta.data.load import OutcomeTable, Row, format_weeks
from msc_meta.report.units import row_units


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


def _num(x) -> str:
    """A number as the table gives it (shortest form, up to 6 significant digits)."""
    return "—" if x is None else f"{float(x):g}"


def _range(lo, hi) -> str:
    return f"{_num(lo)}–{_num(hi)}"


def _spread(row: Row, arm: str) -> str:
    """The spread of one arm's mean as the table gives it: SD, SEM and/or the 95% CI of the mean."""
    parts = []
    for name, label in ((f"sd_{arm}", "SD"), (f"se_{arm}", "SEM")):
        if getattr(row, name, None) is not None:
            parts.append(f"{label} {_num(getattr(row, name))}")
    lo, hi = getattr(row, f"mean_ci_low_{arm}", None), getattr(row, f"mean_ci_high_{arm}", None)
    if lo is not None or hi is not None:
        # conversions.fill_spreads reads such a CI as a 95% CI of the mean
        parts.append(f"95% CI {_range(lo, hi)}")
    return f" ({', '.join(parts)})" if parts else ""


def _quantiles(row: Row, arm: str) -> str:
    med = getattr(row, f"median_{arm}", None)
    q1, q3 = getattr(row, f"q1_{arm}", None), getattr(row, f"q3_{arm}", None)
    lo, hi = getattr(row, f"min_{arm}", None), getattr(row, f"max_{arm}", None)
    if med is None and q1 is None and lo is None:
        return ""
    parts = []
    if q1 is not None or q3 is not None:
        parts.append(f"IQR {_range(q1, q3)}")
    if lo is not None or hi is not None:
        parts.append(f"range {_range(lo, hi)}")
    return f"median {_num(med)}" + (f" ({', '.join(parts)})" if parts else "")


def _mean_arm(row: Row, arm: str, units: str | None) -> str:
    """``10.2 mm (SD 2.1)`` over ``n = 20``; a median with its IQR and/or range where given."""
    mean = getattr(row, f"mean_{arm}", None)
    spread = _spread(row, arm)
    lines = []
    if mean is not None or spread:
        lines.append(f"{_num(mean)}{f' {units}' if units else ''}{spread}")
    quantiles = _quantiles(row, arm)
    if quantiles:
        lines.append(quantiles)
    n = getattr(row, f"n_{arm}", None)
    if n is not None:
        lines.append(f"n = {n}")
    return "\n".join(lines) or "—"


def _paired(row: Row, units: str | None) -> str:
    """``6.1 → 2.6 mm``, ``SEM 1.2/0.9``, ``p = 0.006``, ``n = 9`` (one line each): before
    → after, their spread, r and the paired test (t, p), and n, as the table gives them."""
    lines = [f"{_num(row.mean_pre)} → {_num(row.mean_post)}{f' {units}' if units else ''}"]
    for pre, post, label in (("sd_pre", "sd_post", "SD"), ("se_pre", "se_post", "SEM")):
        a, b = getattr(row, pre), getattr(row, post)
        if a is not None or b is not None:
            lines.append(f"{label} {_num(a)}/{_num(b)}")
            break
    lines += [f"{name} = {_num(getattr(row, column))}"
              for column, name in (("r", "r"), ("t_stat", "t"), ("p_value", "p"))
              if getattr(row, column) is not None]
    if row.n_t is not None:
        lines.append(f"n = {row.n_t}")
    return "\n".join(lines)


def _rate(events, time) -> str:
    return f"{_num(events)}/{_num(time)}\nperson-time"


def _generic(row: Row) -> str:
    """``yi = -0.889`` over ``SE 0.571`` (or vi), or ``0.41`` over ``(95% CI 0.13–1.26)``,
    as the table gives it."""
    if row.yi is not None:
        spread = (f"SE {_num(row.sei)}" if row.sei is not None
                  else f"vi = {_num(row.vi)}" if row.vi is not None else "")
        lines = [f"yi = {_num(row.yi)}", spread]
    else:
        level = 95.0 if row.effect_level is None else row.effect_level
        lines = [_num(row.effect), f"({level:g}% CI {_range(row.effect_ci_low, row.effect_ci_high)})"]
    if row.n_t is not None:
        lines.append(f"n = {row.n_t}")
    return "\n".join(line for line in lines if line)


def format_inputs(row: Row, units: str | None = None) -> tuple[str, str]:
    """The treatment (or single-group) and control cells of a row by its outcome type
    (``Row.family``), lines separated by newlines: counts as :func:`format_arm`, means
    with their spread as given (SD, SEM, CI of the mean, median with IQR/range) and n,
    paired means as before → after with their spread, the paired test and n, rates as
    events/person-time, r with n, generic effects as given. ``units``: the row's
    ``outcome_units``, shown after the means."""
    family = row.family
    if family == "means_paired":
        return _paired(row, units), ""
    if family == "means_two":
        return _mean_arm(row, "t", units), _mean_arm(row, "c", units)
    if family == "means_one":
        return _mean_arm(row, "t", units), ""
    if family == "rates_two":
        return _rate(row.events_t, row.time_t), _rate(row.events_c, row.time_c)
    if family == "rates_one":
        return _rate(row.events_t, row.time_t), ""
    if family == "correlations":
        return f"r = {_num(row.cor_t)}\nn = {_num(row.n_t)}", ""
    if family == "generic":
        return _generic(row), ""
    treatment = format_arm(row.events_t, row.n_t, row.pct_t)
    if row.is_comparison or row.n_c is not None or row.pct_c is not None:
        return treatment, format_arm(row.events_c, row.n_c, row.pct_c)
    return treatment, ""


NO_COUNT_LEGEND = ("— = the source gives no count; (63%) = the percentage it printed instead. "
                   "Such rows are listed, never pooled.")


OTHER_DATA_LEGEND = ("Means, rates, correlations and effects are shown as the table gives them "
                     "(SD, SEM, CI, median; a paired test's p or t); `pool` converts a spread "
                     "given another way and names the conversion in its notes.")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def studies_summary(rows: tuple[Row, ...]) -> str:
    with_counts = sum(1 for r in rows if r.family == "counts")
    other = sum(1 for r in rows if r.has_data) - with_counts
    studies = len({r.study_id for r in rows})
    trials = len({r.trial or r.study_id for r in rows})
    outcomes = len({r.outcome for r in rows})
    comparisons = sum(1 for r in rows if r.is_comparison)
    data = f"{with_counts} with counts, " + (f"{other} with means or other data, " if other else "")
    return (f"{_count(len(rows), 'row')} ({data}{len(rows) - with_counts - other} without; "
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
    arms = [format_inputs(row, row_units(row)) for row in rows]
    two_arms = any(control for _, control in arms)
    grid.add_column("Treatment", justify="right", overflow="fold")
    if two_arms:     # single-group rows only: the width goes to the outcome key instead
        grid.add_column("Control", justify="right", overflow="fold")
    for row, (treatment, control) in zip(rows, arms):
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
        grid.add_row(study, intervention, outcome, Text(treatment), *([Text(control)] if two_arms else []))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color,
                      color_system="auto" if color else None, highlight=False, soft_wrap=False)
    console.print(grid)
    if any(not r.has_data for r in rows):
        console.print(NO_COUNT_LEGEND, style="dim", overflow="fold")
    if any(r.has_data and r.family != "counts" for r in rows):
        console.print(OTHER_DATA_LEGEND, style="dim", overflow="fold")
    console.print(f"{studies_summary(rows)}. Source: {table.path}", style="dim", overflow="fold")
    return buffer.getvalue()


def studies_json(rows: tuple[Row, ...]) -> list[dict]:
    """All columns, typed (None when blank), plus ``row`` (spreadsheet row) and extra columns as text."""
    return [row.to_dict() for row in rows]
