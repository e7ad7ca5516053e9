"""The plain reader (``msc_meta.data.plain``) loads exactly what the per-line reader loads.

``load_table`` reads an ordinary plain CSV file (ASCII, no double quote, no
control character) with numpy; anything it cannot prove ordinary goes to the
per-line reader. These tests load random plain tables both ways (the
per-line reader alone: ``plain.read_columns`` switched off) and require the
same table (header, row numbers, every typed column, extra columns, every
``Row``) or the same ``InputError`` text. The tables mix what the plain
reader must get right (blank lines, CRLF and CR line ends, no final line
end, spaces and tabs around cells, empty cells, lines of delimiters, the
``sep=`` line, ';' and tab delimiters, blocks of lines split anywhere) with
what it must hand on (bad numbers, 9-digit counts, duplicate ids, keys
spelt two ways, ragged rows, blank or repeated column names, events > n).

Examples are derandomised (the same every run); set ``MSC_META_EXPLORE=1``
to draw fresh ones.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from msc_meta.data import load_table, plain
from msc_meta.errors import InputError

SETTINGS = dict(deadline=None, derandomize=not os.environ.get("MSC_META_EXPLORE"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

COUNT = ("events_t", "n_t", "events_c", "n_c")
OPTIONAL = ("timepoint_weeks", "unit", "trial", "note", "subgroup_of", "pct_t", "rob_overall",
            "mean_t", "extra_text")

ordinary_count = st.integers(0, 999).map(str)
count_cell = st.one_of(
    ordinary_count, ordinary_count, ordinary_count,
    st.just(""), st.integers(0, 10**8 - 1).map(str), st.integers(10**8, 10**10).map(str),
    st.sampled_from(["+5", "3.0", "-1", "NA", "abc", "1e3", "1,000", "0x1", "٣", "07", "00000000"]),
)
id_cell = st.one_of(
    st.integers(0, 40).map(lambda i: f"s{i}"),
    st.integers(0, 40).map(lambda i: f"S{i}"),
    st.integers(0, 9).map(lambda i: f"Trial-{i}-long-identifier-{'x' * i}"),
    st.sampled_from(["", "a b", "a  b", "A b", "x" * 60, "mid\tdle"]),
)
outcome_cell = st.sampled_from(["x", "x", "X", "y", "", "two words", "Two  Words"])
other_cell = st.sampled_from(["", "24", "52", "patient", "fistula", "T1", "low", "High", "s1",
                              "s1; s2", "63", "1.5", "text", "-2", "0", "101", "NA",
                              "bell\x07", '"quoted"', "caf\u00e9", "n" * 70])
VALID = {"timepoint_weeks": ["", "24", "2.5"], "unit": ["", "patient", "Fistula"],
         "trial": ["", "T1", "T2"], "note": ["", "text", "some  words", "long " * 15], "subgroup_of": ["", "s1"],
         "pct_t": ["", "63", "1.5"], "rob_overall": ["", "low", "Some concerns"], "mean_t": [""],
         "extra_text": ["", "a", "b c", "NA"]}
pad = st.sampled_from(["", "", "", " ", "  ", "\t", " \t "])


@st.composite
def plain_tables(draw):
    """(file bytes, block size) of a random plain table: a third clean, a third valid with
    blanks around cells, a third anything."""
    mode = draw(st.sampled_from(["clean", "padded", "wild"]))
    wild = mode == "wild"
    delimiter = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    names = ["study_id", "outcome", *COUNT]
    names += draw(st.lists(st.sampled_from(OPTIONAL), unique=True, max_size=3))
    names = draw(st.permutations(names))
    if wild and draw(st.integers(0, 6)) == 0:
        names = names + [draw(st.sampled_from(["", "n_t", "study_id"]))]    # blank or repeated name
    rows = []
    for i in range(draw(st.integers(0 if wild else 1, 25))):
        cells = []
        for name in names:
            if name == "study_id":
                cell = draw(id_cell) if wild else f"s{i}"
            elif name == "outcome":
                cell = draw(outcome_cell) if wild else "x"
            elif name in COUNT:
                cell = draw(count_cell) if wild else draw(ordinary_count)
            else:
                cell = draw(other_cell) if wild else draw(st.sampled_from(VALID.get(name, [""])))
            cells.append(cell if mode == "clean" else draw(pad) + cell + draw(pad))
        if not wild:                                # events <= n, n >= 1
            for arm in ("t", "c"):
                e, n = names.index(f"events_{arm}"), names.index(f"n_{arm}")
                low, high = sorted((int(cells[e]), int(cells[n])))
                cells[e], cells[n] = str(low), str(max(high, 1))
        line = delimiter.join(cells)
        kind = draw(st.integers(0, 30)) if wild else 2
        if kind == 0:
            line = delimiter.join(cells[:-1])                   # ragged: a cell missing
        elif kind == 1:
            line = line + delimiter + "z"                       # ragged: a cell too many
        rows.append(line)
        extra = draw(st.integers(0, 12))
        if extra == 0:
            rows.append("")                                     # blank line
        elif extra == 1:
            rows.append(delimiter * (len(names) - 1))           # a line of delimiters
        elif extra == 2:
            rows.append(draw(st.sampled_from([" ", delimiter * 2, "\t ", delimiter + " "])))
    lines = [delimiter.join(names), *rows]
    if draw(st.integers(0, 8)) == 0:
        lines.insert(0, "")                                     # a blank line above the header
    if delimiter != "," and draw(st.integers(0, 4)) == 0:
        lines.insert(0, f"sep={delimiter}")
    end = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    text = end.join(lines) + draw(st.sampled_from([end, end, "", end + end]))
    return text.encode("utf-8"), draw(st.sampled_from([1, 8, 40, 200, 1 << 20]))


def _load(path, *, fast: bool, monkeypatch):
    """The table or the error text, loaded with or without the plain reader."""
    if not fast:
        monkeypatch.setattr(plain, "read_columns", lambda *args, **kw: None)
    try:
        return load_table(path)
    except InputError as err:
        return str(err)
    finally:
        monkeypatch.undo()


def _assert_same(fast, slow):
    if isinstance(slow, str) or isinstance(fast, str):
        assert fast == slow
        return
    assert fast.path == slow.path and fast.columns == slow.columns
    a, b = fast.data, slow.data
    np.testing.assert_array_equal(a.numbers, b.numbers)
    assert a.values.keys() == b.values.keys()
    for name, col in b.values.items():
        if isinstance(col, np.ndarray):
            np.testing.assert_array_equal(a.values[name], col, err_msg=name)   # NaN == NaN
            assert a.values[name].dtype == col.dtype
        else:
            assert list(a.values[name]) == list(col), name
    assert a.extra == b.extra
    assert fast.rows == slow.rows


def _load_watched(path, block, monkeypatch):
    """(what the plain reader answered, the fast load) with blocks of ``block`` bytes."""
    monkeypatch.setattr(plain, "_BLOCK", block)
    answered = []
    real = plain.read_columns
    monkeypatch.setattr(plain, "read_columns",
                        lambda *args, **kw: answered.append(real(*args, **kw)) or answered[-1])
    return answered, _load(path, fast=True, monkeypatch=monkeypatch)


@settings(max_examples=int(os.environ.get("MSC_META_EXAMPLES", 500)), **SETTINGS)
@given(table=plain_tables())
def test_plain_reader_loads_what_the_per_line_reader_loads(tmp_path_factory, monkeypatch, table):
    content, block = table
    path = tmp_path_factory.mktemp("plain") / "t.csv"
    path.write_bytes(content)
    answered, fast = _load_watched(path, block, monkeypatch)
    event(("plain reader answered" if answered and answered[0] is not None else "handed on")
          + (", error" if isinstance(fast, str) else ", loaded"))
    _assert_same(fast, _load(path, fast=False, monkeypatch=monkeypatch))


ORDINARY = [
    "study_id,outcome,events_t,n_t,events_c,n_c\ns1,x,1,10,2,20\ns2,x,3,30,4,40\n",
    "study_id,outcome,events_t,n_t,events_c,n_c\r\ns1,x,1,10,2,20\r\n\r\ns2,x,3,30,,\r\n",
    "\n study_id ; outcome ;events_t;n_t\n s1 ; x ; 1 ;  10\n;;;\n  \ns2;y;12345678;99999999",
    "sep=\t\rstudy_id\toutcome\tevents_t\tn_t\tnote\rA1\tx\t0\t1\tsome words\ra1b\tx\t1\t1\t\r",
    "study_id,outcome,events_t,n_t,trial,foo\nA-very-long-study-identifier-1,x,1,2,T,\n"
    "A-very-long-study-identifier-2,x,1,2,,bar\n",
    # a blank line, then a cell with a blank before it, in one block (found by hypothesis)
    "study_id,outcome,events_t,n_t\ns0,x,0,1\n\n s1,x,0,1\n\n",
    "study_id;outcome;events_t;n_t\ns0;Overall survival;0;1\ns1;Overall survival;0;1\n",
]


@pytest.mark.parametrize("text", ORDINARY)
@pytest.mark.parametrize("block", [1, 16, 1 << 20])
def test_ordinary_plain_files_are_read_by_the_plain_reader(tmp_path, monkeypatch, text, block):
    """The cases above are the plain reader's own (it does not hand them on), and equal."""
    path = tmp_path / "t.csv"
    path.write_text(text, newline="")
    answered, fast = _load_watched(path, block, monkeypatch)
    assert answered and answered[0] is not None and not isinstance(fast, str)
    _assert_same(fast, _load(path, fast=False, monkeypatch=monkeypatch))


HANDED_ON = [
    "study_id,outcome,events_t,n_t\ns1,x,1,2\ns2,x,1," + " " * 70 + "2\n",      # many blanks
    "study_id,outcome,events_t,n_t,note\ns1,x,1,2," + "w" * 140_000 + "\n",   # a line too long
    "study_id,outcome,events_t,n_t\ns1,x,1,2\ns2,x,1\n",                     # ragged
    "study_id,outcome,events_t,n_t,\ns1,x,1,2,\n",                            # a blank name
]


@pytest.mark.parametrize("text", HANDED_ON)
def test_the_plain_reader_hands_on_what_it_cannot_prove(tmp_path, monkeypatch, text):
    path = tmp_path / "t.csv"
    path.write_text(text)
    assert plain.read_columns(text, ",", str(path), ("study_id",), ("study_id",)) is None
    _assert_same(_load(path, fast=True, monkeypatch=monkeypatch),
                 _load(path, fast=False, monkeypatch=monkeypatch))


def test_counts_are_read_as_parse_count_reads_them(tmp_path):
    """Up to 8 digits straight from the bytes, leading zeros included; blank is NaN."""
    cells = ["0", "7", "00000000", "12345678", "99999999", "", "  42 "]
    body = "".join(f"s{i},x,{c},99999999\n" for i, c in enumerate(cells))
    path = tmp_path / "t.csv"
    path.write_text("study_id,outcome,events_t,n_t\n" + body)
    got = load_table(path).data.values["events_t"]
    want = [float(c) if c.strip() else np.nan for c in cells]
    np.testing.assert_array_equal(got, want)
