"""The forest-style table of ``msc-meta pool`` (presentation only).

Every number printed here was computed in ``msc_meta.pooling.analysis``;
this module formats, places points on a character axis and prints. It
targets an 80-column terminal: the Unicode plot column takes whatever width
the other columns leave (at least 12 characters).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from msc_meta import registry

PI_LABEL = {"hts": "t with k-2 df", "z": "normal quantile", "t": "t with k-1 df"}

STUDY_COL_MAX = 16
PLOT_MIN = 12
PLOT_MAX = 48


# ---------------------------------------------------------------- formatting

def fmt(x, digits=3) -> str:
    """A number with 3 decimals; very large or very small ones in 3 significant digits."""
    if x is None:
        return "NA"
    x = float(x)
    if math.isnan(x):
        return "NA"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 5 * 10 ** -(digits + 1)):
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


def fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = NA"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def fmt_ci(estimate, low, high) -> str:
    return f"{fmt(estimate)} [{fmt(low)}, {fmt(high)}]"


def fmt_pct(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    return f"{x:.1f}%"


def fmt_count(x) -> str:
    """A count: whole numbers as such, split control arms (--multiarm split) with 2 decimals."""
    if x is None:
        return "NA"
    x = float(x)
    if x.is_integer():
        return str(int(x))
    return f"{x:.2f}".rstrip("0").rstrip(".")


def fmt_weight(w) -> str:
    """Weight in percent; '—' where the model defines none (GLMM)."""
    if w is None:
        return ""
    if isinstance(w, float) and math.isnan(w):
        return "—"
    return f"{w:.1f}%"


def fmt_weeks(weeks) -> str:
    return f"{weeks:g} weeks"


# A pool of one study fits no model: its row is the study's own estimate.
OWN_ESTIMATE = "Study's own estimate"


def pooled_label(fit) -> str:
    """The name of a pooled row: the fit's model, or the study's own estimate at k = 1."""
    if fit.k == 1:
        return OWN_ESTIMATE
    method = registry.method(fit.method)
    if method.kind == "common":
        return f"Common effect ({method.label})"
    if not fit.random:
        return "Common effect (FE)"
    return f"Random effects ({fit.method})"


def title(analysis) -> str:
    parts = [analysis.outcome]
    if analysis.timepoint_weeks is not None:
        parts.append(fmt_weeks(analysis.timepoint_weeks))
    if analysis.unit:
        parts.append(f"per {analysis.unit}")
    head = " · ".join(parts)
    method = analysis.result.method if analysis.result is not None else analysis.method
    model = f"{analysis.measure}, {registry.method(method).label}"
    if analysis.k == 1:
        # nothing was fitted: no method's name belongs above a single study's Wald CI
        model = f"{analysis.measure}, the study's own estimate (Wald CI)"
    elif analysis.hksj and analysis.result is not None and analysis.result.hksj:
        model += " + HKSJ"
    group = f"[{analysis.by} = {analysis.group}] " if analysis.group is not None else ""
    return f"{group}{head} — {model}, k = {analysis.k}"


# ---------------------------------------------------------------- the axis

class Axis:
    """Maps natural-scale values to character columns of a plot of ``width``."""

    def __init__(self, measure, values, core, width, scale=None):
        spec = registry.measure(measure, scale)
        self.log = spec.log_axis
        self.null = spec.null
        self.width = width
        full = [self._t(v) for v in values if self._ok(v)]
        centre = [self._t(v) for v in core if self._ok(v)]
        if self.null is not None:
            full.append(self._t(self.null))
            centre.append(self._t(self.null))
        if not full:
            full = centre = [0.0, 1.0]
        lo, hi = min(full), max(full)
        if centre:
            # Very wide study CIs (zero cells, tiny arms) would squash the rest;
            # cap the axis at the core span on either side and draw arrows.
            c_lo, c_hi = min(centre), max(centre)
            span = max(c_hi - c_lo, 0.5 if self.log else 0.05)
            lo, hi = max(lo, c_lo - span), min(hi, c_hi + span)
        if hi - lo < 1e-9:
            pad = 0.5 if self.log else max(abs(lo) * 0.1, 0.05)
            lo, hi = lo - pad, hi + pad
        self.lo, self.hi = lo, hi

    def _ok(self, v):
        return v is not None and math.isfinite(v) and (v > 0 or not self.log)

    def _t(self, v):
        return math.log(v) if self.log else float(v)

    def value_at(self, t):
        return math.exp(t) if self.log else t

    def pos(self, v):
        """Column of value ``v``: may lie outside 0..width-1 (clipped by the caller)."""
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if self.log and v <= 0:
            return -1
        if math.isinf(v):
            return -1 if v < 0 else self.width
        frac = (self._t(v) - self.lo) / (self.hi - self.lo)
        return int(round(frac * (self.width - 1)))

    def draw(self, estimate, low, high, *, pooled=False) -> str:
        cells = [" "] * self.width
        null_pos = self.pos(self.null) if self.null is not None else None
        if null_pos is not None and 0 <= null_pos < self.width:
            cells[null_pos] = "┊"
        p_lo, p_hi, p_est = self.pos(low), self.pos(high), self.pos(estimate)
        if p_lo is not None and p_hi is not None:
            a, b = max(p_lo, 0), min(p_hi, self.width - 1)
            line = "━" if pooled else "─"
            for i in range(a, b + 1):
                cells[i] = ("╋" if pooled else "┼") if i == null_pos else line
            if p_lo < 0:
                cells[0] = "<"
            if p_hi > self.width - 1:
                cells[-1] = ">"
        if p_est is not None and 0 <= p_est < self.width:
            cells[p_est] = "◆" if pooled else "■"
        return "".join(cells)

    def ticks(self) -> str:
        """Labels for the two ends of the axis and for the null line."""
        left, right = fmt_tick(self.value_at(self.lo)), fmt_tick(self.value_at(self.hi))
        cells = [" "] * self.width
        _put(cells, 0, left)
        _put(cells, self.width - len(right), right)
        if self.null is not None:
            label = fmt_tick(self.null)
            at = self.pos(self.null) - len(label) // 2
            if len(left) + 1 < at and at + len(label) + 1 < self.width - len(right):
                _put(cells, at, label)
        return "".join(cells)


def fmt_tick(v) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.2g}" if abs(v) < 1 else f"{v:.3g}"


def _put(cells, at, text):
    for i, ch in enumerate(text):
        if 0 <= at + i < len(cells):
            cells[at + i] = ch


# ---------------------------------------------------------------- the table

def render_analysis(analysis, width=80, units=None):
    """A list of rich renderables: title, table, then heterogeneity, PI and notes; ``units``:
    the outcome's units (report.units), shown beside measures that have them."""
    from rich import box
    from rich.table import Table
    from msc_meta.report.terminal import cell as Text

    scale = getattr(getattr(analysis, "options", None), "scale", None)
    spec = registry.measure(analysis.measure, scale)
    two_arm = spec.two_arm
    fits = [f for f in (analysis.common, analysis.result) if f is not None]
    out = [Text(title(analysis), style="bold")]

    if analysis.result is None:
        out.append(Text("Nothing pooled in this group."))
        out.extend(_footer(analysis))
        return out

    # Column texts first, so the plot can take the width they leave.
    # The mark says a study's shown estimate rests on the continuity correction;
    # exact / Wilson study intervals (--study-ci) use the raw counts instead.
    marked = [s.cc_added and (two_arm or getattr(analysis, "study_ci", "wald") == "wald")
              for s in analysis.studies]
    # Keep the CIs aligned when some studies carry the continuity-correction mark.
    mark_pad = " " if any(marked) else ""
    arms = None if spec.family == "counts" else arm_cells(spec.family, analysis.studies)
    if arms is not None:
        two_arm = len(arms.heads) == 2      # the arm columns of this outcome type
    rows = []
    for i, (s, mark) in enumerate(zip(analysis.studies, marked)):
        if arms is not None:
            t, c = (arms.cells[i] + ("",))[:2]
        else:
            t = f"{fmt_count(s.events_t)}/{fmt_count(s.n_t)}"
            c = f"{fmt_count(s.events_c)}/{fmt_count(s.n_c)}" if two_arm else ""
        rows.append(dict(
            label=s.study_id,
            t=t,
            c=c,
            effect=fmt_ci(s.estimate, s.ci_low, s.ci_high) + ("*" if mark else mark_pad),
            weight=fmt_weight(s.weight),
            draw=(s.estimate, s.ci_low, s.ci_high, False),
        ))
    if arms is not None:
        total_t = total_c = ""      # means, rates, correlations, effects do not add up
    else:
        total_t = (f"{fmt_count(sum(s.events_t for s in analysis.studies))}/"
                   f"{fmt_count(sum(s.n_t for s in analysis.studies))}")
        total_c = (f"{fmt_count(sum(s.events_c for s in analysis.studies))}/"
                   f"{fmt_count(sum(s.n_c for s in analysis.studies))}" if two_arm else "")
    no_weights = all(isinstance(s.weight, float) and math.isnan(s.weight) for s in analysis.studies)
    pooled_rows = []
    for fit in fits:
        pooled_rows.append(dict(
            label=pooled_label(fit),
            t=total_t, c=total_c,
            effect=fmt_ci(fit.estimate, fit.ci_low, fit.ci_high) + mark_pad,
            weight=("—" if no_weights else "100%") if fit is analysis.result else "",
            draw=(fit.estimate, fit.ci_low, fit.ci_high, True),
        ))

    from msc_meta.report.units import with_units

    effect_head = f"{with_units(spec.natural, units)} [{analysis.level:g}% CI]"
    if arms is not None:
        t_head, c_head = (arms.heads + ("",))[:2]
    else:
        t_head, c_head = ("Treated", "Control") if two_arm else ("Events/N", "")
    # Pooled labels may wrap at their space ("Random effects" / "(REML)");
    # study labels longer than STUDY_COL_MAX fold.
    longest_word_run = max(len(part) for r in pooled_rows for part in _wrap_parts(r["label"]))
    label_w = min(STUDY_COL_MAX, max([len(r["label"]) for r in rows] + [longest_word_run, 5]))
    widths = [
        label_w,
        max([len(t_head)] + [len(r["t"]) for r in rows + pooled_rows]),
        max([len(c_head)] + [len(r["c"]) for r in rows + pooled_rows]) if two_arm else 0,
        max([len(effect_head)] + [len(r["effect"]) for r in rows + pooled_rows]),
        max([len("Weight")] + [len(r["weight"]) for r in rows + pooled_rows]),
    ]
    n_cols = 6 if two_arm else 5
    gaps = 2 * (n_cols - 1)
    # Wide input columns (means: "55 (47) 155" per arm) can leave no room for the plot: then
    # the numbers keep their width and the text plot is left out (the legend says so), rather
    # than folding the study labels letter by letter.
    spare = width - sum(widths) - gaps
    show_plot = spare >= PLOT_MIN
    plot_w = max(PLOT_MIN, min(PLOT_MAX, spare))
    if not show_plot:
        n_cols -= 1

    estimates = [s.estimate for s in analysis.studies]
    values = estimates + [v for s in analysis.studies for v in (s.ci_low, s.ci_high)]
    core = estimates + [v for f in fits for v in (f.estimate, f.ci_low, f.ci_high)]
    axis = Axis(analysis.measure, values + core, core, plot_w, scale=scale)

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1),
                  collapse_padding=False, header_style="bold")
    table.add_column("Study", max_width=label_w, overflow="fold")
    table.add_column(t_head, justify="right", no_wrap=True)
    if two_arm:
        table.add_column(c_head, justify="right", no_wrap=True)
    table.add_column(effect_head, justify="right", no_wrap=True)
    table.add_column("Weight", justify="right", no_wrap=True)
    if show_plot:
        table.add_column("", no_wrap=True, width=plot_w)

    def add(r, end_section=False):
        cells = [r["label"], r["t"]] + ([r["c"]] if two_arm else [])
        cells += [r["effect"], r["weight"]]
        if show_plot:
            cells.append(axis.draw(*r["draw"][:3], pooled=r["draw"][3]))
        table.add_row(*cells, end_section=end_section)

    for i, r in enumerate(rows):
        add(r, end_section=(i == len(rows) - 1))
    for r in pooled_rows:
        add(r)
    if show_plot:
        table.add_row(*([""] * (n_cols - 1)), axis.ticks())
    out.append(table)

    if show_plot:
        legend = "■ study  ◆ pooled"
        if axis.null is not None:
            legend += f"  ┊ no effect ({analysis.measure} = {axis.null:g})"
        legend += ", log axis" if axis.log else ""
    else:
        legend = "no room for the plot (a wider terminal shows it)"
    if any(marked):
        legend += f"  * cc {analysis.cc:g} added"
    if arms is not None and arms.legend:
        legend += f"  ({arms.legend})"
    out.append(Text(legend, style="dim"))
    if arms is not None and arms.footnotes:
        out.append(footnote_list(arms.footnotes))
    out.extend(_footer(analysis))
    return out


class ArmCells(NamedTuple):
    """The input columns of an outcome type other than counts, as :func:`arm_cells` shows them."""

    heads: tuple          # one or two column headers
    cells: list           # per study, one text per column
    legend: str           # what a cell holds
    footnotes: tuple = ()  # "ᵃ SD from the SEM: ..." for each kind of derived value shown


# Marks of derived values, in the order their kinds first appear in a table.
DERIVED_MARKS = "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲ"


class _Marks:
    """A footnote mark per kind of derived value (``conversions.CONVERSION_KINDS``)."""

    def __init__(self):
        self.seen: dict[str, str] = {}

    def of(self, kind) -> str:
        if kind is None:
            return ""
        if kind not in self.seen:
            self.seen[kind] = DERIVED_MARKS[len(self.seen) % len(DERIVED_MARKS)]
        return self.seen[kind]

    def footnotes(self) -> tuple:
        from msc_meta.conversions import CONVERSION_KINDS

        return tuple(f"{mark} {CONVERSION_KINDS.get(kind, kind)}" for kind, mark in self.seen.items())


def arm_cells(family, studies) -> ArmCells:
    """Column headers and per-study cells of the input columns of an outcome type other
    than counts: ``mean (SD) n`` per arm for means, before and after for paired means
    (``r``, or the SD of the change ``SDΔ``), ``events/time`` for rates, ``r n`` for
    correlations, the given estimate with its CI (or yi with its SE) for generic effects.

    Each cell shows the value the study's effect size read (``StudyLine.used``): a value
    the table did not give but a conversion made (an SD from an SEM, an r from a paired
    p-value, the assumed ``--r``...) carries a mark, and ``footnotes`` name each kind of
    conversion (``conversions.CONVERSION_KINDS``; the notes give each study's numbers).
    "—": the table gives no value and the measure needs none.
    """
    marks = _Marks()
    dash = [False]

    def get(study, name):
        for column, value, kind in getattr(study, "used", ()) or ():
            if column == name:
                return value, ("stand_in" if kind == "stand_in" else kind)
        return dict(getattr(study, "inputs", ())).get(name), None

    def num(study, name):
        value, kind = get(study, name)
        if kind == "stand_in" or value is None or (isinstance(value, float) and math.isnan(value)):
            dash[0] = True
            return "—"
        return f"{float(value):.4g}{marks.of(kind)}"

    def count(study, name):
        value, _ = get(study, name)
        return fmt_count(value)

    def mean(study, m, sd, n=None):
        text = f"{num(study, m)} ({num(study, sd)})"
        return text + (f" {count(study, n)}" if n else "")

    def with_dash(legend):
        return legend + ("; — not given, not needed" if dash[0] else "")

    if family == "means_two":
        cells = [(mean(s, "mean_t", "sd_t", "n_t"), mean(s, "mean_c", "sd_c", "n_c")) for s in studies]
        return ArmCells(("Treated", "Control"), cells, with_dash("arms: mean (SD) n"), marks.footnotes())
    if family == "means_one":
        cells = [(mean(s, "mean_t", "sd_t", "n_t"),) for s in studies]
        return ArmCells(("Mean (SD) n",), cells, with_dash(""), marks.footnotes())
    if family == "means_paired":
        return _paired_cells(studies, num, mean, get, marks, with_dash)
    if family == "rates_two":
        return ArmCells(("Treated", "Control"),
                        [(f"{count(s, 'events_t')}/{num(s, 'time_t')}",
                          f"{count(s, 'events_c')}/{num(s, 'time_c')}") for s in studies],
                        "arms: events/person-time")
    if family == "rates_one":
        return ArmCells(("Events/time",), [(f"{count(s, 'events_t')}/{num(s, 'time_t')}",)
                                           for s in studies], "events/person-time")
    if family == "correlations":
        return ArmCells(("r n",), [(f"{num(s, 'cor_t')} {count(s, 'n_t')}",) for s in studies], "")

    def given(s):
        if get(s, "yi")[0] is not None and not _nan(get(s, "yi")[0]):
            sei, vi = get(s, "sei")[0], get(s, "vi")[0]
            se = sei if sei is not None and not _nan(sei) else (
                math.sqrt(vi) if vi is not None and not _nan(vi) else None)
            return f"yi {num(s, 'yi')} (SE {'—' if se is None else f'{float(se):.4g}'})"
        level = get(s, "effect_level")[0]
        shown = "" if level is None or _nan(level) or float(level) == 95.0 else f" {float(level):g}%"
        return f"{num(s, 'effect')} [{num(s, 'effect_ci_low')}, {num(s, 'effect_ci_high')}]{shown}"

    return ArmCells(("Given",), [(given(s),) for s in studies],
                    "given: the study's effect as the table gives it (its CI at 95% unless marked)")


def _nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _paired_cells(studies, num, mean, get, marks, with_dash) -> ArmCells:
    """Before: ``mean (SD) n``; after: ``mean (SD) r``, or ``mean (—) SDΔ x`` where the
    study gives only the SD of the change (from its paired test), which is all MC and
    SMCC read then (the SDs and r the pool path puts in its place are no values of the
    study, and are not shown)."""
    cells, change = [], False
    for s in studies:
        sdd, kind = get(s, "sd_change")
        if sdd is not None and not _nan(sdd):
            change = True
            after = f"{mean(s, 'mean_post', 'sd_post')} SDΔ {float(sdd):.4g}{marks.of(kind)}"
        else:
            after = f"{mean(s, 'mean_post', 'sd_post')} {num(s, 'r')}"
        cells.append((mean(s, "mean_pre", "sd_pre", "n_t"), after))
    legend = "before: mean (SD) n; after: mean (SD) r" + (", or SDΔ the SD of the change" if change else "")
    return ArmCells(("Before", "After"), cells, with_dash(legend), marks.footnotes())


def _footer(analysis):
    from msc_meta.report.terminal import cell as Text

    lines = []
    fit = analysis.result
    if fit is not None:
        lines.extend(_heterogeneity_lines(analysis))
        lines.append(f"Test of the pooled effect: {fit.test} = {fmt(fit.stat, 2)}"
                     + (f" (df = {fit.df:g})" if fit.test == "t" and fit.df is not None else "")
                     + f", {fmt_p(fit.pval)}")
        if fit.random and analysis.k > 1:
            pi_how = PI_LABEL.get(fit.pi_method or analysis.pi, fit.pi_method or analysis.pi)
            if fit.pi_low is not None and fit.pi_high is not None \
                    and math.isfinite(fit.pi_low) and math.isfinite(fit.pi_high):
                lines.append(f"Prediction interval ({analysis.level:g}%, {pi_how}): "
                             f"{fmt(fit.pi_low)} to {fmt(fit.pi_high)}")
            else:
                lines.append(f"Prediction interval ({pi_how}): not defined for k = {analysis.k}")
    out = [Text(line) for line in lines]
    if analysis.excluded:
        out.append(Text("Left out:"))
        out.append(hanging_list([f"{e.study_id} (row {e.row_number}): {e.reason}"
                             for e in analysis.excluded]))
    if analysis.notes:
        out.append(Text("Notes:"))
        out.append(hanging_list(analysis.notes))
    guidance = getattr(analysis, "guidance", None)
    if guidance:
        out.append(Text(f"Guidance: {guidance}", style="bold"))
    return out


def footnote_list(lines):
    """Footnotes "ᵃ text", their wrapped lines indented under the text."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True, width=1, style="dim")
    grid.add_column(overflow="fold", style="dim")
    for line in lines:
        mark, _, text = line.partition(" ")
        grid.add_row(mark, text)
    return grid


def hanging_list(items):
    """A bulleted list whose wrapped lines stay indented under their text."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True, width=3, justify="right")
    grid.add_column(overflow="fold")
    for item in items:
        grid.add_row("-", item)
    return grid


def _wrap_parts(label):
    head, _, tail = label.partition(" (")
    return [head, "(" + tail] if tail else [label]


def _heterogeneity_lines(analysis):
    fit = analysis.result
    if analysis.k < 2:
        return ["Heterogeneity: not estimable with k = 1"]
    q = f"Q = {fmt(fit.q, 2)} (df = {fit.q_df}, {fmt_p(fit.q_pval)})"
    if fit.random:
        tau2 = f"tau² = {fmt(fit.tau2, 4)}"
        if fit.tau2_ci_low is not None and fit.tau2_ci_high is not None:
            tau2 += f" [{fmt(fit.tau2_ci_low, 4)}, {fmt(fit.tau2_ci_high, 4)}]"
        i2 = f"I² = {fmt_pct(fit.i2)}"
        if fit.i2_ci_low is not None and fit.i2_ci_high is not None:
            i2 += f" [{fmt_pct(fit.i2_ci_low)}, {fmt_pct(fit.i2_ci_high)}]"
        return [f"Heterogeneity: {tau2}, {i2}", f"  {q}"]
    return [f"Heterogeneity (from Q): I² = {fmt_pct(fit.i2)}, {q}"]


def subgroup_test_line(test, analyses) -> str:
    if test is None:
        pooled = sum(1 for a in analyses if a.result is not None)
        return (f"Test for subgroup differences: not done ({pooled} subgroup"
                f"{'s' if pooled != 1 else ''} with a pooled estimate; it needs 2)")
    fit = next((a.result for a in analyses if a.result is not None), None)
    model = "random effects" if fit is not None and fit.random else "common effect"
    left = [a.group for a in analyses if a.result is None]
    line = (f"Test for subgroup differences ({model}, by {test.by}):\n"
            f"  Q = {fmt(test.q_between, 2)}, df = {test.df}, {fmt_p(test.pval)}")
    if left:
        line += f"\n  not in the test (nothing pooled): {', '.join(left)}"
    return line


def print_report(analyses, subgroup_test=None, *, grouped=False, console=None, units=None):
    """Print one table per analysis (then the subgroup test with ``--by``) to stdout."""
    from msc_meta.report.terminal import console as Console
    from msc_meta.report.terminal import cell as Text

    console = console or Console(highlight=False, soft_wrap=False)
    width = console.width
    for i, analysis in enumerate(analyses):
        if i:
            console.print()
        for part in render_analysis(analysis, width=width, units=units):
            console.print(part)
    if grouped:
        console.print()
        console.print(Text(subgroup_test_line(subgroup_test, analyses), style="bold"))


def report_text(analyses, subgroup_test=None, *, grouped=False, width=80) -> str:
    """The report as plain text (for tests and for writing to a file)."""
    import io

    from msc_meta.report.terminal import console as Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False,
                      force_terminal=False, soft_wrap=False)
    print_report(analyses, subgroup_test, grouped=grouped, console=console)
    return buffer.getvalue()
