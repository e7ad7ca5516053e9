"""The tables show the inputs of rows beyond counts honestly: the values each effect size read.

`pool`'s terminal table (report/forest_table.arm_cells): an SD from an SEM, a CI or quantiles,
an r implied by a paired test, the SD of the change, an assumed --r are shown with a mark and a
footnote naming the conversion, never as "(NA)". The values are checked against
tests/fixtures/spread_pool.json (tests/r/fixtures_spread.R: the same conversions written out in
R, metafor 3.8.1, conv.fivenum of metafor 4.0-0), key ``used``.
`studies` (report/studies_table.format_inputs): a row's inputs by its outcome type, as the
table gives them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from msc_meta.conversions import CONVERSION_KINDS
from msc_meta.data import load_table
from msc_meta.pooling.analysis import run_pool
from msc_meta.pooling.options import PoolOptions
from msc_meta.report.forest_table import DERIVED_MARKS, arm_cells, render_analysis, report_text
from msc_meta.report.studies_table import format_inputs

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SPREAD = {c["name"]: c for c in json.loads((FIXTURES / "spread_pool.json").read_text())["cases"]}


def _pool(path, outcome, **options):
    return run_pool(load_table(path), outcome=outcome, options=PoolOptions(**options))


def _used(study):
    return {column: (value, kind) for column, value, kind in study.used}


def _g(x):
    return f"{x:.4g}"


@pytest.fixture(scope="module")
def paired():
    return _pool(FIXTURES / "spread_pool" / "paired.csv", "score", measure="MC", r=0.5)


@pytest.fixture(scope="module")
def means():
    return _pool(FIXTURES / "spread_pool" / "means.csv", "y", measure="MD")


# ---------------------------------------------------------------- the values used, vs R

def test_means_used_equal_r_after_the_conversions(means):
    ref = SPREAD["means_MD"]["used"]
    assert [s.study_id for s in means.studies] == list("abcdefg")
    for i, s in enumerate(means.studies):
        used = _used(s)
        for ours, theirs in (("mean_t", "m1i"), ("sd_t", "sd1i"), ("mean_c", "m2i"), ("sd_c", "sd2i")):
            assert used[ours][0] == pytest.approx(ref[theirs][i], rel=1e-6), (s.study_id, ours)
    kinds = {s.study_id: {c: k for c, (_, k) in _used(s).items() if k} for s in means.studies}
    assert kinds["a"] == {}
    assert kinds["b"] == {"sd_t": "sem", "sd_c": "sem"}
    assert kinds["c"] == {"sd_t": "ci", "sd_c": "ci"}
    assert kinds["d"] == {"mean_t": "ci_midpoint", "sd_t": "ci", "mean_c": "ci_midpoint", "sd_c": "ci"}
    for sid in "efg":
        assert set(kinds[sid].values()) == {"quantiles"} and len(kinds[sid]) == 4


def test_paired_used_equal_r_after_the_conversions(paired):
    case = SPREAD["paired_MC"]
    ref = case["used"]
    by_id = {s.study_id: _used(s) for s in paired.studies}
    for i, sid in enumerate(f"s{j}" for j in range(1, 7)):
        used = by_id[sid]
        if ref["r"][i] is None:         # s4, s5: the SD of the change alone
            assert used["sd_change"][0] == pytest.approx(case["sd_change"][i], rel=1e-6)
            assert {used[c][1] for c in ("sd_pre", "sd_post", "r")} == {"stand_in"}
            continue
        for column in ("sd_pre", "sd_post", "r"):
            assert used[column][0] == pytest.approx(ref[column][i], rel=1e-6), (sid, column)
        assert "sd_change" not in used
    assert by_id["s1"]["r"][1] is None and by_id["s1"]["sd_pre"][1] is None
    assert (by_id["s2"]["sd_pre"][1], by_id["s2"]["r"][1]) == ("sem", "r_from_p")
    assert (by_id["s3"]["sd_post"][1], by_id["s3"]["r"][1]) == ("sem", "r_from_t")
    assert by_id["s4"]["sd_change"][1] == "sd_change_from_p"
    assert by_id["s5"]["sd_change"][1] == "sd_change_from_t"
    assert by_id["s6"]["r"] == (0.5, "assumed_r")


# ---------------------------------------------------------------- pool's table

def _footnotes(arms):
    return dict(line.split(" ", 1) for line in arms.footnotes)


def test_paired_cells_show_the_values_used_with_marks(paired):
    case = SPREAD["paired_MC"]
    arms = arm_cells("means_paired", paired.studies)
    cells = dict(zip((s.study_id for s in paired.studies), arms.cells))
    notes = _footnotes(arms)
    a, b, c, d, e, f = DERIVED_MARKS[:6]       # in the order the kinds first appear
    assert notes == {a: CONVERSION_KINDS["sem"], b: CONVERSION_KINDS["r_from_p"],
                     c: CONVERSION_KINDS["r_from_t"], d: CONVERSION_KINDS["sd_change_from_p"],
                     e: CONVERSION_KINDS["sd_change_from_t"], f: CONVERSION_KINDS["assumed_r"]}
    assert cells["s1"] == ("10 (3) 20", "8 (2.5) 0.6")
    assert cells["s2"] == ("6.1 (3.6ᵃ) 9", f"2.6 (2.7ᵃ) {_g(case['implied_r'][1])}ᵇ")
    assert cells["s3"] == (f"50.2 ({_g(case['used']['sd_pre'][2])}ᵃ) 15",
                           f"44.9 ({_g(case['used']['sd_post'][2])}ᵃ) {_g(case['implied_r'][2])}ᶜ")
    # only the SD of the change: no SDs and no r of the study's own are shown
    assert cells["s4"] == ("4.3 (—) 13", f"3.8 (—) SDΔ {_g(case['sd_change'][3])}ᵈ")
    assert cells["s5"] == ("30 (—) 25", f"27.5 (—) SDΔ {_g(case['sd_change'][4])}ᵉ")
    assert cells["s6"] == ("12 (4) 30", "11.1 (3.6) 0.5ᶠ")
    assert "SDΔ the SD of the change" in arms.legend and "— not given" in arms.legend


def test_means_cells_show_the_values_used_with_marks(means):
    ref = SPREAD["means_MD"]["used"]
    arms = arm_cells("means_two", means.studies)
    cells = dict(zip((s.study_id for s in means.studies), arms.cells))
    assert _footnotes(arms) == {"ᵃ": CONVERSION_KINDS["sem"], "ᵇ": CONVERSION_KINDS["ci"],
                                "ᶜ": CONVERSION_KINDS["ci_midpoint"], "ᵈ": CONVERSION_KINDS["quantiles"]}
    assert cells["a"] == ("10.2 (2.1) 20", "8.1 (2.4) 22")
    assert cells["b"] == ("9.4 (2.5ᵃ) 25", "8 (2.25ᵃ) 25")
    assert cells["d"] == (f"9.2ᶜ ({_g(ref['sd1i'][3])}ᵇ) 40", f"8.2ᶜ ({_g(ref['sd2i'][3])}ᵇ) 38")
    assert cells["e"] == (f"{_g(ref['m1i'][4])}ᵈ ({_g(ref['sd1i'][4])}ᵈ) 30",
                          f"{_g(ref['m2i'][4])}ᵈ ({_g(ref['sd2i'][4])}ᵈ) 31")
    assert "—" not in arms.legend


def test_the_printed_table_has_the_footnotes_and_no_na(paired):
    text = report_text([paired], width=140)
    assert "(NA)" not in text
    for line in (f"ᵃ {CONVERSION_KINDS['sem']}", f"ᶠ {CONVERSION_KINDS['assumed_r']}"):
        assert line in text
    lines = text.splitlines()
    s2 = next(line for line in lines if line.startswith("s2 "))
    assert "6.1 (3.6ᵃ) 9" in s2 and "2.6 (2.7ᵃ) 0.6285ᵇ" in s2


def test_curated_pdai_shows_the_sd_of_the_change_from_its_p(run_cli, monkeypatch):
    """PDAI 4.3 -> 3.8, p = 0.585, n = 13: exactly study s4 of the R fixture."""
    monkeypatch.setenv("COLUMNS", "100")
    code, out, err = run_cli("pool", "--outcome", "pdai", "--measure", "MC")
    assert code == 0, err
    sdd = SPREAD["paired_MC"]["sd_change"][3]
    assert f"4.3 (—) 13  3.8 (—) SDΔ {_g(sdd)}ᵃ" in out
    assert f"ᵃ {CONVERSION_KINDS['sd_change_from_p']}"[:60] in " ".join(out.split())
    assert "(NA)" not in out


def test_rates_correlations_and_generic_cells():
    rates = _pool(FIXTURES / "cli_outcomes" / "hart1999.csv", "stroke", measure="IRR")
    arms = arm_cells("rates_two", rates.studies)
    assert arms.cells[0] == ("9/413", "19/398") and arms.footnotes == ()
    cors = _pool(FIXTURES / "outcome_commands" / "molloy2014.csv", "adherence", measure="ZCOR")
    assert arm_cells("correlations", cors.studies).cells[:2] == [("0.187 109",), ("0.162 749",)]
    gen = _pool(FIXTURES / "cli_outcomes" / "bcg_gen.csv", "tb", measure="GEN", scale="log")
    assert arm_cells("generic", gen.studies).cells[0] == ("0.41 [0.13, 1.26]",)
    yi_vi = _pool(FIXTURES / "outcome_commands" / "bcg_yi_vi.csv", "tb", measure="GEN")
    first = yi_vi.studies[0]
    vi = dict(first.inputs)["vi"]
    assert arm_cells("generic", yi_vi.studies).cells[0] == (f"yi {_g(first.yi)} (SE {_g(math.sqrt(vi))})",)


def test_generic_cells_say_a_level_other_than_95(tmp_table):
    path = tmp_table([dict(study_id="a", outcome="hr", effect="0.8", effect_ci_low="0.6",
                           effect_ci_high="1.1", effect_level="90"),
                      dict(study_id="b", outcome="hr", effect="0.7", effect_ci_low="0.5",
                           effect_ci_high="0.95")])
    gen = _pool(path, "hr", measure="GEN", scale="log")
    assert arm_cells("generic", gen.studies).cells == [("0.8 [0.6, 1.1] 90%",), ("0.7 [0.5, 0.95]",)]


def test_html_report_has_the_marked_values_and_footnotes(paired):
    from msc_meta.report.html_report import _studies_table

    text = _studies_table(paired)
    assert "6.1 (3.6ᵃ) 9" in text and "(NA)" not in text
    assert f"ᵇ {CONVERSION_KINDS['r_from_p']}" in text


# ---------------------------------------------------------------- studies

def _row(path, study_id, outcome=None):
    table = load_table(path)
    return next(r for r in table.rows if r.study_id == study_id and (outcome is None or r.outcome == outcome))


def test_studies_cells_by_outcome_type():
    means = FIXTURES / "spread_pool" / "means.csv"
    assert format_inputs(_row(means, "a")) == ("10.2 (SD 2.1)\nn = 20", "8.1 (SD 2.4)\nn = 22")
    assert format_inputs(_row(means, "b")) == ("9.4 (SEM 0.5)\nn = 25", "8 (SEM 0.45)\nn = 25")
    assert format_inputs(_row(means, "d")) == ("— (95% CI 8.1–10.3)\nn = 40", "— (95% CI 7–9.4)\nn = 38")
    assert format_inputs(_row(means, "e"))[0] == "median 10 (IQR 8.5–11.8, range 5–15.5)\nn = 30"
    assert format_inputs(_row(means, "g"))[1] == "median 8.2 (range 3–13.5)\nn = 33"
    paired = FIXTURES / "spread_pool" / "paired.csv"
    assert format_inputs(_row(paired, "s1")) == ("10 → 8\nSD 3/2.5\nr = 0.6\nn = 20", "")
    assert format_inputs(_row(paired, "s3")) == ("50.2 → 44.9\nSEM 2.1/1.8\nt = 3.2\nn = 15", "")
    assert format_inputs(_row(FIXTURES / "cli_outcomes" / "hart1999.csv", "AFASAK")) == (
        "9/413\nperson-time", "19/398\nperson-time")
    assert format_inputs(_row(FIXTURES / "cli_outcomes" / "bcg_gen.csv", "Aronson 1948")) == (
        "0.41\n(95% CI 0.13–1.26)", "")
    assert format_inputs(_row(FIXTURES / "outcome_commands" / "molloy2014.csv",
                              "Axelsson et al. 2009")) == ("r = 0.187\nn = 109", "")


def test_studies_shows_the_curated_diameter_as_printed(run_cli, monkeypatch):
    """The Leiden MRI row: 6.1 ± 1.2 vs 2.6 ± 0.9 mm (SEM), paired p = 0.006, n = 9."""
    monkeypatch.setenv("COLUMNS", "100")
    code, out, err = run_cli("studies", "--outcome", "max_fistula_diameter")
    assert code == 0, err
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(" leiden_bmmsc_mri"))
    treatment = [line.rstrip().rsplit("  ", 1)[-1].strip() for line in lines[first:first + 4]]
    assert treatment == ["6.1 → 2.6", "SEM 1.2/0.9", "p = 0.006", "n = 9"]
    assert "—/9" not in out
    assert "1 with means or other data, 0 without" in " ".join(out.split())


def test_studies_units_are_shown_and_escaped(run_cli, tmp_table, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    path = tmp_table([dict(study_id="m", outcome="diam", n_t="9", mean_pre="6.1", mean_post="2.6",
                           se_pre="1.2", se_post="0.9", p_value="0.006", outcome_units="mm"),
                      dict(study_id="x", outcome="bad", n_t="9", mean_pre="6.1", mean_post="2.6",
                           se_pre="1.2", se_post="0.9", p_value="0.006",
                           outcome_units="mm[red]\u202e")])
    code, out, err = run_cli("studies", "--data", path)
    assert code == 0, err
    assert "6.1 → 2.6 mm" in out
    assert "\u202e" not in out and "mm[red]\\u202e" in out
