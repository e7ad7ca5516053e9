"""Exact / score proportion intervals and Fisher's exact test against R (tests/r/fixtures_glmm.R)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from msc_meta.errors import UsageError
from msc_meta.pooling.exact import fisher_exact_pvalue, fisher_exact_pvalues, proportion_ci

FIXTURES = Path(__file__).parent / "fixtures"


def _load(name):
    return json.loads((FIXTURES / name).read_text())


CI = _load("exact_proportion_ci.json")
FISHER = _load("exact_fisher.json")


def test_fixtures_record_their_provenance():
    for fx in (CI, FISHER):
        assert fx["r_version"].startswith("R version")
        assert fx["generated_by"] == "tests/r/fixtures_glmm.R"


@pytest.mark.parametrize("method", ["exact", "wilson"])
def test_proportion_ci_matches_r(method):
    cases = CI["cases"]
    for level in sorted({c["level"] for c in cases}):
        sub = [c for c in cases if c["level"] == level]
        x = np.array([c["x"] for c in sub])
        n = np.array([c["n"] for c in sub])
        res = proportion_ci(x, n, method=method, level=level)   # one vectorised call
        want_low = np.array([c[f"{method}_low"] for c in sub])
        want_high = np.array([c[f"{method}_high"] for c in sub])
        assert res.ci_low == pytest.approx(want_low, rel=1e-6, abs=1e-10)
        assert res.ci_high == pytest.approx(want_high, rel=1e-6, abs=1e-10)
        assert res.estimate == pytest.approx(x / n)


def test_exact_bounds_are_0_and_1_at_the_edges():
    res = proportion_ci([0, 5], [5, 5], method="exact")
    assert res.ci_low[0] == 0.0 and res.ci_high[1] == 1.0
    # 0/5: upper bound 1 - 0.025^(1/5) (closed form of the Clopper-Pearson bound)
    assert res.ci_high[0] == pytest.approx(1 - 0.025 ** (1 / 5), rel=1e-12)
    assert res.ci_low[1] == pytest.approx(0.025 ** (1 / 5), rel=1e-12)


def test_wald_is_clipped_and_degenerate_at_the_edges():
    res = proportion_ci([0, 1, 5], [5, 5, 5], method="wald")
    assert res.ci_low[0] == res.ci_high[0] == 0.0
    assert res.ci_low[1] == 0.0          # 0.2 - 1.96 * 0.179 < 0, clipped
    assert res.ci_high[1] == pytest.approx(0.2 + 1.959963984540054 * np.sqrt(0.2 * 0.8 / 5))


def test_proportion_ci_broadcasts_and_keeps_shape():
    res = proportion_ci(np.array([[1, 2], [3, 4]]), 10)
    assert res.ci_low.shape == (2, 2)


@pytest.mark.parametrize("bad", [dict(x=6, n=5), dict(x=-1, n=5), dict(x=1, n=0), dict(x=1.5, n=5)])
def test_proportion_ci_rejects_impossible_counts(bad):
    with pytest.raises(UsageError):
        proportion_ci(bad["x"], bad["n"])


def test_proportion_ci_rejects_unknown_method_and_level():
    with pytest.raises(UsageError):
        proportion_ci(1, 5, method="agresti")
    with pytest.raises(UsageError):
        proportion_ci(1, 5, level=100)


def test_fisher_matches_r_two_sided_and_one_sided():
    for c in FISHER["cases"]:
        a, n1, cc, n2 = c["events_t"], c["n_t"], c["events_c"], c["n_c"]
        assert fisher_exact_pvalue(a, n1 - a, cc, n2 - cc) == pytest.approx(c["fisher_pval"], rel=1e-6)
        assert fisher_exact_pvalue(a, n1 - a, cc, n2 - cc, "greater") == pytest.approx(c["pval_greater"], rel=1e-6)
        assert fisher_exact_pvalue(a, n1 - a, cc, n2 - cc, "less") == pytest.approx(c["pval_less"], rel=1e-6)


def test_fisher_vectorised_wrapper_agrees():
    cases = FISHER["cases"]
    p = fisher_exact_pvalues([c["events_t"] for c in cases], [c["n_t"] for c in cases],
                             [c["events_c"] for c in cases], [c["n_c"] for c in cases])
    assert p == pytest.approx([c["fisher_pval"] for c in cases], rel=1e-6)


def test_fisher_cx601_week24():
    # README example: ADMIRE-CD (Cx601) week 24, 53/107 vs 36/105; R fisher.test() gives 0.02673.
    assert fisher_exact_pvalue(53, 54, 36, 69) == pytest.approx(0.0267316120278027, rel=1e-9)


def test_fisher_symmetric_tables_count_ties():
    # 5/10 vs 5/10: every table at least as extreme -> p = 1 exactly (R's 1e-7 tie tolerance).
    assert fisher_exact_pvalue(5, 5, 5, 5) == pytest.approx(1.0, abs=1e-15)


def test_fisher_rejects_negative_cells():
    with pytest.raises(UsageError):
        fisher_exact_pvalue(-1, 3, 2, 2)
