# The R baseline of benchmarks/bench_scale.py (target 2): for each group of a
# two-arm count table, escalc("RR") then rma(method = "REML"), in a loop,
# timed inside R (proc.time around the loop only; R start-up, loading
# metafor, reading the CSV and split() are excluded). This is the work
# pool_many() does per group (effect sizes and the REML fit).
#
# Usage: Rscript scale_metafor.R DATA.csv OUT.json [NGROUPS]
#   DATA.csv  columns study_id,outcome,g,events_t,n_t,events_c,n_c
#   NGROUPS   only the first NGROUPS groups (in order of g; default: all)
# control = threshold 1e-10, maxiter 1000 (msc-meta's REML tolerance); where
# Fisher scoring fails the fit is retried with stepadj = 0.5 inside the timing.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
out_path <- args[2]
ctrl <- list(threshold = 1e-10, maxiter = 1000)
groups <- split(d, d$g)
if (length(args) >= 3) groups <- groups[seq_len(min(length(groups), as.integer(args[3])))]
G <- length(groups)
res <- matrix(NA_real_, nrow = G, ncol = 10,
              dimnames = list(NULL, c("g", "theta", "se", "tau2", "ci_low", "ci_high", "q", "i2",
                                      "pval", "retry")))
t0 <- proc.time()
for (i in seq_len(G)) {
  x <- groups[[i]]
  es <- escalc("RR", ai = x$events_t, n1i = x$n_t, ci = x$events_c, n2i = x$n_c)
  retry <- 0
  fit <- tryCatch(rma(es$yi, es$vi, method = "REML", control = ctrl), error = function(e) NULL)
  if (is.null(fit)) {
    retry <- 1
    fit <- tryCatch(rma(es$yi, es$vi, method = "REML", control = c(ctrl, list(stepadj = 0.5))),
                    error = function(e) NULL)
  }
  if (!is.null(fit))
    res[i, ] <- c(x$g[1], fit$b[1], fit$se, fit$tau2, fit$ci.lb, fit$ci.ub, fit$QE, fit$I2,
                  fit$pval, retry)
  else
    res[i, c("g", "retry")] <- c(x$g[1], 2)
}
elapsed <- (proc.time() - t0)[["elapsed"]]
writeLines(toJSON(list(
  groups = G, elapsed = elapsed, control = ctrl,
  R = paste(R.version$major, R.version$minor, sep = "."),
  metafor = as.character(packageVersion("metafor")),
  results = as.data.frame(res)
), digits = NA, na = "null", auto_unbox = TRUE, dataframe = "columns"), out_path)
