"""Many analyses at once (``pool --by``, ``export --all``): the batch paths give, to the byte,
what the group-by-group paths give.

The batch paths are ``pooling.batch.many_analyses`` (study intervals, the notes' facts and
guidance's need found for all groups on their joined columns; ``rma.results_of``),
``batch.resolve_many`` (the options of all selections), ``json_out._grouped_studies`` (the
study texts of all subgroups at once) and ``report.export.TidyTable`` (tidy rows as columns,
CSV written column-wise). Each is compared with the path it replaces on random tables with
zero cells, all-event arms, single-arm rows, rows without counts, k = 1 and mixed time points.
"""

from __future__ import annotations

import csv
import io
import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msc_meta.data import load_table
from msc_meta.errors import MscMetaError, UsageError
from msc_meta.pooling import analysis as an
from msc_meta.pooling.subgroups import run_pool_by
from msc_meta.pooling import batch, rma
from msc_meta.pooling.options import PoolOptions
from msc_meta.pooling.selection import analysis_keys
from msc_meta.report import export as ex
from msc_meta.report import json_out

OPTIONS = [dict(), dict(method="DL", hksj=True), dict(method="FE"), dict(measure="OR", cc=0),
           dict(measure="RD"), dict(measure="PLO"), dict(measure="PFT", study_ci="wilson"),
           dict(measure="PR", study_ci="exact", pi="z"), dict(method="MH"), dict(method="PM")]
_names = itertools.count()


def _row(draw, i, g):
    """One table row: counts that may be zero, full, single-arm or missing."""
    kind = draw(st.sampled_from(["two", "two", "two", "zero", "full", "single", "blank"]))
    n_t, n_c = draw(st.integers(3, 60)), draw(st.integers(3, 60))
    e_t, e_c = draw(st.integers(0, n_t)), draw(st.integers(0, n_c))
    if kind == "zero":
        e_t = e_c = 0
    elif kind == "full":
        e_t = n_t
    row = dict(study_id=f"s{i}", outcome="x", timepoint_weeks=draw(st.sampled_from([24, 24, 52])),
               unit="patient", grp=g, events_t=e_t, n_t=n_t, events_c=e_c, n_c=n_c)
    if kind == "single":
        row.update(events_c=None, n_c=None)
    if kind == "blank":
        row.update(events_t=None, n_t=None, events_c=None, n_c=None)
    return row


@st.composite
def tables(draw):
    groups = draw(st.integers(2, 6))
    sizes = [draw(st.integers(1, 6)) for _ in range(groups)]
    rows, i = [], 0
    for g, k in enumerate(sizes):
        for _ in range(k):
            rows.append(_row(draw, i, f"g{g}"))
            i += 1
    return rows


def _group_by_group(monkeypatch):
    """The paths the batch replaced: one analysis_of per group, study dicts per analysis,
    resolve_options per selection, tidy_rows + write_csv."""
    monkeypatch.setattr(batch, "many_analyses", lambda *args: None)
    monkeypatch.setattr(json_out, "_grouped_studies", lambda analyses, marked: [None] * len(analyses))
    monkeypatch.setattr(batch, "resolve_many", _resolve_each)


def _resolve_each(selected, options):
    out = []
    for rows in selected:
        try:
            out.append(an.resolve_options(rows, options))
        except UsageError as err:
            out.append(err)
    return out


def _by(table, options, timepoint):
    try:
        analyses, test = run_pool_by(table, "grp", outcome="x", timepoint=timepoint, **options)
    except MscMetaError as err:       # nothing to pool, or a fit that fails (both paths alike)
        return f"{type(err).__name__}: {err}"
    return (json_out.to_json(analyses, test, grouped=True),
            ex.render(ex.tidy_rows(analyses, subgroup_test=test), "csv"))


settings_ = settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])


@settings_
@given(rows=tables(), options=st.sampled_from(OPTIONS), timepoint=st.sampled_from([24, "any"]))
def test_by_batch_equals_group_by_group(tmp_table, monkeypatch, rows, options, timepoint):
    table = load_table(tmp_table(rows, name=f"by{next(_names)}.csv"))
    fast = _by(table, options, timepoint)
    with monkeypatch.context() as m:
        _group_by_group(m)
        assert _by(table, options, timepoint) == fast


def _all(table, options):
    try:
        pooled = an.run_pool_all(table, analysis_keys(table), PoolOptions.build(**options))
    except MscMetaError as err:       # a fit that fails stops the command (both paths alike)
        return f"{type(err).__name__}: {err}"
    return [str(p) if isinstance(p, UsageError) else p for p in pooled]


@settings_
@given(rows=tables(), options=st.sampled_from(OPTIONS))
def test_export_all_batch_equals_each_pool(tmp_table, monkeypatch, rows, options):
    """run_pool_all (batch options, batch analyses) gives each analysis its own run_pool, and
    the columnar tidy table writes the CSV and JSON tidy_rows + write_csv/write_json write."""
    for row in rows:                    # one outcome per group, as export --all pools them
        row["outcome"] = "o_" + row.pop("grp")
    table = load_table(tmp_table(rows, name=f"all{next(_names)}.csv"))
    keys = analysis_keys(table)
    fast = _all(table, options)
    if isinstance(fast, str):
        with monkeypatch.context() as m:
            _group_by_group(m)
            assert _all(table, options) == fast
        return
    for key, got in zip(keys, fast):
        try:
            alone = an.run_pool(table, outcome=key[0], timepoint=key[1], unit=key[2], **options)
        except UsageError as err:
            assert got == str(err)
            continue
        assert json_out.to_json([got]) == json_out.to_json([alone])
    with monkeypatch.context() as m:
        _group_by_group(m)
        slow = _all(table, options)
    assert [p if isinstance(p, str) else json_out.to_json([p]) for p in fast] == \
        [p if isinstance(p, str) else json_out.to_json([p]) for p in slow]
    pooled = [p for p in fast if not isinstance(p, str)]
    rows_ = [r for a in pooled for r in ex.tidy_rows([a])]
    tidy = ex.tidy_table(pooled)
    assert tidy.columns == ex.columns_of(rows_)
    assert ex.render(tidy.rows(), "csv") == ex.render(rows_, "csv")
    assert ex.render(tidy.rows(), "json") == ex.render(rows_, "json")
    buffer = io.StringIO()
    ex.write_csv_table(tidy, buffer)
    assert buffer.getvalue() == ex.render(rows_, "csv")
    assert tidy.count("row_type", "pooled") == sum(r["row_type"] == "pooled" for r in rows_)


def test_export_all_cli_csv_and_json_equal_tidy_rows(tmp_table, tmp_path):
    """Through the CLI on the shipped table (other outcome types, multi-arm trials, overlaps):
    the file ``export --all`` writes is what tidy_rows and write_csv/write_json make."""
    from tests.conftest import run_cli_in_process

    table = load_table()
    every = an.run_pool_all(table, analysis_keys(table), PoolOptions.build(study_ci=None))
    pooled = [p for p in every if not isinstance(p, UsageError)]
    rows = [r for a in pooled for r in ex.tidy_rows([a])]
    for fmt in ("csv", "json"):
        out = tmp_path / f"all.{fmt}"
        code, _, err = run_cli_in_process("export", "--all", "-o", out)
        assert code == 0, err
        assert out.read_text(encoding="utf-8") == ex.render(rows, fmt)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=60))
def test_float_texts_are_csv_cells(values):
    """orjson's text where it equals repr, repr elsewhere: every float as csv_cell writes it."""
    assert ex.float_texts(np.array(values, dtype=float)) == \
        [ex.csv_cell(v) if math.isfinite(v) else "" for v in values]


def test_float_texts_at_the_edges_of_the_orjson_range():
    edges = [1e-4, np.nextafter(1e-4, 0), 1e16, np.nextafter(1e16, 0), 0.0, -0.0, 5e-324,
             1.7976931348623157e308, 9999999999999998.0, 123.456, -0.00012345678901234567]
    rng = np.random.default_rng(3)
    values = np.concatenate([edges, rng.normal(size=20_000) * 10.0 ** rng.integers(-8, 20, 20_000)])
    assert ex.float_texts(values) == [ex.csv_cell(float(v)) for v in values]


cells = st.one_of(st.none(), st.text(max_size=8), st.integers(-10 ** 6, 10 ** 6), st.booleans(),
                  st.floats(allow_nan=False, allow_infinity=False))


@given(st.lists(cells, max_size=30), st.sampled_from(["text", "any"]))
def test_csv_texts_are_what_csv_writer_writes(values, kind):
    """A column's texts, joined by commas, are the line csv.writer writes of csv_cell."""
    if kind == "text":
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    values = [v for v in values if v is None or isinstance(v, str) or not isinstance(v, float)
              or math.isfinite(v)]
    for v in values:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(["" if v is None else ex.csv_cell(v), "x"])
        (text,) = ex.csv_texts([v])
        assert text + ",x\n" == buffer.getvalue()
    assert ex.csv_texts(values) == [t for v in values for t in ex.csv_texts([v])]


@pytest.mark.parametrize("method", ["REML", "FE", "DL", "PM", "SJ"])
@pytest.mark.parametrize("hksj", [False, True])
@pytest.mark.parametrize("pi", ["hts", "z"])
def test_results_of_many_groups_equal_each_group_alone(method, hksj, pi):
    """rma.results_of over many groups (--by, export --all) gives each group's result_of
    (one group at a time: its own weights, natural scale and options), in plain Python values."""
    rng = np.random.default_rng(11)
    G, k = 40, 7
    Y, V = rng.normal(size=(G, k)), rng.uniform(0.01, 0.6, size=(G, k))
    mask = np.ones((G, k), dtype=bool)
    mask[::3, 3:] = False
    mask[1::5, 2:] = False
    fit = rma.fit_batch(Y, V, mask, method=method, hksj=hksj, pi=pi)
    for measure in ("RR", "PLO", "GEN", "RD"):
        nat = rma._back(measure, rma._scale_values(fit, slice(None)), None, None)
        groups = [g for g in range(G) if fit.converged[g]]
        groups = groups[1::2] if measure == "RD" else groups     # a subset with gaps, too
        for g, got in zip(groups, rma.results_of(fit, groups, measure=measure, nat=nat[groups])):
            want = rma.result_of(fit, g, measure=measure, nat=nat[g])
            for name in want.__dataclass_fields__:
                a, b = getattr(got, name), getattr(want, name)
                assert type(a) is type(b) and (a == b or (a != a and b != b)), name
                assert not isinstance(a, np.generic), name
            assert len(got.weights) == mask[g].sum() and got.k == mask[g].sum()
            assert got.theta == float(fit.theta[g]) and got.estimate == float(nat[g][0])
