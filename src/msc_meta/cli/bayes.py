"""``msc-meta bayes``: Bayesian random-effects meta-analysis by numerical integration."""

from __future__ import annotations

import click

from msc_meta import registry

from msc_meta.cli.options import (CC, LEVEL, MEASURE_CHOICE, data_option, json_option, multiarm_option,
                                  outcome_type_options, selection_options)

EPILOG = """\b
Examples:
  msc-meta bayes --outcome fistula_closure --timepoint 24 --unit patient
  msc-meta bayes --outcome fistula_closure --timepoint 208 --unit patient --multiarm split --prior-tau halfnormal:1
  msc-meta bayes --outcome fistula_closure --timepoint 208 --unit patient --measure PLO --prior-tau halfcauchy:0.5
  msc-meta bayes --outcome fistula_closure --timepoint 24 --unit patient --prior-mu normal:0:1 --json

\b
How the numbers are made:
  The studies are selected and their effects computed exactly as `pool`
  does (same exclusions, continuity correction and --multiarm handling). The model is
  y_i ~ N(mu, v_i + tau^2) with a prior on tau (default half-normal with
  scale 0.5 on log, logit and standardised scales; measures in the
  outcome's own units, such as a mean difference, need --prior-tau in those
  units) and on mu (default flat); mu is
  integrated out analytically and tau numerically, as the R package
  bayesmeta does, so there is no MCMC noise. With few studies the
  posterior of tau is mostly its prior: compare a few --prior-tau choices.
"""


@click.command(epilog=EPILOG)
@data_option
@selection_options
@click.option("--measure", type=MEASURE_CHOICE, default=None,
              help="Effect measure as metafor escalc(). Default: PLO for single-arm rows, RR for "
                   "comparisons; for other outcome types MD, MC, MN, IRR, IR, ZCOR or GEN, from "
                   "the columns the rows fill.")
@click.option("--prior-tau", "prior_tau", default=None, metavar="PRIOR",
              help="Prior on tau (the between-study SD on the analysis scale): halfnormal:SCALE, "
                   f"halfcauchy:SCALE or uniform:LOWER:UPPER. Default {registry.DEFAULT_TAU_PRIOR} "
                   "on log, logit and standardised scales; required for measures in the "
                   "outcome's own units (" + ", ".join(
                       m for m in registry.measures() if registry.measure(m).tau_prior is None)
                   + " --scale identity).")
@click.option("--prior-mu", "prior_mu", default="flat", show_default=True, metavar="PRIOR",
              help="Prior on the overall effect (analysis scale): flat or normal:MEAN:SD.")
@click.option("--cc", type=CC, default=0.5, show_default=True,
              help="Continuity correction for studies with a zero cell, as `pool`.")
@click.option("--level", type=LEVEL, default=95.0, show_default=True,
              help="Credible level in percent (equal-tailed).")
@outcome_type_options
@multiarm_option
@json_option
def bayes(data_path, outcome, timepoint, unit, measure, prior_tau, prior_mu, cc, level, r, scale,
          multiarm, as_json):
    """Bayesian random-effects meta-analysis (normal-normal model, no MCMC).

    Prints the posterior median and credible interval of the overall effect
    and of the heterogeneity tau, the predictive interval of a new study's
    effect, and for measures with a null the posterior probability that the
    effect exceeds it (RR, OR, IRR > 1; RD, MD, SMD, MC, r > 0). The
    frequentist REML pool of the same studies is shown for comparison.
    """
    from msc_meta.data import load_table
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.bayes import bayes_re, parse_mu_prior, parse_tau_prior

    from msc_meta.pooling.bias import study_sizes

    # Bad priors are usage errors: report them before reading the table.
    tau_prior = None if prior_tau is None else parse_tau_prior(prior_tau)
    mu_prior = parse_mu_prior(prior_mu)
    table = load_table(data_path)
    analysis = run_pool(table, outcome=outcome, timepoint=timepoint, unit=unit, measure=measure,
                        method="REML", cc=cc, level=level, multiarm=multiarm.lower(), r=r,
                        scale=scale)
    studies = analysis.studies
    ni = study_sizes(studies, analysis.measure)
    yi, vi = [s.yi for s in studies], [s.vi for s in studies]
    if tau_prior is None:
        tau_prior = parse_tau_prior(default_tau_prior(analysis, vi, ni))
    result = bayes_re(yi, vi, prior_tau=tau_prior, prior_mu=mu_prior, level=level,
                      measure=analysis.measure, ni=ni, scale=analysis.options.scale)

    from msc_meta.report import tiny_tables
    from msc_meta.report.units import units_in_table

    units = units_in_table(analysis.measure, studies, table, analysis.options.scale)
    if as_json:
        click.echo(tiny_tables.bayes_json(result, analysis, units))
    else:
        tiny_tables.print_bayes(result, analysis, units)


def default_tau_prior(analysis, vi, ni) -> str:
    """The measure's default prior on tau (registry ``tau_prior``), or a one-line refusal where
    its analysis scale carries the outcome's own units, with the unit-information SD of these
    studies (Roever et al. 2021) as a yardstick for the scale the user chooses."""
    import math

    from msc_meta.errors import UsageError
    from msc_meta.pooling.bayes import unit_information_sd

    spec = registry.measure(analysis.measure, analysis.options.scale)
    if spec.tau_prior is not None:
        return spec.tau_prior
    uisd = unit_information_sd(vi, ni)
    hint = (f"; the unit-information SD of these studies (Roever et al. 2021) is {uisd:.3g}: "
            f"e.g. --prior-tau halfnormal:{uisd / 2:.2g} puts 95% of tau's prior below about that"
            if math.isfinite(uisd) else "")
    raise UsageError(f"{analysis.measure} ({spec.scale}) is on the outcome's own scale, where no "
                     f"default prior on tau fits every outcome: give --prior-tau halfnormal:S "
                     f"with S in the outcome's units{hint}")
