"""Shared plotting helpers: figure creation without a screen, safe saving,
number formatting and axis choices.

matplotlib is imported inside functions only (start-up of the other commands
must not pay for it). Figures are built with ``matplotlib.figure.Figure``
directly, never through ``pyplot``: no global state, no GUI backend, so it
works on a headless server and in threads.
"""

from __future__ import annotations

import math
from pathlib import Path

from msc_meta.errors import UsageError

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


FONT = "DejaVu Sans"


def output_format(path) -> str:
    """``png``, ``svg`` or ``pdf`` from the file name (``-``, stdout, is SVG,
    the one text format); UsageError otherwise."""
    if str(path) == "-":
        return "svg"
    suffix = Path(str(path)).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"{path}: cannot tell the image format; the file name must end in "
                         f".png, .svg or .pdf")
    return FORMATS[suffix]


def new_figure(width_in: float, height_in: float):
    """A headless matplotlib Figure of the given size in inches."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    return fig


def save_figure(fig, path, *, dpi: int = 200, force: bool = False):
    """Save ``fig`` to PNG/SVG/PDF (format from the suffix); ``-`` writes SVG
    to stdout. Returns the Path written, or ``"stdout"``.

    Metadata dates are left out so that the same data give byte-identical
    SVG/PDF files (useful for images kept in git). Text stays text: SVG
    ``<text>`` elements and TrueType fonts in PDF, so that labels can be
    searched, read by screen readers and edited. Written by
    ``msc_meta.io_safe.write_output``: an existing file (also one that
    appears while the figure is saved) is replaced only with ``force``; the
    commands also refuse one before doing any work
    (``io_safe.check_output_early``); never writes inside the package folder.
    """
    import matplotlib

    from msc_meta.io_safe import write_output

    fmt = output_format(path)
    metadata = {"png": {"Software": "msc-meta"},
                "svg": {"Date": None, "Creator": "msc-meta"},
                "pdf": {"CreationDate": None, "Creator": "msc-meta"}}[fmt]

    def write(stream):
        with matplotlib.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
            fig.savefig(stream, format=fmt, dpi=dpi, metadata=metadata, facecolor="white")

    return write_output(path, write, binary=True, force=force)


def page_paths(path, pages: int) -> list:
    """Where the pages of a figure go: one file for one page or a PDF (one page each);
    ``NAME-1.png``, ``NAME-2.png``, ... for several PNG or SVG pages. Several pages cannot go
    to stdout (UsageError)."""
    from msc_meta.io_safe import is_stdout

    if pages <= 1 or output_format(path) == "pdf":
        return [path]
    if is_stdout(path):
        raise UsageError(f"the figure has {pages} pages, which cannot all go to stdout; give a "
                         "file name (.pdf keeps them in one file), or --rows-per-page 0")
    target = Path(str(path))
    return [target.with_name(f"{target.stem}-{i}{target.suffix}") for i in range(1, pages + 1)]


def save_pages(figures, path, *, dpi: int = 200, force: bool = False, progress=None) -> list:
    """Save the pages of a figure (:func:`page_paths`): several pages in one PDF, or one
    file per page; every target is checked before the first is written. ``figures``: a
    sequence with a length, iterated once (pages may be drawn as they are taken).
    ``progress``: called once per page saved. Returns the paths written."""
    from msc_meta.io_safe import check_output_path, is_stdout, write_output

    if len(figures) == 1:
        out = [save_figure(next(iter(figures)), path, dpi=dpi, force=force)]
        if progress is not None:
            progress()
        return out
    paths = page_paths(path, len(figures))
    for target in paths:
        if not is_stdout(target):
            check_output_path(target, force=force)
    if len(paths) == 1:
        import matplotlib
        from matplotlib.backends.backend_pdf import PdfPages

        def write(stream):
            with matplotlib.rc_context({"pdf.fonttype": 42}), \
                    PdfPages(stream, metadata={"CreationDate": None, "Creator": "msc-meta"}) as pdf:
                for fig in figures:
                    pdf.savefig(fig, dpi=dpi, facecolor="white")
                    if progress is not None:
                        progress()

        return [write_output(path, write, binary=True, force=force)]
    out = []
    for fig, target in zip(figures, paths):
        out.append(save_figure(fig, target, dpi=dpi, force=force))
        if progress is not None:
            progress()
    return out


def selection_title(outcome: str, weeks, unit) -> str:
    """``fistula_closure, 208.0, patient`` -> "Fistula closure, 208 weeks, per patient".

    A key of one word is kept as written (``tb`` stays "tb", not "Tb": it may be an
    abbreviation); a key of several words gets spaces and a capital first letter, the rest
    as written."""
    text = str(outcome)
    if "_" in text.strip("_"):
        text = text.replace("_", " ")
        text = text[:1].upper() + text[1:]      # CRP_level -> "CRP level", not "Crp level"
    parts = [text]
    if weeks is not None:
        weeks = float(weeks)
        parts.append(f"{int(weeks) if weeks.is_integer() else weeks:g} weeks")
    if unit:
        parts.append(f"per {unit}")
    return ", ".join(parts)


# --------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------

def fmt_num(x, digits: int = 2) -> str:
    """Effect sizes as Cochrane prints them: 2 decimals; small values 2 significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x != 0 and abs(x) < 0.01:
        text = f"{x:.2g}"
    else:
        text = f"{x:.{digits}f}"
    return text.replace("-", "\u2212")


def fmt_ci(est, low, high, digits: int = 2) -> str:
    return f"{fmt_num(est, digits)} [{fmt_num(low, digits)}, {fmt_num(high, digits)}]"


def fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = —"
    if p < 0.001:
        return "p < 0.001"
    if p < 0.01:
        return f"p = {p:.3f}"
    return f"p = {p:.2f}"


def fmt_stat(x) -> str:
    return fmt_num(x, 2)


def ratio_limits(values, *, floor: float = 2.0, ceiling: float = 100.0) -> tuple[float, float]:
    """Symmetric log-axis limits (1/L, L) with L a 1-2-5 step covering ``values``."""
    finite = [abs(math.log(v)) for v in values if v is not None and v > 0 and math.isfinite(v)]
    need = math.exp(max(finite)) if finite else floor
    for limit in (2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0):
        if limit >= floor and limit >= need * 1.0000001:
            return 1.0 / min(limit, ceiling), min(limit, ceiling)
    return 1.0 / ceiling, ceiling


def linear_limits(values, *, symmetric_about: float | None = 0.0,
                  bounds: tuple[float, float] | None = None) -> tuple[float, float]:
    """Linear-axis limits on a 1-2-5 grid covering ``values``.

    ``symmetric_about`` centres the axis on the null (risk differences);
    ``bounds`` clips it (proportions stay within 0-1).
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return bounds or (-1.0, 1.0)
    if symmetric_about is not None:
        need = max(abs(v - symmetric_about) for v in finite)
        step = _nice(need)
        low, high = symmetric_about - step, symmetric_about + step
    else:
        low, high = min(finite), max(finite)
        pad = 0.05 * (high - low or 1.0)
        low, high = low - pad, high + pad
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return low, high


def _nice(x: float) -> float:
    if x <= 0:
        return 1.0
    exponent = math.floor(math.log10(x))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10 ** exponent >= x * 1.0000001:
            return m * 10 ** exponent
    return 10 ** (exponent + 1)


# --------------------------------------------------------------------------
# labels of points
# --------------------------------------------------------------------------

def place_labels(fig, ax, xs, ys, labels, *, vlines=(), hlines=(), curves=(), radii=None,
                 order=None, fontsize: float = 7) -> int:
    """Label each point where the label overlaps no point (a disc of ``radii`` pixels, default
    a few), no other label and no reference line (vertical at x in ``vlines``, horizontal at
    y in ``hlines``, data units), and lies inside the axes. Six positions are tried around
    each point (the four corners, then above and below), points in ``order`` (default: as
    given); a point whose six positions all collide stays unlabelled. ``curves``: other reference lines, as (x values, y values) in data
    units, which no label may cross either. Returns how many were left out. The rule of the
    funnel, bubble, Baujat and L'Abbé plots."""
    import numpy as np

    renderer = _renderer(fig)
    ax.apply_aspect()            # an equal-aspect axes takes its final box only when drawn
    curve_px = [_dense(ax.transData.transform(np.column_stack([cx, cy]))) for cx, cy in curves]
    points = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    radii = [4.0] * len(points) if radii is None else list(radii)
    v_px = [ax.transData.transform((x, ys[0] if len(ys) else 0.0))[0] for x in vlines]
    h_px = [ax.transData.transform((xs[0] if len(xs) else 1.0, y))[1] for y in hlines]
    inside = ax.get_window_extent(renderer)
    taken, omitted = [], 0
    for i in (order if order is not None else range(len(points))):
        placed = None
        gap = 3 + radii[i] * 72 / fig.dpi * 0.7
        for dx, dy, ha, va in ((gap, gap * 0.6, "left", "bottom"), (-gap, gap * 0.6, "right", "bottom"),
                               (gap, -gap * 0.6, "left", "top"), (-gap, -gap * 0.6, "right", "top"),
                               (0, gap, "center", "bottom"), (0, -gap, "center", "top")):
            text = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                               fontsize=fontsize, color="#333333", ha=ha, va=va, zorder=4,
                               annotation_clip=False)
            text.set_parse_math(False)
            box = text.get_window_extent(renderer).expanded(1.05, 1.15)
            clear = (inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)
                     and not any(box.overlaps(other) for other in taken)
                     and not any(box.x0 <= lx <= box.x1 for lx in v_px)
                     and not any(box.y0 <= ly <= box.y1 for ly in h_px)
                     and not any(_box_meets_curve(box, c) for c in curve_px)
                     and not any(_box_meets_disc(box, px, py, r)
                                 for j, ((px, py), r) in enumerate(zip(points, radii)) if j != i))
            if clear:
                placed = box
                break
            text.remove()
        if placed is None:
            omitted += 1
        else:
            taken.append(placed)
    return omitted


def _dense(px, step: float = 1.5):
    """A polyline in pixels with a point at least every ``step`` pixels (finite points only)."""
    import numpy as np

    px = px[np.isfinite(px).all(axis=1)]
    out = [px[:1]]
    for a, b in zip(px[:-1], px[1:]):
        n = max(int(np.hypot(*(b - a)) / step), 1)
        out.append(a + (b - a) * (np.arange(1, n + 1)[:, None] / n))
    return np.concatenate(out) if len(px) else px


def _box_meets_curve(box, points) -> bool:
    x, y = points[:, 0], points[:, 1]
    return bool(((x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)).any())


def _box_meets_disc(box, cx, cy, r) -> bool:
    nx = min(max(cx, box.x0), box.x1)
    ny = min(max(cy, box.y0), box.y1)
    return (nx - cx) ** 2 + (ny - cy) ** 2 <= r * r


def _renderer(fig):
    if hasattr(fig.canvas, "get_renderer"):
        return fig.canvas.get_renderer()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return FigureCanvasAgg(fig).get_renderer()
