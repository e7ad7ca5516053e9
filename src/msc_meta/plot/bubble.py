"""Bubble plot of a meta-regression on one continuous moderator, as metafor
``regplot()``: each study's effect against the moderator, bubble *area*
proportional to its weight in the mixed-effects model (``1 / (vi + tau²)``,
metafor ``weights.rma.uni``), the fitted line and its confidence band.

The band is metafor ``predict.rma(res, newmods = x)``: for X0 = (1, x),
pred = X0 b, se = sqrt(X0 V X0'), pred ± crit * se, with ``crit`` the normal
quantile, or t(k - p) under Knapp-Hartung (V then already carries the
Knapp-Hartung scale factor). Effects are drawn on the natural scale (a log
axis for RR and OR), the line and band back-transformed point by point as
``regplot(res, transf=exp)`` does.
"""

from __future__ import annotations

import math

from msc_meta import registry
from msc_meta.plot._common import new_figure


def prediction_band(fit, x, *, slope_index: int = 1):
    """Fitted values and CI of a one-moderator meta-regression at ``x``.

    ``fit`` is a ``msc_meta.pooling.metareg.MetaRegression`` with the
    intercept first and the moderator at ``slope_index``; returns
    ``(pred, ci_low, ci_high)`` as numpy arrays on the analysis scale
    (metafor ``predict.rma`` with ``newmods = x``).
    """
    import numpy as np
    from scipy import special

    x = np.asarray(x, dtype=float)
    beta = np.asarray(fit.beta, dtype=float)
    vb = np.asarray(fit.vb, dtype=float)
    b0, b1 = beta[0], beta[slope_index]
    v00, v01, v11 = vb[0, 0], vb[0, slope_index], vb[slope_index, slope_index]
    pred = b0 + b1 * x
    se = np.sqrt(np.maximum(v00 + 2.0 * x * v01 + x * x * v11, 0.0))
    alpha = 1.0 - fit.level / 100.0
    if fit.test == "t":
        crit = float(special.stdtrit(fit.ddf, 1.0 - alpha / 2.0))
    else:
        crit = float(special.ndtri(1.0 - alpha / 2.0))
    return pred, pred - crit * se, pred + crit * se


def bubble_plot(x, yi, vi, *, measure: str, fit=None, xlabel: str = "moderator",
                weights=None, ni=None, labels=None, title: str | None = None,
                note: str | None = None, slope_index: int = 1):
    """Return a matplotlib Figure of the bubble plot (see the module doc).

    ``x``: moderator values as they enter the model (e.g. log10 dose);
    ``yi``/``vi``: effects and variances on the analysis scale; ``fit``: the
    ``MetaRegression`` (line and band drawn when given); ``weights``: bubble
    weights (default ``1/(vi + tau²)`` of ``fit``, or ``1/vi``); ``ni``:
    sample sizes, needed to back-transform PFT.
    """
    import numpy as np

    from msc_meta.effects import transform_back

    x = np.asarray(x, dtype=float)
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    if not (len(x) == len(yi) == len(vi)) or len(x) == 0:
        raise ValueError("bubble_plot needs x, yi and vi of the same length (k >= 1)")
    if weights is None:
        tau2 = float(fit.tau2) if fit is not None and math.isfinite(fit.tau2) else 0.0
        weights = 1.0 / (vi + tau2)
    weights = np.asarray(weights, dtype=float)

    def back(values):
        return transform_back(measure, values, ni=ni)

    notes = [note] if note else []
    spare = 1 if labels is not None else 0   # room for a note on omitted labels
    height = 5.2 + 0.2 * (len(notes) + spare)
    bottom_in = 1.15 + 0.2 * (len(notes) + spare)      # x label, legend, notes
    fig = new_figure(6.0, height)
    ax = fig.add_axes([0.14, bottom_in / height, 0.81, (height - bottom_in - 0.85) / height])
    if fit is not None:
        span = x.max() - x.min() or 1.0
        grid = np.linspace(x.min() - 0.05 * span, x.max() + 0.05 * span, 200)
        pred, low, high = prediction_band(fit, grid, slope_index=slope_index)
        ax.fill_between(grid, back(low), back(high), color="#c6d9ec", linewidth=0, zorder=1,
                        label=f"{fit.level:g}% CI of the fitted line")
        ax.plot(grid, back(pred), color="#1f4e79", linewidth=1.4, zorder=2, label="fitted line")
        for edge in (low, high):
            ax.plot(grid, back(edge), color="#1f4e79", linewidth=0.6, linestyle="--", zorder=2)
    # area ∝ weight: scatter's s is an area (points²)
    sizes = 600.0 * weights / weights.max()
    ax.scatter(x, back(yi), s=np.maximum(sizes, 12.0), facecolors="#9e9e9e", edgecolors="black",
               linewidths=0.7, alpha=0.75, zorder=3)
    span = x.max() - x.min() or 1.0
    ax.set_xlim(x.min() - 0.08 * span, x.max() + 0.08 * span)
    spec = registry.measure(measure)
    if spec.log_axis:
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.6, zorder=1.5)
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    elif spec.null is not None:
        ax.axhline(spec.null, color="black", linewidth=0.6, zorder=1.5)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(spec.title, fontsize=9)
    ax.tick_params(labelsize=8)
    if labels is not None:
        # the funnel's rule: a label only where it hides no bubble, label or the null line
        from msc_meta.plot._common import place_labels

        ax.set_ylim(ax.get_ylim())           # fix the autoscaled limits before measuring
        shown = np.maximum(sizes, 12.0)
        radii = np.sqrt(shown) / 2 * fig.dpi / 72
        hlines = [1.0 if spec.log_axis else spec.null] if (spec.log_axis or spec.null is not None) else []
        curves = [(grid, back(pred))] if fit is not None else []   # nor the fitted line
        omitted = place_labels(fig, ax, list(x), list(back(yi)), [str(t) for t in labels],
                               hlines=hlines, curves=curves, radii=radii,
                               order=list(np.argsort(-weights)))
        if omitted:
            notes.append(f"{omitted} of {len(x)} labels left out where they would overlap; "
                         "--json lists every study.")
    # legend below the axes, where it cannot hide a study; a fixed-size
    # proxy marker so the legend does not show the largest bubble
    from matplotlib.lines import Line2D

    handles, texts = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="o", linestyle="none", markersize=8,
                          markerfacecolor="#9e9e9e", markeredgecolor="black", alpha=0.75))
    texts.append("studies (area \u221d weight)")
    fig.legend(handles, texts, loc="upper left", ncol=3, fontsize=7, frameon=False,
               bbox_to_anchor=(0.13, (bottom_in - 0.5) / height))
    heading = title or f"Meta-regression on {xlabel}"
    fig.text(0.13, 1 - 0.25 / height, heading, fontsize=11, fontweight="bold", va="center")
    if fit is not None:
        names = list(getattr(fit, "names", ()))
        slope_name = names[slope_index] if len(names) > slope_index else xlabel
        stat = "t" if fit.test == "t" else "z"
        summary = (f"slope ({slope_name}) = {fit.beta[slope_index]:.3f} "
                   f"[{fit.ci_low[slope_index]:.3f}, {fit.ci_high[slope_index]:.3f}], "
                   f"{stat} = {fit.stat[slope_index]:.2f}, p = {fit.pval[slope_index]:.3g}; "
                   f"\u03c4\u00b2 = {fit.tau2:.3g}; k = {fit.k}")
        fig.text(0.13, 1 - 0.5 / height, summary, fontsize=7.5, va="center", color="#333333")
    for i, line in enumerate(notes):          # under the legend, top down
        fig.text(0.13, (bottom_in - 0.8 - 0.2 * i) / height, line, fontsize=7.5,
                 va="center", color="#333333")
    return fig


def bubble_for(reg, table=None):
    """Bubble plot of what ``msc-meta regress`` computed (``run_regression``).

    Needs exactly one numeric moderator (e.g. ``log10(dose_cells)``); the x
    axis shows it as it enters the model. ``table`` (the outcome table) gives
    the sample sizes that the PFT back-transformation needs.
    """
    from msc_meta.errors import UsageError
    from msc_meta.plot._common import selection_title

    design = reg.design
    if len(design.terms) != 1 or design.kinds[0] != "numeric" or design.X.shape[1] != 2:
        raise UsageError(f"a bubble plot needs one numeric moderator; --mods '{reg.mods}' gives "
                         f"{', '.join(design.names[1:]) or 'none'}")
    if len(reg.fit.beta) != 2:
        # metafor drops a redundant moderator (one value among the studies, or k too small)
        raise UsageError(f"a bubble plot needs a fitted slope, but {design.names[1]} was dropped from the "
                         f"model as redundant (k = {reg.fit.k}); nothing to draw")
    ni = None
    if table is not None:
        rows = {row.row_number: row for row in table.rows}
        two_arm = registry.measure(reg.measure).two_arm
        ni = [rows[s.row_number].n_t + ((rows[s.row_number].n_c or 0) if two_arm else 0)
              for s in reg.studies]
    note = None
    if reg.fit.k < 10:
        note = f"k = {reg.fit.k}: exploratory; one study can drive the slope."
    return bubble_plot(design.X[:, 1], [s.yi for s in reg.studies], [s.vi for s in reg.studies],
                       measure=reg.measure, fit=reg.fit, xlabel=design.names[1], ni=ni,
                       labels=[s.study_id for s in reg.studies], note=note,
                       title=f"Meta-regression: "
                             f"{selection_title(reg.outcome, reg.timepoint_weeks, reg.unit)}")


def save_bubble(reg, path, table=None, *, force: bool = False):
    """Draw :func:`bubble_for` and save it (PNG/SVG/PDF by suffix, ``-`` SVG on stdout);
    an existing file is replaced only with ``force``. Returns the path."""
    from msc_meta.plot._common import save_figure

    return save_figure(bubble_for(reg, table), path, force=force)
