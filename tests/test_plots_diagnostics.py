"""Leave-one-out, cumulative and Baujat plots (``sensitivity --plot``), the L'Abbé plot
(``msc-meta labbe``) and the label rule of the scatter plots, on metafor's dat.bcg: the
Baujat coordinates and L'Abbé risks against metafor 3.8.1 (tests/r/fixtures_plots.R)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REF = json.loads((FIXTURES / "plots_baujat.json").read_text())
BCG = json.loads((FIXTURES / "diag_bcg_data.json").read_text())


def bcg_rows():
    return [{"study_id": f"{a} {y}", "outcome": "tb", "events_t": tp, "n_t": tp + tn,
             "events_c": cp, "n_c": cp + cn, "ablat": lat}
            for a, y, tp, tn, cp, cn, lat in zip(BCG["author"], BCG["year"], BCG["tpos"],
                                                  BCG["tneg"], BCG["cpos"], BCG["cneg"],
                                                  BCG["ablat"])]


@pytest.fixture
def bcg_table(tmp_table):
    return tmp_table(bcg_rows(), name="bcg.csv")


@pytest.mark.parametrize("case", REF["cases"], ids=lambda c: f"{c['method']}-{c['test']}")
def test_baujat_coordinates_match_metafor(case):
    from msc_meta.pooling.rma import pool_rma
    from msc_meta.pooling.sensitivity import baujat, leave_one_out

    yi, vi = np.array(REF["yi"]), np.array(REF["vi"])
    hksj = case["test"] == "knha"
    fit = pool_rma(yi, vi, method=case["method"], measure="RR", ni=None, hksj=hksj, pi="z",
                   level=95.0)
    loo = leave_one_out(yi, vi, method=case["method"], hksj=hksj)
    x, y = baujat(yi, vi, theta=fit.theta, tau2=fit.tau2, loo=loo)
    assert x == pytest.approx(case["x"], rel=1e-6, abs=1e-12)
    assert y == pytest.approx(case["y"], rel=1e-6, abs=1e-12)


def test_baujat_plot_draws_metafor_points(bcg_table):
    from msc_meta.data import load_table
    from msc_meta.plot.sensitivity import baujat_plot
    from msc_meta.pooling.sensitivity import run_sensitivity

    sens = run_sensitivity(load_table(bcg_table), outcome="tb", method="REML")
    fig = baujat_plot(sens)
    ax = fig.axes[0]
    (points,) = [c.get_offsets() for c in ax.collections if len(c.get_offsets()) == 13]
    ref = next(c for c in REF["cases"] if c["method"] == "REML" and c["test"] == "z")
    assert np.asarray(points[:, 0]) == pytest.approx(ref["x"], rel=1e-6)
    assert np.asarray(points[:, 1]) == pytest.approx(ref["y"], rel=1e-6)
    assert_labels_clear(fig, ax, points[:, 0], points[:, 1])


def test_labbe_risks_match_metafor(bcg_table):
    from msc_meta.data import load_table
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.labbe import labbe_points

    points = labbe_points(run_pool(load_table(bcg_table), outcome="tb"))
    assert np.log(points.risk_c) == pytest.approx(REF["labbe"]["x"], rel=1e-9)
    assert np.log(points.risk_t) == pytest.approx(REF["labbe"]["y"], rel=1e-9)


def test_labbe_zero_cell_gets_the_correction(tmp_table):
    from msc_meta.data import load_table
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.labbe import labbe_points

    rows = [{"study_id": "A", "outcome": "o", "events_t": 0, "n_t": 10, "events_c": 3, "n_c": 10},
            {"study_id": "B", "outcome": "o", "events_t": 4, "n_t": 12, "events_c": 6, "n_c": 11}]
    points = labbe_points(run_pool(load_table(tmp_table(rows)), outcome="o"))
    assert points.risk_t[0] == pytest.approx(0.5 / 11) and points.risk_c[0] == pytest.approx(3.5 / 11)
    assert points.risk_t[1] == pytest.approx(4 / 12)


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
def test_labbe_effect_curve(measure):
    """metafor labbe()'s line y = x + theta, back on the risk scale."""
    from msc_meta.pooling.labbe import effect_curve

    pc = np.array([0.01, 0.1, 0.3, 0.6])
    theta = {"RR": math.log(0.5), "OR": math.log(2.0), "RD": 0.2}[measure]
    got = effect_curve(measure, theta, pc)
    if measure == "RR":
        want = pc * 0.5
    elif measure == "OR":
        odds = pc / (1 - pc) * 2.0
        want = odds / (1 + odds)
    else:
        want = pc + 0.2
    assert got == pytest.approx(want, rel=1e-9)
    assert math.isnan(effect_curve("RD", 0.5, np.array([0.7]))[0])     # 1.2 is no risk


def assert_labels_clear(fig, ax, xs, ys, *, radii=None, curves=()):
    """Labels inside the axes, not over each other, a point, or a curve."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    ax.apply_aspect()
    inside = ax.get_window_extent(renderer)
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert boxes, "no label placed"
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    radii = [3.0] * len(pts) if radii is None else radii
    for i, box in enumerate(boxes):
        assert inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)
        assert not any(box.overlaps(other) for other in boxes[i + 1:])
        hits = [math.hypot(min(max(px, box.x0), box.x1) - px, min(max(py, box.y0), box.y1) - py) < r * 0.9
                for (px, py), r in zip(pts, radii)]
        assert sum(hits) <= 1          # at most its own point's edge
        for cx, cy in curves:
            c = ax.transData.transform(np.column_stack([cx, cy]))
            inner = box.shrunk(0.9, 0.8)
            assert not ((c[:, 0] > inner.x0) & (c[:, 0] < inner.x1) & (c[:, 1] > inner.y0)
                        & (c[:, 1] < inner.y1)).any()


def test_bubble_labels_hide_nothing():
    from msc_meta.plot.bubble import bubble_plot
    from msc_meta.pooling.metareg import fit_mods

    yi, vi, ablat = np.array(BCG["yi"]), np.array(BCG["vi"]), np.array(BCG["ablat"], float)
    labels = [f"{a} {y}" for a, y in zip(BCG["author"], BCG["year"])]
    fit = fit_mods(yi, vi, np.column_stack([np.ones(len(yi)), ablat]), names=["intercept", "ablat"])
    fig = bubble_plot(ablat, yi, vi, measure="RR", fit=fit, xlabel="absolute latitude", labels=labels)
    ax = fig.axes[0]
    bubbles = next(c for c in ax.collections if len(c.get_offsets()) == len(yi))
    radii = np.sqrt(bubbles.get_sizes()) / 2 * fig.dpi / 72
    grid = np.linspace(0, 60, 50)
    assert_labels_clear(fig, ax, ablat, np.exp(yi), radii=radii, curves=[(grid, np.ones(50))])
    shown = len(ax.texts)
    if shown < len(yi):
        assert any(f"{len(yi) - shown} of {len(yi)} labels left out" in t.get_text() for t in fig.texts)


def test_labbe_labels_cross_no_line(bcg_table, run_cli, tmp_path):
    from msc_meta.data import load_table
    from msc_meta.plot.labbe import labbe_plot
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.labbe import labbe_points

    points = labbe_points(run_pool(load_table(bcg_table), outcome="tb"))
    fig = labbe_plot(points)
    ax = fig.axes[0]
    grid = np.geomspace(1e-4, 1, 400)
    curves = [(grid, grid), (grid, grid * points.estimate)]
    assert_labels_clear(fig, ax, points.risk_c, points.risk_t, curves=curves)
    assert ax.get_xscale() == "log" and "pooled RR = 0.49" in [t.get_text() for t in fig.legends[0].get_texts()]
    out = tmp_path / "labbe.svg"
    code, _, err = run_cli("labbe", "--data", bcg_table, "--outcome", "tb", "-o", out)
    assert code == 0 and "written to" in err and out.read_text().startswith("<?xml")
    single = tmp_path / "single.csv"
    single.write_text("study_id,outcome,events_t,n_t\nA,o,3,10\nB,o,4,12\n")
    code, _, err = run_cli("labbe", "--data", single, "--outcome", "o", "-o", tmp_path / "s.png")
    assert code == 2 and "two arms" in err and "Traceback" not in err


@pytest.mark.parametrize("kind, words", [("loo", ["Omitting Aronson 1948", "All studies (k = 13)"]),
                                         ("cumul", ["Adding Aronson 1948 (k = 1)", "Cumulative"]),
                                         ("baujat", ["Baujat plot", "Influence on overall result"])])
def test_sensitivity_plot_cli(run_cli, bcg_table, tmp_path, kind, words):
    from tests.test_forest_options import svg_text

    out = tmp_path / f"{kind}.svg"
    code, stdout, err = run_cli("sensitivity", "--data", bcg_table, "--outcome", "tb", "--plot",
                                kind, "-o", out)
    assert code == 0, err
    assert "Leave-one-out" in stdout or "leave" in stdout.lower()      # the table is still printed
    text = svg_text(out)
    for word in words:
        assert word in text, word


def test_sensitivity_plot_needs_a_file(run_cli, bcg_table, tmp_path):
    code, _, err = run_cli("sensitivity", "--data", bcg_table, "--outcome", "tb", "--plot", "loo")
    assert code == 2 and "go together" in err
    code, _, err = run_cli("sensitivity", "--data", bcg_table, "--outcome", "tb", "--plot", "loo",
                           "-o", "-")
    assert code == 2


@pytest.mark.parametrize("kind", ["loo", "cumul"])
def test_subset_forest_numbers_and_layout(bcg_table, kind):
    from msc_meta.data import load_table
    from msc_meta.plot.forest import fmt_interval
    from msc_meta.plot.sensitivity import subset_forest
    from msc_meta.pooling.sensitivity import run_sensitivity
    from tests.test_forest_options import assert_no_overlap_inside

    sens = run_sensitivity(load_table(bcg_table), outcome="tb")
    fig = subset_forest(sens, kind)
    words = [t.get_text() for t in fig.axes[0].texts]
    rows = sens.result.leave_one_out if kind == "loo" else sens.result.cumulative
    for r in rows:
        assert fmt_interval(r.estimate, r.ci_low, r.ci_high) in words
    assert_no_overlap_inside(fig)


def test_labbe_on_single_arm_rows_says_what_it_needs(run_cli, tmp_path):
    code, _, err = run_cli("labbe", "--outcome", "ae_gout", "--timepoint", "208", "-o",
                           tmp_path / "x.png")
    assert code == 2 and err.count("\n") == 1
    assert "needs two-arm counts" in err and "RR, OR or RD" in err and "pooled as PLO" in err
    assert not (tmp_path / "x.png").exists()
