# Reference values for `msc-meta pool` on outcome types beyond counts, through the CLI.
#
# Run from the repository root:   Rscript tests/r/fixtures_cli_outcomes.R
# Writes the input tables tests/fixtures/cli_outcomes/{normand1999,hart1999,bcg_gen}.csv
# (from metadat) and tests/fixtures/cli_outcomes.json: for each case, the msc-meta command,
# the metafor call, and rma()'s results (REML, the pool default). The prediction interval is
# pool's default --pi hts: theta -/+ qt(0.975, k - 2) * sqrt(tau2 + se^2) (Higgins et al. 2009),
# computed from rma()'s own theta, se and tau2; metafor's predict() is recorded too (pi_z_*).

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})

versions <- list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                 metadat = as.character(packageVersion("metadat")),
                 jsonlite = as.character(packageVersion("jsonlite")))
dir <- file.path("tests", "fixtures", "cli_outcomes")
dir.create(dir, showWarnings = FALSE, recursive = TRUE)

write_table <- function(df, name) {
  path <- file.path(dir, name)
  write.csv(df, path, row.names = FALSE, na = "")
  path
}

fit_case <- function(name, csv, command, es, fit_call, back, study_ids, rma_fit) {
  res <- rma_fit
  k <- res$k
  crit <- qt(0.975, k - 2)
  pi_lb <- as.numeric(res$b) - crit * sqrt(res$tau2 + res$se^2)
  pi_ub <- as.numeric(res$b) + crit * sqrt(res$tau2 + res$se^2)
  pz <- predict(res)
  list(name = name, csv = csv, command = command, call = fit_call,
       k = k, theta = as.numeric(res$b), se = res$se,
       estimate = back(as.numeric(res$b)), ci_low = back(res$ci.lb), ci_high = back(res$ci.ub),
       pi_low = back(pi_lb), pi_high = back(pi_ub),
       pi_z_low = back(pz$pi.lb), pi_z_high = back(pz$pi.ub),
       tau2 = res$tau2, tau = sqrt(res$tau2), i2 = res$I2, h2 = res$H2,
       q = res$QE, q_df = k - 1, q_pval = res$QEp, stat = res$zval, pval = res$pval,
       studies = list(study_id = study_ids, yi = as.numeric(es$yi), vi = as.numeric(es$vi),
                      weight = as.numeric(weights(res))))
}

# metafor's REML stops when tau2 changes by less than 1e-5; as tests/r/fixtures_rma.R, every
# fit here runs to convergence, so that the comparison tests the estimator, not its stopping rule.
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)

cases <- list()

# ---------------------------------------------------------------- two-group means
nd <- dat.normand1999
normand <- data.frame(study_id = nd$source, outcome = "length_of_stay",
                      mean_t = nd$m1i, sd_t = nd$sd1i, n_t = nd$n1i,
                      mean_c = nd$m2i, sd_c = nd$sd2i, n_c = nd$n2i)
csv <- write_table(normand, "normand1999.csv")
for (m in c("MD", "SMD", "ROM")) {
  es <- escalc(m, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)
  res <- rma(yi, vi, data = es, method = "REML", control = ctrl)
  back <- if (m == "ROM") exp else identity
  cases[[length(cases) + 1]] <- fit_case(
    paste0("normand1999_", m), csv,
    sprintf("pool --data %s --outcome length_of_stay --measure %s --json", csv, m), es,
    sprintf('rma(yi, vi, method = "REML", control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000), data = escalc("%s", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999))', m),
    back, normand$study_id, res)
}

# ---------------------------------------------------------------- incidence rates
hd <- dat.hart1999
hart <- data.frame(study_id = hd$study, outcome = "stroke",
                   events_t = hd$x1i, n_t = hd$n1i, time_t = hd$t1i,
                   events_c = hd$x2i, n_c = hd$n2i, time_c = hd$t2i)
csv <- write_table(hart, "hart1999.csv")
es <- escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = hd)
res <- rma(yi, vi, data = es, method = "REML", control = ctrl)
cases[[length(cases) + 1]] <- fit_case(
  "hart1999_IRR", csv, sprintf("pool --data %s --outcome stroke --measure IRR --json", csv), es,
  'rma(yi, vi, method = "REML", control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000), data = escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = dat.hart1999))',
  exp, hart$study_id, res)

# ---------------------------------------------------------------- generic: estimate with its CI
# Each BCG trial's risk ratio and 95% CI, rounded to 2 decimals as a paper prints them; the
# pool reads them with --scale log: yi = log(effect), sei = (log(hi) - log(lo)) / (2 qnorm(0.975)).
bd <- dat.bcg
rr <- summary(escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bd), transf = exp)
bcg <- data.frame(study_id = paste(bd$author, bd$year), outcome = "tb",
                  effect = round(rr$yi, 2), effect_ci_low = round(rr$ci.lb, 2),
                  effect_ci_high = round(rr$ci.ub, 2))
csv <- write_table(bcg, "bcg_gen.csv")
gen <- data.frame(yi = log(bcg$effect),
                  sei = (log(bcg$effect_ci_high) - log(bcg$effect_ci_low)) / (2 * qnorm(0.975)))
es <- escalc("GEN", yi = yi, sei = sei, data = gen)
res <- rma(yi, vi, data = es, method = "REML", control = ctrl)
cases[[length(cases) + 1]] <- fit_case(
  "bcg_GEN_log", csv, sprintf("pool --data %s --outcome tb --measure GEN --scale log --json", csv), es,
  'rma(yi, sei = (log(effect_ci_high) - log(effect_ci_low)) / (2 * qnorm(0.975)) with yi = log(effect), method = "REML", control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)) on the rounded RRs of dat.bcg',
  exp, bcg$study_id, res)

path <- file.path("tests", "fixtures", "cli_outcomes.json")
writeLines(toJSON(list(versions = versions, cases = cases), digits = NA, auto_unbox = TRUE,
                  pretty = TRUE), path)
cat("wrote", path, "\n")
