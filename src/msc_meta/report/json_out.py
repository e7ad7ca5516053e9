"""The ``--json`` document of ``msc-meta pool`` (presentation only).

Keys follow ``shared/cli-contract.md`` (``### --json output``) exactly; the
extensions (outcome, timepoint_weeks, unit, level, hksj, test, df, tau2 and
I² CIs, pi_method, common, notes, multiarm, study_ci, guidance,
suggestions, assumed_r, scale, r_sensitivity, outcome_units, group,
subgroup_test) are
added after them (docs/cli-extensions.md lists them).
NaN and infinities become ``null``: strict JSON, which ``jq`` and every
JSON parser accept.
"""

from __future__ import annotations

import functools
import itertools

from msc_meta import registry
from msc_meta.pooling.results import PoolResult, jsonable
from msc_meta.pooling.study_lines import StudyLines
from msc_meta.report.terminal import escape_invisible, json_document

# The contract's keys, in its order; tests check the document against these.
CONTRACT_KEYS = (
    "measure", "method", "k",
    "theta", "se",
    "estimate", "ci_low", "ci_high",
    "pi_low", "pi_high",
    "tau2", "tau", "i2", "h2",
    "q", "q_df", "q_pval",
    "stat", "pval",
    "excluded",
    "studies",
)
STUDY_KEYS = ("study_id", "events_t", "n_t", "events_c", "n_c", "yi", "vi",
              "estimate", "ci_low", "ci_high", "weight")
# Other outcome types carry their own input columns in place of events_t ... n_c
# (``registry.family_columns``: e.g. mean_t, sd_t, n_t, mean_c, sd_c, n_c).
EXCLUDED_KEYS = ("study_id", "reason")
EXTENSION_KEYS = (
    "outcome", "timepoint_weeks", "unit", "group", "level", "hksj", "test", "df",
    "theta_ci_low", "theta_ci_high",
    "tau2_ci_low", "tau2_ci_high", "i2_ci_low", "i2_ci_high", "pi_method",
    "common", "notes", "multiarm", "study_ci", "guidance", "suggestions",
    "assumed_r", "scale", "r_sensitivity", "outcome_units",
)
# ``outcome_units``: the table's outcome_units of the pooled rows, for measures in the
# outcome's units (report.units; null otherwise, as in sensitivity, regress, bias, bayes);
# ``assumed_r``: the --r the pool was run with (null when not given); ``scale``: the scale of
# a measure that has several (GEN: "log" or "identity"), null for the others;
# ``r_sensitivity``: where a study took the assumed r, the pool at each r of
# ``conversions.R_SENSITIVITY`` (list of R_SENSITIVITY_KEYS), else null.
R_SENSITIVITY_KEYS = ("r", "estimate", "ci_low", "ci_high")
# Per-study extensions: ``row`` (spreadsheet row; the first member's for a
# combined comparison), ``cc_added``, and for comparisons sharing a control
# arm ``multiarm`` ("combine"/"split"), ``members`` (study groups combined
# into this line, or sharing its control under split), ``member_rows`` and
# ``control_share`` (fraction of the shared control counted in this line).
STUDY_EXTENSION_KEYS = ("row", "cc_added", "multiarm", "members", "member_rows", "control_share")
# Keys of the FE fit shown beside a random-effects fit (``common``).
COMMON_KEYS = ("method", "k", "theta", "se", "theta_ci_low", "theta_ci_high", "estimate",
               "ci_low", "ci_high", "stat", "pval", "q", "q_df", "q_pval", "i2", "h2",
               "test", "weights")
SUBGROUP_TEST_KEYS = ("by", "q_between", "df", "pval", "n_groups", "in_test")

# PoolResult fields copied unchanged into the document.
_FIT_FIELDS = ("k", "theta", "se", "estimate", "ci_low", "ci_high", "pi_low", "pi_high",
               "tau2", "tau", "i2", "h2", "q", "q_df", "q_pval", "stat", "pval",
               "test", "df", "theta_ci_low", "theta_ci_high", "tau2_ci_low", "tau2_ci_high",
               "i2_ci_low", "i2_ci_high", "pi_method")


def analysis_to_dict(analysis, subgroup_test=None, units=None, *, columnar=False,
                     studies=None) -> dict:
    """One pool as a plain dict in the contract's key order.

    A subgroup with nothing pooled (``--by``) keeps every key, with ``k = 0``
    and nulls for the numbers, so that consumers need no special case.
    ``columnar`` (``json_chunks`` only): a columnar study list stands as a marker
    string, replaced by the study texts written from its columns; ``studies``: that
    marker, when ``json_chunks`` wrote the texts of many analyses' studies at once.
    """
    result = analysis.result
    if result is None:
        fit = dict.fromkeys(_FIT_FIELDS)
        fit["k"] = 0
    elif type(result) is PoolResult:     # its fields are its __dict__ (10^4 analyses of a --by)
        fit = result.__dict__
    else:
        fit = {name: getattr(result, name) for name in _FIT_FIELDS}
    doc = {
        "measure": analysis.measure,
        "method": result.method if result is not None else analysis.method,
        "k": fit["k"],
        "theta": fit["theta"], "se": fit["se"],
        "estimate": fit["estimate"], "ci_low": fit["ci_low"], "ci_high": fit["ci_high"],
        "pi_low": fit["pi_low"], "pi_high": fit["pi_high"],
        "tau2": fit["tau2"], "tau": fit["tau"], "i2": fit["i2"], "h2": fit["h2"],
        "q": fit["q"], "q_df": fit["q_df"], "q_pval": fit["q_pval"],
        "stat": fit["stat"], "pval": fit["pval"],
        "excluded": [{"study_id": e.study_id, "reason": e.reason, "row": e.row_number}
                     for e in analysis.excluded],
        "studies": studies or (columnar and _columnar_studies(analysis.studies)) or [
            {"study_id": s.study_id, **_inputs(s), "yi": s.yi, "vi": s.vi,
             "estimate": s.estimate, "ci_low": s.ci_low, "ci_high": s.ci_high,
             "weight": s.weight, "row": s.row_number, "cc_added": s.cc_added,
             "multiarm": getattr(s, "multiarm", None),
             "members": list(s.members) if getattr(s, "members", ()) else None,
             "member_rows": list(s.member_rows) if getattr(s, "member_rows", ()) else None,
             "control_share": getattr(s, "control_share", None)}
            for s in analysis.studies
        ],
        # extensions
        "outcome": analysis.outcome,
        "timepoint_weeks": analysis.timepoint_weeks,
        "unit": analysis.unit,
        "group": analysis.group,
        "level": analysis.level,
        "hksj": bool(result.hksj) if result is not None else bool(analysis.hksj),
        "test": fit["test"],
        "df": fit["df"],
        "theta_ci_low": fit["theta_ci_low"], "theta_ci_high": fit["theta_ci_high"],
        "tau2_ci_low": fit["tau2_ci_low"], "tau2_ci_high": fit["tau2_ci_high"],
        "i2_ci_low": fit["i2_ci_low"], "i2_ci_high": fit["i2_ci_high"],
        "pi_method": fit["pi_method"],
        "common": _common_to_dict(analysis.common),
        "notes": list(analysis.notes),
        # how comparisons sharing a control arm were pooled (combine | split | keep)
        "multiarm": getattr(analysis, "multiarm", "keep"),
        # how studies[].ci_low/ci_high were computed (exact | wilson | wald)
        "study_ci": getattr(analysis, "study_ci", "wald"),
        "guidance": getattr(analysis, "guidance", None),
        "suggestions": [s.to_dict() for s in getattr(analysis, "suggestions", ())],
        "assumed_r": getattr(analysis.options, "r", None),
        "scale": _scale(analysis),
        "r_sensitivity": _r_sensitivity(analysis),
        "outcome_units": units,
    }
    if subgroup_test is not None or analysis.group is not None:
        doc["subgroup_test"] = subgroup_test_to_dict(subgroup_test, analysis.group)
    # orjson itself writes numpy scalars as numbers and NaN/inf as null (json_chunks)
    return doc if columnar else jsonable(doc)


def _inputs(study) -> dict:
    """The input columns of the study's outcome type: events_t, n_t, events_c, n_c for counts;
    e.g. mean_t, sd_t, n_t, mean_c, sd_c, n_c for two-group means (the contract)."""
    inputs = getattr(study, "inputs", ())
    if getattr(study, "family", "counts") == "counts" or not inputs:
        return {"events_t": study.events_t, "n_t": study.n_t, "events_c": study.events_c,
                "n_c": study.n_c}
    return dict(inputs)


def _scale(analysis) -> str | None:
    """The scale the measure was on, for measures with several (GEN: --scale, else its default)."""
    return registry.measure(analysis.measure, getattr(analysis.options, "scale", None)).scale_name


def _r_sensitivity(analysis) -> list | None:
    found = getattr(analysis, "r_sensitivity", None)
    if found is None:
        return None
    return [{key: getattr(s, key) for key in R_SENSITIVITY_KEYS} for s in found]


def _common_to_dict(fit) -> dict | None:
    if fit is None:
        return None
    if type(fit) is PoolResult:
        fields = fit.__dict__
        return {name: fields[name] for name in COMMON_KEYS}
    return {name: getattr(fit, name) for name in COMMON_KEYS}


def subgroup_test_to_dict(test, group=None) -> dict | None:
    """The test, as every ``--by`` element carries it: how many subgroups it used and whether
    this element's subgroup is one of them (a list of every subgroup in every element would
    make the document grow with the square of the number of subgroups)."""
    if test is None:
        return None
    groups = test.__dict__.get("_group_set")
    if groups is None:      # one set per test: every --by element asks
        groups = frozenset(test.groups)
        object.__setattr__(test, "_group_set", groups)
    return {"by": test.by, "q_between": test.q_between, "df": test.df, "pval": test.pval,
            "n_groups": len(test.groups), "in_test": group in groups}


def to_json(analyses, subgroup_test=None, *, grouped=False, units=None) -> str:
    """The whole document: one object, or a list of them with ``--by``.

    With ``--by`` every element carries its ``group`` and the same
    ``subgroup_test`` (null when fewer than two subgroups were pooled), so a
    consumer reading the list finds the test wherever it looks.
    """
    return b"".join(json_chunks(analyses, subgroup_test, grouped=grouped, units=units)).decode()


def write_json(stream, analyses, subgroup_test=None, *, grouped=False, units=None) -> None:
    """``to_json`` and a line end written to a binary stream piece by piece (a pool of 10^6
    studies is ~350 MB of JSON: it is never held whole). A document of several pieces is
    written by a second thread while the next pieces are formatted: the write calls
    (waiting on the disk or on the reader of a pipe) run beside the formatting."""
    chunks = json_chunks(analyses, subgroup_test, grouped=grouped, units=units)
    first = next(chunks)
    second = next(chunks, None)
    if second is None:          # every short document: one piece, no thread
        stream.write(first)
        stream.write(b"\n")
        return
    _write_behind(stream, itertools.chain((first, second), chunks, (b"\n",)))


def _write_behind(stream, chunks) -> None:
    """Write ``chunks`` to ``stream`` from a second thread, at most a few pieces ahead.

    An error of a write (closed stdout, full disk, broken pipe) stops the formatting
    and is raised here, in the caller's thread, as the write itself raised it.
    """
    import queue
    import threading

    pending: queue.Queue = queue.Queue(maxsize=4)
    failed: list = []

    def writer():
        while (chunk := pending.get()) is not None:
            if not failed:
                try:
                    stream.write(chunk)
                except BaseException as err:        # handed to the caller's thread
                    failed.append(err)

    thread = threading.Thread(target=writer, name="json-writer", daemon=True)
    thread.start()
    try:
        for chunk in chunks:
            if failed:
                break
            pending.put(chunk)
    except BaseException:
        # formatting stopped (Ctrl-C, an error): the writer writes nothing more, and is not
        # waited for (it may be blocked on a reader that does not read), but ends when it can
        failed.append(None)
        _end_writer(pending)
        raise
    pending.put(None)
    thread.join()
    if failed:
        raise failed[0]


def _end_writer(pending) -> None:
    """Put the writer's end in its queue without blocking, dropping pieces it has not taken:
    a library caller whose formatting failed is not left with a thread waiting forever."""
    import queue

    while True:
        try:
            pending.put_nowait(None)
            return
        except queue.Full:
            try:
                pending.get_nowait()
            except queue.Empty:
                pass


# The layout rule, one for every list of an analysis (studies, excluded, common.weights):
# a list of up to LONG_LIST entries is indented as orjson writes it (one key per line); a
# longer one has one entry per line, each entry compact (docs/cli-extensions.md). The
# parsed document is the same either way.
LONG_LIST = 2000


def json_chunks(analyses, subgroup_test=None, *, grouped=False, units=None):
    """The document of :func:`to_json` as UTF-8 pieces; long lists one entry per line
    (``LONG_LIST``), columnar study lists written from their columns."""
    from msc_meta.progress import many_objects

    with many_objects():        # one dict per analysis of a --by, texts of its studies
        yield from _json_chunks(analyses, subgroup_test, grouped=grouped, units=units)


def _json_chunks(analyses, subgroup_test, *, grouped, units):
    marked: dict = {}           # marker -> a long list, or a --by subgroup's study texts
    if grouped:
        markers = _grouped_studies(analyses, marked)
        doc = [analysis_to_dict(a, subgroup_test, units, columnar=True, studies=m)
               for a, m in zip(analyses, markers)]
    else:
        (analysis,) = analyses
        doc = analysis_to_dict(analysis, units=units, columnar=True)
    for one in (doc if grouped else [doc]):
        _mark_long_lists(one, marked)
    text = json_document(doc)
    if not marked:
        yield text.encode()
        return
    import re

    start, pending = 0, []      # the texts of --by subgroups, written a thousand at a time
    for hit in re.finditer(r'"\\u0000mark-\d+\\u0000"', text):
        values = marked.get(hit.group()[1:-1])
        if values is None:
            continue
        at = hit.start()
        line = text[text.rfind("\n", 0, at) + 1:at]        # '    "studies": '
        indent = len(line) - len(line.lstrip(" "))
        if isinstance(values, _GroupedStudies):
            pending += (text[start:at], values.text(indent))
            if len(pending) >= 2000:
                yield "".join(pending).encode()
                pending.clear()
        else:
            if pending:
                yield "".join(pending).encode()
                pending.clear()
            yield text[start:at].encode()
            yield from _long_list_chunks(values, indent)
        start = hit.end()
    if pending:
        yield "".join(pending).encode()
    yield text[start:].encode()


def _marker(found: dict, value) -> str:
    """A marker string standing for ``value`` in the document (``found``: its text -> value)."""
    marker = f"\u0000mark-{len(found)}\u0000"
    found[marker.replace("\u0000", "\\u0000")] = value
    return marker


def _mark_long_lists(doc: dict, found: dict) -> None:
    """Put a marker string in place of every list of ``doc`` (and of the dicts in it) longer
    than ``LONG_LIST`` (a long columnar study list among them); ``found``: marker -> list."""
    for key, value in doc.items():
        kind = type(value)          # type(), not isinstance: 10^4 documents of a --by ask
        if kind is dict:
            _mark_long_lists(value, found)
        elif kind in _LIST_TYPES and len(value) > LONG_LIST:
            doc[key] = _marker(found, value)


_LIST_TYPES = frozenset((list, tuple, StudyLines))


def _columnar_studies(studies):
    """A columnar study list as the document holds it: dicts made from its columns when it
    is short, else the columns themselves (written by ``_study_chunks``); None for any
    other list."""
    if not hasattr(studies, "yi") or not len(studies):
        return None
    if len(studies) <= LONG_LIST:
        return _study_dicts(studies)
    return studies


# Entries per piece: the piece's texts stay ~2 MB. Smaller than 20_000 for speed: the
# texts and the pattern list of a piece stay in cache, and the heap is not grown and given
# back per piece (perf: the kernel zeroing fresh transparent huge pages for pieces of 7 MB).
# 10^6 studies (bench_scale --big): sys time 0.8 -> 0.3 s, json_chunks CPU 1.0 -> 0.9 s;
# 1_000, 2_000 and 8_000 were no better.
_CHUNK = 5_000


def _grouped_studies(analyses, marked: dict) -> list:
    """Per analysis of a ``--by`` document, the marker of its study list when the short
    study lists (``LONG_LIST``) of all analyses are written at once (one ``_study_pieces``
    over their joined columns, then cut per analysis), else None (``analysis_to_dict``
    writes it, or ``_mark_long_lists`` marks it)."""
    lines = [a.studies for a in analyses]
    live = [i for i, s in enumerate(lines) if hasattr(s, "yi") and 0 < len(s) <= LONG_LIST]
    if len(live) < 2 or len({(lines[i].two_arm, lines[i].weight is None) for i in live}) > 1:
        return [None] * len(analyses)
    joined = _JoinedLines([lines[i] for i in live])
    shared = {}
    out = [None] * len(analyses)
    for n, i in enumerate(live):
        out[i] = _marker(marked, _GroupedStudies(joined, n, shared))
    return out


class _JoinedLines:
    """The columns ``_study_fields`` reads, of several StudyLines one after another."""

    def __init__(self, parts):
        from msc_meta.pooling.study_lines import join_columns

        self.sizes = [len(p) for p in parts]
        self.two_arm = parts[0].two_arm
        self.__dict__.update(join_columns(parts))

    def __len__(self) -> int:
        return len(self.study_id)


class _GroupedStudies:
    """Analysis ``n``'s part of the study texts of ``joined``, made once for all (``shared``)."""

    def __init__(self, joined, n, shared):
        self.joined, self.n, self.shared = joined, n, shared

    def text(self, indent: int) -> str:
        made = self.shared.get(indent)
        if made is None:
            import itertools

            import numpy as np

            pieces, step = _study_pieces(self.joined, 0, len(self.joined), indent, np)
            starts = [0, *itertools.accumulate(self.joined.sizes)]
            made = self.shared[indent] = (pieces, step, starts)
        pieces, step, starts = made
        body = "".join(pieces[starts[self.n] * step:starts[self.n + 1] * step])[2:]
        return escape_invisible("[\n" + body + "\n" + " " * indent + "]")


def _study_dicts(studies) -> list:
    """The entries of a short columnar study list, as ``analysis_to_dict`` writes them."""
    import numpy as np

    def counts(x):
        return [None if v != v else int(v) for v in np.asarray(x, dtype=float).tolist()]

    n = len(studies)
    none = [None] * n
    two = studies.two_arm
    columns = zip(studies.study_id, counts(studies.events_t), counts(studies.n_t),
                  counts(studies.events_c) if two else none, counts(studies.n_c) if two else none,
                  studies.yi.tolist(), studies.vi.tolist(), studies.estimate.tolist(),
                  studies.ci_low.tolist(), studies.ci_high.tolist(),
                  none if studies.weight is None else studies.weight.tolist(),
                  np.asarray(studies.row_number).tolist(), studies.cc_added.tolist())
    return [{"study_id": s, "events_t": a, "n_t": b, "events_c": c, "n_c": d, "yi": y, "vi": v,
             "estimate": e, "ci_low": lo, "ci_high": hi, "weight": w, "row": r, "cc_added": cc,
             "multiarm": None, "members": None, "member_rows": None, "control_share": None}
            for s, a, b, c, d, y, v, e, lo, hi, w, r, cc in columns]


def _long_list_chunks(values, indent: int):
    """A long list (``LONG_LIST``) at ``indent``: ``[``, one compact entry per line, ``]``."""
    item = "\n" + " " * (indent + 2)
    yield b"["
    if isinstance(values, StudyLines):
        yield from _study_chunks(values, item)
    else:
        yield from _entry_chunks(values, item)
    yield b"\n" + b" " * indent + b"]"


def _entry_chunks(values, item: str):
    """Any long list's entries, each as ``orjson`` writes it compactly, as UTF-8 pieces
    (numbers: one call for a whole piece, its commas followed by the line break)."""
    import orjson

    option = orjson.OPT_SERIALIZE_NUMPY
    line = ("," + item).encode()
    for lo in range(0, len(values), _CHUNK):
        part = list(values[lo:lo + _CHUNK])
        array = orjson.dumps(part, option=option)
        first = item.encode() if lo == 0 else line
        if b'"' in array or b"{" in array or b"[" in array[1:]:
            texts = [orjson.dumps(v, option=option).decode() for v in part]
            yield first + escape_invisible(("," + item).join(texts)).encode()
        else:           # numbers, true/false/null: no comma inside an entry
            yield first + array[1:-1].replace(b",", line)


def _study_chunks(studies, item: str):
    """The entries of a columnar study list, ``{"study_id":...}`` one per line, from columns,
    as UTF-8 pieces of ``_CHUNK`` studies: no per-study Python object.

    An entry is constant texts (keys, layout, values all studies share) with the next
    value of each varying column between them (``_entry_parts``). The compiled
    ``_interleave`` writes a piece from one JSON array per column; without it, a pattern
    list repeated per study has its open slots filled column by column by slice
    assignment and is joined (the next piece of the same pattern refills the same list).
    Both write the same bytes (tests/test_json_interleave.py).
    """
    import numpy as np

    n = len(studies)
    render = _Texts if _interleave is None else _Arrays
    last = None         # (pattern, its list) of the previous piece
    counts = _count_columns(studies, np)
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        consts, columns = _entry_parts(_study_fields(studies, lo, hi, np, counts, render),
                                       "," + item)
        if _interleave is not None:
            chunk = _interleave([c.encode() for c in consts], columns, hi - lo)
            yield chunk[1:] if lo == 0 else chunk      # no comma before the first study
            continue
        pattern = [None] * (2 * len(consts) - 1)
        pattern[::2] = consts
        step = len(pattern)
        if last is not None and last[0] == pattern and len(last[1]) == step * (hi - lo):
            pieces = last[1]
        else:
            pieces = pattern * (hi - lo)
            last = (pattern, pieces)
        for j, values in enumerate(columns):
            pieces[2 * j + 1::step] = values
        chunk = escape_invisible("".join(pieces))
        yield (chunk[1:] if lo == 0 else chunk).encode()


def _entry_parts(fields, before: str):
    """(constant texts, varying columns) of one compact entry: the entry is ``consts[0]``,
    the value of ``columns[0]``, ``consts[1]``, ... ``consts[-1]``; ``before``: the text
    before its ``{``; ``fields``: ``_study_fields``."""
    consts, columns, const = [], [], before + "{"
    for j, (name, values) in enumerate(fields):
        const += ("" if j == 0 else ",") + _KEYS[name] + ":"
        if isinstance(values, str):        # the same value in every study
            const += values
        else:
            consts.append(const)
            columns.append(values)
            const = ""
    consts.append(const + "}")
    return consts, columns


try:            # setup.py builds it where a C compiler is found
    from msc_meta.report._interleave import interleave as _interleave
except ImportError:         # no C compiler at install: the Python path writes the same bytes
    _interleave = None


_KEYS = {name: f'"{name}"' for name in STUDY_KEYS + STUDY_EXTENSION_KEYS}
_NULL = "null"


def _study_pieces(studies, lo, hi, indent, np):
    """The texts of studies lo..hi as one flat list and the number of pieces per study
    (``step``): study i's text, starting with its ``,\n{`` line, is the join of pieces
    ``i * step`` to ``(i + 1) * step``."""
    item = " " * (indent + 2)
    field = " " * (indent + 4)
    fields = _study_fields(studies, lo, hi, np)
    const, varying = ",\n" + item + "{\n", []
    for j, (name, values) in enumerate(fields):
        const += ("" if j == 0 else ",\n") + field + f'"{name}": '
        if isinstance(values, str):        # the same value in every study
            const += values
        else:
            varying.append((const, values))
            const = ""
    const += "\n" + item + "}"
    step, m = 2 * len(varying) + 1, hi - lo
    pieces = [const] * (m * step)
    for j, (before, values) in enumerate(varying):
        pieces[2 * j::step] = [before] * m
        pieces[2 * j + 1::step] = values
    return pieces, step


def _study_fields(studies, lo, hi, np, counts=None, render=None):
    """(key, values of studies lo..hi, or one JSON text for all) in the keys' order: the
    values as ``render`` writes them (``_Texts``: one JSON text per value; ``_Arrays``: one
    JSON array); ``counts``: the count columns as ``_count_columns`` prepared them for
    every piece."""
    part = slice(lo, hi)
    render = render or _Texts
    counts = counts or _count_columns(studies, np)

    def floats(values):
        return render.numbers(np.ascontiguousarray(values[part], dtype=np.float64))

    def count(name):
        return counts[name].texts(part, np, render)

    inputs = [("events_t", count("events_t")), ("n_t", count("n_t"))]
    if studies.two_arm:
        inputs += [("events_c", count("events_c")), ("n_c", count("n_c"))]
    else:
        inputs += [("events_c", _NULL), ("n_c", _NULL)]
    weight = _NULL if studies.weight is None else floats(studies.weight)
    return [("study_id", render.strings(studies.study_id[part])), *inputs,
            ("yi", floats(studies.yi)), ("vi", floats(studies.vi)),
            ("estimate", floats(studies.estimate)),
            ("ci_low", floats(studies.ci_low)), ("ci_high", floats(studies.ci_high)),
            ("weight", weight), ("row", count("row_number")),
            ("cc_added", _bools(studies.cc_added[part], np, render)),
            ("multiarm", _NULL), ("members", _NULL), ("member_rows", _NULL),
            ("control_share", _NULL)]


def _numbers(values) -> list:
    import orjson

    # orjson writes a numeric array as it writes each number (floats: shortest repr; NaN
    # and inf as null)
    text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return text[1:-1].split(",") if len(text) > 2 else []


class _Texts:
    """A column's values as a list of JSON texts, one ``str`` per value (``_study_pieces``,
    and ``_study_chunks`` without ``_interleave``)."""

    numbers = staticmethod(_numbers)

    @staticmethod
    def strings(values) -> list:
        import orjson

        text = orjson.dumps(list(values), option=orjson.OPT_INDENT_2).decode()
        # one string per line: a separator ",\n  " cannot occur inside a JSON string
        return text[4:-2].split(",\n  ") if len(values) else []

    @staticmethod
    def bools(values) -> list:
        import numpy as np

        return np.array(["false", "true"], dtype=object)[values.view(np.uint8)].tolist()

    @staticmethod
    def texts(texts: list) -> list:
        return texts


class _Arrays:
    """A column's values as one JSON array, UTF-8 (``_interleave``'s columns); strings with
    their invisible characters escaped, as ``escape_invisible`` does to every text."""

    @staticmethod
    def numbers(values) -> bytes:
        import orjson

        return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)

    @staticmethod
    def strings(values) -> bytes:
        import orjson

        array = orjson.dumps(list(values))
        return array if array.isascii() else escape_invisible(array.decode()).encode()

    bools = numbers

    @staticmethod
    def texts(texts: list) -> bytes:
        return ("[" + ",".join(texts) + "]").encode()


def _count_columns(studies, np) -> dict:
    """The integer columns of a columnar study list, each prepared once for all its pieces
    (``_CHUNK``): the conversion and the table of texts are not redone per piece."""
    names = ("events_t", "n_t", "row_number") + (("events_c", "n_c") if studies.two_arm else ())
    return {name: _Counts(getattr(studies, name), np) for name in names}


class _Counts:
    """A column of counts (floats, NaN where blank) as int64; ``texts``: JSON integers, null
    where blank."""

    def __init__(self, values, np):
        values = np.asarray(values, dtype=np.float64)
        missing = np.isnan(values)
        self.missing = missing if missing.any() else None
        self.whole = np.where(missing, 0, values).astype(np.int64)

    @functools.cached_property
    def table(self):
        """The texts of 0 .. the largest count when all counts are below the column's length
        (each text made once, then looked up), else None. Made on first use: the compiled
        writer (``_Arrays``) needs it only for a column with blanks."""
        import numpy as np

        whole = self.whole
        top = int(whole.max()) if whole.size else 0
        if 0 <= top < whole.size and whole.min() >= 0:
            return np.array(_numbers(np.arange(top + 1)), dtype=object)
        return None

    def texts(self, part: slice, np, render=_Texts):
        """The values of studies ``part`` as ``render`` writes them; one text when every one
        of them has the same."""
        whole = self.whole[part]
        missing = None if self.missing is None else self.missing[part]
        if whole.size and (missing is None or not missing.any()) and (whole == whole[0]).all():
            return _numbers(whole[:1])[0]
        if missing is None and render is _Arrays:
            return render.numbers(whole)
        texts = _numbers(whole) if self.table is None else self.table[whole].tolist()
        for i in () if missing is None else np.flatnonzero(missing).tolist():
            texts[i] = _NULL
        return render.texts(texts)


def _bools(values, np, render=_Texts):
    values = np.asarray(values, dtype=bool)
    if not values.any():
        return "false"
    if values.all():
        return "true"
    return render.bools(values)
