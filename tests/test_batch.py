"""msc_meta.pool_many: one vectorised pass, each row equal to `pool` on that group alone."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from msc_meta import pool_many
from msc_meta.data import OutcomeTable
from msc_meta.errors import InputError, UsageError
from msc_meta.pooling.analysis import run_pool
from msc_meta.pooling.batch import RESULT_KEYS, frame_to_rows
from msc_meta.report.json_out import analysis_to_dict

BY = ["outcome", "timepoint_weeks", "unit"]


def _synthetic(n_groups=40, seed=3):
    """Two-arm and single-arm groups with 1-8 studies, zero cells and double zeros."""
    rng = np.random.default_rng(seed)
    records = []
    for g in range(n_groups):
        k = int(rng.integers(1, 9))
        two_arm = g % 3 != 0
        for j in range(k):
            n_t, n_c = int(rng.integers(3, 60)), int(rng.integers(3, 60))
            rec = {"study_id": f"s{g}_{j}", "outcome": f"out{g % 7}", "timepoint_weeks": 4 * (g // 7),
                   "unit": "patient", "n_t": n_t, "events_t": int(rng.binomial(n_t, rng.uniform(0, 0.6)))}
            if two_arm:
                rec.update(n_c=n_c, events_c=int(rng.binomial(n_c, rng.uniform(0, 0.4))))
                if j == 1 and g % 4 == 1:
                    rec.update(events_t=0, events_c=0)        # double zero: drop00 for RR/OR
            records.append(rec)
        if g % 5 == 2:   # a row with only a percentage: listed, never pooled
            records.append({"study_id": f"s{g}_pct", "outcome": f"out{g % 7}",
                            "timepoint_weeks": 4 * (g // 7), "unit": "patient",
                            "pct_t": 40.0, "n_t": None, "events_t": None})
    return pd.DataFrame.from_records(records)


def _alone(df, key, **options):
    """`pool --json` for one group, selected from the whole table as the CLI selects it."""
    rows = frame_to_rows(df)
    table = OutcomeTable(path="<DataFrame>", columns=tuple(df.columns), rows=rows)
    outcome, weeks, unit = key
    blank = weeks is None or (isinstance(weeks, float) and math.isnan(weeks))
    unit = None if unit is None or (isinstance(unit, float) and math.isnan(unit)) else unit
    try:
        analysis = run_pool(table, outcome=outcome, timepoint="blank" if blank else float(weeks),
                            unit=unit, **options)
    except UsageError:
        return None          # nothing to pool: pool_many keeps the group with k = 0
    return analysis_to_dict(analysis)


def _none(x):
    # a DataFrame holds missing numbers as NaN where the JSON document has null
    return None if isinstance(x, float) and math.isnan(x) else x


def _same(a, b, key):
    a, b = _none(a), _none(b)
    if isinstance(b, float) or isinstance(a, float):
        if a is None or b is None:
            assert a is None and b is None, key
        else:
            assert a == pytest.approx(b, rel=1e-10, abs=1e-12), key
    else:
        assert a == b, key


@pytest.mark.parametrize("options", [
    dict(method="REML"),
    dict(method="DL", hksj=True, pi="z"),
    dict(method="PM", measure="RD"),
    dict(method="FE", measure="OR", level=90.0),
    dict(method="EB", measure="PLO"),
    dict(method="MH", measure="RR"),
])
def test_rows_equal_pool_alone(options):
    df = _synthetic()
    out = pool_many(df, BY, **options)
    assert list(out.columns[:3]) == BY and set(RESULT_KEYS) <= set(out.columns)
    assert len(out) == df.groupby(BY, dropna=False).ngroups
    pooled = 0
    for rec in out.to_dict("records"):
        key = tuple(rec[c] for c in BY)
        ref = _alone(df, key, **options)
        if ref is None:
            # pool refuses the group (nothing to pool, or RR/OR/RD on single-arm rows)
            assert rec["k"] == 0 and rec["error"] and _none(rec["theta"]) is None
            continue
        assert _none(rec["error"]) is None
        for name in RESULT_KEYS:
            _same(rec[name], ref[name], name)
        pooled += rec["k"] >= 2
    assert pooled >= 10


def test_curated_table_equals_pool(curated_path):
    df = pd.read_csv(curated_path)
    out = pool_many(df, BY)
    for rec in out.to_dict("records"):
        ref = _alone(df, tuple(rec[c] for c in BY))
        if ref is None:
            assert rec["k"] == 0 and "nothing" in rec["error"] and _none(rec["theta"]) is None
            continue
        for name in RESULT_KEYS:
            _same(rec[name], ref[name], name)


def test_excluded_rows_are_listed():
    df = _synthetic()
    out = pool_many(df, BY, measure="RR")
    listed = [e for ex in out["excluded"] for e in ex]
    reasons = {e["reason"].split(":")[0] for e in listed}
    assert any(r.startswith("no events in either arm") for r in reasons)
    assert any(r.startswith("no counts in the source") for r in reasons)
    assert all(isinstance(e["row"], int) and e["row"] >= 2 for e in listed)


def test_single_column_by_and_order_of_first_appearance():
    df = _synthetic()
    df = df[(df["timepoint_weeks"] == 0)]
    out = pool_many(df, "outcome")
    assert list(out["outcome"]) == list(dict.fromkeys(df["outcome"]))


def test_grouping_must_separate_outcomes_and_timepoints():
    df = _synthetic()
    with pytest.raises(UsageError, match="mixes outcomes"):
        pool_many(df, "unit")
    with pytest.raises(UsageError, match="several time points"):
        pool_many(df, "outcome")
    with pytest.raises(UsageError, match="no column 'dose'"):
        pool_many(df, ["outcome", "dose"])
    with pytest.raises(UsageError, match="DataFrame"):
        pool_many(df.to_dict("records"), BY)


def test_bad_cells_are_reported_like_the_loader():
    df = _synthetic().reset_index(drop=True)
    df.loc[3, "events_t"] = df.loc[3, "n_t"] + 1
    with pytest.raises(InputError) as err:
        pool_many(df, BY)
    assert str(err.value).startswith("<DataFrame>, row 5, column 'events_t': ")
    with pytest.raises(UsageError, match="required column"):
        pool_many(df.drop(columns=["n_t"]), BY)


def test_non_convergence_is_reported_per_group(monkeypatch):
    import msc_meta.pooling.rma as rma

    real = rma.fit_batch

    def short(*args, **kw):
        kw["maxiter"] = 1
        return real(*args, **kw)

    monkeypatch.setattr(rma, "fit_batch", short)
    out = pool_many(_synthetic(), BY, method="REML", measure="RD")
    failed = out[out["error"].notna() & (out["k"] >= 2)]
    ok = out[out["error"].isna() & (out["k"] >= 2)]
    assert len(failed) and len(ok)          # one group failing does not stop the others
    assert failed["error"].str.contains("REML did not converge in 1 iterations").all()
    assert failed["theta"].isna().all() and ok["theta"].notna().all()
