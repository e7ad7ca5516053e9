"""Binomial-normal GLMM (metafor rma.glmm(measure="PLO"), lme4 AGQ) against R fixtures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from msc_meta.errors import ComputationError, UsageError
from msc_meta.pooling.glmm import agq_deviance, gauss_hermite_normal, glmm_plo

FIXTURES = Path(__file__).parent / "fixtures"


def _load(name):
    return json.loads((FIXTURES / name).read_text())


# name -> relative tolerance. lme4's own optimum/Hessian carry noise:
# - pritz1997 (nAGQ=7) and the singular tiny set agree to ~1e-7;
# - the Laplace fit (nAGQ=1): lme4's finite-difference Hessian of a deviance
#   whose PIRLS weights lag one iteration is ~1e-5 off (beta, tau2 agree to 1e-7);
# - 0/n and n/n studies with tau2 ~ 9: the likelihood is flat and lme4's AGQ
#   deviance differs from the exact one by ~5e-8, moving the optimum ~4e-6.
CASES = {
    "glmm_pritz1997.json": 1e-6,
    "glmm_tiny.json": 1e-6,
    "glmm_pritz1997_laplace.json": 1e-4,
    "glmm_zero_all.json": 1e-4,
}


@pytest.fixture(scope="module")
def fits():
    out = {}
    for name in CASES:
        fx = _load(name)
        out[name] = (fx, glmm_plo(fx["xi"], fx["ni"], n_agq=fx["n_agq"]))
    return out


def test_fixtures_record_call_and_versions():
    for name in CASES:
        fx = _load(name)
        assert "rma.glmm(measure=\"PLO\"" in fx["call"] and f"nAGQ={fx['n_agq']}" in fx["call"]
        assert fx["metafor_version"] == "3.8.1" and fx["lme4_version"] and fx["r_version"]


@pytest.mark.parametrize("name", list(CASES))
def test_glmm_matches_metafor(fits, name):
    fx, fit = fits[name]
    rel = CASES[name]
    p = fit.pool
    assert p.k == fx["k"]
    assert fit.beta == pytest.approx(fx["b"], rel=rel)
    assert p.theta == fit.beta
    assert fit.se == pytest.approx(fx["se"], rel=rel)
    assert p.stat == pytest.approx(fx["zval"], rel=rel)
    assert p.theta_ci_low == pytest.approx(fx["ci_lb"], rel=rel)
    assert p.theta_ci_high == pytest.approx(fx["ci_ub"], rel=rel)
    assert fit.tau2 == pytest.approx(fx["tau2"], rel=rel, abs=1e-10)
    assert p.i2 == pytest.approx(fx["I2"], rel=rel, abs=1e-10)
    assert p.h2 == pytest.approx(fx["H2"], rel=rel)
    assert p.theta_pi_low == pytest.approx(fx["pi_lb"], rel=rel)
    assert p.theta_pi_high == pytest.approx(fx["pi_ub"], rel=rel)
    # p-values: a relative error e in z moves p by ~z^2 e.
    assert p.pval == pytest.approx(fx["pval"], rel=rel * max(1.0, fx["zval"] ** 2))


@pytest.mark.parametrize("name", list(CASES))
def test_glmm_heterogeneity_tests_match_metafor(fits, name):
    fx, fit = fits[name]
    # The tests come from glm() fits (no lme4 noise): tight except where the
    # saturated fit of an n/n study stops at R's IRLS criterion (~1e-7).
    assert fit.vt == pytest.approx(fx["vt"], rel=1e-10)
    assert fit.qe_df == fx["QE_df"]
    assert fit.qe_wld == pytest.approx(fx["QE_Wld"], rel=1e-6)
    assert fit.qe_wld_pval == pytest.approx(fx["QEp_Wld"], rel=1e-6)
    assert fit.qe_lrt == pytest.approx(fx["QE_LRT"], rel=1e-6)
    assert fit.qe_lrt_pval == pytest.approx(fx["QEp_LRT"], rel=1e-6)
    assert fit.pool.q == fit.qe_wld and fit.pool.q_df == fx["QE_df"]


def test_agq_deviance_is_lme4s(fits):
    for name in ("glmm_pritz1997.json", "glmm_zero_all.json", "glmm_tiny.json"):
        fx, fit = fits[name]
        assert fit.deviance == pytest.approx(fx["lme4_agq_deviance"], rel=1e-6)


def test_laplace_loglik_is_lme4s(fits):
    # For nAGQ = 1 lme4 reports -2 log L with the binomial constants.
    fx, fit = fits["glmm_pritz1997_laplace.json"]
    assert -2.0 * fit.loglik == pytest.approx(fx["lme4_agq_deviance"], rel=1e-6)


def test_deviance_at_metafor_estimates_is_not_lower(fits):
    # Our optimum is at least as good as R's under the exact AGQ objective.
    for name in CASES:
        fx, fit = fits[name]
        z, w = gauss_hermite_normal(fx["n_agq"])
        x, n = np.array(fx["xi"], float), np.array(fx["ni"], float)
        dev_r, _ = agq_deviance(fx["b"], math.sqrt(fx["tau2"]), x, n, z, w)
        assert fit.deviance <= dev_r + 1e-9


def test_gauss_hermite_rule_is_lme4s():
    z, w = gauss_hermite_normal(7)
    # lme4::GHrule(7)
    assert z[-1] == pytest.approx(3.7504397177257438, rel=1e-12)
    assert z[-2] == pytest.approx(2.3667594107345415, rel=1e-12)
    assert w[3] == pytest.approx(0.45714285714285713, rel=1e-12)
    assert w[0] == pytest.approx(0.00054826885597221724, rel=1e-10)
    assert w.sum() == pytest.approx(1.0)


def test_more_nodes_converge():
    fx = _load("glmm_pritz1997.json")
    a = glmm_plo(fx["xi"], fx["ni"], n_agq=15)
    b = glmm_plo(fx["xi"], fx["ni"], n_agq=25)
    assert a.beta == pytest.approx(b.beta, rel=1e-5)
    assert a.tau2 == pytest.approx(b.tau2, rel=1e-4)


def test_pool_result_shape(fits):
    _, fit = fits["glmm_pritz1997.json"]
    p = fit.pool
    assert p.method == "GLMM" and p.measure == "PLO" and p.random and p.test == "z"
    assert p.estimate == pytest.approx(1 / (1 + math.exp(-fit.beta)))
    assert p.ci_low == pytest.approx(1 / (1 + math.exp(-p.theta_ci_low)))
    assert p.tau == pytest.approx(math.sqrt(p.tau2))
    d = fit.to_dict()
    assert d["weights"] == [None] * p.k                     # no study weights in a GLMM
    assert d["qe_lrt"] == pytest.approx(fit.qe_lrt) and d["n_agq"] == 7
    assert any("no continuity correction" in note for note in p.notes)


def test_boundary_fit_is_the_fixed_effect_logistic_model(fits):
    _, fit = fits["glmm_tiny.json"]
    assert fit.tau2 == 0.0
    assert fit.beta == pytest.approx(math.log(12 / 3), rel=1e-9)        # 12 of 15 events pooled
    assert fit.se == pytest.approx(math.sqrt(1 / (15 * 0.8 * 0.2)), rel=1e-9)
    assert any("boundary" in note for note in fit.pool.notes)


def test_glmm_input_errors():
    with pytest.raises(UsageError):
        glmm_plo([1], [5])
    with pytest.raises(UsageError):
        glmm_plo([1, 6], [5, 5])
    with pytest.raises(UsageError):
        glmm_plo([1, 2], [5, 5, 5])
    with pytest.raises(ComputationError):
        glmm_plo([0, 0, 0], [5, 6, 7])
    with pytest.raises(ComputationError):
        glmm_plo([5, 6], [5, 6])


# ---------------------------------------------------------------- two-arm OR (UM.FS)

OR_CASES = ("glmm_or_nielweise2007.json", "glmm_or_tiny.json")


@pytest.fixture(scope="module")
def or_fits():
    from msc_meta.pooling.glmm import glmm_or

    out = {}
    for name in OR_CASES:
        fx = _load(name)
        out[name] = (fx, glmm_or(fx["ai"], fx["n1i"], fx["ci"], fx["n2i"], n_agq=fx["n_agq"]))
    return out


@pytest.mark.parametrize("name", OR_CASES)
def test_glmm_or_matches_metafor_umfs(or_fits, name):
    # lme4 optimises k + 2 parameters and differentiates numerically in all of
    # them: its se is ~3e-6 off (beta, tau2 agree to ~1e-7), hence 1e-4.
    fx, fit = or_fits[name]
    p = fit.pool
    assert "model=\"UM.FS\"" in fx["call"]
    assert p.k == fx["k"] and p.measure == "OR" and p.method == "GLMM"
    for mine, key in ((fit.beta, "b"), (fit.se, "se"), (p.stat, "zval"), (fit.tau2, "tau2"),
                      (p.i2, "I2"), (p.h2, "H2"), (p.theta_ci_low, "ci_lb"), (p.theta_ci_high, "ci_ub"),
                      (p.theta_pi_low, "pi_lb"), (p.theta_pi_high, "pi_ub")):
        assert mine == pytest.approx(fx[key], rel=1e-4, abs=1e-6), key
    assert p.pval == pytest.approx(fx["pval"], rel=1e-4 * max(1.0, fx["zval"] ** 2))
    assert p.estimate == pytest.approx(math.exp(fit.beta))
    for mine, key in ((fit.vt, "vt"), (fit.qe_wld, "QE_Wld"), (fit.qe_wld_pval, "QEp_Wld"),
                      (fit.qe_lrt, "QE_LRT"), (fit.qe_lrt_pval, "QEp_LRT")):
        assert mine == pytest.approx(fx[key], rel=1e-6), key
    assert fit.qe_df == fx["QE_df"]


def test_glmm_or_input_errors():
    from msc_meta.pooling.glmm import glmm_or

    with pytest.raises(UsageError):
        glmm_or([0, 3], [5, 5], [0, 1], [5, 5])          # double-zero study
    with pytest.raises(UsageError):
        glmm_or([1], [5], [0], [5])
    with pytest.raises(ComputationError):
        glmm_or([0, 0], [5, 6], [1, 2], [5, 6])          # no events in any treated arm
