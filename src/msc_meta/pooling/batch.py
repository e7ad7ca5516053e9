"""``pool_many``: one pooled result per group of an outcome table, fitted in one pass.

``pool_many(table, by)`` takes a pandas DataFrame in the outcome-table shape
(``shared/cli-contract.md``) and the grouping columns, prepares each group
exactly as ``msc-meta pool`` prepares one selection (rows without counts
left out, measure chosen, multi-arm handling, drop00 for RR/OR, escalc with
the continuity correction), then fits all inverse-variance groups together
with :func:`msc_meta.pooling.rma.fit_batch` (one vectorised pass, padded
arrays). It returns one row per group with the grouping columns and the
``pool --json`` keys (studies omitted); each row equals what ``pool`` gives
for that group alone (checked in ``tests/test_batch.py``).

Not vectorised: ``MH``, ``PETO`` and ``GLMM`` are fitted group by group by the
same code as ``pool``, and a group of one study gets ``pool``'s single-study
row. A group whose τ² iteration does not converge gets NaN numbers and the
reason in ``error`` instead of stopping the other groups; so does a group
the requested measure does not fit (e.g. RR on single-arm rows).

Row numbers (in ``excluded`` and in error messages) are those of the table
written with ``table.to_csv(index=False)``: the header is row 1, the first
data row row 2.
"""

from __future__ import annotations

import math

import numpy as np

from msc_meta import registry
from msc_meta.errors import ComputationError, UsageError
from msc_meta.pooling.fit import fit_studies, single_study_result
from msc_meta.pooling.multiarm import apply_multiarm
from msc_meta.pooling.notes import nothing_to_pool_message
from msc_meta.pooling.options import PoolOptions

# The ``pool --json`` keys each row carries (the contract's, then extensions).
RESULT_KEYS = (
    "measure", "method", "k", "theta", "se", "estimate", "ci_low", "ci_high",
    "pi_low", "pi_high", "tau2", "tau", "i2", "h2", "q", "q_df", "q_pval", "stat", "pval",
    "excluded",
    "outcome", "timepoint_weeks", "unit", "level", "hksj", "test", "df",
    "theta_ci_low", "theta_ci_high", "tau2_ci_low", "tau2_ci_high", "i2_ci_low", "i2_ci_high",
    "pi_method",
)
_FIT_FIELDS = ("k", "theta", "se", "estimate", "ci_low", "ci_high", "pi_low", "pi_high",
               "tau2", "tau", "i2", "h2", "q", "q_df", "q_pval", "stat", "pval",
               "test", "df", "theta_ci_low", "theta_ci_high", "tau2_ci_low", "tau2_ci_high",
               "i2_ci_low", "i2_ci_high", "pi_method")
_SHOWN = "<DataFrame>"


def pool_many(table, by, measure=None, method="REML", *, hksj=False, pi="hts", cc=0.5,
              level=95.0, multiarm="combine", r=None, scale=None):
    """Pool every group of ``table`` (grouped by the columns ``by``) in one vectorised pass.

    ``table``: pandas DataFrame with at least ``study_id, outcome, events_t,
    n_t`` (see the CLI contract). ``by``: a column name or list of them;
    each group must hold one outcome at one time point and unit (group by
    ``outcome``, ``timepoint_weeks`` and ``unit`` when the table mixes
    them). ``measure=None`` chooses per group as ``pool`` does (RR when the
    group has comparisons, else PLO; for the other outcome types the
    registry's default of the group's columns: MD, MC, MN, IRR, IR, ZCOR,
    GEN). Other options are ``pool``'s, ``r`` (``--r``) and ``scale``
    (``--scale``) included.

    Returns a DataFrame: the grouping columns, then ``RESULT_KEYS`` and
    ``error`` (None, or why the group has no fit). Groups are in order of
    first appearance; a group with nothing to pool has ``k = 0``, null
    numbers and its ``excluded`` rows.
    """
    import pandas as pd

    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise UsageError("pool_many needs at least one grouping column (by=)")
    if not isinstance(table, pd.DataFrame):
        raise UsageError(f"pool_many takes a pandas DataFrame, not {type(table).__name__}")
    missing = [c for c in by if c not in table.columns]
    if missing:
        raise UsageError(f"there is no column {', '.join(repr(c) for c in missing)} in the table; "
                         f"columns are: {', '.join(map(str, table.columns))}")
    options = PoolOptions.build(measure=measure, method=method, hksj=hksj, pi=pi, cc=cc, level=level,
                                multiarm=multiarm, r=r, scale=scale)

    from msc_meta.data import OutcomeTable

    data = frame_columns(table)
    positions = table.reset_index(drop=True).groupby(by, dropna=False, sort=False).indices
    keys = [key if isinstance(key, tuple) else (key,) for key in positions]
    columns = by + [k for k in RESULT_KEYS if k not in by] + ["error"]
    fast = _columnar_many(data, by, keys, list(positions.values()), options)
    if fast is not None:
        return pd.DataFrame(fast, columns=columns)

    rows = data.rows()
    # subgroup_of links may run through rows of other groups: one lineage for all
    lineage = OutcomeTable(path=_SHOWN, columns=(), rows=rows).ancestors()
    prepared = []
    for key, idx in zip(keys, positions.values()):
        group_rows = [rows[i] for i in sorted(idx)]
        prepared.append((key, _prepare(group_rows, by, key, options, lineage)))
    _effect_sizes_all(prepared, options)

    results = _fit_all(prepared, options)
    records = []
    for (key, prep), (result, error) in zip(prepared, results):
        record = {col: _plain(val) for col, val in zip(by, key)}
        record.update(_result_record(prep, result, options.method, options.hksj, options.level))
        record["error"] = error
        records.append(record)
    return pd.DataFrame.from_records(records, columns=columns)


# ---------------------------------------------------------------------------
# DataFrame -> validated rows
# ---------------------------------------------------------------------------

def frame_to_rows(table):
    """Validate a DataFrame as the loader validates a CSV file; one ``Row`` per record."""
    return frame_columns(table).rows()


def frame_columns(table):
    """Validate a DataFrame as the loader validates a CSV file (``data.columns.typed_columns``).

    Cells are turned into the text a CSV would hold (blank for NaN/None,
    whole floats without ``.0``), column by column, then checked by the
    loader's own rules, so every check and message is the loader's.
    """
    from msc_meta.data import columns as cols
    from msc_meta.data import load, schema

    names = [str(c).strip() for c in table.columns]
    required = schema.required_columns(names)      # other outcome types need no counts
    missing = [c for c in required if c not in names]
    if missing:
        raise UsageError(f"the table lacks the required column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)}; required: {', '.join(required)}")
    cells = {name: _column_text(table.iloc[:, j]) for j, name in enumerate(names)}
    raw = load.RawColumns(path=_SHOWN, header=tuple(names), numbers=list(range(2, len(table) + 2)),
                          cells=cells, delimiter=",")
    data = cols.typed_columns(raw)
    cols.check_unique_keys(_SHOWN, data)
    return data


def _column_text(series) -> list[str]:
    """One DataFrame column as CSV cell texts (``_cell_text`` of each value, by dtype)."""
    kind = series.dtype.kind
    values = series.to_numpy()
    if kind in "iu":
        return list(map(str, values.tolist()))
    if kind == "f":
        values = values.astype(float)
        finite = np.isfinite(values)
        whole = finite & (np.floor(values) == values) & (np.abs(values) < 1e15)
        out = list(map(str, np.where(whole, values, 0).astype(np.int64).tolist()))
        for i in np.flatnonzero(~whole).tolist():
            out[i] = "" if math.isnan(values[i]) else repr(float(values[i]))
        return out
    return [v if type(v) is str else _cell_text(v) for v in values.tolist()]


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        import pandas as pd

        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def _plain(value):
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# ---------------------------------------------------------------------------
# one group -> studies to pool (msc_meta.pooling.analysis.prepare_studies)
# ---------------------------------------------------------------------------

class _Prepared:
    __slots__ = ("measure", "outcome", "timepoint", "unit", "excluded", "yi", "vi", "ni",
                 "kept", "error", "options", "plan")

    def __init__(self):
        self.excluded = []
        self.yi = self.vi = self.ni = None
        self.kept = []
        self.error = None
        self.measure = self.outcome = self.timepoint = self.unit = self.options = None
        self.plan = None          # (rows to pool, rows left out) until the effect sizes are in


def _prepare(rows, by, key, options, lineage) -> _Prepared:
    """One group's studies, through pool's own selection, measure, multi-arm and exclusion rules."""
    from msc_meta.data import OutcomeTable
    from msc_meta.pooling import analysis as an
    from msc_meta.pooling.selection import select_rows

    prep = _Prepared()
    outcomes = list(dict.fromkeys(r.outcome for r in rows))
    label = ", ".join(f"{c}={_plain(v)!r}" for c, v in zip(by, key))
    if len(outcomes) > 1:
        raise UsageError(f"group {label} mixes outcomes ({', '.join(outcomes)}); add 'outcome' to by")
    prep.outcome = outcomes[0]
    try:
        group = OutcomeTable(path=_SHOWN, columns=(), rows=tuple(rows))
        chosen = select_rows(group, prep.outcome, lineage=lineage)
    except UsageError as err:
        raise UsageError(f"group {label}: {err}; add 'timepoint_weeks' and 'unit' to by") from None
    rows, overlapping = list(chosen.rows), list(chosen.overlapping)
    prep.timepoint = an.common_value([r.timepoint_weeks for r in rows], None)
    prep.unit = an.common_value([r.unit for r in rows], None)
    try:
        prep.measure = an.resolve_measure(rows, options)
        prep.options = options.with_measure(prep.measure)
    except UsageError as err:
        # e.g. measure RR on a group of single-arm rows (or --scale on MD rows): that group only
        prep.measure, prep.error = options.measure, str(err)
        return prep
    units, _ = apply_multiarm(rows, prep.measure, options.multiarm)
    prep.plan = (units, overlapping)
    return prep


def _effect_sizes_all(prepared, options) -> None:
    """Exclusions and effect sizes of every group: one escalc call per measure."""
    from msc_meta.pooling.analysis import prepare_many

    by_measure: dict[str, list] = {}
    for _, prep in prepared:
        if prep.plan is not None:
            by_measure.setdefault(prep.measure, []).append(prep)
    for measure, preps in by_measure.items():
        studies = prepare_many([p.plan for p in preps], measure, options.method, options.cc,
                               r=options.r, scale=options.scale)
        for prep, done in zip(preps, studies):
            prep.excluded = done.excluded
            if done.kept:
                prep.kept, prep.yi, prep.vi, prep.ni = done.kept, done.yi, done.vi, done.ni


# ---------------------------------------------------------------------------
# fitting: inverse-variance groups with k >= 2 in one fit_batch
# ---------------------------------------------------------------------------

def _fit_all(prepared, options):
    from msc_meta.pooling.rma import fit_batch, result_of

    method, level = options.method, options.level
    out: list = [(None, None)] * len(prepared)
    batch = []
    for g, (_, prep) in enumerate(prepared):
        k = 0 if prep.yi is None else prep.yi.size
        if prep.error is not None:
            out[g] = (None, prep.error)
        elif k == 0:
            out[g] = (None, nothing_to_pool_message(prep.outcome, prep.measure, prep.excluded))
        elif k == 1:
            out[g] = (single_study_result(prep.measure, method, prep.yi[0], prep.vi[0], prep.ni,
                                          level, _scale(prep, options)), None)
        elif not registry.method(method).inverse_variance:
            try:
                out[g] = (fit_studies(prep.measure, prep.options, prep.kept, prep.yi, prep.vi,
                                      prep.ni)[0], None)
            except ComputationError as err:
                out[g] = (None, str(err))
        else:
            batch.append(g)
    if not batch:
        return out
    kmax = max(prepared[g][1].yi.size for g in batch)
    Y = np.zeros((len(batch), kmax))
    V = np.ones((len(batch), kmax))
    mask = np.zeros((len(batch), kmax), dtype=bool)
    for row, g in enumerate(batch):
        prep = prepared[g][1]
        Y[row, :prep.yi.size] = prep.yi
        V[row, :prep.vi.size] = prep.vi
        mask[row, :prep.yi.size] = True
    fit = fit_batch(Y, V, mask, method=method, hksj=options.hksj, pi=options.pi, level=level)
    for row, g in enumerate(batch):
        prep = prepared[g][1]
        if not fit.converged[row]:
            out[g] = (None, fit.messages[row])
            continue
        out[g] = (result_of(fit, row, measure=prep.measure, ni=prep.ni, scale=_scale(prep, options)),
                  None)
    return out


def _scale(prep, options):
    """``scale`` for the measures that take one (GEN), None for the others."""
    return options.scale if registry.measure(prep.measure).scales else None


def _result_record(prep, result, method, hksj, level) -> dict:
    fit = {name: (getattr(result, name) if result is not None else None) for name in _FIT_FIELDS}
    if result is None:
        fit["k"] = 0 if prep.yi is None else int(prep.yi.size)
    record = {
        "measure": prep.measure,
        "method": result.method if result is not None else method,
        **{name: fit[name] for name in ("k", "theta", "se", "estimate", "ci_low", "ci_high",
                                        "pi_low", "pi_high", "tau2", "tau", "i2", "h2", "q",
                                        "q_df", "q_pval", "stat", "pval")},
        "excluded": [{"study_id": e.study_id, "reason": e.reason, "row": e.row_number}
                     for e in prep.excluded],
        "outcome": prep.outcome,
        "timepoint_weeks": prep.timepoint,
        "unit": prep.unit,
        "level": level,
        "hksj": bool(result.hksj) if result is not None else bool(hksj),
        **{name: fit[name] for name in ("test", "df", "theta_ci_low", "theta_ci_high",
                                        "tau2_ci_low", "tau2_ci_high", "i2_ci_low", "i2_ci_high",
                                        "pi_method")},
    }
    for name, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            record[name] = None
    return record


# ---------------------------------------------------------------------------
# the columnar engine: every group at once, on the table's columns
# ---------------------------------------------------------------------------

def _columnar_many(data, by, keys, positions, options):
    """``pool_many``'s rows (as columns of a DataFrame) computed for all groups at once, or
    None when the table needs the group-by-group path.

    The plain case: event counts only, no ``subgroup_of`` links or ``trial``
    names (so no overlaps and no shared control arms), an inverse-variance
    method, and each group one outcome (written one way) at one time point
    and unit. Each group then gets exactly what ``pool`` gives it alone: the
    measure ``resolve_measure`` picks from its rows, the exclusions of
    ``notes.exclusion_reason`` and escalc, one ``fit_batch`` for every group
    with k >= 2 and ``single_study_result`` for k = 1.
    """
    from msc_meta.data import schema
    from msc_meta.data.columns import RowsView

    method = registry.method(options.method)
    if not method.inverse_variance or method.kind == "glmm":
        return None
    if data.filled("subgroup_of") or data.filled("trial") \
            or any(data.filled(c) for c in schema.OUTCOME_TYPE_COLUMNS):
        return None
    n, G = data.n, len(keys)
    gid = np.empty(n, dtype=np.int64)
    for g, idx in enumerate(positions):
        gid[idx] = g
    order = np.argsort(gid, kind="stable")        # rows grouped, table order within a group
    starts = np.searchsorted(gid[order], np.arange(G))
    first = order[starts]
    outcome = data.values["outcome"]
    if not _one_value_per_group(outcome, gid, first, G):
        return None
    weeks = data.values["timepoint_weeks"]
    week_code = np.where(np.isnan(weeks), -1.0, weeks)
    if not (week_code == week_code[first][gid]).all():
        return None
    if not _one_value_per_group(data.values["unit"], gid, first, G):
        return None

    v = data.values
    has = {c: ~np.isnan(v[c]) for c in ("events_t", "n_t", "events_c", "n_c")}
    counted = has["events_t"] & has["n_t"]
    comparison = counted & has["events_c"] & has["n_c"]
    g_counted = np.bincount(gid, weights=counted, minlength=G) > 0
    g_comparison = np.bincount(gid, weights=comparison, minlength=G) > 0
    measures, errors = _measures(g_counted, g_comparison, options)

    out = _empty_columns(by, keys, G, options)
    out["outcome"] = [outcome[i] for i in first.tolist()]
    out["timepoint_weeks"] = [None if w != w else float(w) for w in weeks[first].tolist()]
    out["unit"] = [v["unit"][i] for i in first.tolist()]
    excluded: list = [[] for _ in range(G)]
    view = RowsView(data, np.arange(n))
    for measure in dict.fromkeys(m for m in measures if m is not None):
        in_measure = np.array([m == measure for m in measures])
        rows = in_measure[gid]
        _pool_measure(measure, view, rows, gid, G, options, out, excluded)
    for g in range(G):
        out["measure"][g] = measures[g] if measures[g] is not None else options.measure
        if errors[g] is not None:
            out["error"][g] = errors[g]
            out["k"][g] = 0
    out["excluded"] = [[{"study_id": e.study_id, "reason": e.reason, "row": e.row_number} for e in ex]
                       for ex in excluded]
    for g in range(G):
        if out["k"][g] == 0 and out["error"][g] is None:
            out["error"][g] = nothing_to_pool_message(out["outcome"][g], out["measure"][g],
                                                      excluded[g])
    return out


def _one_value_per_group(col, gid, first, G) -> bool:
    """Does every row hold its group's first row's value (text, or None)?"""
    codes = {x: i for i, x in enumerate(dict.fromkeys(col))}
    coded = np.fromiter(map(codes.__getitem__, col), dtype=np.int64, count=len(col))
    return bool((coded == coded[first][gid]).all())


class _Facts:
    """A stand-in row for ``resolve_measure``: what it reads of a group's rows (their one
    outcome type; for counts, whether any compares two arms)."""

    row_number = 0

    def __init__(self, comparison, family="counts"):
        self.family = family
        self.has_counts = family == "counts"
        self.is_comparison = comparison


def resolve_many(selected, options) -> list:
    """``analysis.resolve_options`` of each selection in ``selected`` (its rows), or the
    ``UsageError`` it raises: ``export --all``'s thousands of analyses.

    What ``resolve_measure`` reads of a selection (its outcome types, whether its rows of
    counts include a comparison) is found for all selections on the joined columns, and
    each distinct case is resolved once on a stand-in row (``_Facts``). Selections mixing
    outcome types (whose refusal names rows) and rows that are not views are resolved on
    their own rows.
    """
    from msc_meta.data.columns import RowsView, concat
    from msc_meta.pooling.analysis import resolve_options

    def resolved(rows):
        try:
            return resolve_options(rows, options)
        except UsageError as err:
            return err

    views = [rows for rows in selected if isinstance(rows, RowsView)]
    every = concat(views) if len(views) == len(selected) and views else None
    if every is None:
        return [resolved(rows) for rows in selected]
    families = every.families()
    counts = every.present("events_t") & every.present("n_t")
    counts &= np.fromiter((f in ("counts", None) for f in families), dtype=bool, count=len(every))
    comparison = counts & every.present("events_c") & every.present("n_c")
    sizes = np.array([len(v) for v in views], dtype=np.int64)
    group = np.repeat(np.arange(sizes.size), sizes)
    any_comparison = (np.bincount(group, weights=comparison, minlength=sizes.size) > 0).tolist()
    out, cache, lo = [], {}, 0
    for rows, n, compared in zip(views, sizes.tolist(), any_comparison):
        kinds = set(families[lo:lo + n]) - {None}
        lo += n
        if len(kinds) > 1:
            out.append(resolved(rows))
            continue
        facts = (next(iter(kinds), None), compared)
        if facts not in cache:
            cache[facts] = resolved([] if facts[0] is None else [_Facts(compared, facts[0])])
        out.append(cache[facts])
    return out


def _measures(g_counted, g_comparison, options):
    """Each group's measure (``resolve_measure`` on its facts) and its refusal, if any."""
    from msc_meta.pooling.analysis import resolve_measure

    decided: dict = {}
    measures, errors = [], []
    for facts in zip(g_counted.tolist(), g_comparison.tolist()):
        if facts not in decided:
            rows = [_Facts(facts[1])] if facts[0] else []
            try:
                decided[facts] = (resolve_measure(rows, options), None)
            except UsageError as err:
                decided[facts] = (None, str(err))
        measure, error = decided[facts]
        measures.append(measure)
        errors.append(error)
    return measures, errors


def _empty_columns(by, keys, G, options) -> dict:
    out = {col: [_plain(key[j]) for key in keys] for j, col in enumerate(by)}
    for name in RESULT_KEYS:
        out.setdefault(name, [None] * G)
    out["method"] = [options.method] * G
    out["level"] = [options.level] * G
    out["hksj"] = [bool(options.hksj)] * G
    out["k"] = [0] * G
    out["error"] = [None] * G
    return out


def _pool_measure(measure, view, rows, gid, G, options, out, excluded) -> None:
    """Exclusions, effect sizes and fits of the groups pooled with ``measure``."""
    from msc_meta import effects
    from msc_meta.pooling.notes import exclusion_reason
    from msc_meta.pooling.selection import Excluded

    spec = registry.measure(measure)
    v = view.data.values
    a, n1, c, n2 = (v[name] for name in ("events_t", "n_t", "events_c", "n_c"))
    counted = ~np.isnan(a) & ~np.isnan(n1)
    comparison = counted & ~np.isnan(c) & ~np.isnan(n2)
    leave = rows & ~counted
    if spec.two_arm:
        leave |= rows & counted & ~comparison
        if spec.drop00:
            with np.errstate(invalid="ignore"):
                leave |= rows & comparison & (((a == 0) & (c == 0)) | ((a == n1) & (c == n2)))
    for i in np.flatnonzero(leave).tolist():
        row = view.data.row(i)
        excluded[gid[i]].append(Excluded(row.study_id, row.row_number, exclusion_reason(row, measure)))
    kept = np.flatnonzero(rows & ~leave)
    kept = kept[np.argsort(gid[kept], kind="stable")]
    if kept.size == 0:
        return
    es = effects.escalc(measure, *(v[name][kept] for name in spec.inputs), cc=options.cc)
    ok = np.asarray(es.keep, dtype=bool)
    for j in np.flatnonzero(~ok).tolist():
        i = int(kept[j])
        why = es.reasons[j] or f"{measure} not estimable for this study"
        excluded[gid[i]].append(Excluded(view.data.values["study_id"][i], int(view.data.numbers[i]), why))
    yi, vi, ni = (np.asarray(x, dtype=float)[ok] for x in (es.yi, es.vi, es.ni))
    kept = kept[ok]
    g_of = gid[kept]
    k = np.bincount(g_of, minlength=G)
    for g in np.flatnonzero(k).tolist():
        out["k"][g] = int(k[g])
    starts = np.concatenate([[0], np.cumsum(k)])
    single = np.flatnonzero(k == 1)
    for g in single.tolist():
        j = starts[g]
        if not (math.isfinite(yi[j]) and math.isfinite(vi[j]) and vi[j] > 0):
            i = int(kept[j])
            excluded[g].append(Excluded(view.data.values["study_id"][i], int(view.data.numbers[i]),
                                        f"zero cell and no continuity correction (--cc {options.cc:g}): "
                                        f"{measure} not estimable from this study alone"))
            out["k"][g] = 0
            continue
        result = single_study_result(measure, options.method, yi[j], vi[j], ni[j:j + 1], options.level)
        _put(out, g, _fit_values(result))
    many = np.flatnonzero(k >= 2)
    if many.size:
        _fit_groups(measure, many, k, starts, yi, vi, ni, options, out)


def _fit_groups(measure, many, k, starts, yi, vi, ni, options, out) -> None:
    """One ``fit_batch`` for the groups ``many`` (k >= 2); their rows of ``out`` filled in."""
    from msc_meta.pooling import rma

    kmax = int(k[many].max())
    rows_k = k[many]
    pos = np.arange(kmax)
    mask = pos[None, :] < rows_k[:, None]
    src = (starts[many][:, None] + pos[None, :])[mask]
    Y = np.zeros(mask.shape)
    V = np.ones(mask.shape)
    Y[mask] = yi[src]
    V[mask] = vi[src]
    fit = rma.fit_batch(Y, V, mask, method=options.method, hksj=options.hksj, pi=options.pi,
                        level=options.level)
    if measure == "PFT":        # the back-transformation needs each group's own sample sizes
        for row, g in enumerate(many.tolist()):
            _fit_one(out, g, fit, row, measure, ni[starts[g]:starts[g] + k[g]])
        return
    for name, values in _fit_columns(fit, measure).items():
        column = out[name]
        for row, g in enumerate(many.tolist()):
            column[g] = values[row]
    for row, g in enumerate(many.tolist()):
        if not fit.converged[row]:
            _put(out, g, dict.fromkeys(_FIT_FIELDS))
            out["k"][g] = int(k[g])
            out["method"][g] = options.method
            out["hksj"][g] = bool(options.hksj)
            out["error"][g] = fit.messages[row]


def _fit_one(out, g, fit, row, measure, ni) -> None:
    from msc_meta.pooling.rma import result_of

    if not fit.converged[row]:
        _put(out, g, dict.fromkeys(_FIT_FIELDS))
        out["k"][g] = int(fit.k[row])
        out["method"][g] = fit.method
        out["hksj"][g] = bool(fit.hksj)
        out["error"][g] = fit.messages[row]
        return
    _put(out, g, _fit_values(result_of(fit, row, measure=measure, ni=ni)))


def _fit_values(result) -> dict:
    values = {name: getattr(result, name) for name in _FIT_FIELDS}
    values["method"] = result.method
    values["hksj"] = bool(result.hksj)
    return values


def _put(out, g, values) -> None:
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[name][g] = value


def _fit_columns(fit, measure) -> dict:
    """``_result_record``'s fit values of every group of ``fit``, as columns (``rma.result_of``
    for all groups at once: the same numbers, back-transformed elementwise)."""
    from msc_meta.effects import transform_back

    t_test = np.asarray(fit.test) == "t"
    has_pi = np.array([m is not None for m in fit.pi_method])
    nat = np.asarray(transform_back(measure, np.stack([fit.theta, fit.theta_ci_low, fit.theta_ci_high,
                                                        fit.theta_pi_low, fit.theta_pi_high])),
                     dtype=float)

    def floats(x, where=None):
        x = np.asarray(x, dtype=float)
        keep = np.isfinite(x) if where is None else np.isfinite(x) & where
        return [v if ok else None for v, ok in zip(x.tolist(), keep.tolist())]

    return {
        "method": [fit.method] * len(t_test),
        "k": np.asarray(fit.k, dtype=np.int64).tolist(),
        "theta": floats(fit.theta), "se": floats(fit.se),
        "estimate": floats(nat[0]), "ci_low": floats(nat[1]), "ci_high": floats(nat[2]),
        "pi_low": floats(nat[3], has_pi), "pi_high": floats(nat[4], has_pi),
        "tau2": floats(fit.tau2), "tau": floats(fit.tau), "i2": floats(fit.i2), "h2": floats(fit.h2),
        "q": floats(fit.q), "q_df": np.asarray(fit.q_df, dtype=np.int64).tolist(),
        "q_pval": floats(fit.q_pval), "stat": floats(fit.stat), "pval": floats(fit.pval),
        "hksj": (bool(fit.hksj) & t_test).tolist(),
        "test": np.where(t_test, "t", "z").tolist(),
        "df": floats(fit.df, t_test),
        "theta_ci_low": floats(fit.theta_ci_low), "theta_ci_high": floats(fit.theta_ci_high),
        "tau2_ci_low": floats(fit.tau2_ci_low), "tau2_ci_high": floats(fit.tau2_ci_high),
        "i2_ci_low": floats(fit.i2_ci_low), "i2_ci_high": floats(fit.i2_ci_high),
        "pi_method": list(fit.pi_method),
    }


# ---------------------------------------------------------------------------
# many Analysis objects at once (pool --by, export --all)
# ---------------------------------------------------------------------------

def many_analyses(specs, prepared, fits, options):
    """The :class:`~msc_meta.pooling.analysis.Analysis` of every group of ``specs``, or None
    when the groups need the group-by-group path (``analysis.analysis_of``).

    Each is what ``analysis_of`` makes of that group alone; what it computes
    per study (the study intervals, the facts the notes read, whether guidance
    is needed) is computed once on the columns of all groups' pooled studies
    together, and the study lines are slices of those columns. The plain case:
    event counts, every group's pooled studies a view on one table.
    """
    from msc_meta.data.columns import RowsView, concat
    from msc_meta.pooling import analysis as an

    live = [g for g, fit in enumerate(fits) if fit is not None]
    kept = [prepared[g].kept for g in live]
    if registry.measure(options.measure).family != "counts" or not live \
            or not all(isinstance(v, RowsView) for v in kept):
        return None
    every = concat(kept)
    if every is None:
        return None
    sizes = [len(v) for v in kept]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    es_list = [prepared[g].es for g in live]
    es = _joined_effect_sizes(es_list)
    cc = np.concatenate([an.cc_flags(e, n) for e, n in zip(es_list, sizes)])
    lines = _study_columns(every, es, cc, options)
    from msc_meta.pooling.guidance import guidance_many
    from msc_meta.pooling.notes import study_facts_many
    from msc_meta.pooling.study_lines import StudyLines

    facts = study_facts_many(every, es.yi, cc, bounds)
    advice = guidance_many(options.measure, options.method, options.hksj, every, bounds,
                           options.cc, options.multiarm)
    where = dict(zip(live, range(len(live))))
    place = _common_values(specs)
    out = []
    for g, spec in enumerate(specs):
        j = where.get(g)
        if j is None:
            out.append(an.analysis_of(spec, prepared[g], None, options))
            continue
        part = slice(int(bounds[j]), int(bounds[j + 1]))
        studies = StudyLines.of_columns(prepared[g].kept, lines, part, fits[g][0].weights)
        out.append(an.analysis_of(spec, prepared[g], fits[g], options, place=place[g],
                                  studies=studies, facts=facts[j], advice=advice[j]))
    return out


def _joined_effect_sizes(es_list):
    """One EffectSizes of the groups' studies one after another (yi, vi, ni: what the
    study intervals read; escalc is elementwise)."""
    from dataclasses import replace

    def cat(name):
        return np.concatenate([np.asarray(getattr(e, name)) for e in es_list])

    return replace(es_list[0], yi=cat("yi"), vi=cat("vi"), ni=cat("ni"), keep=cat("keep"),
                   cc_added=cat("cc_added"), reasons=(), notes=(), used=())


def _study_columns(every, es, cc, options) -> dict:
    """The columns of ``StudyLines`` for every pooled study of every group."""
    from msc_meta.pooling import analysis as an

    two_arm = registry.measure(options.measure).two_arm
    estimate, low, high = an.study_intervals(es, every, options.study_ci, options.level)
    return dict(study_id=every.column("study_id"), row_number=every.row_numbers,
                events_t=every.column("events_t"), n_t=every.column("n_t"),
                events_c=every.column("events_c") if two_arm else None,
                n_c=every.column("n_c") if two_arm else None,
                yi=np.asarray(es.yi, dtype=float), vi=np.asarray(es.vi, dtype=float),
                estimate=np.asarray(estimate, dtype=float), ci_low=np.asarray(low, dtype=float),
                ci_high=np.asarray(high, dtype=float), cc_added=cc, two_arm=two_arm)


def _common_values(specs) -> list:
    """Each group's (timepoint_weeks, unit) as ``analysis_of`` finds them
    (``analysis.common_value`` of its rows), the columns read once for all groups."""
    from msc_meta.data.columns import concat
    from msc_meta.pooling import analysis as an

    every = concat(spec["rows"] for spec in specs)
    if every is None:
        return [(an.common_value(an.column_values(s["rows"], "timepoint_weeks"), s["timepoint"]),
                 an.common_value(an.column_values(s["rows"], "unit"), s["unit"])) for s in specs]
    weeks, units = an.column_values(every, "timepoint_weeks"), an.column_values(every, "unit")
    out, lo = [], 0
    for spec in specs:
        hi = lo + len(spec["rows"])
        out.append((an.common_value(weeks[lo:hi], spec["timepoint"]),
                    an.common_value(units[lo:hi], spec["unit"])))
        lo = hi
    return out
