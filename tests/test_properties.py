"""Property tests (hypothesis) of the pooling engine: what must hold for *any* valid input.

The fixtures compare the engine with metafor on chosen data sets; these
tests check invariants on random data, zero cells included:

- the order of the studies does not matter;
- swapping treatment and control inverts RR and OR and negates RD, study by
  study (escalc) and pooled (every method, MH and Peto included);
- tau² >= 0, I² in [0, 100], H² >= 1 for random-effects fits;
- the random-effects CI (z test) is never narrower than the common-effect CI;
- k = 1 gives the study's own estimate;
- a very precise added study pulls the common-effect estimate to itself, and
  gets the largest weight in any fit;
- any table of valid counts gives finite results for every measure and
  method, or one of the documented errors.

Example counts are modest (``max_examples`` 60-150, no deadline) so that the
file runs in well under a minute on two cores. Examples are derandomised (the
same every run) so that CI is reproducible; set ``MSC_META_EXPLORE=1`` to
draw fresh random examples when hunting for bugs.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msc_meta.data.load import OutcomeTable, Row
from msc_meta.effects import escalc
from msc_meta.errors import ComputationError, MscMetaError, UsageError
from msc_meta.pooling.analysis import run_pool
from msc_meta.pooling.rma import pool_rma

IV_METHODS = ("FE", "DL", "REML", "ML", "PM", "HE", "SJ", "HS", "EB")
RE_METHODS = IV_METHODS[1:]
SINGLE = ("PR", "PLO", "PFT", "PAS")
TWO = ("RR", "OR", "RD")
# every (measure, method) pair the CLI accepts
COMBOS = ([(m, meth) for m in SINGLE + TWO for meth in IV_METHODS]
          + [(m, "MH") for m in TWO] + [("OR", "PETO")])

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=not os.environ.get("MSC_META_EXPLORE"))

# --------------------------------------------------------------------------- strategies

finite_y = st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
positive_v = st.floats(0.01, 4.0, allow_nan=False, allow_infinity=False)


@st.composite
def effect_sizes(draw, min_k=1, max_k=10):
    k = draw(st.integers(min_k, max_k))
    yi = np.array(draw(st.lists(finite_y, min_size=k, max_size=k)))
    vi = np.array(draw(st.lists(positive_v, min_size=k, max_size=k)))
    return yi, vi


@st.composite
def arm(draw, max_n=120):
    """(events, n), with 0 and n (the zero-cell cases) drawn often."""
    n = draw(st.integers(1, max_n))
    events = draw(st.one_of(st.just(0), st.just(n), st.integers(0, n)))
    return events, n


@st.composite
def two_arm_counts(draw, min_k=1, max_k=7):
    k = draw(st.integers(min_k, max_k))
    return [draw(arm()) + draw(arm()) for _ in range(k)]


def table_of(studies) -> OutcomeTable:
    """An in-memory outcome table of (events_t, n_t, events_c, n_c) tuples, outcome 'x'."""
    rows = tuple(Row(row_number=i + 2, study_id=f"S{i + 1}", outcome="x", events_t=a, n_t=n1,
                     events_c=c, n_c=n2)
                 for i, (a, n1, c, n2) in enumerate(studies))
    return OutcomeTable(path="memory.csv", columns=("study_id", "outcome", "events_t", "n_t", "events_c", "n_c"),
                        rows=rows)


def pool_or_none(studies, **options):
    """run_pool, or None for the documented refusals (nothing to pool; MH/Peto undefined)."""
    try:
        return run_pool(table_of(studies), outcome="x", **options)
    except UsageError as err:
        assert "nothing left to pool" in str(err) or "nothing to pool" in str(err), err
        return None
    except ComputationError as err:
        assert options.get("method") in ("MH", "PETO"), err
        assert "undefined" in str(err), err
        return None


def close(a, b, rel=1e-7, abs_=1e-9) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == pytest.approx(b, rel=rel, abs=abs_)


# --------------------------------------------------------------------------- order

@settings(max_examples=100, **SETTINGS)
@given(effect_sizes(min_k=2), st.sampled_from(IV_METHODS), st.booleans(), st.randoms(use_true_random=False))
def test_rma_does_not_depend_on_study_order(es, method, hksj, rnd):
    yi, vi = es
    order = list(range(yi.size))
    rnd.shuffle(order)
    a = pool_rma(yi, vi, method=method, hksj=hksj, pi="z")
    b = pool_rma(yi[order], vi[order], method=method, hksj=hksj, pi="z")
    for key in ("theta", "se", "tau2", "i2", "q", "theta_ci_low", "theta_ci_high", "pval"):
        assert close(getattr(a, key), getattr(b, key)), key
    assert np.allclose(np.array(a.weights)[order], b.weights, rtol=1e-7, atol=1e-9)


@settings(max_examples=100, **SETTINGS)
@given(two_arm_counts(min_k=2), st.sampled_from(COMBOS), st.randoms(use_true_random=False))
def test_pool_does_not_depend_on_row_order(studies, combo, rnd):
    measure, method = combo
    shuffled = list(studies)
    rnd.shuffle(shuffled)
    a = pool_or_none(studies, measure=measure, method=method)
    b = pool_or_none(shuffled, measure=measure, method=method)
    assert (a is None) == (b is None)
    if a is None:
        return
    for key in ("k", "theta", "se", "estimate", "ci_low", "ci_high", "tau2", "i2", "q"):
        assert close(getattr(a.result, key), getattr(b.result, key)), key


# --------------------------------------------------------------------------- swapping arms

def _swap(studies):
    return [(c, n2, a, n1) for a, n1, c, n2 in studies]


@settings(max_examples=100, **SETTINGS)
@given(two_arm_counts(), st.sampled_from(TWO), st.sampled_from([0.5, 0.25, 0.0]))
def test_swapping_arms_negates_escalc(studies, measure, cc):
    a, n1, c, n2 = (np.array(x, dtype=float) for x in zip(*studies))
    fwd = escalc(measure, a, n1, c, n2, cc=cc)
    rev = escalc(measure, c, n2, a, n1, cc=cc)
    assert np.array_equal(fwd.keep, rev.keep)
    keep = fwd.keep
    # -0.0 == 0.0, so RD = 0 and log RR = 0 compare equal
    assert np.allclose(fwd.yi[keep], -rev.yi[keep], rtol=1e-12, atol=1e-13)
    assert np.allclose(fwd.vi[keep], rev.vi[keep], rtol=1e-12, atol=0)


@settings(max_examples=120, **SETTINGS)
@given(two_arm_counts(), st.sampled_from([c for c in COMBOS if c[0] in TWO]), st.booleans())
def test_swapping_arms_inverts_the_pooled_effect(studies, combo, hksj):
    measure, method = combo
    hksj = hksj and method not in ("MH", "PETO")
    fwd = pool_or_none(studies, measure=measure, method=method, hksj=hksj)
    rev = pool_or_none(_swap(studies), measure=measure, method=method, hksj=hksj)
    assert (fwd is None) == (rev is None)
    if fwd is None:
        return
    f, r = fwd.result, rev.result
    assert f.k == r.k
    assert close(f.theta, -r.theta, abs_=1e-10)
    assert close(f.theta_ci_low, -r.theta_ci_high, abs_=1e-10)
    assert close(f.se, r.se) and close(f.tau2, r.tau2) and close(f.q, r.q)
    assert close(f.i2, r.i2, abs_=1e-6)
    if measure == "RD":
        assert close(f.estimate, -r.estimate, abs_=1e-10)
    else:
        assert close(f.estimate, 1.0 / r.estimate)
        assert close(f.ci_low, 1.0 / r.ci_high)


# --------------------------------------------------------------------------- ranges

@settings(max_examples=150, **SETTINGS)
@given(effect_sizes(min_k=2), st.sampled_from(IV_METHODS), st.booleans())
def test_tau2_nonnegative_and_i2_a_percentage(es, method, hksj):
    yi, vi = es
    r = pool_rma(yi, vi, method=method, hksj=hksj)
    assert r.tau2 >= 0.0 and r.tau == pytest.approx(math.sqrt(r.tau2))
    assert 0.0 <= r.i2 <= 100.0
    assert r.q >= 0.0 and 0.0 <= r.q_pval <= 1.0
    assert sum(r.weights) == pytest.approx(100.0) and min(r.weights) > 0
    if method == "FE":
        assert r.tau2 == 0.0
    else:
        assert r.h2 >= 1.0 - 1e-12
        if r.tau2_ci_low is not None:
            assert 0.0 <= r.tau2_ci_low <= r.tau2_ci_high
            assert 0.0 <= r.i2_ci_low <= r.i2_ci_high <= 100.0


@settings(max_examples=120, **SETTINGS)
@given(effect_sizes(min_k=2), st.sampled_from(RE_METHODS), st.sampled_from([90.0, 95.0, 99.0]))
def test_random_effects_ci_never_narrower_than_common_effect(es, method, level):
    """With a z test, se_RE = 1/sqrt(Σ 1/(v+τ²)) >= 1/sqrt(Σ 1/v) because τ² >= 0.

    (Not so under --hksj: the HKSJ factor is not truncated at 1, as in
    metafor, so that CI may be narrower.)
    """
    yi, vi = es
    re = pool_rma(yi, vi, method=method, level=level)
    fe = pool_rma(yi, vi, method="FE", level=level)
    width_re = re.theta_ci_high - re.theta_ci_low
    width_fe = fe.theta_ci_high - fe.theta_ci_low
    assert width_re >= width_fe * (1.0 - 1e-12)
    assert re.se >= fe.se * (1.0 - 1e-12)


# --------------------------------------------------------------------------- k = 1

@settings(max_examples=60, **SETTINGS)
@given(effect_sizes(min_k=1, max_k=1), st.sampled_from(IV_METHODS), st.booleans())
def test_k1_rma_is_the_study_itself(es, method, hksj):
    yi, vi = es
    r = pool_rma(yi, vi, method=method, hksj=hksj)
    assert r.k == 1 and r.theta == pytest.approx(yi[0], rel=1e-14, abs=1e-15)
    assert r.se == pytest.approx(math.sqrt(vi[0]), rel=1e-14)
    assert r.tau2 == 0.0 and r.q == 0.0 and r.weights == (pytest.approx(100.0),)
    assert r.test == "z"          # HKSJ needs k >= 2; metafor falls back to z


@settings(max_examples=100, **SETTINGS)
@given(two_arm_counts(min_k=1, max_k=1), st.sampled_from(COMBOS))
def test_k1_pool_gives_the_study_estimate(studies, combo):
    measure, method = combo
    analysis = pool_or_none(studies, measure=measure, method=method)
    if analysis is None:
        return
    (study,) = analysis.studies
    result = analysis.result
    assert result.k == 1
    if method == "PETO":
        return   # Peto's one-step OR is not escalc's OR, even for one table
    a, n1, c, n2 = studies[0]
    if method == "MH" and 0 in (a, n1 - a, c, n2 - c):
        return   # MH uses the raw table; the study's own estimate has the 0.5 correction
    assert result.theta == pytest.approx(study.yi, rel=1e-10, abs=1e-12)
    assert result.estimate == pytest.approx(study.estimate, rel=1e-10, abs=1e-12)


# --------------------------------------------------------------------------- adding a study

@settings(max_examples=100, **SETTINGS)
@given(effect_sizes(min_k=1, max_k=8), finite_y)
def test_precise_new_study_pulls_the_common_effect_to_itself(es, target):
    """FE: θ_new = (S θ_old + w c)/(S + w), a convex combination, so it moves toward c.

    For random-effects fits the added study also changes τ² and with it
    every weight, so θ_new may move away from c (hypothesis finds such
    data for DL, REML, PM, HE, SJ and EB): that is the estimator, not a bug,
    and only the weight ordering below is asserted for them.
    """
    yi, vi = es
    old = pool_rma(yi, vi, method="FE").theta
    tiny = 1e-6 * vi.min()
    new = pool_rma(np.append(yi, target), np.append(vi, tiny), method="FE").theta
    lo, hi = min(old, target), max(old, target)
    assert lo - 1e-12 <= new <= hi + 1e-12
    assert abs(new - target) <= 1e-5 * abs(old - target) + 1e-12
    # at the pooled estimate itself, nothing moves
    same = pool_rma(np.append(yi, old), np.append(vi, tiny), method="FE").theta
    assert same == pytest.approx(old, rel=1e-9, abs=1e-12)


@settings(max_examples=100, **SETTINGS)
@given(effect_sizes(min_k=2, max_k=8), st.sampled_from(RE_METHODS))
def test_study_at_the_pooled_estimate_with_tiny_variance(es, method):
    """Added at θ_old with the smallest variance: it gets the largest weight, and θ stays inside the data."""
    yi, vi = es
    old = pool_rma(yi, vi, method=method)
    y2, v2 = np.append(yi, old.theta), np.append(vi, 1e-6 * vi.min())
    new = pool_rma(y2, v2, method=method)
    assert new.weights[-1] >= max(new.weights[:-1]) * (1 - 1e-12)
    assert y2.min() - 1e-12 <= new.theta <= y2.max() + 1e-12
    # and the estimate moves toward the new study from where the old
    # studies alone would put it under the new τ²
    w_old = 1.0 / (vi + new.tau2)
    theta_old_reweighted = float(np.sum(w_old * yi) / np.sum(w_old))
    assert abs(new.theta - old.theta) <= abs(theta_old_reweighted - old.theta) + 1e-12


# --------------------------------------------------------------------------- finite results

_FIELDS = ("theta", "se", "theta_ci_low", "theta_ci_high", "estimate", "ci_low", "ci_high", "q", "stat", "pval")


@settings(max_examples=150, **SETTINGS)
@given(two_arm_counts(), st.sampled_from(COMBOS), st.booleans(), st.sampled_from([0.5, 0.1, 0.0]),
       st.sampled_from(["hts", "z"]))
def test_any_valid_counts_give_finite_results(studies, combo, hksj, cc, pi):
    """Every measure and method, zero cells included: finite numbers, or a documented refusal."""
    measure, method = combo
    hksj = hksj and method not in ("MH", "PETO")
    analysis = pool_or_none(studies, measure=measure, method=method, hksj=hksj, cc=cc, pi=pi)
    if analysis is None:
        return
    r = analysis.result
    values = {key: getattr(r, key) for key in _FIELDS}
    if r.hksj and r.se == 0.0:
        # every study has the same estimate: HKSJ's residual variance is 0,
        # so se = 0 and z = θ/0, exactly as metafor; the output says so
        assert any("se = 0" in note for note in analysis.notes), analysis.notes
        values = {k: v for k, v in values.items() if k not in ("stat", "pval")}
    if method == "MH" and cc == 0.0 and r.q == math.inf:
        # a study with zero variance under --cc 0 makes Q infinite, as metafor (QE = Inf)
        assert any("Q, I² and H² undefined" in note for note in analysis.notes), analysis.notes
        del values["q"]
    bad = {k: v for k, v in values.items() if v is None or not math.isfinite(v)}
    assert not bad, (bad, studies)
    if r.k > 1:
        assert math.isfinite(r.tau2) and r.tau2 >= 0
        assert 0.0 <= r.i2 <= 100.0 or (math.isnan(r.i2) and r.q == math.inf)
    assert r.ci_low <= r.estimate <= r.ci_high
    if measure in ("PLO", "PFT", "PAS"):
        assert 0.0 <= r.ci_low and r.ci_high <= 1.0
    elif measure == "PR":
        # a Wald CI of a raw proportion may leave [0, 1], as in metafor
        assert 0.0 <= r.estimate <= 1.0
    elif measure == "RD":
        assert -1.0 - 1e-12 <= r.estimate <= 1.0 + 1e-12
    else:
        assert r.estimate > 0
    assert len(analysis.studies) == r.k
    for s in analysis.studies:
        own = (s.yi, s.vi, s.estimate, s.ci_low, s.ci_high)
        if all(math.isfinite(x) for x in own) and s.vi > 0:
            continue
        # MH and Peto pool the raw table, so they keep a study with a zero
        # cell under --cc 0 whose own estimate is undefined or has zero
        # variance (as escalc(add=0)); nothing else may be non-finite
        assert method in ("MH", "PETO") and cc == 0.0, s
        assert 0 in (s.events_t, s.n_t - s.events_t, s.events_c, s.n_c - s.events_c), s
        assert math.isnan(s.yi) or s.vi == 0.0, s


@settings(max_examples=60, **SETTINGS)
@given(st.lists(arm(), min_size=1, max_size=8), st.sampled_from(SINGLE), st.sampled_from(IV_METHODS))
def test_single_arm_estimates_are_proportions(arms, measure, method):
    studies = [(e, n, None, None) for e, n in arms]
    try:
        analysis = run_pool(table_of(studies), outcome="x", measure=measure, method=method)
    except MscMetaError as err:
        assert "nothing left to pool" in str(err)
        return
    r = analysis.result
    assert r.ci_low <= r.estimate <= r.ci_high
    assert 0.0 <= r.estimate <= 1.0
    if measure != "PR":     # PR's Wald CI may leave [0, 1], as in metafor
        assert 0.0 <= r.ci_low and r.ci_high <= 1.0
    p = [e / n for e, n in arms]
    # a pooled proportion of studies all at 0 (or all at 1) stays at the edge's side
    if max(p) == 0.0:
        assert r.estimate < 0.5
    if min(p) == 1.0:
        assert r.estimate > 0.5


@settings(max_examples=25, deadline=None, derandomize=SETTINGS["derandomize"],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(two_arm_counts(min_k=1, max_k=5), st.sampled_from(["OR", "PLO"]))
def test_glmm_finite_or_refused(monkeypatch, studies, measure):
    """The binomial GLMM: finite results, or a one-line refusal (separation, no convergence), never a hang."""
    import msc_meta.pooling.glmm as glmm

    monkeypatch.setattr(glmm, "_OR_MAX_EVALUATIONS", 4000)    # keeps this test fast
    try:
        analysis = run_pool(table_of(studies), outcome="x", measure=measure, method="GLMM")
    except UsageError as err:
        assert "nothing" in str(err) or "GLMM" in str(err), err
        return
    except ComputationError as err:
        assert "GLMM" in str(err), err
        return
    r = analysis.result
    for key in ("theta", "se", "estimate", "ci_low", "ci_high", "stat", "pval"):
        assert math.isfinite(getattr(r, key)), (key, studies)
    assert r.ci_low <= r.estimate <= r.ci_high
    if r.k > 1:
        assert r.tau2 >= 0 and math.isfinite(r.tau2)
