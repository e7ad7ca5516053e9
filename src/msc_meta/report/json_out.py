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

from msc_meta import registry
from msc_meta.pooling.results import jsonable
from msc_meta.report.terminal import json_document

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


def analysis_to_dict(analysis, subgroup_test=None, units=None) -> dict:
    """One pool as a plain dict in the contract's key order.

    A subgroup with nothing pooled (``--by``) keeps every key, with ``k = 0``
    and nulls for the numbers, so that consumers need no special case.
    """
    result = analysis.result
    fit = {name: (getattr(result, name) if result is not None else None) for name in _FIT_FIELDS}
    if result is None:
        fit["k"] = 0
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
        "studies": [
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
    return jsonable(doc)


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
    return {name: getattr(fit, name) for name in COMMON_KEYS}


def subgroup_test_to_dict(test, group=None) -> dict | None:
    """The test, as every ``--by`` element carries it: how many subgroups it used and whether
    this element's subgroup is one of them (a list of every subgroup in every element would
    make the document grow with the square of the number of subgroups)."""
    if test is None:
        return None
    return {"by": test.by, "q_between": test.q_between, "df": test.df, "pval": test.pval,
            "n_groups": len(test.groups), "in_test": group in test.groups}


def to_json(analyses, subgroup_test=None, *, grouped=False, units=None) -> str:
    """The whole document: one object, or a list of them with ``--by``.

    With ``--by`` every element carries its ``group`` and the same
    ``subgroup_test`` (null when fewer than two subgroups were pooled), so a
    consumer reading the list finds the test wherever it looks.
    """
    if grouped:
        doc = [analysis_to_dict(a, subgroup_test, units) for a in analyses]
    else:
        (analysis,) = analyses
        doc = analysis_to_dict(analysis, units=units)
    return json_document(doc)


