"""Forest plot in the layout Cochrane reviewers know (RevMan 5 style).

Columns: study, any extra study columns of the table (``columns=``, e.g.
year, dose), the input columns of the outcome type per arm (events/total,
mean/SD/total, events/person-time, r/n), weight, effect [CI] as text, the
graph, and optionally the RoB 2 traffic lights. The graph: a square per
study (area proportional to its weight in the pooled model), its CI as a
line (an arrow where it runs off the axis), the common- and random-effects
diamonds (centre = estimate, tips = CI), the prediction interval as a bar on
its own row, and the null line; ratios on a log axis, every measure's axis
title and null from the registry. Under the table: heterogeneity (tau², I²
with their Q-profile CIs when available, Q, df, p), the test for the overall
effect and, with subgroups, the test for subgroup differences; under the
axis the "favours" labels; then the rows left out of the pool with their
reason, the risk-of-bias legend and, with ``notes=True``, the analysis
notes and guidance (the terminal table always prints those).

Layout rules (metafor ``forest.rma``, meta ``forest.meta`` and RevMan 5 do
the same): the text columns are measured with the renderer's font metrics
so that nothing overlaps; axis limits are a 1-2-5 step around the values
(``xlim=``/``ticks=`` override them) and whatever runs beyond them ends in
an arrow; bounded axes (proportions) get a margin so that a square at 0 or
1 is drawn whole. A long table is split into pages (:func:`forest_pages`).

The figure only draws numbers computed by ``msc_meta.pooling``; it computes
no statistics. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field, replace

from msc_meta import registry
from msc_meta.data.arms import DEFAULT_LABELS
from msc_meta.plot._common import (fmt_num, fmt_p, fmt_stat, linear_limits, new_figure,
                                   ratio_limits, selection_title)
from msc_meta.report.forest_table import OWN_ESTIMATE, _Marks

FONT_SIZE = 8.0
ROW_IN = 0.20            # height of one table row, inches
PLOT_IN = 2.7            # width of the graph column
PAD_IN = 0.14            # gap between text columns
MARGIN_IN = 0.18
ROB_COL_IN = 0.2         # width of one traffic-light column
MIN_ROW_IN = 0.12        # --height may not squeeze a row below this
MIN_PLOT_IN = 1.2        # --width may not squeeze the graph below this
ROWS_PER_PAGE = 60       # rows of one page (CLI default): about 14 inches at 0.2 in a row
SQUARE_COLOUR = "#1f4e79"
DIAMOND_RANDOM = "#000000"
DIAMOND_COMMON = "#7f7f7f"
PI_COLOUR = "#b22222"
DAGGER = " \u2020"


@dataclass(frozen=True)
class ForestStyle:
    """A journal preset: fonts and colours (the layout is the same)."""

    name: str
    font: str = "DejaVu Sans"
    font_size: float = FONT_SIZE
    square: str = SQUARE_COLOUR
    diamond_random: str = DIAMOND_RANDOM
    diamond_common: str = DIAMOND_COMMON
    common_fill: bool = True          # False: the common-effect diamond drawn hollow
    pi: str = PI_COLOUR
    study_header: str = "Study or subgroup"
    estimate_line: bool = True        # dashed line at the pooled estimate (meta's forest())
    description: str = ""


STYLES: dict[str, ForestStyle] = {
    "revman": ForestStyle(
        "revman", description="Cochrane RevMan 5 layout: blue squares, black random-effects and "
                              "grey common-effect diamonds, red prediction interval"),
    "journal": ForestStyle(
        "journal", font_size=7.5, square="#000000", diamond_common="#000000", common_fill=False,
        pi="#000000", study_header="Study", estimate_line=False,
        description="greyscale for print: black squares, filled random-effects and hollow "
                    "common-effect diamonds, black prediction interval, no estimate line"),
}

# Traffic lights as robvis draws RoB 2 (McGuinness & Higgins 2021, Res Synth Methods 12:55).
ROB_LOOK = {"low": ("#02C100", "+"), "some concerns": ("#E2DF07", "\u2212"),
            "high": ("#BF0000", "\u00d7")}
ROB_WORST = ("low", "some concerns", "high")     # a combined multi-arm line takes the worst

# The input columns drawn per arm for each input family (registry.FAMILIES), their headers,
# and the default favours wording ("<more> with <arm>"). Generic effects draw none.
ARM_COLUMNS = {
    "counts": ((("events", "Events"), ("n", "Total")), "More events"),
    "means_two": ((("mean", "Mean"), ("sd", "SD"), ("n", "Total")), "Higher mean"),
    "means_one": ((("mean", "Mean"), ("sd", "SD"), ("n", "Total")), ""),
    "means_paired": ((("mean_pre", "Before"), ("sd_pre", "SD"), ("mean_post", "After"),
                      ("sd_post", "SD"), ("n", "Total")), ""),
    "rates_two": ((("events", "Events"), ("time", "Person-time")), "Higher rate"),
    "rates_one": ((("events", "Events"), ("time", "Person-time")), ""),
    "correlations": ((("cor", "r"), ("n", "Total")), ""),
    "generic": ((), ""),
}
SUMMED = ("events", "n", "time")      # summed over the pooled studies on the Total rows


@dataclass
class _Row:
    kind: str                                 # study diamond pi text group blank
    cells: dict = field(default_factory=dict)  # column key -> text
    label: str = ""                           # study-column text
    span: str | None = None                   # free text over the text columns
    bold: bool = False
    italic: bool = False
    point: tuple | None = None                # (est, low, high, weight or None)
    diamond: tuple | None = None              # (est, low, high, colour, filled)
    interval: tuple | None = None             # (low, high) prediction interval
    rob: dict | None = None                   # rob column -> judgement


# --------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------

def model_label(result) -> str:
    """Name of a fitted model as printed on its diamond row."""
    if result is None:
        return "Pooled"
    if result.k == 1:
        return OWN_ESTIMATE               # nothing was fitted (as pool's table says)
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


def fmt_bound(x) -> str:
    """An interval bound: as :func:`fmt_num`, but values beyond 10⁴ or below 10⁻⁴ (a
    prediction interval of a few studies on a ratio scale) in powers of ten, so that
    [0.00017, 30869.16] prints as [1.7×10⁻⁴, 3.1×10⁴]."""
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x) or x == 0 \
            or 1e-4 <= abs(x) < 1e4:
        return fmt_num(x)
    mantissa, exponent = f"{x:.1e}".split("e")
    mantissa = mantissa.removesuffix(".0")
    sup = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")
    return f"{mantissa.replace('-', chr(0x2212))}\u00d710{str(int(exponent)).translate(sup)}"


def fmt_interval(est, low, high) -> str:
    if est is None:
        return f"[{fmt_bound(low)}, {fmt_bound(high)}]"
    return f"{fmt_bound(est)} [{fmt_bound(low)}, {fmt_bound(high)}]"


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


def favours_defaults(family: str, two_arm: bool, label_t: str, label_c: str) -> tuple[str, str]:
    """What each side of the null means when the user says nothing: "More events with
    <control>" / "... with <treatment>" for counts, "Higher mean" for means, "Higher rate"
    for rates; nothing for one-arm measures and generic effects, whose direction the table
    does not tell."""
    more = ARM_COLUMNS.get(family, ((), ""))[1]
    if not two_arm or not more:
        return "", ""
    return f"{more} with {_in_sentence(label_c)}", f"{more} with {_in_sentence(label_t)}"


def _in_sentence(label: str) -> str:
    return label.lower() if label in DEFAULT_LABELS else label


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


def _value(x) -> str:
    """A mean, SD, person-time or r as the table gives it (4 significant digits)."""
    if x is None:
        return ""
    x = float(x)
    if abs(x - round(x)) < 1e-9 and abs(x) < 1e7:
        return str(int(round(x))).replace("-", "\u2212")
    return f"{x:.4g}".replace("-", "\u2212")


def _has_weight(w) -> bool:
    # None: not pooled; NaN: a GLMM fit, which has no inverse-variance weights
    return w is not None and math.isfinite(w)


def _arm_keys(family: str, two_arm: bool) -> list[tuple[str, str, str]]:
    """(cell key, input column, header) of the drawn input columns, treatment arm first."""
    columns = ARM_COLUMNS.get(family, ((), ""))[0]
    out = []
    for arm in (("t", "c") if two_arm else ("t",)):
        for stem, header in columns:
            column = stem if stem in ("mean_pre", "mean_post", "sd_pre", "sd_post") else f"{stem}_{arm}"
            out.append((f"arm:{column}", column, header))
    return out


def _line_value(line, column):
    if column in ("events_t", "n_t", "events_c", "n_c") and line.family == "counts":
        return getattr(line, column)
    inputs = dict(getattr(line, "inputs", ()) or ())
    if column in inputs:
        return inputs[column]
    return getattr(line, column, None) if column in ("n_t", "n_c", "events_t", "events_c") else None


def _shows_cc(line, analysis) -> bool:
    """Whether something drawn for this study used the continuity correction: its Wald CI
    (two-arm measures, or --study-ci wald) or an inverse-variance pool of its yi. A GLMM
    pools the raw counts and exact/Wilson intervals need no correction."""
    if not getattr(line, "cc_added", False):
        return False
    spec = registry.measure(analysis.measure)
    wald = spec.two_arm or (getattr(analysis, "study_ci", "wald") or "wald") == "wald"
    fit = analysis.result
    pooled_yi = fit is not None and fit.k > 1 and registry.method(fit.method).inverse_variance
    return wald or pooled_yi


@dataclass(frozen=True)
class StudyInfo:
    """What the table says of each pooled line beyond its numbers: extra column values and
    risk-of-bias judgements, looked up by the table rows the line stands for."""

    columns: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    values: dict = field(default_factory=dict)     # row number -> {column: text}
    rob: bool = False                              # draw the traffic lights
    known: tuple[str, ...] = ()                    # every column in ``values`` (shown or not)

    def cell(self, line, column) -> str:
        seen = []
        for number in _line_rows(line):
            text = self.values.get(number, {}).get(column) or ""
            if text and text not in seen:
                seen.append(text)
        if column in _rob_columns() and seen:
            return max(seen, key=ROB_WORST.index)
        return "/".join(seen)

    def sort_key(self, line, column):
        text = self.cell(line, column)
        try:
            return (0, float(text), "")
        except ValueError:
            return (1 if text else 2, 0.0, text.lower())


def _rob_columns() -> tuple[str, ...]:
    from msc_meta.data.schema import ROB_COLUMNS

    return ROB_COLUMNS


def _line_rows(line) -> tuple[int, ...]:
    return tuple(getattr(line, "member_rows", ()) or ()) or (line.row_number,)


def study_info(table, columns=(), *, rob: bool | None = None, headers=None,
               order: str | None = None) -> StudyInfo:
    """The values of ``columns`` (any column of the table, e.g. year, dose_cells), of the
    column to ``order`` the studies by, and of the RoB 2 columns for every row of ``table``;
    ``rob=None`` draws the traffic lights when the table has an ``rob_*`` column, False
    never. Unknown columns raise ``UsageError`` (``OutcomeTable.require_column``)."""
    from msc_meta.data.load import format_weeks

    rob_cols = _rob_columns()
    columns = tuple(columns)
    ordering = (order,) if order not in (None, *ORDERS) and order not in columns else ()
    for column in columns + ordering:
        table.require_column(column)
    present = [c for c in rob_cols if any(c in row.extra for row in table.rows)]
    draw_rob = bool(present) if rob is None else bool(rob)
    if draw_rob and not present:
        from msc_meta.errors import UsageError

        raise UsageError(f"--rob: the table has none of the risk-of-bias columns "
                         f"{', '.join(rob_cols)}")
    values: dict = {}
    for row in table.rows:
        cells = {}
        for column in columns + ordering + (tuple(present) if draw_rob else ()):
            value = row.value(column)
            if value is None:
                text = ""
            elif column == "timepoint_weeks":
                text = format_weeks(value).replace(" weeks", "")
            elif isinstance(value, float):
                text = _value(value) if abs(value) < 1e4 else fmt_bound(value)
            else:
                text = str(value)
            cells[column] = text
        values[row.row_number] = cells
    return StudyInfo(columns=columns, headers=tuple(headers or columns), values=values,
                     rob=draw_rob, known=columns + ordering + (tuple(present) if draw_rob else ()))


ORDERS = ("data", "effect", "weight")


def _ordered(studies, order: str, info: StudyInfo | None):
    """The pooled lines in the requested order: data (table order), effect (ascending),
    weight (largest first) or the ascending values of a table column (blanks last)."""
    studies = list(studies)
    if order in (None, "data"):
        return studies
    if order == "effect":
        return sorted(studies, key=lambda s: (not math.isfinite(s.estimate), s.estimate))
    if order == "weight":
        return sorted(studies, key=lambda s: -(s.weight if _has_weight(s.weight) else -1.0))
    if info is None:
        raise ValueError(f"ordering by column {order!r} needs the table")
    return sorted(studies, key=lambda s: info.sort_key(s, order))


def _arm_cell(line, column, marks) -> str:
    """The value the study's effect size read (``StudyLine.used``), as pool's table shows it:
    one the table did not give but a conversion made (an SD from an SEM...) carries the mark
    of its kind (footnoted); a stand-in the measure does not really use is a dash."""
    for name, value, kind in getattr(line, "used", ()) or ():
        if name == column and kind is not None:
            if kind == "stand_in" or value is None or not math.isfinite(value):
                return "\u2014"
            return _value(value) + marks.of(kind)
    return (_count if column[:2] in ("ev", "n_") else _value)(_line_value(line, column))


def _study_rows(analysis, arm_keys, *, info, order, shows_cc, marks) -> list[_Row]:
    rows = []
    for line in _ordered(analysis.studies, order, info):
        label = str(line.study_id) + (DAGGER if shows_cc(line, analysis) else "")
        cells = {key: _arm_cell(line, column, marks) for key, column, _ in arm_keys}
        if info is not None:
            cells.update({f"col:{c}": info.cell(line, c) for c in info.columns})
        estimable = line.estimate is not None and math.isfinite(line.estimate)
        cells["weight"] = f"{line.weight:.1f}%" if _has_weight(line.weight) else "\u2014"
        if estimable:
            cells["effect"] = fmt_interval(line.estimate, line.ci_low, line.ci_high)
            point = (line.estimate, line.ci_low, line.ci_high, line.weight)
        else:
            cells["effect"] = "Not estimable"
            point = None
        rob = ({c: info.cell(line, c) for c in _rob_columns()} if info is not None and info.rob
               else None)
        rows.append(_Row("study", cells=cells, label=label, point=point, rob=rob))
    return rows


def _pooled_totals(analysis, arm_keys) -> tuple[dict, dict]:
    """Sums of the arms over the studies in the pool (for the Total rows): sizes on the
    diamond row, events (and person-time) on the "Total events" row."""
    pooled = [s for s in analysis.studies if s.weight is not None]
    totals, events = {}, {}
    for key, column, _ in arm_keys:
        stem = column.rsplit("_", 1)[0]
        if stem not in SUMMED:
            continue
        values = [_line_value(s, column) for s in pooled]
        if not values or any(v is None for v in values):
            continue
        text = (_count if stem in ("events", "n") else _value)(sum(float(v) for v in values))
        (totals if stem == "n" else events)[key] = text
    return totals, events


def _pooled_rows(analysis, arm_keys, style: ForestStyle, *, prefix: str) -> list[_Row]:
    rows = []
    result, common = analysis.result, getattr(analysis, "common", None)
    fits = []
    if common is not None and common is not result:
        fits.append((common, style.diamond_common, style.common_fill))
    if result is not None:
        fits.append((result, style.diamond_random if result.random else style.diamond_common,
                     True))
    totals, events = _pooled_totals(analysis, arm_keys)
    if not fits:
        rows.append(_Row("text", label=f"{prefix}: not estimable", italic=True))
        return rows
    for i, (fit, colour, filled) in enumerate(fits):
        cells = dict(totals) if i == 0 else {}
        if fit is result and any(_has_weight(st.weight) for st in analysis.studies):
            cells["weight"] = "100.0%"
        cells["effect"] = fmt_interval(fit.estimate, fit.ci_low, fit.ci_high)
        label = f"{prefix} \u2013 {model_label(fit)}" if prefix else model_label(fit)
        rows.append(_Row("diamond", cells=cells, label=label, bold=True,
                         diamond=(fit.estimate, fit.ci_low, fit.ci_high, colour, filled)))
    if result is not None and result.pi_low is not None and result.pi_high is not None:
        rows.append(_Row("pi", label="Prediction interval",
                         cells={"effect": fmt_interval(None, result.pi_low, result.pi_high)},
                         interval=(result.pi_low, result.pi_high), italic=True))
    if events:
        rows.append(_Row("text", label="Total events" if "arm:events_t" in events else "Total",
                         cells=events))
    rows.append(_Row("text", span=heterogeneity_text(result)))
    rows.append(_Row("text", span=overall_test_text(result)))
    return rows


def _footnotes(analyses, overall, cc, *, notes: bool, dagger: bool) -> list[str]:
    """Zero-cell marker (when a drawn study carries it), rows left out (with reasons) and,
    with ``notes``, the analyses' notes and guidance.

    With subgroups the overall pool's exclusions repeat the subgroups', so
    only its notes are added (tagged "Total").
    """
    grouped = len(analyses) > 1 or getattr(analyses[0], "group", None) is not None
    everything = list(analyses) + ([overall] if overall is not None else [])
    lines: list[str] = []
    if dagger:
        amount = f"{cc:g} " if cc is not None else "a continuity correction "
        lines.append(f"\u2020 zero cell: {amount}added to every cell of this study")
    excluded = [(a, e) for a in analyses for e in a.excluded]
    if excluded:
        lines.append("Left out of the pool:")
        for analysis, ex in excluded:
            where = f" (row {ex.row_number})" if getattr(ex, "row_number", None) else ""
            tag = f"[{_group_heading(analysis)}] " if grouped else ""
            lines.append(f"  \u2022 {tag}{ex.study_id}{where}: {ex.reason}")
    if not notes:
        return lines
    for heading, texts in (("Notes:", lambda a: getattr(a, "notes", ()) or ()),
                           ("Guidance:", lambda a: [a.guidance] if getattr(a, "guidance", None)
                            else [])):
        block: list[str] = []
        for analysis in everything:
            tag = (("[Total] " if analysis is overall else f"[{_group_heading(analysis)}] ")
                   if grouped else "")
            for text in texts(analysis):
                line = f"  \u2022 {tag}{text}"
                if line not in block:
                    block.append(line)
        if block:
            lines.append(heading)
            lines.extend(block)
    return lines


def _group_heading(analysis) -> str:
    by = getattr(analysis, "by", None)
    return f"{by} = {analysis.group}" if by else str(analysis.group)


# --------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------

class _Measurer:
    """Text widths in inches, from the Agg renderer (same font metrics on every backend)."""

    def __init__(self, style: ForestStyle):
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.font_manager import FontProperties

        self._renderer = RendererAgg(10, 10, 72)
        self._props = {w: FontProperties(family=style.font, size=style.font_size, weight=w)
                       for w in ("normal", "bold")}

        self._cache: dict = {}

    def width(self, text: str, bold: bool = False) -> float:
        if not text:
            return 0.0
        key = (text, bold)
        if key not in self._cache:        # a long table repeats most cells ("30", "—")
            w, _, _ = self._renderer.get_text_width_height_descent(
                text, self._props["bold" if bold else "normal"], ismath=False)
            self._cache[key] = w / 72.0
        return self._cache[key]


RATIO_TICKS = {
    2.0: [0.5, 0.7, 1, 1.5, 2],
    5.0: [0.2, 0.5, 1, 2, 5],
    10.0: [0.1, 0.2, 0.5, 1, 2, 5, 10],
    20.0: [0.05, 0.2, 1, 5, 20],
    50.0: [0.02, 0.1, 1, 10, 50],
    100.0: [0.01, 0.1, 1, 10, 100],
    1000.0: [0.001, 0.01, 0.1, 1, 10, 100, 1000],
}


def _ticks(measure: str, low: float, high: float, spec=None) -> list[float]:
    spec = spec or registry.measure(measure)
    if spec.log_axis:
        ticks = RATIO_TICKS.get(round(high, 6)) if abs(low * high - 1) < 1e-9 else None
        if ticks is not None:
            return [float(t) for t in ticks]
        from matplotlib.ticker import LogLocator

        locs = LogLocator(base=10, subs=(1.0, 2.0, 5.0)).tick_values(low, high)
        found = [float(t) for t in locs if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
        return found if len(found) >= 2 else [low, high]
    from matplotlib.ticker import MaxNLocator

    locs = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    return [float(t) for t in locs if low - 1e-12 <= t <= high + 1e-12]


def _tick_label(t: float) -> str:
    if t == 0:
        return "0"
    text = f"{t:g}"
    return text.replace("-", "\u2212")


@dataclass(frozen=True)
class ForestOptions:
    """What the reader may change about a forest plot (``msc-meta forest`` options)."""

    title: str | None = None
    favours_left: str | None = None
    favours_right: str | None = None
    label_t: str = DEFAULT_LABELS[0]
    label_c: str = DEFAULT_LABELS[1]
    info: StudyInfo | None = None      # extra columns and risk of bias (study_info())
    order: str = "data"
    xlim: tuple[float, float] | None = None
    ticks: tuple[float, ...] | None = None
    width: float | None = None         # inches
    height: float | None = None        # inches (of each page)
    notes: bool = False
    style: str = "revman"
    units: str | None = None           # appended to the axis title, e.g. "mmHg"
    rows_per_page: int | None = None   # None: one page however long


def forest_plot(analyses, *, overall=None, subgroup_test=None, cc: float | None = None,
                options: ForestOptions | None = None, **values):
    """Draw a forest plot on one page and return the matplotlib ``Figure``.

    ``analyses``: one ``Analysis`` (or a list of one) for a plain plot, or the
    subgroup analyses of ``run_pool_by`` with ``subgroup_test`` and,
    optionally, ``overall`` (the pool of all rows) for the Total rows.
    ``options`` (or its fields as keywords: ``title=``, ``label_t=``, ...):
    :class:`ForestOptions`.
    """
    options = options or ForestOptions()
    if values:
        options = replace(options, **{k: v for k, v in values.items() if v is not None})
    return forest_pages(analyses, overall=overall, subgroup_test=subgroup_test, cc=cc,
                        options=replace(options, rows_per_page=None))[0]


def forest_pages(analyses, *, overall=None, subgroup_test=None, cc: float | None = None,
                 options: ForestOptions | None = None, progress=None) -> list:
    """The forest plot as a sequence of Figures, one per page of ``options.rows_per_page`` rows
    (the title, column headers and axis repeat on every page; the pooled rows, footnotes and
    legends come on the last), each drawn when taken. ``progress``: called once per page
    drawn."""
    from msc_meta.errors import UsageError

    options = options or ForestOptions()
    if not isinstance(analyses, (list, tuple)):
        analyses = [analyses]
    if not analyses:
        raise ValueError("forest_plot needs at least one analysis")
    if options.style not in STYLES:
        raise UsageError(f"unknown forest style {options.style!r}; choose "
                         f"{', '.join(STYLES)}")
    style = STYLES[options.style]
    first = analyses[0]
    scale = getattr(getattr(first, "options", None), "scale", None)
    spec = registry.measure(first.measure, scale=scale) if scale else registry.measure(first.measure)
    if options.order not in ORDERS and (options.info is None
                                        or options.order not in options.info.known):
        raise UsageError(f"--order {options.order}: give data, effect, weight or a column "
                         "of the table")
    by_groups = len(analyses) > 1 or getattr(first, "group", None) is not None
    if by_groups and getattr(first, "by", None) in _rob_columns():
        # risk-of-bias subgroups read from low to high, not alphabetically
        analyses = sorted(analyses, key=lambda a: (ROB_WORST.index(a.group)
                                                   if a.group in ROB_WORST else len(ROB_WORST)))
    primary = first.result if not by_groups else (overall.result if overall is not None
                                                   else first.result)
    level = primary.level if primary is not None else 95.0
    arm_keys = _arm_keys(spec.family, spec.two_arm)
    dagger = [False]

    def shows_cc(line, analysis):
        used = _shows_cc(line, analysis)
        dagger[0] |= used
        return used

    marks = _Marks()        # one mark per kind of converted value, as pool's table

    # ---- rows -----------------------------------------------------------
    rows: list[_Row] = []
    kw = dict(info=options.info, order=options.order, shows_cc=shows_cc, marks=marks)
    if by_groups:
        for analysis in analyses:
            rows.append(_Row("group", label=_group_heading(analysis), bold=True))
            rows.extend(_study_rows(analysis, arm_keys, **kw))
            rows.extend(_pooled_rows(analysis, arm_keys, style, prefix="Subtotal"))
            rows.append(_Row("blank"))
        if overall is not None:
            rows.extend(_pooled_rows(overall, arm_keys, style, prefix="Total"))
        if subgroup_test is not None:
            rows.append(_Row("text", span=(
                f"Test for subgroup differences ({subgroup_test.by}): "
                f"Q = {fmt_stat(subgroup_test.q_between)}, df = {subgroup_test.df} "
                f"({fmt_p(subgroup_test.pval)})")))
    else:
        rows.extend(_study_rows(first, arm_keys, **kw))
        rows.append(_Row("blank"))
        rows.extend(_pooled_rows(first, arm_keys, style, prefix=""))

    if cc is None:
        cc = getattr(first, "cc", None)
    footnotes = [*marks.footnotes(),
                 *_footnotes(list(analyses), overall, cc, notes=options.notes, dagger=dagger[0])]
    layout = _Layout(rows, spec=spec, style=style, options=options, primary=primary, level=level,
                     arm_keys=arm_keys, title=options.title or default_title(first),
                     footnotes=footnotes)
    return _Pages(layout, progress)


class _Pages:
    """The pages of a forest plot, each drawn when it is asked for, so that saving a long
    table holds one page's figure in memory at a time (``len()`` is known beforehand)."""

    def __init__(self, layout, progress=None):
        self._layout, self._rows, self._progress = layout, layout.pages(), progress

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        fig = self._layout.draw(self._rows[i], i + 1, len(self))
        if self._progress is not None:
            self._progress()
        return fig

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class _Layout:
    """Column positions (inches), axis limits and page sizes of one forest plot."""

    def __init__(self, rows, *, spec, style, options, primary, level, arm_keys, title, footnotes):
        self.rows, self.spec, self.style, self.options = rows, spec, style, options
        self.primary, self.level, self.title = primary, level, title
        self.arm_keys = arm_keys
        self.measurer = _Measurer(style)
        self.name = spec.title + (f" ({options.units})" if options.units else "")
        self.meth = method_header(primary, level)
        info = options.info
        extra = [(f"col:{c}", h) for c, h in zip(info.columns, info.headers)] if info else []
        self.extra_keys = [k for k, _ in extra]
        self.columns = extra + [(key, header) for key, _, header in arm_keys] + \
            [("weight", "Weight"), ("effect", self.meth)]
        self.left_aligned = {k for k in self.extra_keys
                             if not all(_numeric(r.cells.get(k, "")) for r in rows)}
        self.rob_cols = list(_rob_columns()) if info is not None and info.rob else []

        text_right = self.place_columns()
        self.place_graph(text_right)
        self.wrap_footnotes(footnotes)
        self.axis_limits()
        self.fit_favours()

    def place_columns(self) -> float:
        """Left and right edges of every text column; returns where the text ends.

        The study column is as wide as the study labels; pooled-row labels may run into
        the number columns, which are blank on their rows, but never into the effect text.
        """
        measurer, rows = self.measurer, self.rows
        study_w = max([measurer.width(self.style.study_header, True)] +
                      [measurer.width(r.label, r.bold) for r in rows if r.kind in ("study", "group")])
        x = MARGIN_IN + study_w + PAD_IN
        self.col_left: dict[str, float] = {}
        self.col_right: dict[str, float] = {}
        for key, header in self.columns:
            width = max([measurer.width(header, True)] +
                        [measurer.width(r.cells.get(key, ""), r.bold) for r in rows])
            self.col_left[key] = x
            x += width
            self.col_right[key] = x
            x += PAD_IN
        for r in rows:
            if r.kind in ("diamond", "pi", "text") and r.label:
                need = MARGIN_IN + measurer.width(r.label, r.bold) + PAD_IN
                blockers = [self.col_right[k] - measurer.width(r.cells.get(k, ""), r.bold)
                            for k, _ in self.columns if r.cells.get(k)]
                if blockers and need > min(blockers):
                    shift = need - min(blockers)
                    for key in self.col_right:
                        self.col_right[key] += shift
                        self.col_left[key] += shift
                    x += shift
        return x

    def place_graph(self, text_right: float):
        """The graph column (PLOT_IN, or what --width leaves), the traffic lights right of it,
        and the page width (at least the title's and the longest span's)."""
        from msc_meta.errors import UsageError

        measurer, options = self.measurer, self.options
        # traffic-light columns: as wide as a light, or as their header ("Overall")
        self.rob_widths = [max(ROB_COL_IN, measurer.width(_rob_header(c), True) + 0.06)
                           for c in self.rob_cols]
        rob_w = (sum(self.rob_widths) + 0.15) if self.rob_cols else 0.0
        fixed = text_right + 0.1 + 0.35 + rob_w
        plot_in = PLOT_IN
        if options.width is not None:
            plot_in = options.width - fixed
            if plot_in < MIN_PLOT_IN:
                raise UsageError(f"--width {options.width:g}: the text columns need "
                                 f"{fixed:.1f} in; give at least {fixed + MIN_PLOT_IN:.1f}")
        self.plot_left = text_right + 0.1
        self.plot_right = self.plot_left + plot_in
        self.rob_left = self.plot_right + 0.25
        span_w = max([measurer.width(r.span) for r in self.rows if r.span] + [0.0])
        title_w = measurer.width(self.title, True) * (self.style.font_size + 3) / self.style.font_size
        width = max(fixed + plot_in, MARGIN_IN + span_w + 0.2, MARGIN_IN + title_w + 0.2)
        self.width = options.width if options.width is not None else width
        if options.width is not None and width > options.width + 1e-9:
            raise UsageError(f"--width {options.width:g}: the title or the heterogeneity line "
                             f"needs {width:.1f} in")

    def wrap_footnotes(self, footnotes):
        """Footnote and RoB legend lines, wrapped to the page width."""
        char_in = self.measurer.width("abcdefghijklmnopqrstuvwxyz") / 26
        wrap = max(40, int((self.width - 2 * MARGIN_IN) / char_in))
        self.foot_lines: list[str] = []
        for line in footnotes:
            indent = "      " if line.startswith("  ") else ""
            self.foot_lines.extend(textwrap.wrap(line, wrap, subsequent_indent=indent,
                                                 drop_whitespace=False) or [""])
        self.rob_lines = []
        if self.rob_cols:
            from msc_meta.data.schema import ROB_DOMAINS

            legend = "Risk of bias (RoB 2): " + "; ".join(
                f"{_rob_header(c)} {what}" for c, what in ROB_DOMAINS if c != "rob_overall") \
                + "; Overall: the overall judgement"
            self.rob_lines = textwrap.wrap(legend, wrap)

    def fit_favours(self):
        """Widen the page so that the favours label right of the null ends inside it."""
        from msc_meta.errors import UsageError

        right = self.favours()[1]
        if not right:
            return
        low, high, pad, null = self.low, self.high, self.pad, self.spec.null
        if null is not None and low < null < high:
            f = ((math.log(null) - math.log(low)) / (math.log(high) - math.log(low))
                 if self.spec.log_axis else (null - low + pad) / (high - low + 2 * pad))
            start = self.plot_left + f * (self.plot_right - self.plot_left) + 6 / 72
        else:
            start = self.plot_right - self.measurer.width(right)
        need = start + self.measurer.width(right) + MARGIN_IN
        if need > self.width + 1e-9:
            if self.options.width is not None:
                raise UsageError(f"--width {self.options.width:g}: the favours label "
                                 f"'{right}' needs {need:.1f} in")
            self.width = need

    # ---- axis -----------------------------------------------------------
    def axis_limits(self):
        from msc_meta.errors import UsageError

        spec, options = self.spec, self.options
        values = []
        for r in self.rows:
            for item in (r.point, r.diamond):
                if item is not None:
                    values.extend(item[:3])
            if r.interval is not None:
                values.extend(r.interval)
        pad = 0.0
        if options.xlim is not None:
            low, high = options.xlim
            if not low < high or (spec.log_axis and low <= 0):
                raise UsageError(f"--xlim {low:g},{high:g}: give LOW,HIGH with LOW < HIGH"
                                 + (" and LOW > 0 (log axis)" if spec.log_axis else ""))
        elif spec.log_axis:
            low, high = ratio_limits(values)
        elif spec.null is not None:
            low, high = linear_limits(values, symmetric_about=spec.null, bounds=spec.bounds)
        else:
            low, high = linear_limits(values, symmetric_about=None, bounds=spec.bounds)
        if spec.bounds and options.xlim is None:
            pad = 0.04 * (high - low)      # a square at a bound (a proportion of 1) is drawn whole
        if options.ticks:
            ticks = sorted(float(t) for t in options.ticks)
            bad = [t for t in ticks if not low * (1 - 1e-9) - 1e-12 <= t <= high * (1 + 1e-9) + 1e-12]
            if bad:
                raise UsageError(f"--ticks: {', '.join(f'{t:g}' for t in bad)} lie outside the "
                                 f"axis ({low:g} to {high:g}); widen it with --xlim")
        else:
            ticks = _ticks(spec.name, low, high, spec)
        self.low, self.high, self.pad, self.ticks = low, high, pad, ticks

    # ---- pages ----------------------------------------------------------
    def pages(self) -> list[list[_Row]]:
        per = self.options.rows_per_page
        if not per or len(self.rows) <= per:
            return [self.rows]
        return [self.rows[i:i + per] for i in range(0, len(self.rows), per)]

    # ---- drawing --------------------------------------------------------
    def draw(self, rows, number: int, of: int):
        """One page: title, headers, the rows of ``rows``, the axis and favours labels; the
        footnotes and the RoB legend on the last page."""
        page = _Page(self, rows, number, of)
        page.title()
        page.header()
        page.axis()
        page.body()
        page.favours()
        page.footer()
        return page.fig

    def favours(self) -> tuple[str, str]:
        options = self.options
        left, right = favours_defaults(self.spec.family, self.spec.two_arm, options.label_t,
                                       options.label_c)
        return (options.favours_left if options.favours_left is not None else left,
                options.favours_right if options.favours_right is not None else right)

    def rob_centres(self) -> list[float]:
        edges = [self.rob_left]
        for w in self.rob_widths:
            edges.append(edges[-1] + w)
        return [(a + b) / 2 for a, b in zip(edges, edges[1:])]



class _Page:
    """The figure of one page of a :class:`_Layout` (positions in inches from the left, rows
    in data units from the top: row 0 and 1 are the headers)."""

    HEADER_ROWS = 2

    def __init__(self, layout, rows, number: int, of: int):
        from matplotlib.transforms import blended_transform_factory

        from msc_meta.errors import UsageError

        self.layout, self.rows, self.number, self.of = layout, rows, number, of
        self.last = number == of
        options = layout.options
        # the RoB legend ends in a line for its colour key
        self.foot = ((layout.foot_lines + layout.rob_lines + ([""] if layout.rob_lines else []))
                     if self.last else [])
        self.n_rows = self.HEADER_ROWS + len(rows)
        axis_in = 0.62 if any(layout.favours()) else 0.42
        self.foot_in = 0.16 * len(self.foot) + (0.1 if self.foot else 0)
        fixed = 0.55 + axis_in + self.foot_in + 0.1          # title, axis, footnotes, margin
        self.row_in = ROW_IN
        if options.height is not None:
            self.row_in = (options.height - fixed) / self.n_rows
            if self.row_in < MIN_ROW_IN:
                raise UsageError(f"--height {options.height:g}: {self.n_rows} rows need at least "
                                 f"{fixed + self.n_rows * MIN_ROW_IN:.1f} in")
        self.height = fixed + self.n_rows * self.row_in
        self.width = layout.width
        self.fig = fig = new_figure(self.width, self.height)
        bottom = 0.1 + self.foot_in + axis_in
        self.ax = ax = fig.add_axes([layout.plot_left / self.width, bottom / self.height,
                                     (layout.plot_right - layout.plot_left) / self.width,
                                     self.n_rows * self.row_in / self.height])
        ax.set_ylim(-(self.n_rows - 0.5), 0.5)
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.set_yticks([])
        ax.patch.set_alpha(0)
        self.text_tf = blended_transform_factory(fig.dpi_scale_trans, ax.transData)
        self.plot_tf = blended_transform_factory(ax.transAxes, ax.transData)
        self.size = layout.style.font_size
        self.kw = {"fontsize": self.size, "va": "center", "family": layout.style.font,
                   "parse_math": False}

    def put(self, xi, yi, s, *, ha="left", bold=False, italic=False, colour="black"):
        """Text at ``xi`` inches from the left, on row ``yi``."""
        if s:
            self.ax.text(xi, yi, s, transform=self.text_tf, ha=ha, clip_on=False, color=colour,
                         fontweight="bold" if bold else "normal",
                         fontstyle="italic" if italic else "normal", **self.kw)

    def over_graph(self, yi, s):
        self.ax.text(0.5, yi, s, transform=self.plot_tf, ha="center", fontweight="bold",
                     clip_on=False, **self.kw)

    def fig_text(self, x_in, y_in, s, **kw):
        self.fig.text(x_in / self.width, y_in / self.height, s, va="center",
                      family=self.layout.style.font, parse_math=False, **kw)

    def title(self):
        lay = self.layout
        page = f" (page {self.number} of {self.of})" if self.of > 1 else ""
        self.fig_text(MARGIN_IN, self.height - 0.2, lay.title + page, fontsize=self.size + 3,
                      fontweight="bold", ha="left")
        k_text = f"; k = {lay.primary.k}" if lay.primary is not None else ""
        self.fig_text(MARGIN_IN, self.height - 0.42, f"{lay.name}, {lay.meth}{k_text}",
                      fontsize=self.size, ha="left", color="#333333")

    def header(self):
        """Arm labels over their columns, the measure over the effect text and the graph,
        the column headers, and the rule under them."""
        lay, put = self.layout, self.put
        y0, y1 = 0.0, -1.0
        arms = [("t", lay.options.label_t), ("c", lay.options.label_c)] if lay.spec.two_arm else []
        for arm, label in arms:
            keys = [k for k, column, _ in lay.arm_keys if column.endswith(f"_{arm}")]
            if keys:
                put((lay.col_left[keys[0]] + lay.col_right[keys[-1]]) / 2, y0, label,
                    ha="center", bold=True)
        put(lay.col_right["effect"], y0, lay.name, ha="right", bold=True)
        self.over_graph(y0, lay.name)
        put(MARGIN_IN, y1, lay.style.study_header, bold=True)
        for key, header in lay.columns:
            if key in lay.left_aligned:
                put(lay.col_left[key], y1, header, bold=True)
            else:
                put(lay.col_right[key], y1, header, ha="right", bold=True)
        self.over_graph(y1, lay.meth)
        right_edge = lay.plot_right + 0.1
        if lay.rob_cols:
            right_edge = lay.rob_left + sum(lay.rob_widths)
            put((lay.rob_left + right_edge) / 2, y0, "Risk of bias", ha="center", bold=True)
            for x, column in zip(lay.rob_centres(), lay.rob_cols):
                put(x, y1, _rob_header(column), ha="center", bold=True)
        self.ax.plot([MARGIN_IN, right_edge], [y1 - 0.55] * 2, transform=self.text_tf,
                     color="black", linewidth=0.6, clip_on=False)

    def axis(self):
        from matplotlib.ticker import NullLocator

        lay, ax = self.layout, self.ax
        if lay.spec.log_axis:
            ax.set_xscale("log")
        ax.set_xlim(lay.low - lay.pad, lay.high + lay.pad)
        ax.set_xticks(lay.ticks)
        ax.set_xticklabels([_tick_label(t) for t in lay.ticks], fontsize=self.size,
                           family=lay.style.font)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(axis="x", length=3, width=0.6, pad=2)
        ax.spines["bottom"].set_linewidth(0.6)
        ax.spines["bottom"].set_bounds(lay.low, lay.high)

    def body(self):
        """Each row's texts, and its square and CI line, diamond or prediction interval; then
        the null line and the dashed line at the pooled estimate."""
        lay, ax = self.layout, self.ax
        low, high = lay.low, lay.high
        body_top = -self.HEADER_ROWS + 0.5
        last_graph_y = body_top
        lines = _Segments()               # every CI line and square of the page, drawn at once
        weights = [r.point[3] for r in lay.rows if r.point and _has_weight(r.point[3])]
        for i, r in enumerate(self.rows):
            y = -(self.HEADER_ROWS + i)
            self.row_texts(r, y)
            if r.rob is not None:
                lines.lights(lay.rob_centres(), lay.rob_cols, y, r.rob)
            if r.point is not None:
                lines.study(r.point, y, low, high, weights, self.row_in * 72 * 0.75)
                last_graph_y = y
            if r.diamond is not None:
                self.diamond(r.diamond, y)
                last_graph_y = y
            if r.interval is not None:
                _ci_line(ax, y, *r.interval, low, high, colour=lay.style.pi, width=1.6, caps=True)
                last_graph_y = y
        lines.draw(ax, self.text_tf, lay.style, self.row_in)
        null, primary = lay.spec.null, lay.primary
        if null is not None and low <= null <= high:
            ax.plot([null, null], [body_top, last_graph_y - 0.5], color="black", linewidth=0.6,
                    zorder=1)
        if lay.style.estimate_line and primary is not None and math.isfinite(primary.estimate) \
                and low < primary.estimate < high and self.last:
            ax.plot([primary.estimate] * 2, [body_top, last_graph_y - 0.5], color="#7f7f7f",
                    linewidth=0.6, linestyle=(0, (3, 2)), zorder=1)

    def row_texts(self, r, y):
        lay, put = self.layout, self.put
        if r.kind == "group":
            put(MARGIN_IN, y, r.label, bold=True)
            return
        if r.span is not None:
            put(MARGIN_IN, y, r.span)
            return
        put(MARGIN_IN, y, r.label, bold=r.bold, italic=r.italic)
        for key, _ in lay.columns:
            text = r.cells.get(key, "")
            if key in lay.left_aligned:
                put(lay.col_left[key], y, text, italic=r.italic)
            else:
                put(lay.col_right[key], y, text, ha="right", bold=r.bold and key == "effect",
                    italic=r.italic)

    def diamond(self, diamond, y):
        from matplotlib.patches import Polygon

        low, high = self.layout.low, self.layout.high
        est, lo, hi, colour, filled = diamond
        lo_c, hi_c = max(lo, low), min(hi, high)
        mid = min(max(est, low), high)
        self.ax.add_patch(Polygon([(lo_c, y), (mid, y + 0.34), (hi_c, y), (mid, y - 0.34)],
                                  closed=True, facecolor=colour if filled else "white",
                                  edgecolor=colour, linewidth=0.6, zorder=3))

    def favours(self):
        """The favours labels under the tick labels, either side of the null."""
        lay, ax = self.layout, self.ax
        left, right = lay.favours()
        null = lay.spec.null
        style = dict(textcoords="offset points", va="top", fontsize=self.size,
                     family=lay.style.font, annotation_clip=False)
        if null is not None and lay.low < null < lay.high:
            for text, ha, dx in ((left, "right", -6), (right, "left", 6)):
                if text:
                    ax.annotate(text, xy=(null, 0), xycoords=("data", "axes fraction"),
                                xytext=(dx, -26), ha=ha, **style)
        else:
            for text, xfrac, ha in ((left, 0.0, "left"), (right, 1.0, "right")):
                if text:
                    ax.annotate(text, xy=(xfrac, 0), xycoords="axes fraction", xytext=(0, -26),
                                ha=ha, **style)

    def footer(self):
        """Footnotes, then the RoB legend and its colour key."""
        top = self.foot_in - 0.08
        for j, line in enumerate(self.foot):
            self.fig_text(MARGIN_IN, top - 0.16 * j, line, fontsize=self.size - 0.5, ha="left",
                          color="#222222")
        if not (self.last and self.layout.rob_lines):
            return
        y_in = top - 0.16 * (len(self.foot) - 1)
        x_in = MARGIN_IN
        for level in ROB_WORST:
            colour, symbol = ROB_LOOK[level]
            self.fig.add_artist(_rob_circle(self.fig, x_in + 0.06, y_in, colour))
            self.fig_text(x_in + 0.06, y_in, symbol, fontsize=self.size - 1, ha="center",
                          color="black", fontweight="bold")
            label = f"{level} risk of bias" if level != "some concerns" else "some concerns"
            self.fig_text(x_in + 0.16, y_in, label, fontsize=self.size - 0.5, ha="left")
            x_in += 0.3 + self.layout.measurer.width(label)


class _Segments:
    """The study rows' CI lines, arrowheads, squares and traffic lights of one page, each
    kind drawn as one artist: a table of 1,000 studies is 1,000 rows, not 5,000 artists."""

    def __init__(self):
        self.segments, self.left, self.right = [], [], []
        self.squares, self.hollow = [], []
        self.light = {level: [] for level in ROB_LOOK}

    def ci(self, y, lo, hi, low, high):
        """A CI line clipped to the axis, with an arrowhead where it runs off."""
        clipped = _clip_ci(lo, hi, low, high)
        if clipped is None:
            return
        lo_c, hi_c = clipped
        self.segments.append([(lo_c, y), (hi_c, y)])
        if lo_c != lo:
            self.left.append((lo_c, y))
        if hi_c != hi:
            self.right.append((hi_c, y))

    def study(self, point, y, low, high, weights, full_side_pt):
        """A study's CI line and its square, sized by weight (side ∝ √weight, RevMan); a fit
        without inverse-variance weights (GLMM) gets equal mid-size squares, a study outside
        the pool a hollow one."""
        est, lo, hi, weight = point
        self.ci(y, lo, hi, low, high)
        if not low <= est <= high:
            return                        # the line's arrow shows where it went
        if not weights and weight is not None:
            self.squares.append((est, y, (0.5 * full_side_pt) ** 2))
        elif _has_weight(weight) and weight > 0:
            side = max(3.0, full_side_pt * math.sqrt(weight / max(weights)))
            self.squares.append((est, y, side ** 2))
        else:
            self.hollow.append((est, y))

    def lights(self, centres, columns, y, rob):
        for x, column in zip(centres, columns):
            if rob.get(column):
                self.light[rob[column]].append((x, y))

    def draw(self, ax, text_tf, style, row_in):
        from matplotlib.collections import LineCollection

        if self.segments:
            ax.add_collection(LineCollection(self.segments, colors="black", linewidths=0.8,
                                             capstyle="butt", zorder=2), autolim=False)
        for points, marker in ((self.left, "<"), (self.right, ">")):
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, linestyle="none", marker=marker, markersize=4, color="black",
                        clip_on=False, zorder=2)
        if self.squares:
            xs, ys, sizes = zip(*self.squares)
            ax.scatter(xs, ys, marker="s", s=sizes, color=style.square, edgecolors="none",
                       zorder=3, clip_on=False)
        if self.hollow:
            xs, ys = zip(*self.hollow)
            ax.scatter(xs, ys, marker="s", s=16, facecolors="white", edgecolors=style.square,
                       linewidths=0.8, zorder=3, clip_on=False)
        for level, points in self.light.items():
            if not points:
                continue
            colour, symbol = ROB_LOOK[level]
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=(row_in * 72 * 0.8) ** 2, marker="o", color=colour,
                       edgecolors="#555555", linewidths=0.4, transform=text_tf, clip_on=False,
                       zorder=3)
            for x, y in points:
                ax.text(x, y, symbol, transform=text_tf, ha="center", va="center", clip_on=False,
                        fontsize=style.font_size - 1, fontweight="bold", zorder=4,
                        family=style.font)


def _rob_header(column: str) -> str:
    """``rob_d1`` -> D1, ``rob_overall`` -> Overall (the legend spells out each domain)."""
    tail = column.removeprefix("rob_")
    return tail.upper() if tail.startswith("d") and tail[1:].isdigit() else tail.capitalize()


def _rob_circle(fig, x_in, y_in, colour):
    from matplotlib.patches import Circle

    return Circle((x_in, y_in), radius=0.065, transform=fig.dpi_scale_trans,
                  facecolor=colour, edgecolor="#555555", linewidth=0.4)


def _numeric(text: str) -> bool:
    if not text:
        return True
    try:
        float(text.replace("\u2212", "-").replace("/", ""))
        return True
    except ValueError:
        return False


def _clip_ci(lo, hi, low, high):
    """(lo, hi) clipped to the axis [low, high], or None when nothing of the CI is on it; an
    infinite bound runs to the edge (a caller marks the clipped ends with arrowheads)."""
    if lo is None or hi is None or not (math.isfinite(lo) or math.isfinite(hi)):
        return None
    lo_c = low if (not math.isfinite(lo) or lo < low) else lo
    hi_c = high if (not math.isfinite(hi) or hi > high) else hi
    if lo_c > high or hi_c < low:
        return None
    return lo_c, hi_c


def _ci_line(ax, y, lo, hi, low, high, *, colour="black", width=0.8, caps=False):
    """A CI line clipped to the axis, with an arrowhead where it runs off."""
    clipped = _clip_ci(lo, hi, low, high)
    if clipped is None:
        return
    lo_c, hi_c = clipped
    ax.plot([lo_c, hi_c], [y, y], color=colour, linewidth=width, solid_capstyle="butt", zorder=2)
    if caps:
        for xc, real in ((lo_c, lo), (hi_c, hi)):
            if xc == real:
                ax.plot([xc, xc], [y - 0.2, y + 0.2], color=colour, linewidth=width, zorder=2)
    if lo_c != lo:
        ax.plot([lo_c], [y], marker="<", markersize=4, color=colour, clip_on=False, zorder=2)
    if hi_c != hi:
        ax.plot([hi_c], [y], marker=">", markersize=4, color=colour, clip_on=False, zorder=2)
