"""``msc-meta bayes``: Bayesian random-effects meta-analysis by numerical integration."""

from __future__ import annotations

import click

from msc_meta import registry

from msc_meta.cli.options import CC, LEVEL, MEASURE_CHOICE, data_option, json_option, multiarm_option, selection_options

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
  scale 0.5 on the log / logit scale) and on mu (default flat); mu is
  integrated out analytically and tau numerically, as the R package
  bayesmeta does, so there is no MCMC noise. With few studies the
  posterior of tau is mostly its prior: compare a few --prior-tau choices.
"""


@click.command(epilog=EPILOG)
@data_option
@selection_options
@click.option("--measure", type=MEASURE_CHOICE, default=None,
              help="Effect measure as metafor escalc(). Default: PLO for single-arm rows, RR for comparisons.")
@click.option("--prior-tau", "prior_tau", default="halfnormal:0.5", show_default=True, metavar="PRIOR",
              help="Prior on tau (the between-study SD on the analysis scale): halfnormal:SCALE, "
                   "halfcauchy:SCALE or uniform:LOWER:UPPER.")
@click.option("--prior-mu", "prior_mu", default="flat", show_default=True, metavar="PRIOR",
              help="Prior on the overall effect (analysis scale): flat or normal:MEAN:SD.")
@click.option("--cc", type=CC, default=0.5, show_default=True,
              help="Continuity correction for studies with a zero cell, as `pool`.")
@click.option("--level", type=LEVEL, default=95.0, show_default=True,
              help="Credible level in percent (equal-tailed).")
@multiarm_option
@json_option
def bayes(data_path, outcome, timepoint, unit, measure, prior_tau, prior_mu, cc, level, multiarm,
          as_json):
    """Bayesian random-effects meta-analysis (normal-normal model, no MCMC).

    Prints the posterior median and credible interval of the overall effect
    and of the heterogeneity tau, the predictive interval of a new study's
    effect, and for comparisons the posterior probability that the effect
    exceeds the null (RR, OR > 1; RD > 0). The frequentist REML pool of the
    same studies is shown for comparison.
    """
    from msc_meta.data import load_table
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.bayes import bayes_re, parse_mu_prior, parse_tau_prior

    # Bad priors are usage errors: report them before reading the table.
    tau_prior = parse_tau_prior(prior_tau)
    mu_prior = parse_mu_prior(prior_mu)
    table = load_table(data_path)
    analysis = run_pool(table, outcome=outcome, timepoint=timepoint, unit=unit, measure=measure,
                        method="REML", cc=cc, level=level, multiarm=multiarm.lower())
    studies = analysis.studies
    two_arm = registry.measure(analysis.measure).two_arm
    ni = [s.n_t + (s.n_c or 0) if two_arm else s.n_t for s in studies]
    result = bayes_re([s.yi for s in studies], [s.vi for s in studies], prior_tau=tau_prior,
                      prior_mu=mu_prior, level=level, measure=analysis.measure, ni=ni)

    from msc_meta.report import tiny_tables

    if as_json:
        click.echo(tiny_tables.bayes_json(result, analysis))
    else:
        tiny_tables.print_bayes(result, analysis)
