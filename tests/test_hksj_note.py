"""pool says when the HKSJ interval comes out narrower than the common-effect interval."""

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
