# References for the tiny-evidence options of `msc-meta pool`
# (tests/test_cli_pool.py): --study-ci exact|wilson and --method GLMM.
#
# Run from the repository root:  Rscript tests/r/fixtures_pool_tiny.R
# Writes tests/fixtures/pool_tiny.json.
#
# The table is pool_cli.json's single-arm table (tests/r/fixtures_pool.R):
# S2 is 0/15 and S4 20/20; N has no counts; T is two-arm, its treatment arm
# is pooled under PLO.
# - study intervals: binom.test(x, n)$conf.int (Clopper-Pearson) and
#   prop.test(x, n, correct=FALSE)$conf.int (Wilson score);
# - GLMM: metafor rma.glmm(measure="PLO", method="ML", nAGQ=7) and
#   rma.glmm(measure="OR", model="UM.FS", method="ML", nAGQ=7) with lme4,
#   with the tight glmerControl of tests/r/fixtures_glmm.R (glmer's default
#   optimiser stops ~1e-6 short of the optimum). For PLO with tau2 > 0 the
#   se (and the CI, z, p and prediction intervals built on it) come from
#   the Hessian of lme4's AGQ deviance computed accurately: agq_dev() below
#   is glmerAGQ's formula with exact conditional modes, differentiated by
#   numDeriv::hessian (Richardson) at glmer's optimum. metafor's own se
#   (vcov(glmer): lme4's deriv12 second differences, delta 1e-4, of a
#   deviance whose PIRLS tolerance leaves ~1e-10 noise) is ~6e-7 (relative)
#   off and is kept as se_metafor; no glmerControl setting removes that
#   noise (tolPwrss 1e-14 or numDeriv on lme4's devfun scatter by 1e-6..1e-2).
#   Prediction intervals:
#   predict(fit) (normal quantile, --pi z) and b -/+ qt(0.975, k-2) *
#   sqrt(se^2 + tau2) (--pi hts).

suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(jsonlite)
  library(numDeriv)
})

num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else as.numeric(x)
rows_of <- function(df) lapply(seq_len(nrow(df)), function(i) as.list(df[i, , drop = FALSE]))

single <- data.frame(
  study_id = c("S1", "S2", "S3", "S4", "S5", "N", "T"),
  outcome = "healing",
  events_t = c(12, 0, 30, 20, 7, NA, 14),
  n_t = c(20, 15, 40, 20, 25, NA, 22),
  events_c = c(NA, NA, NA, NA, NA, NA, 6),
  n_c = c(NA, NA, NA, NA, NA, NA, 21),
  timepoint_weeks = 52, unit = "fistula",
  pct_t = c(NA, NA, NA, NA, NA, "71.4", NA), pct_c = NA,
  stringsAsFactors = FALSE
)
su <- single[single$study_id != "N", ]

study_ci <- list()
for (level in c(95, 90)) {
  ex <- t(sapply(seq_len(nrow(su)), function(i)
    binom.test(su$events_t[i], su$n_t[i], conf.level = level / 100)$conf.int))
  wi <- t(sapply(seq_len(nrow(su)), function(i)
    suppressWarnings(prop.test(su$events_t[i], su$n_t[i], correct = FALSE,
                               conf.level = level / 100))$conf.int))
  study_ci[[as.character(level)]] <- list(
    exact_low = ex[, 1], exact_high = ex[, 2], wilson_low = wi[, 1], wilson_high = wi[, 2])
}

glmer_ctrl <- list(optimizer = "bobyqa", tolPwrss = 1e-12, optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
# lme4's AGQ deviance (glmerAGQ, -2 log L relative to the saturated model) of
# the random-intercept logistic model at p = c(tau, beta), with each
# study's conditional mode solved to machine precision (uniroot, then Newton).
agq_dev <- function(p, xi, ni, nAGQ = 7) {
  gh <- lme4::GHrule(nAGQ)
  tau <- p[1]; b <- p[2]
  devres <- function(eta, x, n) 2 * (ifelse(x > 0, x * log(x / n), 0) - x * plogis(eta, log.p = TRUE) +
    ifelse(n > x, (n - x) * log((n - x) / n), 0) - (n - x) * plogis(-eta, log.p = TRUE))
  sum(vapply(seq_along(xi), function(i) {
    x <- xi[i]; n <- ni[i]
    g <- function(u) 2 * u - 2 * tau * (x - n * plogis(b + tau * u))
    u <- uniroot(g, c(-60, 60), tol = 1e-14)$root
    for (it in 1:3) { q <- plogis(b + tau * u); u <- u - g(u) / (2 + 2 * tau^2 * n * q * (1 - q)) }
    q <- plogis(b + tau * u)
    L <- 1 + tau^2 * n * q * (1 - q)
    uk <- u + gh[, "z"] / sqrt(L)
    log(L) - 2 * log(sum(gh[, "w"] * exp(-(uk^2 + devres(b + tau * uk, x, n)) / 2 + gh[, "z"]^2 / 2)))
  }, 0))
}

glmm_keys <- function(xi, ni) {
  fit <- rma.glmm(measure = "PLO", xi = xi, ni = ni, method = "ML", nAGQ = 7,
                  control = list(glmerCtrl = glmer_ctrl))
  k <- fit$k
  b <- num(fit$b)
  se <- num(fit$se)
  if (fit$tau2 > 0) {
    p <- c(sqrt(fit$tau2), b)
    se <- sqrt(2 * solve(numDeriv::hessian(agq_dev, p, xi = xi, ni = ni))[2, 2])
  }
  crit <- qnorm(0.975)
  half_z <- crit * sqrt(se^2 + fit$tau2)
  half <- if (k >= 3) qt(0.975, df = k - 2) * sqrt(se^2 + fit$tau2) else NA_real_
  list(k = k, theta = b, se = se, se_metafor = num(fit$se),
       estimate = transf.ilogit(b),
       ci_low = transf.ilogit(b - crit * se), ci_high = transf.ilogit(b + crit * se),
       stat = b / se, pval = 2 * pnorm(-abs(b / se)), tau2 = num(fit$tau2),
       i2 = num(fit$I2), h2 = num(fit$H2),
       q = num(fit$QE.Wld), q_pval = num(fit$QEp.Wld), q_df = num(fit$QE.df),
       qe_lrt = num(fit$QE.LRT),
       pi_low_z = transf.ilogit(b - half_z), pi_high_z = transf.ilogit(b + half_z),
       pi_low_hts = transf.ilogit(b - half), pi_high_hts = transf.ilogit(b + half))
}

glmm_or_keys <- function(ai, n1i, ci, n2i) {
  fit <- suppressWarnings(rma.glmm(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i,
                                   model = "UM.FS", method = "ML", nAGQ = 7,
                                   control = list(glmerCtrl = glmer_ctrl)))
  k <- fit$k
  pr <- predict(fit)
  half <- if (k >= 3) qt(0.975, df = k - 2) * sqrt(fit$se^2 + fit$tau2) else NA_real_
  list(k = k, theta = num(fit$b), se = num(fit$se), estimate = exp(num(fit$b)),
       ci_low = exp(num(fit$ci.lb)), ci_high = exp(num(fit$ci.ub)),
       stat = num(fit$zval), pval = num(fit$pval), tau2 = num(fit$tau2),
       i2 = num(fit$I2), h2 = num(fit$H2),
       q = num(fit$QE.Wld), q_pval = num(fit$QEp.Wld), q_df = num(fit$QE.df),
       pi_low_z = exp(num(pr$pi.lb)), pi_high_z = exp(num(pr$pi.ub)),
       pi_low_hts = exp(num(fit$b) - half), pi_high_hts = exp(num(fit$b) + half))
}

# Two-arm tiny trials (as tests/r/fixtures_glmm.R) plus a double-zero trial,
# which rma.glmm drops (drop00=TRUE) and msc-meta lists as left out.
two <- data.frame(study_id = c("P1", "P2", "P3", "P4", "P5", "Z"), outcome = "closure",
                  events_t = c(4, 3, 12, 6, 53, 0), n_t = c(5, 5, 20, 6, 107, 4),
                  events_c = c(0, 1, 4, 0, 36, 0), n_c = c(5, 5, 20, 3, 105, 4),
                  stringsAsFactors = FALSE)
tu <- two[two$study_id != "Z", ]
# tests/r/fixtures_multiarm.R's small table after --multiarm combine.
comb <- list(ai = c(19, 4, 9, 3), n1i = c(31, 10, 15, 8), ci = c(2, 3, 2, 1), n2i = c(10, 11, 14, 9))

fixture <- list(
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  lme4_version = as.character(packageVersion("lme4")),
  generated_by = "tests/r/fixtures_pool_tiny.R",
  calls = c("binom.test(x, n, conf.level=level/100)$conf.int",
            "prop.test(x, n, correct=FALSE, conf.level=level/100)$conf.int",
            "rma.glmm(measure=\"PLO\", xi, ni, method=\"ML\", nAGQ=7, control=list(glmerCtrl=list(optimizer=\"bobyqa\", tolPwrss=1e-12, optCtrl=list(rhoend=1e-12, maxfun=1e5))))",
            "rma.glmm(measure=\"OR\", ai, n1i, ci, n2i, model=\"UM.FS\", method=\"ML\", nAGQ=7, same control)",
            "PI z: predict(fit); PI hts: b -/+ qt(0.975, k-2) * sqrt(se^2 + tau2); transf.ilogit or exp",
            "PLO with tau2 > 0: se = sqrt(2 * solve(numDeriv::hessian(agq_dev, c(sqrt(tau2), b)))[2, 2]), agq_dev() in this script; CI, z, p, PIs from that se; metafor's se as se_metafor"),
  numderiv_version = as.character(packageVersion("numDeriv")),
  rows = rows_of(single),
  pooled = su$study_id,
  x = su$events_t, n = su$n_t,
  study_ci = study_ci,
  glmm = glmm_keys(su$events_t, su$n_t),
  # the three Leiden-like cohorts of tests/r/fixtures_glmm.R (k = 3, n = 5)
  glmm_tiny = c(list(x = c(3, 4, 5), n = c(5, 5, 5)), glmm_keys(c(3, 4, 5), c(5, 5, 5))),
  glmm_or = list(rows = rows_of(two), pooled = tu$study_id,
                 fit = glmm_or_keys(tu$events_t, tu$n_t, tu$events_c, tu$n_c)),
  glmm_or_small_combine = c(comb, glmm_or_keys(comb$ai, comb$n1i, comb$ci, comb$n2i))
)
write_json(fixture, file.path("tests", "fixtures", "pool_tiny.json"), auto_unbox = TRUE, digits = NA,
           pretty = TRUE, na = "null")
cat("wrote tests/fixtures/pool_tiny.json\n")
