"""Figures of ``msc-meta sensitivity``: leave-one-out and cumulative forest plots (metafor
``forest(leave1out(res))``, ``forest(cumul(res))``) and the Baujat plot (metafor
``baujat(res)``; Baujat et al. 2002, Stat Med 21:2641).

Every number drawn comes from ``msc_meta.pooling.sensitivity`` (``run_sensitivity`` and
``baujat``); nothing is computed here. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import math

from msc_meta import registry
from msc_meta.plot._common import (linear_limits, new_figure, place_labels, ratio_limits,
                                   selection_title)

KINDS = ("loo", "cumul", "baujat")
ROW_IN = 0.22
FONT = 8.0


def sensitivity_figure(analysis, kind: str, *, title: str | None = None):
    """The figure ``kind`` (loo, cumul or baujat) of a ``SensitivityAnalysis``."""
    if kind == "baujat":
        return baujat_plot(analysis, title=title)
    if kind in ("loo", "cumul"):
        return subset_forest(analysis, kind, title=title)
    raise ValueError(f"unknown sensitivity plot {kind!r}; choose {', '.join(KINDS)}")


def _what(analysis) -> str:
    return selection_title(analysis.outcome, analysis.timepoint_weeks, analysis.unit)


def subset_forest(analysis, kind: str, *, title: str | None = None):
    """A forest plot with one row per refit: "omitting S" (leave-one-out) or "adding S"
    (cumulative, in the order used), each with its estimate and CI, tau² and I², and the
    model of all studies as a diamond at the bottom; the dashed line marks its estimate."""
    from matplotlib.patches import Polygon
    from matplotlib.ticker import NullLocator

    from msc_meta.plot.forest import _ci_line, _Measurer, _ticks, _tick_label, fmt_interval, \
        fmt_tau2, STYLES

    sens = analysis.result
    full = analysis.full
    spec = registry.measure(sens.measure)
    rows = sens.leave_one_out if kind == "loo" else sens.cumulative
    verb = "Omitting" if kind == "loo" else "Adding"
    labels = [f"{verb} {r.label}" + (f" (k = {r.k})" if kind == "cumul" else "") for r in rows]
    texts = [fmt_interval(r.estimate, r.ci_low, r.ci_high) for r in rows]
    full_text = fmt_interval(full.estimate, full.ci_low, full.ci_high)
    het = [f"{fmt_tau2(r.tau2)}" for r in rows]
    i2 = [f"{r.i2:.0f}%" if math.isfinite(r.i2) else "\u2014" for r in rows]
    measurer = _Measurer(STYLES["revman"])
    heading = ("Leave-one-out" if kind == "loo" else f"Cumulative ({sens.order})")
    label_w = max(measurer.width(t) for t in labels + [heading, "All studies"]) + 0.25
    eff_w = max(measurer.width(t) for t in texts + [full_text, f"{spec.title} [{sens.level:g}% CI]"])
    tau_w = max(measurer.width(t) for t in het + ["\u03c4\u00b2"]) + 0.2
    i2_w = measurer.width("100%") + 0.25
    plot_in = 2.6
    left = 0.2
    x_eff = left + label_w + eff_w
    x_tau = x_eff + 0.2 + tau_w
    x_i2 = x_tau + i2_w
    plot_left = x_i2 + 0.3
    width = plot_left + plot_in + 0.35
    n = len(rows) + 4                    # headers, rows, blank, full model
    height = 0.8 + n * ROW_IN + 0.6
    fig = new_figure(width, height)
    ax = fig.add_axes([plot_left / width, 0.6 / height, plot_in / width, n * ROW_IN / height])
    ax.set_ylim(-(n - 0.5), 0.5)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_yticks([])
    from matplotlib.transforms import blended_transform_factory

    tf = blended_transform_factory(fig.dpi_scale_trans, ax.transData)
    kw = dict(fontsize=FONT, va="center", transform=tf, clip_on=False, parse_math=False)

    values = [v for r in rows for v in (r.ci_low, r.ci_high)] + [full.ci_low, full.ci_high]
    if spec.log_axis:
        ax.set_xscale("log")
        low, high = ratio_limits(values)
    else:
        low, high = linear_limits(values, symmetric_about=spec.null, bounds=spec.bounds)
    ax.set_xlim(low, high)
    ticks = _ticks(spec.name, low, high, spec)
    ax.set_xticks(ticks)
    ax.set_xticklabels([_tick_label(t) for t in ticks], fontsize=FONT)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="x", length=3, width=0.6, pad=2)

    ax.text(left, 0, heading, fontweight="bold", **kw)
    ax.text(x_eff, 0, f"{spec.title} [{sens.level:g}% CI]", ha="right", fontweight="bold", **kw)
    ax.text(x_tau, 0, "\u03c4\u00b2", ha="right", fontweight="bold", **kw)
    ax.text(x_i2, 0, "I\u00b2", ha="right", fontweight="bold", **kw)
    ax.plot([left, plot_left + plot_in], [-0.55, -0.55], transform=tf, color="black",
            linewidth=0.6, clip_on=False)
    for i, (label, text, t2, i2_text, r) in enumerate(zip(labels, texts, het, i2, rows)):
        y = -(i + 1)
        ax.text(left, y, label, **kw)
        ax.text(x_eff, y, text, ha="right", **kw)
        ax.text(x_tau, y, t2, ha="right", **kw)
        ax.text(x_i2, y, i2_text, ha="right", **kw)
        _ci_line(ax, y, r.ci_low, r.ci_high, low, high)
        if low <= r.estimate <= high:
            ax.scatter([r.estimate], [y], marker="s", s=22, color="#1f4e79", zorder=3,
                       clip_on=False)
    y = -(len(rows) + 2)
    ax.text(left, y, f"All studies (k = {sens.k})", fontweight="bold", **kw)
    ax.text(x_eff, y, full_text, ha="right", fontweight="bold", **kw)
    ax.text(x_tau, y, fmt_tau2(full.tau2), ha="right", **kw)
    ax.text(x_i2, y, f"{full.i2:.0f}%", ha="right", **kw)
    lo_c, hi_c = max(full.ci_low, low), min(full.ci_high, high)
    mid = min(max(full.estimate, low), high)
    ax.add_patch(Polygon([(lo_c, y), (mid, y + 0.34), (hi_c, y), (mid, y - 0.34)], closed=True,
                         facecolor="black", edgecolor="black", zorder=3))
    if spec.null is not None and low <= spec.null <= high:
        ax.plot([spec.null] * 2, [-0.5, y - 0.5], color="black", linewidth=0.6, zorder=1)
    if low < full.estimate < high:
        ax.plot([full.estimate] * 2, [-0.5, y - 0.5], color="#7f7f7f", linewidth=0.6,
                linestyle=(0, (3, 2)), zorder=1)
    method = f"{sens.method}{', HKSJ' if sens.test == 't' else ''}"
    fig.text(left / width, 1 - 0.25 / height,
             title or f"{'Leave-one-out' if kind == 'loo' else 'Cumulative'} analysis: {_what(analysis)}",
             fontsize=FONT + 3, fontweight="bold", va="center", parse_math=False)
    fig.text(left / width, 1 - 0.5 / height, f"{spec.title}, {method}, {sens.level:g}% CI",
             fontsize=FONT, va="center", color="#333333")
    return fig


def baujat_plot(analysis, *, title: str | None = None):
    """Each study's contribution to the heterogeneity (x: squared Pearson residual) against
    its influence on the pooled result (y), labelled where the labels hide nothing."""
    import numpy as np

    from msc_meta.pooling.sensitivity import baujat

    sens, full = analysis.result, analysis.full
    yi = np.array([s.yi for s in analysis.studies])
    vi = np.array([s.vi for s in analysis.studies])
    x, y = baujat(yi, vi, theta=full.theta, tau2=full.tau2,
                  loo=sens.leave_one_out)
    ids = [s.study_id for s in analysis.studies]
    fig = new_figure(6.0, 5.4)
    ax = fig.add_axes([0.13, 0.2, 0.82, 0.66])
    ax.scatter(x, y, s=28, color="black", zorder=3)
    finite_y = y[np.isfinite(y)]
    span_x = (x.max() - x.min()) or 1.0
    span_y = ((finite_y.max() - finite_y.min()) if finite_y.size else 1.0) or 1.0
    ax.set_xlim(x.min() - 0.08 * span_x, x.max() + 0.08 * span_x)
    if finite_y.size:
        ax.set_ylim(finite_y.min() - 0.08 * span_y, finite_y.max() + 0.12 * span_y)
    common = not full.random
    ax.set_xlabel("Contribution to overall heterogeneity" if common
                  else "Squared Pearson residual (contribution to heterogeneity)", fontsize=9)
    ax.set_ylabel("Influence on overall result", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(color="#e0e0e0", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    omitted = place_labels(fig, ax, list(x), list(y), ids,
                           order=list(np.argsort(-(x + y))))
    fig.text(0.13, 1 - 0.25 / 5.4, title or f"Baujat plot: {_what(analysis)}", fontsize=11,
             fontweight="bold", va="center", parse_math=False)
    method = f"{sens.method}{', HKSJ' if sens.test == 't' else ''}"
    lines = [f"{registry.measure(sens.measure).scale}, {method}, k = {sens.k} "
             "(metafor baujat(); Baujat et al. 2002)"]
    if omitted:
        lines.append(f"{omitted} of {len(ids)} labels left out where they would overlap; "
                     "--json lists every study.")
    for i, line in enumerate(lines):
        fig.text(0.13, (0.35 - 0.18 * i) / 5.4, line, fontsize=7.5, va="center", color="#333333")
    return fig
