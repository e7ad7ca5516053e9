"""`msc-meta bayes` and `msc-meta fragility` end to end (contract keys, numbers, errors)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

BAYES_KEYS = ("theta_median", "theta_ci_low", "theta_ci_high", "estimate", "ci_low", "ci_high",
              "tau_median", "tau_ci_low", "tau_ci_high", "pred_low", "pred_high", "p_benefit")
FRAGILITY_KEYS = ("study_id", "outcome", "events_t", "n_t", "events_c", "n_c", "fisher_pval",
                  "significant", "fragility_index")


def _two_arm_rows():
    counts = [(53, 107, 36, 105), (12, 20, 4, 20), (3, 10, 0, 10), (8, 25, 6, 24), (15, 30, 9, 31)]
    return [{"study_id": f"s{i}", "outcome": "closure", "timepoint_weeks": 24, "unit": "patient",
             "events_t": a, "n_t": n1, "events_c": c, "n_c": n2}
            for i, (a, n1, c, n2) in enumerate(counts, start=1)]


# ---------------------------------------------------------------- fragility

def test_fragility_json_curated_cx601(run_cli, curated_path):
    code, out, err = run_cli("fragility", "--outcome", "fistula_closure", "--timepoint", "24", "--unit",
                             "patient", "--json")
    assert code == 0, err
    docs = json.loads(out)
    assert isinstance(docs, list) and docs
    for doc in docs:
        assert all(key in doc for key in FRAGILITY_KEYS)
    cx = [d for d in docs if d["events_t"] == 53 and d["n_t"] == 107]
    assert len(cx) == 1
    assert cx[0]["events_c"] == 36 and cx[0]["n_c"] == 105
    assert cx[0]["fisher_pval"] == pytest.approx(0.0267316120278027, rel=1e-9)
    assert cx[0]["significant"] is True and cx[0]["fragility_index"] == 2


def test_fragility_all_outcomes_by_default(run_cli, tmp_table):
    rows = _two_arm_rows()
    rows.append({"study_id": "s9", "outcome": "remission", "timepoint_weeks": 12, "unit": "patient",
                 "events_t": 4, "n_t": 5, "events_c": 0, "n_c": 5})
    rows.append({"study_id": "arm", "outcome": "remission", "timepoint_weeks": 12, "unit": "patient",
                 "events_t": 4, "n_t": 5})
    path = tmp_table(rows)
    code, out, err = run_cli("fragility", "--data", path, "--json")
    assert code == 0, err
    docs = json.loads(out)
    assert [d["study_id"] for d in docs] == ["s1", "s2", "s3", "s4", "s5", "s9"]   # single arm left out
    s9 = docs[-1]
    assert s9["fisher_pval"] == pytest.approx(0.0476190476190476, rel=1e-9)
    assert s9["fragility_index"] == 1 and s9["significant"] is True
    s4 = docs[3]
    assert s4["significant"] is False and s4["fragility_index"] >= 1     # reverse index


def test_fragility_table_output(run_cli, tmp_table):
    path = tmp_table(_two_arm_rows())
    code, out, err = run_cli("fragility", "--data", path)
    assert code == 0, err
    assert "53/107" in out and "36/105" in out and "Walsh" in out


def test_fragility_unknown_outcome_is_a_usage_error(run_cli, tmp_table):
    path = tmp_table(_two_arm_rows())
    code, out, err = run_cli("fragility", "--data", path, "--outcome", "nope")
    assert code == 2 and out == ""
    assert "nope" in err and "closure" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_fragility_without_two_arm_rows(run_cli, tmp_table):
    path = tmp_table([{"study_id": "a", "outcome": "closure", "events_t": 3, "n_t": 5}])
    code, out, err = run_cli("fragility", "--data", path)
    assert code == 2 and "two-arm" in err and "Traceback" not in err


# ---------------------------------------------------------------- bayes

def test_bayes_json_matches_library(run_cli, tmp_table):
    from msc_meta.effects import escalc
    from msc_meta.pooling.bayes import bayes_re

    rows = _two_arm_rows()
    path = tmp_table(rows)
    code, out, err = run_cli("bayes", "--data", path, "--outcome", "closure", "--json",
                             "--prior-tau", "halfcauchy:0.3")
    assert code == 0, err
    doc = json.loads(out)
    for key in BAYES_KEYS:
        assert key in doc
    assert doc["measure"] == "RR" and doc["k"] == 5 and doc["prior_tau"] == "halfcauchy:0.3"
    es = escalc("RR", *(np.array([r[c] for r in rows], float) for c in ("events_t", "n_t", "events_c", "n_c")),
                cc=0.5)
    want = bayes_re(es.yi, es.vi, prior_tau="halfcauchy:0.3", measure="RR")
    assert doc["theta_median"] == pytest.approx(want.theta_median, rel=1e-12)
    assert doc["tau_ci_high"] == pytest.approx(want.tau_ci_high, rel=1e-12)
    assert doc["estimate"] == pytest.approx(math.exp(doc["theta_median"]), rel=1e-12)
    assert doc["pred_low"] == pytest.approx(math.exp(want.theta_pred_low), rel=1e-12)
    assert 0.5 < doc["p_benefit"] < 1.0
    assert [s["study_id"] for s in doc["studies"]] == ["s1", "s2", "s3", "s4", "s5"]
    assert doc["frequentist"]["method"] == "REML"


def test_bayes_single_arm_has_no_p_benefit(run_cli, tmp_table):
    rows = [{"study_id": f"a{i}", "outcome": "closure", "events_t": e, "n_t": n}
            for i, (e, n) in enumerate([(3, 5), (4, 5), (5, 5), (7, 12)])]
    path = tmp_table(rows)
    code, out, err = run_cli("bayes", "--data", path, "--outcome", "closure", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["measure"] == "PLO" and doc["p_benefit"] is None
    assert 0 < doc["ci_low"] < doc["estimate"] < doc["ci_high"] < 1
    assert any("continuity correction" in n for n in doc["notes"])     # the 5/5 study


def test_bayes_table_output(run_cli, tmp_table):
    path = tmp_table(_two_arm_rows())
    code, out, err = run_cli("bayes", "--data", path, "--outcome", "closure", "--level", "90")
    assert code == 0, err
    assert "Posterior probability that RR > 1" in out and "90% interval" in out
    assert "halfnormal:0.5" in out and "REML" in out


@pytest.mark.parametrize("option, value, needle", [
    ("--prior-tau", "halfnormal:-2", "--prior-tau"),
    ("--prior-tau", "gamma:1", "--prior-tau"),
    ("--prior-mu", "normal:0", "--prior-mu"),
])
def test_bayes_bad_priors_are_usage_errors(run_cli, tmp_table, option, value, needle):
    path = tmp_table(_two_arm_rows())
    code, out, err = run_cli("bayes", "--data", path, "--outcome", "closure", option, value)
    assert code == 2 and out == "" and needle in err and "Traceback" not in err


def test_bayes_bad_counts_point_at_the_cell(run_cli, tmp_table):
    rows = _two_arm_rows()
    rows[1]["events_t"] = 25          # 25 of 20
    path = tmp_table(rows)
    code, out, err = run_cli("bayes", "--data", path, "--outcome", "closure")
    assert code == 2 and "row 3" in err and "Traceback" not in err


def test_fragility_in_a_real_process(run_cli_process, curated_path):
    code, out, err = run_cli_process("fragility", "--json")
    assert code == 0, err
    assert any(d["fragility_index"] == 2 and d["n_t"] == 107 for d in json.loads(out))


def test_bayes_multiarm_like_pool(run_cli, tmp_table):
    # Three dose cohorts of one trial against one placebo arm (counted once by default).
    rows = [{"study_id": f"dose{i}", "trial": "t1", "outcome": "closure", "events_t": e, "n_t": 5,
             "events_c": 1, "n_c": 6} for i, e in enumerate((2, 3, 4), start=1)]
    rows += [{"study_id": "other", "trial": "t2", "outcome": "closure", "events_t": 10, "n_t": 20,
              "events_c": 5, "n_c": 20}]
    path = tmp_table(rows)
    code, out, err = run_cli("bayes", "--data", path, "--outcome", "closure", "--json")
    assert code == 0, err
    assert json.loads(out)["k"] == 2
    code, out, err = run_cli("bayes", "--data", path, "--outcome", "closure", "--json", "--multiarm", "keep")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["k"] == 4 and any("share one control arm" in n for n in doc["notes"])
