"""msc_meta.effects.compute for every input family beyond counts, against metafor escalc().

Fixture: tests/fixtures/effects_outcomes.json, written by tests/r/fixtures_outcomes.R
(metafor 3.8.1): two-group means (dat.normand1999 and small groups), one-group means
(each arm of normand1999), paired before/after (Morris 2008, with its r and with an
assumed r), incidence rates (dat.hart1999 and a zero-event set at cc 0.5, 0.25, 0; one
group from each arm), correlations (dat.molloy2014) and generic effects (dat.bcg log RR
and RD as yi/vi, yi/sei, and as estimate with a 95% or 90% CI).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from msc_meta import registry
from msc_meta.effects import (EffectSizes, cmicalc, compute, escalc, study_ci, study_estimate,
                              transform_back)
from msc_meta.errors import UsageError

FIXTURES = Path(__file__).parent / "fixtures"
OUTCOMES = json.loads((FIXTURES / "effects_outcomes.json").read_text())
ESCALC = json.loads((FIXTURES / "effects_escalc.json").read_text())
CASES = OUTCOMES["cases"]
RTOL = 1e-6


def as_array(values):
    arr = np.atleast_1d(np.array(values, dtype=object))
    return np.array([np.nan if v is None else float(v) for v in arr], dtype=float)


def assert_matches(ours, theirs, what):
    ours = np.asarray(ours, dtype=float)
    theirs = as_array(theirs)
    assert ours.shape == theirs.shape, what
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), f"{what}: NaN pattern {ours} vs {theirs}"
    ok = ~np.isnan(theirs)
    np.testing.assert_allclose(ours[ok], theirs[ok], rtol=RTOL, atol=1e-12, err_msg=what)


def run(case) -> EffectSizes:
    columns = {name: as_array(values) for name, values in case["input"].items()}
    return compute(case["measure"], columns, cc=case.get("cc", 0.5), r=case.get("r"),
                   scale=case.get("scale"))


def test_fixture_records_versions_and_calls():
    assert OUTCOMES["versions"]["metafor"] == "3.8.1"
    assert OUTCOMES["versions"]["R"].startswith("R version 4.2")
    assert all("escalc(" in case["call"] for case in CASES)


def test_every_new_measure_has_fixtures():
    covered = {case["measure"] for case in CASES}
    new = {m for m in registry.measures(every=True) if registry.measure(m).family != "counts"}
    assert new <= covered, sorted(new - covered)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_compute_matches_escalc(case):
    es = run(case)
    assert es.measure == case["measure"]
    assert_matches(es.yi, case["yi"], "yi")
    assert_matches(es.vi, case["vi"], "vi")
    if "ni" in case and case["measure"] != "GEN":
        assert_matches(es.ni, case["ni"], "ni")
    vi = as_array(case["vi"])
    with np.errstate(invalid="ignore"):
        usable = ~np.isnan(as_array(case["yi"])) & (vi > 0)
    assert np.array_equal(es.keep, usable)
    assert all((r is None) == bool(kept) for r, kept in zip(es.reasons, es.keep))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_study_ci_and_estimate_match_summary_escalc(case):
    es = run(case)
    assert_matches(study_estimate(es), case["estimate"], "estimate")
    lo, hi = study_ci(es)
    assert_matches(lo, case["ci_low"], "ci_low 95")
    assert_matches(hi, case["ci_high"], "ci_high 95")
    lo, hi = study_ci(es, level=90)
    assert_matches(lo, case["ci_low_90"], "ci_low 90")
    assert_matches(hi, case["ci_high_90"], "ci_high 90")


def max_relative_difference():
    """{measure: max relative difference of yi and vi vs metafor} over the fixtures (for the report)."""
    out = {}
    for case in CASES:
        es = run(case)
        for ours, theirs in ((es.yi, case["yi"]), (es.vi, case["vi"])):
            theirs = as_array(theirs)
            ok = ~np.isnan(theirs) & (theirs != 0)
            if ok.any():
                rel = float(np.max(np.abs(ours[ok] - theirs[ok]) / np.abs(theirs[ok])))
                out[case["measure"]] = max(out.get(case["measure"], 0.0), rel)
    return out


def test_relative_differences_are_tiny():
    worst = max_relative_difference()
    assert max(worst.values()) < RTOL, worst


# ---------------------------------------------------------------- the counts path is unchanged

@pytest.mark.parametrize("case", ESCALC["cases"], ids=[c["name"] for c in ESCALC["cases"]])
def test_compute_counts_equals_escalc(case):
    inp = {k: as_array(v) for k, v in case["input"].items()}
    via_compute = compute(case["measure"], inp, cc=case["cc"])
    direct = escalc(case["measure"], inp["events_t"], inp["n_t"], inp.get("events_c"), inp.get("n_c"),
                    cc=case["cc"])
    for field in ("yi", "vi", "ni", "keep", "cc_added"):
        np.testing.assert_array_equal(getattr(via_compute, field), getattr(direct, field))
    assert via_compute.reasons == direct.reasons


def test_compute_counts_absent_control_is_a_reason_not_an_error():
    es = compute("RR", {"events_t": [3, 4], "n_t": [10, 10]})
    assert not es.keep.any() and all(r.startswith("no control arm") for r in es.reasons)


def test_escalc_refuses_other_families():
    with pytest.raises(UsageError, match="not counts: use effects.compute"):
        escalc("SMD", [1], [10])


# ---------------------------------------------------------------- family rules

def test_cmicalc_is_the_exact_gamma_correction():
    from math import gamma, sqrt
    for m in (2, 3, 10, 57):
        assert cmicalc(m) == pytest.approx(gamma(m / 2) / (sqrt(m / 2) * gamma((m - 1) / 2)), rel=1e-12)
    assert np.isnan(cmicalc(1.0)) and np.isnan(cmicalc(0.0))
    # the approximation 1 - 3/(4m - 1) is close but not equal
    assert cmicalc(10) != pytest.approx(1 - 3 / 39, rel=1e-6)


def _means(**over):
    cols = {"mean_t": [10.0, 12.0], "sd_t": [2.0, 3.0], "n_t": [20.0, 25.0],
            "mean_c": [8.0, 11.0], "sd_c": [2.5, 2.0], "n_c": [22.0, 24.0]}
    cols.update({k: np.asarray(v, dtype=float) for k, v in over.items()})
    return cols


@pytest.mark.parametrize("over, reason", [
    ({"sd_t": [0.0, 3.0]}, "sd_t must be > 0, got 0"),
    ({"sd_c": [-1.0, 2.0]}, "sd_c must be > 0, got -1"),
    ({"n_t": [1.0, 25.0]}, "n_t must be at least 2"),
    ({"mean_c": [np.nan, 11.0]}, "mean_c blank: SMD needs"),
    ({"mean_c": [np.nan, 11.0], "sd_c": [np.nan, 2.0], "n_c": [np.nan, 24.0]}, "no control group"),
])
def test_means_invalid_or_blank_inputs_are_reasons(over, reason):
    es = compute("SMD", _means(**over))
    assert es.keep.tolist() == [False, True]
    assert reason in es.reasons[0]
    assert np.isnan(es.yi[0]) and np.isnan(es.vi[0])


def test_rom_and_mnln_need_positive_means():
    es = compute("ROM", _means(mean_t=[-1.0, 12.0]))
    assert es.keep.tolist() == [False, True] and "mean_t must be > 0 for ROM" in es.reasons[0]
    es = compute("MNLN", {"mean_t": [0.0, 3.0], "sd_t": [1.0, 1.0], "n_t": [10, 10]})
    assert es.keep.tolist() == [False, True] and "log" in es.reasons[0]
    # MD takes any mean
    assert compute("MD", _means(mean_t=[-1.0, 12.0])).keep.all()


def test_paired_r_column_first_then_assumed_r_noted():
    cols = {"mean_post": [38.5, 26.8], "mean_pre": [30.6, 23.5], "sd_pre": [15.0, 3.1],
            "sd_post": [11.6, 4.1], "n_t": [20, 50], "r": [0.47, np.nan]}
    es = compute("SMCC", cols)
    assert es.keep.tolist() == [True, False]
    assert "r blank" in es.reasons[1] and "--r" in es.reasons[1]
    es = compute("SMCC", cols, r=0.6)
    assert es.keep.all()
    assert es.notes[0] is None and "r = 0.6 assumed" in es.notes[1]
    ref = compute("SMCC", {**cols, "r": [0.47, 0.6]})
    np.testing.assert_array_equal(es.yi, ref.yi)
    # |r| >= 1 in a table is a reason; as an option it is a usage error
    es = compute("MC", {**cols, "r": [1.0, 0.5]})
    assert "r must be between -1 and 1" in es.reasons[0]
    with pytest.raises(UsageError, match="assumed correlation"):
        compute("MC", cols, r=1.2)


def test_smcr_does_not_need_sd_post():
    cols = {"mean_post": [38.5], "mean_pre": [30.6], "sd_pre": [15.0], "n_t": [20], "r": [0.47]}
    assert compute("SMCR", cols).keep.all()
    assert not compute("SMCC", cols).keep.any()


def test_smcr_is_standardised_by_sd_pre():
    cols = {"mean_post": [38.5], "mean_pre": [30.6], "sd_pre": [15.0], "sd_post": [11.6],
            "n_t": [20], "r": [0.47]}
    es = compute("SMCR", cols)
    assert es.yi[0] == pytest.approx(cmicalc(19) * (38.5 - 30.6) / 15.0, rel=1e-12)


def test_rates_invalid_and_zero_events():
    es = compute("IRR", {"events_t": [3, -1, 0, 0], "time_t": [100, 100, 0, 50],
                         "events_c": [4, 2, 1, 0], "time_c": [90, 80, 70, 60]})
    assert es.keep.tolist() == [True, False, False, False]
    assert "events_t must be >= 0" in es.reasons[1]
    assert "time_t must be > 0" in es.reasons[2]
    assert "double zero" in es.reasons[3]
    es = compute("IRR", {"events_t": [0], "time_t": [100], "events_c": [3], "time_c": [90]}, cc=0)
    assert not es.keep[0] and "zero events and no continuity correction" in es.reasons[0]
    es = compute("IRD", {"events_t": [0], "time_t": [100], "events_c": [0], "time_c": [90]})
    assert es.keep[0] and es.cc_added[0]      # IRD keeps double zeros (as RD)
    assert not compute("IRSD", {"events_t": [0], "time_t": [100], "events_c": [3],
                                "time_c": [90]}).cc_added[0]


def test_correlation_limits():
    es = compute("ZCOR", {"cor_t": [0.3, 1.0, -0.2, 0.5], "n_t": [50, 40, 3, np.nan]})
    assert es.keep.tolist() == [True, False, False, False]
    assert "cor_t must be between -1 and 1" in es.reasons[1]
    assert "n_t must be at least 4" in es.reasons[2]
    assert "n_t blank" in es.reasons[3]


def test_generic_rows_and_reasons():
    cols = {"yi": [0.2, np.nan, np.nan, np.nan, 0.1, np.nan],
            "vi": [0.04, np.nan, np.nan, np.nan, np.nan, np.nan],
            "effect": [np.nan, 0.8, 1.5, np.nan, np.nan, 2.0],
            "effect_ci_low": [np.nan, 0.6, 1.7, np.nan, np.nan, np.nan],
            "effect_ci_high": [np.nan, 1.1, 2.5, np.nan, np.nan, 3.0]}
    es = compute("GEN", cols, scale="log")
    assert es.keep.tolist() == [True, True, False, False, False, False]
    assert es.scale == "log"
    assert "not inside its CI" in es.reasons[2]
    assert "no effect given" in es.reasons[3]
    assert "yi without vi or sei" in es.reasons[4]
    assert "effect_ci_low blank" in es.reasons[5]
    assert es.yi[1] == pytest.approx(np.log(0.8))
    assert "95% CI on the log scale" in es.notes[1]
    assert study_estimate(es)[1] == pytest.approx(0.8)
    # a ratio's CI must be positive on the log scale
    es = compute("GEN", {"effect": [0.1], "effect_ci_low": [-0.2], "effect_ci_high": [0.4]}, scale="log")
    assert "use --scale identity" in es.reasons[0]
    es = compute("GEN", {"effect": [0.1], "effect_ci_low": [-0.2], "effect_ci_high": [0.4]}, scale="identity")
    assert es.keep[0] and study_estimate(es)[0] == pytest.approx(0.1)
    # an estimate with a CI needs the scale stated; yi/vi rows do not
    es = compute("GEN", {"yi": [0.2, np.nan], "sei": [0.1, np.nan], "effect": [np.nan, 1.5],
                         "effect_ci_low": [np.nan, 1.1], "effect_ci_high": [np.nan, 2.0]})
    assert es.keep.tolist() == [True, False] and es.scale == "identity"
    assert "--scale log for ratios" in es.reasons[1]
    assert es.vi[0] == pytest.approx(0.01)


def test_generic_scale_resolves_the_back_transformation():
    assert registry.measure("GEN").back == "identity" and registry.measure("GEN").null == 0.0
    on_log = registry.measure("GEN", "log")
    assert on_log.back == "exp" and on_log.null == 1.0 and on_log.log_axis
    assert transform_back("GEN", [0.0, np.log(2)], scale="log") == pytest.approx([1.0, 2.0])
    assert transform_back("GEN", [0.0, 0.5]) == pytest.approx([0.0, 0.5])
    with pytest.raises(UsageError, match="unknown scale"):
        compute("GEN", {"yi": [0.1], "vi": [0.1]}, scale="logit")
    with pytest.raises(UsageError, match="--scale applies to GEN"):
        compute("MD", _means(), scale="log")


def test_blank_cells_never_raise_and_bad_columns_do():
    for name in registry.measures(every=True):
        spec = registry.measure(name)
        if spec.family == "counts":
            continue
        es = compute(name, {col: [np.nan, np.nan] for col in spec.inputs})
        assert es.k == 2 and not es.keep.any() and all(es.reasons)
    with pytest.raises(UsageError, match="must be numbers"):
        compute("MD", {"mean_t": ["a"]})
    with pytest.raises(UsageError, match="has 2 values but mean_t has 1"):
        compute("MD", {"mean_t": [1.0], "sd_t": [1.0, 2.0]})


def test_transform_back_of_each_new_measure():
    x = np.array([-0.5, 0.0, 0.3, np.nan])
    for name in registry.measures(every=True):
        spec = registry.measure(name)
        if spec.family == "counts":
            continue
        out = transform_back(name, x)
        expected = {"identity": x, "exp": np.exp(x), "tanh": np.tanh(x)}[spec.back]
        np.testing.assert_allclose(out, expected, equal_nan=True)


def test_default_measures_per_family():
    assert registry.default_measure(True, "means_two") == "MD"
    assert registry.default_measure(False, "means_paired") == "MC"
    assert registry.default_measure(False, "means_one") == "MN"
    assert registry.default_measure(True, "rates_two") == "IRR"
    assert registry.default_measure(False, "rates_one") == "IR"
    assert registry.default_measure(False, "correlations") == "ZCOR"
    assert registry.default_measure(False, "generic") == "GEN"
    for family in registry.families():
        for two_arm in (True, False):
            assert registry.measure(registry.default_measure(two_arm, family)).family == family


def test_command_line_offers_a_family_once_the_loader_reads_it():
    import msc_meta.data.schema  # noqa: F401  (the loader reads every family's columns)

    assert "MD" in registry.measures() and registry.is_measure("MD")
    registry.remove_table_family("means_two")
    try:
        assert "MD" not in registry.measures()
    finally:
        registry.add_table_family("means_two")
    assert registry.measures(family="means_two") == tuple(
        m for m in registry.measures() if registry.measure(m).family == "means_two")
    assert "MD" in registry.measures()
    with pytest.raises(KeyError):
        registry.add_table_family("ratios")
