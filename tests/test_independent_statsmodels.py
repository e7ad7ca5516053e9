"""msc-meta against statsmodels, an implementation written independently of ours and of metafor.

statsmodels is a test dependency only (pyproject's ``test`` extra): nothing in
``src/`` imports it. Here it is a second referee next to the metafor fixtures:

- ``statsmodels.stats.meta_analysis.combine_effects`` for the DerSimonian-Laird
  and Paule-Mandel random-effects pools (and the common-effect pool and the
  Knapp-Hartung/HKSJ variance it also returns), on dat.bcg;
- ``statsmodels.api.WLS`` for the common-effect (FE) meta-regression
  coefficients, on dat.bcg with the moderators of tests/fixtures/diag_metareg.json.

Data: yi/vi of tests/fixtures/rma_bcg.json and diag_bcg_data.json (metafor escalc).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
# a plain import, not importorskip: the test extra declares statsmodels, and a referee that
# silently skips itself when missing would check nothing
import statsmodels.api as sm
from statsmodels.stats.meta_analysis import combine_effects

from msc_meta.pooling.metareg import fit_mods
from msc_meta.pooling.rma import pool_rma
from msc_meta.pooling.tau2 import tau2_dl, tau2_pm

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
BCG = json.loads((FIXTURES / "rma_bcg.json").read_text())
BCG_DATA = json.loads((FIXTURES / "diag_bcg_data.json").read_text())
METAREG = json.loads((FIXTURES / "diag_metareg.json").read_text())

RTOL = 1e-6


def bcg_case(measure, method, test="z"):
    return next(c for c in BCG["cases"]
                if c["name"] == f"bcg_{measure}_{method}_{test}" and c["level"] == 95)


def yv(measure):
    case = bcg_case(measure, "FE")
    return np.array(case["yi"], dtype=float), np.array(case["vi"], dtype=float)


# statsmodels' names: method_re "dl" (= "chi2") and "pm" (= "iterated"); its Paule-Mandel
# iteration stops at |Q(tau²) - (k - 1)| < atol (default 1e-5), so it is tightened here.
SM_KW = {"DL": {"method_re": "dl"}, "PM": {"method_re": "pm", "atol": 1e-12, "maxiter": 1000}}


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
@pytest.mark.parametrize("method", ["DL", "PM"])
def test_random_effects_pool_matches_combine_effects(measure, method):
    yi, vi = yv(measure)
    ref = combine_effects(yi, vi, **SM_KW[method])
    # statsmodels' DL does not truncate a negative tau² at 0; on dat.bcg it is positive anyway
    assert ref.tau2 > 0
    ours = pool_rma(yi, vi, method=method, measure=measure)
    assert ours.tau2 == pytest.approx(ref.tau2, rel=RTOL)
    assert ours.theta == pytest.approx(ref.mean_effect_re, rel=RTOL)
    assert ours.se == pytest.approx(ref.sd_eff_w_re, rel=RTOL)
    # our public tau² estimators on their own
    tau2_fn = {"DL": tau2_dl, "PM": tau2_pm}[method]
    assert float(tau2_fn(yi, vi)) == pytest.approx(ref.tau2, rel=RTOL)
    # Knapp-Hartung (HKSJ): statsmodels' var_hksj_re = sum(w (y - mu)²) / ((k - 1) sum w)
    hk = pool_rma(yi, vi, method=method, measure=measure, hksj=True)
    assert hk.se == pytest.approx(np.sqrt(ref.var_hksj_re), rel=RTOL)
    # and the common-effect pool both compute on the way
    fe = pool_rma(yi, vi, method="FE", measure=measure)
    assert fe.theta == pytest.approx(ref.mean_effect_fe, rel=RTOL)
    assert fe.se == pytest.approx(ref.sd_eff_w_fe, rel=RTOL)
    assert fe.q == pytest.approx(ref.q, rel=RTOL)


@pytest.mark.parametrize("method", ["DL", "PM"])
def test_combine_effects_agrees_with_the_metafor_fixture(method):
    # the referee itself is checked against metafor, so a disagreement above points at us
    yi, vi = yv("RR")
    ref = combine_effects(yi, vi, **SM_KW[method])
    case = bcg_case("RR", method)
    assert ref.tau2 == pytest.approx(case["tau2"], rel=RTOL)
    assert ref.mean_effect_re == pytest.approx(case["b"], rel=RTOL)
    assert ref.sd_eff_w_re == pytest.approx(case["se"], rel=RTOL)


def design(mods):
    """Design matrix of dat.bcg for the moderators used here (intercept first)."""
    ablat = np.array(BCG_DATA["ablat"], dtype=float)
    year = np.array(BCG_DATA["year"], dtype=float)
    alloc = np.array(BCG_DATA["alloc"])
    ones = np.ones_like(ablat)
    if mods == "ablat":
        return np.column_stack([ones, ablat]), ("intercept", "ablat")
    if mods == "ablat + year":
        return np.column_stack([ones, ablat, year]), ("intercept", "ablat", "year")
    if mods == "alloc":  # R factor, alphabetical: "alternate" is the reference level
        cols = [ones] + [(alloc == lev).astype(float) for lev in ("random", "systematic")]
        return np.column_stack(cols), ("intercept", "allocrandom", "allocsystematic")
    raise AssertionError(mods)


@pytest.mark.parametrize("mods", ["ablat", "ablat + year", "alloc"])
def test_fe_meta_regression_matches_wls(mods):
    yi = np.array(BCG_DATA["yi"], dtype=float)
    vi = np.array(BCG_DATA["vi"], dtype=float)
    X, names = design(mods)
    wls = sm.WLS(yi, X, weights=1.0 / vi).fit()
    ours = fit_mods(yi, vi, X, names=names, method="FE")
    np.testing.assert_allclose(ours.beta, wls.params, rtol=RTOL)
    # WLS treats the weights as known only up to a common factor and estimates the residual
    # scale sigma² = sum(w e²) / (k - p) (its `scale`, = metafor's s2w), so
    # Var(b) = sigma² (X'WX)^-1 and wls.bse = sqrt(scale) * sqrt(diag((X'WX)^-1)).
    # A meta-regression takes the sampling variances vi as known (sigma² = 1):
    # se = sqrt(diag((X'WX)^-1)) = wls.bse / sqrt(wls.scale).
    np.testing.assert_allclose(ours.se, wls.bse / np.sqrt(wls.scale), rtol=RTOL)
    # the same through statsmodels' own fixed-scale covariance
    fixed = sm.WLS(yi, X, weights=1.0 / vi).fit(cov_type="fixed scale", cov_kwds={"scale": 1.0})
    np.testing.assert_allclose(ours.se, fixed.bse, rtol=RTOL)
    # QE is the weighted residual sum of squares; under Knapp-Hartung the se are WLS's own
    assert ours.qe == pytest.approx(wls.ssr, rel=RTOL)
    knha = fit_mods(yi, vi, X, names=names, method="FE", knha=True)
    assert knha.s2w == pytest.approx(wls.scale, rel=RTOL)
    np.testing.assert_allclose(knha.se, wls.bse, rtol=RTOL)
    # and both agree with metafor rma(yi, vi, mods = ~..., method = "FE")
    case = next(c for c in METAREG["cases"] if c["mods"] == mods and c["method"] == "FE" and c["test"] == "z")
    np.testing.assert_allclose(wls.params, case["beta"], rtol=RTOL)
    np.testing.assert_allclose(fixed.bse, case["se"], rtol=RTOL)


def test_src_never_imports_statsmodels():
    """statsmodels earns its place as a test-only referee; the package itself must not need it.

    Catches ``import statsmodels...``, ``from statsmodels... import`` anywhere (also inside
    functions) and a module name given as a string (``importlib.import_module("statsmodels")``).
    """
    offenders = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                mods = [node.value] if node.value.startswith("statsmodels") else []
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for m in mods
                          if m.split(".")[0] == "statsmodels"]
    assert offenders == []
