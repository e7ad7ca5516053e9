"""Forest plot in the layout Cochrane reviewers know (RevMan 5 style).

Columns: study, events/total per arm, weight, effect [CI] as text, and the
graph: a square per study (area proportional to its weight in the pooled
model), its CI as a line (an arrow where it runs off the axis), the common-
and random-effects diamonds (centre = estimate, tips = CI), the prediction
interval as a bar on its own row, and the null line; ratios on a log axis.
Under the table: heterogeneity (tau², I² with their Q-profile CIs when
available, Q, df, p), the test for the overall effect and, with subgroups,
the test for subgroup differences; under the axis the "favours" labels, and
then every row left out of the pool with its reason and the analysis notes.

The figure only draws numbers computed by ``msc_meta.pooling.analysis``; it
computes no statistics. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field

from msc_meta import registry
from msc_meta.plot._common import (fmt_ci, fmt_num, fmt_p, fmt_stat, linear_limits, new_figure,
                                   ratio_limits, selection_title)

FONT_SIZE = 8.0
ROW_IN = 0.20            # height of one table row, inches
PLOT_IN = 2.7            # width of the graph column
PAD_IN = 0.14            # gap between text columns
MARGIN_IN = 0.18
SQUARE_COLOUR = "#1f4e79"
DIAMOND_RANDOM = "#000000"
DIAMOND_COMMON = "#7f7f7f"
PI_COLOUR = "#b22222"


@dataclass
class _Row:
    kind: str                                 # header study diamond pi text group blank
    cells: dict = field(default_factory=dict)  # column key -> text
    label: str = ""                           # study-column text
    span: str | None = None                   # free text over the text columns
    bold: bool = False
    italic: bool = False
    point: tuple | None = None                # (est, low, high, weight or None)
    diamond: tuple | None = None              # (est, low, high, colour)
    interval: tuple | None = None             # (low, high) prediction interval


# --------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------

def model_label(result) -> str:
    """Name of a fitted model as printed on its diamond row."""
    if result is None:
        return "Pooled"
    if result.random:
        extra = ", HKSJ" if result.hksj else ""
        return f"Random effects ({result.method}{extra})"
    return f"Common effect ({registry.method(result.method).long_label})"


def method_header(result, level: float) -> str:
    if result is None:
        return f"{level:g}% CI"
    if result.k == 1:
        return f"Study's own estimate, Wald {level:g}% CI"
    method = registry.method(result.method)
    if method.kind == "glmm":
        kind = f"{method.revman}, Random"           # binomial likelihood, not inverse variance
    elif result.random:
        kind = f"{method.revman}, Random ({result.method}{', HKSJ' if result.hksj else ''})"
    else:
        kind = f"{method.revman}, Common"
    return f"{kind}, {level:g}% CI"


def heterogeneity_text(result) -> str:
    if result is None:
        return "Heterogeneity: not estimable"
    if result.k < 2:
        return "Heterogeneity: not applicable (one study)"
    parts = []
    if result.random:
        tau2 = f"\u03c4\u00b2 = {fmt_tau2(result.tau2)}"
        if result.tau2_ci_low is not None and result.tau2_ci_high is not None:
            tau2 += f" [{fmt_tau2(result.tau2_ci_low)}, {fmt_tau2(result.tau2_ci_high)}]"
        parts.append(tau2)
    i2 = f"I\u00b2 = {result.i2:.0f}%"
    if result.i2_ci_low is not None and result.i2_ci_high is not None:
        i2 += f" [{result.i2_ci_low:.0f}%, {result.i2_ci_high:.0f}%]"
    parts.append(i2)
    parts.append(f"Q = {fmt_stat(result.q)}, df = {result.q_df} ({fmt_p(result.q_pval)})")
    return "Heterogeneity: " + "; ".join(parts)




def fmt_tau2(x) -> str:
    """tau² with 3 decimals; values that are numerically 0 print as 0."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "\u2014"
    if abs(x) < 1e-8:
        return "0"
    return f"{x:.3g}" if abs(x) < 0.001 else f"{x:.3f}"


def overall_test_text(result) -> str:
    if result is None:
        return "Test for overall effect: not estimable"
    # what theta = 0 means, where it is not "no effect" (registry: test_null_text)
    said = registry.measure(result.measure).test_null_text
    h0 = f" (H\u2080: {said})" if said else ""
    if result.test == "t":
        df = f", df = {result.df:g}" if result.df is not None else ""
        return f"Test for overall effect{h0}: t = {fmt_stat(result.stat)}{df} ({fmt_p(result.pval)})"
    return f"Test for overall effect{h0}: z = {fmt_stat(result.stat)} ({fmt_p(result.pval)})"


def default_title(analysis) -> str:
    return selection_title(analysis.outcome, analysis.timepoint_weeks, analysis.unit)


# --------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------

def _count(x) -> str:
    """Counts as printed: whole numbers plain; a control arm split among
    comparisons (--multiarm split) gives fractions, shown with 2 decimals."""
    if x is None:
        return ""
    x = float(x)
    if abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _has_weight(w) -> bool:
    # None: not pooled; NaN: a GLMM fit, which has no inverse-variance weights
    return w is not None and math.isfinite(w)


def _study_rows(analysis, two_arm: bool) -> list[_Row]:
    rows = []
    for line in analysis.studies:
        label = str(line.study_id) + (" \u2020" if getattr(line, "cc_added", False) else "")
        cells = {"ev_t": _count(line.events_t), "n_t": _count(line.n_t)}
        if two_arm:
            cells.update(ev_c=_count(line.events_c), n_c=_count(line.n_c))
        estimable = line.estimate is not None and math.isfinite(line.estimate)
        cells["weight"] = f"{line.weight:.1f}%" if _has_weight(line.weight) else "\u2014"
        if estimable:
            cells["effect"] = fmt_ci(line.estimate, line.ci_low, line.ci_high)
            point = (line.estimate, line.ci_low, line.ci_high, line.weight)
        else:
            cells["effect"] = "Not estimable"
            point = None
        rows.append(_Row("study", cells=cells, label=label, point=point))
    return rows


def _pooled_totals(analysis, two_arm: bool) -> tuple[dict, dict]:
    """Sums of the arms over the studies in the pool (for the Total rows)."""
    pooled = [s for s in analysis.studies if s.weight is not None]
    totals = {"n_t": _count(sum(s.n_t for s in pooled))}
    events = {"ev_t": _count(sum(s.events_t for s in pooled))}
    if two_arm:
        totals["n_c"] = _count(sum(s.n_c for s in pooled if s.n_c is not None))
        events["ev_c"] = _count(sum(s.events_c for s in pooled if s.events_c is not None))
    return totals, events


def _pooled_rows(analysis, two_arm: bool, *, prefix: str) -> list[_Row]:
    rows = []
    result, common = analysis.result, getattr(analysis, "common", None)
    fits = []
    if common is not None and common is not result:
        fits.append((common, DIAMOND_COMMON))
    if result is not None:
        fits.append((result, DIAMOND_RANDOM if result.random else DIAMOND_COMMON))
    totals, events = _pooled_totals(analysis, two_arm)
    if not fits:
        rows.append(_Row("text", label=f"{prefix}: not estimable", italic=True))
        return rows
    for i, (fit, colour) in enumerate(fits):
        cells = dict(totals) if i == 0 else {}
        if fit is result and any(_has_weight(st.weight) for st in analysis.studies):
            cells["weight"] = "100.0%"
        cells["effect"] = fmt_ci(fit.estimate, fit.ci_low, fit.ci_high)
        label = f"{prefix} \u2013 {model_label(fit)}" if prefix else model_label(fit)
        rows.append(_Row("diamond", cells=cells, label=label, bold=True,
                         diamond=(fit.estimate, fit.ci_low, fit.ci_high, colour)))
    if result is not None and result.pi_low is not None and result.pi_high is not None:
        rows.append(_Row("pi", label="Prediction interval",
                         cells={"effect": f"[{fmt_num(result.pi_low)}, {fmt_num(result.pi_high)}]"},
                         interval=(result.pi_low, result.pi_high), italic=True))
    rows.append(_Row("text", label="Total events", cells=events))
    rows.append(_Row("text", span=heterogeneity_text(result)))
    rows.append(_Row("text", span=overall_test_text(result)))
    return rows


def _footnotes(analyses, overall, cc) -> list[str]:
    """Zero-cell marker, rows left out (with reasons) and the analyses' notes.

    With subgroups the overall pool's exclusions repeat the subgroups', so
    only its notes are added (tagged "Total").
    """
    grouped = len(analyses) > 1 or getattr(analyses[0], "group", None) is not None
    everything = list(analyses) + ([overall] if overall is not None else [])
    lines: list[str] = []
    if any(getattr(s, "cc_added", False) for a in everything for s in a.studies):
        amount = f"{cc:g} " if cc is not None else "a continuity correction "
        lines.append(f"\u2020 zero cell: {amount}added to every cell of this study")
    excluded = [(a, e) for a in analyses for e in a.excluded]
    if excluded:
        lines.append("Left out of the pool:")
        for analysis, ex in excluded:
            where = f" (row {ex.row_number})" if getattr(ex, "row_number", None) else ""
            tag = f"[{_group_heading(analysis)}] " if grouped else ""
            lines.append(f"  \u2022 {tag}{ex.study_id}{where}: {ex.reason}")
    notes: list[str] = []
    for analysis in everything:
        if grouped:
            tag = "[Total] " if analysis is overall else f"[{_group_heading(analysis)}] "
        else:
            tag = ""
        for note in getattr(analysis, "notes", ()) or ():
            line = f"  \u2022 {tag}{note}"
            if line not in notes:
                notes.append(line)
    if notes:
        lines.append("Notes:")
        lines.extend(notes)
    guidance: list[str] = []
    for analysis in everything:
        text = getattr(analysis, "guidance", None)
        if text:
            tag = ("[Total] " if analysis is overall else f"[{_group_heading(analysis)}] ") \
                if grouped else ""
            line = f"  \u2022 {tag}{text}"
            if line not in guidance:
                guidance.append(line)
    if guidance:
        lines.append("Guidance:")
        lines.extend(guidance)
    return lines


def _group_heading(analysis) -> str:
    by = getattr(analysis, "by", None)
    return f"{by} = {analysis.group}" if by else str(analysis.group)


# --------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------

class _Measurer:
    """Text widths in inches, from the Agg renderer (same font metrics on every backend)."""

    def __init__(self):
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.font_manager import FontProperties

        self._renderer = RendererAgg(10, 10, 72)
        self._props = {w: FontProperties(size=FONT_SIZE, weight=w) for w in ("normal", "bold")}

    def width(self, text: str, bold: bool = False) -> float:
        if not text:
            return 0.0
        w, _, _ = self._renderer.get_text_width_height_descent(
            text, self._props["bold" if bold else "normal"], ismath=False)
        return w / 72.0


RATIO_TICKS = {
    2.0: [0.5, 0.7, 1, 1.5, 2],
    5.0: [0.2, 0.5, 1, 2, 5],
    10.0: [0.1, 0.2, 0.5, 1, 2, 5, 10],
    20.0: [0.05, 0.2, 1, 5, 20],
    50.0: [0.02, 0.1, 1, 10, 50],
    100.0: [0.01, 0.1, 1, 10, 100],
    1000.0: [0.001, 0.01, 0.1, 1, 10, 100, 1000],
}


def _ticks(measure: str, low: float, high: float) -> list[float]:
    if registry.measure(measure).log_axis:
        ticks = RATIO_TICKS.get(round(high, 6))
        if ticks is not None:
            return [float(t) for t in ticks]
        return [low, 1.0, high]
    from matplotlib.ticker import MaxNLocator

    locs = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    return [float(t) for t in locs if low - 1e-12 <= t <= high + 1e-12]


def _tick_label(t: float) -> str:
    if t == 0:
        return "0"
    text = f"{t:g}"
    return text.replace("-", "\u2212")


def forest_plot(analyses, *, overall=None, subgroup_test=None, title: str | None = None,
                favours_left: str | None = None, favours_right: str | None = None,
                label_t: str = "MSC", label_c: str = "Control", cc: float | None = None):
    """Draw a forest plot and return the matplotlib ``Figure``.

    ``analyses``: one ``Analysis`` (or a list of one) for a plain plot, or the
    subgroup analyses of ``run_pool_by`` with ``subgroup_test`` and,
    optionally, ``overall`` (the pool of all rows) for the Total rows.
    """
    if not isinstance(analyses, (list, tuple)):
        analyses = [analyses]
    if not analyses:
        raise ValueError("forest_plot needs at least one analysis")
    first = analyses[0]
    measure = first.measure
    family = registry.measure(measure).family
    if family != "counts":
        from msc_meta.errors import UsageError

        raise UsageError(f"the forest plot draws event counts; {measure} pools "
                         f"{registry.FAMILIES[family]} (family {family}), which it does not draw "
                         "yet: `msc-meta pool` prints its forest-style table")
    two_arm = registry.measure(measure).two_arm
    by_groups = len(analyses) > 1 or getattr(first, "group", None) is not None
    primary = first.result if not by_groups else (overall.result if overall is not None
                                                   else first.result)
    level = primary.level if primary is not None else 95.0

    # ---- rows -----------------------------------------------------------
    rows: list[_Row] = []
    if by_groups:
        for analysis in analyses:
            rows.append(_Row("group", label=_group_heading(analysis), bold=True))
            rows.extend(_study_rows(analysis, two_arm))
            rows.extend(_pooled_rows(analysis, two_arm, prefix="Subtotal"))
            rows.append(_Row("blank"))
        if overall is not None:
            rows.extend(_pooled_rows(overall, two_arm, prefix="Total"))
        if subgroup_test is not None:
            rows.append(_Row("text", span=(
                f"Test for subgroup differences ({subgroup_test.by}): "
                f"Q = {fmt_stat(subgroup_test.q_between)}, df = {subgroup_test.df} "
                f"({fmt_p(subgroup_test.pval)})")))
    else:
        rows.extend(_study_rows(first, two_arm))
        rows.append(_Row("blank"))
        rows.extend(_pooled_rows(first, two_arm, prefix=""))

    # ---- columns --------------------------------------------------------
    measurer = _Measurer()
    name = registry.measure(measure).title
    meth = method_header(primary, level)
    if two_arm:
        columns = [("ev_t", "Events"), ("n_t", "Total"), ("ev_c", "Events"), ("n_c", "Total"),
                   ("weight", "Weight"), ("effect", meth)]
    else:
        columns = [("ev_t", "Events"), ("n_t", "Total"), ("weight", "Weight"), ("effect", meth)]
    # pooled-row labels may be long: let them run into the count columns,
    # which are blank on the second diamond row; widen only for study labels
    study_w = max([measurer.width("Study or subgroup", True)] +
                  [measurer.width(r.label, r.bold) for r in rows if r.kind in ("study", "group")])
    x = MARGIN_IN + study_w + PAD_IN
    col_right: dict[str, float] = {}
    for key, header in columns:
        width = max([measurer.width(header, True)] +
                    [measurer.width(r.cells.get(key, ""), r.bold) for r in rows])
        x += width
        col_right[key] = x
        x += PAD_IN
    text_right = x
    plot_left = text_right + 0.1
    plot_right = plot_left + PLOT_IN
    width_in = plot_right + 0.35
    # labels of pooled rows overflow into the count columns; make sure they
    # clear the effect-text column
    for r in rows:
        if r.kind in ("diamond", "pi", "text") and r.label:
            need = MARGIN_IN + measurer.width(r.label, r.bold) + PAD_IN
            blocker = [col_right[k] - measurer.width(r.cells.get(k, ""), r.bold)
                       for k, _ in columns if r.cells.get(k)]
            if blocker and need > min(blocker):
                shift = need - min(blocker)
                for key in col_right:
                    col_right[key] += shift
                text_right += shift
                plot_left += shift
                plot_right += shift
                width_in += shift
    span_w = max([measurer.width(r.span) for r in rows if r.span] + [0.0])
    title_w = measurer.width(title or default_title(first), True) * (FONT_SIZE + 3) / FONT_SIZE
    width_in = max(width_in, MARGIN_IN + span_w + 0.2, MARGIN_IN + title_w + 0.2)

    if cc is None:
        cc = getattr(first, "cc", None)
    footnotes = _footnotes(list(analyses), overall, cc)
    char_in = measurer.width("abcdefghijklmnopqrstuvwxyz") / 26
    wrap_chars = max(40, int((width_in - 2 * MARGIN_IN) / char_in))
    foot_lines: list[str] = []
    for line in footnotes:
        indent = "      " if line.startswith("  ") else ""
        foot_lines.extend(textwrap.wrap(line, wrap_chars, subsequent_indent=indent,
                                        drop_whitespace=False) or [""])

    header_rows = 2
    n_rows = header_rows + len(rows)
    title_in = 0.55
    has_favours = two_arm or bool(favours_left or favours_right)
    axis_in = 0.62 if has_favours else 0.42
    foot_in = 0.16 * len(foot_lines) + (0.1 if foot_lines else 0)
    height_in = title_in + n_rows * ROW_IN + axis_in + foot_in + 0.1

    # ---- figure ---------------------------------------------------------
    from matplotlib.patches import Polygon
    from matplotlib.ticker import NullLocator
    from matplotlib.transforms import blended_transform_factory

    fig = new_figure(width_in, height_in)
    ax_bottom_in = 0.1 + foot_in + axis_in
    ax = fig.add_axes([plot_left / width_in, ax_bottom_in / height_in,
                       (plot_right - plot_left) / width_in, n_rows * ROW_IN / height_in])
    ax.set_ylim(-(n_rows - 0.5), 0.5)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_yticks([])
    ax.patch.set_alpha(0)
    text_tf = blended_transform_factory(fig.dpi_scale_trans, ax.transData)
    plot_tf = blended_transform_factory(ax.transAxes, ax.transData)
    kw = {"fontsize": FONT_SIZE, "va": "center", "family": "DejaVu Sans"}

    def put(xi, yi, s, *, ha="left", bold=False, italic=False, colour="black"):
        if s:
            ax.text(xi, yi, s, transform=text_tf, ha=ha, clip_on=False, color=colour,
                    fontweight="bold" if bold else "normal",
                    fontstyle="italic" if italic else "normal", **kw)

    # title
    fig.text(MARGIN_IN / width_in, 1 - 0.2 / height_in, title or default_title(first),
             fontsize=FONT_SIZE + 3, fontweight="bold", va="center", ha="left")
    k_text = f"k = {primary.k}" if primary is not None else ""
    subtitle = f"{name}, {meth}" + (f"; {k_text}" if k_text else "")
    fig.text(MARGIN_IN / width_in, 1 - 0.42 / height_in, subtitle, fontsize=FONT_SIZE,
             va="center", ha="left", color="#333333")

    # header
    y0, y1 = 0.0, -1.0
    if two_arm:
        for keys, label in ((("ev_t", "n_t"), label_t), (("ev_c", "n_c"), label_c)):
            left = col_right[keys[0]] - max(measurer.width("Events", True),
                                            *[measurer.width(r.cells.get(keys[0], "")) for r in rows])
            centre = (left + col_right[keys[1]]) / 2
            put(centre, y0, label, ha="center", bold=True)
    put(col_right["effect"], y0, name, ha="right", bold=True)
    ax.text(0.5, y0, name, transform=plot_tf, ha="center", fontweight="bold", clip_on=False, **kw)
    put(MARGIN_IN, y1, "Study or subgroup", bold=True)
    for key, header in columns:
        put(col_right[key], y1, header, ha="right", bold=True)
    ax.text(0.5, y1, meth, transform=plot_tf, ha="center", fontweight="bold", clip_on=False, **kw)
    rule_y = y1 - 0.55
    ax.plot([MARGIN_IN, plot_right + 0.1], [rule_y, rule_y], transform=text_tf, color="black",
            linewidth=0.6, clip_on=False)

    # axis
    values = []
    for r in rows:
        for item in (r.point, r.diamond):
            if item is not None:
                values.extend(item[:3])
        if r.interval is not None:
            values.extend(r.interval)
    spec = registry.measure(measure)
    null = spec.null
    if spec.log_axis:
        ax.set_xscale("log")
        low, high = ratio_limits(values)
    elif null is not None:
        low, high = linear_limits(values, symmetric_about=null, bounds=spec.bounds)
    else:
        low, high = spec.bounds or linear_limits(values)
    ax.set_xlim(low, high)
    ticks = _ticks(measure, low, high)
    ax.set_xticks(ticks)
    ax.set_xticklabels([_tick_label(t) for t in ticks], fontsize=FONT_SIZE)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="x", length=3, width=0.6, pad=2)
    ax.spines["bottom"].set_linewidth(0.6)

    # body
    body_top = -header_rows + 0.5
    last_graph_y = body_top
    max_weight = max([r.point[3] for r in rows if r.point and _has_weight(r.point[3])] + [1e-12])
    # a fit without inverse-variance weights (GLMM): equal mid-size squares
    no_weights = not any(r.point and _has_weight(r.point[3]) for r in rows)
    full_side_pt = ROW_IN * 72 * 0.75
    for i, r in enumerate(rows):
        y = -(header_rows + i)
        if r.kind == "group":
            put(MARGIN_IN, y, r.label, bold=True)
            continue
        if r.span is not None:
            put(MARGIN_IN, y, r.span, italic=False)
            continue
        put(MARGIN_IN, y, r.label, bold=r.bold, italic=r.italic)
        for key, _ in columns:
            put(col_right[key], y, r.cells.get(key, ""), ha="right", bold=r.bold and key == "effect",
                italic=r.italic)
        if r.point is not None:
            est, lo, hi, weight = r.point
            _ci_line(ax, y, lo, hi, low, high)
            if no_weights and weight is not None:
                ax.scatter([est], [y], marker="s", s=(0.5 * full_side_pt) ** 2, color=SQUARE_COLOUR,
                           edgecolors="none", zorder=3)
            elif _has_weight(weight) and weight > 0:
                side = max(3.0, full_side_pt * math.sqrt(weight / max_weight))
                ax.scatter([est], [y], marker="s", s=side ** 2, color=SQUARE_COLOUR,
                           edgecolors="none", zorder=3, clip_on=True)
            else:
                ax.scatter([est], [y], marker="s", s=16, facecolors="white",
                           edgecolors=SQUARE_COLOUR, linewidths=0.8, zorder=3)
            last_graph_y = y
        if r.diamond is not None:
            est, lo, hi, colour = r.diamond
            h = 0.34
            lo_c, hi_c = max(lo, low), min(hi, high)
            ax.add_patch(Polygon([(lo_c, y), (est, y + h), (hi_c, y), (est, y - h)], closed=True,
                                 facecolor=colour, edgecolor=colour, linewidth=0.5, zorder=3))
            last_graph_y = y
        if r.interval is not None:
            lo, hi = r.interval
            _ci_line(ax, y, lo, hi, low, high, colour=PI_COLOUR, width=1.6, caps=True)
            last_graph_y = y
    if null is not None:
        ax.plot([null, null], [body_top, last_graph_y - 0.5], color="black", linewidth=0.6,
                zorder=1)
    # dashed line at the primary pooled estimate, as meta's forest() draws it
    if primary is not None and math.isfinite(primary.estimate) and low < primary.estimate < high:
        ax.plot([primary.estimate] * 2, [body_top, last_graph_y - 0.5], color="#7f7f7f",
                linewidth=0.6, linestyle=(0, (3, 2)), zorder=1)

    # favours labels under the tick labels
    if null is not None:
        left = favours_left if favours_left is not None else (
            f"More events with {label_c.lower()}" if two_arm else "")
        right = favours_right if favours_right is not None else (
            f"More events with {label_t}" if two_arm else "")
        for text, ha, dx in ((left, "right", -6), (right, "left", 6)):
            if text:
                ax.annotate(text, xy=(null, 0), xycoords=("data", "axes fraction"),
                            xytext=(dx, -26), textcoords="offset points", ha=ha, va="top",
                            fontsize=FONT_SIZE, annotation_clip=False)
    elif favours_left or favours_right:
        for text, xfrac, ha in ((favours_left, 0.0, "left"), (favours_right, 1.0, "right")):
            if text:
                ax.annotate(text, xy=(xfrac, 0), xycoords="axes fraction", xytext=(0, -26),
                            textcoords="offset points", ha=ha, va="top", fontsize=FONT_SIZE)

    # footnotes
    for j, line in enumerate(foot_lines):
        fig.text(MARGIN_IN / width_in, (0.1 + foot_in - 0.1 - 0.16 * j - 0.08) / height_in, line,
                 fontsize=FONT_SIZE - 0.5, va="center", ha="left", color="#222222")
    return fig


def _ci_line(ax, y, lo, hi, low, high, *, colour="black", width=0.8, caps=False):
    """A CI line clipped to the axis, with an arrowhead where it runs off."""
    if lo is None or hi is None or not (math.isfinite(lo) or math.isfinite(hi)):
        return
    lo_c = low if (not math.isfinite(lo) or lo < low) else lo
    hi_c = high if (not math.isfinite(hi) or hi > high) else hi
    if lo_c > high or hi_c < low:
        return
    ax.plot([lo_c, hi_c], [y, y], color=colour, linewidth=width, solid_capstyle="butt", zorder=2)
    if caps:
        for xc, real in ((lo_c, lo), (hi_c, hi)):
            if xc == real:
                ax.plot([xc, xc], [y - 0.2, y + 0.2], color=colour, linewidth=width, zorder=2)
    if lo_c != lo:
        ax.plot([lo_c], [y], marker="<", markersize=4, color=colour, clip_on=False, zorder=2)
    if hi_c != hi:
        ax.plot([hi_c], [y], marker=">", markersize=4, color=colour, clip_on=False, zorder=2)
