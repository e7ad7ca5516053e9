"""Forest plot options (issue 15): labels, columns, order, axis, size, notes, styles, risk of
bias, every outcome type, pages; and the layout rule that no two texts overlap and every
text lies inside the figure."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rob_illustrative.csv"


def svg_text(path: Path) -> str:
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    return " ".join("".join(el.itertext()) for el in root.iter() if el.tag.endswith("text"))


def two_arm_rows(k=4, outcome="healing", zero=False):
    rows = []
    for i in range(k):
        rows.append({"study_id": f"S{i + 1}", "outcome": outcome, "events_t": 5 + 3 * i,
                     "n_t": 20 + 5 * i, "events_c": 0 if zero and i == 0 else 3 + i,
                     "n_c": 21 + 4 * i, "year": 2020 - i})
    return rows


def draw(table_path, *, outcome, by=None, columns=(), **look):
    """Pool as the CLI does and draw with the given ForestOptions fields."""
    from msc_meta.data import load_table
    from msc_meta.plot.forest import ForestOptions, forest_pages, study_info
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.subgroups import run_pool_by

    table = load_table(table_path)
    model = {k: look.pop(k) for k in ("method", "measure", "scale", "study_ci") if k in look}
    overall = test = None
    if by:
        analyses, test = run_pool_by(table, by, outcome=outcome, **model)
        overall = run_pool(table, outcome=outcome, **model)
    else:
        analyses = [run_pool(table, outcome=outcome, **model)]
    info = study_info(table, columns, order=look.get("order"))
    return forest_pages(analyses, overall=overall, subgroup_test=test,
                        options=ForestOptions(info=info, **look))


def texts_of(fig):
    ax = fig.axes[0]
    return [t for t in list(ax.texts) + list(fig.texts) if t.get_text().strip()]


def assert_no_overlap_inside(fig):
    """Every text (tick labels included) inside the figure, and no two texts overlapping."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    page = fig.bbox
    items = [(t.get_text(), t.get_window_extent(renderer)) for t in texts_of(fig)]
    ax = fig.axes[0]
    items += [(t.get_text(), t.get_window_extent(renderer)) for t in ax.get_xticklabels()
              if t.get_text()]
    for text, box in items:
        assert page.x0 - 0.5 <= box.x0 and box.x1 <= page.x1 + 0.5, f"{text!r} leaves the page"
        assert page.y0 - 0.5 <= box.y0 and box.y1 <= page.y1 + 0.5, f"{text!r} leaves the page"
    for i, (a, box_a) in enumerate(items):
        for b, box_b in items[i + 1:]:
            shrunk = box_a.shrunk(0.98, 0.7)        # glyph boxes of neighbouring rows touch
            assert not shrunk.overlaps(box_b.shrunk(0.98, 0.7)), f"{a!r} overlaps {b!r}"


# ---------------------------------------------------------------- labels and title

def test_arm_and_favours_labels_reach_the_figure(run_cli, tmp_table, tmp_path):
    path = tmp_table(two_arm_rows())
    out = tmp_path / "f.svg"
    code, _, err = run_cli("forest", "--data", path, "--outcome", "healing", "-o", out)
    assert code == 0, err
    text = svg_text(out)
    # a user's table says nothing of its arms: generic headers, favours from the measure
    assert "Treatment" in text and "Control" in text and "MSC" not in text
    assert "More events with control" in text and "More events with treatment" in text
    code, _, err = run_cli("forest", "--data", path, "--outcome", "healing", "-o", out, "--force",
                           "--label-t", "Stem cells", "--label-c", "Placebo",
                           "--favours-left", "Favours placebo", "--favours-right", "Favours cells")
    assert code == 0, err
    text = svg_text(out)
    assert "Stem cells" in text and "Placebo" in text and "Treatment" not in text
    assert "Favours placebo" in text and "Favours cells" in text and "More events" not in text


def test_curated_table_keeps_msc_labels(run_cli, tmp_path):
    out = tmp_path / "c.svg"
    code, _, err = run_cli("forest", "--outcome", "fistula_closure", "--timepoint", "24",
                           "--unit", "patient", "-o", out)
    assert code == 0, err
    text = svg_text(out)
    assert "MSC" in text and "More events with MSC" in text


def test_title_keeps_a_one_word_outcome_as_written(run_cli, tmp_table, tmp_path):
    path = tmp_table(two_arm_rows(outcome="tb"))
    out = tmp_path / "tb.svg"
    code, _, err = run_cli("forest", "--data", path, "--outcome", "tb", "-o", out)
    assert code == 0, err
    assert "tb" in svg_text(out).split() and "Tb" not in svg_text(out)
    from msc_meta.plot._common import selection_title

    assert selection_title("CRP_level", 12, None) == "CRP level, 12 weeks"
    code, _, err = run_cli("forest", "--data", path, "--outcome", "tb", "-o", out, "--force",
                           "--title", "Tuberculosis")
    assert code == 0 and "Tuberculosis" in svg_text(out)


# ---------------------------------------------------------------- columns, order, axis, size

def test_extra_columns_and_order(tmp_table):
    path = tmp_table(two_arm_rows(k=5))
    for order, key in (("year", lambda s: 2020 - int(s[1:]) + 1),
                       ("data", lambda s: int(s[1:]))):
        fig = draw(path, outcome="healing", columns=("year",), order=order)[0]
        labels = {t.get_text(): t.get_position()[1] for t in texts_of(fig)
                  if t.get_text() in {f"S{i}" for i in range(1, 6)}}
        top_down = sorted(labels, key=lambda s: -labels[s])
        assert top_down == sorted(labels, key=key), order
        assert "year" in [t.get_text() for t in texts_of(fig)]
        assert "2016" in [t.get_text() for t in texts_of(fig)]
    fig = draw(path, outcome="healing", order="effect")[0]
    from msc_meta.data import load_table
    from msc_meta.pooling.analysis import run_pool

    studies = run_pool(load_table(path), outcome="healing").studies
    by_effect = [s.study_id for s in sorted(studies, key=lambda s: s.estimate)]
    labels = {t.get_text(): t.get_position()[1] for t in texts_of(fig) if t.get_text() in by_effect}
    assert sorted(labels, key=lambda s: -labels[s]) == by_effect


def test_unknown_column_and_bad_axis_options(run_cli, tmp_table, tmp_path):
    path = tmp_table(two_arm_rows())
    base = ("forest", "--data", path, "--outcome", "healing", "-o", tmp_path / "x.png")
    for extra, message in ((("--columns", "yeer"), "no column 'yeer'"),
                           (("--order", "nonsense"), "no column 'nonsense'"),
                           (("--xlim", "2,1"), "LOW < HIGH"),
                           (("--xlim", "0,10"), "LOW > 0"),
                           (("--xlim", "1"), "two numbers"),
                           (("--ticks", "a,b"), "numbers separated by commas"),
                           (("--xlim", "0.5,2", "--ticks", "0.1,1"), "outside the axis"),
                           (("--width", "3"), "--width 3")):
        code, out, err = run_cli(*base, *extra)
        assert code == 2, (extra, err)
        assert message in err and "Traceback" not in err, (extra, err)
        assert not (tmp_path / "x.png").exists()


def test_xlim_ticks_and_size_reach_the_figure(run_cli, tmp_table, tmp_path):
    path = tmp_table(two_arm_rows())
    fig = draw(path, outcome="healing", xlim=(0.1, 10.0), ticks=(0.1, 0.3, 1, 3, 10))[0]
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((0.1, 10.0))
    assert list(ax.get_xticks()) == pytest.approx([0.1, 0.3, 1, 3, 10])
    out = tmp_path / "size.png"
    code, _, err = run_cli("forest", "--data", path, "--outcome", "healing", "-o", out,
                           "--width", "12", "--height", "4", "--dpi", "100")
    assert code == 0, err
    data = out.read_bytes()
    assert struct.unpack(">II", data[16:24]) == (1200, 400)


# ---------------------------------------------------------------- notes, dagger, styles

def test_notes_off_by_default(run_cli, tmp_table, tmp_path):
    path = tmp_table(two_arm_rows(k=2))           # k = 2: the pool has notes and guidance
    out = tmp_path / "n.svg"
    code, _, err = run_cli("forest", "--data", path, "--outcome", "healing", "-o", out)
    assert code == 0, err
    assert "Notes:" not in svg_text(out) and "Guidance:" not in svg_text(out)
    code, _, err = run_cli("forest", "--data", path, "--outcome", "healing", "-o", out,
                           "--force", "--notes")
    assert code == 0, err
    assert "Notes:" in svg_text(out)


def test_dagger_only_where_the_correction_is_drawn(tmp_table):
    rows = [{"study_id": f"P{i}", "outcome": "closure", "events_t": e, "n_t": n}
            for i, (e, n) in enumerate([(4, 4), (3, 5), (0, 6), (5, 9)])]
    path = tmp_table(rows)

    def shown(**model):
        fig = draw(path, outcome="closure", **model)[0]
        return " ".join(t.get_text() for t in texts_of(fig))

    # a GLMM pools the counts and the exact intervals (the CLI's default) need no correction
    glmm = shown(method="GLMM", study_ci="exact")
    assert "\u2020" not in glmm and "zero cell" not in glmm
    wald = shown(method="GLMM", study_ci="wald")   # the Wald interval of 4/4 does
    assert "P0 \u2020" in wald
    reml = shown(study_ci="exact")                 # the logit pool uses the corrected yi
    assert "P0 \u2020" in reml and "zero cell: 0.5 added" in reml
    assert "P1 \u2020" not in reml


def test_styles(tmp_table):
    from msc_meta.plot.forest import SQUARE_COLOUR, STYLES

    path = tmp_table(two_arm_rows())
    for name in STYLES:
        fig = draw(path, outcome="healing", style=name)[0]
        squares = [c for c in fig.axes[0].collections if len(c.get_offsets()) == 4]
        colours = {tuple(round(v, 3) for v in c.get_facecolor()[0]) for c in squares}
        from matplotlib.colors import to_rgba

        assert tuple(round(v, 3) for v in to_rgba(STYLES[name].square)) in colours
        assert texts_of(fig)[0].get_fontfamily()[0] == STYLES[name].font
    assert STYLES["revman"].square == SQUARE_COLOUR and STYLES["journal"].square == "#000000"


# ---------------------------------------------------------------- bounds and absurd intervals

def test_square_at_a_proportion_of_one_is_drawn_whole(tmp_table):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rows = [{"study_id": f"P{i}", "outcome": "closure", "events_t": e, "n_t": n}
            for i, (e, n) in enumerate([(4, 4), (3, 5), (1, 5)])]
    fig = draw(tmp_table(rows), outcome="closure", measure="PR", study_ci="exact")[0]
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    low, high = ax.get_xlim()
    assert low < 0 and high > 1                      # a margin beyond the bounds
    box = ax.get_window_extent(renderer)
    seen = 0
    for coll in ax.collections:
        for i, (x, _) in enumerate(coll.get_offsets()):
            if x == pytest.approx(1.0):
                seen += 1
                sizes = coll.get_sizes()
                side = sizes[i % len(sizes)] ** 0.5 * fig.dpi / 72
                px = ax.transData.transform((1.0, 0))[0]
                assert px + side / 2 <= box.x1 + 0.5
                assert not coll.get_clip_on() or px + side / 2 <= box.x1
    assert seen == 1


def test_absurd_prediction_interval_is_clipped_with_arrows(tmp_table):
    rows = [{"study_id": f"D{i}", "outcome": "o", "events_t": e, "n_t": 4, "events_c": c, "n_c": 1}
            for i, (e, c) in enumerate([(3, 0), (4, 0), (1, 0)])]
    fig = draw(tmp_table(rows), outcome="o")[0]
    text = " ".join(t.get_text() for t in texts_of(fig))
    assert "[0.00018, 3.2\u00d710\u2074]" in text      # pool prints 0.000184 to 3.17e+04
    ax = fig.axes[0]
    markers = [line.get_marker() for line in ax.lines]
    assert "<" in markers and ">" in markers
    assert ax.get_xlim() == pytest.approx((0.01, 100.0))


# ---------------------------------------------------------------- risk of bias

def test_rob_traffic_lights_and_legend(tmp_path):
    fig = draw(EXAMPLE, outcome="remission", columns=("year", "dose_cells"))[0]
    text = " ".join(t.get_text() for t in texts_of(fig))
    for header in ("D1", "D2", "D3", "D4", "D5", "Overall", "Risk of bias"):
        assert header in text.split() or header in text
    for domain in ("D1 randomisation process", "D2 deviations from intended interventions",
                   "D3 missing outcome data", "D4 measurement of the outcome",
                   "D5 selection of the reported result"):
        assert domain in text.replace("\n", " ")
    assert "low risk of bias" in text and "some concerns" in text and "high risk of bias" in text
    # one light per study and domain: 7 studies x 6 columns
    lights = [len(c.get_offsets()) for c in fig.axes[0].collections
              if c.get_facecolor().size and tuple(c.get_facecolor()[0][:3]) in _rob_colours()]
    assert sum(lights) == 7 * 6
    # and each light where its study's row and its column are
    symbols = [t for t in fig.axes[0].texts if t.get_text() in ("+", "\u2212", "\u00d7")]
    assert len(symbols) == 7 * 6
    assert_no_overlap_inside(fig)


def _rob_colours():
    from matplotlib.colors import to_rgb

    from msc_meta.plot.forest import ROB_LOOK

    return {to_rgb(colour) for colour, _ in ROB_LOOK.values()}


@pytest.mark.parametrize("value, ok", [("Low", True), ("SOME  concerns", True), ("some_concerns", True),
                                       ("High", True), ("", True), ("moderate", False),
                                       ("unclear", False)])
def test_rob_values_are_checked(run_cli, tmp_table, value, ok):
    rows = two_arm_rows()
    for row in rows:
        row["rob_overall"] = "low"
    rows[2]["rob_d3"] = value
    path = tmp_table(rows)
    code, out, err = run_cli("pool", "--data", path, "--outcome", "healing", "--json")
    if ok:
        assert code == 0, err
    else:
        assert code == 2
        assert f"{path}, row 4, column 'rob_d3'" in err or ("row 4" in err and "rob_d3" in err)
        assert f"'{value}' is not a risk-of-bias judgement" in err and "Traceback" not in err


def test_by_rob_overall_is_the_usual_split(run_cli, tmp_path):
    code, out, err = run_cli("pool", "--data", EXAMPLE, "--outcome", "remission", "--by",
                             "rob_overall", "--json")
    assert code == 0, err
    groups = {doc["group"] if "group" in doc else doc.get("rob_overall"): doc["k"]
              for doc in json.loads(out)}
    assert sorted(groups.values()) == [2, 2, 3]
    out_file = tmp_path / "by.svg"
    code, _, err = run_cli("forest", "--data", EXAMPLE, "--outcome", "remission", "--by",
                           "rob_overall", "-o", out_file)
    assert code == 0, err
    text = svg_text(out_file)
    # read from low to high risk, not alphabetically
    assert text.index("rob_overall = low") < text.index("rob_overall = some concerns") \
        < text.index("rob_overall = high")
    assert "Test for subgroup differences (rob_overall)" in text


def test_no_rob_and_rob_without_columns(run_cli, tmp_table, tmp_path):
    out = tmp_path / "x.svg"
    code, _, err = run_cli("forest", "--data", EXAMPLE, "--outcome", "remission", "-o", out,
                           "--no-rob")
    assert code == 0, err
    assert "Risk of bias" not in svg_text(out)
    code, _, err = run_cli("forest", "--data", tmp_table(two_arm_rows()), "--outcome", "healing",
                           "-o", tmp_path / "y.svg", "--rob")
    assert code == 2 and "none of the risk-of-bias columns" in err


# ---------------------------------------------------------------- outcome types

TYPES = {
    "means": ([{"study_id": f"M{i}", "outcome": "pain", "mean_t": 3 + i / 10, "sd_t": 1.2,
                "n_t": 20 + i, "mean_c": 4, "sd_c": 1.5, "n_c": 21} for i in range(4)],
              {}, ("Mean", "SD", "Mean difference", "Higher mean with control")),
    "rates": ([{"study_id": f"R{i}", "outcome": "flare", "events_t": 10 + i, "time_t": 200.5,
                "events_c": 15, "time_c": 190} for i in range(3)],
              {}, ("Person-time", "Incidence rate ratio", "Higher rate with treatment")),
    "correlations": ([{"study_id": f"C{i}", "outcome": "corr", "cor_t": 0.1 + i / 10,
                       "n_t": 40 + i} for i in range(3)], {}, ("r", "Correlation")),
    "generic": ([{"study_id": f"G{i}", "outcome": "hr", "effect": 0.8 + i / 10,
                  "effect_ci_low": 0.5, "effect_ci_high": 1.4 + i / 10} for i in range(3)],
                {"scale": "log"}, ("Ratio",)),
}


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_every_outcome_type_draws(tmp_table, kind):
    rows, model, expected = TYPES[kind]
    path = tmp_table(rows)
    fig = draw(path, outcome=rows[0]["outcome"], **model)[0]
    text = " ".join(t.get_text() for t in texts_of(fig))
    for item in expected:
        assert item in text, item
    assert_no_overlap_inside(fig)


def test_units_reach_the_axis_title(tmp_table):
    rows = TYPES["means"][0]
    fig = draw(tmp_table(rows), outcome="pain", units="points")[0]
    assert "Mean difference (points)" in [t.get_text() for t in texts_of(fig)]


# ---------------------------------------------------------------- layout

@pytest.mark.parametrize("case", ["curated", "by", "columns", "journal"])
def test_no_text_overlaps_or_leaves_the_page(tmp_table, curated_path, case):
    if case == "curated":
        from msc_meta.data import load_table
        from msc_meta.plot.forest import forest_plot
        from msc_meta.pooling.analysis import run_pool

        analysis = run_pool(load_table(), outcome="fistula_closure", timepoint=208, unit="patient",
                            multiarm="split")
        fig = forest_plot(analysis, label_t="MSC", notes=True)
    elif case == "by":
        fig = draw(EXAMPLE, outcome="remission", by="rob_overall")[0]
    elif case == "columns":
        fig = draw(tmp_table(two_arm_rows(k=6, zero=True)), outcome="healing",
                   columns=("year",), order="weight")[0]
    else:
        fig = draw(EXAMPLE, outcome="remission", style="journal", columns=("dose_cells",))[0]
    assert_no_overlap_inside(fig)


# ---------------------------------------------------------------- pages and progress

def many_rows(k):
    return [{"study_id": f"Study {i:03d}", "outcome": "o", "events_t": 5 + i % 7, "n_t": 30,
             "events_c": 4 + i % 5, "n_c": 30} for i in range(k)]


def test_long_table_is_split_into_pages(run_cli, tmp_table, tmp_path):
    path = tmp_table(many_rows(130))
    out = tmp_path / "long.png"
    code, _, err = run_cli("forest", "--data", path, "--outcome", "o", "-o", out)
    assert code == 0, err
    pages = sorted(p.name for p in tmp_path.glob("long-*.png"))
    assert pages == ["long-1.png", "long-2.png", "long-3.png"]
    assert "split into 3 pages" in err and "warning" in err
    heights = [struct.unpack(">II", (tmp_path / p).read_bytes()[16:24])[1] for p in pages]
    assert max(heights) < 16 * 200                     # no 40,000-pixel page
    pdf = tmp_path / "long.pdf"
    code, _, err = run_cli("forest", "--data", path, "--outcome", "o", "-o", pdf)
    assert code == 0, err
    assert pdf.read_bytes().count(b"/Type /Page\n") + pdf.read_bytes().count(b"/Type /Page ") \
        + pdf.read_bytes().count(b"/Type /Page>") >= 3 or pdf.read_bytes().count(b"/Count 3") == 1
    # every page repeats the title and the headers; the pooled rows come on the last
    fig_pages = draw(path, outcome="o", rows_per_page=60)
    assert len(fig_pages) == 3
    for i, fig in enumerate(fig_pages, start=1):
        words = [t.get_text() for t in texts_of(fig)]
        assert any(f"(page {i} of 3)" in w for w in words)
        assert "Weight" in words
        assert ("Random effects (REML)" in words) == (i == 3)
    code, _, err = run_cli("forest", "--data", path, "--outcome", "o", "-o", "-")
    assert code == 2 and "cannot all go to stdout" in err
    code, _, err = run_cli("forest", "--data", path, "--outcome", "o", "-o",
                           tmp_path / "one.svg", "--rows-per-page", "0")
    assert code == 0 and (tmp_path / "one.svg").exists() and "pages" not in err


def test_pages_are_not_written_over_existing_files(run_cli, tmp_table, tmp_path):
    path = tmp_table(many_rows(70))
    (tmp_path / "p-2.png").write_bytes(b"old")
    code, _, err = run_cli("forest", "--data", path, "--outcome", "o", "-o", tmp_path / "p.png")
    assert code == 2 and "p-2.png: file exists" in err
    assert not (tmp_path / "p-1.png").exists() and (tmp_path / "p-2.png").read_bytes() == b"old"


def test_progress_bar_only_on_a_terminal(tmp_table, tmp_path):
    path = tmp_table(many_rows(130))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS="100")
    cmd = [sys.executable, "-m", "msc_meta", "forest", "--data", str(path), "--outcome", "o",
           "--rows-per-page", "40"]
    piped = subprocess.run(cmd + ["-o", str(tmp_path / "a.png")], capture_output=True, text=True,
                           env=env, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "\u2501" not in piped.stderr and "\x1b[" not in piped.stderr
    code, text = _run_on_terminal(cmd + ["-o", str(tmp_path / "b.png")], env)
    assert code == 0
    assert "forest plot" in text and "\u2501" in text      # the bar was drawn
    assert "written to" in text


def _run_on_terminal(cmd, env) -> tuple[int, str]:
    """Run ``cmd`` with stderr on a pseudo-terminal; return its exit code and what it wrote there."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    code = proc.wait(timeout=300)
    os.close(leader)
    return code, seen.decode("utf-8", "replace")


def test_progress_of_group_by_group_fits(tmp_table):
    rows = [{"study_id": f"G{g}S{i}", "outcome": "o", "events_t": 3 + (g + i) % 5, "n_t": 20,
             "g": f"g{g:02d}"} for g in range(24) for i in range(3)]
    path = tmp_table(rows)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS="100")
    cmd = [sys.executable, "-m", "msc_meta", "pool", "--data", str(path), "--outcome", "o",
           "--by", "g", "--method", "GLMM", "--json"]
    piped = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "fitting GLMM" not in piped.stderr and "\x1b[" not in piped.stderr
    assert len(json.loads(piped.stdout)) == 24
    code, text = _run_on_terminal(cmd, env)
    assert code == 0 and "fitting GLMM" in text


def test_progress_is_silent_off_a_terminal(monkeypatch, capsys):
    import msc_meta.progress as progress_module

    monkeypatch.setattr(progress_module, "_stderr_is_terminal", lambda: False)
    with progress_module.progress(1000, "work") as advance:
        for _ in range(1000):
            advance()
    assert capsys.readouterr().err == ""
