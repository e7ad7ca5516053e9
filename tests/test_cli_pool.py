"""`msc-meta pool` through the command line, against metafor (tests/fixtures/pool_cli.json).

The fixture (written by tests/r/fixtures_pool.R) holds small outcome tables
and metafor's numbers for the rows that must be pooled; each test writes the
table to a CSV, runs the CLI and compares. Error paths check exit code 2, a
one-line message on stderr and no traceback.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from msc_meta.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
POOL = json.loads((FIXTURES / "pool_cli.json").read_text())
# The two-arm table's G1 and G2 share one control arm; pool_cli.json pools
# them as two comparisons (today's --multiarm keep). tests/test_multiarm.py
# checks the default (combine) and split against tests/fixtures/multiarm.json.
KEEP = ("--multiarm", "keep")
COLUMNS = ["study_id", "outcome", "events_t", "n_t", "events_c", "n_c", "trial",
           "timepoint_weeks", "unit", "pct_t", "pct_c", "route", "note"]


def approx(expected):
    return pytest.approx(expected, rel=1e-6, abs=1e-10)


def write_table(tmp_path, rows, name="table.csv"):
    """Write fixture rows (dicts; None = blank) as an outcome-table CSV."""
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _cell(row.get(c)) for c in COLUMNS])
    return str(path)


def _cell(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def run_cli(capsys, monkeypatch, *argv):
    """Run `msc-meta ARGV` in process; return (exit code, stdout, stderr)."""
    monkeypatch.setenv("COLUMNS", "80")
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(capsys, monkeypatch):
    return lambda *argv: run_cli(capsys, monkeypatch, *argv)


@pytest.fixture
def two_arm_csv(tmp_path):
    return write_table(tmp_path, POOL["two_arm"]["rows"])


@pytest.fixture
def single_arm_csv(tmp_path):
    return write_table(tmp_path, POOL["single_arm"]["rows"])


def pool_json(cli, *argv):
    code, out, err = cli("pool", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


FIT_KEYS = ("theta", "se", "estimate", "ci_low", "ci_high", "stat", "pval", "tau2", "tau",
            "i2", "h2", "q", "q_pval")


def assert_fit(doc, ref, keys=FIT_KEYS):
    assert doc["k"] == ref["k"]
    assert doc["q_df"] == ref["q_df"]
    for key in keys:
        assert doc[key] == approx(ref[key]), key


def assert_studies(doc, ref_studies, ids):
    assert [s["study_id"] for s in doc["studies"]] == list(ids)
    for key in ("yi", "vi", "estimate", "ci_low", "ci_high"):
        expected = ref_studies[key] if isinstance(ref_studies[key], list) else [ref_studies[key]]
        assert [s[key] for s in doc["studies"]] == approx(expected), key


# ---------------------------------------------------------------- two-arm

def test_two_arm_default_is_rr_reml_with_fe_beside(cli, two_arm_csv):
    ref = POOL["two_arm"]["measures"]["RR"]
    doc = pool_json(cli, "--data", two_arm_csv, *KEEP, "--outcome", "closure")
    assert doc["measure"] == "RR" and doc["method"] == "REML"
    assert_fit(doc, ref["fits"]["REML"])
    for key in ("pi_low", "pi_high", "tau2_ci_low", "tau2_ci_high", "i2_ci_low", "i2_ci_high"):
        assert doc[key] == approx(ref["fits"]["REML"][key]), key
    assert doc["pi_method"] == "hts"
    assert_studies(doc, ref["studies"], ref["pooled"])
    assert [s["weight"] for s in doc["studies"]] == approx(ref["fits"]["REML"]["weights"])
    # The common-effect fit shown beside the random-effects one.
    common = doc["common"]
    assert common["method"] == "FE"
    for key in ("theta", "se", "estimate", "ci_low", "ci_high", "q"):
        assert common[key] == approx(ref["fits"]["FE"][key]), key
    assert common["weights"] == approx(ref["fits"]["FE"]["weights"])
    assert doc["outcome"] == "closure" and doc["timepoint_weeks"] == 24 and doc["unit"] == "patient"


def test_two_arm_exclusions_and_notes(cli, two_arm_csv):
    doc = pool_json(cli, "--data", two_arm_csv, *KEEP, "--outcome", "closure")
    reasons = {e["study_id"]: e["reason"] for e in doc["excluded"]}
    assert set(reasons) == {"C", "D", "F"}
    assert reasons["C"].startswith("no events in either arm")
    assert reasons["D"].startswith("no counts in the source") and "56% vs 30% printed" in reasons["D"]
    assert reasons["F"] == "single-arm row: no control arm for RR"
    notes = "\n".join(doc["notes"])
    assert "3 of 8 selected rows left out" in notes
    assert "continuity correction 0.5 added to every cell of 1 study" in notes
    assert "with k = 5 the z-based CI is too narrow" not in notes  # k = 5 is not < 5
    assert "trial T7: G1, G2 share one control arm (4/14), counted 2 times (--multiarm keep)" in notes
    assert [s["study_id"] for s in doc["studies"] if s["cc_added"]] == ["B"]


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
@pytest.mark.parametrize("method", ["FE", "DL", "REML"])
def test_two_arm_inverse_variance_methods(cli, two_arm_csv, measure, method):
    ref = POOL["two_arm"]["measures"][measure]
    doc = pool_json(cli, "--data", two_arm_csv, *KEEP, "--outcome", "closure", "--measure", measure,
                    "--method", method)
    assert doc["method"] == method
    assert_fit(doc, ref["fits"][method])
    assert_studies(doc, ref["studies"], ref["pooled"])
    assert [s["weight"] for s in doc["studies"]] == approx(ref["fits"][method]["weights"])
    assert (doc["common"] is None) == (method == "FE")


def test_rd_keeps_the_double_zero_study(cli, two_arm_csv):
    doc = pool_json(cli, "--data", two_arm_csv, *KEEP, "--outcome", "closure", "--measure", "RD")
    assert "C" in [s["study_id"] for s in doc["studies"]]
    assert {e["study_id"] for e in doc["excluded"]} == {"D", "F"}


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
def test_two_arm_hksj(cli, two_arm_csv, measure):
    ref = POOL["two_arm"]["measures"][measure]["fits"]["REML_knha"]
    doc = pool_json(cli, "--data", two_arm_csv, *KEEP, "--outcome", "closure", "--measure", measure, "--hksj")
    assert doc["hksj"] is True and doc["test"] == "t" and doc["df"] == ref["k"] - 1
    assert_fit(doc, ref)


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
def test_mantel_haenszel(cli, two_arm_csv, measure):
    ref = POOL["two_arm"]["measures"][measure]
    doc = pool_json(cli, "--data", two_arm_csv, *KEEP, "--outcome", "closure", "--measure", measure,
                    "--method", "MH")
    assert doc["method"] == "MH" and doc["common"] is None
    assert_fit(doc, ref["fits"]["MH"], keys=("theta", "se", "estimate", "ci_low", "ci_high",
                                             "stat", "pval", "q", "q_pval", "i2", "h2"))
    assert [s["weight"] for s in doc["studies"]] == approx(ref["fits"]["MH"]["weights"])


def test_peto(cli, two_arm_csv):
    ref = POOL["two_arm"]["measures"]["OR"]
    doc = pool_json(cli, "--data", two_arm_csv, *KEEP, "--outcome", "closure", "--method", "PETO")
    assert doc["measure"] == "OR" and doc["method"] == "PETO"  # PETO implies OR
    assert_fit(doc, ref["fits"]["PETO"], keys=("theta", "se", "estimate", "ci_low", "ci_high",
                                               "stat", "pval", "q", "q_pval", "i2"))
    assert [s["weight"] for s in doc["studies"]] == approx(ref["fits"]["PETO"]["weights"])


# ---------------------------------------------------------------- single-arm

@pytest.mark.parametrize("measure", ["PLO", "PR", "PFT", "PAS"])
@pytest.mark.parametrize("method", ["REML", "FE"])
def test_single_arm_measures(cli, single_arm_csv, measure, method):
    ref = POOL["single_arm"]["measures"][measure]
    # T compares two arms, so the default would be RR: name the measure.
    # pool_cli.json holds metafor's Wald study intervals (summary.escalc).
    doc = pool_json(cli, "--data", single_arm_csv, "--outcome", "healing", "--method", method,
                    "--measure", measure, "--study-ci", "wald")
    assert doc["measure"] == measure
    assert_fit(doc, ref["fits"][method])
    assert_studies(doc, ref["studies"], POOL["single_arm"]["pooled"])
    assert all(s["events_c"] is None and s["n_c"] is None for s in doc["studies"])
    assert [e["study_id"] for e in doc["excluded"]] == ["N"]
    assert "71.4% printed" in doc["excluded"][0]["reason"]
    assert any("treatment arms of 1 two-arm row are pooled" in n for n in doc["notes"])
    cc = [s["study_id"] for s in doc["studies"] if s["cc_added"]]
    assert cc == (["S2", "S4"] if measure in ("PLO", "PR") else [])


def test_default_is_rr_when_any_row_compares_two_arms(cli, single_arm_csv):
    doc = pool_json(cli, "--data", single_arm_csv, "--outcome", "healing")
    assert doc["measure"] == "RR" and doc["k"] == 1
    assert [s["study_id"] for s in doc["studies"]] == ["T"]
    reasons = {e["study_id"]: e["reason"] for e in doc["excluded"]}
    assert reasons["S1"] == "single-arm row: no control arm for RR"


def test_single_arm_default_is_plo(cli, tmp_path):
    rows = [r for r in POOL["single_arm"]["rows"] if r["study_id"] != "T"]
    doc = pool_json(cli, "--data", write_table(tmp_path, rows), "--outcome", "healing")
    assert doc["measure"] == "PLO"
    assert not any("two-arm" in n for n in doc["notes"])


# ---------------------------------------------------------------- k = 2, k = 1

def test_k2_prediction_interval_undefined_with_hts(cli, tmp_path):
    ref = POOL["k_two"]
    path = write_table(tmp_path, ref["rows"])
    doc = pool_json(cli, "--data", path, "--outcome", "closure")
    assert_fit(doc, ref["REML"])
    assert doc["pi_low"] is None and doc["pi_high"] is None
    notes = "\n".join(doc["notes"])
    assert "prediction interval undefined" in notes
    assert "with k = 2 the z-based CI is too narrow" in notes and "--hksj" in notes
    doc_z = pool_json(cli, "--data", path, "--outcome", "closure", "--pi", "z")
    assert doc_z["pi_low"] == approx(ref["REML_pi_z"]["pi_low"])
    assert doc_z["pi_high"] == approx(ref["REML_pi_z"]["pi_high"])


def test_k1_is_the_studys_own_estimate_cx601(cli, tmp_path):
    ref = POOL["k_one"]["studies"]
    path = write_table(tmp_path, POOL["k_one"]["rows"])
    doc = pool_json(cli, "--data", path, "--outcome", "combined_remission")
    assert doc["k"] == 1 and doc["measure"] == "RR"
    assert doc["theta"] == approx(ref["yi"]) and doc["se"] == approx(math.sqrt(ref["vi"]))
    assert doc["estimate"] == approx(ref["estimate"])
    assert (doc["ci_low"], doc["ci_high"]) == (approx(ref["ci_low"]), approx(ref["ci_high"]))
    assert round(doc["estimate"], 3) == 1.445 and round(doc["ci_low"], 3) == 1.042
    assert round(doc["ci_high"], 3) == 2.003
    assert doc["tau2"] is None and doc["i2"] is None and doc["q_pval"] is None
    assert doc["common"] is None and doc["pi_low"] is None
    assert doc["studies"][0]["weight"] == 100.0
    assert any(n.startswith("k = 1: the pooled row is Cx601's own estimate") for n in doc["notes"])


def test_k1_table(cli, tmp_path):
    path = write_table(tmp_path, POOL["k_one"]["rows"])
    code, out, err = cli("pool", "--data", path, "--outcome", "combined_remission")
    assert code == 0, err
    assert "1.445 [1.042, 2.003]" in out
    assert "Heterogeneity: not estimable with k = 1" in out


# ---------------------------------------------------------------- --by

def test_by_route_subgroups_and_test(cli, two_arm_csv):
    ref = POOL["two_arm"]["by_route"]
    doc = pool_json(cli, "--data", two_arm_csv, *KEEP, "--outcome", "closure", "--by", "route")
    assert isinstance(doc, list)
    assert [d["group"] for d in doc] == ["iv", "local", "(blank)"]
    by_group = {d["group"]: d for d in doc}
    assert_fit(by_group["iv"], ref["iv"])
    assert_fit(by_group["local"], ref["local"])
    assert by_group["(blank)"]["k"] == 1
    assert by_group["(blank)"]["theta"] == approx(ref["blank_theta"])
    assert by_group["(blank)"]["se"] == approx(ref["blank_se"])
    # D (iv) has no counts, C (local) is a double zero, F (local) single-arm.
    assert [e["study_id"] for e in by_group["iv"]["excluded"]] == ["D"]
    assert {e["study_id"] for e in by_group["local"]["excluded"]} == {"C", "F"}
    for d in doc:
        test = d["subgroup_test"]
        assert test["by"] == "route" and test["df"] == ref["df"]
        assert test["q_between"] == approx(ref["q_between"])
        assert test["pval"] == approx(ref["pval"])
        assert test["n_groups"] == len(ref["groups"])
    assert [d["group"] for d in doc if d["subgroup_test"]["in_test"]] == ref["groups"]


def test_by_table_prints_one_table_per_group_and_the_test(cli, two_arm_csv):
    code, out, err = cli("pool", "--data", two_arm_csv, *KEEP, "--outcome", "closure", "--by", "route")
    assert code == 0, err
    assert "[route = iv]" in out and "[route = local]" in out and "[route = (blank)]" in out
    assert "Test for subgroup differences (random effects, by route):\n  Q = 2.23, df = 2, p = 0.329" in out


def test_by_unknown_column_is_a_usage_error(cli, two_arm_csv):
    code, out, err = cli("pool", "--data", two_arm_csv, *KEEP, "--outcome", "closure", "--by", "colour")
    assert code == 2 and out == ""
    assert "colour" in err and "Traceback" not in err


# ---------------------------------------------------------------- the table

def test_table_layout(cli, two_arm_csv):
    code, out, err = cli("pool", "--data", two_arm_csv, *KEEP, "--outcome", "closure")
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "closure · 24 weeks · per patient — RR, REML, k = 5"
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "RR [95% CI]" in out
    for study in ("A", "B", "E", "G1", "G2"):
        assert any(line.startswith(study + " ") for line in lines)
    # pooled rows (labels wrap in the 16-character study column)
    assert any(line.startswith("Common effect") for line in lines)
    assert any(line.startswith("Random effects") for line in lines)
    assert "1.592 [" in out  # REML estimate 1.59205
    assert "◆" in out and "■" in out and "┊" in out
    assert "Heterogeneity: tau² = 0.8212 [0.1204, 22.1599], I² = 76.3% [32.1%, 98.9%]" in out
    assert "Prediction interval (95%, t with k-2 df): 0.060 to 42.306" in out
    assert "Left out:" in out and "C (row 4): no events in either arm" in out
    assert "Notes:" in out


def test_table_single_arm_has_no_control_column(cli, single_arm_csv):
    code, out, err = cli("pool", "--data", single_arm_csv, "--outcome", "healing", "--measure", "PLO")
    assert code == 0, err
    assert "Control" not in out and "Events/N" in out and "Proportion [95% CI]" in out


def test_level_option(cli, two_arm_csv):
    doc = pool_json(cli, "--data", two_arm_csv, *KEEP, "--outcome", "closure", "--level", "90")
    assert doc["level"] == 90
    ref = POOL["two_arm"]["measures"]["RR"]["fits"]["REML"]
    z90 = 1.6448536269514722
    assert doc["theta_ci_low"] == approx(ref["theta"] - z90 * ref["se"])


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("argv, message", [
    (["--outcome", "nope"], "no rows with outcome 'nope'"),
    (["--outcome", "closure", "--measure", "PLO", "--method", "MH"], "--method MH pools RR, OR or RD"),
    (["--outcome", "closure", "--measure", "RR", "--method", "PETO"], "--method PETO pools odds ratios only"),
    (["--outcome", "closure", "--method", "MH", "--hksj"], "--hksj applies to inverse-variance fits"),
    (["--outcome", "closure", "--timepoint", "99"], "no rows at --timepoint 99"),
    (["--outcome", "closure", "--measure", "XX"], "Invalid value for '--measure'"),
    (["--outcome", "closure", "--method", "BAYES"], "Invalid value for '--method'"),
    (["--outcome", "closure", "--multiarm", "merge"], "Invalid value for '--multiarm'"),
    (["--outcome", "closure", "--study-ci", "exact"], "--study-ci exact applies to single-arm"),
    (["--outcome", "closure", "--measure", "RR", "--method", "GLMM"], "use --measure PLO or OR (not RR)"),
    (["--outcome", "closure", "--method", "GLMM", "--multiarm", "split"], "--multiarm split makes"),
    (["--outcome", "closure", "--method", "GLMM", "--hksj"], "--hksj applies to inverse-variance"),
])
def test_usage_errors(cli, two_arm_csv, argv, message):
    code, out, err = cli("pool", "--data", two_arm_csv, *KEEP, *argv)
    assert code == 2
    assert out == ""
    assert message in err
    assert "Traceback" not in err


def test_two_arm_measure_on_single_arm_data(cli, tmp_path):
    rows = [r for r in POOL["single_arm"]["rows"] if r["study_id"] != "T"]
    code, out, err = cli("pool", "--data", write_table(tmp_path, rows), "--outcome", "healing",
                         "--measure", "RR")
    assert code == 2 and out == ""
    assert "every selected row with counts is single-arm" in err and "Traceback" not in err


def test_nothing_to_pool(cli, tmp_path):
    rows = [dict(study_id="X", outcome="closure", pct_t="40", pct_c="20"),
            dict(study_id="Y", outcome="closure", note="significant, no numbers")]
    code, out, err = cli("pool", "--data", write_table(tmp_path, rows), "--outcome", "closure")
    assert code == 2 and out == ""
    assert "the source gives no counts for any selected row" in err and "X (row 2), Y (row 3)" in err
    assert len(err.strip().splitlines()) == 1


def test_nothing_left_after_exclusions(cli, tmp_path):
    rows = [dict(study_id="Z", outcome="closure", events_t=0, n_t=10, events_c=0, n_c=12),
            dict(study_id="X", outcome="closure", pct_t="40", pct_c="20")]
    code, out, err = cli("pool", "--data", write_table(tmp_path, rows), "--outcome", "closure")
    assert code == 2 and out == ""
    assert "nothing left to pool with RR: Z (row 2) no events in either arm" in err
    assert "(and 1 more)" in err and len(err.strip().splitlines()) == 1


def test_bad_input_names_file_row_and_column(cli, tmp_path):
    rows = [dict(study_id="A", outcome="closure", events_t=12, n_t=10)]
    path = write_table(tmp_path, rows)
    code, out, err = cli("pool", "--data", path, "--outcome", "closure")
    assert code == 2 and out == ""
    assert path in err and "row 2" in err and "events_t" in err
    assert "Traceback" not in err


def test_missing_file(cli, tmp_path):
    code, out, err = cli("pool", "--data", str(tmp_path / "absent.csv"), "--outcome", "closure")
    assert code == 2 and "absent.csv" in err and "Traceback" not in err


def test_subprocess_entry_point(two_arm_csv):
    """`python -m msc_meta pool` end to end: JSON on stdout, and a clean error."""
    ok = subprocess.run([sys.executable, "-m", "msc_meta", "pool", "--data", two_arm_csv, *KEEP,
                         "--outcome", "closure", "--json"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["estimate"] == approx(
        POOL["two_arm"]["measures"]["RR"]["fits"]["REML"]["estimate"])
    bad = subprocess.run([sys.executable, "-m", "msc_meta", "pool", "--data", two_arm_csv, *KEEP,
                          "--outcome", "closure", "--measure", "PFT", "--method", "PETO"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("msc-meta: error: --method PETO")
    assert "Traceback" not in bad.stderr


# ---------------------------------------------------------------- curated data

def _curated_rows(outcome, timepoint, unit):
    try:
        from msc_meta.data import load_table
        table = load_table()
    except Exception:  # the curated table may not be shipped yet
        return None
    return [r for r in table.rows if r.outcome == outcome and r.timepoint_weeks == timepoint
            and r.unit == unit]


def test_curated_fistula_closure_208_weeks_per_patient(cli):
    ref = POOL["curated_fistula_closure_208_patient"]
    rows = _curated_rows("fistula_closure", 208, "patient")
    if rows is None:
        pytest.skip("curated table not shipped yet")
    counts = [(r.study_id, r.events_t, r.n_t, r.events_c, r.n_c) for r in rows]
    expected = [(r["study_id"], r["events_t"], r["n_t"], r["events_c"], r["n_c"]) for r in ref["rows"]]
    if counts != expected:
        pytest.skip(f"curated rows changed ({counts}); regenerate tests/r/fixtures_pool.R")
    doc = pool_json(cli, "--outcome", "fistula_closure", "--timepoint", "208", "--unit", "patient",
                    *KEEP)
    assert doc["timepoint_weeks"] == 208 and doc["unit"] == "patient" and doc["measure"] == "RR"
    assert_fit(doc, ref["REML"], keys=("theta", "se", "estimate", "ci_low", "ci_high", "stat",
                                       "pval", "q", "q_pval", "pi_low", "pi_high"))
    assert doc["tau2"] == pytest.approx(ref["REML"]["tau2"], abs=1e-8)
    assert doc["common"]["estimate"] == approx(ref["FE"]["estimate"])
    assert_studies(doc, ref["studies"], [r["study_id"] for r in ref["rows"]])
    notes = "\n".join(doc["notes"])
    # three dose cohorts against one 0/3 placebo arm: the CLI must say so
    assert "share one control arm (0/3), counted 3 times (--multiarm keep)" in notes
    assert "continuity correction 0.5 added to every cell of 3 studies" in notes
    for multiarm in ("keep", "combine", "split"):
        code, out, err = cli("pool", "--outcome", "fistula_closure", "--timepoint", "208",
                             "--unit", "patient", "--multiarm", multiarm)
        assert code == 0, err
        assert all(len(line) <= 80 for line in out.splitlines()), out


def test_curated_cx601_seed(cli):
    """ADMIRE-CD (Cx601): 53/107 vs 36/105 -> RR 1.445 [1.042, 2.003], k = 1."""
    rows = _curated_rows("fistula_closure", 24, "patient")
    if not rows:
        pytest.skip("curated table not shipped yet")
    doc = pool_json(cli, "--outcome", "fistula_closure", "--timepoint", "24", "--unit", "patient")
    study = doc["studies"][0]
    assert (study["events_t"], study["n_t"], study["events_c"], study["n_c"]) == (53, 107, 36, 105)
    ref = POOL["k_one"]["studies"]
    assert doc["estimate"] == approx(ref["estimate"])
    assert (doc["ci_low"], doc["ci_high"]) == (approx(ref["ci_low"]), approx(ref["ci_high"]))
    assert f"{doc['estimate']:.3f} [{doc['ci_low']:.3f}, {doc['ci_high']:.3f}]" == "1.445 [1.042, 2.003]"


def test_curated_rows_without_counts_give_a_clear_error(cli):
    rows = _curated_rows("fistula_closure", 24, "fistula")
    if not rows or any(r.has_counts for r in rows):
        pytest.skip("curated 24-week fistula rows not as expected")
    code, out, err = cli("pool", "--outcome", "fistula_closure", "--timepoint", "24", "--unit", "fistula")
    assert code == 2 and out == ""
    assert "the source gives no counts for any selected row" in err and "Traceback" not in err


# ---------------------------------------------------------------- tiny evidence
# tests/fixtures/pool_tiny.json (tests/r/fixtures_pool_tiny.R): binom.test /
# prop.test study intervals and rma.glmm(measure="PLO") on the single-arm table.

TINY = json.loads((FIXTURES / "pool_tiny.json").read_text())


@pytest.fixture
def tiny_csv(tmp_path):
    return write_table(tmp_path, TINY["rows"])


@pytest.mark.parametrize("measure", ["PLO", "PR", "PFT", "PAS"])
def test_study_ci_default_is_exact_for_proportions(cli, tiny_csv, measure):
    ref = TINY["study_ci"]["95"]
    doc = pool_json(cli, "--data", tiny_csv, "--outcome", "healing", "--measure", measure)
    assert doc["study_ci"] == "exact"
    assert [s["study_id"] for s in doc["studies"]] == TINY["pooled"]
    assert [s["ci_low"] for s in doc["studies"]] == approx(ref["exact_low"])
    assert [s["ci_high"] for s in doc["studies"]] == approx(ref["exact_high"])
    # the shown estimate is x/n (0/15 is 0, not the corrected 0.5/16) ...
    assert [s["estimate"] for s in doc["studies"]] == approx(
        [x / n for x, n in zip(TINY["x"], TINY["n"])])
    # ... while the pool still uses escalc's yi, vi (same as with --study-ci wald)
    wald = pool_json(cli, "--data", tiny_csv, "--outcome", "healing", "--measure", measure,
                     "--study-ci", "wald")
    assert wald["study_ci"] == "wald"
    assert [s["yi"] for s in doc["studies"]] == approx([s["yi"] for s in wald["studies"]])
    assert doc["estimate"] == approx(wald["estimate"])
    assert any("exact (Clopper-Pearson) interval (--study-ci exact)" in n for n in doc["notes"])


@pytest.mark.parametrize("level", ["95", "90"])
def test_study_ci_wilson(cli, tiny_csv, level):
    ref = TINY["study_ci"][level]
    doc = pool_json(cli, "--data", tiny_csv, "--outcome", "healing", "--measure", "PLO",
                    "--study-ci", "wilson", "--level", level)
    assert doc["study_ci"] == "wilson"
    assert [s["ci_low"] for s in doc["studies"]] == approx(ref["wilson_low"])
    assert [s["ci_high"] for s in doc["studies"]] == approx(ref["wilson_high"])
    exact = pool_json(cli, "--data", tiny_csv, "--outcome", "healing", "--measure", "PLO",
                      "--level", level)
    assert [s["ci_low"] for s in exact["studies"]] == approx(ref["exact_low"])


def test_study_ci_table_drops_the_cc_mark(cli, tiny_csv):
    code, out, err = cli("pool", "--data", tiny_csv, "--outcome", "healing", "--measure", "PLO")
    assert code == 0, err
    assert "0/15  0.000 [0.000, 0.218]" in out and "*" not in out
    code, out, err = cli("pool", "--data", tiny_csv, "--outcome", "healing", "--measure", "PLO",
                         "--study-ci", "wald")
    assert "* cc 0.5 added" in out


def test_two_arm_study_ci_is_wald(cli, tiny_csv):
    doc = pool_json(cli, "--data", tiny_csv, "--outcome", "healing")
    assert doc["measure"] == "RR" and doc["study_ci"] == "wald"


GLMM_KEYS = ("theta", "se", "estimate", "ci_low", "ci_high", "stat", "pval", "tau2", "i2", "h2",
             "q", "q_pval")


def test_glmm_against_rma_glmm(cli, tiny_csv):
    ref = TINY["glmm"]
    doc = pool_json(cli, "--data", tiny_csv, "--outcome", "healing", "--measure", "PLO",
                    "--method", "GLMM")
    assert doc["method"] == "GLMM" and doc["k"] == ref["k"] and doc["q_df"] == ref["q_df"]
    for key in GLMM_KEYS:
        assert doc[key] == pytest.approx(ref[key], rel=1e-6, abs=1e-9), key
    assert doc["pi_method"] == "hts"
    assert doc["pi_low"] == pytest.approx(ref["pi_low_hts"], rel=1e-6)
    assert doc["pi_high"] == pytest.approx(ref["pi_high_hts"], rel=1e-6)
    assert doc["common"] is None
    assert all(s["weight"] is None for s in doc["studies"])
    assert any("GLMM fits the raw counts" in n for n in doc["notes"])
    z = pool_json(cli, "--data", tiny_csv, "--outcome", "healing", "--measure", "PLO",
                  "--method", "GLMM", "--pi", "z")
    assert z["pi_method"] == "z"
    assert z["pi_low"] == pytest.approx(ref["pi_low_z"], rel=1e-6)
    assert z["pi_high"] == pytest.approx(ref["pi_high_z"], rel=1e-6)
    # zero-event study, but the GLMM needs no correction: no guidance for k = 6
    assert doc["guidance"] is None


def test_glmm_tiny_cohorts(cli, tmp_path):
    ref = TINY["glmm_tiny"]
    rows = [dict(study_id=f"C{i + 1}", outcome="closure", events_t=x, n_t=n)
            for i, (x, n) in enumerate(zip(ref["x"], ref["n"]))]
    doc = pool_json(cli, "--data", write_table(tmp_path, rows), "--outcome", "closure",
                    "--method", "GLMM")
    assert doc["measure"] == "PLO"
    for key in ("theta", "se", "ci_low", "ci_high", "q", "q_pval"):
        assert doc[key] == pytest.approx(ref[key], rel=1e-6, abs=1e-9), key
    assert doc["tau2"] == pytest.approx(0.0, abs=1e-8)
    assert doc["pi_low"] == pytest.approx(ref["pi_low_hts"], rel=1e-5)
    assert "GLMM" in doc["guidance"] and "bayes" in doc["guidance"]
    code, out, err = cli("pool", "--data", write_table(tmp_path, rows), "--outcome", "closure",
                         "--method", "GLMM")
    assert code == 0, err
    assert "Random effects" in out and "(GLMM)" in out and "—" in out and "nan" not in out.lower()
    assert all(len(line) <= 80 for line in out.splitlines())


def test_glmm_k1_is_the_studys_own_estimate(cli, tmp_path):
    rows = [dict(study_id="C1", outcome="closure", events_t=3, n_t=5)]
    doc = pool_json(cli, "--data", write_table(tmp_path, rows), "--outcome", "closure",
                    "--method", "GLMM")
    assert doc["k"] == 1 and doc["estimate"] == approx(0.6)


def test_glmm_every_study_without_events_fails_cleanly(cli, tmp_path):
    rows = [dict(study_id=f"C{i}", outcome="closure", events_t=0, n_t=5) for i in range(3)]
    code, out, err = cli("pool", "--data", write_table(tmp_path, rows), "--outcome", "closure",
                         "--method", "GLMM")
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.startswith("msc-meta: error:") and len(err.strip().splitlines()) == 1


def test_guidance_line_in_table_and_json(cli, tmp_path):
    rows = [dict(study_id=s, outcome="closure", events_t=e, n_t=n, events_c=c, n_c=m)
            for s, e, n, c, m in (("A", 3, 10, 0, 10), ("B", 5, 12, 1, 11), ("C", 4, 9, 2, 10))]
    path = write_table(tmp_path, rows)
    doc = pool_json(cli, "--data", path, "--outcome", "closure")
    assert doc["guidance"] == (
        "k = 3 with zero-event arms: normal-approximation random effects of continuity-corrected "
        "RRs are unreliable here; consider `--method MH --cc 0` (Mantel-Haenszel on the raw counts) "
        "or `msc-meta bayes` (weakly informative prior on tau)")
    code, out, err = cli("pool", "--data", path, "--outcome", "closure")
    assert code == 0, err
    text = " ".join(out.split())
    assert "Guidance: k = 3 with zero-event arms" in text
    # with enough studies and no sparse arms there is none
    rows = [dict(study_id=f"S{i}", outcome="closure", events_t=5 + i, n_t=20, events_c=4, n_c=20)
            for i in range(5)]
    doc = pool_json(cli, "--data", write_table(tmp_path, rows, "ok.csv"), "--outcome", "closure")
    assert doc["guidance"] is None
    code, out, err = cli("pool", "--data", write_table(tmp_path, rows, "ok.csv"), "--outcome", "closure")
    assert "Guidance" not in out


def test_glmm_two_arm_odds_ratio(cli, tmp_path):
    """--method GLMM on comparisons: rma.glmm(measure="OR", model="UM.FS"); OR is implied."""
    ref = TINY["glmm_or"]
    path = write_table(tmp_path, ref["rows"])
    doc = pool_json(cli, "--data", path, "--outcome", "closure", "--method", "GLMM")
    assert doc["measure"] == "OR" and doc["method"] == "GLMM"
    assert [s["study_id"] for s in doc["studies"]] == ref["pooled"]
    assert [e["study_id"] for e in doc["excluded"]] == ["Z"]          # double zero, drop00
    fit = ref["fit"]
    assert doc["k"] == fit["k"] and doc["q_df"] == fit["q_df"]
    # lme4 optimises the k study intercepts too and differentiates numerically:
    # its se is ~3e-6 off the exact optimum (tests/test_glmm.py), hence 1e-4
    # for the fit; the heterogeneity tests come from glm() and agree to 1e-6.
    for key in ("theta", "se", "estimate", "ci_low", "ci_high", "stat", "pval", "tau2", "i2", "h2"):
        assert doc[key] == pytest.approx(fit[key], rel=1e-4, abs=1e-9), key
    for key in ("q", "q_pval"):
        assert doc[key] == approx(fit[key]), key
    assert doc["pi_low"] == pytest.approx(fit["pi_low_hts"], rel=1e-4)
    assert doc["pi_high"] == pytest.approx(fit["pi_high_hts"], rel=1e-4)
    assert all(s["weight"] is None for s in doc["studies"]) and doc["common"] is None
    z = pool_json(cli, "--data", path, "--outcome", "closure", "--method", "GLMM", "--pi", "z")
    assert z["pi_low"] == pytest.approx(fit["pi_low_z"], rel=1e-4)
    code, out, err = cli("pool", "--data", path, "--outcome", "closure", "--method", "GLMM")
    assert code == 0, err
    assert "(GLMM)" in out and "nan" not in out.lower()
    assert all(len(line) <= 80 for line in out.splitlines())


def test_glmm_after_combining_a_multi_arm_trial(cli, tmp_path):
    ref = TINY["glmm_or_small_combine"]
    rows = json.loads((FIXTURES / "multiarm.json").read_text())["small"]["rows"]
    path = write_table(tmp_path, rows)
    doc = pool_json(cli, "--data", path, "--outcome", "closure", "--method", "GLMM")
    assert doc["multiarm"] == "combine" and doc["measure"] == "OR"
    assert [s["events_t"] for s in doc["studies"]] == ref["ai"]
    for key in ("theta", "se", "ci_low", "ci_high"):
        assert doc[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-9), key   # lme4, as above
    for key in ("q", "q_pval"):
        assert doc[key] == approx(ref[key]), key
    assert doc["tau2"] == pytest.approx(0.0, abs=1e-8)


def test_glmm_or_with_no_control_events_anywhere_fails_cleanly(cli, curated_path):
    """The curated 208-week cohorts all have a 0/3 control: no finite OR (exit 1, one line)."""
    code, out, err = cli("pool", "--outcome", "fistula_closure", "--timepoint", "208", "--unit",
                         "patient", "--method", "GLMM", "--multiarm", "keep")
    assert code == 1 and out == "" and "Traceback" not in err
    assert "no finite odds ratio" in err and len(err.strip().splitlines()) == 1
