"""msc_meta.data loading: typed rows, accepted file variants, select(), and InputError details."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import valid_rows
from msc_meta.data import OutcomeTable, Row, load_table, select
from msc_meta.data import curated_path as packaged_path
from msc_meta.data.load import load_totals, parse_count
from msc_meta.errors import InputError, UsageError

MINIMAL = "study_id,outcome,events_t,n_t\nA,closure,3,10\nB,closure,5,12\n"


def test_typed_row_fields(tmp_table):
    table = load_table(tmp_table(valid_rows()))
    assert isinstance(table, OutcomeTable)
    assert len(table) == 7
    first = table.rows[0]
    assert isinstance(first, Row)
    assert first.row_number == 2
    assert (first.study_id, first.outcome) == ("R", "combined_remission")
    assert (first.events_t, first.n_t, first.events_c, first.n_c) == (53, 107, 36, 105)
    assert first.timepoint_weeks == 24.0 and isinstance(first.timepoint_weeks, float)
    assert first.unit == "patient"
    assert first.pct_t == "49.5" and first.pct_c == "34.3"
    assert first.dose_cells == pytest.approx(1.2e8)
    assert first.product is None           # blank text -> None
    assert first.has_counts and first.is_comparison
    no_counts = table.rows[1]
    assert no_counts.events_t is None and no_counts.n_t == 107 and no_counts.pct_t == "50"
    assert not no_counts.has_counts and not no_counts.is_comparison
    single = table.rows[5]
    assert single.has_counts and not single.is_comparison
    assert table.columns[0] == "study_id" and "quote" in table.columns
    assert table.outcomes() == ("combined_remission", "clinical_remission", "healing",
                                "clinical_closure", "radiological_remission")


def test_minimal_columns_and_extra_columns(tmp_table):
    path = tmp_table("study_id,outcome,events_t,n_t,region\nA,closure,3,10,EU\nB,closure,5,12,\n")
    table = load_table(path)
    a, b = table.rows
    assert a.trial is None and a.timepoint_weeks is None and a.events_c is None
    assert dict(a.extra) == {"region": "EU"}
    assert a.value("region") == "EU" and b.value("region") is None
    assert a.value("n_t") == 10 and a.value("trial") is None
    with pytest.raises(UsageError, match="no column 'regoin'"):
        a.value("regoin")
    with pytest.raises(UsageError, match="no column 'dose'"):
        table.require_column("dose")
    assert a.to_dict()["region"] == "EU" and a.to_dict()["row"] == 2
    hash(a)   # frozen rows stay hashable despite the mapping of extra columns
    with pytest.raises(AttributeError):
        a.n_t = 11


def test_curated_path_is_packaged():
    path = packaged_path()
    assert path.name == "outcomes.csv"
    assert path.parent.name == "data" and path.parent.parent.name == "msc_meta"


def test_load_none_reads_curated(curated_path):
    table = load_table(None)
    assert table.path == str(curated_path)
    assert len(table) > 0
    assert all(r.row_number >= 2 for r in table.rows)


def test_curated_totals_load(curated_path):
    from msc_meta.data import curated_totals_path

    if not curated_totals_path().is_file():
        pytest.skip("curated totals.csv not there yet")
    totals = load_totals(None)
    assert all(t.arm in ("treatment", "control", "all") and t.total_n >= 1 for t in totals.rows)


@pytest.mark.parametrize("variant", ["bom", "crlf", "cr", "utf16", "utf16le-nobom", "semicolon", "tab"])
def test_accepted_file_variants(tmp_path, variant):
    text = "study_id,outcome,timepoint_weeks,events_t,n_t,pct_t\nA,closure,24,3,10,30\nB,closure,24,5,12,41.7\n"
    if variant == "semicolon":
        data = text.replace(",", ";").replace("41.7", "41,7").encode()
    elif variant == "tab":
        data = text.replace(",", "\t").encode()
    elif variant == "bom":
        data = b"\xef\xbb\xbf" + text.encode()
    elif variant == "crlf":
        data = text.replace("\n", "\r\n").encode()
    elif variant == "cr":
        data = text.replace("\n", "\r").encode()
    elif variant == "utf16":
        data = text.encode("utf-16")
    else:
        data = text.encode("utf-16-le")
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    table = load_table(path)
    assert [r.study_id for r in table.rows] == ["A", "B"]
    assert table.columns[0] == "study_id"
    assert [r.n_t for r in table.rows] == [10, 12]
    assert table.rows[1].pct_t == "41.7"


def test_quoted_commas_newlines_and_row_numbers(tmp_table):
    path = tmp_table('study_id,outcome,events_t,n_t,note\n'
                     'A,closure,3,10,"a note, with a comma\nand a line break, and ""quotes"""\n'
                     '\n'
                     ',,,,\n'
                     'B,closure,5,12,\n')
    table = load_table(path)
    a, b = table.rows
    assert a.note == 'a note, with a comma\nand a line break, and "quotes"'
    # the blank line and the all-blank row are skipped but counted, as in a spreadsheet
    assert (a.row_number, b.row_number) == (2, 5)


def test_counts_written_as_whole_decimals(tmp_table):
    table = load_table(tmp_table("study_id,outcome,events_t,n_t\nA,closure,3.0,10.00\n"))
    assert (table.rows[0].events_t, table.rows[0].n_t) == (3, 10)


def test_percentage_only_row_with_arm_sizes(tmp_table):
    table = load_table(tmp_table("study_id,outcome,events_t,n_t,events_c,n_c,pct_t,pct_c\n"
                                 "A,closure,,40,,20,63%,30\n"))
    row = table.rows[0]
    assert (row.n_t, row.n_c, row.pct_t, row.pct_c) == (40, 20, "63", "30")
    assert not row.has_counts and not row.is_comparison


def test_unit_normalised(tmp_table):
    table = load_table(tmp_table("study_id,outcome,events_t,n_t,unit\nA,closure,3,10, Fistula \n"))
    assert table.rows[0].unit == "fistula"


@pytest.mark.parametrize("text,message", [
    ("abc", "'abc' is not a number"),
    ("3.5", "'3.5' is not a whole number"),
    ("1,234", "thousands separator"),
    ("-2", "'-2' is negative"),
    ("NaN", "'NaN' is not a count; leave the cell empty"),
    ("NA", "'NA' is not a count"),
    ("inf", "infinite"),
    ("2000000000", "implausibly large"),
    ("1e3", "not a whole number written with digits"),
    ("40%", "is a percentage, not a count"),
])
def test_parse_count_errors(text, message):
    with pytest.raises(InputError) as err:
        parse_count(text, path="f.csv", row=7, column="n_t")
    assert message in str(err.value)
    assert str(err.value).startswith("f.csv, row 7, column 'n_t': ")
    assert (err.value.row, err.value.column) == (7, "n_t")


def _select_table(tmp_table):
    return load_table(tmp_table(
        "study_id,outcome,timepoint_weeks,unit,events_t,n_t\n"
        "A,closure,24,patient,3,10\n"
        "A,closure,52,patient,4,10\n"
        "B,closure,24,patient,5,12\n"
        "B,closure,24,fistula,6,15\n"
        "C,closure,24,patient,,12\n"
        "A,response,24,patient,2,10\n"))


def test_select_picks_rows_and_keeps_rows_without_counts(tmp_table):
    table = _select_table(tmp_table)
    rows = select(table, "closure", timepoint=24, unit="patient")
    assert [(r.study_id, r.row_number) for r in rows] == [("A", 2), ("B", 4), ("C", 6)]
    assert [r.study_id for r in select(table, "closure", timepoint=52)] == ["A"]
    assert [r.study_id for r in select(table, "response")] == ["A"]


@pytest.mark.parametrize("kwargs,message", [
    (dict(outcome="closur"), "no rows with outcome 'closur'.*outcomes are: closure, response"),
    (dict(outcome="closure"), r"several time points \(24, 52 weeks\); choose one with --timepoint"),
    (dict(outcome="closure", timepoint=24), r"different units \(fistula, patient\); choose one with --unit"),
    (dict(outcome="closure", timepoint=12), r"no rows at --timepoint 12; time points: 24, 52 weeks$"),
    (dict(outcome="closure", timepoint=52, unit="fistula"), "no rows with --unit fistula at 52 weeks; units: patient"),
])
def test_select_usage_errors(tmp_table, kwargs, message):
    table = _select_table(tmp_table)
    with pytest.raises(UsageError, match=message):
        select(table, **kwargs)


def test_select_blank_timepoint_among_others(tmp_table):
    table = load_table(tmp_table("study_id,outcome,timepoint_weeks,events_t,n_t\n"
                                 "A,closure,24,3,10\nB,closure,,4,10\n"))
    with pytest.raises(UsageError, match=r"time points \(24 weeks; and rows with timepoint_weeks blank, which --timepoint blank selects\)"):
        select(table, "closure")


def test_loading_does_not_import_pandas(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(MINIMAL)
    code = ("import sys; from msc_meta.data import load_table; load_table(sys.argv[1]); "
            "bad = [m for m in ('pandas', 'scipy.stats', 'matplotlib', 'rich') if m in sys.modules]; "
            "print(','.join(bad))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


# --------------------------------------------------------------------------- keys (issue 11, item 2)

from msc_meta.data.keys import key, same_key  # noqa: E402
from msc_meta.data.load import NumberError, dose_from_text, weeks_from_text  # noqa: E402
from msc_meta.errors import visible  # noqa: E402


@pytest.mark.parametrize("a,b", [
    ("a", "A"),
    ("a", "a\u200f"),                 # right-to-left mark (Cf)
    ("a", "a\u00ad"),                 # soft hyphen (Cf)
    ("panes", "pa\u00adnes"),         # ... inside the key
    ("ab", "a\u200bb"),               # zero-width space inside
    ("ab", "a\u034fb"),               # combining grapheme joiner (default-ignorable, not Cf)
    ("ab", "a\ufe0fb"),               # variation selector
    ("A", "\uff21"),                  # full-width A (NFKC)
    ("fi", "\ufb01"),                 # ligature (NFKC)
    ("é", "e\u0301"),                 # composed and decomposed accent
    ("strasse", "STRAẞE"),            # case folding, not lower()
    ("panes cx601", " panes \u00a0 CX601\t"),
])
def test_key_treats_spellings_as_one(a, b):
    assert key(a) == key(b) and same_key(a, b)


@pytest.mark.parametrize("a,b", [("a", "b"), ("a1", "a2"), ("a b", "ab"), ("c", "\u0441")])  # Latin c, Cyrillic es
def test_key_keeps_different_keys_apart(a, b):
    assert key(a) != key(b)


def test_key_of_none():
    assert key(None) is None and same_key(None, None) and not same_key(None, "")


def test_select_compares_the_outcome_as_a_key(tmp_table):
    table = _select_table(tmp_table)
    want = select(table, "closure", timepoint=24, unit="patient")
    for spelling in ("CLOSURE", "Closure", " closure\u200b", "\uff43losure"):
        assert select(table, spelling, timepoint=24, unit="patient") == want
    assert select(table, "closure", timepoint=24, unit="PATIENT") == want


@pytest.mark.parametrize("rows,row,column,message", [
    ("A,closure,3,10\na,closure,4,10\n", 3, "study_id",
     "repeats row 2: the same study_id, outcome, timepoint_weeks and unit (a, closure, (blank), (blank)); "
     "row 2 writes it (A, closure)"),
    ("A,closure,3,10\nA\u200f,closure,4,10\n", 3, "study_id", "repeats row 2"),
    ("A,closure,3,10\nA,response,4,10\na,x,1,2\n", 4, "study_id",
     "'a' and 'A' (row 2) are the same study group written differently"),
    ("A,closure,3,10\nB,Closure,4,10\n", 3, "outcome",
     "'Closure' and 'closure' (row 2) are the same outcome written differently"),
])
def test_keys_written_two_ways_are_refused(tmp_table, rows, row, column, message):
    with pytest.raises(InputError) as err:
        load_table(tmp_table("study_id,outcome,events_t,n_t\n" + rows))
    assert (err.value.row, err.value.column) == (row, column)
    assert message in str(err.value)


def test_trial_written_two_ways_is_refused(tmp_table):
    with pytest.raises(InputError, match=r"'ADMIRE' and 'admire' \(row 2\) are the same trial"):
        load_table(tmp_table("study_id,trial,outcome,events_t,n_t\nA1,admire,closure,3,10\nA2,ADMIRE,closure,4,10\n"))


def test_invisible_marks_at_the_ends_of_cells_are_removed(tmp_table):
    table = load_table(tmp_table("study_id,outcome,events_t,n_t\n\u200fA\u00ad,closure\u2066,3,10\n"))
    assert (table.rows[0].study_id, table.rows[0].outcome) == ("A", "closure")


def test_check_compares_totals_members_as_keys(tmp_table):
    from msc_meta.data.check import check_totals

    table = load_table(tmp_table("study_id,trial,outcome,timepoint_weeks,unit,events_t,n_t\n"
                                 "D1,d,closure,24,patient,3,10\nD2,d,closure,24,patient,4,12\n"))
    totals = load_totals(tmp_table("trial,timepoint_weeks,unit,arm,members,total_n\n"
                                   "D,24,patient,treatment,d1;D2\u200b,22\n", name="totals.csv"))
    assert check_totals(table, totals) == []


# --------------------------------------------------------------------------- strict numbers (item 7)

@pytest.mark.parametrize("text,weeks", [("24", 24.0), ("+24", 24.0), ("2.5", 2.5), (".5", 0.5), ("24.", 24.0),
                                        ("0", 0.0), ("5200", 5200.0), (" 24 ", 24.0), ("", None)])
def test_weeks_accepted(text, weeks):
    value = weeks_from_text(text)
    assert value == weeks and (value is None or str(value) != "-0.0")


def test_weeks_decimal_comma():
    assert weeks_from_text("24,5", decimal_comma=True) == 24.5
    with pytest.raises(NumberError, match="is not a number"):
        weeks_from_text("24,5")


@pytest.mark.parametrize("text,message", [
    ("1_0", "'1_0' has an underscore"),
    ("-0", "'-0' has a minus sign"),
    ("-0.0", "'-0.0' has a minus sign"),
    ("-24", "'-24' is negative"),
    ("1e30", "'1e30' is in scientific notation"),
    ("2.4e1", "in scientific notation"),
    ("inf", "'inf' is not a finite number"),
    ("-Infinity", "not a finite number"),
    ("nan", "'nan' is not a finite number"),
    ("5200.5", "is over 5,200 weeks (100 years)"),
    ("\uff12\uff14", "is not written with the digits 0-9"),
    ("\u0662\u0664", "is not written with the digits 0-9"),     # Arabic-Indic digits: float() reads 24
    ("0x18", "'0x18' is not a number"),
    ("24 weeks", "'24 weeks' is not a number"),
])
def test_weeks_refused(text, message):
    with pytest.raises(NumberError, match=re.escape(message)):
        weeks_from_text(text)


@pytest.mark.parametrize("text,cells", [("3e7", 3e7), ("1.2e8", 1.2e8), ("1.2E+8", 1.2e8), ("30000000", 3e7),
                                        ("+9e7", 9e7), ("1", 1.0), ("1e12", 1e12)])
def test_dose_accepted(text, cells):
    assert dose_from_text(text) == cells


@pytest.mark.parametrize("text,message", [
    ("3_0e7", "has an underscore"), ("-0", "not a positive number of cells"), ("0", "not a positive number"),
    ("-3e7", "not a positive number"), ("inf", "not a finite number"), ("nan", "not a finite number"),
    ("1e400", "is over 1e12 cells"), ("2e12", "is over 1e12 cells"), ("5e-1", "less than one cell"),
    ("3x10^7", "'3x10^7' is not a number"),
])
def test_dose_refused(text, message):
    with pytest.raises(NumberError, match=re.escape(message)):
        dose_from_text(text)


def test_curated_dose_notations_still_load(curated_path):
    doses = {r.dose_cells for r in load_table(curated_path).rows if r.dose_cells is not None}
    assert {1e7, 3e7, 9e7, 1.2e8} <= doses


# --------------------------------------------------------------------------- messages (item 8)

@pytest.mark.parametrize("raw,shown", [
    ("a\nb", "a\\nb"), ("a\r\nb", "a\\r\\nb"), ("\x1b[31mred", "\\x1b[31mred"), ("a\tb", "a\\tb"),
    ("a\u200fb", "a\\u200fb"), ("a\u00adb", "a\\xadb"), ("a\u2028b", "a\\u2028b"), ("a\x85b", "a\\x85b"),
    ("cl\udcf4ture", "cl\\xf4ture"), ("clôture ✓ — α", "clôture ✓ — α"), ("C:\\data\\t.csv", "C:\\data\\t.csv"),
])
def test_visible(raw, shown):
    assert visible(raw) == shown
    assert len(visible(raw).splitlines()) <= 1


def test_input_error_is_one_line_whatever_the_data():
    err = InputError("'8\n9' is not a number", path="my\ntable.csv", row=4, column="n\x1b_t")
    assert str(err) == "my\\ntable.csv, row 4, column 'n\\x1b_t': '8\\n9' is not a number"
    assert str(UsageError("no rows with outcome 'a\nb'")) == "no rows with outcome 'a\\nb'"


def test_long_cell_reported_as_too_long(tmp_table):
    path = tmp_table("study_id,outcome,events_t,n_t,note\nA,closure,3,10," + "x" * 200_000 + "\n")
    with pytest.raises(InputError) as err:
        load_table(path)
    assert (err.value.row, err.value.column) == (2, "note")
    assert "a cell is 200,000 characters long, over the limit of 131,072 characters" in str(err.value)
    assert "quote" not in str(err.value)


def test_quote_closed_far_below_reported_as_such(tmp_table):
    body = "".join(f"B{i},closure,3,10,\n" for i in range(20_000))
    path = tmp_table('study_id,outcome,events_t,n_t,note\nA,closure,3,10,"oops\n' + body + 'end"\n')
    with pytest.raises(InputError) as err:
        load_table(path)
    assert (err.value.row, err.value.column) == (2, "note")
    assert "spans 20,002 lines: probably a double quote opened in row 2 is closed only much further down" \
        in str(err.value)


def test_the_csv_field_limit_is_restored(tmp_table):
    import csv

    before = csv.field_size_limit()
    load_table(tmp_table(MINIMAL))
    assert csv.field_size_limit() == before
