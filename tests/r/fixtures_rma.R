# Reference results for msc_meta.pooling.rma, from metafor rma.uni().
#
# Run from the repository root:  Rscript tests/r/fixtures_rma.R
# Writes tests/fixtures/rma_bcg.json, rma_pritz1997.json and rma_edge.json.
# Every fit uses control=list(threshold=1e-12, tol=1e-12, maxiter=10000) and
# every confint() control=list(tol=1e-12), so the references hold the exact
# roots rather than metafor's default (looser) stopping points.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
methods <- c("FE", "DL", "REML", "ML", "PM", "HE", "SJ", "HS", "EB")
random_methods <- setdiff(methods, "FE")
out_dir <- file.path("tests", "fixtures")

versions <- list(
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  generated_by = "tests/r/fixtures_rma.R",
  control = "control=list(threshold=1e-12, tol=1e-12, maxiter=10000); confint(control=list(tol=1e-12))"
)

num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else as.numeric(x)

# Back-transformation of the analysis scale, as the natural-scale fields.
back <- function(measure, x, ni) {
  switch(measure,
    RR = exp(x), OR = exp(x), RD = x, PR = x, GEN = x,
    PLO = transf.ilogit(x),
    PAS = transf.iarcsin(x),
    PFT = transf.ipft.hm(x, targs = list(ni = ni)))
}

one_case <- function(name, yi, vi, measure, method, test, level = 95, ni = NULL,
                     data_call = "", stepadj = 1) {
  fit <- rma(yi, vi, method = method, test = test, level = level, control = c(ctrl, list(stepadj = stepadj)))
  call <- sprintf("rma(yi, vi, method=\"%s\", test=\"%s\", level=%s, control=list(threshold=1e-12, tol=1e-12, maxiter=10000%s))",
                  method, test, format(level), if (stepadj == 1) "" else sprintf(", stepadj=%s", format(stepadj)))
  k <- fit$k
  alpha <- (100 - level) / 100
  res <- list(
    name = name, data = data_call, call = call, measure = measure, method = method,
    test = test, level = level, yi = I(as.numeric(yi)), vi = I(as.numeric(vi)),
    ni = if (is.null(ni)) NULL else I(as.numeric(ni)),
    k = k, b = num(fit$b), se = num(fit$se), ci_lb = num(fit$ci.lb), ci_ub = num(fit$ci.ub),
    zval = num(fit$zval), pval = num(fit$pval), tau2 = num(fit$tau2), se_tau2 = num(fit$se.tau2),
    I2 = num(fit$I2), H2 = num(fit$H2), QE = num(fit$QE), QEp = num(fit$QEp),
    vt = num(fit$vt), ddf = num(fit$ddf),
    weights = I(as.numeric(weights(fit)))
  )
  pr <- predict(fit)
  res$pi_lb <- num(pr$pi.lb)
  res$pi_ub <- num(pr$pi.ub)
  # Higgins, Thompson & Spiegelhalter (2009): t with k-2 df on tau2 + se^2.
  if (method != "FE" && k >= 3) {
    crit <- qt(1 - alpha / 2, df = k - 2)
    res$hts_lb <- num(fit$b - crit * sqrt(fit$tau2 + fit$se^2))
    res$hts_ub <- num(fit$b + crit * sqrt(fit$tau2 + fit$se^2))
  } else {
    res$hts_lb <- NA_real_
    res$hts_ub <- NA_real_
  }
  if (method != "FE" && k >= 2) {
    ci <- confint(fit, control = list(tol = 1e-12))
    r <- ci$random
    res$tau2_ci_lb <- num(r["tau^2", "ci.lb"]); res$tau2_ci_ub <- num(r["tau^2", "ci.ub"])
    res$I2_ci_lb <- num(r["I^2(%)", "ci.lb"]); res$I2_ci_ub <- num(r["I^2(%)", "ci.ub"])
    res$H2_ci_lb <- num(r["H^2", "ci.lb"]); res$H2_ci_ub <- num(r["H^2", "ci.ub"])
    res$confint_call <- "confint(fit, control=list(tol=1e-12))"
  }
  res$natural <- list(
    estimate = num(back(measure, fit$b, ni)),
    ci_lb = num(back(measure, fit$ci.lb, ni)),
    ci_ub = num(back(measure, fit$ci.ub, ni)),
    pi_lb = if (is.na(res$pi_lb)) NA_real_ else num(back(measure, res$pi_lb, ni)),
    pi_ub = if (is.na(res$pi_ub)) NA_real_ else num(back(measure, res$pi_ub, ni)),
    hts_lb = if (is.na(res$hts_lb)) NA_real_ else num(back(measure, res$hts_lb, ni)),
    hts_ub = if (is.na(res$hts_ub)) NA_real_ else num(back(measure, res$hts_ub, ni))
  )
  res
}

write_fixture <- function(cases, file, description) {
  doc <- c(versions, list(description = description, cases = cases))
  writeLines(toJSON(doc, auto_unbox = TRUE, digits = NA, na = "null", null = "null",
                    pretty = TRUE),
             file.path(out_dir, file))
  cat("wrote", file.path(out_dir, file), "(", length(cases), "cases )\n")
}

grid <- function(prefix, yi, vi, measure, data_call, methods, tests = c("z", "knha"), ni = NULL) {
  cases <- list()
  for (method in methods) for (test in tests) {
    cases[[length(cases) + 1]] <- one_case(sprintf("%s_%s_%s", prefix, method, test), yi, vi,
                                           measure, method, test, ni = ni, data_call = data_call)
  }
  cases
}

# --- dat.bcg: RR, OR, RD x every method x z / knha -------------------------
cases <- list()
for (measure in c("RR", "OR", "RD")) {
  dat <- escalc(measure, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
  data_call <- sprintf("escalc(\"%s\", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)", measure)
  cases <- c(cases, grid(sprintf("bcg_%s", measure), dat$yi, dat$vi, measure, data_call, methods))
}
dat <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
cases[[length(cases) + 1]] <- one_case("bcg_RR_REML_z_level90", dat$yi, dat$vi, "RR", "REML", "z",
                                       level = 90, data_call = "escalc(\"RR\", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)")
cases[[length(cases) + 1]] <- one_case("bcg_RR_DL_knha_level90", dat$yi, dat$vi, "RR", "DL", "knha",
                                       level = 90, data_call = "escalc(\"RR\", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)")
write_fixture(cases, "rma_bcg.json", "dat.bcg (13 BCG vaccine trials), escalc RR/OR/RD, rma.uni every tau2 method, test z and knha")

# --- dat.pritz1997: single-arm proportions ---------------------------------
cases <- list()
for (measure in c("PR", "PLO", "PFT", "PAS")) {
  dat <- escalc(measure, xi = xi, ni = ni, data = dat.pritz1997)
  data_call <- sprintf("escalc(\"%s\", xi=xi, ni=ni, data=dat.pritz1997)", measure)
  cases <- c(cases, grid(sprintf("pritz_%s", measure), dat$yi, dat$vi, measure, data_call,
                         c("REML", "DL"), ni = dat.pritz1997$ni))
}
write_fixture(cases, "rma_pritz1997.json",
              "dat.pritz1997 (14 single-arm studies), escalc PR/PLO/PFT/PAS, REML and DL, test z and knha; natural scale via transf.ilogit / transf.iarcsin / transf.ipft.hm(targs=list(ni=ni))")

# --- edge cases --------------------------------------------------------------
cases <- list()
zero <- data.frame(ai = c(0, 2, 0, 5, 1, 7), n1i = c(20, 25, 15, 30, 12, 40),
                   ci = c(3, 0, 0, 9, 4, 11), n2i = c(20, 24, 16, 31, 13, 41))
for (measure in c("RR", "OR", "RD")) {
  drop00 <- measure != "RD"
  dat <- escalc(measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = zero, drop00 = drop00)
  data_call <- sprintf("escalc(\"%s\", ai=c(0,2,0,5,1,7), n1i=c(20,25,15,30,12,40), ci=c(3,0,0,9,4,11), n2i=c(20,24,16,31,13,41), drop00=%s)",
                       measure, drop00)
  keep <- !is.na(dat$yi)
  cases <- c(cases, grid(sprintf("zero_%s", measure), dat$yi[keep], dat$vi[keep], measure, data_call, methods))
}
dat <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)[1:2, ]
cases <- c(cases, grid("k2_RR", dat$yi, dat$vi, "RR", "escalc(\"RR\", ...data=dat.bcg)[1:2, ]", methods))
cases <- c(cases, grid("identical", c(0.2, 0.2, 0.2, 0.2), c(0.01, 0.02, 0.03, 0.04), "GEN",
                       "yi=c(0.2,0.2,0.2,0.2), vi=c(0.01,0.02,0.03,0.04)", methods))
cases <- c(cases, grid("lowhet", c(0.1, 0.3, 0.2, 0.25, 0.15), c(0.05, 0.04, 0.06, 0.05, 0.03), "GEN",
                       "yi=c(0.1,0.3,0.2,0.25,0.15), vi=c(0.05,0.04,0.06,0.05,0.03)", methods))
cases <- c(cases, grid("wide", c(-20, 0, 20), c(0.01, 0.02, 0.015), "GEN",
                       "yi=c(-20,0,20), vi=c(0.01,0.02,0.015)", c("DL", "REML", "PM")))
# Fisher scoring oscillates with full steps here (metafor stops: "did not
# converge"); its documented remedy stepadj=0.5 gives the REML estimate.
osc_y <- c(-0.10141967686275724, 0.10300532485678428, -0.32895298770408415, -0.10361533648744131,
           0.24759505364587273, 0.41573767413715007, 0.19861658204022906, 0.08467952525144684,
           0.2950669547558947, 0.07392734590051772)
osc_v <- c(0.07787001130819617, 0.05077330123043021, 0.023034926318256543, 0.1497411510479378,
           0.1926233690773839, 0.14060379241698828, 0.18241217083378355, 0.1753697188459875,
           0.13275033014230458, 0.10929645318969247)
stopifnot(inherits(try(rma(osc_y, osc_v, method = "REML", control = ctrl), silent = TRUE), "try-error"))
for (test in c("z", "knha")) {
  cases[[length(cases) + 1]] <- one_case(sprintf("oscillating_REML_%s", test), osc_y, osc_v, "GEN", "REML", test,
                                         data_call = "simulated (numpy seed 1, group 131)", stepadj = 0.5)
}
cases <- c(cases, grid("oscillating", osc_y, osc_v, "GEN", "simulated (numpy seed 1, group 131)", c("ML", "EB", "PM", "DL")))
cases <- c(cases, suppressWarnings(grid("k1", 0.3, 0.1, "GEN", "yi=0.3, vi=0.1", c("FE", "DL", "REML"))))
write_fixture(cases, "rma_edge.json",
              "Edge cases: single- and double-zero two-arm studies (RR/OR drop00=TRUE, RD keeps them), k = 2, all-identical estimates (tau2 = 0 boundary), low heterogeneity (tau2 truncated at 0), extreme heterogeneity (Q-profile upper bound at metafor's tau2.max), k = 1 (metafor: tau2 = 0, z test even with knha), and data where REML Fisher scoring oscillates (reference with stepadj=0.5)")
