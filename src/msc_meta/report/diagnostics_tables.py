"""Tables and JSON documents of ``sensitivity``, ``regress`` and ``bias`` (presentation only).

Every number comes from ``msc_meta.pooling.sensitivity``, ``.metareg`` and
``.bias``; this module names, orders and formats. JSON keys follow the CLI
contract's sections ``### msc-meta sensitivity``, ``### msc-meta regress``
and ``### msc-meta bias`` (the contract's keys first, extensions after);
NaN and infinities become ``null``.
"""

from __future__ import annotations

import math

from msc_meta import registry
from msc_meta.pooling.results import jsonable
from msc_meta.report.forest_table import fmt, fmt_ci, fmt_p, fmt_pct, hanging_list
from msc_meta.report.terminal import json_document
from msc_meta.report.units import scale_with_units, with_units

# The contract's keys of `msc-meta regress --json`, in its order (extensions follow).
REGRESS_KEYS = ("method", "k", "coefficients", "tau2", "i2", "r2", "qm", "qm_df", "qm_pval",
                "qe", "qe_df", "qe_pval")


# ---------------------------------------------------------------- JSON

def dumps(doc) -> str:
    return json_document(jsonable(doc))


def _selection(a) -> dict:
    return {"outcome": a.outcome, "timepoint_weeks": a.timepoint_weeks, "unit": a.unit}


def _excluded(excluded) -> list:
    return [{"study_id": e.study_id, "reason": e.reason, "row": e.row_number} for e in excluded]


def sensitivity_document(sa, units=None) -> dict:
    """``msc-meta sensitivity --json``."""
    res = sa.result
    full = sa.full
    return {
        "leave_one_out": [
            {"omitted": f.label, "k": f.k, "theta": f.theta, "estimate": f.estimate,
             "ci_low": f.ci_low, "ci_high": f.ci_high, "tau2": f.tau2, "i2": f.i2, "q": f.q,
             "pval": f.pval,
             "se": f.se, "stat": f.stat, "theta_ci_low": f.theta_ci_low,
             "theta_ci_high": f.theta_ci_high, "h2": f.h2, "q_pval": f.q_pval}
            for f in res.leave_one_out],
        "cumulative": [
            {"added": f.label, "k": f.k, "theta": f.theta, "estimate": f.estimate,
             "ci_low": f.ci_low, "ci_high": f.ci_high, "tau2": f.tau2, "i2": f.i2,
             "se": f.se, "stat": f.stat, "pval": f.pval, "q": f.q}
            for f in res.cumulative],
        "influence": [
            {"study_id": r.study_id, "rstudent": r.rstudent, "dffits": r.dffits,
             "cooks_d": r.cooks_d, "cov_r": r.cov_r, "tau2_del": r.tau2_del, "qe_del": r.qe_del,
             "hat": r.hat, "weight": r.weight, "dfbetas": r.dfbetas, "influential": r.influential}
            for r in res.influence],
        # extensions
        "order": res.order,
        **_selection(sa),
        "measure": res.measure, "scale": res.scale, "outcome_units": units,
        "method": res.method, "test": res.test, "level": res.level, "k": res.k,
        "pooled": None if full is None else {
            "theta": full.theta, "estimate": full.estimate, "ci_low": full.ci_low,
            "ci_high": full.ci_high, "tau2": full.tau2, "i2": full.i2, "q": full.q,
            "pval": full.pval},
        "excluded": _excluded(sa.excluded),
        "notes": list(sa.notes),
    }


def regress_document(reg, units=None) -> dict:
    """``msc-meta regress --json``."""
    fit = reg.fit
    doc = fit.to_dict()
    out = {key: doc[key] for key in REGRESS_KEYS}
    out.update({
        "test": fit.test, "level": fit.level, "p": fit.p, "h2": fit.h2, "qm_df2": fit.qm_df2,
        "mods": reg.mods, "measure": reg.measure, "scale": reg.scale, "outcome_units": units,
        **_selection(reg),
        "studies": [{"study_id": s.study_id, "row": s.row_number, "yi": s.yi, "vi": s.vi,
                     **{col: value for col, value in s.moderators}} for s in reg.studies],
        "excluded": _excluded(reg.excluded),
        "notes": list(reg.notes),
    })
    return out


def bias_document(b, units=None) -> dict:
    """``msc-meta bias --json``."""
    res = b.result
    egger = res.egger
    tf = res.trimfill
    trimfill = None
    if tf is not None:
        trimfill = {"k0": tf.k0, "side": tf.side, "theta": tf.theta,
                    "estimate": b.trimfill_estimate, "ci_low": b.trimfill_ci_low,
                    "ci_high": b.trimfill_ci_high,
                    "k": tf.k, "se": tf.se, "theta_ci_low": tf.theta_ci_low,
                    "theta_ci_high": tf.theta_ci_high, "tau2": tf.tau2, "se_k0": tf.se_k0,
                    "estimator": tf.estimator}
    filled = []
    if tf is not None:
        for y, v, src in zip(tf.yi_filled, tf.vi_filled, tf.fill_source):
            filled.append({"yi": y, "sei": math.sqrt(v), "mirrors": b.studies[src].study_id})
    return {
        "k": res.k,
        "egger_z": None if egger is None else egger.stat,
        "egger_pval": None if egger is None else egger.pval,
        "trimfill": trimfill,
        "warning": res.warning,
        # extensions
        "egger_test": None if egger is None else egger.test,
        "egger_df": None if egger is None else egger.df,
        "egger": None if egger is None else egger.to_dict(),
        "measure": b.measure, "scale": b.scale, "outcome_units": units, "method": b.method,
        "level": b.level, **_selection(b),
        "funnel": {"studies": [{"study_id": s.study_id, "yi": y, "sei": se}
                               for s, y, se in zip(b.studies, res.yi, res.sei)],
                   "filled": filled},
        "excluded": _excluded(b.excluded),
        "notes": list(b.notes),
    }


# ---------------------------------------------------------------- rich output

def _title(a, measure, method, k, extra="") -> str:
    parts = [a.outcome]
    if a.timepoint_weeks is not None:
        parts.append(f"{a.timepoint_weeks:g} weeks")
    if a.unit:
        parts.append(f"per {a.unit}")
    return f"{' · '.join(parts)} — {measure}, {method}{extra}, k = {k}"


LABEL_MAX = 28


def _table(*columns, labels=(), title=None):
    """A plain table; the first column (labels) keeps its width up to LABEL_MAX, then folds."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1),
                  header_style="bold", title=title, title_justify="left", title_style="bold")
    label_w = min(LABEL_MAX, max([len(columns[0])] + [len(str(x)) for x in labels]))
    for i, name in enumerate(columns):
        if i == 0:
            table.add_column(name, justify="left", overflow="fold", min_width=label_w,
                             max_width=LABEL_MAX)
        else:
            table.add_column(name, justify="right", no_wrap=True)
    return table


def _footer(excluded, notes, warning=None):
    from msc_meta.report.terminal import cell as Text

    out = []
    if warning:
        out.append(Text(f"Warning: {warning}", style="bold"))
    if excluded:
        out.append(Text("Left out:"))
        out.append(hanging_list([f"{e.study_id} (row {e.row_number}): {e.reason}" for e in excluded]))
    if notes:
        out.append(Text("Notes:"))
        out.append(hanging_list(notes))
    return out


def render_sensitivity(sa, units=None) -> list:
    """``units``: the outcome's units (report.units), shown beside measures that have them."""
    from msc_meta.report.terminal import cell as Text

    res = sa.result
    label = with_units(registry.measure(res.measure, res.scale).natural, units)
    ci_head = f"{label} [{res.level:g}% CI]"
    hk = " + HKSJ" if res.test == "t" else ""
    out = [Text(_title(sa, res.measure, res.method, res.k, hk), style="bold")]
    if sa.full is not None:
        out.append(Text(f"All studies: {label} {fmt_ci(sa.full.estimate, sa.full.ci_low, sa.full.ci_high)}, "
                        f"tau² = {fmt(sa.full.tau2, 4)}, I² = {fmt_pct(sa.full.i2)}"))

    labels = [f.label for f in res.leave_one_out]
    loo = _table("Omitted", "k", ci_head, "p", "tau²", "I²", "Q", labels=labels,
                 title="Leave-one-out (metafor leave1out)")
    for f in res.leave_one_out:
        loo.add_row(f.label, str(f.k), fmt_ci(f.estimate, f.ci_low, f.ci_high), _p(f.pval),
                    fmt(f.tau2, 4), fmt_pct(f.i2), fmt(f.q, 2))
    out.append(loo)

    order = "table order" if res.order == "table order" else f"by {res.order}, ascending"
    cum = _table("Added", "k", ci_head, "p", "tau²", "I²", labels=labels,
                 title=f"Cumulative (metafor cumul; {order})")
    for f in res.cumulative:
        cum.add_row(f.label, str(f.k), fmt_ci(f.estimate, f.ci_low, f.ci_high), _p(f.pval),
                    fmt(f.tau2, 4), fmt_pct(f.i2))
    out.append(cum)

    inf = _table("Study", "rstud", "dffits", "cook.d", "cov.r", "tau²₋ᵢ", "QE₋ᵢ", "hat",
                 "weight", "", labels=labels, title="Influence (metafor influence)")
    for r in res.influence:
        inf.add_row(r.study_id, fmt(r.rstudent, 2), fmt(r.dffits, 2), fmt(r.cooks_d, 2),
                    fmt(r.cov_r, 2), fmt(r.tau2_del, 4), fmt(r.qe_del, 2), fmt(r.hat, 2),
                    f"{r.weight:.1f}%", "*" if r.influential else "")
    out.append(inf)
    out.append(Text("rstud: studentised deleted residual; ₋ᵢ: with the study left out; "
                    "* influential as metafor: |dffits| > 3·sqrt(p/(k-p)), Cook's d beyond the "
                    "chi²(1) median, hat > 3p/k or |dfbetas| > 1", style="dim"))
    out.extend(_footer(sa.excluded, sa.notes))
    return out


def _p(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "NA"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def render_regress(reg, units=None) -> list:
    from msc_meta.report.terminal import cell as Text

    fit = reg.fit
    hk = " + Knapp-Hartung" if fit.test == "t" else ""
    out = [Text(_title(reg, reg.measure, fit.method, fit.k, hk), style="bold")]
    model = "Meta-regression (FE)" if fit.method == "FE" else f"Mixed-effects meta-regression ({fit.method})"
    scale = scale_with_units(registry.measure(reg.measure, reg.scale), units)
    out.append(Text(f"{model} on {reg.mods}; coefficients on the {scale} scale"))
    table = _table("Coefficient", "Estimate", "SE", fit.test, "p", f"{fit.level:g}% CI",
                   labels=fit.names)
    for c in fit.coefficients:
        table.add_row(c.name, fmt(c.estimate), fmt(c.se), fmt(c.stat, 2), _p(c.pval),
                      f"[{fmt(c.ci_low)}, {fmt(c.ci_high)}]")
    out.append(table)
    spec = registry.measure(reg.measure, reg.scale)
    if spec.log_axis:
        for c in fit.coefficients[1:]:
            out.append(Text(f"{c.name}: the {spec.natural} is multiplied by "
                            f"{fmt_ci(math.exp(c.estimate), math.exp(c.ci_low), math.exp(c.ci_high))} "
                            f"{_per_unit(c.name)}"))
    lines = []
    if fit.method == "FE":
        lines.append(f"Residual heterogeneity: QE = {fmt(fit.qe, 2)} (df = {fit.qe_df}, "
                     f"{fmt_p(fit.qe_pval)}), I² = {fmt_pct(fit.i2)}")
    else:
        lines.append(f"Residual heterogeneity: tau² = {fmt(fit.tau2, 4)}, I² = {fmt_pct(fit.i2)}, "
                     f"H² = {fmt(fit.h2, 2)}")
        lines.append(f"  QE = {fmt(fit.qe, 2)} (df = {fit.qe_df}, {fmt_p(fit.qe_pval)})")
    if fit.test == "t":
        lines.append(f"Test of moderators: F({fit.qm_df}, {fit.qm_df2}) = {fmt(fit.qm, 2)}, "
                     f"{fmt_p(fit.qm_pval)}")
    else:
        lines.append(f"Test of moderators: QM = {fmt(fit.qm, 2)} (df = {fit.qm_df}), {fmt_p(fit.qm_pval)}")
    if fit.r2 is not None:
        if fit.method == "FE":
            lines.append(f"R² (adjusted R² of the weighted regression): {fmt_pct(fit.r2)}")
        elif fit.tau2_intercept_only == 0:
            lines.append("R²: not meaningful (tau² without moderators is already 0; reported as 0%)")
        else:
            lines.append(f"R² (share of tau² explained): {fmt_pct(fit.r2)}")
    out.extend(Text(line) for line in lines)
    out.extend(_footer(reg.excluded, reg.notes))
    return out


def _per_unit(name) -> str:
    if name.startswith("log10("):
        return f"per tenfold {name[6:-1]}"
    if name.startswith("log("):
        return f"per e-fold {name[4:-1]}"
    if name.endswith("]") and "[" in name:
        column, level = name[:-1].split("[", 1)
        return f"for {column} = {level} against the reference value"
    return f"per unit of {name}"


def render_bias(b, units=None) -> list:
    from msc_meta.report.terminal import cell as Text

    res = b.result
    label = with_units(registry.measure(b.measure, b.scale).natural, units)
    hk = " + HKSJ" if (res.egger is not None and res.egger.test == "t") else ""
    out = [Text(_title(b, b.measure, b.method, res.k, hk), style="bold")]
    if res.warning:
        out.append(Text(f"Warning: {res.warning}", style="bold"))
    eg = res.egger
    if eg is not None:
        df = f" (df = {eg.df})" if eg.df is not None else ""
        out.append(Text(f"Egger's regression test (metafor regtest: yi on sei, {b.method}): "
                        f"{eg.test} = {fmt(eg.stat, 2)}{df}, {fmt_p(eg.pval)}"))
    else:
        out.append(Text("Egger's regression test: not computed (see notes)"))
    tf = res.trimfill
    if tf is not None:
        where = f"{tf.k0} missing on the {tf.side}" if tf.k0 else f"none missing (side checked: {tf.side})"
        out.append(Text(f"Trim-and-fill (L0): {where}; "
                        f"{'adjusted ' if tf.k0 else ''}{label} "
                        f"{fmt_ci(b.trimfill_estimate, b.trimfill_ci_low, b.trimfill_ci_high)} "
                        f"from k = {tf.k}"))
    else:
        out.append(Text("Trim-and-fill: not computed (see notes)"))

    fill_labels = [] if tf is None else [f"filled (mirrors {b.studies[i].study_id})" for i in tf.fill_source]
    table = _table("Study", f"yi ({scale_with_units(registry.measure(b.measure, b.scale), units)})", "sei",
                   title="Funnel data",
                   labels=[s.study_id for s in b.studies] + fill_labels)
    for s, y, se in zip(b.studies, res.yi, res.sei):
        table.add_row(s.study_id, fmt(y), fmt(se))
    if tf is not None:
        for y, v, src in zip(tf.yi_filled, tf.vi_filled, tf.fill_source):
            table.add_row(f"filled (mirrors {b.studies[src].study_id})", fmt(y), fmt(math.sqrt(v)))
    out.append(table)
    out.extend(_footer(b.excluded, b.notes))
    return out


def print_renderables(parts, console=None) -> None:
    from msc_meta.report.terminal import console as Console

    console = console or Console(highlight=False, soft_wrap=False)
    for part in parts:
        console.print(part)
