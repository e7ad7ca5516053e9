"""msc_meta.data.check: each check finds exactly the one planted error, and passes a clean table."""

from __future__ import annotations

import pytest

from conftest import bound_rows, valid_rows, valid_totals
from msc_meta.data import load_table, load_totals
from msc_meta.data.check import (
    check_subgroups,
    check_arm_size,
    check_pct,
    check_sources,
    check_totals,
    pct_interval,
    pct_matches,
    run_checks,
)


@pytest.mark.parametrize("printed,interval", [
    ("63", (62.5, 63.5)), ("43.3", (43.25, 43.35)), ("0", (-0.5, 0.5)), ("100", (99.5, 100.5)),
    ("7.25", (7.245, 7.255)),
])
def test_pct_interval(printed, interval):
    assert pct_interval(printed) == pytest.approx(interval, abs=1e-12)


def test_pct_matches_is_inclusive():
    assert pct_matches("63", 19, 30)        # 63.33
    assert pct_matches("43.3", 13, 30)      # 43.333
    assert pct_matches("12.5", 1, 8)        # exactly 12.5
    assert pct_matches("13", 1, 8)          # 12.5 is the lower edge of "13"
    assert pct_matches("12", 1, 8)          # and the upper edge of "12"
    assert not pct_matches("64", 19, 30)
    assert not pct_matches("43.4", 13, 30)


def _tables(tmp_table, rows=None, totals=None):
    table = load_table(tmp_table(rows if rows is not None else valid_rows()))
    total = load_totals(tmp_table(totals if totals is not None else valid_totals(), name="totals.csv"))
    return table, total


def test_clean_table_passes_every_check(tmp_table, sources_dir):
    table, totals = _tables(tmp_table, bound_rows())
    report = run_checks(table, totals, sources_dir)
    assert report.failures == ()
    assert report.ok
    assert report.rows_checked == 7
    assert report.checks_run == ("pct", "arm_size", "subgroup", "totals", "source_file", "quote",
                                 "bind", "numbers", "timepoint")
    assert report.skipped == ()
    doc = report.to_dict()
    assert doc["ok"] is True and doc["failures"] == [] and doc["rows_checked"] == 7


def test_skipped_checks_are_named(tmp_table):
    table, _ = _tables(tmp_table)
    report = run_checks(table)
    assert report.checks_run == ("pct", "arm_size", "subgroup")
    assert any("totals" in s for s in report.skipped) and any("--sources" in s for s in report.skipped)
    assert any(s.startswith("bind: ") and "no bind column" in s for s in report.skipped)


def test_a_bind_column_is_checked_without_sources(tmp_table):
    rows = bound_rows()
    rows[0]["events_t"] = 54                  # 53 in the quote: caught without --sources
    table, totals = _tables(tmp_table, rows)
    report = run_checks(table, totals)
    assert report.checks_run == ("pct", "arm_size", "subgroup", "totals", "bind", "numbers", "timepoint")
    failure = _only([f for f in report.failures if f.check != "pct"])
    assert (failure.row, failure.check) == (2, "numbers")
    assert failure.reason == 'events_t is 54 but "53 of 107 patients (49.5%)"[1] reads 53'


def _only(failures):
    assert len(failures) == 1, failures
    return failures[0]


def test_pct_counts_disagree(tmp_table):
    rows = valid_rows()
    rows[5]["pct_t"] = "71"                   # 21/30 = 70.0%
    table, totals = _tables(tmp_table, rows)
    failure = _only(run_checks(table, totals).failures)
    assert (failure.row, failure.check, failure.study_id, failure.outcome) == (7, "pct", "S", "clinical_closure")
    assert "printed as 71% but 100 × 21/30 = 70%" in failure.reason
    assert "70.5 to 71.5" in failure.reason


def test_pct_decimals_set_the_tolerance(tmp_table):
    rows = valid_rows()
    rows[6]["pct_t"] = "43.4"                 # 13/30 = 43.33: fine as "43", not as "43.4"
    table, _ = _tables(tmp_table, rows)
    failure = _only(check_pct(table))
    assert (failure.row, failure.check) == (8, "pct")
    rows[6]["pct_t"] = "43"
    table, _ = _tables(tmp_table, rows)
    assert check_pct(table) == []


def test_pct_control_arm(tmp_table):
    rows = valid_rows()
    rows[0]["pct_c"] = "34.2"                 # 36/105 = 34.29
    table, _ = _tables(tmp_table, rows)
    failure = _only(check_pct(table))
    assert failure.row == 2 and "pct_c is printed as 34.2%" in failure.reason


def test_pct_without_events_must_fit_some_count(tmp_table):
    rows = valid_rows()
    rows[1]["pct_t"] = "50.8"                 # no e/107 rounds to 50.8
    table, totals = _tables(tmp_table, rows)
    failure = _only(run_checks(table, totals).failures)
    assert (failure.row, failure.check) == (3, "pct")
    assert "no whole count out of n_t = 107" in failure.reason


def test_arm_size_disagreement(tmp_table):
    rows = valid_rows()
    rows[1]["n_t"] = 108                       # same study R, 24 weeks, patient: 107 elsewhere
    table, totals = _tables(tmp_table, rows)
    failure = _only(run_checks(table, totals).failures)
    assert (failure.row, failure.check, failure.study_id) == (3, "arm_size", "R")
    assert failure.reason == ("n_t is 108 but row 2 of the same study R at 24 weeks, unit patient gives 107")


def test_arm_size_control_and_majority(tmp_table):
    rows = valid_rows()
    rows.append(dict(rows[0], outcome="response", pct_t="", pct_c=""))
    rows[0]["n_c"] = 104                       # rows 2, 3, 9 of R: 104, 105, 105
    rows[0]["pct_c"] = ""
    table, _ = _tables(tmp_table, rows)
    failure = _only(check_arm_size(table))
    assert (failure.row, failure.check) == (2, "arm_size")
    assert "n_c is 104 but rows 3, 9" in failure.reason and "give 105" in failure.reason


def test_arm_size_other_timepoint_is_another_group(tmp_table):
    rows = valid_rows()
    rows[1]["timepoint_weeks"] = 52
    rows[1]["n_t"] = 90
    table, _ = _tables(tmp_table, rows)
    assert check_arm_size(table) == []


def test_totals_sum_mismatch(tmp_table):
    totals = valid_totals()
    totals[0]["total_n"] = 16                  # 5 + 5 + 5 = 15
    table, total = _tables(tmp_table, totals=totals)
    failure = _only(run_checks(table, total).failures)
    assert (failure.row, failure.check, failure.study_id, failure.outcome) == (2, "totals", "D1;D2;D3", None)
    assert failure.file == total.path
    assert "add up to 15 (D1 5 + D2 5 + D3 5) but the source states 16" in failure.reason


def test_totals_all_counts_shared_control_once(tmp_table):
    totals = valid_totals()
    totals[2]["total_n"] = 27                  # 15 + 6 + 6: the placebo arm counted per cohort
    table, total = _tables(tmp_table, totals=totals)
    failure = _only(check_totals(table, total))
    assert failure.row == 4 and "add up to 21 (D1 5 + D2 5 + D3 5 + control 6)" in failure.reason


@pytest.mark.parametrize("change,message", [
    (lambda t: t.update(members="D1;D2;D4"), "study D4 (a member of trial D) is not in the outcome table"),
    (lambda t: t.update(timepoint_weeks=24), "study D1 has no row at 24 weeks, unit patient"),
    (lambda t: t.update(trial="X"), "study D1 belongs to trial D in the outcome table, not to X"),
])
def test_totals_membership(tmp_table, change, message):
    totals = valid_totals()[:1]
    change(totals[0])
    table, total = _tables(tmp_table, totals=totals)
    failure = _only(check_totals(table, total))
    assert failure.check == "totals" and message in failure.reason


def test_totals_control_sizes_differ(tmp_table):
    rows = valid_rows()
    rows[3]["n_c"] = 7
    table, total = _tables(tmp_table, rows, valid_totals()[1:2])
    failure = _only(check_totals(table, total))
    assert "different control arm sizes (D1 6, D2 7, D3 6)" in failure.reason


def test_source_file_missing(tmp_table, sources_dir):
    rows = bound_rows()
    rows[5]["source"] = "missing.txt"
    table, totals = _tables(tmp_table, rows)
    failure = _only(run_checks(table, totals, sources_dir).failures)
    assert (failure.row, failure.check) == (7, "source_file")
    assert "missing.txt is not in" in failure.reason


def test_quote_not_verbatim(tmp_table, sources_dir):
    rows = bound_rows()
    rows[0]["quote"] = rows[0]["quote"].replace("treated with", "treated by")
    table, totals = _tables(tmp_table, rows)
    failure = _only(run_checks(table, totals, sources_dir).failures)
    assert (failure.row, failure.check, failure.study_id) == (2, "quote", "R")
    assert failure.reason.startswith('span 1 of the quote ("Combined remission at week 24: 53 of 107')
    assert failure.reason.endswith(") does not occur verbatim in trials.txt")


def test_single_span_quote_not_verbatim(tmp_table, sources_dir):
    rows = valid_rows()
    rows[5]["quote"] = "70% of all patients (21/30)"
    table, _ = _tables(tmp_table, rows)
    failure = _only(check_sources(table, sources_dir))
    assert failure.reason == "the quote does not occur verbatim in trials.txt"


def test_quote_whitespace_is_collapsed(tmp_table, sources_dir):
    rows = valid_rows()
    rows[0]["quote"] = "53  of 107\n patients   (49.5%) treated with cells and 36 of 105 (34.3%) given placebo"
    table, _ = _tables(tmp_table, rows)
    assert check_sources(table, sources_dir) == []


def test_counts_without_quote(tmp_table, sources_dir):
    rows = bound_rows()
    rows[4]["quote"] = ""
    table, totals = _tables(tmp_table, rows)
    failure = _only(run_checks(table, totals, sources_dir).failures)
    assert (failure.row, failure.check) == (6, "quote")
    assert failure.reason == "has counts but no quote to check them against"


def test_number_not_bound_fails_with_sources(tmp_table, sources_dir):
    rows = valid_rows()                       # no bind column: --sources requires one
    table, totals = _tables(tmp_table, rows)
    failures = [f for f in run_checks(table, totals, sources_dir).failures if f.row == 8]
    assert [(f.check, f.reason) for f in failures] == [
        ("numbers", "events_t = 13 is not bound to the quote (add a bind entry)"),
        ("numbers", "n_t = 30 is not bound to the quote (add a bind entry)"),
        ("numbers", "pct_t = 43.3 is not bound to the quote (add a bind entry)"),
        ("timepoint", "timepoint_weeks = 24 is not bound to the quote (add a bind entry)"),
    ]


def test_bound_text_missing_from_the_quote(tmp_table, sources_dir):
    rows = bound_rows()
    rows[6]["quote"] = "achieved radiological remission"   # verbatim, but without the numbers
    table, totals = _tables(tmp_table, rows)
    failures = run_checks(table, totals, sources_dir).failures
    assert [(f.row, f.check) for f in failures] == [(8, "bind")] * 3
    assert failures[0].reason == 'events_t = "(13/30)"[1]: text "(13/30)" is not in the quote'


def test_failures_sorted_by_file_and_row(tmp_table, sources_dir):
    rows = bound_rows()
    rows[6]["pct_t"] = "44"
    rows[0]["quote"] = "not in the source 53 of 107 patients (49.5%) 36 of 105 (34.3%) at week 24 12 x 10^7"
    totals = valid_totals()
    totals[1]["total_n"] = 5
    table, total = _tables(tmp_table, rows, totals)
    report = run_checks(table, total, sources_dir)
    assert [(f.row, f.check) for f in report.failures] == [
        (2, "quote"), (8, "pct"), (8, "numbers"), (3, "totals")]
    assert not report.ok


# --- the curated table -------------------------------------------------------

SHARED_SOURCES = "/work/shared/sources"

from pathlib import Path  # noqa: E402


def _curated_rows(curated_path):
    import csv

    with open(curated_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader), reader.fieldnames


def test_curated_table_passes(curated_path):
    from pathlib import Path

    from msc_meta.data import curated_totals_path

    table = load_table(None)
    totals = load_totals(None) if curated_totals_path().is_file() else None
    sources = SHARED_SOURCES if Path(SHARED_SOURCES).is_dir() else None
    report = run_checks(table, totals, sources)
    assert report.failures == ()


def test_curated_copy_with_planted_pct_error(curated_path, tmp_table):
    rows, columns = _curated_rows(curated_path)
    index = next(i for i, r in enumerate(rows)
                 if r["pct_t"] and r["events_t"] and r["n_t"] and "." not in r["pct_t"])
    rows[index]["pct_t"] = str(int(rows[index]["pct_t"]) + 5 if int(rows[index]["pct_t"]) < 90
                               else int(rows[index]["pct_t"]) - 5)
    table = load_table(tmp_table(rows, columns=columns))
    failure = _only(check_pct(table))
    assert failure.row == index + 2 and failure.study_id == rows[index]["study_id"]


def test_curated_copy_with_planted_arm_size_error(curated_path, tmp_table):
    rows, columns = _curated_rows(curated_path)
    groups: dict = {}
    for i, r in enumerate(rows):
        if r["n_t"] and not r["pct_t"]:
            groups.setdefault((r["study_id"], r["timepoint_weeks"], r["unit"]), []).append(i)
    index = next(members[-1] for members in groups.values() if len(members) >= 3)
    rows[index]["n_t"] = str(int(rows[index]["n_t"]) + 1)
    table = load_table(tmp_table(rows, columns=columns))
    failure = _only(check_arm_size(table))
    assert (failure.row, failure.check) == (index + 2, "arm_size")


# ---------------------------------------------------------------------------
# subgroup


def _with_parents(parents: dict[int, str]) -> list[dict]:
    rows = valid_rows()
    for index, parent in parents.items():
        rows[index]["subgroup_of"] = parent
    return rows


def test_subgroup_clean_hierarchy_passes(tmp_table):
    table, _ = _tables(tmp_table, _with_parents({2: "S", 3: "S", 4: "S"}))
    assert check_subgroups(table) == []


def test_subgroup_unknown_parent(tmp_table):
    table, _ = _tables(tmp_table, _with_parents({2: "D_all"}))
    failure = _only(check_subgroups(table))
    assert (failure.row, failure.check) == (4, "subgroup")
    assert failure.reason == "subgroup_of names 'D_all', which is not a study_id of this table"


def test_subgroup_disagrees_within_a_study_group(tmp_table):
    table, _ = _tables(tmp_table, _with_parents({0: "D1"}))   # row 3 (also R) says nothing
    failure = _only(check_subgroups(table))
    assert (failure.row, failure.check) == (3, "subgroup")
    assert failure.reason == "subgroup_of is '' but row 2 of the same study R gives 'D1'"


def test_subgroup_part_larger_than_whole(tmp_table):
    rows = _with_parents({5: "R", 6: "R"})   # S (30) declared part of R (107) -> fine
    rows[0]["subgroup_of"] = rows[1]["subgroup_of"] = "D1"    # R (107) part of D1 (5): too big
    for r in rows[2:5]:
        r["timepoint_weeks"] = 24
    table, _ = _tables(tmp_table, rows)
    failures = [f for f in check_subgroups(table) if "more than" in f.reason]
    assert [f.row for f in failures] == [2, 3]
    assert failures[0].reason == "n_t is 107, more than the 5 of D1, which it is part of"


def test_subgroup_cycle(tmp_table):
    table, _ = _tables(tmp_table, _with_parents({2: "D2", 3: "D1"}))
    reasons = [f.reason for f in check_subgroups(table)]
    assert "subgroup_of makes D1 part of itself" in reasons
    assert "subgroup_of makes D2 part of itself" in reasons


# ---------------------------------------------------------------------------
# bind (every number read from its quote)


def _bind_failures(tmp_table, rows, sources=None):
    table, totals = _tables(tmp_table, rows)
    return [(f.row, f.check, f.reason) for f in run_checks(table, totals, sources).failures]


def test_same_needs_a_row_that_binds_directly(tmp_table):
    rows = bound_rows()
    rows[1]["bind"] = rows[1]["bind"].replace("n_t = same", "n_t = same(D1)")
    assert _bind_failures(tmp_table, rows) == [
        (3, "bind", "n_t = same(D1): no row of D1 at this time point and unit binds n_t to its quote")]


def test_same_compares_with_the_directly_bound_value(tmp_table):
    rows = bound_rows()
    rows[1]["n_c"] = 104
    assert (3, "numbers", "n_c is 104 but row 2 of R binds 105") in _bind_failures(tmp_table, rows)


def test_note_binds_time_points_only(tmp_table):
    rows = bound_rows()
    rows[5]["note"] += " 70%"
    rows[5]["bind"] = rows[5]["bind"].replace('pct_t = "70%"', 'pct_t = note"70%"')
    assert _bind_failures(tmp_table, rows) == [
        (7, "bind", 'pct_t = note"70%": note"..." may bind timepoint_weeks only, not pct_t')]


def test_time_point_read_from_the_quote(tmp_table):
    rows = bound_rows()
    rows[2]["timepoint_weeks"] = 13
    assert [f for f in _bind_failures(tmp_table, rows) if f[1] != "totals"] == [
        (4, "timepoint", 'timepoint_weeks is 13 but "At week 12" reads 12')]


def test_from_pct_needs_exactly_one_count(tmp_table):
    rows = bound_rows()
    rows[6]["pct_t"] = "43"                  # 13/30 = 43.3: "43" fits 13 only
    rows[6]["quote"] = rows[6]["quote"].replace("43.3%", "43%")
    rows[6]["bind"] = 'events_t = from_pct; n_t = "(13/30)"[2]; pct_t = "43%"; timepoint_weeks = note"week 24"'
    assert _bind_failures(tmp_table, rows) == []
    rows[6]["n_t"], rows[6]["events_t"] = 300, 130     # 128, 129 and 130 of 300 all round to 43
    got = _bind_failures(tmp_table, rows)
    assert (8, "bind", "events_t = from_pct: 3 whole counts out of 300 round to 43% (128, 129, 130); "
                       "exactly one must") in got


def test_cell_column_is_checked_against_the_source_layout(curated_path, tmp_table):
    """Moving a Table 3 entry to another column passes the quote but not the source's spacing."""
    if not Path(SHARED_SOURCES).is_dir():
        pytest.skip("sources not available")
    rows, columns = _curated_rows(curated_path)
    i = next(i for i, r in enumerate(rows) if (r["study_id"], r["outcome"]) == ("leiden_bmmsc_c2", "ae_gout"))
    rows[i]["bind"] = rows[i]["bind"].replace('"Gout | 1 [1] | |", 2)', '"Gout | | 1 [1] |", 2)')
    rows[i]["events_t"] = "1"
    table = load_table(tmp_table(rows, columns=columns))
    got = [(f.row, f.check, f.reason) for f in run_checks(table, None, SHARED_SOURCES).failures]
    assert got == [(i + 2, "bind", 'events_t = cell("Gout | | 1 [1] |", 2)[2]: cell line "Gout | | 1 [1] |" does '
                                   "not match the layout of any line of 002_d0953e2a140fb290.txt (cells are separated "
                                   "by one space there; an empty cell leaves two)")]
