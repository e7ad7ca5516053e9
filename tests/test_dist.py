"""msc_meta._dist against scipy.special over wide grids, tails included.

Tolerance 1e-12 relative. Where scipy itself is off by more than that (a
few far-tail points; e.g. chdtrc at df = 1e4 deep in the upper tail, and
stdtrit beyond |t| ~ 1e50), the point is checked against mpmath at 40
digits instead, so the claim is "as accurate as scipy, or closer to the
truth". Values below 1e-290 are left out (subnormal territory).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from msc_meta import _dist as D

sp = pytest.importorskip("scipy.special")

RTOL = 1e-12
DFS = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 24.0, 49.0, 51.0, 100.0, 999.0, 1e4, 1e5]


def _mp():
    return pytest.importorskip("mpmath")


def _rel(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.abs(a - b) / np.abs(b)
    d = np.where(a == b, 0.0, d)
    return d


def check(ours, ref, truth=None, args=(), rtol=RTOL):
    """ours vs scipy's ref; points off by more than rtol must be within rtol
    of ``truth(*point_args)`` (mpmath)."""
    ours = np.asarray(ours, dtype=float)
    ref = np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape
    d = _rel(ours, ref)
    bad = np.nonzero(~(d <= rtol))[0]
    for i in bad:
        point = tuple(np.broadcast_to(a, ours.shape)[i] for a in args)
        assert truth is not None, f"at {point}: ours {ours[i]!r}, scipy {ref[i]!r}, rel {d[i]:.2e}"
        exact = float(truth(*point))
        assert _rel(ours[i], exact) <= rtol, (
            f"at {point}: ours {ours[i]!r}, scipy {ref[i]!r}, mpmath {exact!r}")


# --- mpmath references (40 digits) -----------------------------------------

def mp_t_cdf(t, df):
    mp = _mp()
    mp.mp.dps = 40
    t, df = mp.mpf(float(t)), mp.mpf(float(df))
    half = mp.betainc(df / 2, mp.mpf(1) / 2, 0, df / (df + t * t), regularized=True) / 2
    return half if t < 0 else 1 - half


def mp_t_sf(t, df):
    return mp_t_cdf(-t, df)


def mp_chi2_sf(x, df):
    mp = _mp()
    mp.mp.dps = 40
    return mp.gammainc(mp.mpf(float(df)) / 2, mp.mpf(float(x)) / 2, mp.inf, regularized=True)


def mp_chi2_cdf(x, df):
    mp = _mp()
    mp.mp.dps = 40
    return mp.gammainc(mp.mpf(float(df)) / 2, 0, mp.mpf(float(x)) / 2, regularized=True)


def _mp_root(fn, target, start):
    mp = _mp()
    mp.mp.dps = 40
    x0 = mp.mpf(float(start))
    x1 = x0 * (1 + mp.mpf("1e-6")) if x0 != 0 else mp.mpf("1e-10")
    return mp.findroot(lambda x: fn(x) - target, (x0, x1), solver="secant", tol=mp.mpf("1e-60"))


def mp_t_ppf(p, df):
    """t with P(T <= t) = p, solved in mpmath from scipy's value."""
    mp = _mp()
    mp.mp.dps = 40
    return _mp_root(lambda t: _mp_t_cdf_mpf(t, df), mp.mpf(float(p)), sp.stdtrit(df, p))


def mp_t_isf(q, df):
    return -mp_t_ppf(q, df)


def mp_chi2_isf(q, df):
    mp = _mp()
    mp.mp.dps = 40
    d = mp.mpf(float(df))
    return _mp_root(lambda x: mp.gammainc(d / 2, x / 2, mp.inf, regularized=True),
                    mp.mpf(float(q)), sp.chdtri(df, q))


def _mp_t_cdf_mpf(t, df):
    mp = _mp()
    df = mp.mpf(float(df))
    half = mp.betainc(df / 2, mp.mpf(1) / 2, 0, df / (df + t * t), regularized=True) / 2
    return half if t < 0 else 1 - half


# --- normal ------------------------------------------------------------------

X_NORM = np.concatenate([-np.logspace(-8, math.log10(37.5), 400), [0.0],
                         np.logspace(-8, math.log10(37.5), 400)])
P_GRID = np.concatenate([np.logspace(-300, -1, 300), np.linspace(0.1, 0.9, 161),
                         1 - np.logspace(-16, -1, 150)])


def test_norm_cdf_sf():
    check(D.norm_cdf(X_NORM), sp.ndtr(X_NORM))
    check(D.norm_sf(X_NORM), sp.ndtr(-X_NORM))
    check(D.ndtr(X_NORM), sp.ndtr(X_NORM))


def test_norm_ppf_isf():
    check(D.norm_ppf(P_GRID), sp.ndtri(P_GRID))
    check(D.ndtri(P_GRID), sp.ndtri(P_GRID))
    check(D.norm_isf(P_GRID), -sp.ndtri(P_GRID))
    assert D.norm_ppf(0.5) == 0.0
    assert D.norm_ppf(0.0) == -np.inf and D.norm_ppf(1.0) == np.inf
    assert np.isnan(D.norm_ppf(1.5)) and np.isnan(D.norm_ppf(-0.1))


def test_expit():
    x = np.concatenate([-np.logspace(-6, math.log10(700), 200), [0.0], np.logspace(-6, 3, 200)])
    check(D.expit(x), sp.expit(x))


# --- Student t ---------------------------------------------------------------

T_GRID = np.concatenate([-np.logspace(-6, 6, 241), [0.0], np.logspace(-6, 6, 241)])


@pytest.mark.parametrize("df", DFS)
def test_t_cdf_sf(df):
    ref_cdf = sp.stdtr(df, T_GRID)
    keep = ref_cdf > 1e-290
    t = T_GRID[keep]
    check(D.t_cdf(t, df), ref_cdf[keep], mp_t_cdf, (t, df))
    check(D.stdtr(df, t), ref_cdf[keep], mp_t_cdf, (t, df))
    ref_sf = sp.stdtr(df, -T_GRID)
    keep = ref_sf > 1e-290
    t = T_GRID[keep]
    check(D.t_sf(t, df), ref_sf[keep], mp_t_sf, (t, df))


Q_GRID = np.concatenate([np.logspace(-280, -1, 180), np.linspace(0.1, 0.9, 81),
                         np.array([0.25, 0.5 - 1e-12, 0.5 + 1e-12, 0.975, 0.995]),
                         1 - np.logspace(-15, -1, 60)])


@pytest.mark.parametrize("df", DFS)
def test_t_quantiles(df):
    # scipy.special.stdtrit is unreliable beyond |t| ~ 1e50 (checked against
    # mpmath below); compare where it is not
    ref = sp.stdtrit(df, Q_GRID)
    keep = np.abs(ref) < 1e50
    q = Q_GRID[keep]
    check(D.t_ppf(q, df), ref[keep], mp_t_ppf, (q, df))
    check(D.stdtrit(df, q), ref[keep], mp_t_ppf, (q, df))
    check(D.t_isf(q, df), -ref[keep], mp_t_isf, (q, df))
    # round trip through the upper tail, relative in q
    t = D.t_isf(q[q < 0.5], df)
    check(D.t_sf(t, df), q[q < 0.5], rtol=2e-12 * max(1.0, df ** 0.5 / 10))


@pytest.mark.parametrize("df, q", [(0.5, 1e-100), (1.5, 1e-200), (3.0, 1e-229), (3.0, 1e-300),
                                   (10.0, 1e-300), (1.0, 1e-300), (2.0, 1e-300)])
def test_t_quantile_far_tail_against_mpmath(df, q):
    t = D.t_isf(q, df)
    if not math.isfinite(t):
        pytest.fail(f"t_isf({q}, {df}) = {t}")
    assert _rel(float(mp_t_sf(t, df)), q) <= 1e-12


def test_t_quantile_overflows_to_inf():
    # the 1e-300 upper quantile of t(0.5) is ~1e600
    assert D.t_isf(1e-300, 0.5) == np.inf
    assert D.t_ppf(1e-300, 0.5) == -np.inf


def test_t_special_values():
    assert D.t_cdf(0.0, 3.0) == 0.5 and D.t_sf(0.0, 3.0) == 0.5
    assert D.t_cdf(np.inf, 3.0) == 1.0 and D.t_cdf(-np.inf, 3.0) == 0.0
    assert np.isnan(D.t_cdf(np.nan, 3.0)) and np.isnan(D.t_cdf(1.0, -1.0))
    assert D.t_ppf(0.5, 7.0) == 0.0
    assert D.t_ppf(1.0, 7.0) == np.inf and D.t_ppf(0.0, 7.0) == -np.inf
    # df = inf is the normal distribution, as scipy
    check(D.t_cdf(X_NORM, np.inf), sp.ndtr(X_NORM))
    check(D.t_ppf(P_GRID, np.inf), sp.ndtri(P_GRID))


def test_t_beyond_native_range_uses_scipy():
    df = 3e6
    t = np.array([-5.0, -1.0, 0.3, 4.0])
    check(D.t_cdf(t, df), sp.stdtr(df, t))
    check(D.t_ppf(np.array([1e-30, 1e-25]), df), sp.stdtrit(df, np.array([1e-30, 1e-25])))


@pytest.mark.parametrize("df", [100001.0, 999998.0, 1e7, 1e12])
def test_t_quantiles_of_huge_df_by_series(df):
    """The prediction interval of a pool of 10^6 studies (t at k - 2 df): Cornish-Fisher."""
    p = np.concatenate([np.logspace(-20, -1, 80), np.linspace(0.1, 0.9, 33),
                        1 - np.logspace(-15, -1, 30)])
    check(D.t_ppf(p, df), sp.stdtrit(df, p))
    check(D.t_isf(p, df), -sp.stdtrit(df, p))


# --- chi² --------------------------------------------------------------------

@pytest.mark.parametrize("df", DFS)
def test_chi2_cdf_sf(df):
    x = df * np.logspace(-6, 3, 300) if df >= 1 else np.logspace(-8, 3.2, 300)
    if df >= 100:  # the mass is within a few sd of df; resolve it
        x = np.concatenate([x, df + math.sqrt(2 * df) * np.linspace(-12, 40, 200)])
        x = x[x > 0]
    ref = sp.chdtrc(df, x)
    keep = ref > 1e-290
    check(D.chi2_sf(x[keep], df), ref[keep], mp_chi2_sf, (x[keep], df))
    check(D.chdtrc(df, x[keep]), ref[keep], mp_chi2_sf, (x[keep], df))
    ref = sp.chdtr(df, x)
    keep = ref > 1e-290
    check(D.chi2_cdf(x[keep], df), ref[keep], mp_chi2_cdf, (x[keep], df))
    check(D.chdtr(df, x[keep]), ref[keep], mp_chi2_cdf, (x[keep], df))


@pytest.mark.parametrize("df", DFS)
def test_chi2_quantiles(df):
    q = np.concatenate([np.logspace(-280, -1, 120), np.linspace(0.1, 0.9, 41),
                        np.array([0.025, 0.975]), 1 - np.logspace(-15, -1, 40)])
    ref_isf = sp.chdtri(df, q)
    keep = (ref_isf > 1e-290) & np.isfinite(ref_isf)
    check(D.chi2_isf(q[keep], df), ref_isf[keep], mp_chi2_isf, (q[keep], df))
    check(D.chdtri(df, q[keep]), ref_isf[keep], mp_chi2_isf, (q[keep], df))
    ref_ppf = sp.chdtri(df, 1.0 - q)           # exact complement only for q >= 1/2
    upper = (q >= 0.5) & (ref_ppf > 1e-290)
    check(D.chi2_ppf(q[upper], df), ref_ppf[upper], mp_chi2_isf, (1.0 - q[upper], df))
    # lower tail by round trip (scipy has no direct lower-tail inverse)
    small = q[(q < 0.5) & (q > 1e-280)]
    x = D.chi2_ppf(small, df)
    ok = x > 1e-290
    # P's condition number in x is about df/2 in the lower tail: an error of
    # 1 ulp in x moves P by df/2 ulp
    check(D.chi2_cdf(x[ok], df), small[ok], rtol=max(4e-12, df * 2e-16))


def test_chi2_special_values():
    assert D.chi2_sf(0.0, 3.0) == 1.0 and D.chi2_cdf(0.0, 3.0) == 0.0
    assert D.chi2_sf(-1.0, 3.0) == 1.0
    assert D.chi2_sf(np.inf, 3.0) == 0.0
    assert np.isnan(D.chi2_sf(1.0, 0.0)) and np.isnan(D.chi2_sf(np.nan, 2.0))
    assert D.chi2_isf(1.0, 4.0) == 0.0 and D.chi2_isf(0.0, 4.0) == np.inf
    assert D.chi2_ppf(0.0, 4.0) == 0.0 and D.chi2_ppf(1.0, 4.0) == np.inf


@pytest.mark.parametrize("df", [1.5e5, 999999.0, 1e7])
def test_chi2_tails_of_huge_df_without_scipy(df):
    """Q's p-value of a pool of up to 10^7 studies: a scalar loop, not scipy (whose lower
    tail is off by up to 1e-4 here, so mpmath decides)."""
    z = np.concatenate([np.linspace(-8.0, 8.0, 33), np.array([20.0, 37.0])])
    x = df + math.sqrt(2 * df) * z
    check(D.chi2_sf(x, df), sp.chdtrc(df, x), mp_chi2_sf, (x, df))
    # mpmath's lower gamma does not converge far above the mean, nor at df = 1e7
    lower = (z <= 0.5) & (df < 5e6)
    check(D.chi2_cdf(x[lower], df), sp.chdtr(df, x[lower]), mp_chi2_cdf, (x[lower], df))


@pytest.mark.parametrize("df", [1.5e5, 999999.0, 1e7])
def test_chi2_quantiles_of_huge_df_without_scipy(df):
    """The Q-profile CI of τ² for a pool of 10^6 studies (scipy's chdtri is off by up to
    7e-7 near q = 1 here; mpmath decides)."""
    q = np.concatenate([np.logspace(-200, -1, 30), np.linspace(0.1, 0.9, 9),
                        np.array([0.025, 0.975]), 1 - np.logspace(-6, -1, 6)])
    check(D.chi2_isf(q, df), sp.chdtri(df, q), mp_chi2_isf, (q, df))


def test_chi2_beyond_native_range_uses_scipy():
    df = 5e7
    x = df + math.sqrt(2 * df) * np.array([-3.0, 0.0, 2.0, 6.0])
    check(D.chi2_sf(x, df), sp.chdtrc(df, x))
    check(D.chi2_isf(np.array([0.025, 0.975]), df), sp.chdtri(df, np.array([0.025, 0.975])))


# --- beta (Clopper-Pearson) and gammaln ---------------------------------------

def mp_betainc(a, b, x):
    mp = _mp()
    mp.mp.dps = 40
    return mp.betainc(mp.mpf(float(a)), mp.mpf(float(b)), 0, mp.mpf(float(x)), regularized=True)


def mp_betaincinv(a, b, y):
    mp = _mp()
    mp.mp.dps = 40
    A, B = mp.mpf(float(a)), mp.mpf(float(b))
    return _mp_root(lambda x: mp.betainc(A, B, 0, x, regularized=True), mp.mpf(float(y)),
                    sp.betaincinv(a, b, y))


AB = [(0.5, 0.5), (0.5, 3.0), (1.0, 1.0), (1.0, 20.0), (2.0, 7.0), (3.0, 1.0), (5.0, 5.0),
      (12.0, 40.0), (30.0, 1.0), (50.0, 30.0), (120.0, 3.0), (200.0, 250.0), (1.0, 499.0)]


@pytest.mark.parametrize("a, b", AB)
def test_betainc(a, b):
    x = np.concatenate([np.logspace(-12, -0.31, 90), 1 - np.logspace(-12, -0.31, 90)])
    ref = sp.betainc(a, b, x)
    keep = ref > 1e-290
    x = x[keep]
    check(D.betainc(a, b, x), ref[keep], mp_betainc, (a, b, x))


@pytest.mark.parametrize("a, b", AB)
def test_betaincinv(a, b):
    y = np.concatenate([np.logspace(-200, -1, 60), np.linspace(0.1, 0.9, 33),
                        np.array([0.025, 0.975]), 1 - np.logspace(-15, -1, 30)])
    ref = sp.betaincinv(a, b, y)
    keep = (ref > 1e-290) & (ref < 1.0)
    y = y[keep]
    check(D.betaincinv(a, b, y), ref[keep], mp_betaincinv, (a, b, y))


def test_clopper_pearson_values():
    """The quantiles msc_meta.pooling.exact asks for: R binom.test(3, 7)$conf.int."""
    assert D.betaincinv(3.0, 5.0, 0.025) == pytest.approx(0.09898828, abs=5e-9)
    assert D.betaincinv(4.0, 4.0, 0.975) == pytest.approx(0.81594843, abs=5e-9)
    x = np.array([0.0, 1.0, 3.0, 12.0])
    n = np.array([4.0, 5.0, 15.0, 12.0])
    a = np.maximum(x, 1.0)
    check(D.betaincinv(a, n - x + 1.0, 0.025), sp.betaincinv(a, n - x + 1.0, 0.025))


def test_beta_edges_and_fallback():
    assert D.betainc(2.0, 3.0, 0.0) == 0.0 and D.betainc(2.0, 3.0, 1.0) == 1.0
    assert D.betaincinv(2.0, 3.0, 0.0) == 0.0 and D.betaincinv(2.0, 3.0, 1.0) == 1.0
    assert np.isnan(D.betainc(-1.0, 3.0, 0.5)) and np.isnan(D.betaincinv(2.0, 3.0, 1.5))
    check(D.betaincinv(300.0, 900.0, np.array([0.025, 0.5])),
          sp.betaincinv(300.0, 900.0, np.array([0.025, 0.5])))


def test_gammaln():
    x = np.concatenate([np.logspace(-10, 5, 200), -np.array([0.5, 1.5, 2.25, 10.5])])
    check(D.gammaln(x), sp.gammaln(x), rtol=2e-15 * 50)
    assert D.gammaln(0.0) == np.inf and D.gammaln(-3.0) == np.inf
    assert type(D.gammaln(2.5)) is float


# --- interface ---------------------------------------------------------------

def test_scalars_give_floats_arrays_keep_shape():
    assert type(D.norm_cdf(0.3)) is float
    assert type(D.t_ppf(0.975, 4)) is float
    assert type(D.chi2_sf(np.float64(3.0), 2)) is float
    out = D.t_cdf(np.zeros((2, 3)), np.array([1.0, 2.0, 3.0]))
    assert out.shape == (2, 3)
    assert D.chi2_isf(np.array([0.05]), 3.0).shape == (1,)
    assert D.norm_ppf(np.array(0.5)).shape == ()


def test_engine_values():
    """The numbers the pool engine asks for, to the last digits scipy gives."""
    for df in (1, 2, 3, 4, 9, 29):
        assert D.stdtrit(df, 0.975) == pytest.approx(sp.stdtrit(df, 0.975), rel=1e-14)
        assert D.chdtri(df, 0.025) == pytest.approx(sp.chdtri(df, 0.025), rel=1e-13)
        assert D.chdtri(df, 0.975) == pytest.approx(sp.chdtri(df, 0.975), rel=1e-13)
    assert D.ndtri(0.975) == pytest.approx(1.959963984540054, rel=1e-15)


def test_no_scipy_import_for_native_range():
    import subprocess
    import sys

    code = ("import sys, numpy as np, msc_meta._dist as D;"
            "D.t_ppf(np.array([0.975, 0.5]), 9); D.chi2_isf(0.025, 4); D.t_cdf(-2.0, 3);"
            "D.chi2_sf(3.0, 2); D.norm_ppf(0.9); D.expit(0.3);"
            "D.betaincinv(3.0, 5.0, 0.025); D.gammaln(4.5); D.chi2_sf(1.01e6, 999999.0);"
            "D.t_ppf(0.975, 999998.0);"
            "print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
