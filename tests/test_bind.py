"""msc_meta.data.bind: the bind notation is read as docs/data.md ("Binding numbers") says."""

from __future__ import annotations

import pytest

from msc_meta.data.bind import BindError, cell_value, numbers_in, parse_bind, sci_value, times_in


def test_entries_and_references():
    got = parse_bind('events_t = "[3/4]"[1]; n_t = same; dose_cells = sci(cell("1 | 1 × 107 | 5", 1)); '
                     'events_c = "in which 10 patients" - "Two patients were withdrawn"; '
                     'timepoint_weeks = note"4-year MRI"; pct_t = "75%"')
    assert list(got) == ["events_t", "n_t", "dose_cells", "events_c", "timepoint_weeks", "pct_t"]
    assert got["events_t"].terms[0][1].describe() == '"[3/4]"[1]'
    assert got["dose_cells"].terms[0][1].describe() == 'sci(cell("1 | 1 × 107 | 5", 1))'
    assert [sign for sign, _ in got["events_c"].terms] == [1, -1]
    assert got["events_c"].expression == '"in which 10 patients" - "Two patients were withdrawn"'
    assert got["n_t"].is_same and not got["pct_t"].is_same
    assert parse_bind("") == {} and parse_bind(None) == {}


@pytest.mark.parametrize("text,message", [
    ('events = "3"', "'events' is not a column that holds a number"),
    ('events_t "3"', "expected '=' after events_t"),
    ('events_t = "3"; events_t = "4"', "events_t is bound twice"),
    ('events_t = "3" n_t = "4"', "expected ';' between entries"),
    ('events_t = twice("3")', "unknown reference 'twice'"),
    ('events_t = "3"[0]', "[K] counts from 1"),
    ('events_t = "3', "cannot read the bind cell"),
])
def test_bad_entries_are_one_line_errors(text, message):
    with pytest.raises(BindError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_bind(text)


def test_numbers_digits_and_words():
    assert [v for _, v in numbers_in("Thirteen out of 15 patients [87%]")] == [13, 15, 87]
    assert [v for _, v in numbers_in("4a 43.3% done")] == [4, 43.3]     # 'done' holds no 'one'


@pytest.mark.parametrize("text,weeks", [
    ("after 4 years", 208), ("the 4-year follow-up", 208), ("at Week 24", 24), ("after 24 weeks9", 24),
    ("a 14-wk period", 14), ("the 3-mo follow-up", 13), ("after 12 months", 52), ("over 24 mo", 104),
    ("after 72 months", 312), ("after 1 year", 52), ("day 28", 4),
])
def test_times_are_converted_by_the_documented_rule(text, weeks):
    assert [w for _, w in times_in(text)] == [weeks]


def test_sci_reads_flattened_powers():
    assert sci_value("12 × 107") == pytest.approx(1.2e8)
    assert sci_value("1 x 10^7") == pytest.approx(1e7)
    with pytest.raises(BindError):
        sci_value("12 million")


def test_cells_by_column_empty_and_dash_read_zero():
    line = "Perianal abscess | 2 [1] | | 4 [3]"
    assert [cell_value(line, j, 2) for j in (1, 2, 3)] == [1, 0, 3]
    assert cell_value("I and D | 2 [1] | - | 3 [3]", 2, None) == 0
    with pytest.raises(BindError, match="columns 1 to 3"):
        cell_value(line, 4, None)
