"""The two-arm GLMM's rule for near-separated data (msc_meta.pooling.glmm_checks.or_divergence).

A fit whose tau² passes OR_TAU2_MAX = 100 (log-OR scale) is refused with a
message that names the studies with a zero cell and methods that run on
the same counts; near-separated data whose maximum lies below the rule are
fitted as metafor fits them (tests/r/fixtures_glmm_separation.R).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from msc_meta.errors import ComputationError
from msc_meta.pooling import glmm, glmm_checks, mh

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "glmm_or_separation.json").read_text())
CASES = {c["name"]: c for c in FIXTURE["cases"]}


def _counts(case):
    return [np.array(case[key], dtype=float) for key in ("ai", "n1i", "ci", "n2i")]


def _counting(monkeypatch):
    """Count the AGQ evaluations of glmm_or's objective."""
    seen = {}
    original = glmm._or_objective

    def wrapped(*args, **kwargs):
        deviance, gradient, state = original(*args, **kwargs)
        seen["state"] = state
        return deviance, gradient, state

    monkeypatch.setattr(glmm, "_or_objective", wrapped)
    return seen


def test_fixture_records_what_metafor_returns():
    assert FIXTURE["metafor_version"] == "3.8.1" and "UM.FS" in CASES["diverging"]["call"]
    # metafor returns tau² ~ 1.7e3 on these data, without a warning
    assert CASES["diverging"]["tau2"] > 1000 and not CASES["diverging"]["warnings"]


def test_diverging_fit_is_refused_early_with_what_runs_instead(monkeypatch):
    seen = _counting(monkeypatch)
    a, n1, c, n2 = _counts(CASES["diverging"])
    with pytest.raises(ComputationError) as err:
        glmm.glmm_or(a, n1, c, n2)
    message = str(err.value)
    assert message.startswith("the GLMM did not converge: its tau² ran past 100 on the log-OR scale")
    assert "3 of the 4 studies (number 1, 2, 3 in the order given) have a zero cell" in message
    assert "use --method MH or --method PETO on the raw counts" in message
    # the rule, not the evaluation budget, stopped it (that needed 1,607 evaluations)
    assert seen["state"]["calls"] < glmm._OR_MAX_EVALUATIONS / 10
    # and what it suggests does run on these counts
    for fit in (mh.pool_mh("OR", a, n1, c, n2, cc=0), mh.pool_peto(a, n1, c, n2)):
        assert math.isfinite(fit.theta) and math.isfinite(fit.se) and fit.se > 0


@pytest.mark.parametrize("name", ["quasi_separated_1", "quasi_separated_2"])
def test_near_separated_data_below_the_rule_are_fitted_as_metafor(name):
    case = CASES[name]
    a, n1, c, n2 = _counts(case)
    assert glmm_checks.zero_cell_studies(a, n1, c, n2).any()
    fit = glmm.glmm_or(a, n1, c, n2)
    assert fit.tau2 < glmm_checks.OR_TAU2_MAX
    assert fit.beta == pytest.approx(case["b"], rel=1e-6)
    assert fit.tau2 == pytest.approx(case["tau2"], rel=1e-6)
    # the likelihood is flat out there: our optimum is at least as good as lme4's
    nodes, weights = glmm.gauss_hermite_normal(7)
    deviance, _, _ = glmm._or_objective(np.column_stack([a, c]), np.column_stack([n1, n2]), nodes, weights)
    ours = deviance(np.array([math.sqrt(fit.tau2), fit.beta]))
    assert ours <= deviance(np.array([math.sqrt(case["tau2"]), case["b"]])) + 1e-12


def test_ordinary_sparse_data_do_not_trigger_the_rule():
    fit = glmm.glmm_or([3, 0, 5, 7, 2], [10, 12, 5, 30, 8], [1, 2, 4, 2, 3], [10, 11, 6, 28, 9])
    assert 0 < fit.tau2 < 1


def test_rule_suggests_peto_alone_when_the_mh_odds_ratio_is_infinite():
    # no control event anywhere outside tables with no treated non-event: MH's S = 0
    a, n1, c, n2 = (np.array(v, dtype=float) for v in ([5, 20, 3], [20, 20, 10], [0, 3, 0], [20, 20, 10]))
    message = glmm_checks.or_divergence(a, n1, c, n2, 150.0)
    assert "use --method PETO (the MH odds ratio is 0 or infinite here)" in message
    with pytest.raises(ComputationError):
        mh.pool_mh("OR", a, n1, c, n2, cc=0)
    assert glmm_checks.or_divergence(a, n1, c, n2, 99.0) is None


def test_divergence_possible_flags_zero_cells_and_far_apart_odds_ratios():
    # zero cells: only the fit can tell (fires on "diverging", not on the quasi-separated cases)
    for name in ("diverging", "quasi_separated_1"):
        assert glmm_checks.divergence_possible(*_counts(CASES[name]))
    # no zero cell, but log ORs -13.8 and +13.8: the rule fires, so the spread must flag it
    far = [np.array(v, dtype=float) for v in ([1, 999, 50], [1000, 1000, 100], [999, 1, 50], [1000, 1000, 100])]
    assert not glmm_checks.zero_cell_studies(*far).any()
    assert glmm_checks.divergence_possible(*far)
    with pytest.raises(ComputationError, match="tau² ran past 100"):
        glmm.glmm_or(*far)
    # log ORs -2.6 and +2.6 (spread 5.3 < 10): not flagged, and the fit converges well below the rule
    near = [np.array(v, dtype=float) for v in ([30, 300, 50], [1000, 1000, 100], [300, 30, 50], [1000, 1000, 100])]
    assert not glmm_checks.divergence_possible(*near)
    assert glmm.glmm_or(*near).tau2 < glmm_checks.OR_TAU2_MAX / 10
