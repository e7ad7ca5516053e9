"""Long lists of the ``pool --json`` document (json_out.LONG_LIST): one entry per line.

The layout changes, the document does not: a pool written with long lists parses to
the document orjson indents whole (the dict path), at every size around the limit and
across the writer's pieces; short documents keep orjson's layout byte for byte; the
columnar study writer and the generic one give the same bytes; text from the data is
escaped on either path; ``write_json``'s writer thread writes the same bytes and hands
a failed write back to its caller.
"""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import orjson
import pytest

from msc_meta.data import load_table
from msc_meta.pooling.analysis import run_pool
from msc_meta.pooling.study_lines import StudyLines
from msc_meta.report import json_out
from msc_meta.report.json_out import analysis_to_dict, to_json, write_json
from msc_meta.report.terminal import json_document

# study ids a writer could get wrong: quotes, backslashes, commas, a comma and a quote
# as a JSON list separator, a right-to-left override (escaped as \u202e), non-ASCII
ODD_IDS = ['a","b', "back\\slash", "com,ma", "rtl\u202eevil", "Müller 2019", "}, {", "[1,2]"]


def _table(tmp_path, n, seed=3):
    rng = np.random.default_rng(seed)
    n_t, n_c = rng.integers(2, 60, n), rng.integers(2, 60, n)
    e_t, e_c = rng.binomial(n_t, 0.3), rng.binomial(n_c, 0.2)
    e_t[::7] = 0                            # zero cells: cc_added true and false
    lines = ["study_id,outcome,events_t,n_t,events_c,n_c"]
    for i in range(n):
        sid = ODD_IDS[i % len(ODD_IDS)] + f" {i}"
        sid = '"' + sid.replace('"', '""') + '"'
        lines.append(f"{sid},x,{e_t[i]},{n_t[i]},{e_c[i]},{n_c[i]}")
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_table(path)


@pytest.fixture
def small_limits(monkeypatch):
    """A long list from 6 entries on, written in pieces of 4: every boundary in a small pool."""
    monkeypatch.setattr(json_out, "LONG_LIST", 5)
    monkeypatch.setattr(json_out, "_CHUNK", 4)


@pytest.mark.parametrize("n", [1, 2, 5, 6, 7, 8, 9, 13])
def test_long_list_document_parses_to_the_dict_path_document(tmp_path, small_limits, n):
    analysis = run_pool(_table(tmp_path, n), outcome="x", method="REML" if n > 1 else "FE")
    assert isinstance(analysis.studies, StudyLines)
    expected = orjson.loads(json_document(analysis_to_dict(analysis)))
    assert orjson.loads(to_json([analysis])) == expected
    assert json.loads(to_json([analysis])) == expected


def test_columnar_and_generic_long_lists_give_the_same_bytes(tmp_path, small_limits):
    analysis = run_pool(_table(tmp_path, 13), outcome="x")
    as_rows = dataclasses.replace(analysis, studies=tuple(analysis.studies))
    assert not isinstance(as_rows.studies, StudyLines)
    assert to_json([analysis]) == to_json([as_rows])


def test_each_entry_of_a_long_list_on_its_own_line(tmp_path, small_limits):
    analysis = run_pool(_table(tmp_path, 9), outcome="x")
    text = to_json([analysis])
    lines = text.splitlines()
    start = lines.index('  "studies": [')
    entries = lines[start + 1:start + 10]
    assert lines[start + 10] == "  ],"
    parsed = [orjson.loads(line.strip().rstrip(",")) for line in entries]
    assert [s["study_id"] for s in parsed] == [s.study_id for s in analysis.studies]
    assert all(line.startswith('    {"study_id":') for line in entries)
    # the FE fit's weights: one number per line, at the list's indent
    start = lines.index('    "weights": [')
    assert [float(line.strip().rstrip(",")) for line in lines[start + 1:start + 10]] == \
        pytest.approx(list(analysis.common.weights), rel=0, abs=0)
    assert "\\u202e" in text and "\u202e" not in text      # escaped as on the dict path


def test_short_documents_keep_the_indented_layout(tmp_path):
    analysis = run_pool(_table(tmp_path, 30), outcome="x")
    assert to_json([analysis]) == json_document(analysis_to_dict(analysis))


def test_a_long_excluded_list_is_written_one_entry_per_line(tmp_path, small_limits):
    path = tmp_path / "t.csv"
    rows = [f"s{i},x,3,10,," for i in range(8)] + ["c1,x,3,10,2,10", "c2,x,4,12,1,9"]
    path.write_text("study_id,outcome,events_t,n_t,events_c,n_c\n" + "\n".join(rows) + "\n")
    analysis = run_pool(load_table(path), outcome="x", measure="RR")
    assert len(analysis.excluded) == 8
    text = to_json([analysis])
    assert '\n    {"study_id":"s0","reason":' in text
    assert orjson.loads(text) == orjson.loads(json_document(analysis_to_dict(analysis)))


def test_write_json_writes_to_json_and_a_line_end(tmp_path, small_limits):
    analysis = run_pool(_table(tmp_path, 13), outcome="x")
    out = io.BytesIO()
    write_json(out, [analysis])
    assert out.getvalue() == to_json([analysis]).encode() + b"\n"


class _Failing(io.RawIOBase):
    """A stream whose third write fails as a full disk does."""

    def __init__(self):
        self.writes = 0

    def writable(self):
        return True

    def write(self, data):
        self.writes += 1
        if self.writes >= 3:
            raise OSError(28, "No space left on device")
        return len(data)


def test_a_failed_write_is_raised_to_the_caller(tmp_path, small_limits):
    analysis = run_pool(_table(tmp_path, 40), outcome="x")
    stream = _Failing()
    with pytest.raises(OSError, match="No space left on device"):
        write_json(stream, [analysis])
    assert stream.writes == 3           # nothing written after the failure


def _cli_on_long_table(tmp_path, **kwargs):
    import os
    import subprocess
    import sys

    _table(tmp_path, 2500)              # over LONG_LIST: the writer thread writes
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "msc_meta", "pool", "--data", str(tmp_path / "t.csv"),
                           "--outcome", "x", "--json"], stderr=subprocess.PIPE, text=True,
                          timeout=120, env=env, **kwargs)


def test_a_long_document_to_a_full_disk_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        done = _cli_on_long_table(tmp_path, stdout=full)
    assert done.returncode == 1
    assert done.stderr == "msc-meta: error: cannot write to stdout: No space left on device\n"


def test_a_long_document_to_a_closed_stdout_is_one_line(tmp_path):
    import os

    done = _cli_on_long_table(tmp_path, preexec_fn=lambda: os.close(1))
    assert done.returncode == 1
    assert done.stderr == "msc-meta: error: cannot write to stdout: Bad file descriptor\n"


def test_a_long_document_to_a_file_is_the_document(tmp_path):
    target = tmp_path / "out.json"
    with open(target, "wb") as out:
        done = _cli_on_long_table(tmp_path, stdout=out)
    assert done.returncode == 0, done.stderr
    analysis = run_pool(load_table(tmp_path / "t.csv"), outcome="x")
    assert target.read_bytes() == to_json([analysis]).encode() + b"\n"


def test_a_long_document_to_a_broken_pipe_is_quiet(tmp_path):
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = _cli_on_long_table(tmp_path, stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == ""


@pytest.mark.parametrize("values", [[3, 0, 2, 3, 1], [3.0, np.nan, 0, 7, 1], [5, 5, 5], [9, 10**12, 0],
                                    [np.nan, np.nan], [4, 1, 2, 3, 0]])
def test_count_texts_are_the_numbers_orjson_writes(values):
    """Counts looked up from a table (all below the number of studies) or written by orjson."""
    got = json_out._Counts(np.array(values, dtype=float), np).texts(slice(None), np)
    expected = [None if v != v else int(v) for v in values]
    if isinstance(got, str):
        assert len(set(expected)) == 1 and orjson.loads(got) == expected[0]
    else:
        assert [orjson.loads(t) for t in got] == expected


@pytest.mark.parametrize("values", [
    [3, 3, 3, 3, np.nan, 0, 2, 5, 7, 7, 7, 7, 10**12, 1, np.nan, np.nan],    # texts by orjson
    [0, 1, 2, 3, 3, 3, 3, 3, np.nan, 1, 0, 2, 4, 4, 4, 4, 5]])             # looked up (< length)
def test_count_texts_of_each_piece_from_the_column_prepared_once(values):
    """A count column is prepared once for all pieces (json_out._Counts): each piece of 4 gets
    the numbers, null where blank, one text when the piece's counts are all the same."""
    counts = json_out._Counts(np.array(values, dtype=float), np)
    for lo in range(0, len(values), 4):
        expected = [None if v != v else int(v) for v in values[lo:lo + 4]]
        got = counts.texts(slice(lo, lo + 4), np)
        if isinstance(got, str):
            assert None not in expected and len(set(expected)) == 1
            assert orjson.loads(got) == expected[0]
        else:
            assert [orjson.loads(t) for t in got] == expected


def test_columnar_counts_looked_up_across_pieces_give_the_same_bytes(tmp_path, small_limits):
    """130 studies: every count is below the list's length (the table of texts), in pieces of 4."""
    analysis = run_pool(_table(tmp_path, 130), outcome="x")
    as_rows = dataclasses.replace(analysis, studies=tuple(analysis.studies))
    assert to_json([analysis]) == to_json([as_rows])


def test_an_error_while_formatting_stops_the_writer(tmp_path, small_limits, monkeypatch):
    """An error of the formatting (here in the third piece) is raised as it is, and the
    writer thread writes nothing after it."""
    analysis = run_pool(_table(tmp_path, 40), outcome="x")
    real = json_out._study_fields
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(json_out, "_study_fields", failing)
    out = io.BytesIO()
    with pytest.raises(KeyboardInterrupt):
        write_json(out, [analysis])
    written = len(out.getvalue())
    import time

    time.sleep(0.2)
    assert len(out.getvalue()) == written and not out.getvalue().endswith(b"\n")
    import threading

    writers = [t for t in threading.enumerate() if t.name == "json-writer"]
    for thread in writers:
        thread.join(timeout=5)
    assert not any(t.is_alive() for t in writers)        # no thread left waiting forever


def test_by_document_with_long_and_short_subgroups_parses_to_the_dict_path(tmp_path,
                                                                          small_limits):
    """--by: the short study lists written at once (json_out._grouped_studies) and a long one
    one entry per line, in one document that parses to the dict path's document."""
    from msc_meta.pooling.subgroups import run_pool_by

    rng = np.random.default_rng(5)
    lines = ["study_id,outcome,g,events_t,n_t,events_c,n_c"]
    sizes = {"a": 3, "b": 9, "c": 2, "d": 4}       # b is long at LONG_LIST = 5
    for g, k in sizes.items():
        for i in range(k):
            n_t, n_c = rng.integers(10, 60, 2)
            sid = ODD_IDS[i % len(ODD_IDS)].replace(",", ";").replace('"', "")
            lines.append(f"{g}{i} {sid},x,{g},{rng.binomial(n_t, 0.3)},{n_t},"
                         f"{rng.binomial(n_c, 0.2)},{n_c}")
    path = tmp_path / "by.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    analyses, test = run_pool_by(load_table(path), "g", outcome="x")
    text = to_json(analyses, test, grouped=True)
    expected = [orjson.loads(json_document(analysis_to_dict(a, test))) for a in analyses]
    assert orjson.loads(text) == expected
    assert '    "studies": [\n      {"study_id":"b0' in text          # the long one
    assert '    "studies": [\n      {\n        "study_id": "a0' in text    # a short one
