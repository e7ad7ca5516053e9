"""The shortcuts of a large single pool give what the general code gives, bit for bit.

``RowsView.family_mask`` (no text per row for a table of counts) against
``families()``; ``analysis._common_of`` (the pool's time point and unit from a view's
column) against ``common_value``; ``selection._distinct`` against ``dict.fromkeys``;
and in the τ² engine the sums without products by ones, the Q-profile CI given the
fit's Q, and the fit of arrays with nothing padded (no copies) against the general
forms. Equality is exact (``==`` on the bits), not approximate.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msc_meta.data import load_table
from msc_meta.data.columns import RowsView
from msc_meta.pooling import tau2
from msc_meta.pooling.analysis import _common_of, column_values, common_value
from msc_meta.pooling.rma import fit_batch, qprofile_tau2_ci
from msc_meta.pooling.selection import _distinct, select_rows
from msc_meta.pooling.tau2 import generalized_q

COUNTS = "study_id,outcome,timepoint_weeks,unit,events_t,n_t,events_c,n_c\n"


def _view(tmp_path, text) -> RowsView:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    table = load_table(path)
    return RowsView(table._data, np.arange(len(table._data)))


@pytest.mark.parametrize("text", [
    COUNTS + "a,x,24,patient,3,10,2,10\nb,x,24,patient,4,12,,\nc,x,,,,,,\n",
    COUNTS + "a,x,24,patient,3,10,2,10\nb,x,24,patient,4,12,1,9\n",
    "study_id,outcome,events_t,n_t,mean_t,sd_t,mean_c,sd_c,n_c\n"
    "a,x,3,10,,,,,\nb,x,,12,1.5,0.4,1.2,0.5,11\nc,x,,,,,,,\n",
])
def test_family_mask_is_families_compared(tmp_path, text):
    view = _view(tmp_path, text)
    families = RowsView(view.data, view.index).families()
    for wanted in [("counts",), (None,), ("means_two",), ("counts", None), ("means_two", "counts")]:
        expected = [f in wanted for f in families]
        assert view.family_mask(*wanted).tolist() == expected


@pytest.mark.parametrize("text", [
    COUNTS + "a,x,24,patient,3,10,2,10\nb,x,24,patient,4,12,1,9\n",
    COUNTS + "a,x,24,patient,3,10,2,10\nb,x,12,fistula,4,12,1,9\n",
    COUNTS + "a,x,,,3,10,2,10\nb,x,0.0,,4,12,1,9\nc,x,0,,4,12,1,9\n",
    COUNTS + "a,x,,,3,10,2,10\nb,x,,,4,12,1,9\n",
])
@pytest.mark.parametrize("given_value", [None, "blank", "any", 24.0, "patient"])
def test_common_of_a_view_is_common_value(tmp_path, text, given_value):
    view = _view(tmp_path, text)
    for name in ("timepoint_weeks", "unit"):
        got = _common_of(view, name, given_value)
        expected = common_value(column_values(view, name), given_value)
        assert got == expected and type(got) is type(expected)
        rows = list(view)           # the per-row path
        assert _common_of(rows, name, given_value) == expected


@given(st.lists(st.sampled_from(["x", "y", "", None, "X"]), max_size=12))
def test_distinct_texts_are_dict_fromkeys(texts):
    assert _distinct(texts) == list(dict.fromkeys(texts))


def test_one_outcome_text_selects_every_row_in_order(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(COUNTS + "".join(f"s{i},x,24,patient,3,10,2,10\n" for i in range(5)))
    chosen = select_rows(load_table(path), "x")
    assert chosen.rows.index.tolist() == [0, 1, 2, 3, 4]


def _groups(draw_seed, padded):
    rng = np.random.default_rng(draw_seed)
    G, k = int(rng.integers(1, 6)), int(rng.integers(2, 40))
    Y = rng.normal(0, rng.choice([0.05, 1.0, 4.0]), (G, k))
    V = rng.uniform(0.01, 1.0, (G, k)) * 10.0 ** rng.uniform(-4, 4, (G, k))
    mask = np.ones((G, k), dtype=bool)
    if padded:
        mask = rng.random((G, k)) < 0.7
        mask[:, :2] = True
    return Y, V, mask


def _bits(x):
    return np.asarray(x, dtype=float).view(np.int64).tolist()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_pp_sums_with_unit_factors_are_the_products_by_ones(seed, padded):
    Y, V, mask = _groups(seed, padded)
    A = np.where(mask, 1.0 / V, 0.0)
    one = np.ones_like(A)
    assert _bits(tau2._pp_sums1(A)) == _bits(tau2._pp_sums1(A, one, one))
    assert _bits(tau2._pp_sums1(A, None, V)) == _bits(tau2._pp_sums1(A, one, V))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_qprofile_given_the_fits_q_is_qprofile_alone(seed, padded):
    Y, V, mask = _groups(seed, padded)
    t2 = tau2.estimate_tau2("REML", Y, V, mask).tau2
    q0, _ = generalized_q(*tau2.as_batch(Y, V, mask)[:3], np.zeros(Y.shape[0]))
    alone = qprofile_tau2_ci(Y, V, mask, t2)
    given_q = qprofile_tau2_ci(Y, V, mask, t2, q0=q0)
    assert [_bits(a) for a in alone[:2]] == [_bits(a) for a in given_q[:2]]
    assert alone[2].tolist() == given_q[2].tolist()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["REML", "DL", "PM", "ML", "EB", "FE"]))
def test_a_fit_with_nothing_padded_is_the_fit_of_the_copies(seed, method):
    """as_batch hands unpadded arrays on as they are; a strided copy of the same values
    (which np.where used to make contiguous) gives the same bits."""
    Y, V, _ = _groups(seed, False)
    fit = fit_batch(Y, V, method=method, hksj=True)
    wide_y, wide_v = np.zeros((Y.shape[0], 2 * Y.shape[1])), np.ones((Y.shape[0], 2 * Y.shape[1]))
    wide_y[:, ::2], wide_v[:, ::2] = Y, V
    strided = fit_batch(wide_y[:, ::2], wide_v[:, ::2], method=method, hksj=True)
    for name in ("theta", "se", "tau2", "q", "i2", "tau2_ci_low", "tau2_ci_high", "theta_pi_low",
                 "weights"):
        assert _bits(getattr(fit, name)) == _bits(getattr(strided, name)), name
