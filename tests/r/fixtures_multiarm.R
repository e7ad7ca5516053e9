# References for multi-arm trials with a shared control arm
# (`msc-meta pool --multiarm combine|split`, tests/test_multiarm.py).
#
# Run from the repository root:  Rscript tests/r/fixtures_multiarm.R
# Writes tests/fixtures/multiarm.json.
#
# metafor has no option for a shared control arm; the Cochrane Handbook
# (section 23.3.4) describes the two remedies msc-meta implements, and both
# are plain data steps before escalc():
#   combine: sum events and n of the treatment arms that share the control,
#            one comparison against the control counted once;
#   split:   keep each treatment arm and give it events_c/m of n_c/m
#            (m comparisons), non-integer counts that escalc() accepts.
# Each case below does that step by hand, then runs escalc()/rma()/rma.mh()/
# rma.peto() exactly as tests/r/fixtures_pool.R does. Every rma() uses
# control=list(threshold=1e-12, tol=1e-12, maxiter=10000).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
ctrl_s <- "control=list(threshold=1e-12, tol=1e-12, maxiter=10000)"
num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else as.numeric(x)
back <- function(measure, x) switch(measure, RR = exp(x), OR = exp(x), RD = x)

fit_keys <- function(fit, measure, level = 95) {
  k <- fit$k
  alpha <- (100 - level) / 100
  out <- list(
    method = fit$method, k = k, theta = num(fit$b), se = num(fit$se),
    estimate = num(back(measure, fit$b)),
    ci_low = num(back(measure, fit$ci.lb)), ci_high = num(back(measure, fit$ci.ub)),
    stat = num(fit$zval), pval = num(fit$pval),
    tau2 = num(fit$tau2), i2 = num(fit$I2), h2 = num(fit$H2),
    q = num(fit$QE), q_df = (if (is.null(fit$k.yi)) k else fit$k.yi) - 1, q_pval = num(fit$QEp),
    weights = as.numeric(weights(fit))
  )
  if (inherits(fit, "rma.uni") && fit$method != "FE" && k >= 3) {
    crit <- qt(1 - alpha / 2, df = k - 2)
    half <- crit * sqrt(fit$tau2 + fit$se^2)
    out$pi_low <- num(back(measure, fit$b - half))
    out$pi_high <- num(back(measure, fit$b + half))
  }
  out
}

study_keys <- function(es, measure) {
  s <- summary(es)
  list(yi = as.numeric(es$yi), vi = as.numeric(es$vi), estimate = as.numeric(back(measure, s$yi)),
       ci_low = as.numeric(back(measure, s$ci.lb)), ci_high = as.numeric(back(measure, s$ci.ub)))
}

rows_of <- function(df) lapply(seq_len(nrow(df)), function(i) as.list(df[i, , drop = FALSE]))

# The counts a pool uses (after combine or split): study labels and 2x2 cells.
pooled_of <- function(d) list(study_id = d$study_id, events_t = d$events_t, n_t = d$n_t,
                               events_c = d$events_c, n_c = d$n_c)

# escalc + the fits the tests compare, for one data set of 2x2 counts.
fits_for <- function(d, measures = c("RR", "OR", "RD"), k1 = FALSE) {
  out <- list(pooled = pooled_of(d))
  for (m in measures) {
    es <- escalc(m, ai = d$events_t, n1i = d$n_t, ci = d$events_c, n2i = d$n_c,
                 add = 0.5, to = "only0")
    entry <- list(studies = study_keys(es, m))
    if (!k1) {
      entry$REML <- fit_keys(rma(yi, vi, data = es, method = "REML", control = ctrl), m)
      entry$FE <- fit_keys(rma(yi, vi, data = es, method = "FE", control = ctrl), m)
      entry$DL <- fit_keys(rma(yi, vi, data = es, method = "DL", control = ctrl), m)
      entry$REML_knha <- fit_keys(rma(yi, vi, data = es, method = "REML", test = "knha",
                                      control = ctrl), m)
      entry$MH <- fit_keys(rma.mh(ai = d$events_t, n1i = d$n_t, ci = d$events_c, n2i = d$n_c,
                                  measure = m, add = 0.5, to = "only0"), m)
      if (m == "OR") {
        entry$PETO <- fit_keys(rma.peto(ai = d$events_t, n1i = d$n_t, ci = d$events_c,
                                        n2i = d$n_c, add = 0.5, to = "only0"), "OR")
      }
    }
    out[[m]] <- entry
  }
  out
}

combine <- function(d, members, label) {
  # The combined comparison takes the first member's place, as in msc-meta.
  sel <- d$study_id %in% members
  first <- which(sel)[1]
  keep <- !sel | seq_len(nrow(d)) == first
  out <- d[keep, ]
  i <- which(which(keep) == first)
  out$study_id[i] <- label
  out$events_t[i] <- sum(d$events_t[sel])
  out$n_t[i] <- sum(d$n_t[sel])
  out
}

split_control <- function(d, members) {
  sel <- d$study_id %in% members
  m <- sum(sel)
  d$events_c[sel] <- d$events_c[sel] / m
  d$n_c[sel] <- d$n_c[sel] / m
  d
}

calls <- c(
  "combine: events_t, n_t summed over the members (one comparison, the control once)",
  "split: events_c/m, n_c/m for each of the m members (non-integer counts)",
  "escalc(M, ai=events_t, n1i=n_t, ci=events_c, n2i=n_c, add=0.5, to=\"only0\")",
  sprintf("rma(yi, vi, method=X, %s) for X in REML, FE, DL; test=\"knha\" for REML_knha", ctrl_s),
  "rma.mh(ai, n1i, ci, n2i, measure=M, add=0.5, to=\"only0\"); rma.peto(ai, n1i, ci, n2i, add=0.5, to=\"only0\")",
  "PI hts: b -/+ qt(0.975, k-2) * sqrt(tau2 + se^2)"
)

# ------------------------------------------------ curated: source 002 (Leiden bmMSC)
# Three dose cohorts of one trial against one 0/3 placebo arm, 208 weeks.
leiden <- c("leiden_bmmsc_c1", "leiden_bmmsc_c2", "leiden_bmmsc_c3")
cur_p <- data.frame(study_id = leiden, events_t = c(3, 4, 1), n_t = c(4, 4, 5),
                    events_c = 0, n_c = 3, stringsAsFactors = FALSE)
cur_f <- data.frame(study_id = leiden, events_t = c(5, 6, 3), n_t = c(8, 6, 7),
                    events_c = 0, n_c = 3, stringsAsFactors = FALSE)
curated <- list(
  patient = list(rows = rows_of(cur_p),
                 combine = fits_for(combine(cur_p, leiden, "leiden_bmmsc_c1+c2+c3"), k1 = TRUE),
                 split = fits_for(split_control(cur_p, leiden))),
  fistula = list(rows = rows_of(cur_f),
                 combine = fits_for(combine(cur_f, leiden, "leiden_bmmsc_c1+c2+c3"), k1 = TRUE),
                 split = fits_for(split_control(cur_f, leiden), measures = c("RR", "RD")))
)

# ------------------------------------------------ a small table
# Trial X: three arms D1-D3 against one 2/10 control (split: 2/3 of 10/3).
small <- data.frame(
  study_id = c("D1", "Y", "D2", "Z", "D3", "W"),
  outcome = "closure",
  events_t = c(6, 4, 8, 9, 5, 3), n_t = c(10, 10, 12, 15, 9, 8),
  events_c = c(2, 3, 2, 2, 2, 1), n_c = c(10, 11, 10, 14, 10, 9),
  trial = c("X", "Y", "X", "Z", "X", "W"),
  timepoint_weeks = 24, unit = "patient",
  route = c("local", "local", "local", "iv", "iv", "local"),
  stringsAsFactors = FALSE
)
xs <- c("D1", "D2", "D3")
small_case <- list(rows = rows_of(small),
                   combine = fits_for(combine(small, xs, "D1+D2+D3")),
                   split = fits_for(split_control(small, xs)))

# --by route. combine: D1+D2 (local) and D3 (iv) fall in two subgroups, so the
# 2/10 control is divided between them (1/5 each) and counts once in the
# subgroup test; split: every member gets 2/3 of 10/3, wherever it falls.
by_route <- function(d) {
  out <- list()
  est <- c(); se <- c()
  for (g in c("iv", "local")) {
    u <- d[d$route == g, ]
    es <- escalc("RR", ai = u$events_t, n1i = u$n_t, ci = u$events_c, n2i = u$n_c,
                 add = 0.5, to = "only0")
    fit <- rma(yi, vi, data = es, method = "REML", control = ctrl)
    out[[g]] <- c(fit_keys(fit, "RR"), list(pooled = pooled_of(u), studies = study_keys(es, "RR")))
    est <- c(est, fit$b); se <- c(se, fit$se)
  }
  between <- rma(est, sei = se, method = "FE")
  out$q_between <- num(between$QE)
  out$pval <- num(between$QEp)
  out$df <- 1
  out
}
local_part <- combine(small[small$route == "local", ], c("D1", "D2"), "D1+D2")
by_combine <- rbind(local_part, small[small$route == "iv", ])
sel <- by_combine$study_id %in% c("D1+D2", "D3")
by_combine$events_c[sel] <- 2 / 2
by_combine$n_c[sel] <- 10 / 2
small_case$by_route <- list(
  call = "per route: escalc(\"RR\", add=0.5, to=\"only0\"); rma(method=\"REML\"); test: rma(b_g, sei=se_g, method=\"FE\") -> QE, QEp",
  combine = by_route(by_combine),
  split = by_route(split_control(small, xs)))

# ------------------------------------------------ pool_cli.json's two-arm table
# G1 and G2 (trial T7) share a 4/14 control. C (double zero) and D, F are
# left out of RR whatever --multiarm says.
two <- data.frame(
  study_id = c("A", "B", "E", "G1", "G2"),
  events_t = c(12, 0, 12, 7, 11), n_t = c(20, 15, 30, 12, 13),
  events_c = c(2, 6, 13, 4, 4), n_c = c(20, 15, 25, 14, 14), stringsAsFactors = FALSE)
two_arm <- list(combine = fits_for(combine(two, c("G1", "G2"), "G1+G2"), measures = "RR"),
                split = fits_for(split_control(two, c("G1", "G2")), measures = "RR"))

fixture <- list(
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  generated_by = "tests/r/fixtures_multiarm.R",
  control = ctrl_s,
  description = paste("pool --multiarm combine|split: the combined / split 2x2 counts and metafor's",
                      "escalc/rma/rma.mh/rma.peto on them (Cochrane Handbook 23.3.4)"),
  calls = calls,
  curated_fistula_closure_208 = curated,
  small = small_case,
  two_arm = two_arm
)
write_json(fixture, file.path("tests", "fixtures", "multiarm.json"), auto_unbox = TRUE, digits = NA,
           pretty = TRUE, na = "null")
cat("wrote tests/fixtures/multiarm.json\n")
