"""Issue 11 (items 3, 4): no hang and no silent wrong number at extreme inputs.

References are computed here with mpmath at 60 digits (exact algebra of the
intercept-only model, no cancellation to fear), not with R: metafor itself
loops for ever on the tables below (step halving of a -Inf step) or reports
I² = 297 %.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest

import msc_meta
from msc_meta.effects import escalc
from msc_meta.errors import UsageError
from msc_meta.pooling import tau2 as T
from msc_meta.pooling.exact import fisher_exact_pvalue
from msc_meta.pooling.fragility import _fragility_index_scan, _p, _p_windowed, fragility_index
from msc_meta.pooling.metareg import fit_mods
from msc_meta.pooling.rma import fit_batch

SRC = str(Path(msc_meta.__file__).resolve().parents[1])   # the msc_meta under test, for the CLI
mp.mp.dps = 60

# ---------------------------------------------------------------------------
# 60-digit reference
# ---------------------------------------------------------------------------


def _mp(xs):
    return [mp.mpf(float(x)) for x in xs]


def _parts(y, v, t):
    w = [1 / (vi + t) for vi in v]
    S = mp.fsum(w)
    mu = mp.fsum(wi * yi for wi, yi in zip(w, y)) / S
    return w, S, mu


def _q(y, v, t):
    w, _, mu = _parts(y, v, t)
    return mp.fsum(wi * (yi - mu) ** 2 for wi, yi in zip(w, y))


def _u(y, v, t, method):
    """REML / ML score (metafor's Fisher-scoring numerator)."""
    w, S, mu = _parts(y, v, t)
    ypy = mp.fsum((wi * (yi - mu)) ** 2 for wi, yi in zip(w, y))
    return ypy - S if method == "ML" else ypy - (S - mp.fsum(x * x for x in w) / S)


def _bisect(f, lo, hi):
    for _ in range(300):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


def _loglik(y, v, t, method):
    w, S, mu = _parts(y, v, t)
    ll = -mp.fsum(mp.log(vi + t) for vi in v) / 2 - mp.fsum(wi * (yi - mu) ** 2 for wi, yi in zip(w, y)) / 2
    return ll - mp.log(S) / 2 if method == "REML" else ll


def ref_tau2(yi, vi, method):
    """τ² at 60 digits.

    DL closed form; PM/EB the root of the decreasing Q(τ²) = k-1; ML/REML the
    global maximiser on [0, ∞): every down-crossing of the score on a
    log grid 1e-30..1e7 is bisected and the one of largest likelihood (or 0)
    kept, since at these ratios the likelihood can have two modes.
    """
    y, v = _mp(yi), _mp(vi)
    k = len(y)
    if method == "DL":
        w = [1 / x for x in v]
        S = mp.fsum(w)
        return max(mp.mpf(0), (_q(y, v, 0) - (k - 1)) / (S - mp.fsum(x * x for x in w) / S))
    if method in ("PM", "EB"):
        f = lambda t: _q(y, v, t) - (k - 1)  # noqa: E731
        if f(mp.mpf(0)) <= 0:
            return mp.mpf(0)
        hi = mp.mpf(1)
        while f(hi) > 0:
            hi *= 2
        return _bisect(f, mp.mpf(0), hi)
    f = lambda t: _u(y, v, t, method)  # noqa: E731
    grid = [mp.mpf(0)] + [mp.mpf(10) ** e for e in range(-30, 8)]
    fs = [f(t) for t in grid]
    roots = [_bisect(f, a, b) for a, b, fa, fb in zip(grid, grid[1:], fs, fs[1:]) if fa > 0 >= fb]
    return max([mp.mpf(0)] + roots, key=lambda t: _loglik(y, v, t, method))


def ref_fit(yi, vi, tau2):
    """θ, typical variance s² and I² at 60 digits for a given τ²."""
    y, v = _mp(yi), _mp(vi)
    _, _, mu = _parts(y, v, tau2)
    w = [1 / x for x in v]
    S = mp.fsum(w)
    s2 = (len(w) - 1) * S / (S * S - mp.fsum(x * x for x in w))
    return float(mu), float(s2), float(100 * tau2 / (s2 + tau2))


def within(seconds, fn, *args, **kw):
    """``fn(*args, **kw)``, failing the test (not hanging it) if it takes over ``seconds``.

    pytest-timeout is not a dependency; a daemon thread is left behind on
    failure, which is harmless for a failing run.
    """
    box = {}

    def run():
        try:
            box["value"] = fn(*args, **kw)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
            box["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {seconds} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _table(rows, measure):
    a = np.array(rows, dtype=float)
    return escalc(measure, a[:, 0], a[:, 1], a[:, 2], a[:, 3])


# RD with 999,999,999/10⁹ beside small studies: vi 2e-18 against ~1e-2
RD_EXTREME = [
    [(999999999, 10**9, 999999999, 10**9), (1, 5, 16, 28), (3, 40, 3, 7)],
    [(999999999, 10**9, 999999999, 10**9), (3, 5, 40, 47), (7, 10, 33, 38)],
    [(999999999, 10**9, 999999999, 10**9), (23, 29, 11, 14), (5, 17, 1, 8), (24, 48, 9, 33)],
    [(999999999, 10**9, 1, 10**9), (12, 40, 8, 38), (20, 50, 10, 45), (7, 30, 9, 31), (25, 40, 5, 38)],
]

# events = n - 1 at n = 5e8 (RR) / 1e8 (RD): metafor's REML step became -Inf and never halved
HANG_TABLES = {
    "RR": [(499999997, 500000000, 499999998, 500000000), (125, 179, 9, 11), (63, 114, 36, 78),
           (15, 27, 16, 40)],
    "RD": [(499999998, 500000000, 499999999, 500000000), (58, 98, 30, 49)],
    "OR": [(499999997, 500000000, 499999998, 500000000), (125, 179, 9, 11), (63, 114, 36, 78),
           (15, 27, 16, 40)],
}


# ---------------------------------------------------------------------------
# A. never hang
# ---------------------------------------------------------------------------

def _run_cli(args, csv_text, tmp_path, timeout=60):
    data = tmp_path / "t.csv"
    data.write_text(csv_text)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "msc_meta", *args, "--data", str(data), "--outcome", "x"],
                          capture_output=True, text=True, timeout=timeout, env=env)
    return proc, time.monotonic() - t0


def _csv(rows):
    lines = ["study_id,outcome,events_t,n_t,events_c,n_c"]
    lines += [f"S{i},x,{a},{b},{c},{d}" for i, (a, b, c, d) in enumerate(rows)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("measure", ["RR", "RD", "OR"])
def test_pool_with_events_n_minus_1_returns_promptly(measure, tmp_path):
    rows = HANG_TABLES[measure]
    proc, secs = _run_cli(["pool", "--measure", measure, "--json"], _csv(rows), tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    es = _table(rows, measure)
    want = float(ref_tau2(es.yi, es.vi, "REML"))
    assert out["tau2"] == pytest.approx(want, rel=1e-6, abs=1e-12)
    assert secs < 60


def test_reml_score_in_the_hang_case_is_finite_at_the_boundary():
    # before: tr(PP) = Σw² - 2Σw³/Σw + (Σw²)²/(Σw)² rounded to exactly 0 at τ² = 3.6e-11
    es = _table(HANG_TABLES["RR"], "RR")
    Y, V, M, k = T.as_batch(es.yi, es.vi)
    for t in (3.6e-11, 1e-14, 0.0):
        u, info = T._score("REML", Y, V, M, k, np.array([t]))
        y, v = _mp(es.yi), _mp(es.vi)
        w = [1 / (x + t) for x in v]
        S = mp.fsum(w)
        P = [[(w[i] if i == j else 0) - w[i] * w[j] / S for j in range(4)] for i in range(4)]
        tr_pp = mp.fsum(P[i][j] ** 2 for i in range(4) for j in range(4))
        assert info[0] == pytest.approx(float(tr_pp), rel=1e-9)
        assert u[0] == pytest.approx(float(_u(y, v, mp.mpf(t), "REML")), rel=1e-9)


def test_step_halving_is_bounded_even_for_infinite_steps():
    adj = T._halve_to_nonnegative(np.array([0.5, 0.5, 0.0]), np.array([-np.inf, -3.0, -np.inf]))
    assert adj.tolist() == [-0.5, -0.375, 0.0]


# ---------------------------------------------------------------------------
# B. never a silent wrong number
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("rows", RD_EXTREME)
@pytest.mark.parametrize("method", ["REML", "ML", "PM", "EB", "DL"])
def test_extreme_variance_ratio_matches_60_digit_reference(rows, method):
    es = _table(rows, "RD")
    assert es.vi.max() / es.vi.min() > 1e15
    fit = within(20, fit_batch, es.yi, es.vi, method=method)
    t = ref_tau2(es.yi, es.vi, method)
    theta, s2, i2 = ref_fit(es.yi, es.vi, t)
    assert fit.converged[0]
    assert fit.tau2[0] == pytest.approx(float(t), rel=1e-6, abs=1e-15)
    assert fit.theta[0] == pytest.approx(theta, rel=1e-6)
    assert fit.s2[0] == pytest.approx(s2, rel=1e-9)
    assert fit.i2[0] == pytest.approx(i2, rel=1e-6, abs=1e-9)


def test_extreme_rd_table_real_values():
    # before: tau² 0.048585, I² 0 and "tau² is estimated at its boundary 0"
    es = _table(RD_EXTREME[0], "RD")
    fit = within(20, fit_batch, es.yi, es.vi, method="REML")
    assert fit.tau2[0] == pytest.approx(0.0395082106661751, rel=1e-9)
    assert fit.i2[0] == pytest.approx(67.16521844420265, rel=1e-6)
    assert not any("boundary" in n for n in fit.notes[0])


def test_typical_variance_needs_no_cancellation():
    v = np.array([2e-18, 0.01, 0.02])
    w = [1 / mp.mpf(x) for x in v]
    S = mp.fsum(w)
    want = 2 * S / (S * S - mp.fsum(x * x for x in w))
    assert T.typical_variance(v[None, :], np.ones((1, 3), bool))[0] == pytest.approx(float(want), rel=1e-12)


def test_variance_ratio_note_follows_metafor_threshold():
    extreme = fit_batch([0.1, 0.2, 0.3], [1e-8, 0.05, 0.1], method="REML")
    assert any("ratio of largest to smallest sampling variance is 1e+07" in n for n in extreme.notes[0])
    ordinary = fit_batch([0.1, 0.2, 0.3], [1e-6, 0.05, 0.09], method="REML")
    assert not any("sampling variance" in n for n in ordinary.notes[0])


# ---------------------------------------------------------------------------
# fragility: bisection instead of the O(n²) scan
# ---------------------------------------------------------------------------



def _fast(a, n1, c, n2, alpha):
    r = fragility_index(a, n1, c, n2, alpha)
    return r.fragility_index, r.changed_arm


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_fragility_bisection_equals_scan_on_every_small_table(alpha):
    # the bisection relies on p moving monotonically along each path; check
    # it on every table with arms of up to 9 patients (exhaustive to 18 was
    # checked while writing this: 107,163 cases, no difference)
    for n1 in range(1, 10):
        for n2 in range(1, 10):
            for a in range(n1 + 1):
                for c in range(n2 + 1):
                    assert _fast(a, n1, c, n2, alpha) == _fragility_index_scan(a, n1, c, n2, alpha), \
                        (a, n1, c, n2, alpha)


def test_fragility_bisection_equals_scan_on_random_tables():
    rng = np.random.default_rng(11)
    for _ in range(150):
        n1, n2 = (int(x) for x in rng.integers(1, 120, 2))
        a, c = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
        alpha = float(rng.choice([0.05, 0.01, 0.1]))
        assert _fast(a, n1, c, n2, alpha) == _fragility_index_scan(a, n1, c, n2, alpha), (a, n1, c, n2, alpha)


def test_windowed_fisher_p_equals_full_sum():
    rng = np.random.default_rng(5)
    for _ in range(40):
        n1, n2 = (int(x) for x in rng.integers(5001, 40000, 2))
        a = int(rng.integers(0, n1 + 1))
        c = int(np.clip(round(a * n2 / n1) + rng.integers(-300, 300), 0, n2))
        full = fisher_exact_pvalue(a, n1 - a, c, n2 - c)
        assert _p_windowed(a, n1, c, n2) == pytest.approx(full, rel=1e-12, abs=1e-300)
        assert _p(a, n1, c, n2) == pytest.approx(full, rel=1e-12, abs=1e-300)


def test_fragility_large_tables_return_promptly():
    # before: 1/1 vs 50,000/100,000 ran > 60 s (O(m²) splits), 1 vs 10⁷ never returned
    t0 = time.monotonic()
    r = within(30, fragility_index, 1, 1, 50000, 100000)
    assert (r.significant, r.fragility_index, r.changed_arm) == (False, 45001, "control")
    r = within(30, fragility_index, 60000, 100000, 1, 100000)
    assert (r.significant, r.fragility_index, r.changed_arm) == (True, 59569, "control")
    assert time.monotonic() - t0 < 30


def test_fragility_refuses_beyond_stated_size():
    with pytest.raises(UsageError, match="200,000"):
        within(5, fragility_index, 1, 10, 1, 10**7)


def test_metareg_eb_does_not_stall_at_extreme_variance_ratio():
    # before: fit_mods EB stopped at tau² 7.4e-18 (steps < 1e-12 only because Σw ~ 1e18)
    es = _table(RD_EXTREME[2], "RD")
    fit = within(20, fit_mods, es.yi, es.vi, np.ones((len(es.yi), 1)), method="EB")
    assert fit.tau2 == pytest.approx(float(ref_tau2(es.yi, es.vi, "EB")), rel=1e-6)
    assert fit.tau2 == pytest.approx(0.004821209689976694, rel=1e-6)


@pytest.mark.parametrize("cmd", [["bayes", "--measure", "RR"],
                                 ["export", "--all", "--measure", "RR", "--force", "-o", "{out}"]])
def test_bayes_and_export_return_promptly_on_the_hang_table(cmd, tmp_path):
    # before: both looped for ever in REML step halving (bayes prints the REML fit beside)
    args = [a.replace("{out}", str(tmp_path / "e.json")) for a in cmd]
    if args[0] == "export":
        data = tmp_path / "t.csv"
        data.write_text(_csv(HANG_TABLES["RR"]))
        env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run([sys.executable, "-m", "msc_meta", *args, "--data", str(data)],
                              capture_output=True, text=True, timeout=60, env=env)
    else:
        proc, _ = _run_cli(args, _csv(HANG_TABLES["RR"]), tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_meta_regression_says_when_the_variance_ratio_is_extreme():
    """fit_mods is not yet stable at ratios of 1e15: it must not print its number silently."""
    yi = np.array([0.0, 0.3, -0.2, 0.5])
    vi = np.array([1e-16, 0.05, 0.08, 0.1])
    X = np.column_stack([np.ones(4), np.array([1.0, 2.0, 3.0, 4.0])])
    fit = fit_mods(yi, vi, X, names=["intercept", "x"], method="DL")
    assert any("ratio of largest to smallest sampling variance" in n for n in fit.notes)
    ordinary = fit_mods(yi, np.array([0.02, 0.05, 0.08, 0.1]), X, names=["intercept", "x"], method="DL")
    assert not any("ratio of largest" in n for n in ordinary.notes)
