"""The HTML report of ``msc-meta report`` (presentation only).

One self-contained HTML document: no script, no external style sheet, font,
image or link; the forest plots are inline SVG drawn by
``msc_meta.plot.forest`` and cleaned by :func:`inline_svg`. Every number was
computed by ``msc_meta.pooling`` (``run_pool``, ``run_pool_by``,
``run_sensitivity``) and is formatted here by the formatters of the
terminal table (``msc_meta.report.forest_table``), so that the report and
``msc-meta pool`` print the same digits. Every text that comes from data
(study ids, quotes, notes, reasons, file names) goes through :func:`esc`
(``html.escape``) and nowhere else.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from msc_meta import registry
from msc_meta.report.forest_table import (PI_LABEL, arm_cells, fmt, fmt_ci, fmt_count, fmt_p,
                                          fmt_pct, fmt_weight, pooled_label, subgroup_test_line,
                                          title)
from msc_meta.report.units import units_of, with_units

SVG_NS = "http://www.w3.org/2000/svg"
LIBRARIES = ("numpy", "scipy", "matplotlib", "rich", "click")


def esc(value) -> str:
    """Text from data as HTML text (``&``, ``<``, ``>``, both quotes escaped)."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class ReportSection:
    """One analysis of the report: the pools, its figure, its sensitivity results and its rows."""

    analyses: tuple                       # Analysis: one, or the --by subgroups
    svg: str                              # the forest plot, from inline_svg()
    rows: Mapping[int, object]            # table Row by row_number (provenance)
    overall: object | None = None         # with --by: the pool of all rows
    subgroup_test: object | None = None
    by: str | None = None
    sensitivity: object | None = None     # SensitivityAnalysis, or None with a reason
    sensitivity_reason: str | None = None
    anchor: str = "a1"

    @property
    def primary(self):
        """The pool the section is about: the overall one with --by, else the only one."""
        return self.overall if self.overall is not None else self.analyses[0]


@dataclass(frozen=True)
class ReportInfo:
    """What the report says about its inputs and its software."""

    data_path: str
    versions: tuple = ()                  # (name, version) pairs
    skipped: tuple = ()                   # one line per analysis --all could not pool
    command: str | None = None            # the command line, for the reader to rerun


# --------------------------------------------------------------------------- SVG

_ID = re.compile(r'\bid="([^"]+)"')
_FORBIDDEN_SVG = re.compile(r"<\s*(script|foreignObject|iframe|image|a|object|embed)\b", re.I)


def inline_svg(svg_text: str, prefix: str) -> str:
    """matplotlib's SVG as an element to place inside HTML.

    Drops the XML declaration, the DOCTYPE (it names a DTD by URL), comments
    and any metadata; replaces ``xlink:href`` with SVG 2's ``href`` so that
    no namespace other than SVG's is declared; prefixes every ``id`` with
    ``prefix`` so that several figures in one document do not share ids.
    Then checks what it returns: no script or other active or external
    element, no event-handler attribute, no reference other than ``#id``
    and no URL but the SVG namespace. A violation is a bug (ValueError).
    """
    start = svg_text.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document")
    svg = svg_text[start:]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r"<metadata\b.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns:xlink="[^"]*"', "", svg)
    svg = svg.replace("xlink:href=", "href=")
    ids = _ID.findall(svg)
    for old in sorted(set(ids), key=len, reverse=True):
        new = f"{prefix}-{old}"
        svg = svg.replace(f'id="{old}"', f'id="{new}"')
        svg = svg.replace(f'href="#{old}"', f'href="#{new}"')
        svg = svg.replace(f"url(#{old})", f"url(#{new})")
    _check_svg(svg)
    return svg.strip()


def _check_svg(svg: str) -> None:
    if _FORBIDDEN_SVG.search(svg):
        raise ValueError("the SVG holds an element that a report must not carry")
    # an attribute named on...: only inside a tag, never in text (text is escaped)
    for tag in re.findall(r"<[^>]*>", svg):
        if re.search(r"\son\w+\s*=", tag, flags=re.I):
            raise ValueError("the SVG holds an event-handler attribute")
        for ref in re.findall(r'href="([^"]*)"', tag):
            if not ref.startswith("#"):
                raise ValueError("the SVG refers to something outside itself")
        for ref in re.findall(r"url\(([^)]*)\)", tag):
            if not ref.strip("'\" ").startswith("#"):
                raise ValueError("the SVG refers to something outside itself")
    urls = set(re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"'<>)]*", svg, flags=re.I))
    if urls - {SVG_NS}:
        raise ValueError(f"the SVG names a URL: {sorted(urls - {SVG_NS})[0]}")


# --------------------------------------------------------------------------- pieces

def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = (),
           caption: str | None = None, cls: str = "") -> str:
    """A table; ``head`` and ``rows`` are HTML already (escape before)."""
    out = [f'<table class="{cls}">' if cls else "<table>"]
    if caption:
        out.append(f"<caption>{caption}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>")
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            cells.append(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _list(items: Sequence[str]) -> str:
    """A bulleted list of items that are HTML already."""
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _rows_of(line) -> tuple[int, ...]:
    """The table rows behind one pooled line (a combined or split multi-arm line has several)."""
    rows = [line.row_number] + list(getattr(line, "member_rows", ()) or ())
    return tuple(dict.fromkeys(rows))


def _has(x) -> bool:
    return x is not None and not (isinstance(x, float) and x != x)


# --------------------------------------------------------------------------- an analysis

def _spec(analysis):
    """The analysis's measure as the registry defines it, on its scale (GEN: --scale)."""
    return registry.measure(analysis.measure, getattr(analysis.options, "scale", None))


def _natural(analysis, units=None) -> str:
    """The natural-scale label, with the outcome's units where the measure has them."""
    return with_units(_spec(analysis).natural, units)


def _studies_table(analysis, units=None) -> str:
    measure = _spec(analysis)
    two_arm = measure.two_arm
    marked = [s.cc_added and (two_arm or analysis.study_ci == "wald") for s in analysis.studies]
    effect_head = f"{esc(_natural(analysis, units))} [{analysis.level:g}% CI]"
    # outcome types beyond counts: their own input columns (the terminal table's arm_cells)
    arms = None if measure.family == "counts" else arm_cells(measure.family, analysis.studies)
    if arms is not None:
        two_arm = len(arms.heads) == 2
        head = ["Study", "Table rows", *arms.heads]
    else:
        head = ["Study", "Table rows", "Treated" if two_arm else "Events/N"]
        if two_arm:
            head.append("Control")
    head += [effect_head, "Weight"]
    rows = []
    for s, mark in zip(analysis.studies, marked):
        label = esc(s.study_id)
        members = getattr(s, "members", ()) or ()
        if s.multiarm == "combine" and members:
            label += f'<br><span class="small">combines {esc(", ".join(members))}</span>'
        elif s.multiarm == "split" and members:
            label += (f'<br><span class="small">control shared with '
                      f'{esc(", ".join(m for m in members if m != s.study_id))}, split</span>')
        row = [label, esc(", ".join(str(r) for r in _rows_of(s)))]
        if arms is not None:
            row += [esc(cell) for cell in arms.cells[len(rows)]]
        else:
            row.append(f"{fmt_count(s.events_t)}/{fmt_count(s.n_t)}")
            if two_arm:
                row.append(f"{fmt_count(s.events_c)}/{fmt_count(s.n_c)}")
        row += [esc(fmt_ci(s.estimate, s.ci_low, s.ci_high)) + ("*" if mark else ""),
                esc(fmt_weight(s.weight))]
        rows.append(row)
    numeric = (2, 3, 4, 5) if two_arm else (2, 3, 4)
    text = _table(head, rows, numeric=numeric)
    if arms is not None and arms.legend:
        text += f'<p class="small">{esc(arms.legend)}</p>'
    if arms is not None and arms.footnotes:      # what made each marked (derived) value
        text += '<p class="small">' + "<br>".join(esc(line) for line in arms.footnotes) + "</p>"
    if any(marked):
        text += f'<p class="small">* continuity correction {analysis.cc:g} added to every cell</p>'
    return text


def _fits_table(analysis, units=None) -> str:
    measure = _spec(analysis)
    fits = [f for f in (analysis.common, analysis.result) if f is not None]
    rows = []
    for fit in fits:
        label = pooled_label(fit)
        test = f"{fit.test} = {fmt(fit.stat, 2)}"
        if fit.test == "t" and fit.df is not None:
            test += f" (df = {fit.df:g})"
        rows.append([esc(label), str(fit.k),
                     f'<span class="estimate">{esc(fmt_ci(fit.estimate, fit.ci_low, fit.ci_high))}</span>',
                     esc(f"{test}, {fmt_p(fit.pval)}")])
    head = ["Model", "k", f"{esc(_natural(analysis, units))} [{analysis.level:g}% CI]",
            "Test of the pooled effect"]
    said = measure.test_null_text
    text = _table(head, rows, numeric=(1, 2))
    if said:
        text += f'<p class="small">The test is of {esc(said)} on the analysis scale.</p>'
    return text


def _heterogeneity(analysis) -> str:
    fit = analysis.result
    if fit is None:
        return "<p>Nothing pooled.</p>"
    if analysis.k < 2:
        return (f"<p>Heterogeneity and the prediction interval are not estimable with "
                f"k = {analysis.k}: one study has no between-study spread.</p>")
    rows = []
    if fit.random:
        tau2 = fmt(fit.tau2, 4)
        if fit.tau2_ci_low is not None and fit.tau2_ci_high is not None:
            tau2 += f" [{fmt(fit.tau2_ci_low, 4)}, {fmt(fit.tau2_ci_high, 4)}]"
        rows.append(["τ² (between-study variance, analysis scale) [Q-profile CI]", esc(tau2)])
        rows.append(["τ", esc(fmt(fit.tau, 4))])
    i2 = fmt_pct(fit.i2)
    if fit.i2_ci_low is not None and fit.i2_ci_high is not None:
        i2 += f" [{fmt_pct(fit.i2_ci_low)}, {fmt_pct(fit.i2_ci_high)}]"
    rows.append(["I²" + ("" if fit.random else " (from Q)"), esc(i2)])
    rows.append(["H²", esc(fmt(fit.h2, 2))])
    rows.append(["Cochran's Q", esc(f"Q = {fmt(fit.q, 2)} (df = {fit.q_df}, {fmt_p(fit.q_pval)})")])
    if fit.random:
        how = PI_LABEL.get(fit.pi_method or analysis.pi, fit.pi_method or analysis.pi)
        if _has(fit.pi_low) and _has(fit.pi_high) and abs(fit.pi_low) != float("inf") \
                and abs(fit.pi_high) != float("inf"):
            pi = f"{fmt(fit.pi_low)} to {fmt(fit.pi_high)}"
        else:
            pi = f"not defined for k = {analysis.k}"
        rows.append([esc(f"Prediction interval ({analysis.level:g}%, {how})"),
                     f'<span class="pi">{esc(pi)}</span>'])
    else:
        rows.append(["Prediction interval", "none for a common-effect model"])
    return _table(["Statistic", "Value"], rows, numeric=(1,))


def _left_out_and_notes(analysis) -> str:
    parts = []
    if analysis.excluded:
        parts.append("<h4>Left out</h4>")
        parts.append(_list([f"<b>{esc(e.study_id)}</b> (row {e.row_number}): {esc(e.reason)}"
                            for e in analysis.excluded]))
    else:
        parts.append("<p>No selected row was left out.</p>")
    if analysis.notes:
        parts.append("<h4>Notes</h4>")
        parts.append(_list([esc(n) for n in analysis.notes]))
    guidance = getattr(analysis, "guidance", None)
    if guidance:
        parts.append(f'<p class="guidance"><b>Guidance:</b> {esc(guidance)}</p>')
    return "\n".join(parts)


def _analysis_block(analysis, heading_level: int = 3, show_title: bool = True, units=None) -> str:
    h = f"h{heading_level}"
    parts = [f"<{h}>{esc(title(analysis))}</{h}>"] if show_title else []
    if analysis.result is None:
        parts.append("<p>Nothing pooled in this group.</p>")
        parts.append(_left_out_and_notes(analysis))
        return "\n".join(parts)
    parts.append("<h4>Studies pooled</h4>")
    parts.append(_studies_table(analysis, units))
    parts.append("<h4>Pooled estimate</h4>")
    parts.append(_fits_table(analysis, units))
    parts.append("<h4>Heterogeneity</h4>")
    parts.append(_heterogeneity(analysis))
    parts.append(_left_out_and_notes(analysis))
    return "\n".join(parts)


def _sensitivity_block(section) -> str:
    parts = ["<h3>Sensitivity: leave-one-out</h3>"]
    if section.by:
        parts.append(f"<p>On all rows of the selection together (not per {esc(section.by)} subgroup).</p>")
    sa = section.sensitivity
    if sa is None:
        parts.append(f"<p>Not run: {esc(section.sensitivity_reason or 'no reason given')}.</p>")
        return "\n".join(parts)
    res = sa.result
    natural = with_units(registry.measure(res.measure, res.scale).natural, _units(section))
    if sa.full is not None:
        parts.append(f"<p>All {res.k} studies: {esc(natural)} "
                     f"{esc(fmt_ci(sa.full.estimate, sa.full.ci_low, sa.full.ci_high))}, "
                     f"τ² = {esc(fmt(sa.full.tau2, 4))}, I² = {esc(fmt_pct(sa.full.i2))}.</p>")
    rows = [[esc(f.label), str(f.k), esc(fmt_ci(f.estimate, f.ci_low, f.ci_high)),
             esc(fmt_p(f.pval)), esc(fmt(f.tau2, 4)), esc(fmt_pct(f.i2)), esc(fmt(f.q, 2))]
            for f in res.leave_one_out]
    parts.append(_table(["Omitted", "k", f"{esc(natural)} [{res.level:g}% CI]", "p", "τ²", "I²", "Q"],
                        rows, numeric=(1, 2, 3, 4, 5, 6)))
    flagged = [r.study_id for r in res.influence if r.influential]
    parts.append("<p>Influential by metafor's <code>influence()</code> criteria: "
                 + (esc(", ".join(flagged)) if flagged else "none") + ".</p>")
    if sa.notes:
        parts.append(_list([esc(n) for n in sa.notes]))
    return "\n".join(parts)


def _provenance_block(section) -> str:
    """One line per table row behind a pooled line (a row shared by several lines, as the
    control of split multi-arm comparisons, once, with every line it feeds)."""
    used: dict[int, list[str]] = {}
    for analysis in section.analyses:
        if analysis.result is None:
            continue
        for line in analysis.studies:
            for number in _rows_of(line):
                used.setdefault(number, [])
                if line.study_id not in used[number]:
                    used[number].append(line.study_id)
    rows = []
    for number, lines in used.items():
        row = section.rows.get(number)
        if row is None:
            continue
        counts = f"{fmt_count(row.events_t)}/{fmt_count(row.n_t)}"
        if row.events_c is not None or row.n_c is not None:
            counts += f" vs {fmt_count(row.events_c)}/{fmt_count(row.n_c)}"
        quote = f'<q class="quote">{esc(row.quote)}</q>' if row.quote else "<i>no quote</i>"
        rows.append([str(number), esc(row.study_id), esc(", ".join(lines)), esc(counts),
                     esc(row.source or "—"), quote, esc(row.note or "")])
    if not rows:
        return ""
    return ("<h3>Provenance of every pooled row</h3>\n"
            "<p>Each outcome-table row a pooled line rests on: the counts as the table gives them, "
            "the source document, the verbatim quote that holds the numbers (<code>msc-meta check "
            "--sources</code> checks it against the source) and the note.</p>\n"
            + _table(["Row", "study_id", "Pooled in", "Counts (treated vs control)", "Source",
                      "Quote", "Note"], rows, numeric=(0,), cls="provenance"))


# --------------------------------------------------------------------------- methods in words

REFERENCES = {
    "metafor": "Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. "
               "<i>J Stat Softw</i> 36(3):1–48.",
    "handbook": "Higgins JPT, Thomas J, Chandler J, et al. (eds) (2023). <i>Cochrane Handbook for "
                "Systematic Reviews of Interventions</i>, version 6.4. Cochrane.",
    "hksj": "Hartung J, Knapp G (2001). <i>Stat Med</i> 20:3875–3889; Sidik K, Jonkman JN (2002). "
            "<i>Stat Med</i> 21:3153–3159.",
    "pi": "Higgins JPT, Thompson SG, Spiegelhalter DJ (2009). A re-evaluation of random-effects "
          "meta-analysis. <i>J R Stat Soc A</i> 172:137–159.",
    "i2": "Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis. "
          "<i>Stat Med</i> 21:1539–1558.",
    "qprofile": "Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in "
                "meta-analysis. <i>Stat Med</i> 26:37–52.",
    "exact": "Clopper CJ, Pearson ES (1934). <i>Biometrika</i> 26:404–413.",
    "wilson": "Wilson EB (1927). <i>J Am Stat Assoc</i> 22:209–212.",
    "influence": "Viechtbauer W, Cheung MWL (2010). Outlier and influence diagnostics for "
                 "meta-analysis. <i>Res Synth Methods</i> 1:112–125.",
}


def _methods(section) -> tuple[list[str], list[str]]:
    """Sentences (HTML) describing how the section was pooled, and the reference keys they cite."""
    a = section.primary
    fit = a.result
    m = _spec(a)
    method = registry.method(fit.method if fit is not None else a.method)
    refs = ["metafor"]
    said = []
    where = [f"outcome <code>{esc(a.outcome)}</code>"]
    if a.timepoint_weeks is not None:
        where.append(f"at {a.timepoint_weeks:g} weeks")
    if a.unit:
        where.append(f"counted per {esc(a.unit)}")
    said.append("Rows selected: " + ", ".join(where) + ". Rows without counts, and rows whose people "
                "a finer selected row already counts (<code>subgroup_of</code>), are listed as left "
                "out with the reason, never pooled silently.")
    said.append(f"Effect measure: {esc(m.title.lower())} (<code>{esc(m.name)}</code>), analysed on the "
                f"{esc(m.scale)} scale as metafor <code>escalc(measure=\"{esc(m.name)}\")</code>; "
                f"estimates are shown back-transformed ({esc(m.natural)}).")
    if m.reference:
        refs.append(m.reference)
    if m.uses_cc and a.cc > 0:
        said.append(f"A study with a zero cell gets {a.cc:g} added to every cell "
                    f"(<code>escalc(add={a.cc:g}, to=\"only0\")</code>).")
    if m.drop00:
        said.append("Studies with no events (or only events) in both arms carry no information on the "
                    "ratio and are left out, as metafor's <code>drop00=TRUE</code>.")
    if a.k == 1:
        said.append("Only one study could be pooled: the result is that study's own estimate with a "
                    f"Wald {a.level:g}% CI; no model was fitted.")
    elif method.kind == "common":
        said.append(f"Pooled with a common-effect model: {esc(method.long_label)} (metafor "
                    f"<code>{esc(method.metafor)}</code>).")
    elif method.kind == "glmm":
        said.append(f"Pooled with a {esc(method.long_label)} (exact binomial likelihood; metafor "
                    f"<code>{esc(method.metafor)}</code>).")
    else:
        said.append(f"Pooled with a random-effects model, τ² estimated by {esc(method.long_label)} "
                    f"(<code>{esc(method.name)}</code>; metafor <code>{esc(method.metafor)}</code>), "
                    "shown beside the inverse-variance common-effect model.")
    if a.k > 1 and method.reference:
        refs.append(method.reference)
    if a.k > 1 and fit is not None:
        if fit.hksj:
            said.append(f"The {a.level:g}% CI uses the Hartung-Knapp-Sidik-Jonkman adjustment "
                        "(t with k − 1 df; metafor <code>test=\"knha\"</code>).")
            refs.append("hksj")
        else:
            said.append(f"The {a.level:g}% CI is a Wald interval on the analysis scale, then "
                        "back-transformed.")
        said.append("Heterogeneity: Cochran's Q with the common-effect weights; I² and H² as metafor "
                    "(from τ² for random-effects fits, from Q otherwise); Q-profile CI for τ².")
        refs += ["i2", "qprofile"]
        if fit.random:
            how = PI_LABEL.get(fit.pi_method or a.pi, fit.pi_method or a.pi)
            said.append(f"Prediction interval: θ ± c·sqrt(τ² + se²) on the analysis scale, c the "
                        f"{(100 + a.level) / 2:g}% quantile ({esc(how)}), then back-transformed.")
            refs.append("pi")
    if m.arms == 1 and m.family == "counts":
        ci = a.study_ci
        words = {"exact": "exact Clopper-Pearson", "wilson": "Wilson score",
                 "wald": "Wald (escalc scale, back-transformed)"}.get(ci, ci)
        said.append(f"Per-study intervals: {esc(words)}; they change what is shown, not what is pooled.")
        if ci in ("exact", "wilson"):
            refs.append(ci)
    if m.two_arm:
        mode = a.multiarm
        words = {"combine": "their treatment arms are combined into one comparison so that the "
                            "control counts once",
                 "split": "the shared control's events and participants are split evenly among the "
                          "comparisons",
                 "keep": "they are kept as they are (the control then counts several times)"}
        said.append(f"Comparisons of one trial sharing a control arm (<code>--multiarm {esc(mode)}</code>): "
                    f"{words.get(mode, esc(mode))} (Cochrane Handbook 23.3.4).")
        refs.append("handbook")
    if section.sensitivity is not None:
        said.append("Leave-one-out: the same model refitted k times, each time without one study "
                    "(metafor <code>leave1out()</code>); influence as metafor <code>influence()</code>.")
        refs.append("influence")
    return said, list(dict.fromkeys(refs))


# --------------------------------------------------------------------------- the document

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#111;
background:#fff;max-width:62rem;margin:1.5rem auto;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.3rem;border-bottom:2px solid #1f4e79;
padding-bottom:.2rem;margin-top:2.2rem}h3{font-size:1.1rem;margin-top:1.6rem}h4{font-size:1rem;
margin:1rem 0 .3rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.9rem;max-width:100%}
th,td{border:1px solid #888;padding:.25rem .5rem;vertical-align:top;text-align:left}
th{background:#e8eef5}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.provenance td{font-size:.85rem}table.provenance td:nth-child(5){overflow-wrap:anywhere;
max-width:12rem}table.provenance td:nth-child(6),table.provenance td:nth-child(7){min-width:14rem}q.quote{font-family:Georgia,"DejaVu Serif",serif}
figure{margin:1rem 0;border:1px solid #ccc;padding:.3rem}figure svg{width:100%;height:auto;display:block}
.small{font-size:.85rem;color:#444}.headline{font-size:1.1rem;background:#f3f6fa;
border-left:4px solid #1f4e79;padding:.5rem .8rem}.guidance{background:#fff8e1;padding:.4rem .6rem}
code{font-size:.9em;background:#f2f2f2;padding:0 .2em}
"""


def render_html(sections: Sequence[ReportSection], info: ReportInfo, sof: Sequence = ()) -> str:
    """The whole report as one HTML document (a str); ``sof``: summary-of-findings rows
    (``msc_meta.pooling.sof.Finding``), shown as one table before the analyses."""
    many = len(sections) > 1
    heading = "msc-meta report" + ("" if many else f": {sections[0].primary.outcome}")
    body = [f"<h1>{esc(heading)}</h1>",
            f'<p class="small">Data: <code>{esc(info.data_path)}</code>'
            + (f" · Command: <code>{esc(info.command)}</code>" if info.command else "") + "</p>"]
    if many:
        body.append("<h2>Contents</h2>")
        body.append(_list([f'<a href="#{s.anchor}">{esc(title(s.primary))}</a>' for s in sections]))
    if info.skipped:
        body.append("<h2>Not pooled</h2><p>Selections of the table with nothing to pool:</p>")
        body.append(_list([esc(line) for line in info.skipped]))
    if sof:
        body.append(sof_html(sof))
    for section in sections:
        body.append(_section_html(section, many))
    body.append(_versions_html(info))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{esc(heading)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _section_html(section: ReportSection, many: bool) -> str:
    a = section.primary
    fit = a.result
    parts = [f'<section id="{esc(section.anchor)}">']
    parts.append(f"<h2>{esc(title(a))}</h2>")
    units = _units(section)
    if fit is not None:
        label = pooled_label(fit)
        natural = _natural(a, units)
        parts.append(f'<p class="headline">{esc(label)}: {esc(natural)} '
                     f'<span class="estimate">{esc(fmt_ci(fit.estimate, fit.ci_low, fit.ci_high))}</span> '
                     f"({a.level:g}% CI), k = {a.k}"
                     + (f"; τ² = {esc(fmt(fit.tau2, 4))}, I² = {esc(fmt_pct(fit.i2))}" if a.k > 1 else "")
                     + "</p>")
    parts.append("<h3>Forest plot</h3>")
    parts.append(f"<figure>{section.svg}</figure>")
    if section.by:
        parts.append(f"<h3>Pooled, by {esc(section.by)}</h3>")
        for sub in section.analyses:
            parts.append(_analysis_block(sub, heading_level=4, units=units))
        parts.append("<h4>All subgroups together</h4>")
        parts.append(_analysis_block(a, heading_level=4, units=units))
        parts.append(f"<p><b>{esc(subgroup_test_line(section.subgroup_test, section.analyses))}</b></p>")
    else:
        parts.append("<h3>What was pooled and what was left out</h3>")
        parts.append(_analysis_block(a, heading_level=4, show_title=False, units=units))
    parts.append(_sensitivity_block(section))
    said, refs = _methods(section)
    parts.append("<h3>Methods</h3>")
    parts.append("".join(f"<p>{s}</p>" for s in said))
    parts.append("<h4>References</h4>")
    # a key of REFERENCES, or a measure's or method's own reference (plain text from the registry)
    parts.append("<ol>" + "".join(f"<li>{REFERENCES.get(r, esc(r))}</li>" for r in refs) + "</ol>")
    parts.append(_provenance_block(section))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _units(section) -> str | None:
    """The outcome's units (the table's outcome_units column) for measures that have them."""
    a = section.primary
    return units_of(a.measure, a.studies, section.rows, getattr(a.options, "scale", None))


def sof_html(findings: Sequence) -> str:
    """The GRADE summary-of-findings table of every outcome (``msc-meta sof``'s cells, escaped),
    with each outcome's certainty inputs and hints (computed, never a rating) below it."""
    from msc_meta.report.sof_table import HEADERS, caption, cells, columns_of, footnotes

    shown = columns_of(findings)
    head = [esc(title_.format(t="intervention").replace("-\n", "")).replace("\n", "<br>")
            for key, title_ in HEADERS if key in shown]
    rows = [[esc(cells(f)[key]).replace("\n", "<br>") for key in shown] for f in findings]
    notes = []
    for f in findings:
        lines = footnotes(f)
        notes.append(f"<li><b>{esc(lines[0])}</b>"
                     + _list([esc(line.strip().lstrip("- ")) for line in lines[1:]]) + "</li>")
    return ('<div id="sof" class="sof"><h2>Summary of findings</h2>\n'
            + _table(head, rows, numeric=[i for i, k in enumerate(shown)
                                          if k in ("comparator", "intervention", "difference")],
                     caption=esc(caption(findings)), cls="sof")
            + "\n<h3>Certainty inputs, hints and notes per outcome</h3>\n<ul>"
            + "".join(notes) + "</ul></div>")


def _versions_html(info: ReportInfo) -> str:
    rows = [[esc(name), esc(version)] for name, version in info.versions]
    return ("<h2>Software</h2>\n<p>The versions that computed and drew this report.</p>\n"
            + _table(["Package", "Version"], rows))


def library_versions() -> tuple[tuple[str, str], ...]:
    """(name, version) of msc-meta, Python and the libraries; read from the installed
    distributions' metadata, so that nothing is imported for it."""
    import platform
    from importlib import metadata

    from msc_meta import __version__

    out = [("msc-meta", __version__), ("Python", platform.python_version())]
    for name in LIBRARIES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return tuple(out)


__all__ = ["ReportInfo", "ReportSection", "esc", "inline_svg", "library_versions", "render_html"]
