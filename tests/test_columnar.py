"""The columnar data path equals the per-row one: rows, errors, pools and --json bytes."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from msc_meta.data import OutcomeTable, load, load_table
from msc_meta.data.columns import RowsView
from msc_meta.errors import InputError
from msc_meta.pooling.analysis import run_pool
from msc_meta.pooling.subgroups import run_pool_by
from msc_meta.pooling.study_lines import StudyLines
from msc_meta.report.json_out import analysis_to_dict, to_json
from msc_meta.report.terminal import json_document


def _per_row(path) -> OutcomeTable:
    """The table as the per-row loader builds it (one _make_row per record)."""
    from msc_meta.data import schema

    raw = load.read_csv_records(path, schema.required_columns, schema.KNOWN_COLUMNS,
                                what="outcome table")
    rows = tuple(load._make_row(raw, number, cells) for number, cells in raw.records)
    return OutcomeTable(path=raw.path, columns=raw.header, rows=rows)


def _two_arm_csv(path, n, *, seed=7, extra=""):
    rng = np.random.default_rng(seed)
    n_t, n_c = rng.integers(2, 90, n), rng.integers(2, 90, n)
    e_t, e_c = rng.binomial(n_t, 0.3), rng.binomial(n_c, 0.2)
    e_t[::17] = 0
    e_c[::17] = 0                      # double zeros: left out of RR (drop00)
    lines = ["study_id,outcome,timepoint_weeks,unit,events_t,n_t,events_c,n_c,g"]
    for i in range(n):
        ctrl = "" if i % 11 == 5 else f"{e_c[i]},{n_c[i]}"        # some single-arm rows
        ctrl = ctrl or ","
        lines.append(f"s{i},closure,24,patient,{e_t[i]},{n_t[i]},{ctrl},{'ab'[i % 2]}{i % 3}")
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def test_curated_rows_equal_the_per_row_loader(curated_path):
    assert load_table(curated_path).rows == _per_row(curated_path).rows


def test_plain_file_rows_equal_the_per_row_loader(tmp_path):
    path = _two_arm_csv(tmp_path / "t.csv", 300)
    assert load_table(path).rows == _per_row(path).rows


@pytest.mark.parametrize("cell, column", [("3.5", "events_t"), ("abc", "n_t"), ("-1", "n_c"),
                                          ("99", "events_t"), ("99999999999999999999999", "n_t"),
                                          ("1000000001", "n_c")])
def test_a_bad_cell_deep_in_a_large_file_is_reported_as_the_per_row_loader(tmp_path, cell, column):
    path = _two_arm_csv(tmp_path / "t.csv", 300)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[201].split(",")
    cells[header.index(column)] = cell
    lines[201] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as columnar:
        load_table(path)
    with pytest.raises(InputError) as per_row:
        _per_row(path)
    assert str(columnar.value) == str(per_row.value)
    assert ", row 202, " in str(columnar.value)


def test_pool_on_columns_equals_pool_on_rows(tmp_path):
    path = _two_arm_csv(tmp_path / "t.csv", 2500)
    table = load_table(path)
    fast = run_pool(table, outcome="closure", timepoint=24)
    slow = run_pool(_per_row(path), outcome="closure", timepoint=24)
    assert isinstance(fast.studies, StudyLines) and len(fast.studies) > 2000
    assert isinstance(fast.studies[0], type(slow.studies[0]))
    assert analysis_to_dict(fast) == analysis_to_dict(slow)
    # the --json bytes: studies written column-wise (over 2,000) equal the dict path under
    # the same long-list rule, and parse to the document orjson indents whole
    assert to_json([fast]) == to_json([slow])
    assert orjson.loads(to_json([fast])) == orjson.loads(json_document(analysis_to_dict(slow)))


def test_pool_by_on_columns_equals_pool_by_on_rows(tmp_path):
    path = _two_arm_csv(tmp_path / "t.csv", 400)
    fast, fast_test = run_pool_by(load_table(path), "g", outcome="closure")
    slow, slow_test = run_pool_by(_per_row(path), "g", outcome="closure")
    assert to_json(fast, fast_test, grouped=True) == to_json(slow, slow_test, grouped=True)


def test_selection_of_a_loaded_table_is_a_view(tmp_path):
    from msc_meta.pooling.selection import select_rows

    table = load_table(_two_arm_csv(tmp_path / "t.csv", 100))
    chosen = select_rows(table, "CLOSURE", 24, "patient")
    assert isinstance(chosen.rows, RowsView) and len(chosen.rows) == 100
    assert table._rows is None          # no Row object was built for the whole table



def test_pool_json_of_a_columnar_pool_builds_no_study_line(tmp_path, monkeypatch):
    """``pool --json`` on a plain table reads the study columns only: building one StudyLine
    per study (as the units lookup once did) cost ~14 s on 10^6 studies."""
    from click.testing import CliRunner

    from msc_meta.cli import cli

    def no_line(self, i):
        raise AssertionError("a StudyLine was built")

    path = _two_arm_csv(tmp_path / "t.csv", 2500)
    expected = to_json([run_pool(load_table(path), outcome="closure", timepoint=24.0)])
    monkeypatch.setattr(StudyLines, "__getitem__", no_line)
    got = CliRunner().invoke(cli, ["pool", "--data", str(path), "--outcome", "closure",
                                   "--timepoint", "24", "--json"])
    assert got.exit_code == 0, got.output
    assert got.output.strip() == expected.strip()


@pytest.mark.parametrize("cell", ["3,5", "", " 7"])
def test_a_count_with_a_comma_or_blank_in_a_semicolon_file_is_refused_as_per_row(tmp_path, cell):
    """The fast count parser joins cells with commas: a cell holding one must not pass."""
    lines = ["study_id;outcome;events_t;n_t;events_c;n_c"]
    lines += [f"s{i};closure;{i % 7};20;{i % 5};20" for i in range(100)]
    lines[60] = f"s59;closure;{cell};20;1;20"
    path = tmp_path / "semi.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        fast = load_table(path).rows
    except InputError as err:
        with pytest.raises(InputError) as per_row:
            _per_row(path)
        assert str(err) == str(per_row.value)
    else:
        assert fast == _per_row(path).rows


def test_export_rows_of_a_columnar_pool_equal_the_per_row_ones(tmp_path):
    """export's tidy study rows read the StudyLines columns: the same cells as StudyLine objects."""
    from msc_meta.report.export import render, tidy_rows

    path = _two_arm_csv(tmp_path / "t.csv", 2500)
    fast = run_pool(load_table(path), outcome="closure", timepoint=24)
    slow = run_pool(_per_row(path), outcome="closure", timepoint=24)
    assert isinstance(fast.studies, StudyLines) and not isinstance(slow.studies, StudyLines)
    assert tidy_rows([fast]) == tidy_rows([slow])
    assert render(tidy_rows([fast]), "csv") == render(tidy_rows([slow]), "csv")
