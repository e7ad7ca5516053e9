"""Tables and JSON documents of ``msc-meta bayes`` and ``msc-meta fragility``.

Presentation only: the numbers come from ``msc_meta.pooling.bayes`` and
``msc_meta.pooling.fragility``; nothing here computes a statistic.
"""

from __future__ import annotations

import math

from msc_meta import registry
from msc_meta.report.terminal import json_document

def _f(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "NA"
    x = float(x)
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 5 * 10 ** -(digits + 1)):
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


def _ci(est, lo, hi) -> str:
    return f"{_f(est)} [{_f(lo)}, {_f(hi)}]"


def _p(p) -> str:
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "NA"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def _weeks(weeks) -> str:
    if weeks is None:
        return ""
    return f"{weeks:g}"


# ---------------------------------------------------------------------------
# bayes
# ---------------------------------------------------------------------------

def bayes_document(bayes, analysis, units=None) -> dict:
    """The ``msc-meta bayes --json`` object: the contract keys, then context.

    ``bayes`` is a :class:`~msc_meta.pooling.bayes.BayesResult`; ``analysis``
    the :class:`~msc_meta.pooling.analysis.Analysis` whose studies were used
    (selection, exclusions, and the REML fit shown for comparison).
    """
    doc = bayes.to_dict()
    ref = analysis.result
    doc.update({
        "outcome": analysis.outcome,
        "timepoint_weeks": analysis.timepoint_weeks,
        "unit": analysis.unit,
        "outcome_units": units,
        "excluded": [{"study_id": e.study_id, "reason": e.reason} for e in analysis.excluded],
        "studies": [{"study_id": s.study_id, "events_t": s.events_t, "n_t": s.n_t,
                     "events_c": s.events_c, "n_c": s.n_c, "yi": s.yi, "vi": s.vi}
                    for s in analysis.studies],
        "frequentist": None if ref is None else {
            "method": ref.method, "estimate": _clean(ref.estimate), "ci_low": _clean(ref.ci_low),
            "ci_high": _clean(ref.ci_high), "tau": _clean(ref.tau)},
    })
    doc["notes"] = bayes_notes(bayes, analysis)
    return doc


# Notes of the frequentist pool that are about its own fit (z-based CI,
# prediction interval, tau² = 0), not about the data: not repeated under
# the Bayesian result.
_FIT_NOTE_PREFIXES = ("with k = ", "prediction interval", "tau² estimated as 0", "tau^2 estimated as 0")


def bayes_notes(bayes, analysis) -> list[str]:
    """The Bayesian model's notes, then the data notes of the selection (exclusions, cc, shared arms)."""
    own = set(analysis.result.notes) if analysis.result is not None else set()
    notes = list(bayes.notes)
    for note in analysis.notes:
        if note in notes or note in own or note.startswith(_FIT_NOTE_PREFIXES):
            continue
        notes.append(note)
    return notes


def _clean(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def bayes_json(bayes, analysis, units=None) -> str:
    return json_document(bayes_document(bayes, analysis, units))


def print_bayes(bayes, analysis, units=None) -> None:
    """A short table of the posterior, the REML fit beside it, and the notes; ``units``: the
    outcome's units (report.units), shown beside measures that have them."""
    import textwrap

    from rich import box
    from rich.table import Table

    from msc_meta.report.terminal import cell as Text
    from msc_meta.report.terminal import console as Console

    console = Console()
    measure = bayes.measure or analysis.measure
    spec = registry.measure(measure, bayes.scale)
    natural = spec.natural.lower() if spec.natural == "Proportion" else spec.natural
    in_units = f", {units}" if units else ""
    where = [analysis.outcome.replace("_", " ")]
    if analysis.timepoint_weeks is not None:
        where.append(f"{_weeks(analysis.timepoint_weeks)} weeks")
    if analysis.unit:
        where.append(f"per {analysis.unit}")
    console.print(f"Bayesian random effects: {', '.join(where)}; {measure}, k = {bayes.k}",
                  markup=False, highlight=False)
    title = None
    lvl = f"{bayes.level:g}%"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAVY)
    table.add_column("Quantity")
    table.add_column("Median", justify="right")
    table.add_column(f"{lvl} interval", justify="right")
    table.add_row(Text(f"Overall effect ({natural}{in_units})"), _f(bayes.estimate),
                  f"{_f(bayes.ci_low)} to {_f(bayes.ci_high)}")
    if spec.back != "identity":       # the analysis scale is not the natural one
        table.add_row(Text(f"Overall effect ({spec.scale})"), _f(bayes.theta_median),
                      f"{_f(bayes.theta_ci_low)} to {_f(bayes.theta_ci_high)}")
    tau_scale = f"{spec.scale}{in_units}" if spec.back == "identity" else spec.scale
    table.add_row(Text(f"Heterogeneity tau ({tau_scale})"), _f(bayes.tau_median),
                  f"{_f(bayes.tau_ci_low)} to {_f(bayes.tau_ci_high)}")
    table.add_row(Text(f"New study ({natural}{in_units}), predictive"), "",
                  f"{_f(bayes.pred_low)} to {_f(bayes.pred_high)}")
    console.print(table)

    lines = [f"Priors: tau ~ {bayes.prior_tau}; mu ~ {bayes.prior_mu}. "
             f"Credible intervals are equal-tailed posterior quantiles."]
    if bayes.p_benefit is not None:
        exceeds = f"{spec.natural} > {spec.null:g}" if spec.null is not None else "the effect exceeds the null"
        lines.append(f"Posterior probability that {exceeds}: "
                     f"{bayes.p_benefit:.3f}")
    ref = analysis.result
    if ref is not None:
        lines.append(f"For comparison, {ref.method} (frequentist): {_ci(ref.estimate, ref.ci_low, ref.ci_high)}, "
                     f"tau = {_f(ref.tau)}")
    if analysis.excluded:
        lines.append("Left out:")
        lines.extend(f"  - {e.study_id} (row {e.row_number}): {e.reason}" for e in analysis.excluded)
    notes = bayes_notes(bayes, analysis)
    if notes:
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in notes)
    width = max(40, console.width - 1)
    for line in lines:
        hang = 4 if line.startswith("  - ") else 0
        console.print(textwrap.fill(line, width, subsequent_indent=" " * hang),
                      markup=False, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------
# fragility
# ---------------------------------------------------------------------------

def fragility_records(items) -> list[dict]:
    """``items``: (row, Fragility) pairs -> the ``msc-meta fragility --json`` list."""
    out = []
    for row, fr in items:
        rec = {"study_id": row.study_id, "outcome": row.outcome}
        rec.update(fr.to_dict())
        rec["timepoint_weeks"] = row.timepoint_weeks
        rec["unit"] = row.unit
        rec["row"] = row.row_number
        out.append(rec)
    return out


def fragility_json(items) -> str:
    return json_document(fragility_records(items))


def print_fragility(items, *, skipped: int = 0, single_arm: int = 0, alpha: float = 0.05) -> None:
    """One line per two-arm row, then how to read it and what was not listed."""
    import textwrap

    from rich import box
    from rich.table import Table

    from msc_meta.report.terminal import cell as Text
    from msc_meta.report.terminal import console as Console

    console = Console()
    table = Table(title="Fragility of two-arm results (Fisher's exact test)", title_justify="left",
                  box=box.SIMPLE_HEAVY)
    table.add_column("Study", overflow="fold", ratio=3)
    table.add_column("Outcome", overflow="fold", ratio=4)
    table.add_column("Treated", justify="right", no_wrap=True)
    table.add_column("Control", justify="right", no_wrap=True)
    table.add_column("Fisher p", justify="right", no_wrap=True)
    table.add_column("Index", justify="right", no_wrap=True)
    arm = {"treatment": "T", "control": "C", "both": "T+C"}
    for row, fr in items:
        if fr.fragility_index is None:
            index = "—"
        else:
            index = ("" if fr.significant else "rev ") + f"{fr.fragility_index} ({arm.get(fr.changed_arm, '?')})"
        when = ", ".join(x for x in (f"{_weeks(row.timepoint_weeks)} wk" if row.timepoint_weeks is not None else "",
                                     row.unit or "") if x)
        outcome = row.outcome + (f"\n{when}" if when else "")
        table.add_row(Text(row.study_id), Text(outcome), f"{fr.events_t}/{fr.n_t}", f"{fr.events_c}/{fr.n_c}",
                      _p(fr.fisher_pval) + ("*" if fr.significant else " "), index)
    console.print(table)
    lines = [
        f"* p < {alpha:g}. Index: for p < {alpha:g}, the fragility index (Walsh et al. 2014): how many "
        "patients of the arm with the lower event proportion would have to have had the event for p "
        f"to reach {alpha:g}. 'rev': for p >= {alpha:g}, the reverse index: the fewest changes of "
        f"outcome (moving the arms apart) that would make p < {alpha:g}. In brackets the arm "
        "changed: T treatment, C control. '\u2014': no such change exists.",
    ]
    if skipped or single_arm:
        parts = []
        if skipped:
            parts.append(f"{skipped} two-arm row{'s' if skipped != 1 else ''} without counts")
        if single_arm:
            parts.append(f"{single_arm} single-arm row{'s' if single_arm != 1 else ''}")
        lines.append("Not listed: " + " and ".join(parts) + " (no 2x2 table).")
    width = max(40, console.width - 1)
    for line in lines:
        console.print(textwrap.fill(line, width), markup=False, highlight=False, soft_wrap=True)
