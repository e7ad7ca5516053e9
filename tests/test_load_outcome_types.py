"""The loader reads the outcome types beyond counts (shared/cli-contract.md)."""

from __future__ import annotations

import pytest

from msc_meta import registry
from msc_meta.data import load_table
from msc_meta.errors import InputError

HEADER = "study_id,outcome,mean_t,sd_t,n_t,mean_c,sd_c,n_c,events_t,time_t,events_c,time_c,cor_t," \
         "mean_pre,mean_post,sd_pre,sd_post,r,yi,vi,sei,effect,effect_ci_low,effect_ci_high\n"
ROWS = [
    ("means2", "a,x,-1.5,2,10,0.5,2.5,12,,,,,,,,,,,,,,,,"),
    ("means1", "b,x,3.2,1,8,,,,,,,,,,,,,,,,,,,"),
    ("rates2", "c,x,,,,,,,14,120.5,3,98,,,,,,,,,,,,"),
    ("rates1", "d,x,,,,,,,40,200,,,,,,,,,,,,,,"),
    ("correlations", "e,x,,,55,,,,,,,,-0.3,,,,,,,,,,,"),
    ("means_paired", "f,x,,,20,,,,,,,,,10,12,3,3.5,0.6,,,,,,"),
    ("generic", "g,x,,,,,,,,,,,,,,,,,-0.2,0.04,,,,"),
    ("generic_ci", "h,x,,,,,,,,,,,,,,,,,,,,0.8,0.6,1.1"),
    ("counts", "i,x,,,10,,,12,3,,4,,,,,,,,,,,,,"),
    ("none", "j,x,,,10,,,,,,,,,,,,,,,,,,,"),
]
FAMILIES = ["means_two", "means_one", "rates_two", "rates_one", "correlations", "means_paired",
            "generic", "generic", "counts", None]


def _write(tmp_path, body, header=HEADER):
    path = tmp_path / "t.csv"
    path.write_text(header + body, encoding="utf-8")
    return str(path)


def test_each_row_has_the_family_its_columns_make(tmp_path):
    table = load_table(_write(tmp_path, "\n".join(r for _, r in ROWS) + "\n"))
    assert [r.family for r in table.rows] == FAMILIES
    a = table.rows[0]
    assert (a.mean_t, a.sd_t, a.n_t, a.mean_c, a.value("sd_c"), a.n_c) == (-1.5, 2.0, 10, 0.5, 2.5, 12)
    assert table.rows[2].time_t == 120.5 and table.rows[4].cor_t == -0.3
    assert table.rows[9].has_data is False and table.rows[0].has_data


def test_a_table_of_another_type_needs_no_event_columns(tmp_path):
    table = load_table(_write(tmp_path, "a,x,1.5,2,10,0.5,2.5,12\n",
                              header="study_id,outcome,mean_t,sd_t,n_t,mean_c,sd_c,n_c\n"))
    assert table.rows[0].family == "means_two"


def test_the_command_line_offers_every_family_the_loader_reads():
    assert set(registry.table_families()) == set(registry.families())
    assert "SMD" in registry.measures() and "GEN" in registry.measures()


@pytest.mark.parametrize("column, cell, words", [
    ("sd_t", "-2", "must be > 0"),
    ("sd_t", "0", "must be > 0"),
    ("time_t", "0", "person-time"),
    ("cor_t", "1.2", "between -1 and 1"),
    ("r", "-1.01", "between -1 and 1"),
    ("mean_t", "abc", "is not a number"),
    ("mean_t", "NA", "leave the cell empty"),
    ("mean_t", "inf", "not a finite number"),
    ("mean_t", "1_0", "underscore"),
    ("vi", "-0.1", "must be > 0"),
    ("effect_level", "150", "confidence level"),
])
def test_bad_numbers_are_refused_with_file_row_and_column(tmp_path, column, cell, words):
    path = _write(tmp_path, f"a,x,{cell}\n", header=f"study_id,outcome,{column}\n")
    with pytest.raises(InputError) as err:
        load_table(path)
    text = str(err.value)
    assert words in text and "row 2" in text and column in text


def test_a_row_holding_two_types_is_refused(tmp_path):
    path = _write(tmp_path, "a,x,1.5,2,10,3\n", header="study_id,outcome,mean_t,sd_t,n_t,events_t\n")
    with pytest.raises(InputError, match="one outcome type"):
        load_table(path)


def test_rates_may_count_more_events_than_participants(tmp_path):
    path = _write(tmp_path, "a,x,30,10,120\n", header="study_id,outcome,events_t,n_t,time_t\n")
    assert load_table(path).rows[0].family == "rates_one"


def test_decimal_comma_in_a_semicolon_file(tmp_path):
    path = _write(tmp_path, "a;x;-1,5;2,25;10\n", header="study_id;outcome;mean_t;sd_t;n_t\n")
    row = load_table(path).rows[0]
    assert (row.mean_t, row.sd_t) == (-1.5, 2.25)
