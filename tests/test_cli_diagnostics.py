"""The sensitivity, regress and bias commands end to end (exit codes, JSON keys, values).

The BCG trials (metadat dat.bcg) are written as an outcome table, so the
commands' numbers can be checked against the metafor fixtures of
tests/r/fixtures_diagnostics.R.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
BCG = json.loads((FIXTURES / "diag_bcg_data.json").read_text())
SENS = json.loads((FIXTURES / "diag_sensitivity.json").read_text())
REG = json.loads((FIXTURES / "diag_metareg.json").read_text())
BIAS = json.loads((FIXTURES / "diag_bias.json").read_text())

LOO_KEYS = {"omitted", "k", "theta", "estimate", "ci_low", "ci_high", "tau2", "i2", "q", "pval"}
CUMUL_KEYS = {"added", "k", "theta", "estimate", "ci_low", "ci_high", "tau2", "i2"}
INFL_KEYS = {"study_id", "rstudent", "dffits", "cooks_d", "cov_r", "tau2_del", "qe_del", "hat",
             "weight"}
REG_KEYS = {"method", "k", "coefficients", "tau2", "i2", "r2", "qm", "qm_df", "qm_pval", "qe",
            "qe_df", "qe_pval"}
COEF_KEYS = {"name", "estimate", "se", "stat", "pval", "ci_low", "ci_high"}
BIAS_KEYS = {"k", "egger_z", "egger_pval", "trimfill", "warning"}
TRIMFILL_KEYS = {"k0", "side", "theta", "estimate", "ci_low", "ci_high"}
WARNING = "fewer than 10 studies: small-study tests have too little power to be meaningful"


def close(actual, expected, rel=1e-6, abs_=1e-10):
    expected = np.array([np.nan if x is None else x for x in np.atleast_1d(expected)], dtype=float)
    actual = np.array([np.nan if x is None else x for x in np.atleast_1d(actual)], dtype=float)
    assert actual == pytest.approx(expected, rel=rel, abs=abs_, nan_ok=True)


def case(cases, **match):
    return next(c for c in cases if all(c[k] == v for k, v in match.items()))


def bcg_rows(indices=None):
    rows = []
    for i in range(len(BCG["trial"])) if indices is None else indices:
        rows.append({
            "study_id": f"trial{BCG['trial'][i]}", "outcome": "tb", "timepoint_weeks": "",
            "unit": "patient",
            "events_t": BCG["tpos"][i], "n_t": BCG["tpos"][i] + BCG["tneg"][i],
            "events_c": BCG["cpos"][i], "n_c": BCG["cpos"][i] + BCG["cneg"][i],
            "ablat": BCG["ablat"][i], "year": BCG["year"][i], "alloc": BCG["alloc"][i],
        })
    return rows


@pytest.fixture
def bcg_table(tmp_table):
    return tmp_table(bcg_rows(), name="bcg.csv")


def run_json(run_cli, *args):
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    assert err == ""
    return json.loads(out)


# ---------------------------------------------------------------- sensitivity

def test_sensitivity_json_matches_metafor(run_cli, bcg_table):
    doc = run_json(run_cli, "sensitivity", "--data", bcg_table, "--outcome", "tb", "--order", "year")
    ref = case(SENS["cases"], method="REML", test="z")
    assert doc["k"] == 13 and doc["measure"] == "RR" and doc["order"] == "year"
    assert all(LOO_KEYS <= set(r) for r in doc["leave_one_out"])
    assert all(CUMUL_KEYS <= set(r) for r in doc["cumulative"])
    assert all(INFL_KEYS <= set(r) for r in doc["influence"])
    loo = doc["leave_one_out"]
    assert [r["omitted"] for r in loo] == [f"trial{t}" for t in BCG["trial"]]
    close([r["theta"] for r in loo], ref["leave1out"]["estimate"])
    close([r["estimate"] for r in loo], np.exp(ref["leave1out"]["estimate"]))
    close([r["ci_low"] for r in loo], np.exp(ref["leave1out"]["ci_lb"]))
    close([r["tau2"] for r in loo], ref["leave1out"]["tau2"])
    close([r["i2"] for r in loo], ref["leave1out"]["I2"])
    close([r["q"] for r in loo], ref["leave1out"]["Q"])
    close([r["pval"] for r in loo], ref["leave1out"]["pval"])
    cum = doc["cumulative"]
    assert [r["added"] for r in cum] == ref["cumul_year"]["slab"]
    close([r["theta"] for r in cum], ref["cumul_year"]["estimate"])
    close([r["ci_high"] for r in cum], np.exp(ref["cumul_year"]["ci_ub"]))
    infl = doc["influence"]
    for key, rkey in [("rstudent", "rstudent"), ("dffits", "dffits"), ("cooks_d", "cook_d"),
                      ("cov_r", "cov_r"), ("tau2_del", "tau2_del"), ("qe_del", "QE_del"),
                      ("hat", "hat"), ("weight", "weight")]:
        close([r[key] for r in infl], ref["influence"][rkey])
    assert [r["influential"] for r in infl] == ref["influence"]["inf"]


def test_sensitivity_hksj_and_fe(run_cli, bcg_table):
    doc = run_json(run_cli, "sensitivity", "--data", bcg_table, "--outcome", "tb", "--hksj")
    ref = case(SENS["cases"], method="REML", test="knha")
    assert doc["test"] == "t" and doc["order"] == "table order"
    close([r["ci_low"] for r in doc["leave_one_out"]], np.exp(ref["leave1out"]["ci_lb"]))
    close([r["rstudent"] for r in doc["influence"]], ref["influence"]["rstudent"])
    doc = run_json(run_cli, "sensitivity", "--data", bcg_table, "--outcome", "tb", "--method", "FE")
    ref = case(SENS["cases"], method="FE", test="z")
    close([r["cooks_d"] for r in doc["influence"]], ref["influence"]["cook_d"])
    assert [r["influential"] for r in doc["influence"]] == ref["influence"]["inf"]


def test_sensitivity_table_output(run_cli, bcg_table):
    code, out, err = run_cli("sensitivity", "--data", bcg_table, "--outcome", "tb", "--order", "ablat")
    assert code == 0, err
    assert "Leave-one-out" in out and "Cumulative" in out and "by ablat, ascending" in out
    assert "Influence" in out and "trial13" in out


def test_sensitivity_needs_two_studies(run_cli, tmp_table):
    path = tmp_table(bcg_rows([0]))
    code, out, err = run_cli("sensitivity", "--data", path, "--outcome", "tb")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "at least 2" in err and "Traceback" not in err


def test_sensitivity_unknown_order_column(run_cli, bcg_table):
    code, _, err = run_cli("sensitivity", "--data", bcg_table, "--outcome", "tb", "--order", "latitude")
    assert code == 2 and "latitude" in err and err.count("\n") == 1


# ---------------------------------------------------------------- regress

@pytest.mark.parametrize("mods,method,test", [
    ("ablat", "REML", "z"), ("ablat", "DL", "knha"), ("ablat + year", "ML", "z"),
    ("alloc", "REML", "knha"), ("alloc", "FE", "z"), ("log10(ablat)", "REML", "z"),
])
def test_regress_json_matches_metafor(run_cli, bcg_table, mods, method, test):
    args = ["regress", "--data", bcg_table, "--outcome", "tb", "--mods", mods, "--method", method]
    if test == "knha":
        args.append("--hksj")
    doc = run_json(run_cli, *args)
    ref = case(REG["cases"], mods=mods, method=method, test=test)
    assert REG_KEYS <= set(doc)
    assert all(set(c) == COEF_KEYS for c in doc["coefficients"])
    assert doc["coefficients"][0]["name"] == "intercept"
    assert doc["k"] == 13 and doc["method"] == method
    close([c["estimate"] for c in doc["coefficients"]], ref["beta"])
    close([c["se"] for c in doc["coefficients"]], ref["se"])
    close([c["stat"] for c in doc["coefficients"]], ref["zval"])
    close([c["pval"] for c in doc["coefficients"]], ref["pval"])
    close([c["ci_low"] for c in doc["coefficients"]], ref["ci_lb"])
    close(doc["tau2"], ref["tau2"])
    close(doc["i2"], ref["I2"])
    close(doc["r2"], ref["R2"])
    close(doc["qm"], ref["QM"])
    assert doc["qm_df"] == ref["QMdf"][0]
    close(doc["qm_pval"], ref["QMp"])
    close(doc["qe"], ref["QE"])
    assert doc["qe_df"] == ref["QEdf"]
    close(doc["qe_pval"], ref["QEp"])


def test_regress_categorical_names(run_cli, bcg_table):
    doc = run_json(run_cli, "regress", "--data", bcg_table, "--outcome", "tb", "--mods", "alloc")
    assert [c["name"] for c in doc["coefficients"]] == ["intercept", "alloc[random]",
                                                        "alloc[systematic]"]


def test_regress_missing_moderator_is_excluded_with_reason(run_cli, tmp_table):
    rows = bcg_rows()
    rows[3]["ablat"] = ""
    path = tmp_table(rows)
    doc = run_json(run_cli, "regress", "--data", path, "--outcome", "tb", "--mods", "ablat")
    assert doc["k"] == 12
    assert doc["excluded"] == [{"study_id": "trial4", "reason": "missing moderator value 'ablat'",
                                "row": 5}]
    assert any("missing moderator" in n for n in doc["notes"])


@pytest.mark.parametrize("mods,message", [
    ("latitude", "latitude"), ("log10(alloc)", "alloc"), ("ablat*year", "cannot read"),
    ("", "empty"),
])
def test_regress_bad_mods(run_cli, bcg_table, mods, message):
    code, out, err = run_cli("regress", "--data", bcg_table, "--outcome", "tb", "--mods", mods)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_regress_refuses_mh(run_cli, bcg_table):
    code, _, err = run_cli("regress", "--data", bcg_table, "--outcome", "tb", "--mods", "ablat",
                           "--method", "MH")
    assert code == 2 and "inverse-variance" in err


def test_regress_table_output(run_cli, bcg_table):
    code, out, err = run_cli("regress", "--data", bcg_table, "--outcome", "tb", "--mods",
                             "ablat + alloc", "--hksj")
    assert code == 0, err
    assert "intercept" in out and "alloc[random]" in out and "F(3, 9)" in out
    assert "the RR is multiplied by" in out


# ---------------------------------------------------------------- bias

@pytest.mark.parametrize("method,test", [("REML", "z"), ("FE", "z"), ("REML", "knha")])
def test_bias_json_matches_metafor(run_cli, bcg_table, method, test):
    args = ["bias", "--data", bcg_table, "--outcome", "tb", "--method", method]
    if test == "knha":
        args.append("--hksj")
    doc = run_json(run_cli, *args)
    ref = case(BIAS["cases"], data="bcg", method=method, test=test)
    assert BIAS_KEYS <= set(doc) and TRIMFILL_KEYS <= set(doc["trimfill"])
    assert doc["k"] == 13 and doc["warning"] is None
    close(doc["egger_z"], ref["regtest"]["zval"])
    close(doc["egger_pval"], ref["regtest"]["pval"])
    tf = doc["trimfill"]
    assert tf["k0"] == ref["trimfill"]["k0"] and tf["side"] == ref["trimfill"]["side"]
    close(tf["theta"], ref["trimfill"]["beta"])
    close(tf["estimate"], np.exp(ref["trimfill"]["beta"]))
    close(tf["ci_low"], np.exp(ref["trimfill"]["ci_lb"]))
    close(tf["ci_high"], np.exp(ref["trimfill"]["ci_ub"]))
    assert len(doc["funnel"]["studies"]) == 13
    assert len(doc["funnel"]["filled"]) == tf["k0"]


def test_bias_warns_below_ten_studies(run_cli, tmp_table):
    path = tmp_table(bcg_rows(range(6)))
    doc = run_json(run_cli, "bias", "--data", path, "--outcome", "tb")
    assert doc["k"] == 6 and doc["warning"] == WARNING
    assert doc["egger_z"] is not None and doc["trimfill"] is not None
    code, out, _ = run_cli("bias", "--data", path, "--outcome", "tb")
    assert code == 0 and "fewer than 10 studies" in out


def test_bias_with_too_few_studies_still_answers(run_cli, tmp_table):
    path = tmp_table(bcg_rows(range(2)))
    doc = run_json(run_cli, "bias", "--data", path, "--outcome", "tb")
    assert doc["k"] == 2 and doc["warning"] == WARNING
    assert doc["egger_z"] is None and doc["egger_pval"] is None and doc["trimfill"] is None
    assert any("Egger" in n for n in doc["notes"])


# ---------------------------------------------------------------- the curated table

HEADLINE = ["--outcome", "fistula_closure", "--timepoint", "208", "--unit", "patient"]


def test_curated_dose_response(run_cli, curated_path):
    doc = run_json(run_cli, "regress", *HEADLINE, "--mods", "log10(dose_cells)")
    assert REG_KEYS <= set(doc)
    assert [c["name"] for c in doc["coefficients"]] == ["intercept", "log10(dose_cells)"]
    assert doc["k"] == 3
    assert any("share one control arm" in n for n in doc["notes"])
    assert any("fewer than 10 studies" in n for n in doc["notes"])


def test_curated_sensitivity_and_bias(run_cli, curated_path):
    # the three dose cohorts share one placebo arm: split it so that each cohort stays a study
    doc = run_json(run_cli, "sensitivity", *HEADLINE, "--multiarm", "split", "--order", "dose_cells")
    assert len(doc["leave_one_out"]) == 3 and doc["order"] == "dose_cells"
    assert [r["k"] for r in doc["cumulative"]] == [1, 2, 3]
    doc = run_json(run_cli, "bias", *HEADLINE, "--multiarm", "split")
    assert doc["k"] == 3 and doc["warning"] == WARNING
    for command in ("sensitivity", "bias"):
        code, out, err = run_cli(command, *HEADLINE, "--multiarm", "split")
        assert code == 0, err
        assert out


def test_curated_nothing_to_analyse(run_cli, curated_path):
    code, out, err = run_cli("sensitivity", "--outcome", "fistula_closure", "--timepoint", "24",
                             "--unit", "patient")
    assert code == 2 and out == "" and err.count("\n") == 1


def test_bad_usage_in_a_real_process(run_cli_process, bcg_table):
    code, out, err = run_cli_process("regress", "--data", bcg_table, "--outcome", "tb",
                                     "--mods", "log10(alloc)")
    assert code == 2 and out == ""
    assert err.startswith("msc-meta: error:") and "Traceback" not in err
