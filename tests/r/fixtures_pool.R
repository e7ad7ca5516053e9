# End-to-end references for `msc-meta pool` (tests/test_cli_pool.py,
# tests/test_analysis.py, tests/test_json_contract.py), from metafor.
#
# Run from the repository root:  Rscript tests/r/fixtures_pool.R
# Writes tests/fixtures/pool_cli.json: for each case the outcome-table rows
# (the tests write them to a CSV and run the CLI on it), the rows the pool
# must use, and metafor's numbers for them. Every rma() uses
# control=list(threshold=1e-12, tol=1e-12, maxiter=10000) and confint()
# control=list(tol=1e-12), so the references hold the exact roots.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
ctrl_s <- "control=list(threshold=1e-12, tol=1e-12, maxiter=10000)"
num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else as.numeric(x)

back <- function(measure, x, ni = NULL) {
  switch(measure, RR = exp(x), OR = exp(x), RD = x, PR = x,
         PLO = transf.ilogit(x), PAS = transf.iarcsin(x),
         PFT = transf.ipft.hm(x, targs = list(ni = ni)))
}

# One fitted model -> the `pool --json` keys (natural scale through `back`).
fit_keys <- function(fit, measure, ni = NULL, pi = "hts", level = 95) {
  k <- fit$k
  alpha <- (100 - level) / 100
  out <- list(
    method = fit$method, k = k, theta = num(fit$b), se = num(fit$se),
    theta_ci_low = num(fit$ci.lb), theta_ci_high = num(fit$ci.ub),
    estimate = num(back(measure, fit$b, ni)),
    ci_low = num(back(measure, fit$ci.lb, ni)), ci_high = num(back(measure, fit$ci.ub, ni)),
    stat = num(fit$zval), pval = num(fit$pval),
    tau2 = num(fit$tau2), i2 = num(fit$I2), h2 = num(fit$H2),
    # rma.mh / rma.peto compute Q over the k.yi tables with an escalc value
    q = num(fit$QE), q_df = (if (is.null(fit$k.yi)) k else fit$k.yi) - 1, q_pval = num(fit$QEp),
    weights = as.numeric(weights(fit))
  )
  out$tau <- sqrt(out$tau2)
  if (inherits(fit, "rma.uni") && fit$method != "FE") {
    if (pi == "hts") {
      if (k >= 3) {
        crit <- qt(1 - alpha / 2, df = k - 2)
        half <- crit * sqrt(fit$tau2 + fit$se^2)
        out$pi_low <- num(back(measure, fit$b - half, ni))
        out$pi_high <- num(back(measure, fit$b + half, ni))
      } else {
        out$pi_low <- NA_real_
        out$pi_high <- NA_real_
      }
    } else {
      pr <- predict(fit, level = level)
      out$pi_low <- num(back(measure, pr$pi.lb, ni))
      out$pi_high <- num(back(measure, pr$pi.ub, ni))
    }
    if (k >= 3) {
      ci <- confint(fit, control = list(tol = 1e-12))
      out$tau2_ci_low <- num(ci$random["tau^2", "ci.lb"])
      out$tau2_ci_high <- num(ci$random["tau^2", "ci.ub"])
      out$i2_ci_low <- num(ci$random["I^2(%)", "ci.lb"])
      out$i2_ci_high <- num(ci$random["I^2(%)", "ci.ub"])
    }
  }
  out
}

study_keys <- function(es, measure) {
  s <- summary(es)
  ni <- attr(es$yi, "ni")
  if (measure == "PFT") {
    est <- transf.ipft(s$yi, ni); lo <- transf.ipft(s$ci.lb, ni); hi <- transf.ipft(s$ci.ub, ni)
  } else {
    est <- back(measure, s$yi); lo <- back(measure, s$ci.lb); hi <- back(measure, s$ci.ub)
  }
  list(yi = as.numeric(es$yi), vi = as.numeric(es$vi), estimate = as.numeric(est),
       ci_low = as.numeric(lo), ci_high = as.numeric(hi))
}

rows_of <- function(df) lapply(seq_len(nrow(df)), function(i) as.list(df[i, , drop = FALSE]))

# ---------------------------------------------------------------- two-arm
# C: double zero (dropped for RR); D: no counts; F: single arm;
# G1/G2: one trial with a shared placebo arm (counted twice, as the CLI warns).
two <- data.frame(
  study_id = c("A", "B", "C", "D", "E", "F", "G1", "G2"),
  outcome = "closure",
  events_t = c(12, 0, 0, NA, 12, 8, 7, 11),
  n_t = c(20, 15, 10, NA, 30, 10, 12, 13),
  events_c = c(2, 6, 0, NA, 13, NA, 4, 4),
  n_c = c(20, 15, 10, NA, 25, NA, 14, 14),
  trial = c("T1", "T2", "T3", "T4", "T5", "T6", "T7", "T7"),
  timepoint_weeks = 24, unit = "patient",
  pct_t = c(NA, NA, NA, "56", NA, NA, NA, NA), pct_c = c(NA, NA, NA, "30", NA, NA, NA, NA),
  route = c("local", "local", "local", "iv", "iv", "local", "iv", NA),
  stringsAsFactors = FALSE
)
used <- two[two$study_id %in% c("A", "B", "E", "G1", "G2"), ]
two_arm <- list(rows = rows_of(two), pooled = used$study_id,
                excluded = c("C", "D", "F"), measures = list())
for (m in c("RR", "OR", "RD")) {
  u <- if (m == "RD") two[two$study_id %in% c("A", "B", "C", "E", "G1", "G2"), ] else used
  es <- escalc(m, ai = u$events_t, n1i = u$n_t, ci = u$events_c, n2i = u$n_c,
               add = 0.5, to = "only0")
  fits <- list(
    REML = fit_keys(rma(yi, vi, data = es, method = "REML", control = ctrl), m),
    FE = fit_keys(rma(yi, vi, data = es, method = "FE", control = ctrl), m),
    DL = fit_keys(rma(yi, vi, data = es, method = "DL", control = ctrl), m),
    REML_knha = fit_keys(rma(yi, vi, data = es, method = "REML", test = "knha", control = ctrl), m),
    MH = fit_keys(rma.mh(ai = u$events_t, n1i = u$n_t, ci = u$events_c, n2i = u$n_c,
                         measure = m, add = 0.5, to = "only0"), m)
  )
  if (m == "OR") {
    fits$PETO <- fit_keys(rma.peto(ai = u$events_t, n1i = u$n_t, ci = u$events_c, n2i = u$n_c,
                                   add = 0.5, to = "only0"), "OR")
  }
  two_arm$measures[[m]] <- list(
    pooled = u$study_id,
    data = sprintf("escalc(\"%s\", ai=events_t, n1i=n_t, ci=events_c, n2i=n_c, add=0.5, to=\"only0\") over studies %s",
                   m, paste(u$study_id, collapse = ", ")),
    calls = c(sprintf("rma(yi, vi, method=M, %s) for M in REML, FE, DL; test=\"knha\" for REML_knha", ctrl_s),
              "rma.mh(ai, n1i, ci, n2i, measure=M, add=0.5, to=\"only0\") (drop00=TRUE default)",
              "rma.peto(ai, n1i, ci, n2i, add=0.5, to=\"only0\")",
              "PI hts: b -/+ qt(0.975, k-2) * sqrt(tau2 + se^2); confint(fit, control=list(tol=1e-12))"),
    studies = study_keys(es, m), fits = fits)
}

# Subgroups by route: local = A, B (C dropped); iv = E, G1; (blank) = G2.
sub <- list()
for (g in c("iv", "local")) {
  u <- used[!is.na(used$route) & used$route == g, ]
  es <- escalc("RR", ai = u$events_t, n1i = u$n_t, ci = u$events_c, n2i = u$n_c, add = 0.5, to = "only0")
  sub[[g]] <- rma(yi, vi, data = es, method = "REML", control = ctrl)
}
g2 <- used[is.na(used$route), ]
es_g2 <- escalc("RR", ai = g2$events_t, n1i = g2$n_t, ci = g2$events_c, n2i = g2$n_c, add = 0.5, to = "only0")
theta_g <- c(sub$iv$b, sub$local$b, es_g2$yi)
se_g <- c(sub$iv$se, sub$local$se, sqrt(es_g2$vi))
between <- rma(theta_g, sei = se_g, method = "FE")
two_arm$by_route <- list(
  call = "per group: rma(yi, vi, method=\"REML\"); test: rma(theta_g, sei=se_g, method=\"FE\") -> QE, QEp (groups iv, local, (blank) with k = 1)",
  groups = c("iv", "local", "(blank)"),
  iv = fit_keys(sub$iv, "RR"), local = fit_keys(sub$local, "RR"),
  blank_theta = num(es_g2$yi), blank_se = num(sqrt(es_g2$vi)),
  q_between = num(between$QE), df = 2, pval = num(between$QEp))

# ---------------------------------------------------------------- single-arm
# S2 (0/15) and S4 (20/20) get the continuity correction under PLO and PR;
# N has no counts; T is two-arm: its treatment arm is pooled.
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
single_arm <- list(rows = rows_of(single), pooled = su$study_id, excluded = "N", measures = list())
for (m in c("PLO", "PR", "PFT", "PAS")) {
  # PFT and PAS get no continuity correction: escalc's own default (add=0) for them.
  if (m %in% c("PFT", "PAS")) {
    es <- escalc(m, xi = su$events_t, ni = su$n_t)
    data_call <- sprintf("escalc(\"%s\", xi=events_t, ni=n_t)", m)
  } else {
    es <- escalc(m, xi = su$events_t, ni = su$n_t, add = 0.5, to = "only0")
    data_call <- sprintf("escalc(\"%s\", xi=events_t, ni=n_t, add=0.5, to=\"only0\")", m)
  }
  ni <- su$n_t
  single_arm$measures[[m]] <- list(
    data = data_call,
    calls = sprintf("rma(yi, vi, method=M, %s); natural scale as transf.ilogit / transf.ipft.hm(ni=n_t) / transf.iarcsin", ctrl_s),
    studies = study_keys(es, m),
    fits = list(REML = fit_keys(rma(yi, vi, data = es, method = "REML", control = ctrl), m, ni),
                FE = fit_keys(rma(yi, vi, data = es, method = "FE", control = ctrl), m, ni)))
}

# ---------------------------------------------------------------- k = 2
k2 <- data.frame(study_id = c("P", "Q"), outcome = "closure", events_t = c(15, 22), n_t = c(30, 40),
                 events_c = c(9, 12), n_c = c(28, 41), stringsAsFactors = FALSE)
es <- escalc("RR", ai = k2$events_t, n1i = k2$n_t, ci = k2$events_c, n2i = k2$n_c)
fit <- rma(yi, vi, data = es, method = "REML", control = ctrl)
k_two <- list(rows = rows_of(k2),
              call = sprintf("rma(yi, vi, method=\"REML\", %s); predict(fit) for --pi z", ctrl_s),
              studies = study_keys(es, "RR"),
              REML = fit_keys(fit, "RR"), REML_pi_z = fit_keys(fit, "RR", pi = "z"))

# ---------------------------------------------------------------- k = 1
# The Cx601 seed (ADMIRE-CD): 53/107 vs 36/105 combined remission at week 24.
k1 <- data.frame(study_id = "Cx601", outcome = "combined_remission", events_t = 53, n_t = 107,
                 events_c = 36, n_c = 105, stringsAsFactors = FALSE)
es <- escalc("RR", ai = 53, n1i = 107, ci = 36, n2i = 105)
k_one <- list(rows = rows_of(k1), call = "summary(escalc(\"RR\", ai=53, n1i=107, ci=36, n2i=105))",
              studies = study_keys(es, "RR"))

# ---------------------------------------------------------------- curated
# The shipped table's fistula_closure at 208 weeks per patient (source 002:
# three dose cohorts of one trial, each against the same 0/3 placebo arm).
cur <- data.frame(study_id = c("leiden_bmmsc_c1", "leiden_bmmsc_c2", "leiden_bmmsc_c3"),
                  events_t = c(3, 4, 1), n_t = c(4, 4, 5), events_c = 0, n_c = 3)
es <- escalc("RR", ai = cur$events_t, n1i = cur$n_t, ci = cur$events_c, n2i = cur$n_c,
             add = 0.5, to = "only0")
curated <- list(rows = rows_of(cur),
                call = sprintf("escalc(\"RR\", add=0.5, to=\"only0\"); rma(yi, vi, method=M, %s)", ctrl_s),
                studies = study_keys(es, "RR"),
                REML = fit_keys(rma(yi, vi, data = es, method = "REML", control = ctrl), "RR"),
                FE = fit_keys(rma(yi, vi, data = es, method = "FE", control = ctrl), "RR"))

fixture <- list(
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_by = "tests/r/fixtures_pool.R",
  control = "rma(control=list(threshold=1e-12, tol=1e-12, maxiter=10000)); confint(control=list(tol=1e-12))",
  description = "msc-meta pool end to end: outcome-table rows and metafor's numbers for the rows pooled",
  two_arm = two_arm, single_arm = single_arm, k_two = k_two, k_one = k_one,
  curated_fistula_closure_208_patient = curated
)
write_json(fixture, file.path("tests", "fixtures", "pool_cli.json"), auto_unbox = TRUE, digits = NA,
           pretty = TRUE, na = "null")
cat("wrote tests/fixtures/pool_cli.json\n")
