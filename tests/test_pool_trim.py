"""The shortcuts of the pool-trim pass give what the general code gives, bit for bit.

The common-effect fit made beside a random-effects one (``rma.pool_rma_pair``: s² and Q
taken from the first fit) against a fit of its own; the Q-profile CI whose root searches
start from the fit's Q and Q' at τ² = 0 against one that evaluates them; escalc's
continuity correction recomputed on the zero-cell rows only against the corrected
copies of every column; the MH estimate without its weights against the full one; and
the REML score's sums with a shared scratch buffer against the plain expressions.
Equality is exact (the bits), not approximate.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msc_meta import effects, registry
from msc_meta.pooling import mh, tau2
from msc_meta.pooling.rma import (
    fit_batch,
    pool_rma,
    pool_rma_batch,
    pool_rma_common,
    pool_rma_pair,
    qprofile_tau2_ci,
)
from tests.test_pool_fast_paths import _bits, _groups


def _same_result(a, b):
    """Two PoolResults (or None) equal field by field, floats by their bits (NaN included)."""
    if a is None or b is None:
        return a is b
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) and isinstance(y, float):
            if _bits(x) != _bits(y):
                return False
        elif isinstance(x, tuple) and x and isinstance(x[0], float):
            if _bits(x) != _bits(y):
                return False
        elif x != y:
            return False
    return True


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans(), st.sampled_from(["REML", "DL", "PM", "ML", "EB"]),
       st.booleans(), st.sampled_from(["hts", "z"]))
def test_the_common_fit_beside_is_a_fit_of_its_own(seed, padded, method, hksj, pi):
    Y, V, mask = _groups(seed, padded)
    kw = dict(measure="RR", pi=pi, level=90.0, errors="none")
    results, commons = pool_rma_pair(Y, V, mask, method=method, hksj=hksj, **kw)
    alone = pool_rma_batch(Y, V, mask, method=method, hksj=hksj, **kw)
    common_alone = pool_rma_batch(Y, V, mask, method="FE", hksj=False, **kw)
    assert all(_same_result(a, b) for a, b in zip(results, alone))
    assert all(_same_result(a, b) for a, b in zip(commons, common_alone))
    fit = fit_batch(Y, V, mask, method=method, hksj=hksj, pi=pi)
    beside = fit_batch(Y, V, mask, method="FE", beside=fit)
    own = fit_batch(Y, V, mask, method="FE")
    for f in dataclasses.fields(own):
        x, y = getattr(beside, f.name), getattr(own, f.name)
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            assert _bits(x) == _bits(y), f.name
        else:
            assert np.array_equal(np.asarray(x), np.asarray(y)) if isinstance(x, np.ndarray) else x == y


def test_pool_rma_common_is_two_pool_rma_calls():
    yi = np.array([0.1, -0.4, 0.9, 0.3, 1.4])
    vi = np.array([0.05, 0.2, 0.1, 0.03, 0.4])
    result, common = pool_rma_common(yi, vi, method="REML", measure="OR", hksj=True)
    assert _same_result(result, pool_rma(yi, vi, method="REML", measure="OR", hksj=True))
    assert _same_result(common, pool_rma(yi, vi, method="FE", measure="OR", hksj=False))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans(), st.sampled_from([50.0, 95.0, 99.9]))
def test_qprofile_started_from_the_fits_q_and_slope_is_qprofile_alone(seed, padded, level):
    Y, V, mask = _groups(seed, padded)
    t2 = tau2.estimate_tau2("REML", Y, V, mask).tau2
    q0, dq0 = tau2.generalized_q(*tau2.as_batch(Y, V, mask)[:3], np.zeros(Y.shape[0]))
    alone = qprofile_tau2_ci(Y, V, mask, t2, level)
    started = qprofile_tau2_ci(Y, V, mask, t2, level, q0=q0, dq0=dq0)
    assert [_bits(a) for a in alone[:2]] == [_bits(a) for a in started[:2]]
    assert alone[2].tolist() == started[2].tolist()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_score_sums_with_a_scratch_buffer_are_the_plain_expressions(seed, padded):
    _, V, mask = _groups(seed, padded)
    A = np.where(mask, 1.0 / V, 0.0)
    c, S = tau2._leave_one_out(A), A.sum(axis=1)
    a2 = A * A
    plain_pp = (a2 * (c * c + tau2._leave_one_out(a2))).sum(axis=1) / (S * S)
    plain_tr = (A * c).sum(axis=1) / S
    scratch = np.full_like(A, np.nan)
    assert _bits(tau2._trace_p1(A, c, S, scratch)) == _bits(plain_tr) == _bits(tau2._trace_p1(A))
    assert _bits(tau2._pp_sums1(A, None, None, c, S, scratch)) == _bits(plain_pp) \
        == _bits(tau2._pp_sums1(A))
    g, h = V, 1.0 / (V + 0.3)
    a2g, a2h = a2 * g, a2 * h
    plain_gh = (a2g * (h * c * c + tau2._leave_one_out(a2h))).sum(axis=1) / (S * S)
    assert _bits(tau2._pp_sums1(A, g, h)) == _bits(plain_gh)


_count = st.integers(0, 30)


@st.composite
def _tables(draw):
    k = draw(st.integers(1, 25))
    rows = []
    for _ in range(k):
        n1, n2 = draw(st.integers(1, 30)), draw(st.integers(1, 30))
        a, c = draw(st.integers(0, n1)), draw(st.integers(0, n2))
        # extremes often: zero cells, full arms, double zeros; now and then a blank
        a = draw(st.sampled_from([a, 0, n1]))
        c = draw(st.sampled_from([c, 0, n2]))
        row = [float(a), float(n1), float(c), float(n2)]
        if draw(st.integers(0, 9)) == 0:
            row[draw(st.integers(0, 3))] = np.nan
        rows.append(row)
    return np.array(rows).T


def _escalc_by_corrected_copies(spec, a, n1, c, n2, cc):
    """The former form: every column corrected by np.where, then the formula, then dropped rows blanked."""
    missing = np.isnan(a) | np.isnan(n1) | np.isnan(c) | np.isnan(n2)
    b, d = n1 - a, n2 - c
    with np.errstate(invalid="ignore"):
        double = ~missing & (((a == 0) & (c == 0)) | ((b == 0) & (d == 0)))
        dropped = double if spec.drop00 else np.zeros_like(missing)
        zero = ~missing & ~dropped & ((a == 0) | (b == 0) | (c == 0) | (d == 0))
    add = cc if spec.uses_cc else 0.0
    cells = [np.where(zero, v + add, v) for v in (a, b, c, d)]
    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi = spec.effect_function()(*cells)
    yi, vi = np.where(dropped, np.nan, yi), np.where(dropped, np.nan, vi)
    return np.where(np.isfinite(yi), yi, np.nan), np.where(np.isfinite(vi), vi, np.nan)


@settings(max_examples=200, deadline=None)
@given(_tables(), st.sampled_from(registry.measures(arms=2, family="counts")),
       st.sampled_from([0.0, 0.5, 0.25]))
def test_escalc_corrects_only_the_zero_cell_rows_as_every_row(tables, measure, cc):
    a, n1, c, n2 = tables
    es = effects.escalc(measure, a, n1, c, n2, cc=cc)
    yi, vi = _escalc_by_corrected_copies(registry.measure(measure), a, n1, c, n2, cc)
    assert _bits(es.yi) == _bits(yi)
    assert _bits(es.vi) == _bits(vi)


@settings(max_examples=100, deadline=None)
@given(_tables(), st.sampled_from(["RR", "OR", "RD"]))
@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt")    # a variance below 0: se NaN
def test_mh_estimate_without_weights_is_the_full_fit(tables, measure):
    ok = ~np.isnan(tables).any(axis=0)
    a, n1, c, n2 = (col[ok] for col in tables)
    if a.size == 0:
        return
    try:
        full = mh._mh_fit(measure, a, n1, c, n2)
    except Exception as err:           # undefined MH: the same refusal without weights
        try:
            mh._mh_fit(measure, a, n1, c, n2, weights=False)
        except type(err) as again:
            assert str(again) == str(err)
            return
        raise AssertionError("the estimate without weights did not refuse")
    beta, se, w = mh._mh_fit(measure, a, n1, c, n2, weights=False)
    assert w is None and _bits([beta, se]) == _bits(full[:2])
