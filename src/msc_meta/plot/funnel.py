"""Funnel plot, as metafor ``funnel()``: each study's effect (analysis scale)
against its standard error, the y axis inverted so that the largest studies
sit at the top.

Drawn: the pseudo confidence region ``theta ± z * se`` (a white triangle on
grey, dotted edges: metafor's ``back``/``shade`` defaults) centred on the
pooled estimate ``theta``, a vertical line at ``theta``, the observed studies
as filled circles and, from trim-and-fill (metafor ``funnel(trimfill(res))``),
the imputed studies as open circles with the adjusted estimate as a dashed
line. Ratio measures get a second x axis on top in natural units.

The region is a visual guide only: asymmetry in a funnel of fewer than 10
studies cannot be told from chance (Sterne et al. 2011, BMJ 343:d4002), and
the figure says so when k < 10.
"""

from __future__ import annotations

import math

from msc_meta import registry
from msc_meta.plot._common import new_figure

FEW_STUDIES = 10


def funnel_plot(yi, sei, *, theta: float, measure: str, level: float = 95.0,
                yi_filled=(), sei_filled=(), theta_filled: float | None = None,
                labels=None, title: str | None = None, note: str | None = None,
                contours: bool = False):
    """Return a matplotlib Figure of the funnel plot (see the module doc).

    ``yi``/``sei``: observed studies on the analysis scale; ``theta``: the
    pooled estimate (analysis scale) the funnel is centred on;
    ``yi_filled``/``sei_filled``/``theta_filled``: trim-and-fill's imputed
    studies and adjusted estimate; ``labels`` optional study labels, drawn
    only where they overlap nothing (:func:`_place_labels`); ``contours``:
    a contour-enhanced funnel (Peters et al. 2008, J Clin Epidemiol 61:991;
    metafor ``funnel(refline=0, level=c(90, 95, 99), shade=...)``): the
    regions where a study's own two-sided p is above 0.10, 0.05-0.10,
    0.01-0.05 and below 0.01, around no effect instead of the pseudo-CI.
    """
    from scipy.special import ndtri

    yi = [float(v) for v in yi]
    sei = [float(v) for v in sei]
    if len(yi) != len(sei) or not yi:
        raise ValueError("funnel_plot needs as many standard errors as estimates (k >= 1)")
    yi_filled = [float(v) for v in yi_filled]
    sei_filled = [float(v) for v in sei_filled]
    z = float(ndtri(0.5 + level / 200.0))
    se_max = max(sei + sei_filled) * 1.05 or 1.0

    notes = []
    if len(yi) < FEW_STUDIES:
        notes.append(f"k = {len(yi)} < {FEW_STUDIES}: asymmetry cannot be told from chance "
                     f"(Sterne et al. 2011).")
    if note:
        notes.append(note)
    lines = len(notes) + (1 if labels is not None else 0)   # room for a note on omitted labels
    height = 5.2 + 0.2 * lines
    bottom_in = 1.15 + 0.2 * lines           # x label, legend, notes
    fig = new_figure(6.0, height)
    ax = fig.add_axes([0.13, bottom_in / height, 0.82, (height - bottom_in - 0.95) / height])
    # background, pseudo-CI region and its edges
    span = max([abs(v - theta) for v in yi + yi_filled] + [z * se_max]) * 1.1
    x_low, x_high = theta - span, theta + span
    if contours:
        x_low, x_high = min(x_low, -span), max(x_high, span)
        _draw_contours(ax, se_max)
        ax.plot([theta, theta], [0.0, se_max], color="black", linewidth=0.9, zorder=1,
                label="pooled estimate")
    else:
        ax.set_facecolor("#e6e6e6")
        ax.fill([theta - z * se_max, theta, theta + z * se_max], [se_max, 0.0, se_max],
                color="white", zorder=0)
        for sign in (-1, 1):
            ax.plot([theta, theta + sign * z * se_max], [0.0, se_max], color="#555555",
                    linestyle=":", linewidth=0.9, zorder=1)
        ax.plot([theta, theta], [0.0, se_max], color="black", linewidth=0.9, zorder=1,
                label=f"pooled estimate ({level:g}% pseudo-CI region)")
    if theta_filled is not None and math.isfinite(theta_filled):
        ax.plot([theta_filled, theta_filled], [0.0, se_max], color="black", linestyle="--",
                linewidth=0.9, zorder=1, label="trim-and-fill estimate")
    ax.scatter(yi, sei, s=28, color="black", zorder=3, label="studies")
    if yi_filled:
        ax.scatter(yi_filled, sei_filled, s=28, facecolors="white", edgecolors="black",
                   linewidths=0.9, zorder=3, label=f"filled by trim-and-fill ({len(yi_filled)})")
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(se_max, 0.0)
    ax.set_xlabel(registry.measure(measure).scale_title, fontsize=9)
    ax.set_ylabel("Standard error", fontsize=9)
    ax.tick_params(labelsize=8)
    _natural_axis(ax, measure, x_low, x_high)
    if labels is not None:
        lines_x = [theta] + ([theta_filled] if theta_filled is not None
                             and math.isfinite(theta_filled) else [])
        omitted = _place_labels(fig, ax, yi, sei, [str(t) for t in labels], lines_x)
        if omitted:
            notes.append(f"{omitted} of {len(yi)} labels left out where they would overlap; "
                         "--json lists every study.")
    # legend and notes below the axes, where they cannot hide a study
    handles, texts = ax.get_legend_handles_labels()
    fig.legend(handles, texts, loc="upper left", ncol=2, fontsize=7, frameon=False,
               bbox_to_anchor=(0.12, (bottom_in - 0.5) / height))
    fig.text(0.13, 1 - 0.25 / height, title or "Funnel plot", fontsize=11, fontweight="bold",
             va="center")
    for i, line in enumerate(notes):
        fig.text(0.13, (0.15 + 0.2 * (len(notes) - 1 - i)) / height, line, fontsize=7.5,
                 va="center", color="#333333")
    return fig


# Contour-enhanced funnel (Peters et al. 2008, J Clin Epidemiol 61:991; metafor funnel(level=
# c(90, 95, 99), shade=...)): bands of a study's own two-sided p around 0, darkest where p is
# smallest. (p bound, colour, legend label), from the outside in; p > 0.10 is white.
CONTOUR_BANDS = ((0.01, "#9e9e9e", "p < 0.01"), (0.05, "#c4c4c4", "0.01 < p < 0.05"),
                 (0.10, "#e0e0e0", "0.05 < p < 0.10"), (None, "white", "p > 0.10"))


def _draw_contours(ax, se_max):
    """Each band of ``CONTOUR_BANDS`` filled inside its outer boundary |y| = z(p_out) se: the
    axes' background is the outermost band; each next band is the triangle of the previous
    band's p (|y|/se = z(p/2)), drawn over it."""
    from msc_meta._dist import ndtri

    ax.set_facecolor(CONTOUR_BANDS[0][1])
    ax.fill([], [], color=CONTOUR_BANDS[0][1], label=CONTOUR_BANDS[0][2])
    for (p_out, _, _), (_, colour, label) in zip(CONTOUR_BANDS, CONTOUR_BANDS[1:]):
        z = float(ndtri(1.0 - p_out / 2.0))
        ax.fill([-z * se_max, 0.0, z * se_max], [se_max, 0.0, se_max], facecolor=colour,
                edgecolor="#9e9e9e", linewidth=0.4, zorder=0, label=label)


def _natural_axis(ax, measure, x_low, x_high):
    """A second x axis on top in natural units where the analysis scale is not the natural one
    (ratios: exp; proportions: the measure's back-transformation, inverted on a fine grid)."""
    import numpy as np

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    spec = registry.measure(measure)
    if spec.back == "identity" or spec.back == "ipft":   # PFT's inverse needs each study's n
        return
    if spec.log_axis:
        def forward(v):
            return np.exp(v)

        def inverse(v):
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(np.clip(v, 1e-300, None))
    else:
        from msc_meta.effects import transform_back

        grid = np.linspace(x_low - 1.0, x_high + 1.0, 2001)
        values = transform_back(measure, grid)

        def forward(v):
            return np.interp(v, grid, values)

        def inverse(v):
            return np.interp(v, values, grid)
    top = ax.secondary_xaxis("top", functions=(forward, inverse))
    top.set_xlabel(spec.title, fontsize=9)
    top.tick_params(labelsize=8)
    if spec.log_axis:
        top.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        top.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        top.xaxis.set_minor_formatter(NullFormatter())


def _place_labels(fig, ax, xs, ys, labels, lines_x=()) -> int:
    """Labels where they overlap no point, label or vertical reference line, inside the axes
    (:func:`msc_meta.plot._common.place_labels`), the most precise studies first."""
    from msc_meta.plot._common import place_labels

    return place_labels(fig, ax, xs, ys, labels, vlines=lines_x,
                        order=sorted(range(len(xs)), key=lambda j: ys[j]))


def funnel_from_bias(bias, *, theta: float, measure: str, level: float = 95.0,
                     labels=None, title: str | None = None, contours: bool = False):
    """Funnel plot of a ``msc_meta.pooling.bias.SmallStudyResult``.

    ``theta`` is the pooled estimate of the model the tests were run on
    (analysis scale); trim-and-fill's imputed studies and adjusted estimate
    are drawn when it filled any.
    """
    tf = getattr(bias, "trimfill", None)
    yi_filled = sei_filled = ()
    theta_filled = None
    note = None
    if tf is not None:
        yi_filled = tf.yi_filled
        sei_filled = tuple(math.sqrt(v) for v in tf.vi_filled)
        if tf.k0 > 0:
            theta_filled = tf.theta
        if tf.k0 > 0:
            note = (f"Trim-and-fill (L0): {tf.k0} stud{'y' if tf.k0 == 1 else 'ies'} filled on "
                    f"the {tf.side} (open circles); dashed line: adjusted estimate.")
        else:
            note = "Trim-and-fill (L0): no study filled."
    return funnel_plot(bias.yi, bias.sei, theta=theta, measure=measure, level=level,
                       yi_filled=yi_filled, sei_filled=sei_filled, theta_filled=theta_filled,
                       labels=labels, title=title, note=note, contours=contours)


def funnel_for(small, *, contours: bool = False):
    """Funnel plot of what ``msc-meta bias`` computed (``run_small_study``).

    Centred, as metafor ``funnel(res)``, on the estimate of the model the
    tests were run on: the intercept-only fit of the same method (taken from
    ``msc_meta.pooling.metareg``, not recomputed here by other means).
    """
    import numpy as np

    from msc_meta.plot._common import selection_title
    from msc_meta.pooling.metareg import fit_mods

    result = small.result
    yi = np.asarray(result.yi, dtype=float)
    vi = np.asarray(result.sei, dtype=float) ** 2
    centre = fit_mods(yi, vi, np.ones((len(yi), 1)), names=("intercept",), method=small.method,
                      level=small.level, r2=False).beta[0]
    title = f"Funnel plot: {selection_title(small.outcome, small.timepoint_weeks, small.unit)}"
    return funnel_from_bias(result, theta=centre, measure=small.measure, level=small.level,
                            labels=[s.study_id for s in small.studies], title=title,
                            contours=contours)


def save_funnel(small, path, *, force: bool = False, contours: bool = False):
    """Draw :func:`funnel_for` and save it (PNG/SVG/PDF by suffix, ``-`` SVG on stdout);
    an existing file is replaced only with ``force``. Returns the path."""
    from msc_meta.plot._common import save_figure

    return save_figure(funnel_for(small, contours=contours), path, force=force)
