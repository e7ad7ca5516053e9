"""Egger's test and trim-and-fill against metafor regtest()/trimfill() fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from msc_meta.errors import UsageError
from msc_meta.pooling.bias import (FEW_STUDIES_WARNING, egger_test, small_study_effects,
                                   trim_and_fill)

FIXTURES = Path(__file__).parent / "fixtures"
BIAS = json.loads((FIXTURES / "diag_bias.json").read_text())
IDS = [f"{c['data']}-{c['method']}-{c['test']}" for c in BIAS["cases"]]


def close(actual, expected, rel=1e-6, abs_=1e-10):
    assert np.asarray(actual, dtype=float) == pytest.approx(np.asarray(expected, dtype=float),
                                                             rel=rel, abs=abs_)


@pytest.mark.parametrize("case", BIAS["cases"], ids=IDS)
def test_egger_matches_regtest(case):
    egger = egger_test(case["yi"], case["vi"], method=case["method"], knha=case["test"] == "knha")
    ref = case["regtest"]
    close(egger.stat, ref["zval"])
    close(egger.pval, ref["pval"])
    close(egger.slope, ref["slope"])
    close(egger.slope_se, ref["slope_se"])
    close(egger.limit_estimate, ref["est"])
    close(egger.limit_ci_low, ref["ci_lb"])
    close(egger.limit_ci_high, ref["ci_ub"])
    if case["test"] == "knha":
        assert egger.test == "t" and egger.df == ref["ddf"] == len(case["yi"]) - 2
    else:
        assert egger.test == "z" and egger.df is None and ref["ddf"] is None


@pytest.mark.parametrize("case", BIAS["cases"], ids=IDS)
def test_trimfill_matches_metafor(case):
    tf = trim_and_fill(case["yi"], case["vi"], method=case["method"], knha=case["test"] == "knha")
    ref = case["trimfill"]
    assert tf.k0 == ref["k0"]
    assert tf.side == ref["side"]
    assert tf.k == ref["k"] == len(case["yi"]) + tf.k0
    close(tf.se_k0, ref["se_k0"])
    close(tf.theta, ref["beta"])
    close(tf.se, ref["se"])
    close(tf.theta_ci_low, ref["ci_lb"])
    close(tf.theta_ci_high, ref["ci_ub"])
    close(tf.tau2, ref["tau2"])
    fill = np.asarray(ref["fill"], dtype=bool)
    close(tf.yi_filled, np.asarray(ref["yi_all"])[fill])
    close(tf.vi_filled, np.asarray(ref["vi_all"])[fill])
    # Every fill mirrors an observed study with the same variance.
    close(np.asarray(case["vi"])[list(tf.fill_source)], tf.vi_filled)


def test_fixtures_fill_on_both_sides():
    sides = {(c["trimfill"]["side"]) for c in BIAS["cases"] if c["trimfill"]["k0"] > 0}
    assert sides == {"left", "right"}


def test_forced_side_and_mirror_symmetry():
    case = BIAS["cases"][0]
    yi, vi = np.asarray(case["yi"]), np.asarray(case["vi"])
    right = trim_and_fill(yi, vi, side="right")
    left_of_mirror = trim_and_fill(-yi, vi, side="left")
    assert right.k0 == left_of_mirror.k0
    close(right.theta, -left_of_mirror.theta)
    with pytest.raises(UsageError):
        trim_and_fill(yi, vi, side="up")


def test_warning_below_ten_studies():
    case = BIAS["cases"][0]
    full = small_study_effects(case["yi"], case["vi"])
    assert full.k == 13 and full.warning is None
    few = small_study_effects(case["yi"][:6], case["vi"][:6])
    assert few.k == 6 and few.warning == FEW_STUDIES_WARNING
    assert few.egger is not None and few.trimfill is not None
    assert len(few.sei) == 6


def test_too_few_studies_leaves_tests_out_with_notes():
    res = small_study_effects([0.1, 0.5], [0.04, 0.09], method="REML")
    assert res.egger is None
    assert any("Egger" in n for n in res.notes)
    assert res.warning == FEW_STUDIES_WARNING


def test_mh_is_refused():
    with pytest.raises(UsageError, match="inverse-variance"):
        egger_test([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], method="MH")
