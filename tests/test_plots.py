"""Forest, funnel and bubble plots: valid PNG/SVG/PDF files of sane size,
the content a reader needs (labels, exclusions, notes), the regression band
against the metafor-checked fitter, and lazy matplotlib imports."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def table_rows():
    """Two-arm rows of one outcome: a shared placebo (trial D), a zero cell,
    a double zero (left out of RR), a row without counts, and two cell sources."""
    def row(study_id, trial, e_t, n_t, e_c, n_c, source="adipose", pct_t=""):
        return {"study_id": study_id, "trial": trial, "outcome": "healing", "timepoint_weeks": 12,
                "unit": "patient", "events_t": e_t, "n_t": n_t, "pct_t": pct_t, "events_c": e_c,
                "n_c": n_c, "pct_c": "", "cell_source": source, "dose_cells": ""}
    return [
        row("D1", "D", 2, 5, 1, 6), row("D2", "D", 3, 5, 1, 6), row("D3", "D", 4, 5, 1, 6),
        row("A", "A", 10, 20, 5, 20, "bone_marrow"), row("B", "B", 7, 15, 0, 14, "bone_marrow"),
        row("C", "C", 30, 60, 18, 58), row("Z", "Z", 0, 12, 0, 10),
        row("NoCounts", "N", "", "", "", "", pct_t="63"),
    ]


@pytest.fixture
def table(tmp_table):
    return tmp_table(table_rows())


# ----------------------------------------------------------------------- file checks

def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_valid_image(path: Path, fmt: str) -> None:
    size = path.stat().st_size
    assert 5_000 < size < 5_000_000, f"{path.name}: implausible size {size}"
    if fmt == "png":
        width, height = png_size(path)
        assert 800 < width < 6000 and 300 < height < 8000, (width, height)
    elif fmt == "svg":
        root = ET.parse(path).getroot()
        assert root.tag.endswith("svg")
    else:
        data = path.read_bytes()
        assert data.startswith(b"%PDF-")
        assert b"%%EOF" in data[-64:]


def svg_text(path: Path) -> str:
    """All text of an SVG written with svg.fonttype = none (text kept as <text>)."""
    root = ET.parse(path).getroot()
    return " ".join("".join(el.itertext()) for el in root.iter() if el.tag.endswith("text"))


# ----------------------------------------------------------------------- forest

@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_forest_writes_valid_files(run_cli, table, tmp_path, fmt):
    out = tmp_path / f"forest.{fmt}"
    code, stdout, stderr = run_cli("forest", "--data", table, "--outcome", "healing", "-o", out)
    assert code == 0, stderr
    assert stdout == ""
    assert "forest plot written" in stderr
    assert_valid_image(out, fmt)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_forest_shows_studies_pools_and_exclusions(run_cli, table, tmp_path):
    out = tmp_path / "forest.svg"
    code, _, stderr = run_cli("forest", "--data", table, "--outcome", "healing", "-o", out,
                              "--favours-left", "Favours control", "--favours-right", "Favours MSC",
                              "--notes")
    assert code == 0, stderr
    text = svg_text(out)
    for label in ("D1+D2+D3", "A", "C", "B \u2020", "Common effect", "Random effects (REML)",
                  "Prediction interval", "Heterogeneity:", "I\u00b2 =", "Test for overall effect",
                  "Favours control", "Favours MSC", "Total events", "Risk ratio"):
        assert label in text, label
    # rows not pooled are listed with their reasons
    assert "Z (row 8)" in text and "no events in either arm" in text
    assert "NoCounts (row 9)" in text and "no counts in the source" in text
    # the zero-cell marker is explained, and so is the combined shared placebo
    assert "zero cell: 0.5 added" in text
    assert "share one control arm" in text and "--multiarm combine" in text
    assert "Guidance:" in text and "zero-event arms" in text


def test_forest_numbers_match_the_pool(run_cli, table, tmp_path):
    from msc_meta.data import load_table
    from msc_meta.plot._common import fmt_ci
    from msc_meta.pooling.analysis import run_pool

    analysis = run_pool(load_table(table), outcome="healing", hksj=True, multiarm="combine")
    out = tmp_path / "f.svg"
    code, _, stderr = run_cli("forest", "--data", table, "--outcome", "healing", "--hksj", "-o", out)
    assert code == 0, stderr
    text = svg_text(out)
    r = analysis.result
    assert fmt_ci(r.estimate, r.ci_low, r.ci_high).replace("\u2212", "-") in text.replace("\u2212", "-")
    assert "Random effects (REML, HKSJ)" in text
    assert f"t = {r.stat:.2f}, df = {r.df:g}" in text
    for line in analysis.studies:
        assert f"{line.weight:.1f}%" in text


@pytest.mark.parametrize("multiarm", ["split", "keep"])
def test_forest_multiarm_modes(run_cli, table, tmp_path, multiarm):
    out = tmp_path / f"{multiarm}.svg"
    code, _, stderr = run_cli("forest", "--data", table, "--outcome", "healing", "--multiarm",
                              multiarm, "-o", out, "--notes")
    assert code == 0, stderr
    text = svg_text(out)
    assert "D1" in text and "D2" in text and "D3" in text
    if multiarm == "split":
        assert " 0.33 " in f" {text} " and " 2 " in f" {text} "     # 1/6 split three ways
    else:
        assert "counted 3 times" in text


def test_forest_by_subgroup(run_cli, table, tmp_path):
    out = tmp_path / "by.svg"
    code, _, stderr = run_cli("forest", "--data", table, "--outcome", "healing", "--by",
                              "cell_source", "-o", out)
    assert code == 0, stderr
    text = svg_text(out)
    assert "cell_source = adipose" in text and "cell_source = bone_marrow" in text
    assert "Subtotal" in text and "Total \u2013 Random effects (REML)" in text
    assert "Test for subgroup differences (cell_source): Q =" in text
    assert_valid_image(out, "svg")


def test_forest_single_arm_and_single_study(run_cli, tmp_table, tmp_path):
    rows = [{"study_id": "S1", "outcome": "closure", "events_t": 7, "n_t": 10},
            {"study_id": "S2", "outcome": "closure", "events_t": 0, "n_t": 8},
            {"study_id": "S3", "outcome": "closure", "events_t": 12, "n_t": 15}]
    path = tmp_table(rows)
    out = tmp_path / "single.svg"
    code, _, stderr = run_cli("forest", "--data", path, "--outcome", "closure", "-o", out)
    assert code == 0, stderr
    text = svg_text(out)
    assert "Proportion" in text and "proportion = 0.5" in text
    one = tmp_table(rows[:1], name="one.csv")
    out1 = tmp_path / "one.png"
    code, _, stderr = run_cli("forest", "--data", one, "--outcome", "closure", "-o", out1)
    assert code == 0, stderr
    assert_valid_image(out1, "png")
    # k = 1: nothing was fitted, so no model's name is on the pooled row (as pool's table)
    svg1 = tmp_path / "one.svg"
    code, _, stderr = run_cli("forest", "--data", one, "--outcome", "closure", "-o", svg1)
    assert code == 0, stderr
    text = svg_text(svg1)
    assert "Study's own estimate" in text
    assert "Random effects" not in text and "Common effect" not in text


@pytest.mark.parametrize("name, message", [
    ("plot.jpg", "must end in .png, .svg or .pdf"),
    ("missing_dir/plot.png", "does not exist"),
])
def test_forest_bad_output_path(run_cli, table, tmp_path, name, message):
    code, stdout, stderr = run_cli("forest", "--data", table, "--outcome", "healing",
                                   "-o", tmp_path / name)
    assert code == 2
    assert message in stderr
    assert "Traceback" not in stderr
    assert stdout == ""


def test_forest_refuses_package_folder(run_cli, table):
    from msc_meta.data import curated_path

    target = curated_path().parent / "forest.png"
    code, _, stderr = run_cli("forest", "--data", table, "--outcome", "healing", "-o", target)
    assert code == 2
    assert "package folder" in stderr
    assert not target.exists()


def test_forest_keeps_an_existing_file_unless_forced(run_cli, table, tmp_path):
    out = tmp_path / "f.png"
    out.write_bytes(b"old")
    code, stdout, stderr = run_cli("forest", "--data", table, "--outcome", "healing", "-o", out)
    assert code == 2 and stdout == ""
    assert stderr.strip() == f"msc-meta: error: {out}: file exists; use --force to overwrite it"
    assert out.read_bytes() == b"old"
    code, _, stderr = run_cli("forest", "--data", table, "--outcome", "healing", "-o", out, "--force")
    assert code == 0, stderr
    assert_valid_image(out, "png")


@pytest.mark.parametrize("command,extra", [("bias", []), ("regress", ["--mods", "dose_cells"])])
def test_funnel_and_bubble_keep_an_existing_file_before_printing_anything(run_cli, table, tmp_path,
                                                                          command, extra):
    out = tmp_path / "plot.png"
    out.write_bytes(b"old")
    code, stdout, stderr = run_cli(command, "--data", table, "--outcome", "healing", *extra, "-o", out)
    assert code == 2 and stdout == "" and "file exists; use --force" in stderr
    assert out.read_bytes() == b"old"


def test_forest_curated(run_cli, curated_path, tmp_path):
    out = tmp_path / "closure.png"
    code, _, stderr = run_cli("forest", "--outcome", "fistula_closure", "--timepoint", "208",
                              "--unit", "patient", "-o", out)
    assert code == 0, stderr
    assert_valid_image(out, "png")


def test_forest_helpers():
    from msc_meta.plot._common import fmt_ci, fmt_p, ratio_limits
    from msc_meta.plot.forest import _ticks, fmt_tau2

    assert ratio_limits([0.6, 1.5]) == (0.5, 2.0)
    assert ratio_limits([0.5, 1.5]) == (0.2, 5.0)          # a bound on the edge: next step
    assert ratio_limits([0.3, 4.0]) == (0.2, 5.0)
    assert ratio_limits([0.004, 97.8]) == (0.01, 100.0)
    assert ratio_limits([1e-6, 1e9]) == (0.01, 100.0)        # capped; arrows beyond
    assert _ticks("RR", 0.01, 100.0) == [0.01, 0.1, 1, 10, 100]
    assert fmt_ci(1.4449, 1.0416, 2.0033) == "1.44 [1.04, 2.00]"
    assert fmt_ci(-0.25, -0.5, 0.004) == "\u22120.25 [\u22120.50, 0.004]"
    assert fmt_p(0.0004) == "p < 0.001" and fmt_p(0.049) == "p = 0.05" and fmt_p(0.0049) == "p = 0.005"
    assert fmt_tau2(1.5e-15) == "0" and fmt_tau2(0.1234) == "0.123"


def test_plot_modules_do_not_import_matplotlib_at_import_time():
    code = ("import sys, msc_meta.plot.forest, msc_meta.plot.funnel, msc_meta.plot.bubble, "
            "msc_meta.cli.forest, msc_meta.cli.sof, msc_meta.cli.export, msc_meta.pooling.sof, "
            "msc_meta.report.export, msc_meta.report.sof_table; "
            "print(sorted(m for m in ('matplotlib', 'pandas', 'scipy.stats', 'rich') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------- funnel

def bcg():
    data = json.loads((FIXTURES / "diag_bcg_data.json").read_text())
    return np.array(data["yi"]), np.array(data["vi"]), np.array(data["ablat"], float), data["author"]


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_funnel_with_trim_and_fill(tmp_path, fmt):
    from msc_meta.plot._common import save_figure
    from msc_meta.plot.funnel import funnel_from_bias
    from msc_meta.pooling.bias import small_study_effects
    from msc_meta.pooling.rma import pool_rma

    yi, vi, _, _ = bcg()
    subset = [0, 1, 2, 3, 5, 6, 7, 9, 11]       # asymmetric: trim-and-fill fills one study
    bias = small_study_effects(yi[subset], vi[subset])
    assert bias.trimfill.k0 >= 1
    fit = pool_rma(yi[subset], vi[subset], method="REML", measure="RR", ni=None, hksj=False,
                   pi="z", level=95.0)
    fig = funnel_from_bias(bias, theta=fit.theta, measure="RR", title="BCG subset")
    ax = fig.axes[0]
    # inverted y: the most precise studies at the top
    low, high = ax.get_ylim()
    assert low > high == 0.0
    # observed and filled points are both drawn
    offsets = [c.get_offsets() for c in ax.collections if len(c.get_offsets())]
    counts = sorted(len(o) for o in offsets)
    assert len(subset) in counts and bias.trimfill.k0 in counts
    out = save_figure(fig, tmp_path / f"funnel.{fmt}")
    assert_valid_image(out, fmt)
    if fmt == "svg":
        text = svg_text(out)
        assert "filled by trim-and-fill" in text and "k = 9 < 10" in text


# ----------------------------------------------------------------------- bubble

@pytest.mark.parametrize("knha", [False, True])
def test_prediction_band_equals_recentred_intercept(knha):
    """predict.rma at x0 = the intercept (and its CI) of the model on x - x0."""
    from msc_meta.plot.bubble import prediction_band
    from msc_meta.pooling.metareg import fit_mods

    yi, vi, ablat, _ = bcg()
    ones = np.ones(len(yi))
    fit = fit_mods(yi, vi, np.column_stack([ones, ablat]), names=["intercept", "ablat"],
                   knha=knha)
    for x0 in (13.0, 33.46, 55.0):
        pred, low, high = prediction_band(fit, [x0])
        ref = fit_mods(yi, vi, np.column_stack([ones, ablat - x0]), names=["intercept", "a"],
                       knha=knha)
        assert pred[0] == pytest.approx(ref.beta[0], rel=1e-9, abs=1e-12)
        assert low[0] == pytest.approx(ref.ci_low[0], rel=1e-9, abs=1e-12)
        assert high[0] == pytest.approx(ref.ci_high[0], rel=1e-9, abs=1e-12)


def test_prediction_band_metafor_fixture():
    """At ablat = 0 the band is the intercept's CI, which the fixture holds from metafor."""
    from msc_meta.plot.bubble import prediction_band
    from msc_meta.pooling.metareg import fit_mods

    cases = json.loads((FIXTURES / "diag_metareg.json").read_text())["cases"]
    case = next(c for c in cases if c["mods"] == "ablat" and c["method"] == "REML"
                and c["test"] == "z")
    yi, vi, ablat, _ = bcg()
    fit = fit_mods(yi, vi, np.column_stack([np.ones(len(yi)), ablat]), names=["intercept", "ablat"])
    pred, low, high = prediction_band(fit, [0.0])
    assert pred[0] == pytest.approx(case["beta"][0], rel=1e-6)
    assert low[0] == pytest.approx(case["ci_lb"][0], rel=1e-6)
    assert high[0] == pytest.approx(case["ci_ub"][0], rel=1e-6)


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_bubble_plot(tmp_path, fmt):
    from msc_meta.plot._common import save_figure
    from msc_meta.plot.bubble import bubble_plot
    from msc_meta.pooling.metareg import fit_mods

    yi, vi, ablat, authors = bcg()
    fit = fit_mods(yi, vi, np.column_stack([np.ones(len(yi)), ablat]), names=["intercept", "ablat"])
    fig = bubble_plot(ablat, yi, vi, measure="RR", fit=fit, xlabel="absolute latitude",
                      labels=authors)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    bubbles = next(c for c in ax.collections if len(c.get_offsets()) == len(yi))
    sizes = bubbles.get_sizes()
    weights = 1.0 / (vi + fit.tau2)
    # area proportional to the model weight
    assert np.allclose(sizes / sizes.max(), weights / weights.max())
    out = save_figure(fig, tmp_path / f"bubble.{fmt}")
    assert_valid_image(out, fmt)


# ----------------------------------------------------------------------- bias / regress -o

def test_bias_writes_a_funnel_plot(run_cli, table, tmp_path):
    out = tmp_path / "funnel.svg"
    code, stdout, stderr = run_cli("bias", "--data", table, "--outcome", "healing", "--json",
                                   "-o", out)
    assert code == 0, stderr
    json.loads(stdout)                      # stdout stays one JSON document
    assert "funnel plot written" in stderr
    assert_valid_image(out, "svg")
    text = svg_text(out)
    assert "Funnel plot: healing, 12 weeks, per patient" in text and "Trim-and-fill" in text


def test_regress_writes_a_bubble_plot(run_cli, tmp_table, table, tmp_path):
    rows = [{"study_id": f"S{i}", "outcome": "closure", "events_t": e, "n_t": 20, "events_c": c,
             "n_c": 20, "dose_cells": d}
            for i, (e, c, d) in enumerate([(8, 5, "1e7"), (12, 6, "3e7"), (15, 5, "9e7"),
                                           (10, 7, "2e7")])]
    path = tmp_table(rows, name="doses.csv")
    out = tmp_path / "bubble.png"
    code, _, stderr = run_cli("regress", "--data", path, "--outcome", "closure", "--mods",
                              "log10(dose_cells)", "-o", out)
    assert code == 0, stderr
    assert_valid_image(out, "png")
    code, stdout, stderr = run_cli("regress", "--data", table, "--outcome", "healing", "--mods",
                                   "cell_source", "-o", tmp_path / "no.png")
    assert code == 2 and "one numeric moderator" in stderr and "Traceback" not in stderr
    assert stdout == ""          # refused before the table is printed
    assert not (tmp_path / "no.png").exists()
    code, _, stderr = run_cli("bias", "--data", table, "--outcome", "healing", "-o",
                              tmp_path / "f.gif")
    assert code == 2 and ".png, .svg or .pdf" in stderr


def test_forest_glmm_has_no_weights(run_cli, tmp_table, tmp_path):
    rows = [{"study_id": f"S{i}", "outcome": "closure", "events_t": e, "n_t": n}
            for i, (e, n) in enumerate([(7, 10), (0, 8), (12, 15), (5, 9)])]
    path = tmp_table(rows)
    out = tmp_path / "glmm.svg"
    code, _, stderr = run_cli("forest", "--data", path, "--outcome", "closure", "--method", "GLMM",
                              "-o", out)
    assert code == 0, stderr
    text = svg_text(out)
    assert "GLMM, Random" in text and "Random effects (GLMM)" in text
    assert "nan" not in text.lower().replace("mantel", "")


def test_forest_subgroup_with_nothing_to_pool(run_cli, tmp_table, tmp_path):
    rows = table_rows()
    rows[-1]["cell_source"] = "umbilical"          # only the row without counts
    path = tmp_table(rows, name="groups.csv")
    out = tmp_path / "groups.svg"
    code, _, stderr = run_cli("forest", "--data", path, "--outcome", "healing", "--by",
                              "cell_source", "-o", out)
    assert code == 0, stderr
    text = svg_text(out)
    assert "cell_source = umbilical" in text and "Subtotal: not estimable" in text
    assert "[cell_source = umbilical] NoCounts (row 9): no counts in the source" in text


def _label_boxes(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    return ax, renderer, [t.get_window_extent(renderer) for t in ax.texts]


def test_funnel_labels_never_overlap_points_lines_or_each_other():
    from msc_meta.plot.funnel import funnel_plot

    yi = [-0.89, -1.59, -1.35, -1.44, -0.22, -0.79, -1.62, 0.01, -0.47, -1.37, -0.34, 0.45, -0.02]
    sei = [0.57, 0.44, 0.64, 0.14, 0.23, 0.08, 0.47, 0.06, 0.24, 0.27, 0.11, 0.73, 0.27]
    labels = [f"Study with a long name {i}" for i in range(len(yi))]
    fig = funnel_plot(yi, sei, theta=-0.71, measure="RR", labels=labels, theta_filled=-0.65)
    ax, renderer, boxes = _label_boxes(fig)
    assert 0 < len(boxes) <= len(yi)
    inside = ax.get_window_extent(renderer)
    points = [ax.transData.transform(p) for p in zip(yi, sei)]
    lines = [ax.transData.transform((x, 0.0))[0] for x in (-0.71, -0.65)]
    for i, box in enumerate(boxes):
        assert inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)
        assert not any(box.overlaps(other) for other in boxes[i + 1:])
        assert not any(box.x0 <= lx <= box.x1 for lx in lines)
        assert sum(box.contains(px, py) for px, py in points) == 0
    if len(boxes) < len(yi):
        assert any("labels left out" in t.get_text() for t in fig.texts)


def test_contour_funnel_and_natural_axis_for_logit():
    from msc_meta.plot.funnel import funnel_plot

    fig = funnel_plot([0.2, -0.5, 1.1], [0.4, 0.6, 0.9], theta=0.1, measure="PLO", contours=True)
    ax = fig.axes[0]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"p < 0.01", "0.01 < p < 0.05", "0.05 < p < 0.10", "p > 0.10"} <= set(legend)
    tops = [child for child in ax.get_children() if type(child).__name__ == "SecondaryAxis"]
    assert tops and tops[0].get_xlabel() == "Proportion"


def test_contour_bands_have_their_own_p_values():
    """Each band is drawn where a study's two-sided p lies in it: a point at z = 1.8 (p = 0.072)
    lies in the 0.05-0.10 colour, z = 2.2 (p = 0.028) in the 0.01-0.05 one, z = 3 in p < 0.01."""
    import matplotlib.colors as mcolors
    from matplotlib.patches import Polygon

    from msc_meta.plot.funnel import CONTOUR_BANDS, funnel_plot

    fig = funnel_plot([0.2, -0.5, 1.1], [0.4, 0.6, 0.9], theta=0.1, measure="RR", contours=True)
    ax = fig.axes[0]
    fills = [c for c in ax.patches if isinstance(c, Polygon) and len(c.get_xy()) >= 3]

    def colour_at(x, y):
        found = mcolors.to_hex(ax.get_facecolor())
        for patch in fills:                    # drawn in order: the last one containing it wins
            if patch.get_path().contains_point((x, y), transform=None) or \
                    patch.contains_point(ax.transData.transform((x, y))):
                found = mcolors.to_hex(patch.get_facecolor())
        return found

    band = {label: mcolors.to_hex(colour) for _, colour, label in CONTOUR_BANDS}
    se = 0.5
    assert colour_at(1.0 * se, se) == band["p > 0.10"]
    assert colour_at(1.8 * se, se) == band["0.05 < p < 0.10"]
    assert colour_at(2.2 * se, se) == band["0.01 < p < 0.05"]
    assert colour_at(3.0 * se, se) == band["p < 0.01"]


def test_forest_shows_converted_values_marked_as_pool_does(run_cli, tmp_path):
    """The curated diameter row gives SEMs: the figure shows the SDs its effect size used,
    each marked, with the footnote naming the conversion, as pool's table does."""
    out = tmp_path / "mc.svg"
    code, _, err = run_cli("forest", "--outcome", "max_fistula_diameter", "--measure", "MC", "-o", out)
    assert code == 0, err
    text = svg_text(out)
    sd_pre, sd_post = 1.2 * 9 ** 0.5, 0.9 * 9 ** 0.5          # sd = se * sqrt(n), n = 9
    assert f"{sd_pre:.4g}\u1d43" in text and f"{sd_post:.4g}\u1d43" in text
    assert "SD from the SEM" in text
