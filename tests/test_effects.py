"""msc_meta.effects against metafor escalc() / summary.escalc() / transf.* fixtures.

Fixtures: tests/fixtures/effects_escalc.json and effects_transform.json,
written by tests/r/fixtures_effects.R (metafor 3.8.1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from msc_meta import registry
from msc_meta.effects import (EffectSizes, escalc, harmonic_mean, study_ci, study_estimate,
                              transform_back)
from msc_meta.errors import InputError, UsageError

MEASURES_SINGLE = registry.measures(arms=1, family="counts")
MEASURES_TWO = registry.measures(arms=2, family="counts")

FIXTURES = Path(__file__).parent / "fixtures"
ESCALC = json.loads((FIXTURES / "effects_escalc.json").read_text())
TRANSFORM = json.loads((FIXTURES / "effects_transform.json").read_text())


def as_array(values):
    """Fixture vector (null = NA, possibly unboxed to a scalar by jsonlite) -> float array."""
    arr = np.atleast_1d(np.array(values, dtype=object))
    return np.array([np.nan if v is None else float(v) for v in arr], dtype=float)


def assert_matches(ours, theirs, what):
    ours = np.asarray(ours, dtype=float)
    theirs = as_array(theirs)
    assert ours.shape == theirs.shape, what
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), f"{what}: NaN pattern {ours} vs {theirs}"
    ok = ~np.isnan(theirs)
    np.testing.assert_allclose(ours[ok], theirs[ok], rtol=1e-6, atol=1e-10, err_msg=what)


def run_escalc(case) -> EffectSizes:
    inp = case["input"]
    if case["measure"] in MEASURES_TWO:
        return escalc(case["measure"], as_array(inp["events_t"]), as_array(inp["n_t"]),
                      as_array(inp["events_c"]), as_array(inp["n_c"]), cc=case["cc"])
    return escalc(case["measure"], as_array(inp["events_t"]), as_array(inp["n_t"]), cc=case["cc"])


def test_fixture_records_versions():
    assert ESCALC["versions"]["metafor"] == "3.8.1"
    assert ESCALC["versions"]["R"].startswith("R version 4.2")
    assert all("escalc(" in case["call"] for case in ESCALC["cases"])


@pytest.mark.parametrize("case", ESCALC["cases"], ids=[c["name"] for c in ESCALC["cases"]])
def test_escalc_matches_metafor(case):
    es = run_escalc(case)
    assert es.measure == case["measure"]
    assert_matches(es.yi, case["yi"], "yi")
    assert_matches(es.vi, case["vi"], "vi")
    assert_matches(es.ni, case["ni"], "ni")
    # usable exactly where escalc gives a value with positive variance (cc = 0 gives PR vi = 0)
    vi = as_array(case["vi"])
    with np.errstate(invalid="ignore"):
        usable = ~np.isnan(as_array(case["yi"])) & (vi > 0)
    assert np.array_equal(es.keep, usable)
    assert all((r is None) == bool(kept) for r, kept in zip(es.reasons, es.keep))


@pytest.mark.parametrize("case", ESCALC["cases"], ids=[c["name"] for c in ESCALC["cases"]])
def test_study_ci_matches_summary_escalc(case):
    es = run_escalc(case)
    assert_matches(study_estimate(es), case["estimate"], "estimate")
    lo, hi = study_ci(es)
    assert_matches(lo, case["ci_low"], "ci_low 95")
    assert_matches(hi, case["ci_high"], "ci_high 95")
    lo, hi = study_ci(es, level=90)
    assert_matches(lo, case["ci_low_90"], "ci_low 90")
    assert_matches(hi, case["ci_high_90"], "ci_high 90")


@pytest.mark.parametrize("case", TRANSFORM["cases"], ids=[c["call"] for c in TRANSFORM["cases"]])
def test_transform_back_matches_metafor(case):
    x = as_array(case["x"])
    ni = as_array(case["ni"]) if "ni" in case else None
    assert_matches(transform_back(case["measure"], x, ni), case["value"], case["call"])


def test_seed_cx601_risk_ratio():
    # ADMIRE-CD (Cx601): combined remission 53/107 vs 36/105 -> RR 1.445 [1.042, 2.003]
    es = escalc("RR", [53], [107], [36], [105])
    lo, hi = study_ci(es)
    est = study_estimate(es)
    assert (round(est[0], 3), round(lo[0], 3), round(hi[0], 3)) == (1.445, 1.042, 2.003)
    seed = next(c for c in ESCALC["cases"] if c["name"] == "RR_seed_cc0.5")
    assert est[0] == pytest.approx(seed["estimate"], rel=1e-6)
    assert lo[0] == pytest.approx(seed["ci_low"], rel=1e-6)
    assert hi[0] == pytest.approx(seed["ci_high"], rel=1e-6)
    assert es.keep.tolist() == [True] and not es.cc_added[0]


def test_zero_cells_flags_and_reasons():
    events_t, n_t = [0, 3, 0, 5, 10, 7], [20, 15, 10, 5, 10, 30]
    events_c, n_c = [4, 0, 0, 2, 9, 5], [20, 14, 12, 6, 9, 28]
    rr = escalc("RR", events_t, n_t, events_c, n_c)
    assert rr.cc_added.tolist() == [True, True, False, True, False, False]
    assert rr.keep.tolist() == [True, True, False, True, False, True]
    assert rr.reasons[2] == "no events in either arm (double zero): RR undefined"
    assert "every participant of both arms" in rr.reasons[4]
    rd = escalc("RD", events_t, n_t, events_c, n_c)
    assert rd.keep.all()
    assert rd.cc_added.tolist() == [True, True, True, True, True, False]
    # the double-zero RD: 0.5/11 - 0.5/13 with the correction
    assert rd.yi[2] == pytest.approx(0.5 / 11 - 0.5 / 13, rel=1e-12)


def test_single_arm_correction_matches_escalc_only0():
    # escalc PR with to="only0": 0/n and n/n get cc on x and on n - x
    pr = escalc("PR", [0, 10, 4], [10, 10, 10], cc=0.5)
    assert pr.yi.tolist() == pytest.approx([0.5 / 11, 10.5 / 11, 0.4])
    assert pr.cc_added.tolist() == [True, True, False]
    pft = escalc("PFT", [0, 10], [10, 10], cc=0.5)
    assert not pft.cc_added.any() and pft.keep.all()


def test_missing_counts_are_flagged_not_errors():
    es = escalc("OR", [3, 4], [10, 10], [np.nan, 2], [np.nan, 10])
    assert es.keep.tolist() == [False, True]
    assert es.reasons[0].startswith("no control arm")
    assert np.isnan(es.yi[0])
    es = escalc("PLO", [np.nan, 4], [10, 10])
    assert es.keep.tolist() == [False, True] and "missing" in es.reasons[0]


def test_cc_zero_leaves_out_uncomputable_studies_with_reason():
    es = escalc("PLO", [0, 4], [10, 10], cc=0)
    assert es.keep.tolist() == [False, True]
    assert "cc = 0" in es.reasons[0]
    # an RR with an all-events arm is still computable without correction (as escalc)
    rr = escalc("RR", [5, 0], [5, 10], [2, 3], [6, 10], cc=0)
    assert rr.keep.tolist() == [True, False]
    assert rr.yi[0] == pytest.approx(np.log(1 / (2 / 6)))


def test_harmonic_mean_and_pft_default_ni():
    assert harmonic_mean([10, 40, np.nan]) == pytest.approx(16.0)
    with pytest.raises(UsageError, match="PFT back-transformation needs the sample sizes"):
        transform_back("PFT", [0.5])


def test_transform_back_keeps_nan_and_shape():
    for measure in MEASURES_SINGLE + MEASURES_TWO:
        out = transform_back(measure, np.array([np.nan, 0.3]), ni=[10, 20])
        assert np.isnan(out[0]) and np.isfinite(out[1])
    assert transform_back("RR", np.zeros((2, 3))).shape == (2, 3)


@pytest.mark.parametrize("bad", ["XX", "SMDX", None, 3])
def test_unknown_measure_is_usage_error(bad):
    with pytest.raises(UsageError, match="unknown effect measure"):
        escalc(bad, [1], [10])


def test_measure_is_case_insensitive():
    assert escalc("plo", [1], [10]).measure == "PLO"


@pytest.mark.parametrize("measure", MEASURES_TWO)
def test_two_arm_measure_without_control_is_usage_error(measure):
    with pytest.raises(UsageError, match=f"measure {measure} compares two arms: it needs control counts"):
        escalc(measure, [3], [10])


def test_single_arm_measure_with_control_is_usage_error():
    with pytest.raises(UsageError, match="single-arm measure"):
        escalc("PLO", [3], [10], [1], [10])


@pytest.mark.parametrize("args, message", [
    (([11], [10]), r"study 1: events_t \(11\) is larger than n_t \(10\)"),
    (([-1], [10]), r"study 1: events_t is negative"),
    (([0, 0], [5, 0]), r"study 2: n_t must be at least 1"),
])
def test_bad_counts_are_input_errors(args, message):
    with pytest.raises(InputError, match=message):
        escalc("PR", *args)


def test_bad_control_counts_and_lengths():
    with pytest.raises(InputError, match=r"events_c \(12\) is larger than n_c \(10\)"):
        escalc("RR", [1], [10], [12], [10])
    with pytest.raises(UsageError, match="n_c has 2 values but events_t has 1"):
        escalc("RR", [1], [10], [1], [10, 12])
    with pytest.raises(UsageError, match="continuity correction"):
        escalc("RR", [1], [10], [1], [10], cc=-0.5)


def test_non_numeric_counts_are_usage_errors():
    with pytest.raises(UsageError, match="events_t must be numbers"):
        escalc("PR", ["three"], [10])
