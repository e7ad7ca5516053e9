"""msc_meta.pooling.mh against metafor rma.mh() and rma.peto() fixtures.

Fixtures: tests/fixtures/mh_rma_mh.json and mh_rma_peto.json, written by
tests/r/fixtures_effects.R (metafor 3.8.1). The MH cases include dat.yusuf1985 table 6 and
dat.nielweise2007, whose double-zero tables rma.mh() keeps in the estimate but drops from Q
(default drop00 = c(TRUE, FALSE)) for every measure, RD included.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from msc_meta.errors import ComputationError, InputError, UsageError
from msc_meta.pooling.mh import cmh_test, mh_estimate, pool_mh, pool_peto
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


@pytest.mark.parametrize("case", MH["cases"], ids=[c["name"] for c in MH["cases"]])
def test_mh_estimate_is_pool_mh_theta_and_se(case):
    """guidance's cheap check: the same numbers as the whole pool, bit for bit."""
    inp = case["input"]
    tables = [vec(inp[name]) for name in ("events_t", "n_t", "events_c", "n_c")]
    res = pool_mh(case["measure"], *tables, level=case["level"], cc=case["cc"])
    assert mh_estimate(case["measure"], *tables) == (res.theta, res.se)


def test_mh_estimate_refuses_where_pool_mh_does():
    for measure, tables in (("RR", ([0, 0], [10, 10], [1, 2], [10, 10])),
                            ("OR", ([0, 0], [10, 10], [1, 2], [10, 10])),
                            ("RD", ([0, 10], [10, 10], [0, 10], [10, 10]))):
        with pytest.raises(ComputationError) as whole:
            pool_mh(measure, *tables, cc=0)
        with pytest.raises(ComputationError) as alone:
            mh_estimate(measure, *tables)
        assert str(alone.value) == str(whole.value)
    with pytest.raises(UsageError, match="Mantel-Haenszel pools RR, OR or RD"):
        mh_estimate("PLO", [1], [10], [1], [10])


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


# ---------------------------------------------------------------- published sets with double-zero tables
# dat.yusuf1985 table 6 (3 double-zero tables of 21) and dat.nielweise2007 (1 of 18). rma.mh()'s
# default drop00 = c(TRUE, FALSE) drops double-zero tables from Q, its df, I² and H² for every
# measure, RD included (metafor 3.8.1: Q df 17 and 16); the MH estimate and weights use all tables.
PUBLISHED = [c for c in MH["cases"] if c["set"] in ("yusuf1985_t6", "nielweise2007")]


def nan_none(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def test_published_sets_are_in_the_fixture():
    names = {c["name"] for c in PUBLISHED}
    for s in ("yusuf1985_t6", "nielweise2007"):
        for m in ("RR", "OR", "RD"):
            assert f"MH_{m}_{s}_cc0.5_level95" in names
    rd = {c["set"]: c for c in PUBLISHED if c["measure"] == "RD" and c["cc"] == 0.5 and c["level"] == 95}
    assert (rd["yusuf1985_t6"]["k"], rd["yusuf1985_t6"]["k_yi"] - 1) == (21, 17)
    assert (rd["nielweise2007"]["k"], rd["nielweise2007"]["k_yi"] - 1) == (18, 16)


@pytest.mark.parametrize("case", PUBLISHED, ids=[c["name"] for c in PUBLISHED])
def test_q_uses_the_escalc_values_of_rma_mh(case):
    # per-study values behind Q: rma.mh's yi.f / vi.f (NA where drop00 drops the table)
    from msc_meta.pooling.mh import _escalc_for_q

    inp = case["input"]
    es = _escalc_for_q(case["measure"], vec(inp["events_t"]), vec(inp["n_t"]), vec(inp["events_c"]),
                       vec(inp["n_c"]), case["cc"])
    yi_f, vi_f = nan_none(case["yi_f"]), nan_none(case["vi_f"])
    usable = np.isfinite(es.yi) & np.isfinite(es.vi)
    assert usable.tolist() == (np.isfinite(yi_f) & np.isfinite(vi_f)).tolist()
    assert int(usable.sum()) == case["k_yi"]
    np.testing.assert_allclose(es.yi[usable], yi_f[usable], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(es.vi[usable], vi_f[usable], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in PUBLISHED if c["measure"] == "RD" and c["cc"] != 0],
                         ids=lambda c: c["name"])
def test_rd_q_df_follows_rma_mh_default_drop00(case):
    # rma.mh(drop00 = c(FALSE, FALSE)) would keep the double-zero RD tables in Q (df = k - 1);
    # the default, which we follow, drops them.
    inp = case["input"]
    res = pool_mh("RD", vec(inp["events_t"]), vec(inp["n_t"]), vec(inp["events_c"]), vec(inp["n_c"]),
                  level=case["level"], cc=case["cc"])
    assert case["drop00_false"]["k_yi"] == case["k"] > case["k_yi"]
    assert res.q_df == case["k_yi"] - 1 != case["drop00_false"]["k_yi"] - 1
    assert res.q == approx(case["QE"]) and res.q != approx(case["drop00_false"]["QE"])
    assert any(f"Q from the {case['k_yi']} of {case['k']} studies" in n for n in res.notes)


CLI_CASES = [c for c in PUBLISHED if c["cc"] == 0.5 and c["level"] == 95]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c["name"] for c in CLI_CASES])
def test_cli_pool_mh_matches_rma_mh(case, tmp_path, capsys, monkeypatch):
    """`msc-meta pool --measure X --method MH --json` on the published sets, key by key."""
    from msc_meta.cli import main

    inp = case["input"]
    tables = list(zip(inp["events_t"], inp["n_t"], inp["events_c"], inp["n_c"]))
    path = tmp_path / "mh.csv"
    lines = ["study_id,outcome,events_t,n_t,events_c,n_c"]
    lines += [f"s{i + 1},x,{a:g},{n1:g},{c:g},{n2:g}" for i, (a, n1, c, n2) in enumerate(tables)]
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("COLUMNS", "80")
    try:
        main(["pool", "--data", str(path), "--outcome", "x", "--measure", case["measure"],
              "--method", "MH", "--json"])
    except SystemExit as exc:
        assert not exc.code
    doc = json.loads(capsys.readouterr().out)
    double = [(a == 0 and c == 0) or (a == n1 and c == n2) for a, n1, c, n2 in tables]
    # the CLI contract leaves double-zero tables out of RR and OR pools (they add nothing to the
    # MH sums and have metafor weight 0); RD keeps them
    kept = [not d for d in double] if case["measure"] in ("RR", "OR") else [True] * len(tables)
    assert doc["k"] == sum(kept)
    assert len(doc["excluded"]) == len(tables) - sum(kept)
    back = math.exp if case["measure"] in ("RR", "OR") else (lambda v: v)
    assert doc["theta"] == approx(case["beta"])
    assert doc["se"] == approx(case["se"])
    assert doc["estimate"] == approx(back(case["beta"]))
    assert doc["ci_low"] == approx(back(case["ci_lb"]))
    assert doc["ci_high"] == approx(back(case["ci_ub"]))
    assert doc["stat"] == approx(case["zval"])
    assert doc["pval"] == approx(case["pval"])
    assert doc["q"] == approx(case["QE"])
    assert doc["q_df"] == case["k_yi"] - 1
    assert doc["q_pval"] == approx(case["QEp"])
    assert doc["i2"] == approx(case["I2"])
    assert doc["h2"] == approx(case["H2"])
    # per-study values: escalc(add = 1/2, to = "only0") as metafor prints them, weights(res) in percent
    idx = [i for i, k in enumerate(kept) if k]
    studies = {s["study_id"]: s for s in doc["studies"]}
    assert sorted(studies) == sorted(f"s{i + 1}" for i in idx)
    for key, ref in (("yi", "study_yi"), ("vi", "study_vi"), ("ci_low", "study_ci_lb"),
                     ("ci_high", "study_ci_ub")):
        ours = np.array([studies[f"s{i + 1}"][key] for i in idx], dtype=float)
        theirs = nan_none(case[ref])[idx]
        if case["measure"] in ("RR", "OR") and key in ("ci_low", "ci_high"):
            theirs = np.exp(theirs)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-12, err_msg=key)
    weights = np.array([studies[f"s{i + 1}"]["weight"] for i in idx], dtype=float)
    np.testing.assert_allclose(weights, vec(case["weights"])[idx], rtol=1e-6, atol=1e-10)
    assert vec(case["weights"])[[i for i, k in enumerate(kept) if not k]].tolist() == [0.0] * (len(kept) - len(idx))
