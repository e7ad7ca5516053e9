"""Binomial-normal GLMM (metafor rma.glmm(measure="PLO"), lme4 AGQ) against R fixtures."""

from __future__ import annotations

import functools
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


# ---------------------------------------------------------------- the optimiser

PLO_STARTS = [(0.05, -3.0), (0.3, 0.0), (1.0, 2.0), (3.0, 1.0), (8.0, -1.0)]
OR_STARTS = [(0.05, -2.0), (0.3, 0.0), (1.0, 1.5), (3.0, -0.5)]


def _pool_tiny_plo():
    fx = _load("pool_tiny.json")
    return fx["x"], fx["n"], 7


def _plo_data(name):
    if name == "pool_tiny.json":
        return _pool_tiny_plo()
    fx = _load(name)
    return fx["xi"], fx["ni"], fx["n_agq"]


@pytest.mark.parametrize("name", ["glmm_pritz1997.json", "glmm_zero_all.json", "pool_tiny.json",
                                  "glmm_tiny.json"])
def test_glmm_plo_same_optimum_from_every_start(name):
    x, n, n_agq = _plo_data(name)
    ref = glmm_plo(x, n, n_agq=n_agq)
    for start in PLO_STARTS:
        fit = glmm_plo(x, n, n_agq=n_agq, starts=[start])
        assert fit.beta == pytest.approx(ref.beta, rel=1e-8, abs=1e-10), start
        assert fit.tau2 == pytest.approx(ref.tau2, rel=1e-8, abs=1e-10), start
        assert fit.se == pytest.approx(ref.se, rel=1e-8), start
        assert fit.deviance == pytest.approx(ref.deviance, rel=1e-12), start


@pytest.mark.parametrize("name", OR_CASES)
def test_glmm_or_same_optimum_from_every_start(name):
    from msc_meta.pooling.glmm import glmm_or

    fx = _load(name)
    args = (fx["ai"], fx["n1i"], fx["ci"], fx["n2i"])
    ref = glmm_or(*args, n_agq=fx["n_agq"])
    for start in OR_STARTS:
        fit = glmm_or(*args, n_agq=fx["n_agq"], starts=[start])
        assert fit.beta == pytest.approx(ref.beta, rel=1e-8, abs=1e-10), start
        assert fit.tau2 == pytest.approx(ref.tau2, rel=1e-8, abs=1e-10), start
        assert fit.se == pytest.approx(ref.se, rel=1e-8), start


def test_final_gradient_is_zero(fits, or_fits):
    # The exact gradient of the deviance in (tau, beta) at the reported optimum ...
    for _, fit in list(fits.values()) + list(or_fits.values()):
        assert fit.tau2 == 0.0 or max(abs(g) for g in fit.gradient) < 1e-9, fit.gradient
    # ... and, independently, central differences of the AGQ deviance at it.
    for name in ("glmm_pritz1997.json", "glmm_zero_all.json"):
        fx, fit = fits[name]
        z, w = gauss_hermite_normal(fx["n_agq"])
        x, n = np.array(fx["xi"], float), np.array(fx["ni"], float)
        h = 1e-5
        tau = math.sqrt(fit.tau2)
        g_tau = (agq_deviance(fit.beta, tau + h, x, n, z, w)[0] - agq_deviance(fit.beta, tau - h, x, n, z, w)[0]) / (2 * h)
        g_beta = (agq_deviance(fit.beta + h, tau, x, n, z, w)[0] - agq_deviance(fit.beta - h, tau, x, n, z, w)[0]) / (2 * h)
        assert abs(g_tau) < 1e-7 and abs(g_beta) < 1e-7, (g_tau, g_beta)


def test_agq_gradient_matches_finite_differences():
    # The analytic gradient (through the modes and the AGQ scale) at arbitrary points.
    from msc_meta.pooling.glmm import _agq_terms

    z, w = gauss_hermite_normal(7)
    rng = np.random.default_rng(7)
    for c in (np.array([1.0]), np.array([0.5, -0.5])):
        m = c.shape[0]
        n = rng.integers(3, 40, size=(6, m)).astype(float)
        x = np.floor(rng.random((6, m)) * (n + 1))
        x[0, 0], x[1, -1] = 0.0, n[1, -1]
        a = rng.normal(size=(6, m))
        u0 = np.zeros(6)
        for theta in (0.0, 0.4, 2.5):
            _, _, g_a, g_t = _agq_terms(a, c, theta, x, n, z, w, u0, True)
            h = 1e-6
            for j in range(m):
                e = np.zeros((6, m))
                e[:, j] = h
                fd = (_agq_terms(a + e, c, theta, x, n, z, w, u0)[0] - _agq_terms(a - e, c, theta, x, n, z, w, u0)[0]) / (2 * h)
                assert np.allclose(g_a[:, j], fd, rtol=1e-6, atol=1e-7)
            fd = (_agq_terms(a, c, theta + h, x, n, z, w, u0)[0] - _agq_terms(a, c, theta - h, x, n, z, w, u0)[0]) / (2 * h)
            assert np.allclose(g_t, fd, rtol=1e-6, atol=1e-7)


def test_glmm_search_is_bounded_by_iterations(monkeypatch):
    # The Newton search has a finite bound and ends in a clear error.
    import msc_meta.pooling.glmm as glmm

    monkeypatch.setattr(glmm, "_minimise", functools.partial(glmm._minimise, max_iter=1))
    fx = _load("glmm_pritz1997.json")
    with pytest.raises(ComputationError, match="the GLMM did not converge"):
        glmm.glmm_plo(fx["xi"], fx["ni"])
