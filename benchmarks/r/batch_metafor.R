# The R baseline of benchmarks/bench_batch.py: a loop of metafor rma() over
# many groups, timed inside R (proc.time around the loop only; R start-up,
# loading metafor and reading the CSV are excluded).
#
# Usage: Rscript batch_metafor.R DATA.csv OUT.json THRESHOLD MAXITER [NGROUPS]
#   DATA.csv  columns group,yi,vi (written by the benchmark, 17 digits)
#   THRESHOLD rma control threshold (msc-meta's REML tolerance is 1e-10);
#             "default" runs rma() with metafor's default control
#   NGROUPS   only the first NGROUPS groups (default: all)
# Where Fisher scoring fails, the fit is retried with control stepadj = 0.5
# (metafor's documented remedy), and the retry is inside the timing.
suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
out_path <- args[2]
threshold <- args[3]
maxiter <- as.integer(args[4])
ctrl <- if (threshold == "default") list() else list(threshold = as.numeric(threshold), maxiter = maxiter)
groups <- split(d, d$group)
if (length(args) >= 5) groups <- groups[seq_len(min(length(groups), as.integer(args[5])))]
G <- length(groups)
res <- matrix(NA_real_, nrow = G, ncol = 9,
              dimnames = list(NULL, c("theta", "se", "tau2", "ci_low", "ci_high", "q", "i2", "pval", "retry")))
t0 <- proc.time()
for (g in seq_len(G)) {
  x <- groups[[g]]
  retry <- 0
  fit <- tryCatch(rma(x$yi, x$vi, method = "REML", control = ctrl), error = function(e) NULL)
  if (is.null(fit)) {
    retry <- 1
    fit <- tryCatch(rma(x$yi, x$vi, method = "REML", control = c(ctrl, list(stepadj = 0.5))),
                    error = function(e) NULL)
  }
  if (!is.null(fit))
    res[g, ] <- c(fit$b[1], fit$se, fit$tau2, fit$ci.lb, fit$ci.ub, fit$QE, fit$I2, fit$pval, retry)
  else
    res[g, "retry"] <- 2
}
elapsed <- (proc.time() - t0)[["elapsed"]]
writeLines(toJSON(list(
  groups = G, elapsed = elapsed, control = if (threshold == "default") "default" else ctrl,
  R = paste(R.version$major, R.version$minor, sep = "."),
  metafor = as.character(packageVersion("metafor")),
  results = as.data.frame(res)
), digits = NA, na = "null", auto_unbox = TRUE, dataframe = "columns"), out_path)
