"""Leave-one-out, cumulative and influence analyses against metafor fixtures.

References: tests/r/fixtures_diagnostics.R (leave1out, cumul, influence on
dat.bcg, log RR, ten model settings).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from msc_meta.errors import UsageError
from msc_meta.pooling.sensitivity import (cumulative, cumulative_order, influence_diagnostics,
                                          leave_one_out)

FIXTURES = Path(__file__).parent / "fixtures"
BCG = json.loads((FIXTURES / "diag_bcg_data.json").read_text())
SENS = json.loads((FIXTURES / "diag_sensitivity.json").read_text())
LABELS = [f"trial{t}" for t in BCG["trial"]]
IDS = [f"{c['method']}-{c['test']}" for c in SENS["cases"]]

SUBSET_FIELDS = [("estimate", "theta"), ("se", "se"), ("zval", "stat"), ("pval", "pval"),
                 ("ci_lb", "theta_ci_low"), ("ci_ub", "theta_ci_high"), ("Q", "q"),
                 ("Qp", "q_pval"), ("tau2", "tau2"), ("I2", "i2"), ("H2", "h2")]
# I² and H² amplify a tau² that converged onto the boundary 0 (~1e-12) by
# 100/s²; there the absolute tolerance is what matters.
ABS = {"I2": 1e-8, "H2": 1e-9, "tau2": 1e-10}


def close(actual, expected, rel=1e-6, abs_=1e-10):
    expected = np.array([np.nan if x is None else x for x in np.atleast_1d(expected)], dtype=float)
    assert np.asarray(actual, dtype=float) == pytest.approx(expected, rel=rel, abs=abs_, nan_ok=True)


def check_subsets(fits, reference, method):
    for key, attr in SUBSET_FIELDS:
        if key == "tau2" and method == "FE":
            assert all(f.tau2 == 0 for f in fits)
            continue
        close([getattr(f, attr) for f in fits], reference[key], abs_=ABS.get(key, 1e-10))


@pytest.mark.parametrize("case", SENS["cases"], ids=IDS)
def test_leave_one_out(case):
    fits = leave_one_out(BCG["yi"], BCG["vi"], labels=LABELS, method=case["method"],
                         hksj=case["test"] == "knha")
    assert [f.label for f in fits] == LABELS
    assert all(f.k == 12 for f in fits)
    check_subsets(fits, case["leave1out"], case["method"])


@pytest.mark.parametrize("case", SENS["cases"], ids=IDS)
def test_cumulative_table_order(case):
    fits = cumulative(BCG["yi"], BCG["vi"], labels=LABELS, method=case["method"],
                      hksj=case["test"] == "knha")
    assert [f.k for f in fits] == list(range(1, 14))
    check_subsets(fits, case["cumul"], case["method"])


@pytest.mark.parametrize("case", SENS["cases"], ids=IDS)
def test_cumulative_by_year(case):
    order, missing = cumulative_order(BCG["year"])
    assert missing == 0
    fits = cumulative(BCG["yi"], BCG["vi"], labels=LABELS, order=order, method=case["method"],
                      hksj=case["test"] == "knha")
    assert [f.label for f in fits] == case["cumul_year"]["slab"]
    check_subsets(fits, case["cumul_year"], case["method"])


@pytest.mark.parametrize("case", SENS["cases"], ids=IDS)
def test_influence(case):
    rows = influence_diagnostics(BCG["yi"], BCG["vi"], labels=LABELS, method=case["method"],
                                 hksj=case["test"] == "knha")
    ref = case["influence"]
    for key, attr in [("rstudent", "rstudent"), ("dffits", "dffits"), ("cook_d", "cooks_d"),
                      ("cov_r", "cov_r"), ("tau2_del", "tau2_del"), ("QE_del", "qe_del"),
                      ("hat", "hat"), ("weight", "weight"), ("dfbs", "dfbetas")]:
        close([getattr(r, attr) for r in rows], ref[key])
    assert [r.influential for r in rows] == ref["inf"]
    assert [r.study_id for r in rows] == LABELS


def test_fixtures_flag_some_influential_studies():
    assert any(any(c["influence"]["inf"]) for c in SENS["cases"])


def test_cumulative_order_rules():
    order, missing = cumulative_order([3, None, 1, 3, "", 2])
    assert order.tolist() == [2, 5, 0, 3, 1, 4] and missing == 2
    order, _ = cumulative_order(["b", "a", "10", "b"])      # text sorts as text
    assert order.tolist() == [2, 1, 0, 3]
    order, _ = cumulative_order(["1e7", "9e7", "3e7"])      # numbers written as text
    assert order.tolist() == [0, 2, 1]


def test_natural_scale_and_pft_harmonic_mean():
    from msc_meta.effects import escalc, transform_back

    es = escalc("PFT", np.array([3, 5, 9, 2]), np.array([10, 12, 20, 8]))
    fits = leave_one_out(es.yi, es.vi, method="DL", measure="PFT", ni=es.ni)
    for i, fit in enumerate(fits):
        keep = np.arange(4) != i
        expected = transform_back("PFT", np.array([fit.theta]), ni=es.ni[keep])[0]
        assert fit.estimate == pytest.approx(expected, rel=1e-12)
    rr = leave_one_out(BCG["yi"], BCG["vi"], measure="RR")
    assert rr[0].estimate == pytest.approx(np.exp(rr[0].theta), rel=1e-12)


def test_needs_two_studies():
    with pytest.raises(UsageError):
        leave_one_out([0.1], [0.1])
    with pytest.raises(UsageError):
        cumulative([0.1, 0.2], [0.1, 0.1], order=[0, 0])
