"""L'Abbé plot (L'Abbé et al. 1987, Ann Intern Med 107:224; metafor ``labbe()``): each
study's event risk in the control arm (x) against the treatment arm (y), circle area
proportional to its weight in the pooled model, the line of no effect (y = x) and the
pooled effect as a line (RR: y = RR·x; OR: odds(y) = OR·odds(x); RD: y = x + RD;
``msc_meta.pooling.labbe.effect_curve``).

Ratio measures use log axes, as metafor draws log risks (RR) on both axes; the risks come
from ``msc_meta.pooling.labbe.labbe_points`` and the line from the pooled estimate;
nothing is estimated here. Labels follow the funnel's rule (``_common.place_labels``).
"""

from __future__ import annotations

from msc_meta import registry
from msc_meta.plot._common import new_figure, place_labels


def labbe_plot(points, *, title: str | None = None, label_t: str = "treatment",
               label_c: str = "control"):
    import numpy as np

    spec = registry.measure(points.measure)
    rt, rc = np.asarray(points.risk_t), np.asarray(points.risk_c)
    fig = new_figure(6.0, 6.2)
    ax = fig.add_axes([0.14, 0.2, 0.8, 0.68])
    log = spec.log_axis
    positive = np.concatenate([rt, rc])
    positive = positive[positive > 0]
    lo = max(min(positive.min() if positive.size else 0.01, 1.0) / 1.5, 1e-4) if log else 0.0
    hi = 1.0
    grid = np.geomspace(lo, hi, 200) if log else np.linspace(0.0, 1.0, 200)
    ax.plot(grid, grid, color="black", linewidth=0.8, zorder=1, label="no effect")
    # the pooled effect on the risk scale (metafor's y = x + theta), from the pooling module
    from msc_meta.pooling.labbe import effect_curve

    line = effect_curve(points.measure, points.theta, grid)
    keep = np.isfinite(line) & (line > (lo if log else 0.0)) & (line <= 1.0)
    ax.plot(grid[keep], line[keep], color="#1f4e79", linestyle="--", linewidth=1.0, zorder=1,
            label=f"pooled {spec.natural} = {points.estimate:.2f}")
    w = np.asarray(points.weight, dtype=float)
    sizes = 500.0 * w / (w.max() if w.max() > 0 else 1.0)
    shown = np.maximum(sizes, 14.0)
    ax.scatter(rc, rt, s=shown, facecolors="#9e9e9e", edgecolors="black", linewidths=0.7,
               alpha=0.75, zorder=3)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())
    ax.set_xlim(lo, 1.0 * (1.15 if log else 1.05))
    ax.set_ylim(lo, 1.0 * (1.15 if log else 1.05))
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"Event risk, {label_c} arm", fontsize=9)
    ax.set_ylabel(f"Event risk, {label_t} arm", fontsize=9)
    ax.tick_params(labelsize=8)
    radii = np.sqrt(shown) / 2 * fig.dpi / 72
    omitted = place_labels(fig, ax, list(rc), list(rt), list(points.study_ids), radii=radii,
                           curves=[(grid, grid), (grid[keep], line[keep])],
                           order=list(np.argsort(-w)))
    from matplotlib.lines import Line2D

    handles, texts = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="o", linestyle="none", markersize=8,
                          markerfacecolor="#9e9e9e", markeredgecolor="black", alpha=0.75))
    texts.append("studies (area \u221d weight)")
    fig.legend(handles, texts, loc="upper left", ncol=3, fontsize=7, frameon=False,
               bbox_to_anchor=(0.13, 0.1))
    fig.text(0.14, 1 - 0.25 / 6.2, title or "L'Abb\u00e9 plot", fontsize=11, fontweight="bold",
             va="center", parse_math=False)
    notes = [f"{spec.title}; k = {len(rt)}; a zero cell gets the continuity correction, as "
             "metafor labbe()"]
    if omitted:
        notes.append(f"{omitted} of {len(rt)} labels left out where they would overlap.")
    for i, line in enumerate(notes):
        fig.text(0.14, (0.32 - 0.17 * i) / 6.2, line, fontsize=7.5, va="center", color="#333333")
    return fig
