"""Notes pool adds where metafor stays silent: HKSJ narrower than FE, PR outside [0, 1], GLMM near separation."""

from __future__ import annotations

from msc_meta.data import load_table
from msc_meta.pooling.analysis import run_pool

NOTE = "the HKSJ CI is narrower than the common-effect CI"


def _fistula_level(**options):
    return run_pool(load_table(), outcome="fistula_closure", timepoint=208, unit="fistula",
                    measure="RR", multiarm="split", **options)


def test_note_when_hksj_is_narrower():
    analysis = _fistula_level(hksj=True)
    r, c = analysis.result, analysis.common
    assert r.theta_ci_high - r.theta_ci_low < c.theta_ci_high - c.theta_ci_low
    assert any(n.startswith(NOTE) for n in analysis.notes)


def test_no_note_without_hksj():
    assert not any(n.startswith(NOTE) for n in _fistula_level().notes)


def _tiny(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("study_id,outcome,events_t,n_t\na,x,1,4\nb,x,0,5\nc,x,4,4\n")
    return load_table(path)


def test_pr_interval_outside_0_1_is_noted(tmp_path):
    analysis = run_pool(_tiny(tmp_path), outcome="x", measure="PR")
    assert analysis.result.ci_low < 0 or analysis.result.ci_high > 1
    assert any(n.startswith("the PR confidence interval runs below 0 or above 1") for n in analysis.notes)
    plo = run_pool(_tiny(tmp_path), outcome="x", measure="PLO")
    assert not any("runs below 0" in n for n in plo.notes)


def test_glmm_near_separation_is_noted(tmp_path):
    analysis = run_pool(_tiny(tmp_path), outcome="x", measure="PLO", method="GLMM")
    assert analysis.result.tau2 > 9
    assert any(n.startswith("tau on the logit scale is 4.0: the counts are close to separation")
               for n in analysis.notes)
