"""`msc-meta pool` on outcome types beyond counts equals metafor, through the command line.

Reference: tests/fixtures/cli_outcomes.json, written by tests/r/fixtures_cli_outcomes.R (which
also writes the input tables under tests/fixtures/cli_outcomes/ from metadat): rma(method="REML")
on escalc() of dat.normand1999 (MD, SMD, ROM), dat.hart1999 (IRR) and the rounded risk ratios
of dat.bcg given as estimates with their CIs (GEN, --scale log).
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "cli_outcomes.json").read_text())
CASES = {case["name"]: case for case in FIXTURE["cases"]}
KEYS = ("k", "theta", "se", "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau",
        "i2", "h2", "q", "q_df", "q_pval", "stat", "pval")
RTOL = 1e-6
INPUTS = {
    "normand1999": ("mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c"),
    "hart1999": ("events_t", "time_t", "events_c", "time_c"),
    "bcg": ("yi", "vi", "sei", "effect", "effect_ci_low", "effect_ci_high", "effect_level"),
}


def _close(ours, theirs, key):
    if theirs is None:
        assert ours is None, key
        return
    # tau2 = 0 (hart1999): an absolute tolerance there, relative elsewhere
    assert ours == pytest.approx(theirs, rel=RTOL, abs=1e-12), (key, ours, theirs)


@pytest.fixture(scope="module")
def documents():
    from tests.conftest import run_cli_in_process
    import os

    out = {}
    here = os.getcwd()
    os.chdir(ROOT)      # the commands name the tables relative to the repository root
    try:
        for name, case in CASES.items():
            code, text, err = run_cli_in_process(*shlex.split(case["command"]))
            assert code == 0, (name, err)
            out[name] = json.loads(text)
    finally:
        os.chdir(here)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_pool_equals_metafor_on_every_key(documents, name):
    doc, ref = documents[name], CASES[name]
    assert doc["method"] == "REML" and doc["excluded"] == []
    for key in KEYS:
        _close(doc[key], ref[key], key)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_study_equals_escalc_and_its_weight(documents, name):
    doc, ref = documents[name], CASES[name]["studies"]
    assert [s["study_id"] for s in doc["studies"]] == ref["study_id"]
    for i, study in enumerate(doc["studies"]):
        _close(study["yi"], ref["yi"][i], "yi")
        _close(study["vi"], ref["vi"][i], "vi")
        _close(study["weight"], ref["weight"][i], "weight")


@pytest.mark.parametrize("name", sorted(CASES))
def test_study_entries_carry_the_input_columns_of_their_type(documents, name):
    columns = INPUTS[name.split("_")[0]]
    for study in documents[name]["studies"]:
        assert set(columns) <= set(study)
        if "events_t" not in columns:
            assert "events_t" not in study


def test_the_default_measure_follows_the_columns(run_cli):
    code, out, err = run_cli("pool", "--data", ROOT / CASES["normand1999_MD"]["csv"],
                             "--outcome", "length_of_stay", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["measure"] == "MD"
    assert doc["theta"] == pytest.approx(CASES["normand1999_MD"]["theta"], rel=RTOL)


def test_the_terminal_table_shows_means_per_arm(run_cli):
    code, out, err = run_cli("pool", "--data", ROOT / CASES["normand1999_SMD"]["csv"],
                             "--outcome", "length_of_stay", "--measure", "SMD")
    assert code == 0, err
    assert "55 (47) 155" in out and "75 (64) 156" in out and "mean (SD) n" in out


def test_rates_show_events_over_person_time(run_cli):
    code, out, err = run_cli("pool", "--data", ROOT / CASES["hart1999_IRR"]["csv"],
                             "--outcome", "stroke")
    assert code == 0, err
    assert "9/413" in out and "19/398" in out and "IRR" in out


def test_an_effect_with_its_ci_needs_the_scale(run_cli):
    code, out, err = run_cli("pool", "--data", ROOT / CASES["bcg_GEN_log"]["csv"],
                             "--outcome", "tb", "--json")
    assert code == 2 and "--scale log" in err


def _mixed(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("study_id,outcome,events_t,n_t,events_c,n_c,mean_t,sd_t,mean_c,sd_c\n"
                    "a,x,3,10,5,10,,,,\n"
                    "b,x,,20,,21,5.1,1.2,6.0,1.3\n"
                    "c,x,,30,,28,4.8,1.1,5.9,1.5\n", encoding="utf-8")
    return path


def test_a_mix_of_types_asks_for_the_measure(run_cli, tmp_path):
    code, out, err = run_cli("pool", "--data", _mixed(tmp_path), "--outcome", "x")
    assert code == 2
    assert "counts" in err and "means_two" in err and "--measure" in err
    assert len(err.strip().splitlines()) == 1


def test_rows_of_another_type_are_left_out_with_the_reason(run_cli, tmp_path):
    code, out, err = run_cli("pool", "--data", _mixed(tmp_path), "--outcome", "x",
                             "--measure", "SMD", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["k"] == 2
    (left,) = doc["excluded"]
    assert left["study_id"] == "a" and "not pooled with SMD" in left["reason"]


@pytest.mark.parametrize("method", ["MH", "PETO", "GLMM"])
def test_count_methods_are_refused_for_other_types(run_cli, method):
    code, out, err = run_cli("pool", "--data", ROOT / CASES["normand1999_MD"]["csv"],
                             "--outcome", "length_of_stay", "--method", method)
    assert code == 2 and "counts" in err and "means" in err


def test_fragility_is_refused_for_other_types(run_cli):
    code, out, err = run_cli("fragility", "--data", ROOT / CASES["normand1999_MD"]["csv"],
                             "--outcome", "length_of_stay")
    assert code == 2 and "means_two" in err


def test_an_assumed_r_is_used_and_reported(run_cli, tmp_path):
    from msc_meta import effects

    path = tmp_path / "paired.csv"
    path.write_text("study_id,outcome,mean_pre,mean_post,sd_pre,sd_post,n_t,r\n"
                    "a,x,10,12,3,3.5,15,\n"
                    "b,x,11,12.5,3,3,25,0.7\n"
                    "c,x,9,11.5,2.5,3.1,30,\n", encoding="utf-8")
    code, out, err = run_cli("pool", "--data", path, "--outcome", "x", "--r", "0.5",
                             "--method", "FE", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["measure"] == "MC" and doc["k"] == 3
    assert any("r = 0.5 assumed" in n and "(a, c)" in n for n in doc["notes"])
    es = effects.compute("MC", {"mean_post": [12, 12.5, 11.5], "mean_pre": [10, 11, 9],
                                "sd_pre": [3, 3, 2.5], "sd_post": [3.5, 3, 3.1],
                                "n_t": [15, 25, 30], "r": [math.nan, 0.7, math.nan]}, r=0.5)
    w = 1 / es.vi
    assert doc["theta"] == pytest.approx(float((w * es.yi).sum() / w.sum()), rel=1e-12)
    code, out, err = run_cli("pool", "--data", path, "--outcome", "x", "--r", "1.5")
    assert code == 2


def test_the_forest_plot_draws_means(run_cli, tmp_path):
    """Outcome types beyond counts are drawn (issue 15): Normand 1999 as metafor pools it."""
    import xml.etree.ElementTree as ET

    from msc_meta.plot.forest import fmt_interval

    data = ROOT / CASES["normand1999_MD"]["csv"]
    code, out, err = run_cli("pool", "--data", data, "--outcome", "length_of_stay", "--json")
    assert code == 0, err
    doc = json.loads(out)
    code, out, err = run_cli("forest", "-o", tmp_path / "f.svg", "--data", data,
                             "--outcome", "length_of_stay")
    assert code == 0 and "Traceback" not in err, err
    root = ET.parse(tmp_path / "f.svg").getroot()
    text = " ".join("".join(el.itertext()) for el in root.iter() if el.tag.endswith("text"))
    assert "Mean difference" in text and "Mean" in text.split() and "SD" in text.split()
    assert fmt_interval(doc["estimate"], doc["ci_low"], doc["ci_high"]) in text


def test_an_sem_is_turned_into_the_sd_and_said(run_cli, tmp_path):
    """sd = se * sqrt(n) (Cochrane Handbook 6.5.2.2): the same pool as with the SD, and a note."""
    rows = [("A", 5.1, 1.2, 20, 4.0, 1.1, 22), ("B", 4.8, 1.5, 30, 4.1, 1.4, 28),
            ("C", 6.0, 2.0, 15, 4.2, 1.9, 16)]
    sd_csv = tmp_path / "sd.csv"
    sd_csv.write_text("study_id,outcome,mean_t,sd_t,n_t,mean_c,sd_c,n_c\n" + "".join(
        f"{s},x,{m1},{s1},{n1},{m2},{s2},{n2}\n" for s, m1, s1, n1, m2, s2, n2 in rows))
    se_csv = tmp_path / "se.csv"
    se_csv.write_text("study_id,outcome,mean_t,se_t,n_t,mean_c,sd_c,n_c\n" + "".join(
        f"{s},x,{m1},{s1 / math.sqrt(n1)!r},{n1},{m2},{s2},{n2}\n" for s, m1, s1, n1, m2, s2, n2 in rows))
    docs = []
    for path in (sd_csv, se_csv):
        code, out, err = run_cli("pool", "--data", path, "--outcome", "x", "--measure", "SMD", "--json")
        assert code == 0, err
        docs.append(json.loads(out))
    for key in ("theta", "se", "tau2", "q"):
        assert docs[1][key] == pytest.approx(docs[0][key], rel=1e-12, abs=1e-15)
    assert any("sd_t from the SEM" in n and "(A, B, C)" in n for n in docs[1]["notes"])
    assert not any("SEM" in n for n in docs[0]["notes"])
