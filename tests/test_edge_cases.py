"""Numerical edge cases, each with the behaviour we promise, end to end where it matters.

===================================  ==================================================
situation                            promised behaviour
===================================  ==================================================
all studies identical                tau² = 0, I² = 0, Q = 0 for every estimator (as
                                     metafor); the random-effects row equals the common
                                     one; a note says tau² = 0 proves nothing with few
                                     studies. Under --hksj se = 0 and the CI has no
                                     width (as metafor), and a note says so.
tau² on the boundary (Q < k - 1)     tau² = 0 exactly, never negative; a note says the
                                     estimate was truncated (DL, HE, HS) or sits at
                                     its boundary (REML, ML, PM, EB).
REML/ML/EB not converging            exit 1, one line naming the estimator, the
                                     iteration limit and an alternative (PM or DL);
                                     the alternative then works.
k = 2 with --hksj                    t with 1 df (metafor test="knha"): a very wide CI,
                                     no hts prediction interval, notes on both.
0/n and n/n under PR, PLO, PFT, PAS  PR and PLO get the continuity correction, PFT and
                                     PAS none (escalc); every number finite and the
                                     pooled proportion and CI inside [0, 1] (PLO, PFT,
                                     PAS); all-zero studies give a pooled value near 0.
very large n (1e8)                   counts up to 10^9 load; effect sizes and variances
                                     stay accurate (no cancellation), REML converges.
===================================  ==================================================

Reference values come from the committed metafor fixtures
(tests/fixtures/rma_edge.json, tests/fixtures/effects_escalc.json; metafor
3.8.1) where the case is there, else from closed-form formulas.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from msc_meta.errors import ComputationError
from msc_meta.pooling.rma import fit_batch, pool_rma

FIXTURES = Path(__file__).parent / "fixtures"
RE_METHODS = ("DL", "REML", "ML", "PM", "HE", "SJ", "HS", "EB")
ALL_IV = ("FE",) + RE_METHODS
PREFIX = "msc-meta: error: "


def _fixture_cases(name: str) -> dict:
    doc = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return {case["name"]: case for case in doc["cases"]}


@pytest.fixture(scope="module")
def rma_edge():
    return _fixture_cases("rma_edge.json")


def approx(value, rel=1e-6, abs_=1e-10):
    return pytest.approx(value, rel=rel, abs=abs_)


def _csv(rows, columns=("study_id", "outcome", "events_t", "n_t", "events_c", "n_c")) -> str:
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join("" if v is None else str(v) for v in row))
    return "\n".join(lines) + "\n"


def _pool_json(run_cli, path, *options):
    code, out, err = run_cli("pool", "--data", str(path), "--outcome", "x", "--json", *options)
    assert "Traceback" not in err
    assert code == 0, (code, err)
    return json.loads(out)


def _notes(doc) -> str:
    return " | ".join(doc.get("notes") or [])


# --------------------------------------------------------------------------- identical studies

@pytest.mark.parametrize("method", ALL_IV)
@pytest.mark.parametrize("test", ["z", "knha"])
def test_identical_estimates_match_metafor(rma_edge, method, test):
    case = rma_edge[f"identical_{method}_{test}"]
    r = pool_rma(case["yi"], case["vi"], method=method, hksj=test == "knha")
    assert r.tau2 == 0.0 and r.i2 == approx(0.0) and r.q == approx(0.0)
    assert r.theta == approx(case["b"]) and r.theta == approx(0.2)
    assert r.se == approx(case["se"])
    assert r.theta_ci_low == approx(case["ci_lb"]) and r.theta_ci_high == approx(case["ci_ub"])
    assert list(r.weights) == [approx(w) for w in case["weights"]]
    if test == "knha":
        # metafor: the HKSJ factor is 0, so se = 0 and the CI collapses to the point
        assert r.se == 0.0 and r.theta_ci_low == r.theta_ci_high == approx(0.2)
        assert any("se = 0" in note for note in r.notes)


IDENTICAL_ROWS = [(f"S{i}", "x", 10, 20, 5, 20) for i in range(1, 5)]


@pytest.mark.parametrize("method", ALL_IV)
def test_identical_studies_through_the_cli(run_cli, tmp_table, method):
    path = tmp_table(_csv(IDENTICAL_ROWS))
    doc = _pool_json(run_cli, path, "--method", method)
    assert doc["k"] == 4
    assert doc["tau2"] == approx(0.0) and doc["i2"] == approx(0.0) and doc["q"] == approx(0.0)
    assert doc["q_pval"] == approx(1.0)
    assert doc["estimate"] == approx(2.0, rel=1e-12)          # RR of every study: (10/20)/(5/20)
    fe = _pool_json(run_cli, path, "--method", "FE")
    assert (doc["ci_low"], doc["ci_high"]) == (approx(fe["ci_low"]), approx(fe["ci_high"]))
    for study in doc["studies"]:
        assert study["weight"] == approx(25.0)
    if method != "FE":
        assert "tau² estimated as 0 from k = 4 studies" in _notes(doc)


def test_identical_studies_with_hksj_have_a_zero_width_ci_and_say_so(run_cli, tmp_table):
    doc = _pool_json(run_cli, tmp_table(_csv(IDENTICAL_ROWS)), "--hksj")
    assert doc["se"] == 0.0
    assert doc["ci_low"] == doc["ci_high"] == approx(2.0, rel=1e-12)
    assert "se = 0" in _notes(doc)


# --------------------------------------------------------------------------- tau² on the boundary

@pytest.mark.parametrize("method", RE_METHODS)
def test_tau2_boundary_matches_metafor_and_is_flagged(rma_edge, method):
    case = rma_edge[f"lowhet_{method}_z"]
    r = pool_rma(case["yi"], case["vi"], method=method)
    assert r.tau2 == approx(case["tau2"]) and r.tau2 >= 0.0
    assert r.i2 == approx(case["I2"]) and r.h2 == approx(case["H2"])
    assert r.theta == approx(case["b"]) and r.se == approx(case["se"])
    assert r.q == approx(case["QE"])
    if case["tau2"] == 0:
        assert r.tau2 == 0.0          # exactly 0, not -1e-17 or 1e-15
        if method in ("DL", "HE", "HS"):
            assert f"{method} estimate of tau² was negative and is truncated at 0" in r.notes
        else:
            assert "tau² is estimated at (or numerically at) its boundary 0" in r.notes
        # the Q-profile CI starts at 0 too
        assert r.tau2_ci_low == 0.0
    else:
        # SJ starts from the (positive) sample variance and never reaches 0
        assert method == "SJ" and r.tau2 > 0


def test_q_exactly_k_minus_1_gives_dl_tau2_zero():
    # two studies at -d and +d with unit variances: Q = 2 d^2 = k - 1 = 1
    d = math.sqrt(0.5)
    r = pool_rma([-d, d], [1.0, 1.0], method="DL")
    assert r.q == approx(1.0) and r.tau2 == approx(0.0, abs_=1e-15) and r.tau2 >= 0.0


# --------------------------------------------------------------------------- non-convergence

WIDE = dict(yi=[-0.9, 0.1, 1.3, 0.4, -0.2, 2.1], vi=[0.05, 0.08, 0.04, 0.1, 0.06, 0.07])


@pytest.mark.parametrize("method,alternative", [
    ("REML", "try --method PM or DL"),
    ("ML", "try --method REML, PM or DL"),
    ("EB", "try --method PM"),
])
def test_iterative_estimator_not_converging_raises_with_an_alternative(method, alternative):
    with pytest.raises(ComputationError) as err:
        pool_rma(WIDE["yi"], WIDE["vi"], method=method, maxiter=1)
    message = str(err.value)
    assert message.startswith(f"{method} did not converge in 1 iteration")
    assert alternative in message
    assert ComputationError.exit_code == 1
    # the same data converge with the default limit
    assert pool_rma(WIDE["yi"], WIDE["vi"], method=method).tau2 > 0


def test_non_convergence_in_a_batch_spoils_only_its_group():
    Y = np.array([WIDE["yi"], [0.2, 0.2, 0.2, 0.2, 0.2, 0.2]])
    V = np.array([WIDE["vi"], WIDE["vi"]])
    fit = fit_batch(Y, V, method="REML", maxiter=1)
    assert list(fit.converged) == [False, True]
    assert math.isnan(fit.theta[0]) or math.isnan(fit.tau2[0])
    assert fit.messages[0].startswith("REML did not converge") and fit.messages[1] is None
    assert fit.theta[1] == approx(0.2) and fit.tau2[1] == 0.0


@pytest.fixture
def tiny_maxiter(monkeypatch):
    """Force every tau² iteration to stop after one step (the CLI has no --maxiter)."""
    import msc_meta.pooling.rma as rma

    real = rma.estimate_tau2

    def one_step(method, Y, V, mask=None, *, tol=rma.DEFAULT_TOL, maxiter=rma.DEFAULT_MAXITER):
        return real(method, Y, V, mask, tol=tol, maxiter=1)

    monkeypatch.setattr(rma, "estimate_tau2", one_step)


def _wide_table(tmp_table):
    # log RRs spread well beyond their sampling error: REML needs several steps
    rows = [("A", "x", 5, 50, 30, 50), ("B", "x", 25, 50, 20, 50), ("C", "x", 40, 50, 10, 50),
            ("D", "x", 12, 40, 14, 40), ("E", "x", 30, 45, 9, 45)]
    return tmp_table(_csv(rows))


def test_reml_not_converging_through_the_cli(run_cli, tmp_table, tiny_maxiter):
    path = _wide_table(tmp_table)
    code, out, err = run_cli("pool", "--data", str(path), "--outcome", "x")
    assert "Traceback" not in err
    assert code == 1, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX + "REML did not converge in 1 iteration")
    assert "try --method PM or DL" in lines[0]
    # the suggested alternative works on the same data, even with the limit forced
    code, out, err = run_cli("pool", "--data", str(path), "--outcome", "x", "--method", "PM", "--json")
    assert code == 0 and json.loads(out)["tau2"] > 0


# --------------------------------------------------------------------------- k = 2 with HKSJ

# dat.bcg trials 1 and 2 (tpos, tpos+tneg, cpos, cpos+cneg): the k2_* cases of rma_edge.json
BCG_2 = [("T1", "x", 4, 123, 11, 139), ("T2", "x", 6, 306, 29, 303)]


@pytest.mark.parametrize("method", ALL_IV)
def test_k2_hksj_matches_metafor_end_to_end(run_cli, tmp_table, rma_edge, method):
    case = rma_edge[f"k2_RR_{method}_knha"]
    doc = _pool_json(run_cli, tmp_table(_csv(BCG_2)), "--measure", "RR", "--method", method, "--hksj")
    assert doc["k"] == 2
    assert [s["yi"] for s in doc["studies"]] == [approx(y) for y in case["yi"]]
    assert doc["theta"] == approx(case["b"]) and doc["se"] == approx(case["se"])
    assert doc["estimate"] == approx(case["natural"]["estimate"])
    assert doc["ci_low"] == approx(case["natural"]["ci_lb"]) and doc["ci_high"] == approx(case["natural"]["ci_ub"])
    assert doc["tau2"] == approx(case["tau2"]) and doc["q"] == approx(case["QE"])
    assert doc["pval"] == approx(case["pval"])
    # t with 1 df: the CI is 12.71 standard errors wide on each side
    assert (doc["theta"] - math.log(doc["ci_low"])) / doc["se"] == approx(12.706204736174698)
    if method != "FE":
        assert doc["pi_low"] is None and doc["pi_high"] is None
        notes = _notes(doc)
        assert "k = 2" in notes and "k ≥ 3" in notes


def test_k2_hksj_prediction_interval_z_is_t1_as_metafor(run_cli, tmp_table, rma_edge):
    case = rma_edge["k2_RR_REML_knha"]
    doc = _pool_json(run_cli, tmp_table(_csv(BCG_2)), "--hksj", "--pi", "z")
    assert doc["pi_low"] == approx(case["natural"]["pi_lb"]) and doc["pi_high"] == approx(case["natural"]["pi_ub"])


# --------------------------------------------------------------------------- extreme proportions

@pytest.fixture(scope="module")
def escalc_cases():
    return _fixture_cases("effects_escalc.json")


@pytest.mark.parametrize("measure", ["PR", "PLO", "PFT", "PAS"])
@pytest.mark.parametrize("method", ["FE", "DL", "REML"])
def test_zero_and_full_proportions_end_to_end(run_cli, tmp_table, escalc_cases, measure, method):
    """0/10, 5/5, 12/40, 12/12, 1/3, 30/31, 0/1: the 'zeros' set of effects_escalc.json (metafor)."""
    case = escalc_cases[f"{measure}_zeros_cc0.5"]
    rows = [(f"S{i + 1}", "x", e, n, None, None)
            for i, (e, n) in enumerate(zip(case["input"]["events_t"], case["input"]["n_t"]))]
    doc = _pool_json(run_cli, tmp_table(_csv(rows)), "--measure", measure, "--method", method)
    assert doc["k"] == 7 and doc["excluded"] == []
    assert [s["yi"] for s in doc["studies"]] == [approx(y) for y in case["yi"]]
    assert [s["vi"] for s in doc["studies"]] == [approx(v) for v in case["vi"]]
    for key in ("theta", "se", "estimate", "ci_low", "ci_high", "tau2", "i2", "q"):
        assert doc[key] is not None and math.isfinite(doc[key]), key
    expected = pool_rma(case["yi"], case["vi"], method=method)
    assert doc["theta"] == approx(expected.theta) and doc["tau2"] == approx(expected.tau2)
    if measure == "PR":
        assert 0.0 <= doc["estimate"] <= 1.0        # the Wald CI itself may leave [0, 1]
    else:
        assert 0.0 <= doc["ci_low"] <= doc["estimate"] <= doc["ci_high"] <= 1.0
    notes = _notes(doc)
    if measure in ("PR", "PLO"):
        assert "continuity correction 0.5 added to every cell of 4 studies" in notes
    else:
        assert "continuity correction" not in notes


@pytest.mark.parametrize("measure", ["PR", "PLO", "PFT", "PAS"])
def test_all_studies_without_events(run_cli, tmp_table, measure):
    rows = [("A", "x", 0, 10, None, None), ("B", "x", 0, 25, None, None), ("C", "x", 0, 40, None, None)]
    doc = _pool_json(run_cli, tmp_table(_csv(rows)), "--measure", measure)
    assert doc["k"] == 3
    if measure == "PAS":
        assert doc["estimate"] == 0.0 and doc["ci_low"] == 0.0      # asin(0) = 0, clamped back
    elif measure == "PFT":
        assert doc["estimate"] == approx(0.0, abs_=1e-12)
    else:
        # the correction puts each study at 0.5/(n+1) > 0; the pool stays small
        assert 0.0 < doc["estimate"] < 0.05
    assert doc["ci_low"] >= 0.0 or measure == "PR"


def test_all_studies_with_every_event(run_cli, tmp_table):
    rows = [("A", "x", 10, 10, None, None), ("B", "x", 25, 25, None, None)]
    for measure in ("PLO", "PFT", "PAS"):
        doc = _pool_json(run_cli, tmp_table(_csv(rows)), "--measure", measure)
        assert 0.9 < doc["estimate"] <= 1.0 and doc["ci_high"] <= 1.0, measure


def test_k1_mh_zero_variance_study_is_refused(run_cli, tmp_table):
    path = tmp_table(_csv([("A", "x", 0, 10, 0, 12)]))
    code, out, err = run_cli("pool", "--data", str(path), "--outcome", "x", "--measure", "RD",
                             "--method", "MH", "--cc", "0")
    assert "Traceback" not in err
    assert code == 2 and "not estimable" in err, (code, out, err)


def test_mh_zero_variance_study_makes_q_infinite_as_metafor(run_cli_process, tmp_table):
    """A study at RD = -1 (0/5 vs 5/5) has vi = 0 under --cc 0: Q = Inf, I² undefined, said in a note.

    metafor 3.8.1: rma.mh(ai=c(0,3,5), n1i=c(5,10,20), ci=c(5,1,2), n2i=c(5,12,18),
    measure="RD", add=0) -> beta -0.000137268359643119, se 0.108965066464133,
    QE Inf, QEp 0, I2 NaN, H2 Inf.
    """
    path = tmp_table(_csv([("A", "x", 0, 5, 5, 5), ("B", "x", 3, 10, 1, 12), ("C", "x", 5, 20, 2, 18)]))
    code, out, err = run_cli_process("pool", "--data", path, "--outcome", "x", "--measure", "RD",
                                     "--method", "MH", "--cc", "0", "--json")
    assert code == 0 and err == ""            # no RuntimeWarning leaks to stderr
    doc = json.loads(out)
    assert doc["theta"] == approx(-0.000137268359643119) and doc["se"] == approx(0.108965066464133)
    assert doc["q"] is None and doc["q_pval"] == 0.0 and doc["i2"] is None and doc["h2"] is None
    assert "Q, I² and H² undefined" in _notes(doc)


# --------------------------------------------------------------------------- GLMM on separated data

def test_glmm_plo_all_studies_at_0_or_100_percent_is_refused(run_cli, tmp_table):
    """lme4/metafor return an arbitrary huge tau² here (the likelihood has no maximum); we refuse."""
    rows = [("A", "x", 0, 20, None, None), ("B", "x", 20, 20, None, None), ("C", "x", 0, 30, None, None)]
    code, out, err = run_cli("pool", "--data", str(tmp_table(_csv(rows))), "--outcome", "x", "--method", "GLMM")
    assert code == 1 and "Traceback" not in err, (code, err)
    assert "complete separation" in err and "--method REML" in err


def test_glmm_or_complete_separation_is_refused_at_once(run_cli, tmp_table):
    """Was a search of many minutes (metafor: log OR 38, tau² 240,000)."""
    rows = [("A", "x", 65, 65, 0, 117), ("B", "x", 49, 49, 0, 90), ("C", "x", 0, 22, 22, 22)]
    code, out, err = run_cli("pool", "--data", str(tmp_table(_csv(rows))), "--outcome", "x", "--measure", "OR",
                             "--method", "GLMM")
    assert code == 1 and "Traceback" not in err, (code, err)
    assert "complete separation" in err


def test_glmm_or_search_is_bounded(monkeypatch):
    """Near separation the likelihood has no usable maximum: the fit stops after its evaluation budget."""
    import msc_meta.pooling.glmm as glmm

    monkeypatch.setattr(glmm, "_OR_MAX_EVALUATIONS", 1500)
    with pytest.raises(ComputationError, match="the GLMM did not converge"):
        glmm.glmm_or([65, 49, 0, 5], [65, 49, 22, 20], [0, 0, 22, 3], [117, 90, 22, 20])
    # an ordinary fit needs fewer evaluations than that
    fit = glmm.glmm_or([3, 0, 5, 7, 2], [10, 12, 5, 30, 8], [1, 2, 4, 2, 3], [10, 11, 6, 28, 9])
    assert math.isfinite(fit.beta) and fit.tau2 >= 0


# --------------------------------------------------------------------------- very large n

def test_very_large_counts_load_and_pool(run_cli, tmp_table):
    n = 100_000_000
    rows = [("A", "x", n // 2, n, n // 4, n), ("B", "x", n - 1, n, n - 3, n), ("C", "x", 1, n, 2, n),
            ("D", "x", 1_000_000_000 // 2, 1_000_000_000, 1_000_000_000 // 2 - 1000, 1_000_000_000)]
    path = tmp_table(_csv(rows))
    for measure in ("RR", "OR", "RD"):
        doc = _pool_json(run_cli, path, "--measure", measure)
        assert doc["k"] == 4, measure
        for key in ("theta", "se", "estimate", "ci_low", "ci_high", "tau2", "i2", "q"):
            assert math.isfinite(doc[key]), (measure, key)
        assert doc["ci_low"] < doc["ci_high"]
        # variances match exact rational arithmetic (no catastrophic cancellation)
        for study, (_, _, a, n1, c, n2) in zip(doc["studies"], rows):
            a, n1, c, n2 = (Fraction(v) for v in (a, n1, c, n2))
            if measure == "RR":
                exact = 1 / a - 1 / n1 + 1 / c - 1 / n2
            elif measure == "OR":
                exact = 1 / a + 1 / (n1 - a) + 1 / c + 1 / (n2 - c)
            else:
                exact = (a / n1) * (1 - a / n1) / n1 + (c / n2) * (1 - c / n2) / n2
            assert study["vi"] == approx(float(exact), rel=1e-6, abs_=0), (measure, study["study_id"])
            assert study["vi"] > 0


def test_very_large_single_arm(run_cli, tmp_table):
    rows = [("A", "x", 37_000_000, 100_000_000, None, None), ("B", "x", 36_999_000, 100_000_000, None, None)]
    doc = _pool_json(run_cli, tmp_table(_csv(rows)), "--measure", "PR", "--method", "REML")
    assert doc["estimate"] == approx(0.369995, rel=1e-6)
    assert 0 < doc["ci_high"] - doc["ci_low"] < 1e-3


# --------------------------------------------------------------------------- levels at the limits

@pytest.mark.parametrize("level", ["50", "99.99"])
def test_extreme_confidence_levels(run_cli, tmp_table, level):
    doc = _pool_json(run_cli, tmp_table(_csv(BCG_2)), "--level", level, "--method", "DL")
    assert doc["ci_low"] < doc["estimate"] < doc["ci_high"]


@pytest.mark.parametrize("level", ["0", "49.9", "100", "nan", "abc"])
def test_confidence_level_out_of_range_is_a_usage_error(run_cli, tmp_table, level):
    code, out, err = run_cli("pool", "--data", str(tmp_table(_csv(BCG_2))), "--outcome", "x", "--level", level)
    assert code == 2 and "Traceback" not in err and out == ""
    # click names the option; 'nan' passes click's range check and is caught by the engine
    assert "--level" in err or "confidence level must be between 0 and 100" in err, err


# --------------------------------------------------------------------------- exports: nothing lost

# Runs `msc-meta export` in a child process whose CSV writer stops half-way
# (after flushing the first half to the temporary file) and waits to be
# killed: the real atomic_write path, interrupted at its worst moment.
_STALLED_EXPORT = r"""
import io, os, sys, time
from pathlib import Path
import msc_meta.report.export as export

real_write_csv = export.write_csv
marker = Path(sys.argv[1])

def stalled_write_csv(rows, stream, *args, **kwargs):
    buffer = io.StringIO()
    real_write_csv(rows, buffer, *args, **kwargs)
    text = buffer.getvalue()
    stream.write(text[: len(text) // 2])
    stream.flush()
    os.fsync(stream.fileno())
    marker.write_text("half written")
    time.sleep(120)
    stream.write(text[len(text) // 2:])

export.write_csv = stalled_write_csv
from msc_meta.cli import main
main(sys.argv[2:])
"""

OLD_EXPORT = "analysis,row_type\nprevious,result\n"


def _interrupted_export(tmp_path, sig):
    """Start an export over an existing file, interrupt it mid-write with ``sig``; return (proc, folder)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "results.csv"
    target.write_text(OLD_EXPORT, encoding="utf-8")
    table = tmp_path / "table.csv"
    table.write_text(_csv(BCG_2 + [("T3", "x", 3, 231, 11, 220), ("T4", "x", 62, 13598, 248, 12867)]),
                     encoding="utf-8")
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", _STALLED_EXPORT, str(marker), "export", "--data", str(table),
                             "--outcome", "x", "-o", str(target), "--force"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.05)
        # the half-written temporary file is there, next to the untouched target
        temps = [p for p in folder.iterdir() if p.name != "results.csv"]
        assert len(temps) == 1 and temps[0].name.startswith(".results.csv.") and temps[0].suffix == ".tmp"
        assert target.read_text(encoding="utf-8") == OLD_EXPORT
        os.kill(proc.pid, getattr(signal, sig))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err, folder


def test_export_killed_mid_write_leaves_the_old_file_intact(tmp_path):
    """SIGKILL (power cut, OOM killer): nothing can clean up, but the old file is never touched.

    os.replace happens only after the whole file is written, so the target is
    either the old file or the complete new one; a SIGKILL can only leave the
    hidden temporary file (``.results.csv.*.tmp``) beside it.
    """
    code, err, folder = _interrupted_export(tmp_path, "SIGKILL")
    assert code == -9
    assert (folder / "results.csv").read_text(encoding="utf-8") == OLD_EXPORT
    others = [p.name for p in folder.iterdir() if p.name != "results.csv"]
    assert all(name.startswith(".results.csv.") and name.endswith(".tmp") for name in others), others


def test_export_interrupted_by_ctrl_c_cleans_up(tmp_path):
    code, err, folder = _interrupted_export(tmp_path, "SIGINT")
    assert code == 130 and "Traceback" not in err, err
    assert "Aborted." in err
    assert sorted(p.name for p in folder.iterdir()) == ["results.csv"]          # no temporary file
    assert (folder / "results.csv").read_text(encoding="utf-8") == OLD_EXPORT


def test_export_terminated_cleans_up(tmp_path):
    """SIGTERM (kill, a CI timeout, systemd stop): the old file stays and no temporary file is left."""
    code, err, folder = _interrupted_export(tmp_path, "SIGTERM")
    assert code == 143 and "Traceback" not in err, (code, err)      # 128 + SIGTERM, as a shell reports it
    assert (folder / "results.csv").read_text(encoding="utf-8") == OLD_EXPORT
    assert sorted(p.name for p in folder.iterdir()) == ["results.csv"]
