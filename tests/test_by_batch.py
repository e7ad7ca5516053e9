"""`pool --by` fits all subgroups in one vectorised pass; each equals a pool of that subgroup alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from msc_meta.data import load_table
from msc_meta.pooling.analysis import run_pool
from msc_meta.pooling.subgroups import run_pool_by

FIELDS = ("k", "theta", "se", "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2",
          "h2", "q", "q_df", "q_pval", "stat", "pval", "tau2_ci_low", "tau2_ci_high")


def _rows(seed=5, groups=15):
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        for j in range(int(rng.integers(1, 8))):
            n_t, n_c = (int(v) for v in rng.integers(5, 80, 2))
            rows.append(dict(study_id=f"s{g}_{j}", outcome="x", group=f"g{g:02d}", n_t=n_t,
                             events_t=int(rng.binomial(n_t, rng.uniform(0.05, 0.7))), n_c=n_c,
                             events_c=int(rng.binomial(n_c, rng.uniform(0.05, 0.5)))))
    return rows


def _same(a, b, name):
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        assert (a is None or math.isnan(a)) and (b is None or math.isnan(b)), name
    else:
        assert a == pytest.approx(b, rel=1e-10, abs=1e-13), name


@pytest.mark.parametrize("options", [dict(), dict(method="DL", hksj=True), dict(method="FE"),
                                     dict(method="PM", measure="OR"), dict(measure="PFT"),
                                     dict(measure="PLO", method="EB", pi="z")])
def test_each_subgroup_equals_its_own_pool(tmp_table, options):
    rows = _rows()
    table = load_table(tmp_table(rows))
    analyses, test = run_pool_by(table, "group", outcome="x", **options)
    assert len(analyses) == 15 and test is not None
    for analysis in analyses:
        alone = load_table(tmp_table([r for r in rows if r["group"] == analysis.group],
                                     name=f"{analysis.group}.csv"))
        ref = run_pool(alone, outcome="x", **options)
        for name in FIELDS:
            _same(getattr(analysis.result, name), getattr(ref.result, name), name)
        assert [s.study_id for s in analysis.studies] == [s.study_id for s in ref.studies]
        assert [s.weight for s in analysis.studies] == pytest.approx([s.weight for s in ref.studies],
                                                                     rel=1e-10)
        if ref.common is not None:
            _same(analysis.common.theta, ref.common.theta, "common theta")
