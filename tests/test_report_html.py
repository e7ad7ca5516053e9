"""``msc-meta report``: one self-contained, escaped HTML file with the numbers of ``pool``.

The unit tests read the HTML text; the browser test renders it with a real,
headless Chromium (Debian's ``chromium``) and skips, saying why, when none
is installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from msc_meta.report.forest_table import fmt, fmt_ci

SELECTION = ("--outcome", "fistula_closure", "--timepoint", "208", "--unit", "fistula",
             "--multiarm", "split")
SVG_NS = "http://www.w3.org/2000/svg"
URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>)]*", re.I)
HOSTILE_ID = "<img src=x onerror=alert(1)>"
HOSTILE_QUOTE = "5 of 10 </q><script>alert('q')</script> & \"closed\""
HOSTILE_NOTE = "<b onmouseover=alert(2)>note</b>"


def _report(run_cli, path: Path, *args) -> str:
    code, out, err = run_cli("report", *args, "-o", str(path))
    assert code == 0, err
    assert "Traceback" not in err
    return path.read_text(encoding="utf-8")


def _pool_json(run_cli, *args) -> dict:
    code, out, err = run_cli("pool", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _quotes_of_pooled_rows(doc, data=None) -> list[str]:
    from msc_meta.data import load_table

    rows = {r.row_number: r for r in load_table(data).rows}
    numbers = []
    for s in doc["studies"]:
        numbers += [s["row"]] + list(s["member_rows"] or [])
    return [rows[n].quote for n in dict.fromkeys(numbers)]


@pytest.fixture(scope="module")
def curated_report(tmp_path_factory):
    from conftest import run_cli_in_process as run_cli

    path = tmp_path_factory.mktemp("report") / "closure.html"
    text = _report(run_cli, path, *SELECTION)
    return path, text, _pool_json(run_cli, *SELECTION)


@pytest.fixture
def hostile_table(tmp_table):
    rows = [dict(study_id=HOSTILE_ID, outcome="x", events_t=5, n_t=10, events_c=2, n_c=10,
                 source="<src>.txt", quote=HOSTILE_QUOTE, note=HOSTILE_NOTE),
            dict(study_id="b&b", outcome="x", events_t=7, n_t=12, events_c=3, n_c=11,
                 source="b.txt", quote="7 of 12 vs 3 of 11", note=""),
            dict(study_id="c", outcome="x", events_t=4, n_t=9, events_c=4, n_c=10,
                 source="c.txt", quote="4/9 and 4/10", note="")]
    return tmp_table(rows)


# --------------------------------------------------------------------------- the HTML text

def test_estimate_and_ci_equal_pool_json(curated_report):
    _, text, doc = curated_report
    shown = html.escape(fmt_ci(doc["estimate"], doc["ci_low"], doc["ci_high"]))
    assert f'<span class="estimate">{shown}</span>' in text
    assert html.escape(f"{fmt(doc['pi_low'])} to {fmt(doc['pi_high'])}") in text
    for s in doc["studies"]:
        assert html.escape(fmt_ci(s["estimate"], s["ci_low"], s["ci_high"])) in text


def test_every_pooled_rows_quote_is_there_escaped(curated_report):
    _, text, doc = curated_report
    quotes = _quotes_of_pooled_rows(doc)
    assert quotes and all(quotes)
    for quote in quotes:
        assert html.escape(quote) in text, quote


def test_self_contained(curated_report):
    _, text, _ = curated_report
    assert text.count("<svg") == 1
    assert set(URL.findall(text)) <= {SVG_NS}
    lowered = text.lower()
    for banned in ("<script", "<link", "<img", "<iframe", "@import", "xlink", "src=", "<!doctype svg"):
        assert banned not in lowered, banned
    assert not re.search(r"<[^>]*\son\w+\s*=", text), "an event-handler attribute"
    # every reference inside the document is to the document itself
    assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', text))


def test_versions_and_methods(curated_report):
    import platform

    import numpy

    from msc_meta import __version__

    _, text, _ = curated_report
    section = text[text.index("<h2>Software</h2>"):]
    for name, version in (("msc-meta", __version__), ("Python", platform.python_version()),
                          ("numpy", numpy.__version__)):
        assert f"<td>{name}</td><td>{version}</td>" in section
    for name in ("scipy", "matplotlib", "rich", "click"):
        assert f"<td>{name}</td>" in section
    assert "restricted maximum likelihood" in text and "Viechtbauer W (2010)" in text
    assert "Cochrane Handbook" in text
    assert "<h3>Sensitivity: leave-one-out</h3>" in text and "Omitted" in text


def test_hostile_text_is_escaped(run_cli, hostile_table, tmp_path):
    text = _report(run_cli, tmp_path / "r.html", "--data", hostile_table, "--outcome", "x")
    lowered = text.lower()
    assert "<img" not in lowered and "<script" not in lowered and "<b onmouseover" not in lowered
    assert html.escape(HOSTILE_ID) in text          # in the tables, escaped for HTML
    assert html.escape(HOSTILE_QUOTE) in text
    assert html.escape(HOSTILE_NOTE) in text
    assert "b&amp;b" in text and "&lt;src&gt;.txt" in text
    assert set(URL.findall(text)) <= {SVG_NS}


def test_one_study_reports_without_sensitivity(run_cli, tmp_table, tmp_path):
    data = tmp_table([dict(study_id="only", outcome="x", events_t=3, n_t=8, events_c=1, n_c=7,
                           source="o.txt", quote="3 of 8 and 1 of 7")])
    text = _report(run_cli, tmp_path / "r.html", "--data", data, "--outcome", "x")
    doc = _pool_json(run_cli, "--data", data, "--outcome", "x")
    assert html.escape(fmt_ci(doc["estimate"], doc["ci_low"], doc["ci_high"])) in text
    assert "Not run: leave-one-out needs at least 2 pooled studies" in text
    assert "not estimable with k = 1" in text
    assert "3 of 8 and 1 of 7" in text


def test_mh_reports_why_there_is_no_leave_one_out(run_cli, hostile_table, tmp_path):
    args = ("--data", str(hostile_table), "--outcome", "x", "--method", "MH")
    text = _report(run_cli, tmp_path / "r.html", *args)
    doc = _pool_json(run_cli, *args)
    assert html.escape(fmt_ci(doc["estimate"], doc["ci_low"], doc["ci_high"])) in text
    assert "Not run: leave-one-out refits inverse-variance models" in text
    assert "Mantel N, Haenszel W (1959)" in text


def test_by_and_all(run_cli, tmp_path):
    args = ("--outcome", "fistula_closure", "--timepoint", "24", "--unit", "patient", "--by", "cell_source")
    text = _report(run_cli, tmp_path / "by.html", *args)
    for group in _pool_json(run_cli, *args):
        if group["k"]:
            assert html.escape(fmt_ci(group["estimate"], group["ci_low"], group["ci_high"])) in text
    assert "Test for subgroup differences" in text

    everything = _report(run_cli, tmp_path / "all.html", "--all")
    sections = everything.count("<section ")
    # every section has its forest plot, or (an outcome type the figure does not draw yet)
    # a note saying it is not drawn
    drawn, not_drawn = everything.count("<svg"), everything.count('class="figure-note"')
    assert sections > 1 and drawn + not_drawn == sections and drawn >= 1
    ids = re.findall(r'\bid="([^"]+)"', everything)
    assert len(ids) == len(set(ids)), "ids repeat across the inline figures"


def test_output_rules(run_cli, tmp_path):
    path = tmp_path / "r.html"
    path.write_text("keep me", encoding="utf-8")
    code, out, err = run_cli("report", *SELECTION, "-o", str(path))
    assert code == 2 and "--force" in err and path.read_text() == "keep me"
    code, out, err = run_cli("report", *SELECTION, "-o", str(path), "--force")
    assert code == 0 and path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    code, out, err = run_cli("report", *SELECTION, "-o", "-")
    assert code == 0 and out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    code, out, err = run_cli("report", "--all", "--outcome", "fistula_closure", "-o", "-")
    assert code == 2 and out == ""
    code, out, err = run_cli("report", "-o", "-")
    assert code == 2 and "--outcome" in err


# --------------------------------------------------------------------------- a real browser

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180)


def _flat(text: str) -> str:
    return " ".join(html.unescape(text).split())


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install "
                                             "chromium; .ci/run installs it): the report is not "
                                             "rendered in a browser")
def test_report_renders_in_chromium(curated_report, run_cli, hostile_table, tmp_path):
    import matplotlib.image
    import numpy as np

    path, _, doc = curated_report
    done = _chromium("--dump-dom", path.resolve().as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<svg" in dom and "</svg>" in dom
    flat = _flat(dom)
    assert fmt_ci(doc["estimate"], doc["ci_low"], doc["ci_high"]) in flat
    for quote in _quotes_of_pooled_rows(doc):
        assert " ".join(quote.split()) in flat, quote

    shot = tmp_path / "report.png"
    done = _chromium(f"--screenshot={shot}", "--window-size=1200,3000", path.resolve().as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert pixels.var() > 0 and len(colours) > 10, "the screenshot is blank"
    # the figure is drawn: its blue study squares (SQUARE_COLOUR #1f4e79) are on screen
    from msc_meta.plot.forest import SQUARE_COLOUR

    rgb = np.array([int(SQUARE_COLOUR[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    assert (np.abs(pixels[..., :3] - rgb).max(axis=-1) < 0.02).sum() > 50

    # hostile text stays text in the browser's DOM: no element is made of it
    hostile = _report(run_cli, tmp_path / "hostile.html", "--data", hostile_table, "--outcome", "x")
    assert hostile
    done = _chromium("--dump-dom", (tmp_path / "hostile.html").as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<img" not in done.stdout and "<script" not in done.stdout.lower()
    assert HOSTILE_ID in _flat(done.stdout)


def test_arm_labels_follow_the_one_rule(curated_report, run_cli, hostile_table, tmp_path):
    """The report's forest plot names the arms as `forest` does (msc_meta.data.arms):
    MSC for the curated table, Treatment for a user's table."""
    def figure(text):
        return text[text.index("<svg"):text.index("</svg>")]

    curated = figure(curated_report[1])
    assert ">MSC<" in curated and ">Treatment<" not in curated
    user = _report(run_cli, tmp_path / "u.html", "--data", hostile_table, "--outcome", "x")
    assert ">Treatment<" in figure(user) and ">MSC<" not in figure(user)
