"""`msc-meta studies` and `msc-meta check` through msc_meta.cli.main, and every bad-input message.

Each validation error of msc_meta.data.schema must reach the user as one line
on stderr, naming file, row and column, with exit code 2 and no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import SOURCE_NAME, bound_rows, valid_rows, valid_totals, write_table

H = "study_id,outcome,events_t,n_t,events_c,n_c,unit,timepoint_weeks,pct_t,dose_cells\n"
OK = "A,closure,3,10,1,10,patient,24,30,3e7\n"


def _error_line(code, out, err):
    assert code == 2, (code, out, err)
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("msc-meta: error: ")
    return lines[0][len("msc-meta: error: "):]


# (case id, file bytes, row, column, words the message must contain)
BAD_FILES = [
    ("empty", b"", None, None, "the file is empty"),
    ("blank-only", b"\n  \n\r\n", None, None, "the file is empty"),
    ("header-only", H.encode(), None, None, "has a header but no data rows"),
    ("header-only-blank-lines", (H + "\n,,,,,,,,,\n").encode(), None, None, "no data rows"),
    ("xlsx", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, None, None, "looks like an Excel workbook"),
    ("binary", bytes(range(256)) * 4, None, None, "contains binary data"),
    ("pdf", b"%PDF-1.4\n...", None, None, "is a PDF, not a CSV file"),
    ("latin1", (H + OK).encode() + "B,clôture,3,10,,,,,,\n".encode("latin-1"), 3, "outcome",
     "not valid UTF-8 (0xF4); the file seems to be saved as Latin-1/Windows-1252 (it would read 'clôture')"),
    ("latin1-header", "study_id,outcome,events_t,n_t,r\xe9gion\nA,c,1,2,x\n".encode("latin-1"), 1, None,
     "(header cell 5)"),
    ("duplicate-header", ("study_id,outcome,events_t,n_t,n_t\nA,c,1,2,2\n").encode(), 1, "n_t",
     "the column name appears twice in the header (cells 4 and 5)"),
    ("missing-required", b"study_id,outcome,events_t\nA,c,1\n", 1, "n_t",
     "the required column is missing; required: study_id, outcome, events_t, n_t; the header has: "
     "study_id, outcome, events_t"),
    ("capitalised-header", b"Study_ID,outcome,events_t,n_t\nA,c,1,2\n", 1, "study_id",
     "found 'Study_ID': column names are lower case"),
    ("pipe-delimited", b"study_id|outcome|events_t|n_t\nA|c|1|2\n", 1, "study_id",
     "the header has: study_id|outcome|events_t|n_t"),
    ("blank-header-with-data", b"study_id,outcome,events_t,n_t,\nA,c,1,2,x\n", 1, None,
     "header cell 5 is blank but its column holds data"),
    ("too-many-cells", (H + OK + "B,closure,3,10,1,10,patient,24,30,3e7,extra\n").encode(), 3, None,
     "has 11 cells but the header has 10 columns"),
    ("too-few-cells", (H + "B,closure,3,10\n").encode(), 2, None, "has 4 cells but the header has 10 columns"),
    ("unclosed-quote", (H + OK + 'B,"closure,3,10,1,10,patient,24,30,3e7\n').encode(), 3, None,
     "a double-quoted text starting in row 3 is never closed"),
    ("stray-quote", (H + 'A,clo"sure,3,10,1,10,patient,24,30,3e7\n' + 'B,"clo"sure,3,10,,,,,,\n').encode(), 3,
     None, "a double quote in the middle of a cell"),
    ("blank-study-id", (H + " ,closure,3,10,,,,,,\n").encode(), 2, "study_id", "is blank; every row needs"),
    ("blank-outcome", (H + "A,,3,10,,,,,,\n").encode(), 2, "outcome", "is blank"),
    ("count-abc", (H + OK + "B,closure,abc,10,,,,,,\n").encode(), 3, "events_t", "'abc' is not a number"),
    ("count-decimal", (H + "B,closure,3.5,10,,,,,,\n").encode(), 2, "events_t", "'3.5' is not a whole number"),
    ("count-thousands", (H + 'B,closure,3,"1,234",,,,,,\n').encode(), 2, "n_t",
     "'1,234' has a thousands separator; write the count with digits only (e.g. 1234)"),
    ("count-negative", (H + "B,closure,-3,10,,,,,,\n").encode(), 2, "events_t", "'-3' is negative"),
    ("count-nan", (H + "B,closure,NaN,10,,,,,,\n").encode(), 2, "events_t",
     "'NaN' is not a count; leave the cell empty"),
    ("count-inf", (H + "B,closure,3,inf,,,,,,\n").encode(), 2, "n_t", "'inf' (infinite) is not a count"),
    ("count-huge", (H + "B,closure,3,1000000001,,,,,,\n").encode(), 2, "n_t", "implausibly large"),
    ("events-over-n", (H + "B,closure,12,10,,,,,,\n").encode(), 2, "events_t",
     "events_t (12) is larger than n_t (10)"),
    ("control-events-over-n", (H + "B,closure,2,10,7,6,,,,\n").encode(), 2, "events_c",
     "events_c (7) is larger than n_c (6)"),
    ("n-zero", (H + "B,closure,0,0,,,,,,\n").encode(), 2, "n_t", "n_t is 0; an arm needs at least one"),
    ("events-without-n", (H + "B,closure,3,,,,,,,\n").encode(), 2, "n_t", "events_t is given but n_t is blank"),
    ("control-events-without-n", (H + "B,closure,3,10,1,,,,,\n").encode(), 2, "n_c",
     "events_c is given but n_c is blank"),
    ("control-n-without-events", (H + "B,closure,3,10,,10,,,,\n").encode(), 2, "events_c",
     "n_c is given but events_c is blank"),
    ("control-without-treatment-events", (H + "B,closure,,10,1,10,,,,\n").encode(), 2, "events_t",
     "control counts are given but events_t is blank"),
    ("unknown-unit", (H + "B,closure,3,10,,,patients,,,\n").encode(), 2, "unit",
     "'patients' is not a unit; use patient or fistula"),
    ("timepoint-text", (H + "B,closure,3,10,,,,24 weeks,,\n").encode(), 2, "timepoint_weeks",
     "'24 weeks' is not a number; write the number of weeks only"),
    ("timepoint-negative", (H + "B,closure,3,10,,,,-4,,\n").encode(), 2, "timepoint_weeks", "'-4' is negative"),
    ("timepoint-nan", (H + "B,closure,3,10,,,,nan,,\n").encode(), 2, "timepoint_weeks", "not a finite number"),
    ("dose-text", (H + "B,closure,3,10,,,,,,3x10^7\n").encode(), 2, "dose_cells",
     "'3x10^7' is not a number; write the number of cells, e.g. 3e7"),
    ("dose-zero", (H + "B,closure,3,10,,,,,,0\n").encode(), 2, "dose_cells", "not a positive number of cells"),
    ("pct-text", (H + "B,closure,3,10,,,,,63 pct,\n").encode(), 2, "pct_t", "'63 pct' is not a percentage"),
    ("pct-over-100", (H + "B,closure,3,10,,,,,120,\n").encode(), 2, "pct_t", "between 0 and 100"),
    ("duplicate-key", (H + OK + "B,closure,3,10,,,,,,\n" + "A,closure,4,10,1,10,patient,24.0,40,\n").encode(), 4,
     "study_id", "repeats row 2: the same study_id, outcome, timepoint_weeks and unit (A, closure, 24, patient)"),
]


@pytest.mark.parametrize("case,data,row,column,words", BAD_FILES, ids=[c[0] for c in BAD_FILES])
@pytest.mark.parametrize("command", ["studies", "check"])
def test_bad_file_gives_one_line_and_exit_2(tmp_path, run_cli, command, case, data, row, column, words):
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    message = _error_line(*run_cli(command, "--data", path))
    prefix = str(path)
    if row is not None:
        prefix += f", row {row}"
    if column is not None:
        prefix += f", column '{column}'"
    assert message.startswith(prefix + ": "), message
    assert words in message


def test_missing_file(tmp_path, run_cli):
    path = tmp_path / "nope.csv"
    assert _error_line(*run_cli("studies", "--data", path)) == f"{path}: the file does not exist"


def test_directory_instead_of_file(tmp_path, run_cli):
    message = _error_line(*run_cli("check", "--data", tmp_path))
    assert message.startswith(f"{tmp_path}: is a folder, not a file")


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
def test_named_pipe_refused_without_hanging(tmp_path, run_cli):
    import os

    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    message = _error_line(*run_cli("studies", "--data", path))
    assert message.startswith(f"{path}: is not a regular file (a pipe or a device)")


def test_unreadable_file(tmp_path, run_cli, monkeypatch):
    # Tests may run as root, who reads chmod-000 files: simulate the denial.
    import msc_meta.data.load as load

    def deny(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(load, "_read_bytes", deny)
    path = tmp_path / "t.csv"
    path.write_text(H + OK)
    assert _error_line(*run_cli("studies", "--data", path)) == f"{path}: cannot be read (permission denied)"


def test_huge_file_refused_before_reading(tmp_path, run_cli, monkeypatch):
    import msc_meta.data.load as load

    def must_not_read(path):
        raise AssertionError("read a file over the size limit")

    monkeypatch.setattr(load, "_read_bytes", must_not_read)
    path = tmp_path / "big.csv"
    with open(path, "wb") as handle:      # sparse: no disk space used
        handle.truncate(51 * 1024 * 1024)
    message = _error_line(*run_cli("studies", "--data", path))
    assert message == (f"{path}: is 53,477,376 bytes (53.5 MB); outcome tables over 50,000,000 bytes (50 MB) "
                       "are refused (is this the right file?)")


@pytest.mark.parametrize("change,row,column,words", [
    (lambda t: t.update(arm="placebo"), 2, "arm", "'placebo' is not an arm; use treatment, control or all"),
    (lambda t: t.update(members=" ; "), 2, "members", "is blank; list the study_ids"),
    (lambda t: t.update(members="D1;D1"), 2, "members", "lists a study_id twice"),
    (lambda t: t.update(total_n=0), 2, "total_n", "must be a count of at least 1"),
    (lambda t: t.update(total_n="x"), 2, "total_n", "'x' is not a number"),
    (lambda t: t.update(trial=""), 2, "trial", "is blank; every totals row names its trial"),
])
def test_bad_totals_file(tmp_table, run_cli, change, row, column, words):
    totals = valid_totals()[:1]
    change(totals[0])
    data = tmp_table(valid_rows())
    path = tmp_table(totals, name="totals.csv")
    message = _error_line(*run_cli("check", "--data", data, "--totals", path))
    assert message.startswith(f"{path}, row {row}, column '{column}': ")
    assert words in message


def test_totals_missing_required_column(tmp_table, run_cli):
    data = tmp_table(valid_rows())
    path = tmp_table("trial,arm,members,total_n\nD,all,D1,5\n", name="totals.csv")
    message = _error_line(*run_cli("check", "--data", data, "--totals", path))
    assert message.startswith(f"{path}, row 1, column 'timepoint_weeks': the required column is missing")


def test_no_traceback_in_a_real_process(tmp_path, run_cli_process):
    path = tmp_path / "bad.csv"
    path.write_bytes((H + "B,closure,12,10,,,,,,\n").encode())
    code, out, err = run_cli_process("studies", "--data", path)
    assert code == 2 and out == ""
    assert err == f"msc-meta: error: {path}, row 2, column 'events_t': events_t (12) is larger than n_t (10)\n"


# --- studies -----------------------------------------------------------------


def test_studies_table(tmp_table, run_cli):
    code, out, err = run_cli("studies", "--data", tmp_table(valid_rows()))
    assert code == 0 and err == ""
    for word in ("combined_remission", "53/107", "49.5%", "36/105", "34.3%", "case_series",
                 "dose_finding_rct", "24 wk, per patient", "adipose", "1×10^7 cells"):
        assert word in out, word
    assert "—/107" in out and "(50%)" in out          # a percentage-only row is listed, not hidden
    assert ("7 rows (6 with counts, 1 without; 4 two-arm), 5 study groups in 3 trials, 5 outcomes"
            in " ".join(out.split()))
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "\x1b[" not in out                        # no colour codes when not on a terminal


def test_studies_outcome_filter_and_unknown_outcome(tmp_table, run_cli):
    path = tmp_table(valid_rows())
    code, out, _ = run_cli("studies", "--data", path, "--outcome", "healing")
    assert code == 0 and "D2" in out and "combined_remission" not in out
    message = _error_line(*run_cli("studies", "--data", path, "--outcome", "heal"))
    assert message.startswith("no rows with outcome 'heal'") and "healing" in message


def test_studies_json(tmp_table, run_cli):
    rows = valid_rows()
    for row in rows:
        row["region"] = "EU"
    code, out, err = run_cli("studies", "--data", tmp_table(rows), "--json", "--outcome", "clinical_remission")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert len(doc) == 1
    row = doc[0]
    assert row["row"] == 3 and row["study_id"] == "R"
    assert row["events_t"] is None and row["n_t"] == 107 and row["n_c"] == 105
    assert row["pct_t"] == "50" and row["timepoint_weeks"] == 24.0 and row["dose_cells"] == 1.2e8
    assert row["product"] is None and row["region"] == "EU"


def test_studies_curated(curated_path, run_cli):
    code, out, err = run_cli("studies")
    assert code == 0 and err == ""
    assert str(curated_path) in out.replace("\n", "")
    code, out, _ = run_cli("studies", "--json")
    assert code == 0 and len(json.loads(out)) > 0


def test_studies_into_closed_pipe(curated_path):
    done = subprocess.run(f"'{sys.executable}' -m msc_meta studies | head -1", shell=True,
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr and "Error" not in done.stderr


# --- check ---------------------------------------------------------------------


@pytest.fixture
def check_files(tmp_table, sources_dir):
    def make(rows=None, totals=None):
        data = tmp_table(rows if rows is not None else bound_rows())
        total = tmp_table(totals if totals is not None else valid_totals(), name="totals.csv")
        return ["check", "--data", data, "--totals", total, "--sources", sources_dir]

    return make


def test_check_clean(check_files, run_cli):
    code, out, err = run_cli(*check_files())
    assert code == 0 and err == ""
    assert out.strip().splitlines()[-1] == (
        "7 rows checked, 0 failures (checks: pct, arm_size, subgroup, totals, source_file, quote, "
        "bind, numbers, timepoint)")


def _planted(kind):
    rows, totals = bound_rows(), valid_totals()
    if kind in ("pct", "arm_size"):      # run without --sources, on a table without a bind column
        rows = valid_rows()
    if kind == "pct":
        rows[5]["pct_t"] = "71"
    elif kind == "arm_size":
        rows[1]["n_t"] = 108
    elif kind == "totals":
        totals[0]["total_n"] = 16
    elif kind == "source_file":
        rows[5]["source"] = "missing.txt"
    elif kind == "quote":
        rows[0]["quote"] = rows[0]["quote"].replace("treated with", "treated by")
    elif kind == "bind":
        rows[6]["bind"] = rows[6]["bind"].replace("(13/30)", "(13/31)")
    elif kind == "numbers":
        rows[6]["bind"] = rows[6]["bind"].replace('events_t = "(13/30)"[1]', 'events_t = "(13/30)"[2]')
    elif kind == "timepoint":
        rows[6]["timepoint_weeks"] = 52
    return rows, totals


@pytest.mark.parametrize("kind,row,file", [
    ("pct", 7, "data"), ("arm_size", 3, "data"), ("totals", 2, "totals"),
    ("source_file", 7, "data"), ("quote", 2, "data"), ("bind", 8, "data"), ("numbers", 8, "data"),
    ("timepoint", 8, "data"),
])
def test_check_finds_the_planted_error(check_files, run_cli, kind, row, file):
    rows, totals = _planted(kind)
    args = check_files(rows, totals)
    if kind in ("pct", "arm_size"):
        args = args[:-2]
    code, out, err = run_cli(*args)
    assert code == 1, out
    lines = out.strip().splitlines()
    failures = [line for line in lines if not line.startswith("note:")][:-1]
    assert len(failures) == 1 if kind != "bind" else 2, out
    where = f"row {row}" if file == "data" else f"totals.csv row {row}"
    assert failures[0].startswith(f"{where} [{kind}] ")
    assert lines[-1].startswith(f"7 rows checked, {len(failures)} failure")

    code, out, _ = run_cli(*args, "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False and doc["rows_checked"] == 7
    assert {(f["row"], f["check"]) for f in doc["failures"]} == {(row, kind)}
    assert set(doc["failures"][0]) >= {"row", "study_id", "outcome", "check", "reason"}


def test_check_json_clean(check_files, run_cli):
    code, out, err = run_cli(*check_files(), "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["ok"] is True and doc["failures"] == [] and doc["rows_checked"] == 7


def test_check_with_data_skips_totals_unless_given(tmp_table, run_cli):
    code, out, _ = run_cli("check", "--data", tmp_table(valid_rows()))
    assert code == 0
    assert "note: totals: not checked (give --totals with --data)" in out
    assert out.strip().splitlines()[-1] == "7 rows checked, 0 failures (checks: pct, arm_size, subgroup)"


def test_check_sources_folder_must_exist(tmp_table, tmp_path, run_cli):
    message = _error_line(*run_cli("check", "--data", tmp_table(valid_rows()), "--sources", tmp_path / "nope"))
    assert message == f"--sources {tmp_path / 'nope'}: the folder does not exist"
    (tmp_path / SOURCE_NAME).write_text("x")
    message = _error_line(*run_cli("check", "--data", tmp_table(valid_rows()), "--sources",
                                   tmp_path / SOURCE_NAME))
    assert message.endswith("is a file, not a folder")


def test_check_curated(curated_path, run_cli):
    from pathlib import Path

    args = ["check"]
    if Path("/work/shared/sources").is_dir():
        args += ["--sources", "/work/shared/sources"]
    code, out, err = run_cli(*args)
    assert code == 0, out
    assert " rows checked, 0 failures" in out.splitlines()[-1]


def test_check_curated_copy_with_planted_error(curated_path, tmp_path, run_cli):
    import csv

    with open(curated_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, columns = list(reader), reader.fieldnames
    index = next(i for i, r in enumerate(rows) if r["pct_c"] and r["events_c"] and r["n_c"])
    n_c, events_c = int(rows[index]["n_c"]), int(rows[index]["events_c"])
    rows[index]["pct_c"] = f"{100 * events_c / n_c + 3:.1f}"
    path = write_table(tmp_path / "copy.csv", rows, columns)
    code, out, _ = run_cli("check", "--data", path, "--json")
    assert code == 1
    # the printed percentage disagrees with the counts (pct) and with the quote (numbers)
    assert [(f["row"], f["check"]) for f in json.loads(out)["failures"]] == [(index + 2, "pct"),
                                                                             (index + 2, "numbers")]
