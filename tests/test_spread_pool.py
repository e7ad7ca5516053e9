"""`pool` on rows whose spread is given another way equals metafor after the same conversions.

Reference: tests/fixtures/spread_pool.json, written by tests/r/fixtures_spread.R, which converts
SEMs, 95% CIs of means, medians with IQR/range (metafor 4.0-0 conv.fivenum, method "wan2014")
and paired t statistics / p-values in R on their own and pools with escalc() + rma(REML).
Also: each converted study names its conversion (notes and the study's ``conversion`` key),
and a pool resting on the assumed r (--r) carries the sensitivity over r = 0.2/0.5/0.8.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "spread_pool.json").read_text())
CASES = {case["name"]: case for case in FIXTURE["cases"]}
KEYS = ("k", "theta", "se", "estimate", "ci_low", "ci_high", "tau2", "i2", "q", "q_pval", "stat", "pval")


def _close(ours, theirs, what):
    assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-10), what


@pytest.fixture(scope="module")
def documents():
    from conftest import run_cli_in_process

    out = {}
    for name, case in CASES.items():
        code, text, err = run_cli_in_process(*case["command"].split())
        assert code == 0, (name, err)
        out[name] = json.loads(text)
    return out


def test_fixture_records_its_versions():
    assert FIXTURE["versions"]["metafor"] == "3.8.1"
    assert "4.0-0" in FIXTURE["versions"]["conv.fivenum"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_pool_equals_metafor_after_the_conversions(documents, name):
    doc, case = documents[name], CASES[name]
    for key in KEYS:
        _close(doc[key], case[key], f"{name}: {key}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_study_equals_escalc_after_its_conversion(documents, name):
    doc, ref = documents[name], CASES[name]["studies"]
    assert [s["study_id"] for s in doc["studies"]] == ref["study_id"]
    for i, s in enumerate(doc["studies"]):
        for key in ("yi", "vi", "weight"):
            _close(s[key], ref[key][i], f"{name} {s['study_id']}: {key}")


def test_the_skewed_study_is_left_out_with_the_reason(documents):
    for name in ("means_MD", "means_SMD"):
        excluded = documents[name]["excluded"]
        assert [e["study_id"] for e in excluded] == CASES[name]["left_out"] == ["h"]
        assert "median_t not converted to a mean and SD: the quantiles look skewed" in excluded[0]["reason"]


def test_smcr_leaves_out_the_studies_with_only_the_sd_of_the_change(documents):
    excluded = {e["study_id"]: e["reason"] for e in documents["paired_SMCR"]["excluded"]}
    assert set(excluded) == {"s4", "s5"}
    assert all("SMCR also needs sd_pre and r" in why for why in excluded.values())


def test_each_converted_study_names_its_conversion(documents):
    conv = {s["study_id"]: s.get("conversion") for s in documents["means_MD"]["studies"]}
    assert conv["a"] is None
    assert conv["b"].startswith("sd_t from the SEM (sd = se·√n")
    assert "sd_t from the 95% CI of the mean" in conv["c"] and "midpoint" not in conv["c"]
    assert "mean_t its midpoint" in conv["d"]
    assert "from the median with the IQR and range (Wan et al. 2014" in conv["e"]
    assert "with the IQR (Wan" in conv["f"] and "with the range (Wan" in conv["g"]
    paired = {s["study_id"]: s for s in documents["paired_MC"]["studies"]}
    case = CASES["paired_MC"]
    assert paired["s1"].get("conversion") is None
    text = paired["s2"]["conversion"]
    assert "from the paired p = 0.006" in text and f"r = {case['implied_r'][1]:.4g}" in text
    assert f"SD of the change {case['sd_change'][1]:.4g}" in text
    assert "from the paired t = 3.2" in paired["s3"]["conversion"]
    assert paired["s6"]["conversion"].startswith("r = 0.5 assumed (--r)")
    # the given spread columns travel with the study
    assert (paired["s2"]["se_pre"], paired["s2"]["p_value"]) == (1.2, 0.006)
    notes = documents["paired_MC"]["notes"]
    assert any(n.startswith("sd_pre from the SEM") and n.endswith("(s2)") for n in notes)


@pytest.mark.parametrize("name", ["paired_MC", "paired_SMCC"])
def test_the_assumed_r_comes_with_its_sensitivity(documents, name):
    notes = [n for n in documents[name]["notes"] if n.startswith("sensitivity to the assumed r")]
    assert len(notes) == 1
    found = re.findall(r"r = (0\.\d): (\S+) \[(\S+), (\S+)\]", notes[0])
    assert [float(r) for r, *_ in found] == [0.2, 0.5, 0.8]
    for (r, est, lo, hi), ref in zip(found, CASES[name]["r_sensitivity"]):
        for printed, value in ((est, ref["estimate"]), (lo, ref["ci_low"]), (hi, ref["ci_high"])):
            assert printed == f"{value:.4g}", (r, printed, value)
    at_half = CASES[name]["r_sensitivity"][1]
    assert math.isclose(at_half["estimate"], documents[name]["estimate"], rel_tol=1e-6)


def test_no_sensitivity_when_no_study_takes_the_assumed_r(run_cli):
    path = CASES["paired_MC"]["command"].split()[2]
    code, out, err = run_cli("pool", "--data", path, "--outcome", "score", "--measure", "MC",
                             "--r", "0.5", "--json", "--by", "study_id")
    assert code == 0, err
    groups = json.loads(out)
    assert len(groups) == 6
    with_note = [d for d in groups if any(n.startswith("sensitivity to the assumed r") for n in d["notes"])]
    assert [s["study_id"] for d in with_note for s in d["studies"]] == ["s6"]


def test_the_curated_diameter_change_from_its_paired_p(run_cli):
    """README's worked example: MC of the maximal fistula diameter, SD of the change from p."""
    from msc_meta.conversions import sd_change_from_p

    code, out, err = run_cli("pool", "--outcome", "max_fistula_diameter", "--measure", "MC", "--json")
    assert code == 0, err
    doc = json.loads(out)
    sdd = float(sd_change_from_p(2.6 - 6.1, 0.006, 9))
    assert doc["k"] == 1 and doc["estimate"] == pytest.approx(-3.5, rel=1e-12)
    assert doc["studies"][0]["vi"] == pytest.approx(sdd ** 2 / 9, rel=1e-12)
    assert doc["ci_low"] == pytest.approx(-3.5 - 1.959963984540054 * sdd / 3, rel=1e-9)
    assert "from the paired p = 0.006" in doc["studies"][0]["conversion"]


@pytest.mark.parametrize("text", ["0", "1.5", "-0.01", "<0.05"])
def test_a_p_value_must_be_an_exact_p(run_cli, tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_text("study_id,outcome,n_t,mean_pre,mean_post,p_value\ns,x,10,5,4," + text + "\n",
                    encoding="utf-8")
    code, out, err = run_cli("pool", "--data", path, "--outcome", "x")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "row 2" in err and "p_value" in err


def test_spread_columns_make_the_row_type(tmp_path):
    from msc_meta.data import load_table

    path = tmp_path / "t.csv"
    path.write_text("study_id,outcome,n_t,median_t,q1_t,q3_t,n_c,median_c,q1_c,q3_c,mean_pre,p_value\n"
                    "a,x,10,5,4,6,10,4,3,5,,\n"
                    "b,x,10,5,4,6,,,,,,\n"
                    "c,y,10,,,,,,,,5,0.2\n", encoding="utf-8")
    assert [r.family for r in load_table(path).rows] == ["means_two", "means_one", "means_paired"]
