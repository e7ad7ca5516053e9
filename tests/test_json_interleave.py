"""The compiled writer of long ``--json`` study lists (report/_interleave.c).

``json_out._study_chunks`` writes a long study list with ``_interleave`` when it is built
(setup.py) and with a filled pattern list in Python otherwise. Both must write the same
bytes for every study list (hypothesis, below): odd and invisible characters in the ids,
blank counts, NaN and infinite numbers, one- and two-arm lists, with and without weights,
across pieces. ``interleave`` itself refuses a column that does not hold what it is told.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msc_meta.report import json_out

interleave = pytest.importorskip("msc_meta.report._interleave").interleave


class _Lines:
    """The columns ``_study_chunks`` reads, as a StudyLines holds them."""

    def __init__(self, **columns):
        self.__dict__.update(columns)

    def __len__(self) -> int:
        return len(self.study_id)


_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
_COUNTS = st.one_of(st.integers(0, 3000).map(float), st.just(math.nan))
_IDS = st.text(min_size=1, max_size=8)   # every code point: quotes, \, commas, controls, U+202E


@st.composite
def study_lines(draw):
    n = draw(st.integers(1, 23))
    two_arm = draw(st.booleans())

    def column(values, same=False):
        if same:        # one value for all: written into the constant text
            return np.full(n, draw(values))
        return np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=float)

    cc = draw(st.sampled_from(["none", "all", "some"]))
    return _Lines(
        study_id=np.array(draw(st.lists(_IDS, min_size=n, max_size=n)), dtype=object),
        two_arm=two_arm,
        events_t=column(_COUNTS, draw(st.booleans())), n_t=column(_COUNTS),
        events_c=column(_COUNTS) if two_arm else None,
        n_c=column(_COUNTS) if two_arm else None,
        yi=column(_FLOATS), vi=column(_FLOATS), estimate=column(_FLOATS),
        ci_low=column(_FLOATS), ci_high=column(_FLOATS),
        weight=column(_FLOATS) if draw(st.booleans()) else None,
        row_number=np.arange(2, n + 2) if draw(st.booleans()) else np.full(n, 7),
        cc_added=(np.zeros(n, bool) if cc == "none" else np.ones(n, bool) if cc == "all"
                  else np.arange(n) % 2 == 0),
    )


def _written(lines, monkeypatch, compiled):
    monkeypatch.setattr(json_out, "_interleave", interleave if compiled else None)
    return b"".join(json_out._study_chunks(lines, "\n    "))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=study_lines(), chunk=st.integers(1, 9))
def test_compiled_and_python_writers_give_the_same_bytes(lines, chunk, monkeypatch):
    monkeypatch.setattr(json_out, "_CHUNK", chunk)
    compiled = _written(lines, monkeypatch, True)
    assert compiled == _written(lines, monkeypatch, False)
    entries = orjson.loads(b"[" + compiled + b"]")
    assert [e["study_id"] for e in entries] == list(lines.study_id)
    assert compiled.isascii() or not any(ch in compiled.decode() for ch in "\u202e\x85")


def test_interleave_puts_each_columns_values_between_the_constant_texts():
    ids = orjson.dumps(['a","b', "c,d", "e\\"])
    got = interleave([b"<", b"|", b">"], [ids, b"[1,2.5,null]"], 3)
    assert got == b'<"a\\",\\"b"|1><"c,d"|2.5><"e\\\\"|null>'
    assert interleave([b"{", b"}"], [b"[]"], 0) == b""
    assert interleave([b"{}"], [], 2) == b"{}{}"


@pytest.mark.parametrize("consts, columns, n", [
    ([b"<", b">"], [b"[1,2]"], 3),          # too few values
    ([b"<", b">"], [b"[1]"], 5),            # far too few
    ([b"<", b">"], [b"[1,2,3]"], 2),        # too many
    ([b"<", b">"], [b"[[1,2],3]"], 2),      # a nested value
    ([b"<", b">"], [b'["a]'], 1),           # a string not closed
    ([b"<", b">"], [b'["a"x,"b"]'], 2),     # text after a string
    ([b"<", b">"], [b"1,2"], 2),            # not an array
    ([b"<", b">"], [b"[]"], 1),
    ([b"<"], [b"[1]"], 1),                  # one const too few
])
def test_interleave_refuses_a_column_that_does_not_hold_n_scalars(consts, columns, n):
    with pytest.raises(ValueError):
        interleave(consts, columns, n)


def test_interleave_takes_bytes_only():
    with pytest.raises(TypeError):
        interleave(["<", ">"], [b"[1]"], 1)
    with pytest.raises(TypeError):
        interleave([b"<", b">"], ["[1]"], 1)


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6))


def _interleaved_in_python(consts, columns, n):
    values = [[orjson.dumps(v) for v in orjson.loads(c)] for c in columns]
    out = []
    for i in range(n):
        for j, const in enumerate(consts[:-1]):
            out += (const, values[j][i])
        out.append(consts[-1])
    return b"".join(out)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), n=st.integers(0, 6), m=st.integers(0, 4))
def test_interleave_equals_a_python_interleave_and_survives_damaged_columns(data, n, m):
    consts = data.draw(st.lists(st.binary(max_size=4), min_size=m + 1, max_size=m + 1))
    columns = [orjson.dumps(data.draw(st.lists(_SCALARS, min_size=n, max_size=n)))
               for _ in range(m)]
    assert interleave(consts, columns, n) == _interleaved_in_python(consts, columns, n)
    if not columns:
        return
    # a byte changed, cut or added anywhere: the right bytes or ValueError, never a crash
    j = data.draw(st.integers(0, m - 1))
    col = bytearray(columns[j])
    at = data.draw(st.integers(0, len(col)))
    edit = data.draw(st.sampled_from(["set", "cut", "add"]))
    byte = data.draw(st.sampled_from(b'",[]{}\\ a1'))
    if edit == "set" and at < len(col):
        col[at] = byte
    elif edit == "cut" and at < len(col):
        del col[at]
    else:
        col.insert(at, byte)
    columns[j] = bytes(col)
    try:
        got = interleave(consts, columns, n)
    except ValueError:
        return
    assert len(got) == sum(map(len, consts)) * n + sum(len(c) - 2 - max(n - 1, 0) for c in columns)
