"""msc_meta.pooling.mh against metafor rma.mh() and rma.peto() fixtures.

Fixtures: tests/fixtures/mh_rma_mh.json and mh_rma_peto.json, written by
tests/r/fixtures_effects.R (metafor 3.8.1).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from msc_meta.errors import ComputationError, InputError, UsageError
from msc_meta.pooling.mh import cmh_test, pool_mh, pool_peto
from msc_meta.pooling.results import PoolResult

FIXTURES = Path(__file__).parent / "fixtures"
MH = json.loads((FIXTURES / "mh_rma_mh.json").read_text())
PETO = json.loads((FIXTURES / "mh_rma_peto.json").read_text())


def vec(values):
    return np.atleast_1d(np.array(values, dtype=float))


def approx(value):
    return pytest.approx(value, rel=1e-6, abs=1e-10)


def check_against(res: PoolResult, case):
    assert res.k == case["k"]
    assert res.theta == approx(case["beta"])
    assert res.se == approx(case["se"])
    assert res.stat == approx(case["zval"])
    assert res.pval == approx(case["pval"])
    assert res.theta_ci_low == approx(case["ci_lb"])
    assert res.theta_ci_high == approx(case["ci_ub"])
    back = math.exp if case["measure"] in ("RR", "OR") else (lambda v: v)
    assert res.estimate == approx(back(case["beta"]))
    assert res.ci_low == approx(back(case["ci_lb"]))
    assert res.ci_high == approx(back(case["ci_ub"]))
    assert res.q == approx(case["QE"])
    assert res.q_pval == approx(case["QEp"])
    assert res.q_df == case["k_yi"] - 1
    assert res.i2 == approx(case["I2"])
    assert res.h2 == approx(case["H2"])
    assert res.tau2 == 0.0 and res.tau == 0.0 and not res.random
    assert res.level == case["level"]
    np.testing.assert_allclose(res.weights, vec(case["weights"]), rtol=1e-6, atol=1e-10)
    assert sum(res.weights) == pytest.approx(100.0)


def test_fixtures_record_versions_and_calls():
    for doc in (MH, PETO):
        assert doc["versions"]["metafor"] == "3.8.1"
        assert all(c["call"].startswith(("rma.mh(", "rma.peto(")) for c in doc["cases"])


@pytest.mark.parametrize("case", MH["cases"], ids=[c["name"] for c in MH["cases"]])
def test_pool_mh_matches_rma_mh(case):
    inp = case["input"]
    res = pool_mh(case["measure"], vec(inp["events_t"]), vec(inp["n_t"]), vec(inp["events_c"]),
                  vec(inp["n_c"]), level=case["level"], cc=case["cc"])
    assert res.method == "MH" and res.measure == case["measure"]
    check_against(res, case)
    if case["measure"] == "OR":
        stat, p = cmh_test(vec(inp["events_t"]), vec(inp["n_t"]), vec(inp["events_c"]), vec(inp["n_c"]))
        assert stat == approx(case["MH"])
        assert p == approx(case["MHp"])
        assert any(n.startswith("Cochran-Mantel-Haenszel test") for n in res.notes)


@pytest.mark.parametrize("case", PETO["cases"], ids=[c["name"] for c in PETO["cases"]])
def test_pool_peto_matches_rma_peto(case):
    inp = case["input"]
    res = pool_peto(vec(inp["events_t"]), vec(inp["n_t"]), vec(inp["events_c"]), vec(inp["n_c"]),
                    level=case["level"])
    assert res.method == "PETO" and res.measure == "OR"
    check_against(res, case)


def test_zero_set_q_uses_fewer_studies_and_says_so():
    case = next(c for c in MH["cases"] if c["name"] == "MH_OR_zeros_cc0.5_level95")
    assert case["k_yi"] < case["k"]  # the fixture really exercises drop00
    inp = case["input"]
    res = pool_mh("OR", vec(inp["events_t"]), vec(inp["n_t"]), vec(inp["events_c"]), vec(inp["n_c"]))
    assert any(f"Q from the {case['k_yi']} of {case['k']} studies" in n for n in res.notes)


def test_cc_changes_q_not_the_mh_estimate():
    args = ([0, 3, 7, 12], [20, 15, 30, 40], [4, 0, 5, 20], [20, 14, 28, 41])
    a = pool_mh("OR", *args, cc=0.5)
    b = pool_mh("OR", *args, cc=0.25)
    assert a.theta == b.theta and a.se == b.se
    assert a.q != pytest.approx(b.q)


def test_peto_seed_by_hand():
    # Yusuf et al. 1985: log OR = sum(O - E) / sum(V)
    a, n1, c, n2 = 53.0, 107.0, 36.0, 105.0
    N, m1 = n1 + n2, a + c
    E = m1 * n1 / N
    V = m1 * (N - m1) * n1 * n2 / (N ** 2 * (N - 1))
    res = pool_peto([a], [n1], [c], [n2])
    assert res.theta == pytest.approx((a - E) / V, rel=1e-12)
    assert res.se == pytest.approx(V ** -0.5, rel=1e-12)
    assert res.k == 1 and res.q == 0 and res.q_df == 0 and res.weights == (100.0,)


def test_to_dict_is_plain_json():
    res = pool_mh("RR", [53, 8], [107, 12], [36, 3], [105, 12])
    json.dumps(res.to_dict())


def test_errors():
    with pytest.raises(UsageError, match="Mantel-Haenszel pools RR, OR or RD"):
        pool_mh("PLO", [1], [10], [1], [10])
    with pytest.raises(UsageError, match="same length"):
        pool_mh("RR", [1, 2], [10, 10], [1], [10])
    with pytest.raises(UsageError, match="study 2: events_c is missing"):
        pool_mh("RR", [1, 2], [10, 10], [1, np.nan], [10, 10])
    with pytest.raises(InputError, match=r"events_t \(12\) is larger than n_t"):
        pool_peto([12], [10], [1], [10])
    with pytest.raises(ComputationError, match="no events in the treatment arm"):
        pool_mh("RR", [0, 0], [10, 10], [1, 2], [10, 10])
    with pytest.raises(ComputationError, match="Mantel-Haenszel OR undefined"):
        pool_mh("OR", [0, 0], [10, 10], [1, 2], [10, 10])
    with pytest.raises(ComputationError, match="Peto OR undefined"):
        pool_peto([0, 0], [10, 10], [0, 0], [10, 10])


def test_tables_keep_ignores_cc_but_drops_double_zero():
    from msc_meta.pooling.mh import tables_keep

    keep, reasons = tables_keep("OR", [0, 0, 3, 4], [20, 10, 10, 10], [4, 0, 1, np.nan], [20, 12, 10, np.nan])
    assert keep.tolist() == [True, False, True, False]
    assert reasons[0] is None and "double zero" in reasons[1] and "no control arm" in reasons[3]
    keep, _ = tables_keep("RD", [0], [10], [0], [12])
    assert keep.tolist() == [True]
