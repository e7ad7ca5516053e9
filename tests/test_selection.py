"""Selection rules of pool: overlapping study groups (subgroup_of) and --timepoint blank|any."""

from __future__ import annotations

import json

from conftest import valid_rows
from msc_meta.data import load_table
from msc_meta.pooling.analysis import run_pool


def _hierarchy_rows():
    rows = [r for r in valid_rows() if r["study_id"] in ("D1", "D2", "D3")]
    total = dict(rows[0], study_id="D_all", events_t=9, n_t=15, pct_t="", dose_cells="",
                 note="the three cohorts together")
    for r in rows:
        r["subgroup_of"] = "D_all"
    return rows + [total]


def test_aggregate_row_is_left_out_when_its_parts_are_selected(tmp_table):
    table = load_table(tmp_table(_hierarchy_rows()))
    analysis = run_pool(table, outcome="healing", measure="PLO", method="FE")
    assert [s.study_id for s in analysis.studies] == ["D1", "D2", "D3"]
    (left_out,) = analysis.excluded
    assert left_out.study_id == "D_all" and left_out.row_number == 5
    assert left_out.reason == ("its people are already counted in D1, D2, D3 (subgroup_of): "
                               "pooling both would count them twice")


def test_aggregate_row_is_pooled_when_no_part_has_counts(tmp_table):
    rows = _hierarchy_rows()
    for r in rows[:3]:
        r.update(events_t="", events_c="", n_c="")   # only n: nothing finer to pool
    table = load_table(tmp_table(rows))
    analysis = run_pool(table, outcome="healing", measure="PLO", method="FE")
    assert [s.study_id for s in analysis.studies] == ["D_all"]
    assert all("subgroup_of" not in e.reason for e in analysis.excluded)


def test_curated_malignancy_counts_each_patient_once(run_cli):
    code, out, err = run_cli("pool", "--outcome", "ae_malignancy", "--timepoint", "208",
                             "--unit", "patient", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [s["study_id"] for s in doc["studies"]] == ["leiden_bmmsc_c1", "leiden_bmmsc_c2",
                                                        "leiden_bmmsc_c3"]
    assert [e["study_id"] for e in doc["excluded"]] == ["leiden_bmmsc_treated"]
    assert "already counted in leiden_bmmsc_c1, leiden_bmmsc_c2, leiden_bmmsc_c3" in \
        doc["excluded"][0]["reason"]


def test_curated_hierarchy_is_transitive():
    lineage = load_table().ancestors()
    assert lineage["leiden_bmmsc_c1"] == {"leiden_bmmsc_c1_treated", "leiden_bmmsc_followed",
                                          "leiden_bmmsc_treated"}
    assert lineage["leiden_bmmsc_treated"] == frozenset()


def test_overlap_is_listed_in_its_own_subgroup(tmp_table):
    from msc_meta.pooling.subgroups import run_pool_by

    table = load_table(tmp_table(_hierarchy_rows()))
    analyses, _ = run_pool_by(table, "study_id", outcome="healing", measure="PLO", method="FE")
    by_group = {a.group: a for a in analyses}
    assert [e.study_id for e in by_group["D_all"].excluded] == ["D_all"]
    assert by_group["D_all"].result is None and by_group["D1"].k == 1


# ---------------------------------------------------------------- --timepoint blank / any

def test_timepoint_blank_selects_rows_without_a_time_point(run_cli):
    code, out, err = run_cli("pool", "--outcome", "fistula_closure", "--timepoint", "blank",
                             "--unit", "patient", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [s["study_id"] for s in doc["studies"]] == ["scrt_case_series_30"]
    assert doc["timepoint_weeks"] is None and doc["measure"] == "PLO"


def test_timepoint_any_pools_each_study_once_and_says_so(run_cli):
    code, out, err = run_cli("pool", "--outcome", "fistula_closure", "--timepoint", "any",
                             "--unit", "patient", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert sorted(s["study_id"] for s in doc["studies"]) == ["leiden_bmmsc_c1+c2+c3", "panes_cx601"]
    assert any(n.startswith("studies assessed at different time points are pooled together")
               for n in doc["notes"])


def test_timepoint_any_refuses_a_study_counted_at_two_time_points(tmp_table, run_cli):
    rows = valid_rows()[:1]
    rows.append(dict(rows[0], timepoint_weeks=52, events_t=60, pct_t="", events_c=40, pct_c=""))
    code, out, err = run_cli("pool", "--data", tmp_table(rows), "--outcome", "combined_remission",
                             "--timepoint", "any")
    assert code == 2 and out == ""
    assert "study R has counts at 24 and 52 weeks (rows 2 and 3); --timepoint any would count its " \
           "people twice" in err


def test_timepoint_rejects_words_other_than_blank_and_any(run_cli):
    code, out, err = run_cli("pool", "--outcome", "fistula_closure", "--timepoint", "soon")
    assert code == 2 and "'soon' is not a number; write the number of weeks only" in err
    assert "or 'blank' or 'any'" in err


# ---------------------------------------------------------------- counts in other scripts

def test_counts_in_other_digit_scripts_are_refused(tmp_table, run_cli):
    rows = valid_rows()
    rows[0]["events_t"] = "\u0665\u0663"        # Arabic-Indic 53
    code, out, err = run_cli("check", "--data", tmp_table(rows))
    assert code == 2 and out == ""
    assert "row 2, column 'events_t': '\u0665\u0663' is not written with the digits 0-9" in err
    rows[0]["events_t"] = 53
    rows[0]["timepoint_weeks"] = "\uff12\uff14"   # full-width 24
    code, out, err = run_cli("check", "--data", tmp_table(rows))
    assert code == 2 and "column 'timepoint_weeks'" in err and "not written with the digits 0-9" in err
