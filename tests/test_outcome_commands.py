"""`sensitivity`, `bias` and `regress` on outcome types beyond counts equal metafor, through the CLI.

Reference: tests/fixtures/outcome_commands.json, written by tests/r/fixtures_outcome_commands.R
(which also writes the input tables under tests/fixtures/outcome_commands/): leave1out(),
cumul(), influence(), regtest(), trimfill() and rma(mods=) after rma(method="REML") on escalc()
of dat.normand1999 (MD, SMD), Morris (2008) (MC, SMCC), dat.hart1999 (IRR), dat.molloy2014
(ZCOR) and the log risk ratios of dat.bcg given as yi, vi (GEN --scale log). Every key the
commands' --json shares with metafor is compared, to 1e-6 relative.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli_in_process

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "outcome_commands.json").read_text())
CASES = {case["name"]: case for case in FIXTURE["cases"]}
RTOL = 1e-6


def close(actual, expected, key=""):
    expected = np.array([np.nan if x is None else x for x in np.atleast_1d(expected)], dtype=float)
    actual = np.array([np.nan if x is None else x for x in np.atleast_1d(actual)], dtype=float)
    # tau² = 0 (hart1999; some cumulative fits of molloy2014): an absolute tolerance there,
    # relative elsewhere. At that boundary metafor's Fisher scoring stops at tau² ~ 2e-13
    # (below its 1e-12 threshold) where the REML estimate is 0; I² (in percent) is tau²
    # times about 1e4 there, so it gets 1e-6 percentage points.
    absolute = 1e-6 if key in ("i2", "h2") else 1e-10
    assert actual == pytest.approx(expected, rel=RTOL, abs=absolute, nan_ok=True), key


def run_json(*args):
    here = os.getcwd()
    os.chdir(ROOT)      # the fixture names the tables relative to the repository root
    try:
        code, out, err = run_cli_in_process(*args, "--json")
    finally:
        os.chdir(here)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    return CASES[request.param]


@pytest.fixture(scope="module")
def sensitivity(case):
    return run_json("sensitivity", *case["args"])


def test_sensitivity_leave_one_out(case, sensitivity):
    ref, loo = case["leave1out"], sensitivity["leave_one_out"]
    assert [r["omitted"] for r in loo] == case["study_id"]
    assert all(r["k"] == case["full"]["k"] - 1 for r in loo)
    for key, rkey in [("theta", "estimate"), ("se", "se"), ("stat", "zval"), ("pval", "pval"),
                      ("theta_ci_low", "ci_lb"), ("theta_ci_high", "ci_ub"), ("q", "Q"),
                      ("q_pval", "Qp"), ("tau2", "tau2"), ("i2", "I2"), ("h2", "H2"),
                      ("estimate", "estimate_natural"), ("ci_low", "ci_lb_natural"),
                      ("ci_high", "ci_ub_natural")]:
        close([r[key] for r in loo], ref[rkey], key)


def test_sensitivity_cumulative(case, sensitivity):
    ref, cum = case["cumul"], sensitivity["cumulative"]
    # metafor cumul(res) adds the studies in data order (its slab 1, ..., k): the table order
    assert ref["slab"] == [str(i) for i in range(1, case["full"]["k"] + 1)]
    assert [r["added"] for r in cum] == case["study_id"]
    assert [r["k"] for r in cum] == list(range(1, case["full"]["k"] + 1))
    for key, rkey in [("theta", "estimate"), ("se", "se"), ("stat", "zval"), ("pval", "pval"),
                      ("q", "Q"), ("tau2", "tau2"), ("i2", "I2"),
                      ("estimate", "estimate_natural"), ("ci_low", "ci_lb_natural"),
                      ("ci_high", "ci_ub_natural")]:
        close([r[key] for r in cum], ref[rkey], key)


def test_sensitivity_influence(case, sensitivity):
    ref, infl = case["influence"], sensitivity["influence"]
    assert [r["study_id"] for r in infl] == case["study_id"]
    for key, rkey in [("rstudent", "rstudent"), ("dffits", "dffits"), ("cooks_d", "cook_d"),
                      ("cov_r", "cov_r"), ("tau2_del", "tau2_del"), ("qe_del", "QE_del"),
                      ("hat", "hat"), ("weight", "weight"), ("dfbetas", "dfbs")]:
        close([r[key] for r in infl], ref[rkey], key)
    assert [r["influential"] for r in infl] == ref["inf"]
    pooled = sensitivity["pooled"]
    close(pooled["theta"], case["full"]["beta"], "theta")
    close(pooled["tau2"], case["full"]["tau2"], "tau2")


def test_bias_egger_and_trimfill(case):
    doc = run_json("bias", *case["args"])
    assert doc["k"] == case["full"]["k"]
    close(doc["egger_z"], case["regtest"]["zval"], "egger_z")
    close(doc["egger_pval"], case["regtest"]["pval"], "egger_pval")
    close(doc["egger"]["limit_estimate"], case["regtest"]["est"], "limit_estimate")
    close(doc["egger"]["limit_ci_low"], case["regtest"]["ci_lb"], "limit_ci_low")
    ref, tf = case["trimfill"], doc["trimfill"]
    assert tf["k0"] == ref["k0"] and tf["side"] == ref["side"] and tf["k"] == ref["k"]
    for key, rkey in [("theta", "beta"), ("se", "se"), ("theta_ci_low", "ci_lb"),
                      ("theta_ci_high", "ci_ub"), ("tau2", "tau2"), ("se_k0", "se_k0"),
                      ("estimate", "estimate_natural"), ("ci_low", "ci_lb_natural"),
                      ("ci_high", "ci_ub_natural")]:
        close(tf[key], ref[rkey], key)
    assert (doc["warning"] is not None) == (case["full"]["k"] < 10)
    close([s["yi"] for s in doc["funnel"]["studies"]], case["yi"], "yi")
    close([s["sei"] for s in doc["funnel"]["studies"]], np.sqrt(case["vi"]), "sei")


def test_regress_with_a_moderator(case):
    doc = run_json("regress", *case["args"], "--mods", case["mods"])
    ref = case["regress"]
    assert doc["k"] == ref["k"] and doc["method"] == "REML"
    assert len(doc["coefficients"]) == len(ref["names"])
    assert doc["coefficients"][0]["name"] == "intercept"
    for key, rkey in [("estimate", "beta"), ("se", "se"), ("stat", "zval"), ("pval", "pval"),
                      ("ci_low", "ci_lb"), ("ci_high", "ci_ub")]:
        close([c[key] for c in doc["coefficients"]], ref[rkey], key)
    for key, rkey in [("tau2", "tau2"), ("i2", "I2"), ("h2", "H2"), ("r2", "R2"), ("qm", "QM"),
                      ("qm_pval", "QMp"), ("qe", "QE"), ("qe_pval", "QEp")]:
        close(doc[key], ref[rkey], key)
    assert doc["qm_df"] == ref["QMdf"][0] and doc["qe_df"] == ref["QEdf"]
    close([s["yi"] for s in doc["studies"]], case["yi"], "yi")


# ---------------------------------------------------------------- export

POOL = {case["name"]: case for case in json.loads(
    (ROOT / "tests" / "fixtures" / "cli_outcomes.json").read_text())["cases"]}


def _export(*args):
    code, out, err = run_cli_in_process("export", *args, "-o", "-", "--format", "json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("name, inputs", [
    ("normand1999_MD", ("mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c")),
    ("normand1999_SMD", ("mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c")),
    ("hart1999_IRR", ("events_t", "time_t", "events_c", "time_c")),
    ("bcg_GEN_log", ("effect", "effect_ci_low", "effect_ci_high")),
])
def test_export_carries_the_input_columns_and_metafors_numbers(name, inputs):
    """cli_outcomes.json (tests/r/fixtures_cli_outcomes.R): rma(REML) on escalc()."""
    import csv
    import shlex

    ref = POOL[name]
    args = shlex.split(ref["command"])[1:-1]           # pool's arguments without --json
    rows = _export(*[str(ROOT / a) if a.endswith(".csv") else a for a in args])
    studies = [r for r in rows if r["row_type"] == "study"]
    pooled = next(r for r in rows if r["row_type"] == "pooled" and r["model"] == "random")
    with open(ROOT / ref["csv"], encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [s["study_id"] for s in studies] == ref["studies"]["study_id"]
    for study, given in zip(studies, table):
        for column in inputs:
            assert study[column] == pytest.approx(float(given[column]), rel=1e-15), column
    close([s["yi"] for s in studies], ref["studies"]["yi"], "yi")
    close([s["vi"] for s in studies], ref["studies"]["vi"], "vi")
    close([s["weight"] for s in studies], ref["studies"]["weight"], "weight")
    for key in ("k", "theta", "se", "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2",
                "i2", "h2", "q", "q_pval", "stat", "pval"):
        close(pooled[key], ref[key], key)
    assert pooled["measure"] == ref["name"].split("_")[1]
    assert (pooled.get("scale") == "log") == name.startswith("bcg")


def test_export_all_of_a_table_mixing_outcome_types(tmp_path):
    """Each analysis gets the measure its rows imply; the CSV has the union of the columns,
    blank where a row's type has none, and a count-only export keeps its old columns."""
    import csv
    import io

    from msc_meta.report.export import COLUMNS

    path = tmp_path / "mixed.csv"
    path.write_text("study_id,outcome,events_t,n_t,events_c,n_c,mean_t,sd_t,mean_c,sd_c\n"
                    "a,healing,3,10,5,10,,,,\n"
                    "b,healing,4,12,2,11,,,,\n"
                    "a,pain,,20,,21,5.1,1.2,6.0,1.3\n"
                    "b,pain,,30,,28,4.8,1.1,5.9,1.5\n", encoding="utf-8")
    code, out, err = run_cli_in_process("export", "--data", path, "--all", "-o", "-")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    header = out.splitlines()[0].split(",")
    assert tuple(header[:len(COLUMNS)]) == COLUMNS
    assert header[len(COLUMNS):] == ["mean_t", "sd_t", "mean_c", "sd_c"]
    measures = {r["outcome"]: r["measure"] for r in rows if r["row_type"] == "pooled"}
    assert measures == {"healing": "RR", "pain": "MD"}
    pain = [r for r in rows if r["outcome"] == "pain" and r["row_type"] == "study"]
    assert [r["mean_t"] for r in pain] == ["5.1", "4.8"] and [r["events_t"] for r in pain] == ["", ""]
    assert float(pain[0]["yi"]) == pytest.approx(5.1 - 6.0, rel=1e-12)
    healing = [r for r in rows if r["outcome"] == "healing" and r["row_type"] == "study"]
    assert [r["mean_t"] for r in healing] == ["", ""] and [r["events_t"] for r in healing] == ["3", "4"]
    code, out, err = run_cli_in_process("export", "--data", path, "--outcome", "healing", "-o", "-")
    assert code == 0 and tuple(out.splitlines()[0].split(",")) == COLUMNS


# ---------------------------------------------------------------- report

@pytest.mark.parametrize("name", sorted(POOL))
def test_report_pools_every_outcome_type(tmp_path, name):
    """The HTML report of a non-count outcome: the metafor pool (cli_outcomes.json) in the
    headline and the tables, each study's input columns, and the forest plot drawn or, while
    the figure does not draw that type, a note saying so (never a refusal)."""
    import shlex

    from msc_meta.report.forest_table import fmt_ci

    ref = POOL[name]
    args = [str(ROOT / a) if a.endswith(".csv") else a for a in shlex.split(ref["command"])[1:-1]]
    out = tmp_path / "report.html"
    code, _, err = run_cli_in_process("report", *args, "-o", out)
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    assert fmt_ci(ref["estimate"], ref["ci_low"], ref["ci_high"]) in text
    assert "<figure><svg" in text          # the forest plot draws every outcome type
    assert "Sensitivity: leave-one-out" in text and "Not run" not in text
    if name.startswith("normand"):
        assert "55 (47) 155" in text and "75 (64) 156" in text
    if name.startswith("hart"):
        assert "9/413" in text and "19/398" in text


def test_units_from_the_outcome_units_column(tmp_path):
    """MD is in the outcome's units: the outcome_units column (days) labels it; SMD is not."""
    table = ROOT / "tests" / "fixtures" / "outcome_commands" / "normand1999.csv"
    base = ("--data", table, "--outcome", "length_of_stay")
    code, out, err = run_cli_in_process("sensitivity", *base)
    assert code == 0 and "MD (days) [95% CI]" in out and "All studies: MD (days)" in out
    code, out, err = run_cli_in_process("sensitivity", *base, "--measure", "SMD")
    assert code == 0 and "days" not in out
    code, out, err = run_cli_in_process("bayes", *base, "--prior-tau", "halfnormal:30")
    assert code == 0 and "Overall effect (MD, days)" in out
    code, out, err = run_cli_in_process("report", *base, "-o", tmp_path / "r.html")
    assert code == 0 and "MD (days) [95% CI]" in (tmp_path / "r.html").read_text(encoding="utf-8")
    code, out, err = run_cli_in_process("sensitivity", "--data", ROOT / POOL["normand1999_MD"]["csv"],
                                        "--outcome", "length_of_stay")
    assert code == 0 and "MD [95% CI]" in out      # no outcome_units column: no units


# ---------------------------------------------------------------- pool_many

def test_pool_many_pools_every_outcome_type_as_pool_and_metafor():
    """One DataFrame holding five outcome types, one group per outcome: each group gets the
    measure its columns imply and equals `pool` on that group alone and metafor (rma REML)."""
    import pandas as pd

    import msc_meta

    files = ("normand1999", "morris2008", "hart1999", "molloy2014", "bcg_yi_vi")
    frame = pd.concat([pd.read_csv(ROOT / "tests" / "fixtures" / "outcome_commands" / f"{f}.csv")
                       for f in files], ignore_index=True)
    pooled = msc_meta.pool_many(frame, by="outcome").set_index("outcome")
    assert pooled["error"].isna().all(), pooled["error"].tolist()
    expected = {"length_of_stay": ("MD", "normand1999_MD"), "performance": ("MC", "morris2008_MC"),
                "stroke": ("IRR", "hart1999_IRR"), "adherence": ("ZCOR", "molloy2014_ZCOR"),
                "tb": ("GEN", "bcg_GEN_log")}
    for outcome, (measure, name) in expected.items():
        row, ref = pooled.loc[outcome], CASES[name]["full"]
        assert row["measure"] == measure and row["k"] == ref["k"]
        close(row["theta"], ref["beta"], "theta")
        close(row["se"], ref["se"], "se")
        close(row["tau2"], ref["tau2"], "tau2")
        close(row["i2"], ref["I2"], "i2")
        close(row["q"], ref["QE"], "q")
        doc = run_json("pool", *CASES[name]["args"][:4])      # --data, --outcome: the default measure
        for key in ("theta", "se", "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2",
                    "i2", "h2", "q", "q_pval", "stat", "pval"):
            assert row[key] == pytest.approx(doc[key], rel=1e-12, abs=1e-15), (outcome, key)
    # generic effects on the log scale (--scale log): back-transformed by exp
    gen = frame[frame["outcome"] == "tb"].dropna(axis=1, how="all")
    logged = msc_meta.pool_many(gen, by="outcome", scale="log").iloc[0]
    assert logged["error"] is None
    assert logged["estimate"] == pytest.approx(np.exp(CASES["bcg_GEN_log"]["full"]["beta"]), rel=RTOL)
    # --scale given to a table of means: that group reports why, the others are unaffected
    mixed = msc_meta.pool_many(frame, by="outcome", scale="log").set_index("outcome")
    assert "scale" in mixed.loc["length_of_stay", "error"]
    assert mixed.loc["tb", "estimate"] == pytest.approx(logged["estimate"], rel=1e-12)


# ---------------------------------------------------------------- counts only: fragility, GLMM

@pytest.mark.parametrize("name", sorted(CASES))
def test_fragility_and_glmm_say_they_apply_to_counts_only(name):
    """One line, exit 2, naming the rows' outcome type and what to use instead."""
    from msc_meta import registry

    args = CASES[name]["args"]
    data, outcome = args[1], args[3]
    measure = args[5]
    family = registry.measure(measure).family
    code, out, err = run_cli_in_process("fragility", "--data", ROOT / data, "--outcome", outcome)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert f"family {family}" in err and registry.FAMILIES[family] in err
    assert "2x2" in err and "msc-meta pool" in err and "msc-meta sensitivity" in err
    code, out, err = run_cli_in_process("pool", "--data", ROOT / data, "--outcome", outcome,
                                        "--method", "GLMM")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "GLMM" in err and "event counts only" in err and f"family {family}" in err
    assert "--method FE" in err and "REML" in err


def test_pool_table_shows_the_outcome_units():
    table = ROOT / "tests" / "fixtures" / "outcome_commands" / "normand1999.csv"
    code, out, err = run_cli_in_process("pool", "--data", table, "--outcome", "length_of_stay")
    assert code == 0 and "MD (days) [95% CI]" in out
    code, out, err = run_cli_in_process("pool", "--data", table, "--outcome", "length_of_stay",
                                        "--measure", "ROM")
    assert code == 0 and "days" not in out            # a ratio of means has no units
