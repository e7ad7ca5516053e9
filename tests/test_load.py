"""msc_meta.data loading: typed rows, accepted file variants, select(), and InputError details."""

from __future__ import annotations

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
