"""GRADE summary-of-findings table: terminal (rich), JSON and CSV.

Presentation only: the numbers come from ``msc_meta.pooling.sof`` (one
:class:`~msc_meta.pooling.sof.Finding` per outcome) and the certainty from
``msc_meta.pooling.certainty``. The layout follows the Cochrane / GRADEpro
summary-of-findings table (Cochrane Handbook chapter 14; Guyatt et al. 2013,
J Clin Epidemiol 66:158-172): outcome and time point, the anticipated
absolute effects (the comparator's value, the value with the intervention,
the difference), the relative effect, participants (studies), the certainty
of the evidence and comments. Computed facts that bear on the certainty are
printed under the table as *hints*, never as a rating.
"""

from __future__ import annotations

from msc_meta.data.arms import CURATED_TREATMENT

import math

from msc_meta.report.terminal import json_document

CERTAINTY_SYMBOLS = {"high": "\u2295\u2295\u2295\u2295", "moderate": "\u2295\u2295\u2295\u25ef",
                     "low": "\u2295\u2295\u25ef\u25ef", "very low": "\u2295\u25ef\u25ef\u25ef"}


def _n(x, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "\u2014"
    return f"{x:,.{digits}f}"


def _count(x) -> str:
    # a control divided among subgroups (--multiarm combine with --by) is fractional
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _weeks(weeks) -> str:
    from msc_meta.report.export import format_weeks

    return "" if weeks is None else f"{format_weeks(weeks)} weeks"


def outcome_label(row, compact: bool = False) -> str:
    """"fistula closure, 208 weeks, per patient" (compact: the time point and unit on a line
    of their own, "208 wk, patient")."""
    parts = []
    if row.timepoint_weeks is not None:
        parts.append(_weeks(row.timepoint_weeks).replace(" weeks", " wk") if compact
                     else _weeks(row.timepoint_weeks))
    if row.unit:
        parts.append(row.unit if compact else f"per {row.unit}")
    label = row.outcome.replace("_", " ")
    if parts:
        label += ("\n" if compact else ", ") + ", ".join(parts)
    if row.group is not None:
        by = getattr(row, "by", None)
        label += f"\n[{by} = {row.group}]" if by else f"\n[{row.group}]"
    return label


def _digits(row) -> int:
    return 0 if row.absolute.scale.startswith("per 1,000") else 2


def _signed(x, digits: int) -> str:
    if x is None or not math.isfinite(x):
        return "\u2014"
    text = f"{abs(x):,.{digits}f}"
    if float(text.replace(",", "")) == 0:
        return text
    return ("+" if x > 0 else "\u2212") + text


def _effect(row) -> str:
    """The pooled estimate as the relative-effect column shows it."""
    digits = 2 if row.relative else 3
    return (f"{row.natural} {row.estimate:.{digits}f}\n"
            f"({row.ci_low:.{digits}f} to {row.ci_high:.{digits}f})")


def certainty_text(row) -> str:
    level = row.certainty.level
    if level in CERTAINTY_SYMBOLS:
        return f"{CERTAINTY_SYMBOLS[level]}\n{level.upper()}"
    return "not rated"


def _studies(k: int) -> str:
    return f"({k} stud{'y' if k == 1 else 'ies'})"


def cells(row) -> dict:
    """Display strings of one Finding: compact cells for the terminal and HTML tables (the
    words of the absolute effect are in ``absolute.text``, the footnotes, JSON and CSV)."""
    a = row.absolute
    d = _digits(row)
    with_t = "\u2014" if a.value is None else \
        f"{_n(a.value, d)}\n({_n(a.value_ci_low, d)} to {_n(a.value_ci_high, d)})"
    if a.difference is not None:
        sd = 2 if a.kind == "standardised" else d
        difference = (f"{_signed(a.difference, sd)}\n({_signed(a.difference_ci_low, sd)} to "
                      f"{_signed(a.difference_ci_high, sd)})")
        if a.interpretation:
            difference += f"\n{a.interpretation.split(' (')[0]}"
    else:
        difference = "\u2014"
    # a difference (RD, MD, ...) is the Difference column, not a relative effect (as GRADEpro);
    # a correlation or a generic effect has no absolute effect, so its estimate shows here
    relative = _effect(row) if row.relative or a.kind == "none" else "\u2014"
    if row.participants is not None:
        n = f"{_count(row.participants)}\n{_studies(row.k)}"
    elif row.person_time is not None:
        n = f"{_n(row.person_time, 1)} PT\n{_studies(row.k)}"
    else:
        n = _studies(row.k)
    label = outcome_label(row, compact=True)
    if a.scale and a.scale != "per 1,000":        # risks per 1,000: said in the caption
        label += f"\n({a.scale})"
    return {"outcome": label, "comparator": "\u2014" if a.comparator is None else _n(a.comparator, d),
            "intervention": with_t, "difference": difference, "relative": relative,
            "participants": n, "certainty": certainty_text(row), "comments": row.comments or ""}


HEADERS = (("outcome", "Outcome"), ("comparator", "Control*"), ("intervention", "With {t}"),
           ("difference", "Differ-\nence"), ("relative", "Relative\neffect"),
           ("participants", "N\n(studies)"), ("certainty", "Certainty"), ("comments", "Comments"))


def columns_of(rows, terminal: bool = False) -> list[str]:
    """The columns shown: Comments only when a rater wrote one, and not in a terminal, whose
    80 columns it would squeeze (the footnotes print it in full)."""
    return [key for key, _ in HEADERS
            if key != "comments" or (not terminal and any(r.comments for r in rows))]


def caption(rows) -> str:
    return (f"{rows[0].level:g}% CIs in brackets. Risks and rates per 1,000, means in the "
            f"outcome's units (under each outcome). *Control: the comparator's risk, mean or rate "
            f"(paired means: before). \u2014: not applicable or not estimable (one group has no "
            f"comparator; a difference has no relative effect; a ratio at a control risk of 0 "
            f"gives no absolute effect). N: participants, a shared control arm counted "
            f"once; PT: person-time. Certainty: GRADE, from the rater's inputs only.")


def render(rows, *, label_t: str = CURATED_TREATMENT, width: int = 80):
    """The rich table of one or several outcomes, its columns fitted to ``width``."""
    from rich import box
    from rich.table import Table

    from msc_meta.report.terminal import cell as Text

    table = Table(title=f"Summary of findings: {label_t} compared with control",
                  box=box.SIMPLE_HEAVY, show_lines=True, title_justify="left", padding=(0, 1),
                  pad_edge=False)
    shown = columns_of(rows, terminal=True)
    headers = {key: header.format(t=label_t) for key, header in HEADERS}
    body = [cells(row) for row in rows]
    widths = fit_widths([[headers[k]] + [c[k] for c in body] for k in shown],
                        width - 3 * len(shown) + 1,   # padding 1+1 inside, n+1 box edges
                        first=[i for i, k in enumerate(shown) if k == "outcome"])
    for key, w in zip(shown, widths):
        table.add_column(Text(headers[key]), overflow="fold", width=w)
    for c in body:
        # Text, not markup: a group label like "[adipose]" or a comment must print as it is
        table.add_row(*(Text(c[key]) for key in shown))
    return table


def fit_widths(columns, available: int, first=()) -> list[int]:
    """Column widths: each column's longest line, shrunk (the text columns ``first``, then the
    widest, never below a column's longest word) until they fit ``available`` characters.
    rich's own shrinking squeezes short columns and, with minimum widths, crops the last one."""
    natural = [max(len(line) for text in col for line in text.split("\n")) for col in columns]
    floor = [max(len(word) for text in col for word in text.split()) if any(t.split() for t in col)
             else 1 for col in columns]
    widths = list(natural)
    for i in first:
        widths[i] = max(floor[i], widths[i] - max(0, sum(widths) - available))
    while sum(widths) > available:
        room = [(w - f, i) for i, (w, f) in enumerate(zip(widths, floor)) if w > f]
        if not room:
            break
        _, i = max((widths[i], i) for _, i in room)
        widths[i] -= 1
    return widths


def footnotes(row) -> list[str]:
    """The lines printed under the table for one row: certainty inputs, hints, NNT, notes."""
    cert = row.certainty
    lines = [f"{outcome_label(row).replace(chr(10), ' ')}:"]
    if row.comments:
        lines.append(f"  Comments: {row.comments}")
    if row.risk is not None:
        lines.append(f"  NNT: {row.risk.nnt.text}; events counted as {row.risk.events}")
    a = row.absolute
    if a.comparator_source:
        lines.append(f"  Comparator: {a.comparator_source}")
    lines.append(f"  {row.measure}: the study's own estimate (k = 1)" if row.k == 1
                 else f"  Pooled {row.measure} with {row.method}; k = {row.k}")
    start = f"starts {cert.start} ({cert.design}; {cert.design_source})" if cert.design else \
        "design not known (give design in the certainty file)"
    rated = [f"{d.replace('_', ' ')}: {w}" for d, w, _ in cert.domains if w is not None]
    rated += [f"{u.replace('_', ' ')}: {w}" for u, w, _ in cert.upgrades]
    if cert.level == "not rated":
        lines.append(f"  Certainty: not rated ({', '.join(m.replace('_', ' ') for m in cert.missing)} "
                     f"not given); {start}" + (f"; given: {'; '.join(rated)}" if rated else ""))
    else:
        lines.append(f"  Certainty: {cert.level} ({cert.source}); {start}; {'; '.join(rated)}")
    lines.append("  Hints (computed, not a rating):")
    lines.extend(f"    - {hint}" for hint in row.hints)
    if row.notes:
        lines.append("  Notes:")
        lines.extend(f"    - {note}" for note in row.notes)
    return lines


def print_report(rows, *, label_t: str = CURATED_TREATMENT, brief: bool = False) -> None:
    """The table, then (unless ``brief``) the footnotes wrapped to the terminal with hanging
    indents."""
    import textwrap

    from msc_meta.report.terminal import console as Console

    console = Console()
    width = max(40, console.width - 1)
    console.print(render(rows, label_t=label_t, width=console.width))
    # the caption as a paragraph: a rich caption is measured into the table's width
    console.print(textwrap.fill(caption(rows), width), markup=False, highlight=False, soft_wrap=True)
    console.print()
    if brief:
        console.print(textwrap.fill("Certainty inputs, hints (computed, not a rating) and notes "
                                    "per outcome: run without --brief, or see --json.", width),
                      markup=False, highlight=False, soft_wrap=True)
        return
    for row in rows:
        for line in footnotes(row):
            indent = len(line) - len(line.lstrip())
            hang = indent + (2 if line.lstrip().startswith("- ") else 0)
            console.print(textwrap.fill(line, width, initial_indent="", subsequent_indent=" " * hang),
                          markup=False, highlight=False, soft_wrap=True)
        console.print()


def to_json(rows, *, grouped: bool = False) -> str:
    """One object (a list of them with ``--by`` or several outcomes); NaN/inf -> null."""
    docs = [row.to_dict() for row in rows]
    return json_document(docs if grouped else docs[0])


# --------------------------------------------------------------------------- CSV

CSV_COLUMNS = (
    "outcome", "timepoint_weeks", "unit", "by", "group", "measure", "method", "level", "k",
    "participants", "person_time", "events", "estimate", "ci_low", "ci_high", "relative",
    "absolute_kind", "absolute_scale", "comparator_label", "comparator", "comparator_source",
    "intervention", "intervention_ci_low", "intervention_ci_high", "difference",
    "difference_ci_low", "difference_ci_high", "absolute_text", "interpretation",
    "certainty", "design", "design_source", "risk_of_bias", "inconsistency", "indirectness",
    "imprecision", "publication_bias", "large_effect", "dose_response", "plausible_confounding",
    "certainty_source", "not_rated", "nnt_text", "comments", "hints", "notes")


def csv_rows(rows) -> list[dict]:
    """One flat dict per Finding, keyed by :data:`CSV_COLUMNS` (for report.export.write_csv)."""
    out = []
    for row in rows:
        a, cert = row.absolute, row.certainty
        flat = {key: getattr(row, key, None) for key in CSV_COLUMNS if hasattr(row, key)}
        flat.update({
            "absolute_kind": a.kind, "absolute_scale": a.scale, "comparator_label": a.comparator_label,
            "comparator": a.comparator, "comparator_source": a.comparator_source,
            "intervention": a.value, "intervention_ci_low": a.value_ci_low,
            "intervention_ci_high": a.value_ci_high, "difference": a.difference,
            "difference_ci_low": a.difference_ci_low, "difference_ci_high": a.difference_ci_high,
            "absolute_text": a.text, "interpretation": a.interpretation,
            "certainty": cert.level, "design": cert.design, "design_source": cert.design_source,
            "certainty_source": cert.source, "not_rated": ";".join(cert.missing) or None,
            "nnt_text": row.risk.nnt.text if row.risk is not None else None,
            "hints": " | ".join(row.hints), "notes": " | ".join(row.notes) or None,
        })
        for domain, word, _ in cert.domains:
            flat[domain] = word
        for name, word, _ in cert.upgrades:
            flat[name] = word
        out.append({key: flat.get(key) for key in CSV_COLUMNS})
    return out
