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

    rows = frame_to_rows(table)
    # subgroup_of links may run through rows of other groups: one lineage for all
    lineage = OutcomeTable(path=_SHOWN, columns=(), rows=rows).ancestors()
    positions = table.reset_index(drop=True).groupby(by, dropna=False, sort=False).indices
    prepared = []
    for key, idx in positions.items():
        key = key if isinstance(key, tuple) else (key,)
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
    columns = by + [k for k in RESULT_KEYS if k not in by] + ["error"]
    return pd.DataFrame.from_records(records, columns=columns)


# ---------------------------------------------------------------------------
# DataFrame -> validated rows
# ---------------------------------------------------------------------------

def frame_to_rows(table):
    """Validate a DataFrame as the loader validates a CSV file; one ``Row`` per record.

    Cells are turned back into the text a CSV would hold (blank for
    NaN/None, whole floats without ``.0``), then parsed by the same code as
    ``msc_meta.data.load_table``, so every check and message is the loader's.
    """
    from msc_meta.data import load, schema

    columns = [str(c).strip() for c in table.columns]
    required = schema.required_columns(columns)      # other outcome types need no counts
    missing = [c for c in required if c not in columns]
    if missing:
        raise UsageError(f"the table lacks the required column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)}; required: {', '.join(required)}")
    records = []
    for pos, values in enumerate(table.itertuples(index=False, name=None)):
        records.append((pos + 2, {c: _cell_text(v) for c, v in zip(columns, values)}))
    raw = load.RawTable(path=_SHOWN, header=tuple(columns), records=tuple(records), delimiter=",")
    rows = tuple(load._make_row(raw, number, cells) for number, cells in raw.records)
    load._check_unique_keys(_SHOWN, rows)
    return rows


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
