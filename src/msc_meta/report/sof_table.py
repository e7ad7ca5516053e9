"""GRADE-style summary-of-findings table (rich) and its JSON document.

Presentation only: the numbers come from ``msc_meta.pooling.sof``. The
layout follows the GRADE summary-of-findings table (Guyatt et al. 2013,
J Clin Epidemiol 66:158): outcome, anticipated absolute effects per 1,000
(risk with control, risk with the intervention, the difference), the
relative effect, participants (studies), and comments. Certainty of the
evidence needs a reviewer's judgement (risk of bias, indirectness,
publication bias) and is not graded here; the table lists the facts that
bear on imprecision and inconsistency instead.
"""

from __future__ import annotations

import math

from msc_meta import registry
from msc_meta.report.terminal import json_document



def _n(x, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "\u2014"
    return f"{x:.{digits}f}"


def _count(x) -> str:
    # a control divided among subgroups (--multiarm combine with --by) is fractional
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _signed(x) -> str:
    if x is None or not math.isfinite(x):
        return "\u2014"
    text = f"{abs(x):.0f}"
    if text == "0":
        return "0"
    return ("+" if x > 0 else "\u2212") + text


def _weeks(weeks) -> str:
    from msc_meta.report.export import format_weeks

    return "" if weeks is None else f"{format_weeks(weeks)} weeks"


def outcome_label(row) -> str:
    parts = [row.outcome.replace("_", " ")]
    if row.timepoint_weeks is not None:
        parts.append(_weeks(row.timepoint_weeks))
    if row.unit:
        parts.append(f"per {row.unit}")
    label = ", ".join(parts)
    if row.group is not None:
        by = getattr(row, "by", None)
        label += f"\n[{by} = {row.group}]" if by else f"\n[{row.group}]"
    return label


def cells(row) -> dict:
    """Display strings of one SummaryOfFindings row."""
    rel = row.measure
    if registry.measure(row.measure).null == 0.0:      # a difference: three decimals
        relative = (f"{rel} {row.relative_effect:.3f}\n"
                    f"({row.relative_ci_low:.3f} to {row.relative_ci_high:.3f})")
    else:
        relative = (f"{rel} {row.relative_effect:.2f}\n"
                    f"({row.relative_ci_low:.2f} to {row.relative_ci_high:.2f})")
    return {
        "outcome": outcome_label(row),
        "control": _n(row.control_per_1000),
        "intervention": (f"{_n(row.intervention_per_1000)}\n"
                         f"({_n(row.intervention_ci_low)} to {_n(row.intervention_ci_high)})"),
        "difference": (f"{_signed(row.rd_per_1000)}\n"
                       f"({_signed(row.rd_ci_low)} to {_signed(row.rd_ci_high)})"),
        "relative": relative,
        "participants": f"{_count(row.participants)}\n({row.k} stud{'y' if row.k == 1 else 'ies'})",
        "nnt": row.nnt.text,
    }


def render(rows, *, label_t: str = "MSC") -> list:
    """Rich renderables: the table, then the footnotes."""
    from rich import box
    from rich.table import Table
    from msc_meta.report.terminal import cell as Text

    first = rows[0]
    table = Table(title=f"Summary of findings: {label_t} compared with control",
                  box=box.SIMPLE_HEAVY, show_lines=True, title_justify="left",
                  caption=f"Risks per 1,000; {first.level:g}% confidence intervals in brackets. "
                          f"N: {'fistulas' if first.unit == 'fistula' else 'participants'}, "
                          f"a shared control arm counted once.",
                  caption_justify="left")
    table.add_column("Outcome", min_width=12, overflow="fold")
    table.add_column("Risk with\ncontrol*\nper 1,000", min_width=9)
    table.add_column(f"Risk with\n{label_t}\nper 1,000", min_width=9)
    table.add_column("Difference\nper 1,000", min_width=10)
    table.add_column("Relative\neffect", min_width=8)
    table.add_column("N\n(studies)", min_width=11)
    for row in rows:
        c = cells(row)
        # Text, not markup: a group label like "[adipose]" must print as it is
        table.add_row(*(Text(c[key]) for key in ("outcome", "control", "intervention",
                                                  "difference", "relative", "participants")))
    return [table]


def footnotes(row) -> list[str]:
    """The lines printed under the table for one row (NNT, control risk, flags, notes)."""
    i2 = f"{row.i2:.0f}%" if row.i2 is not None and math.isfinite(row.i2) else "n/a"
    lines = [f"{outcome_label(row).replace(chr(10), ' ')}:",
             f"  NNT: {row.nnt.text}; events counted as {row.events}",
             f"  * Control risk: {_n(row.control_per_1000)} per 1,000 ({row.control_risk_source})",
             f"  Pooled with {row.method}; k = {row.k}; I\u00b2 = {i2}"]
    if row.pi_low is not None and row.pi_high is not None:
        lines.append(f"  Prediction interval ({row.measure}): "
                     f"{row.pi_low:.2f} to {row.pi_high:.2f}")
    lines.append("  Certainty (GRADE): not graded here; it needs a reviewer's judgement of risk "
                 "of bias, indirectness and publication bias. Facts that bear on it:")
    lines.extend(f"    - {flag}" for flag in row.flags or ("none flagged",))
    if row.notes:
        lines.append("  Notes:")
        lines.extend(f"    - {note}" for note in row.notes)
    return lines


def print_report(rows, *, label_t: str = "MSC") -> None:
    """The table, then the footnotes wrapped to the terminal with hanging indents."""
    import textwrap

    from msc_meta.report.terminal import console as Console

    console = Console()
    for item in render(rows, label_t=label_t):
        console.print(item)
    width = max(40, console.width - 1)
    for row in rows:
        for line in footnotes(row):
            indent = len(line) - len(line.lstrip())
            hang = indent + (2 if line.lstrip().startswith("- ") else 0)
            console.print(textwrap.fill(line, width, initial_indent="", subsequent_indent=" " * hang),
                          markup=False, highlight=False, soft_wrap=True)
        console.print()


def to_json(rows, *, grouped: bool = False) -> str:
    """One object (a list of them with ``--by``); NaN/inf -> null."""
    docs = [row.to_dict() for row in rows]
    return json_document(docs if grouped else docs[0])
