"""msc_meta.pooling.rma / tau2 against metafor 3.8.1 (fixtures written by tests/r/fixtures_rma.R)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from msc_meta.errors import ComputationError, InputError, UsageError
from msc_meta.pooling import rma
from msc_meta.pooling.rma import fit_batch, pool_rma, pool_rma_batch, qprofile_tau2_ci
from msc_meta.pooling.tau2 import TAU2_FUNCTIONS, estimate_tau2

FIXTURES = Path(__file__).parent / "fixtures"
REL = 1e-6
ABS = 1e-10
# At the tau² = 0 boundary metafor stops its Fisher scoring near its threshold
# (tau² ~ 1e-13, I² ~ 1e-10 %), this engine closer to 0: I² is in percent,
# so it gets a matching absolute slack.
ABS_KEY = {"I2": 1e-8, "I2_ci_lb": 1e-8}


def _load(name):
    doc = json.loads((FIXTURES / name).read_text())
    assert doc["metafor_version"] == "3.8.1"
    return doc["cases"]


CASES = _load("rma_bcg.json") + _load("rma_pritz1997.json") + _load("rma_edge.json")


def _fit(case, pi):
    return pool_rma(case["yi"], case["vi"], method=case["method"], measure=case["measure"],
                    ni=case["ni"], hksj=case["test"] == "knha", pi=pi, level=case["level"])


def _close(mine, ref, key):
    if ref is None:
        # jsonlite writes R's NA and +-Inf as null
        assert mine is None or not math.isfinite(mine), (key, mine)
        return
    assert mine is not None, (key, ref)
    assert mine == pytest.approx(ref, rel=REL, abs=ABS_KEY.get(key, ABS)), key


def test_fixtures_cover_the_brief():
    names = {c["name"] for c in CASES}
    for measure in ("RR", "OR", "RD"):
        for method in ("FE", "DL", "REML", "ML", "PM", "HE", "SJ", "HS", "EB"):
            for test in ("z", "knha"):
                assert f"bcg_{measure}_{method}_{test}" in names
    for measure in ("PR", "PLO", "PFT", "PAS"):
        for method in ("REML", "DL"):
            assert f"pritz_{measure}_{method}_z" in names
    assert len(CASES) >= 190


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_metafor(case):
    r = _fit(case, pi="z")
    hts = _fit(case, pi="hts")
    random = case["method"] != "FE"
    assert r.k == case["k"]
    assert r.method == case["method"]
    pairs = {
        "b": r.theta, "se": r.se, "ci_lb": r.theta_ci_low, "ci_ub": r.theta_ci_high,
        "zval": r.stat, "pval": r.pval, "tau2": r.tau2, "I2": r.i2, "H2": r.h2,
        "QE": r.q, "QEp": r.q_pval,
        "pi_lb": r.theta_pi_low, "pi_ub": r.theta_pi_high,
        "hts_lb": hts.theta_pi_low, "hts_ub": hts.theta_pi_high,
    }
    if random:
        pairs["se_tau2"] = r.se_tau2
    if random and case["k"] >= 2:
        pairs.update({
            "tau2_ci_lb": r.tau2_ci_low, "tau2_ci_ub": r.tau2_ci_high,
            "I2_ci_lb": r.i2_ci_low, "I2_ci_ub": r.i2_ci_high,
            "H2_ci_lb": r.h2_ci_low, "H2_ci_ub": r.h2_ci_high,
        })
    else:
        assert r.tau2_ci_low is None and r.tau2_ci_high is None
    for key, mine in pairs.items():
        _close(mine, case[key], key)
    assert r.tau == pytest.approx(math.sqrt(r.tau2), rel=1e-12)
    assert r.q_df == case["k"] - 1
    np.testing.assert_allclose(r.weights, case["weights"], rtol=REL, atol=ABS)
    assert sum(r.weights) == pytest.approx(100.0, rel=1e-12)
    # test statistic distribution: metafor's ddf is k-1 under knha (z for k = 1)
    if case["ddf"] is None:
        assert r.test == "z" and r.df is None
    else:
        assert r.test == "t" and r.df == case["ddf"] and r.hksj
    nat = case["natural"]
    for key, mine in {"estimate": r.estimate, "ci_lb": r.ci_low, "ci_ub": r.ci_high,
                      "pi_lb": r.pi_low, "pi_ub": r.pi_high,
                      "hts_lb": hts.pi_low, "hts_ub": hts.pi_high}.items():
        _close(mine, nat[key], "natural " + key)


@pytest.mark.parametrize("case", [c for c in CASES if c["method"] in ("REML", "DL", "FE")][:40],
                         ids=lambda c: c["name"])
def test_pi_method_recorded(case):
    knha = case["test"] == "knha" and case["k"] > 1
    z = _fit(case, pi="z")
    hts = _fit(case, pi="hts")
    if case["method"] == "FE":
        # metafor predict() gives no prediction interval for a common-effect model
        assert z.pi_method is None and z.pi_low is None and hts.pi_method is None
        return
    assert z.pi_method == ("t" if knha else "z")
    if case["k"] >= 3:
        assert hts.pi_method == "hts"
    else:
        assert hts.pi_method is None and hts.pi_low is None and hts.theta_pi_low is None


def test_eb_equals_pm_intercept_only():
    for case in CASES:
        if case["method"] == "EB":
            eb = _fit(case, "z")
            pm_case = next(c for c in CASES if c["name"] == case["name"].replace("_EB_", "_PM_"))
            pm = _fit(pm_case, "z")
            assert eb.tau2 == pytest.approx(pm.tau2, rel=1e-8, abs=1e-12)


def test_level_changes_only_intervals():
    case = next(c for c in CASES if c["name"] == "bcg_RR_REML_z_level90")
    r = _fit(case, "z")
    assert r.level == 90.0
    r95 = pool_rma(case["yi"], case["vi"], method="REML")
    assert r.theta == r95.theta and r.tau2 == r95.tau2
    assert r.theta_ci_high - r.theta_ci_low < r95.theta_ci_high - r95.theta_ci_low


# ---------------------------------------------------------------------------
# batch == one at a time
# ---------------------------------------------------------------------------

BATCH_SOURCES = [c for c in CASES if c["method"] == "REML" and c["test"] == "z"]
FIELDS = ("theta", "se", "theta_ci_low", "theta_ci_high", "stat", "pval", "tau2", "se_tau2",
          "i2", "h2", "q", "q_pval", "theta_pi_low", "theta_pi_high", "tau2_ci_low",
          "tau2_ci_high", "i2_ci_low", "i2_ci_high", "h2_ci_low", "h2_ci_high")


def _padded(cases):
    kmax = max(len(c["yi"]) for c in cases)
    Y = np.full((len(cases), kmax), np.nan)
    V = np.full((len(cases), kmax), np.nan)
    for g, c in enumerate(cases):
        Y[g, :len(c["yi"])] = c["yi"]
        V[g, :len(c["vi"])] = c["vi"]
    return Y, V, np.isfinite(Y)


def _same(a, b, rel=1e-10):
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        assert (a is None or not math.isfinite(a)) == (b is None or not math.isfinite(b)), (a, b)
        return
    # abs: tau² at its boundary is ~1e-14 either way; padding changes summation order
    assert a == pytest.approx(b, rel=rel, abs=1e-10)


@pytest.mark.parametrize("method", ["FE", "DL", "REML", "ML", "PM", "HE", "SJ", "HS", "EB"])
@pytest.mark.parametrize("hksj", [False, True])
@pytest.mark.parametrize("pi", ["hts", "z"])
def test_batch_equals_each_alone(method, hksj, pi):
    cases = BATCH_SOURCES * 3          # many groups with k from 1 to 14
    Y, V, mask = _padded(cases)
    rng = np.random.default_rng(7)
    Y = np.where(mask, Y + rng.normal(0, 0.05, Y.shape), np.nan)   # distinct groups
    batch = pool_rma_batch(Y, V, mask, method=method, hksj=hksj, pi=pi)
    fit = fit_batch(Y, V, mask, method=method, hksj=hksj, pi=pi)
    assert fit.converged.all() and fit.groups == len(cases)
    for g in range(len(cases)):
        alone = pool_rma(Y[g][mask[g]], V[g][mask[g]], method=method, hksj=hksj, pi=pi)
        for field in FIELDS:
            _same(getattr(batch[g], field), getattr(alone, field))
        np.testing.assert_allclose(batch[g].weights, alone.weights, rtol=1e-10)
        assert batch[g].pi_method == alone.pi_method and batch[g].test == alone.test
        assert batch[g].notes == alone.notes


def test_batch_pft_uses_each_groups_ni():
    pft = [c for c in CASES if c["measure"] == "PFT" and c["test"] == "z"]
    Y, V, mask = _padded(pft + pft[:1])
    ni = np.full(Y.shape, np.nan)
    for g, c in enumerate(pft + pft[:1]):
        ni[g, :len(c["ni"])] = c["ni"]
    ni[-1, :3] = 5.0      # a different harmonic mean changes only the last group
    out = pool_rma_batch(Y, V, mask, method="REML", measure="PFT", ni=ni)
    assert out[0].estimate == pytest.approx(pft[0]["natural"]["estimate"], rel=REL)
    assert out[-1].theta == out[0].theta and out[-1].estimate != out[0].estimate


# ---------------------------------------------------------------------------
# non-convergence and bad input
# ---------------------------------------------------------------------------

def _bcg_rr():
    return next(c for c in CASES if c["name"] == "bcg_RR_REML_z")


@pytest.mark.parametrize("method,hint", [("REML", "try --method PM or DL"), ("ML", "try --method REML"),
                                         ("EB", "try --method PM")])
def test_non_convergence_raises_with_message(method, hint):
    c = _bcg_rr()
    with pytest.raises(ComputationError) as err:
        pool_rma(c["yi"], c["vi"], method=method, maxiter=2)
    assert str(err.value).startswith(f"{method} did not converge in 2 iterations")
    assert hint in str(err.value)
    assert err.value.exit_code == 1


def test_oscillating_fisher_scoring_is_rescued():
    """metafor's full-step Fisher scoring never converges on these data (the R
    script checks that it errors); the reference is metafor with stepadj=0.5."""
    for test in ("z", "knha"):
        case = next(c for c in CASES if c["name"] == f"oscillating_REML_{test}")
        assert "stepadj=0.5" in case["call"]
        r = _fit(case, "z")
        assert r.tau2 == pytest.approx(case["tau2"], rel=REL)
        assert any("root finding on the same score equation" in n for n in r.notes)
    est = estimate_tau2("REML", case["yi"], case["vi"])
    assert est.rescued[0] and est.converged[0]


def test_non_convergence_is_per_group_in_batch():
    c = _bcg_rr()
    lowhet = next(x for x in CASES if x["name"] == "lowhet_REML_z")
    Y, V, mask = _padded([lowhet, c])
    fit = fit_batch(Y, V, mask, method="REML", maxiter=3)
    assert fit.converged.tolist() == [True, False]
    assert fit.messages[0] is None and "REML did not converge in 3 iterations" in fit.messages[1]
    assert np.isnan(fit.theta[1]) and np.isfinite(fit.theta[0])
    assert fit.theta[0] == pytest.approx(lowhet["b"], rel=REL)
    out = pool_rma_batch(Y, V, mask, method="REML", maxiter=3, errors="none")
    assert out[1] is None and out[0].theta == pytest.approx(lowhet["b"], rel=REL)
    with pytest.raises(ComputationError, match=r"\(group 2\)"):
        pool_rma_batch(Y, V, mask, method="REML", maxiter=3)
    with pytest.raises(ComputationError, match="group 2"):
        rma.tau2_reml(Y, V, mask, maxiter=3)


def test_bad_input_is_a_clear_error():
    with pytest.raises(InputError, match="sampling variance vi must be positive"):
        pool_rma([0.1, 0.2], [0.1, 0.0])
    with pytest.raises(InputError, match="yi is not finite"):
        pool_rma([0.1, float("nan")], [0.1, 0.1])
    with pytest.raises(UsageError, match="unknown method"):
        pool_rma([0.1, 0.2], [0.1, 0.1], method="XYZ")
    with pytest.raises(UsageError, match="mh"):
        pool_rma([0.1, 0.2], [0.1, 0.1], method="MH")
    with pytest.raises(UsageError, match="no studies"):
        pool_rma([], [])
    with pytest.raises(UsageError, match="prediction interval"):
        pool_rma([0.1, 0.2], [0.1, 0.1], pi="t")
    with pytest.raises(UsageError, match="ni"):
        pool_rma([0.5, 0.6], [0.01, 0.02], measure="PFT")
    with pytest.raises(UsageError, match="no studies to pool in group 2"):
        fit_batch(np.ones((2, 2)), np.ones((2, 2)), np.array([[True, True], [False, False]]))


# ---------------------------------------------------------------------------
# the vectorised tau² functions other modules use
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", sorted(TAU2_FUNCTIONS))
def test_tau2_functions_match_fixtures(method):
    cases = [c for c in CASES if c["method"] == method and c["test"] == "z" and c["k"] > 1]
    for c in cases:
        assert TAU2_FUNCTIONS[method](c["yi"], c["vi"]) == pytest.approx(c["tau2"], rel=REL, abs=ABS)
    Y, V, mask = _padded(cases)
    got = TAU2_FUNCTIONS[method](Y, V, mask)
    assert got.shape == (len(cases),)
    np.testing.assert_allclose(got, [c["tau2"] for c in cases], rtol=REL, atol=ABS)


def test_estimate_tau2_reports_iterations_and_truncation():
    lowhet = next(c for c in CASES if c["name"] == "lowhet_DL_z")
    est = estimate_tau2("DL", lowhet["yi"], lowhet["vi"])
    assert est.tau2[0] == 0.0 and est.truncated[0] and est.iterations[0] == 0
    est = estimate_tau2("REML", _bcg_rr()["yi"], _bcg_rr()["vi"])
    assert est.converged[0] and 1 <= est.iterations[0] < 100


def test_qprofile_bounds_conventions():
    wide = next(c for c in CASES if c["name"] == "wide_DL_z")
    lo, hi, at_limit = qprofile_tau2_ci(wide["yi"], wide["vi"], None, [wide["tau2"]])
    assert at_limit[0] and hi[0] == pytest.approx(max(100.0, 10 * wide["tau2"]))
    assert lo[0] == pytest.approx(wide["tau2_ci_lb"], rel=REL)
    ident = next(c for c in CASES if c["name"] == "identical_REML_z")
    lo, hi, at_limit = qprofile_tau2_ci(ident["yi"], ident["vi"], None, [0.0])
    assert lo[0] == 0.0 and hi[0] == 0.0 and not at_limit[0]


def test_notes_say_what_happened():
    wide = next(c for c in CASES if c["name"] == "wide_REML_z")
    r = pool_rma(wide["yi"], wide["vi"])
    assert any("search limit" in n for n in r.notes)
    k2 = next(c for c in CASES if c["name"] == "k2_RR_DL_z")
    r = pool_rma(k2["yi"], k2["vi"], method="DL")
    assert any("k = 2" in n for n in r.notes) and any("k >= 3" in n for n in r.notes)
    assert r.pi_low is None
    r = pool_rma([0.3], [0.1], hksj=True)
    assert r.test == "z" and any("HKSJ needs k >= 2" in n for n in r.notes)


def test_to_dict_is_plain_json():
    ident = next(c for c in CASES if c["name"] == "identical_REML_knha")
    d = pool_rma(ident["yi"], ident["vi"], hksj=True).to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["stat"] is None          # se = 0 under HKSJ: z = inf -> null
    assert d["weights"] == pytest.approx([48.0, 24.0, 16.0, 12.0])


def test_pool_path_imports_stay_light():
    code = ("import sys, msc_meta.pooling.rma as m; m.pool_rma([0.1, 0.3, 0.2], [0.01, 0.02, 0.03], measure='RR');"
            "bad = [x for x in ('scipy.stats', 'pandas', 'statsmodels', 'matplotlib') if x in sys.modules];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
