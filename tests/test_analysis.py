"""msc_meta.pooling.analysis (run_pool, run_pool_by, subgroup_test) and the table renderer.

Numbers come from tests/fixtures/pool_cli.json (tests/r/fixtures_pool.R,
metafor 3.8.1); the rules (exclusions, notes, default measure) are checked
on the same small tables.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from msc_meta.data import load_table
from msc_meta.errors import UsageError
from msc_meta.pooling.analysis import (
    Analysis,
    StudyLine,
    run_pool,
)
from msc_meta.pooling.subgroups import run_pool_by, subgroup_test
from msc_meta.pooling.results import PoolResult
from msc_meta.report.forest_table import Axis, fmt, fmt_p, report_text

FIXTURES = Path(__file__).parent / "fixtures"
POOL = json.loads((FIXTURES / "pool_cli.json").read_text())
COLUMNS = ["study_id", "outcome", "events_t", "n_t", "events_c", "n_c", "trial",
           "timepoint_weeks", "unit", "pct_t", "pct_c", "route", "note"]


def approx(expected):
    return pytest.approx(expected, rel=1e-6, abs=1e-10)


def table_of(tmp_path, rows, name="t.csv"):
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in COLUMNS])
    return load_table(str(path))


@pytest.fixture
def two_arm(tmp_path):
    return table_of(tmp_path, POOL["two_arm"]["rows"])


def row(study_id, et, nt, ec=None, nc=None, **extra):
    return dict(study_id=study_id, outcome="closure", events_t=et, n_t=nt, events_c=ec, n_c=nc, **extra)


# ---------------------------------------------------------------- run_pool

def test_run_pool_returns_frozen_results_with_labels(two_arm):
    analysis = run_pool(two_arm, outcome="closure", multiarm="keep")
    assert isinstance(analysis, Analysis) and analysis.k == 5
    assert analysis.measure == "RR" and analysis.method == "REML"
    assert analysis.timepoint_weeks == 24 and analysis.unit == "patient"
    assert all(isinstance(s, StudyLine) for s in analysis.studies)
    assert [s.row_number for s in analysis.studies] == [2, 3, 6, 8, 9]
    assert [(e.study_id, e.row_number) for e in analysis.excluded] == [("C", 4), ("D", 5), ("F", 7)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        analysis.measure = "OR"
    with pytest.raises(dataclasses.FrozenInstanceError):
        analysis.studies[0].weight = 1.0
    ref = POOL["two_arm"]["measures"]["RR"]["fits"]
    assert analysis.result.theta == approx(ref["REML"]["theta"])
    assert analysis.common.theta == approx(ref["FE"]["theta"])
    assert sum(s.weight for s in analysis.studies) == approx(100.0)


def test_mh_with_cc_zero_still_pools_a_single_zero_table(two_arm):
    """MH uses raw counts (rma.mh(add=0)): B (0/15 vs 6/15) stays in, without its own estimate."""
    analysis = run_pool(two_arm, outcome="closure", method="MH", cc=0, multiarm="keep")
    ids = [s.study_id for s in analysis.studies]
    assert ids == ["A", "B", "E", "G1", "G2"]
    b = analysis.studies[1]
    assert math.isnan(b.yi) and not b.cc_added and b.weight > 0
    assert "B: no study-level RR without a continuity correction (--cc 0); still pooled by MH " \
           "from the raw counts" in analysis.notes
    # The MH estimate does not depend on the correction.
    assert analysis.result.theta == approx(POOL["two_arm"]["measures"]["RR"]["fits"]["MH"]["theta"])


def test_mh_k1_zero_cell_without_cc_is_not_estimable(tmp_path):
    table = table_of(tmp_path, [row("Z", 0, 10, 4, 10)])
    with pytest.raises(UsageError, match="Z .row 2. zero cell and no continuity correction"):
        run_pool(table, outcome="closure", method="MH", cc=0)


def test_inverse_variance_with_cc_zero_leaves_out_the_zero_cell_study(two_arm):
    analysis = run_pool(two_arm, outcome="closure", method="FE", cc=0, multiarm="keep")
    reasons = {e.study_id: e.reason for e in analysis.excluded}
    assert "B" in reasons and "no continuity correction" in reasons["B"]
    assert analysis.k == 4


def test_events_in_everyone_of_both_arms_is_dropped_for_or_kept_for_rd(tmp_path):
    table = table_of(tmp_path, [row("A", 5, 10, 2, 10), row("B", 8, 8, 9, 9), row("C", 4, 9, 3, 11)])
    odds = run_pool(table, outcome="closure", measure="OR", method="FE")
    assert [e.study_id for e in odds.excluded] == ["B"]
    assert "every participant of both arms" in odds.excluded[0].reason
    diff = run_pool(table, outcome="closure", measure="RD", method="FE")
    assert diff.k == 3 and diff.excluded == ()


def test_shared_control_note_needs_same_trial_and_identical_control(tmp_path):
    rows = [row("D1", 3, 10, 2, 12, trial="X"), row("D2", 5, 10, 2, 12, trial="X"),
            row("D3", 6, 10, 3, 12, trial="X"), row("Y1", 4, 10, 2, 12, trial="Y")]
    analysis = run_pool(table_of(tmp_path, rows), outcome="closure", method="FE", multiarm="keep")
    shared = [n for n in analysis.notes if "share one control arm" in n]
    assert shared == ["trial X: D1, D2 share one control arm (2/12), counted 2 times (--multiarm keep): "
                      "this overstates the precision; --multiarm combine or split counts it once"]


def test_single_arm_measure_never_warns_about_shared_controls(tmp_path):
    rows = [row("D1", 3, 10, 2, 12, trial="X"), row("D2", 5, 10, 2, 12, trial="X"), row("S", 4, 9)]
    analysis = run_pool(table_of(tmp_path, rows), outcome="closure", measure="PLO")
    assert not any("share one control arm" in n for n in analysis.notes)
    assert any("treatment arms of 2 two-arm rows are pooled" in n for n in analysis.notes)


def test_k1_under_hksj_falls_back_to_z(tmp_path):
    table = table_of(tmp_path, POOL["k_one"]["rows"])
    analysis = run_pool(table, outcome="combined_remission", hksj=True)
    assert analysis.k == 1 and analysis.result.test == "z" and analysis.common is None
    assert analysis.result.estimate == approx(POOL["k_one"]["studies"]["estimate"])


def test_fragile_notes_only_for_random_effects(tmp_path):
    table = table_of(tmp_path, POOL["k_two"]["rows"])
    fixed = run_pool(table, outcome="closure", method="FE")
    assert not any("--hksj" in n or "prediction interval" in n for n in fixed.notes)
    hksj = run_pool(table, outcome="closure", hksj=True)
    assert not any("z-based CI is too narrow" in n for n in hksj.notes)
    assert any("tau² estimated as 0 from k = 2" in n for n in hksj.notes)


def test_no_counts_reason_quotes_the_printed_percentage_and_note(tmp_path):
    rows = [row("A", 5, 10, 2, 10), row("B", 3, 9, 1, 8),
            dict(study_id="P", outcome="closure", pct_t="43.3", pct_c="20.1",
                 note="only percentages in the abstract")]
    analysis = run_pool(table_of(tmp_path, rows), outcome="closure", method="FE", multiarm="keep")
    assert analysis.excluded[0].reason == ("no counts in the source: 43.3% vs 20.1% printed; "
                                          "only percentages in the abstract")


@pytest.mark.parametrize("options, message", [
    (dict(measure="PLO", method="MH"), "method='MH' pools RR, OR or RD"),
    (dict(measure="RD", method="PETO"), "method='PETO' pools odds ratios only"),
    (dict(measure="PR", method="PETO"), "method='PETO' pools odds ratios only"),
    (dict(measure="ZZ"), "unknown measure"),
    (dict(method="GLM"), "unknown method"),
    (dict(method="GLMM", measure="RR"), "method='GLMM' fits proportions (PLO) or odds ratios (OR)"),
    (dict(method="GLMM", multiarm="split"), "method='GLMM' fits binomial counts, and multiarm='split'"),
    (dict(method="GLMM", measure="PLO", hksj=True), "hksj applies to inverse-variance fits"),
    (dict(multiarm="merge"), "multiarm='merge': choose one of combine, split, keep"),
    (dict(study_ci="exact"), "study_ci='exact' applies to single-arm proportions"),
    (dict(study_ci="score"), "study_ci='score': choose one of exact, wilson, wald"),
    (dict(method="PETO", hksj=True), "hksj applies to inverse-variance fits"),
])
def test_option_errors(two_arm, options, message):
    """The library speaks its own vocabulary (the CLI shows the same messages with its flags)."""
    with pytest.raises(UsageError, match=re.escape(message)):
        run_pool(two_arm, outcome="closure", **options)


def test_option_errors_name_flags_on_the_command_line(two_arm, run_cli):
    code, out, err = run_cli("pool", "--data", two_arm.path, "--outcome", "closure",
                             "--method", "GLMM", "--multiarm", "split")
    assert code == 2
    assert err.strip() == ("msc-meta: error: --method GLMM fits binomial counts, and --multiarm split "
                           "makes the shared control's counts non-integer; use --multiarm combine "
                           "(or keep)")


def test_one_options_object_is_built_once_and_carried(two_arm):
    from msc_meta.pooling.options import PoolOptions

    options = PoolOptions.build(method="dl", hksj=True, level=90)
    analysis = run_pool(two_arm, outcome="closure", options=options)
    assert analysis.options.method == "DL" and analysis.options.level == 90.0
    assert analysis.options.measure == "RR" and analysis.method == "DL" and analysis.hksj
    with pytest.raises(UsageError, match="not both"):
        run_pool(two_arm, outcome="closure", options=options, method="FE")


def test_mh_on_single_arm_data_is_a_usage_error(tmp_path):
    table = table_of(tmp_path, [row("A", 5, 10), row("B", 3, 9)])
    with pytest.raises(UsageError, match="every selected row with counts is single-arm"):
        run_pool(table, outcome="closure", method="MH")


# ---------------------------------------------------------------- --by

def test_by_chooses_one_measure_and_keeps_empty_groups(two_arm):
    analyses, test = run_pool_by(two_arm, "trial", outcome="closure")
    groups = {a.group: a for a in analyses}
    assert [a.group for a in analyses] == ["T1", "T2", "T3", "T4", "T5", "T6", "T7"]
    assert {a.measure for a in analyses} == {"RR"}          # T6 alone would default to PLO
    assert groups["T6"].result is None and groups["T6"].excluded[0].reason.startswith("single-arm")
    assert groups["T3"].result is None and groups["T4"].result is None
    assert test.groups == ("T1", "T2", "T5", "T7") and test.df == 3
    text = report_text(analyses, test, grouped=True)
    assert "Nothing pooled in this group." in text
    assert "not in the test (nothing pooled): T3, T4, T6" in text


def test_mixed_time_points_are_refused_even_with_by(tmp_path):
    rows = [row("A", 5, 10, 2, 10, timepoint_weeks=12), row("B", 3, 9, 1, 8, timepoint_weeks=104),
            row("C", 4, 9, 1, 8, timepoint_weeks=24)]
    table = table_of(tmp_path, rows)
    with pytest.raises(UsageError, match="several time points"):
        run_pool(table, outcome="closure")
    # --by the time point itself is not possible either: select() refuses mixed time points first.
    with pytest.raises(UsageError, match="several time points"):
        run_pool_by(table, "timepoint_weeks", outcome="closure")


def test_subgroup_test_against_metafor():
    """Q_between as rma(theta_g, sei=se_g, method="FE")$QE over iv, local and a k = 1 group."""
    ref = POOL["two_arm"]["by_route"]
    fits = [(g, ref[g]["theta"], ref[g]["se"]) for g in ("iv", "local")]
    fits.append(("(blank)", ref["blank_theta"], ref["blank_se"]))
    analyses = [_analysis_with(g, theta, se) for g, theta, se in fits]
    analyses.append(_analysis_with("empty", None, None))
    test = subgroup_test(analyses, "route")
    assert test.q_between == approx(ref["q_between"])
    assert test.pval == approx(ref["pval"])
    assert test.df == 2 and test.groups == ("iv", "local", "(blank)")
    assert subgroup_test(analyses[:1], "route") is None


def _analysis_with(group, theta, se):
    result = None
    if theta is not None:
        result = PoolResult(measure="RR", method="REML", k=2, theta=theta, se=se, theta_ci_low=0.0,
                            theta_ci_high=0.0, estimate=math.exp(theta), ci_low=0.0, ci_high=0.0,
                            stat=0.0, pval=1.0, tau2=0.0, tau=0.0, i2=0.0, h2=1.0, q=0.0, q_df=1,
                            q_pval=1.0, weights=(50.0, 50.0), random=True)
    return Analysis(outcome="closure", timepoint_weeks=None, unit=None, group=group, measure="RR",
                    result=result, common=None, studies=(), excluded=(), notes=(), by="route")


# ---------------------------------------------------------------- the table renderer

def test_report_fits_80_columns_with_long_study_names(tmp_path):
    rows = [row("Garcia-Olmo 2009 FATT-1 adipose", 17, 24, 3, 25),
            row("Panes 2016 ADMIRE-CD (Cx601) intention to treat", 53, 107, 36, 105),
            row("Molendijk 2015 dose cohort 3e7", 8, 15, 3, 6)]
    analysis = run_pool(table_of(tmp_path, rows), outcome="closure")
    text = report_text([analysis], width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "Garcia-Olmo 2009" in text
    assert "with k = 3 the z-based CI is too narrow" in text


def test_axis_marks_null_and_clips_with_arrows():
    axis = Axis("RR", [0.5, 2.0, 1e-9, 1e9], core=[0.5, 2.0], width=21)
    line = axis.draw(1.0, 1e-9, 1e9)
    assert line[0] == "<" and line[-1] == ">" and "■" in line
    pooled = axis.draw(1.2, 0.9, 1.6, pooled=True)
    assert "◆" in pooled and "╋" in pooled
    assert axis.ticks().strip().startswith("0.")
    empty = axis.draw(float("nan"), float("nan"), float("nan"))
    assert set(empty) <= {" ", "┊"}


def test_number_formatting():
    assert fmt(1.44470404984424) == "1.445"
    assert fmt(None) == "NA" and fmt(float("nan")) == "NA"
    assert fmt(123456.0) == "1.23e+05" and fmt(0.00001234) == "1.23e-05"
    assert fmt_p(0.0004) == "p < 0.001" and fmt_p(0.0456) == "p = 0.046"


# ---------------------------------------------------------------- guidance

DENSE = [row("A", 6, 20, 3, 20), row("B", 8, 22, 4, 21), row("C", 5, 18, 2, 19)]
SPARSE = [row("A", 6, 20, 0, 20), row("B", 8, 22, 4, 21), row("C", 5, 18, 2, 19)]
PROPS = [row("A", 0, 12), row("B", 4, 10), row("C", 6, 11)]


@pytest.mark.parametrize("rows, options, expected", [
    (DENSE, {}, "k = 3: tau² is barely estimable and the z-based random-effects CI ignores its "
                "uncertainty; consider `--hksj` (t with k-1 df) or `msc-meta bayes`"),
    (DENSE, dict(hksj=True), "k = 3: between-study variation is barely estimable from 3 studies; "
                             "see how far the result depends on it; consider `msc-meta bayes`"),
    (DENSE, dict(method="FE"), "k = 3: between-study variation is barely estimable"),
    (SPARSE, dict(method="FE"), "k = 3 with zero-event arms: normal-approximation inverse-variance "
                                "pooling of continuity-corrected RRs is unreliable here; consider "
                                "`--method MH --cc 0`"),
    # no GLMM offered: with zero cells only a fit could tell whether it converges (guidance)
    (SPARSE, dict(measure="OR"), "consider `--method MH --cc 0` (Mantel-Haenszel on the raw counts), "
                                 "`--method PETO --cc 0` (Peto, raw counts) or `msc-meta bayes`"),
    (SPARSE, dict(measure="OR", method="GLMM"), "k = 3 with zero-event arms: the GLMM uses the exact "
                                                "binomial likelihood"),
    (SPARSE, dict(method="MH"), "k = 3 with zero-event arms: MH already pools the raw counts"),
    (SPARSE[:1], {}, "k = 1 with zero-event arms: one comparison; its RR and CI rest on the 0.5 "
                     "continuity correction; consider `msc-meta fragility` (Fisher's exact test, no "
                     "continuity correction)"),
    (DENSE[:1], {}, "k = 1: one comparison, nothing to pool"),
    (PROPS, {}, "k = 3 with zero-event studies (0/n): normal-approximation random effects of "
                "proportions are unreliable here; consider `--method GLMM` (exact binomial likelihood, "
                "no continuity correction) or `msc-meta bayes`"),
    (PROPS, dict(measure="PFT", method="FE"), "consider `--measure PLO --method GLMM`"),
    (PROPS[1:2], {}, "k = 1: a single proportion, nothing to pool; its exact (Clopper-Pearson)"),
    ([row("A", 12, 12), row("B", 4, 10), row("C", 6, 11), row("D", 5, 9), row("E", 3, 8)],
     dict(method="DL"), "k = 5 with all-event studies (n/n): normal-approximation random effects"),
])
def test_guidance(tmp_path, rows, options, expected):
    analysis = run_pool(table_of(tmp_path, rows), outcome="closure", **options)
    assert analysis.guidance is not None and expected in analysis.guidance
    assert "\n" not in analysis.guidance


def test_no_guidance_for_enough_dense_studies(tmp_path):
    rows = [row(f"S{i}", 5 + i, 20, 4, 20) for i in range(5)]
    assert run_pool(table_of(tmp_path, rows), outcome="closure").guidance is None
    props = [row(f"S{i}", 3 + i, 12) for i in range(6)]
    assert run_pool(table_of(tmp_path, props, "p.csv"), outcome="closure").guidance is None
