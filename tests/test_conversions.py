"""msc_meta.conversions against R: tests/fixtures/conversions.json (tests/r/fixtures_outcomes.R).

SEM and CI of a mean -> SD, paired t / p -> SD of the change -> r (checked through
escalc("SMCC") with that r), and median with IQR and/or range -> mean and SD against
metafor 4.0-0's conv.fivenum() (method "wan2014" and its default "luo/wan/shi", with
and without the skewness test) and against Wan et al. (2014) written out in R.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from msc_meta import conversions as cv
from msc_meta.effects import compute
from msc_meta.errors import UsageError

DOC = json.loads((Path(__file__).parent / "fixtures" / "conversions.json").read_text())
CONV = DOC["conversions"]


def arr(values):
    a = np.atleast_1d(np.array(values, dtype=object))
    return np.array([np.nan if v is None else float(v) for v in a], dtype=float)


def close(ours, theirs, what=""):
    ours, theirs = np.asarray(ours, dtype=float), arr(theirs)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), f"{what}: {ours} vs {theirs}"
    ok = ~np.isnan(theirs)
    np.testing.assert_allclose(ours[ok], theirs[ok], rtol=1e-6, atol=1e-12, err_msg=what)


def test_versions_recorded():
    assert DOC["versions"]["metafor"] == "3.8.1"
    assert "conv_fivenum" in CONV["fivenum"], "fixture written without METAFOR4_SRC"
    assert "4.0-0" in CONV["fivenum"]["conv_fivenum"]["source"]


def test_sd_from_se():
    c = CONV["sd_from_se"]
    close(cv.sd_from_se(arr(c["se"]), arr(c["n"])), c["sd"], "sd")
    assert np.isnan(cv.sd_from_se(-1.0, 10)) and np.isnan(cv.sd_from_se(1.0, 0))


@pytest.mark.parametrize("c", CONV["sd_from_ci"], ids=lambda c: f"level{c['level']}")
def test_sd_from_ci(c):
    lo, hi, n = arr(c["ci_low"]), arr(c["ci_high"]), arr(c["n"])
    close(cv.ci_quantile(n, c["level"]), c["quantile_t"], "qt")
    close(cv.sd_from_ci(lo, hi, n, level=c["level"]), c["sd_t"], "sd (t)")
    close(cv.sd_from_ci(lo, hi, n, level=c["level"], dist="z"), c["sd_z"], "sd (z)")


def test_sd_from_ci_edges():
    assert np.isnan(cv.sd_from_ci(5.0, 4.0, 10)) and np.isnan(cv.sd_from_ci(4.0, 5.0, 1))
    with pytest.raises(UsageError):
        cv.sd_from_ci(1.0, 2.0, 10, dist="chi")


def test_paired_t_and_p_to_sd_change_and_r():
    c = CONV["paired"]
    n, md = arr(c["n"]), arr(c["mean_change"])
    close(cv.t_from_p(arr(c["p"]), n), c["t_from_p"], "t from p")
    close(np.abs(cv.t_from_p(arr(c["p"]), n)), np.abs(arr(c["t"])), "t recovered")
    close(cv.sd_change_from_t(md, arr(c["t"]), n), c["sd_change_from_t"], "sd from t")
    close(cv.sd_change_from_p(md, arr(c["p"]), n), c["sd_change_from_p"], "sd from p")
    close(cv.sd_change_from_r(arr(c["sd_pre"]), arr(c["sd_post"]), arr(c["r_true"])),
          c["sd_change_from_r"], "sd from r")
    r = cv.r_from_sds(arr(c["sd_pre"]), arr(c["sd_post"]), cv.sd_change_from_p(md, arr(c["p"]), n))
    close(r, c["r_from_sds"], "r from sds")
    close(r, c["r_true"], "r round trip")
    es = compute("SMCC", {"mean_post": arr(c["mean_post"]), "mean_pre": arr(c["mean_pre"]),
                          "sd_pre": arr(c["sd_pre"]), "sd_post": arr(c["sd_post"]), "n_t": n, "r": r})
    close(es.yi, c["smcc_yi"], "SMCC yi")
    close(es.vi, c["smcc_vi"], "SMCC vi")


def test_inconsistent_sds_imply_no_r():
    assert np.isnan(cv.r_from_sds(1.0, 1.0, 3.0))      # |r| would be > 1
    assert np.isnan(cv.t_from_p(0.0, 10)) and np.isnan(cv.t_from_p(0.5, 1))


FIVENUM = CONV["fivenum"]


def _fivenum(method, test):
    inp = FIVENUM["input"]
    return cv.mean_sd_from_quantiles(arr(inp["median"]), arr(inp["n"]), q1=arr(inp["q1"]),
                                     q3=arr(inp["q3"]), minimum=arr(inp["min"]),
                                     maximum=arr(inp["max"]), method=method, test=test)


@pytest.mark.parametrize("run", FIVENUM["conv_fivenum"]["runs"],
                         ids=lambda r: f"{r['method']}-test{r['test']}")
def test_mean_sd_from_quantiles_matches_conv_fivenum(run):
    out = _fivenum(run["method"], run["test"])
    close(out.mean, run["mean"], "mean")
    close(out.sd, run["sd"], "sd")
    close(out.skew_stat, run["tval"], "tval")
    close(out.skew_crit, run["crit"], "crit")
    sig = [bool(s) if s is not None else False for s in run["sig"]]
    assert out.skewed.tolist() == sig
    assert all((r is None) == (not np.isnan(m)) for r, m in zip(out.reasons, out.mean))


def test_wan2014_formulas_written_out():
    out = _fivenum("wan2014", False)
    close(out.mean, FIVENUM["wan2014_formulas"]["mean"], "mean")
    close(out.sd, FIVENUM["wan2014_formulas"]["sd"], "sd")
    assert out.case[:3] == ("range", "both", "iqr")


def test_quantile_reasons():
    out = cv.mean_sd_from_quantiles([5.0, 5.0, 5.0, 5.0], [20, 3, 20, 20], q1=[4, 4, 6, np.nan],
                                    q3=[6, 6, 7, np.nan], test=False)
    assert out.reasons[0] is None
    assert "at least 5" in out.reasons[1]
    assert "not in order" in out.reasons[2]
    assert "needs the median with the IQR" in out.reasons[3]
    with pytest.raises(UsageError):
        cv.mean_sd_from_quantiles([5.0], [20], q1=[4], q3=[6], method="hozo")
