# The R baseline of `msc-meta pool --outcome KEY [--timepoint W] [--unit U] --json`:
# read the outcome table, select the rows, escalc(), rma(), predict(), confint(),
# print one JSON document. Timed as a whole process by benchmarks/bench_startup.py.
#
# Usage: Rscript pool_metafor.R TABLE.csv OUTCOME [TIMEPOINT|NA] [UNIT|NA] [METHOD] [IDS]
#   IDS: comma-separated study_ids to keep (the studies msc-meta pooled), so
#   that msc-meta's selection rules (e.g. leaving out a group whose people a
#   finer row already counts) need not be re-implemented here
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
path <- args[1]
outcome <- args[2]
timepoint <- if (length(args) >= 3 && args[3] != "NA") as.numeric(args[3]) else NA
unit <- if (length(args) >= 4 && args[4] != "NA") args[4] else NA
method <- if (length(args) >= 5) args[5] else "REML"
ids <- if (length(args) >= 6 && nzchar(args[6])) strsplit(args[6], ",", fixed = TRUE)[[1]] else NULL

d <- read.csv(path, stringsAsFactors = FALSE)
d <- d[d$outcome == outcome, ]
if (!is.na(timepoint)) d <- d[!is.na(d$timepoint_weeks) & d$timepoint_weeks == timepoint, ]
if (!is.na(unit)) d <- d[d$unit == unit, ]
d <- d[!is.na(d$events_t) & !is.na(d$n_t), ]
if (!is.null(ids)) d <- d[d$study_id %in% ids, ]
two_arm <- all(!is.na(d$events_c) & !is.na(d$n_c))
if (two_arm) {
  measure <- "RR"
  # as msc-meta: studies with no events in either arm are left out of RR
  d <- d[!(d$events_t == 0 & d$events_c == 0), ]
  es <- escalc(measure = "RR", ai = events_t, n1i = n_t, ci = events_c, n2i = n_c,
               data = d, add = 1/2, to = "only0")
  back <- exp
} else {
  measure <- "PLO"
  es <- escalc(measure = "PLO", xi = events_t, ni = n_t, data = d, add = 1/2, to = "only0")
  back <- transf.ilogit
}
fit <- rma(yi, vi, data = es, method = method,
           control = list(threshold = 1e-10, maxiter = 1000))
k <- fit$k
alpha <- 0.05
se_pred <- sqrt(fit$tau2 + fit$se^2)
# the hts prediction interval msc-meta prints by default (t with k-2 df)
pi <- if (k >= 3) fit$b[1] + c(-1, 1) * qt(1 - alpha / 2, k - 2) * se_pred else c(NA, NA)
ci_tau2 <- if (k >= 2) confint(fit)$random[1, 2:3] else c(NA, NA)
w <- weights(fit)
out <- list(
  measure = measure, method = method, k = k,
  theta = fit$b[1], se = fit$se,
  estimate = back(fit$b[1]), ci_low = back(fit$ci.lb), ci_high = back(fit$ci.ub),
  pi_low = back(pi[1]), pi_high = back(pi[2]),
  tau2 = fit$tau2, tau = sqrt(fit$tau2), i2 = fit$I2, h2 = fit$H2,
  q = fit$QE, q_df = k - 1, q_pval = fit$QEp,
  stat = fit$zval, pval = fit$pval,
  tau2_ci_low = unname(ci_tau2[1]), tau2_ci_high = unname(ci_tau2[2]),
  studies = data.frame(study_id = d$study_id, yi = as.numeric(es$yi), vi = as.numeric(es$vi),
                       weight = as.numeric(w))
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null"), "\n")
