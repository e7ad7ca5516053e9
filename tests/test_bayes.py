"""Bayesian random-effects model: against a brute-force 2-D (mu x tau) grid and in its limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from msc_meta.errors import UsageError
from msc_meta.pooling.bayes import (
    bayes_re,
    mixture_cdf,
    mixture_quantile,
    parse_mu_prior,
    parse_tau_prior,
    tau_posterior,
)

# Five small two-arm studies on the log RR scale (made up, typical of the data).
Y = np.array([-0.9, -0.3, -1.6, 0.1, -0.5])
V = np.array([0.30, 0.12, 0.60, 0.20, 0.25])


def _cum_trapz(f, x):
    c = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(x))])
    return c / c[-1]


def brute_force(y, v, log_prior_tau, tau_max, mu_prior=None, n_mu=1301, n_tau=2001,
                mu_range=(-7.0, 6.0)):
    """Joint posterior of (mu, tau) on a plain rectangular grid, summed by the trapezoid rule."""
    mu = np.linspace(*mu_range, n_mu)
    tau = np.linspace(0.0, tau_max, n_tau)
    lp = np.broadcast_to(log_prior_tau(tau)[None, :], (n_mu, n_tau)).copy()
    for yi, vi in zip(y, v):          # one study at a time keeps memory at one grid
        s2 = vi + tau[None, :] ** 2
        lp -= 0.5 * np.log(s2) + 0.5 * (yi - mu[:, None]) ** 2 / s2
    if mu_prior is not None:
        m, s = mu_prior
        lp = lp - 0.5 * ((mu[:, None] - m) / s) ** 2
    p = np.exp(lp - lp.max())
    p_mu = np.trapezoid(p, tau, axis=1)
    p_tau = np.trapezoid(p, mu, axis=0)
    return mu, tau, p, _cum_trapz(p_mu, mu), _cum_trapz(p_tau, tau)


def _quant(cum, x, q):
    return np.interp(q, cum, x)


def _pred_cdf(x0, mu, tau, p):
    # P(theta_new <= x0) = E[Phi((x0 - mu) / tau)], tau = 0 -> step
    with np.errstate(divide="ignore"):
        z = (x0 - mu[:, None]) / tau[None, :]
    phi = np.where(tau[None, :] > 0, ndtr(z), (x0 >= mu[:, None]).astype(float))
    inner = np.trapezoid(p * phi, tau, axis=1)
    total = np.trapezoid(np.trapezoid(p, tau, axis=1), mu)
    return np.trapezoid(inner, mu) / total


PRIORS = [
    ("halfnormal:0.5", None, lambda t: -0.5 * (t / 0.5) ** 2, 4.5),
    ("halfcauchy:0.3", (0.0, 1.5), lambda t: -np.log1p((t / 0.3) ** 2), 40.0),
    ("uniform:0:2", None, lambda t: np.zeros_like(t), 2.0),
]


@pytest.mark.parametrize("prior_tau, mu_prior, log_prior, tau_max", PRIORS, ids=[p[0] for p in PRIORS])
def test_matches_brute_force_grid(prior_tau, mu_prior, log_prior, tau_max):
    n_tau = 4001 if tau_max > 10 else 1501
    mu, tau, p, cum_mu, cum_tau = brute_force(Y, V, log_prior, tau_max, mu_prior, n_tau=n_tau)
    prior_mu = "flat" if mu_prior is None else f"normal:{mu_prior[0]}:{mu_prior[1]}"
    res = bayes_re(Y, V, prior_tau=prior_tau, prior_mu=prior_mu, measure="RR")
    q = [0.025, 0.5, 0.975]
    assert [res.theta_ci_low, res.theta_median, res.theta_ci_high] == pytest.approx(
        _quant(cum_mu, mu, q), abs=1e-3)
    assert [res.tau_ci_low, res.tau_median, res.tau_ci_high] == pytest.approx(
        _quant(cum_tau, tau, q), abs=1e-3)
    assert res.p_benefit == pytest.approx(1.0 - np.interp(0.0, mu, cum_mu), abs=1e-3)
    assert _pred_cdf(res.theta_pred_low, mu, tau, p) == pytest.approx(0.025, abs=5e-4)
    assert _pred_cdf(res.theta_pred_high, mu, tau, p) == pytest.approx(0.975, abs=5e-4)
    # natural scale = exp of the same quantiles for RR
    assert res.estimate == pytest.approx(math.exp(res.theta_median))
    assert res.ci_low == pytest.approx(math.exp(res.theta_ci_low))
    assert res.pred_high == pytest.approx(math.exp(res.theta_pred_high))


def _fe(y, v):
    w = 1.0 / v
    return float(np.sum(w * y) / w.sum()), float(1.0 / math.sqrt(w.sum()))


def _reml(y, v):
    """REML tau^2 and mu by Fisher scoring (metafor rma(method="REML") iteration)."""
    tau2 = 0.1
    for _ in range(500):
        w = 1.0 / (v + tau2)
        mu = np.sum(w * y) / w.sum()
        p_y = w * (y - mu)
        trp = w.sum() - np.sum(w ** 2) / w.sum()
        trpp = np.sum(w ** 2) - 2 * np.sum(w ** 3) / w.sum() + (np.sum(w ** 2) / w.sum()) ** 2
        step = (np.sum(p_y ** 2) - trp) / trpp
        tau2 = max(0.0, tau2 + step)
        if abs(step) < 1e-12:
            break
    w = 1.0 / (v + tau2)
    return tau2, float(np.sum(w * y) / w.sum()), float(1.0 / math.sqrt(w.sum()))


def test_tiny_prior_scale_is_the_fixed_effect_model():
    mu_fe, se_fe = _fe(Y, V)
    res = bayes_re(Y, V, prior_tau="halfnormal:1e-6", measure="OR")
    z = 1.959963984540054
    assert res.theta_median == pytest.approx(mu_fe, rel=1e-6)
    assert res.theta_ci_low == pytest.approx(mu_fe - z * se_fe, rel=1e-6)
    assert res.theta_ci_high == pytest.approx(mu_fe + z * se_fe, rel=1e-6)
    assert res.tau_ci_high < 3e-6


def test_uniform_prior_mode_is_reml_and_wide_prior_is_reml_like():
    rng = np.random.default_rng(20240601)
    k = 60
    v = rng.uniform(0.05, 0.4, k)
    y = rng.normal(0.3, np.sqrt(v + 0.4 ** 2))
    tau2_reml, mu_reml, se_reml = _reml(y, v)
    # With a flat prior on mu, p(tau | y) is the restricted likelihood times
    # the prior: under a uniform prior its mode is the REML estimate.
    post = tau_posterior(y, v, "uniform:0:20", "flat")
    assert post.mode() == pytest.approx(math.sqrt(tau2_reml), rel=1e-4)
    for prior in ("uniform:0:20", "halfnormal:100"):
        res = bayes_re(y, v, prior_tau=prior, measure="RR")
        assert res.tau_mode == pytest.approx(math.sqrt(tau2_reml), rel=2e-3)
        assert res.theta_median == pytest.approx(mu_reml, abs=0.01)
        width = res.theta_ci_high - res.theta_ci_low
        assert width == pytest.approx(2 * 1.959963984540054 * se_reml, rel=0.1)


def test_normal_prior_on_mu_pulls_toward_its_mean():
    res = bayes_re(Y, V, prior_mu="normal:0:0.001")
    assert abs(res.theta_median) < 0.005
    wide = bayes_re(Y, V, prior_mu="normal:0:1000")
    flat = bayes_re(Y, V, prior_mu="flat")
    assert wide.theta_median == pytest.approx(flat.theta_median, abs=1e-5)


def test_p_benefit_only_for_two_arm_measures():
    assert bayes_re(Y, V, measure="PLO").p_benefit is None
    assert bayes_re(Y, V).p_benefit is None
    rd = bayes_re(Y / 10, V / 100, measure="RD")
    assert 0.0 <= rd.p_benefit <= 1.0
    assert rd.estimate == pytest.approx(rd.theta_median)      # RD: identity back-transform


def test_plo_back_transform_is_expit():
    res = bayes_re(Y, V, measure="PLO")
    assert res.estimate == pytest.approx(1 / (1 + math.exp(-res.theta_median)))
    assert res.ci_high == pytest.approx(1 / (1 + math.exp(-res.theta_ci_high)))


def test_single_study_works_with_proper_tau_prior():
    res = bayes_re([0.4], [0.1], measure="OR")
    assert res.k == 1 and res.theta_ci_low < 0.4 < res.theta_ci_high
    assert res.theta_median == pytest.approx(0.4, abs=1e-9)   # symmetric mixture around y


def test_mixture_quantile_inverts_cdf():
    w = np.array([0.2, 0.5, 0.3])
    m = np.array([-1.0, 0.0, 3.0])
    s = np.array([0.5, 1.0, 2.0])
    q = np.array([0.001, 0.025, 0.5, 0.975, 0.999])
    x = mixture_quantile(q, w, m, s)
    assert mixture_cdf(x, w, m, s) == pytest.approx(q, abs=1e-12)


def test_to_dict_has_contract_keys_and_levels():
    res = bayes_re(Y, V, measure="RR", level=90)
    d = res.to_dict()
    for key in ("theta_median", "theta_ci_low", "theta_ci_high", "estimate", "ci_low", "ci_high",
                "tau_median", "tau_ci_low", "tau_ci_high", "pred_low", "pred_high", "p_benefit"):
        assert key in d
    r95 = bayes_re(Y, V, measure="RR")
    assert r95.theta_ci_low < res.theta_ci_low < res.theta_ci_high < r95.theta_ci_high


@pytest.mark.parametrize("spec", ["halfnormal", "halfnormal:-1", "halfnormal:abc", "cauchy:1",
                                  "uniform:2:1", "uniform:0", "uniform:0:inf"])
def test_bad_tau_priors(spec):
    with pytest.raises(UsageError):
        parse_tau_prior(spec)


@pytest.mark.parametrize("spec", ["normal:0", "normal:0:0", "normal:x:1", "gamma:1:1"])
def test_bad_mu_priors(spec):
    with pytest.raises(UsageError):
        parse_mu_prior(spec)


def test_prior_labels_round_trip():
    assert parse_tau_prior("HalfCauchy:0.25").label == "halfcauchy:0.25"
    assert parse_tau_prior("uniform:0:2").label == "uniform:0:2"
    assert parse_mu_prior("normal:0:2").label == "normal:0:2"


def test_bad_data():
    with pytest.raises(UsageError):
        bayes_re([0.1, 0.2], [0.1, -0.1])
    with pytest.raises(UsageError):
        bayes_re([], [])


# ---------------------------------------------------------------- continuous measures, via the CLI

def _normand(name):
    """dat.normand1999 (tests/fixtures/cli_outcomes.json: escalc MD / SMD, from metafor)."""
    import json
    from pathlib import Path

    doc = json.loads((Path(__file__).parent / "fixtures" / "cli_outcomes.json").read_text())
    case = next(c for c in doc["cases"] if c["name"] == name)
    return case, np.array(case["studies"]["yi"]), np.array(case["studies"]["vi"])


@pytest.mark.parametrize("name, prior, scale, mu_range, tau_max", [
    ("normand1999_MD", ["--prior-tau", "halfnormal:30"], 30.0, (-120.0, 90.0), 200.0),
    ("normand1999_SMD", [], 0.5, (-4.0, 3.0), 4.5),
])
def test_continuous_measure_matches_brute_force_grid(run_cli, name, prior, scale, mu_range, tau_max):
    """MD (a prior in the outcome's units) and SMD (the default half-normal(0.5)) through
    `msc-meta bayes`: the same brute-force 2-D grid as the count measures above."""
    import json
    from pathlib import Path

    case, y, v = _normand(name)
    root = Path(__file__).resolve().parents[1]
    code, out, err = run_cli("bayes", "--data", root / case["csv"], "--outcome", "length_of_stay",
                             "--measure", name.split("_")[1], *prior, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["prior_tau"] == f"halfnormal:{scale:g}" and doc["k"] == 9
    mu, tau, p, cum_mu, cum_tau = brute_force(y, v, lambda t: -0.5 * (t / scale) ** 2, tau_max,
                                              n_mu=2601, n_tau=2001, mu_range=mu_range)
    q = [0.025, 0.5, 0.975]
    width = mu_range[1] - mu_range[0]
    assert [doc["theta_ci_low"], doc["theta_median"], doc["theta_ci_high"]] == pytest.approx(
        _quant(cum_mu, mu, q), abs=2e-4 * width)
    assert [doc["tau_ci_low"], doc["tau_median"], doc["tau_ci_high"]] == pytest.approx(
        _quant(cum_tau, tau, q), abs=2e-4 * tau_max)
    # P(MD > 0), P(SMD > 0): the registry's null (0) on the analysis scale
    assert doc["p_benefit"] == pytest.approx(1.0 - np.interp(0.0, mu, cum_mu), abs=1e-3)
    assert _pred_cdf(doc["pred_low"], mu, tau, p) == pytest.approx(0.025, abs=5e-4)
    assert _pred_cdf(doc["pred_high"], mu, tau, p) == pytest.approx(0.975, abs=5e-4)
    # identity back-transformation: the natural scale is the analysis scale
    assert doc["estimate"] == doc["theta_median"] and doc["ci_low"] == doc["theta_ci_low"]


def test_a_measure_in_the_outcomes_units_asks_for_its_prior(run_cli):
    from pathlib import Path

    case, y, v = _normand("normand1999_MD")
    root = Path(__file__).resolve().parents[1]
    code, out, err = run_cli("bayes", "--data", root / case["csv"], "--outcome", "length_of_stay")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "MD" in err and "--prior-tau halfnormal:" in err and "unit-information SD" in err
    import csv

    with open(root / case["csv"], encoding="utf-8") as handle:
        n = np.array([float(r["n_t"]) + float(r["n_c"]) for r in csv.DictReader(handle)])
    assert f"{math.sqrt(n.sum() / np.sum(1 / v)):.3g}" in err     # Roever et al. 2021, eq. 6


def test_generic_effects_on_the_log_scale_are_back_transformed(run_cli):
    import json
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "outcome_commands" / "bcg_yi_vi.csv"
    code, out, err = run_cli("bayes", "--data", path, "--outcome", "tb", "--scale", "log", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["measure"] == "GEN" and doc["scale"] == "log" and doc["null"] == 0.0
    assert doc["estimate"] == pytest.approx(math.exp(doc["theta_median"]), rel=1e-12)
    assert doc["pred_high"] == pytest.approx(math.exp(doc["theta_pred_high"]), rel=1e-12)
    code, out, err = run_cli("bayes", "--data", path, "--outcome", "tb", "--scale", "log")
    assert "Posterior probability that Ratio > 1" in out
