"""Summary of findings: absolute effects per 1,000 and the NNT (Altman 1998)."""

from __future__ import annotations

import json
import math

import pytest

from msc_meta.errors import UsageError
from msc_meta.pooling.sof import (intervention_risk, number_needed, pooled_arms,
                                  summary_of_findings)

REL = dict(rel=1e-12, abs=1e-12)


# ----------------------------------------------------------------------- formulas

def test_intervention_risk_formulas():
    # GRADE / Cochrane Handbook 14.1.5
    assert intervention_risk("RR", 0.3, 1.5) == pytest.approx(0.45, **REL)
    assert intervention_risk("OR", 0.3, 2.0) == pytest.approx(2.0 * 0.3 / (1 - 0.3 + 2.0 * 0.3), **REL)
    assert intervention_risk("OR", 0.3, 1.0) == pytest.approx(0.3, **REL)
    assert intervention_risk("RD", 0.3, -0.1) == pytest.approx(0.2, **REL)
    assert intervention_risk("OR", 0.3, math.inf) == 1.0
    with pytest.raises(UsageError):
        intervention_risk("PLO", 0.3, 0.5)


def test_nnt_benefit_with_ci_excluding_zero():
    nnt = number_needed(0.1, 0.05, 0.2)
    assert nnt.kind == "NNTB"
    assert nnt.value == pytest.approx(10.0, **REL)
    assert (nnt.ci_low, nnt.ci_high) == (pytest.approx(5.0, **REL), pytest.approx(20.0, **REL))
    assert not nnt.crosses_infinity
    assert nnt.text == "NNTB 10.0 (95% CI NNTB 5.0 to 20.0)"


def test_nnt_ci_through_infinity_altman():
    # RD 0.1 (-0.05 to 0.25): NNTB 10 (NNTH 20 to infinity to NNTB 4)
    nnt = number_needed(0.1, -0.05, 0.25)
    assert nnt.kind == "NNTB" and nnt.crosses_infinity
    assert nnt.ci_low is None and nnt.ci_high is None
    assert nnt.nntb_bound == pytest.approx(4.0, **REL)
    assert nnt.nnth_bound == pytest.approx(20.0, **REL)
    assert nnt.text == "NNTB 10.0 (95% CI NNTH 20.0 to \u221e to NNTB 4.0)"


def test_nnt_harm_and_harmful_events():
    harm = number_needed(-0.25, -0.4, -0.1)
    assert harm.kind == "NNTH" and harm.value == pytest.approx(4.0, **REL)
    assert (harm.ci_low, harm.ci_high) == (pytest.approx(2.5, **REL), pytest.approx(10.0, **REL))
    # more adverse events with the intervention is a harm ...
    ae = number_needed(0.1, 0.05, 0.2, events="harmful")
    assert ae.kind == "NNTH" and ae.value == pytest.approx(10.0, **REL)
    # ... and fewer is a benefit
    fewer = number_needed(-0.1, -0.2, 0.05, events="harmful")
    assert fewer.kind == "NNTB" and fewer.nntb_bound == pytest.approx(5.0, **REL)
    assert fewer.nnth_bound == pytest.approx(20.0, **REL)


def test_nnt_zero_difference_is_infinite():
    nnt = number_needed(0.0, -0.1, 0.1)
    assert nnt.value is None and nnt.kind is None and nnt.crosses_infinity
    assert "infinite" in nnt.text


# ----------------------------------------------------------------------- on analyses

def _analysis(measure="RR", estimate=1.5, ci=(1.2, 1.875), studies=None, i2=20.0, k=None):
    from msc_meta.pooling.analysis import Analysis, StudyLine
    from msc_meta.pooling.results import PoolResult

    if studies is None:
        studies = (
            # a shared placebo arm (trial T, 2/10) used by two dose cohorts
            StudyLine("T1", 2, 5, 10, 2, 10, 0.1, 0.1, 1.1, 0.5, 2.0, 30.0, False),
            StudyLine("T2", 3, 6, 10, 2, 10, 0.1, 0.1, 1.1, 0.5, 2.0, 30.0, False),
            StudyLine("U", 4, 20, 50, 10, 50, 0.1, 0.1, 1.1, 0.5, 2.0, 40.0, False),
            # in the table but not pooled (weight None)
            StudyLine("V", 5, 0, 9, 0, 9, 0.1, 0.1, 1.1, 0.5, 2.0, None, True),
        )
    k = k if k is not None else sum(1 for s in studies if s.weight is not None)
    result = PoolResult(measure=measure, method="REML", k=k, theta=math.log(estimate), se=0.1,
                        theta_ci_low=0.0, theta_ci_high=0.0, estimate=estimate, ci_low=ci[0],
                        ci_high=ci[1], stat=2.0, pval=0.04, tau2=0.01, tau=0.1, i2=i2, h2=1.2,
                        q=2.0, q_df=k - 1, q_pval=0.3, weights=(30.0, 30.0, 40.0), random=True,
                        pi_low=0.9, pi_high=2.4)
    return Analysis(outcome="closure", timepoint_weeks=24.0, unit="patient", group=None,
                    measure=measure, result=result, common=None, studies=studies, excluded=(),
                    notes=("a note from the pool",))


TRIALS = {2: "T", 3: "T", 4: "U", 5: "V"}


def test_pooled_arms_count_a_shared_control_once():
    arms = pooled_arms(_analysis().studies, TRIALS)
    assert arms == {"events_t": 31, "n_t": 70, "events_c": 12, "n_c": 60, "shared": 1}
    # without trial labels the arms are taken as distinct
    assert pooled_arms(_analysis().studies, {})["n_c"] == 70


def test_summary_of_findings_default_control_risk():
    sof = summary_of_findings(_analysis(), trials=TRIALS)
    cr = 12 / 60
    assert sof.control_risk == pytest.approx(cr, **REL)
    assert sof.control_risk_source == "pooled control arms"
    assert sof.control_per_1000 == pytest.approx(200.0, **REL)
    assert sof.intervention_per_1000 == pytest.approx(1000 * cr * 1.5, **REL)
    assert sof.intervention_ci_low == pytest.approx(1000 * cr * 1.2, **REL)
    assert sof.intervention_ci_high == pytest.approx(1000 * cr * 1.875, **REL)
    assert sof.rd_per_1000 == pytest.approx(1000 * cr * 0.5, **REL)
    assert sof.rd_ci_low == pytest.approx(1000 * cr * 0.2, **REL)
    assert sof.rd_ci_high == pytest.approx(1000 * cr * 0.875, **REL)
    assert sof.nnt.kind == "NNTB"
    assert sof.nnt.value == pytest.approx(1 / (cr * 0.5), **REL)
    assert sof.nnt.ci_low == pytest.approx(1 / (cr * 0.875), **REL)
    assert sof.nnt.ci_high == pytest.approx(1 / (cr * 0.2), **REL)
    assert sof.k == 3
    assert sof.participants == 70 + 60
    assert sof.total_events == 31 + 12
    assert any("shared control arm" in f for f in sof.flags)
    assert any("< 300" in f for f in sof.flags)
    assert not any(f.startswith("imprecision: the 95% CI") for f in sof.flags)
    assert "a note from the pool" in sof.notes


def test_summary_of_findings_user_control_risk_and_odds_ratio():
    sof = summary_of_findings(_analysis(measure="OR", estimate=2.0, ci=(0.8, 5.0)),
                              control_risk=0.3, trials=TRIALS)
    risk = 2.0 * 0.3 / (1 - 0.3 + 2.0 * 0.3)
    assert sof.intervention_per_1000 == pytest.approx(1000 * risk, **REL)
    assert sof.rd_per_1000 == pytest.approx(1000 * (risk - 0.3), **REL)
    assert sof.control_risk_source == "set with --control-risk"
    assert sof.nnt.crosses_infinity
    assert any(f.startswith("imprecision: the 95% CI includes no effect") for f in sof.flags)


def test_summary_of_findings_caps_risks_above_one():
    sof = summary_of_findings(_analysis(estimate=3.0, ci=(2.0, 4.0)), control_risk=0.4,
                              trials=TRIALS)
    assert sof.intervention_per_1000 == 1000.0
    assert sof.intervention_ci_low == pytest.approx(800.0, **REL)
    assert any("capped" in n for n in sof.notes)


def test_summary_of_findings_refuses_single_arm_and_bad_risk():
    with pytest.raises(UsageError, match="two-arm outcome"):
        summary_of_findings(_analysis(measure="PLO"))
    with pytest.raises(UsageError, match="between 0 and 1"):
        summary_of_findings(_analysis(), control_risk=1.5)


def test_to_dict_keys():
    doc = summary_of_findings(_analysis(), trials=TRIALS).to_dict()
    for key in ("outcome", "measure", "method", "k", "participants", "relative_effect",
                "relative_ci_low", "relative_ci_high", "control_risk", "control_per_1000",
                "intervention_per_1000", "intervention_ci_low", "intervention_ci_high",
                "rd_per_1000", "rd_ci_low", "rd_ci_high", "nnt", "nnt_type", "nnt_ci_low",
                "nnt_ci_high", "nnt_ci_crosses_infinity", "nntb_bound", "nnth_bound", "nnt_text",
                "flags", "notes", "events", "level"):
        assert key in doc, key
    json.dumps(doc, allow_nan=False)


# ----------------------------------------------------------------------- CLI

def _rows():
    def row(study_id, trial, e_t, n_t, e_c, n_c, source="adipose"):
        return {"study_id": study_id, "trial": trial, "outcome": "healing", "timepoint_weeks": 12,
                "unit": "patient", "events_t": e_t, "n_t": n_t, "events_c": e_c, "n_c": n_c,
                "cell_source": source}
    return [row("D1", "D", 2, 5, 1, 6), row("D2", "D", 3, 5, 1, 6), row("A", "A", 10, 20, 5, 20),
            row("C", "C", 30, 60, 18, 58, "bone_marrow"), row("S", "S", 4, 9, "", "")]


def test_cli_sof_json_matches_the_pool(run_cli, tmp_table):
    path = tmp_table(_rows())
    code, out, err = run_cli("pool", "--data", path, "--outcome", "healing", "--json")
    assert code == 0, err
    pool = json.loads(out)
    code, out, err = run_cli("sof", "--data", path, "--outcome", "healing", "--json")
    assert code == 0, err
    doc = json.loads(out)
    cr = (1 + 5 + 18) / (6 + 20 + 58)          # D's placebo counted once
    assert doc["control_risk"] == pytest.approx(cr, rel=1e-12)
    assert doc["relative_effect"] == pytest.approx(pool["estimate"], rel=1e-12)
    assert doc["intervention_per_1000"] == pytest.approx(1000 * cr * pool["estimate"], rel=1e-12)
    assert doc["rd_ci_low"] == pytest.approx(1000 * cr * (pool["ci_low"] - 1), rel=1e-12)
    assert doc["nnt"] == pytest.approx(1 / (cr * (pool["estimate"] - 1)), rel=1e-12)
    assert doc["participants"] == 5 + 5 + 20 + 60 + 6 + 20 + 58
    assert doc["k"] == 3                       # D1 and D2 combined (--multiarm combine)


@pytest.mark.parametrize("multiarm", ["split", "keep"])
def test_cli_sof_counts_a_shared_control_once_in_every_mode(run_cli, tmp_table, multiarm):
    path = tmp_table(_rows())
    code, out, err = run_cli("sof", "--data", path, "--outcome", "healing", "--multiarm", multiarm,
                             "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["control_risk"] == pytest.approx((1 + 5 + 18) / (6 + 20 + 58), rel=1e-12)
    assert doc["participants"] == 5 + 5 + 20 + 60 + 6 + 20 + 58
    assert doc["k"] == 4


def test_cli_sof_table_and_by(run_cli, tmp_table):
    path = tmp_table(_rows())
    code, out, err = run_cli("sof", "--data", path, "--outcome", "healing", "--control-risk", "0.2")
    assert code == 0, err
    assert "Summary of findings" in out and "NNT" in out and "200" in out
    # no rater input: the certainty is "not rated", the computed facts are hints
    assert "not rated" in out and "Hints (computed, not a rating)" in out
    code, out, err = run_cli("sof", "--data", path, "--outcome", "healing", "--by", "cell_source",
                             "--json")
    assert code == 0, err
    docs = json.loads(out)
    assert [d["group"] for d in docs] == ["adipose", "bone_marrow"]


@pytest.mark.parametrize("args, message", [
    (["--control-risk", "2"], "between 0 and 1"),
    (["--by", "cell_source", "--all"], "--all covers every outcome"),
    (["--risk-of-bias", "bad"], "--risk-of-bias: 'bad' is not a rating"),
])
def test_cli_sof_errors(run_cli, tmp_table, args, message):
    path = tmp_table(_rows())
    code, out, err = run_cli("sof", "--data", path, "--outcome", "healing", *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert out == ""


def test_cli_sof_curated_cx601(run_cli, curated_path):
    # Cx601 (ADMIRE-CD) 24 weeks: 53/107 vs 36/105, RR 1.445 [1.042, 2.003]
    code, out, err = run_cli("sof", "--outcome", "fistula_closure", "--timepoint", "24",
                             "--unit", "patient", "--json")
    assert code == 0, err
    doc = json.loads(out)
    rr = (53 / 107) / (36 / 105)
    assert doc["relative_effect"] == pytest.approx(rr, rel=1e-9)
    assert doc["control_risk"] == pytest.approx(36 / 105, rel=1e-12)
    assert doc["intervention_per_1000"] == pytest.approx(1000 * 53 / 107, rel=1e-9)
    assert doc["nnt"] == pytest.approx(1 / (53 / 107 - 36 / 105), rel=1e-9)
    assert doc["nnt_type"] == "NNTB"
    assert doc["participants"] == 212
