"""Fragility index (Walsh 2014) and reverse index, against the brute-force R computation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msc_meta.errors import UsageError
from msc_meta.pooling.exact import fisher_exact_pvalue
from msc_meta.pooling.fragility import fragility_index

FISHER = json.loads((Path(__file__).parent / "fixtures" / "exact_fisher.json").read_text())


@pytest.mark.parametrize("case", FISHER["cases"], ids=lambda c: f"{c['events_t']}/{c['n_t']}-{c['events_c']}/{c['n_c']}")
def test_fragility_matches_r_fixture(case):
    res = fragility_index(case["events_t"], case["n_t"], case["events_c"], case["n_c"])
    assert res.fisher_pval == pytest.approx(case["fisher_pval"], rel=1e-6)
    assert res.significant is case["significant"]
    assert res.fragility_index == case["fragility_index"]


def test_cx601_week24_fragility_is_2():
    # 53/107 vs 36/105: p = 0.027; two more placebo responders make p >= 0.05.
    res = fragility_index(53, 107, 36, 105)
    assert res.significant and res.fragility_index == 2 and res.changed_arm == "control"
    assert fisher_exact_pvalue(53, 54, 37, 68) < 0.05
    assert fisher_exact_pvalue(53, 54, 38, 67) >= 0.05


def test_fragility_index_is_the_first_crossing():
    res = fragility_index(30, 100, 15, 100)
    m = res.fragility_index
    assert all(fisher_exact_pvalue(30, 70, 15 + j, 85 - j) < 0.05 for j in range(m))
    assert fisher_exact_pvalue(30, 70, 15 + m, 85 - m) >= 0.05


def test_lower_proportion_arm_is_changed_even_with_more_events():
    # 6/100 vs 5/10: the control arm has fewer events but the higher proportion;
    # the treatment arm (6%) is the one moved toward the other.
    res = fragility_index(6, 100, 5, 10)
    assert res.changed_arm == "treatment" and res.fragility_index == 15


def test_reverse_index_minimum_over_splits():
    res = fragility_index(3, 5, 1, 5)
    assert not res.significant and res.fragility_index == 2 and res.changed_arm == "both"
    # neither single change suffices
    assert fisher_exact_pvalue(4, 1, 1, 4) >= 0.05 and fisher_exact_pvalue(3, 2, 0, 5) >= 0.05
    assert fisher_exact_pvalue(4, 1, 0, 5) < 0.05


def test_tiny_trial_fragility_1():
    res = fragility_index(4, 5, 0, 5)
    assert res.significant and res.fragility_index == 1


def test_to_dict_keys():
    d = fragility_index(53, 107, 36, 105).to_dict()
    assert {"events_t", "n_t", "events_c", "n_c", "fisher_pval", "significant", "fragility_index"} <= set(d)


def test_bad_counts_raise_usage_error():
    with pytest.raises(UsageError):
        fragility_index(6, 5, 1, 5)
    with pytest.raises(UsageError):
        fragility_index(1, 5, 1, 0)
