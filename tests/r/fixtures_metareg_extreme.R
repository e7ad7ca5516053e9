# Reference results for the tau² engine with moderators at an extreme
# variance ratio (msc_meta.pooling.tau2 with a design matrix, via
# msc_meta.pooling.metareg.fit_mods).
#
# Run from the repository root:   Rscript tests/r/fixtures_metareg_extreme.R
# Writes tests/fixtures/metareg_extreme.json. Tests never need R.
#
# Data: 14 simulated studies whose sampling variances span 1e-6 .. 1e3
# (ratio 1e9, beyond metafor's own warning threshold 1e7), with a numeric
# moderator x and a two-level factor g; yi drawn with tau² = 0.04. The data
# are written into the fixture, so the RNG only matters here.

suppressMessages(library(metafor))
suppressMessages(library(jsonlite))

ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
versions <- list(R = R.version.string, metafor = as.character(packageVersion("metafor")))

set.seed(20261207)
k  <- 14
vi <- 10^seq(-6, 3, length.out = k)
x  <- round(runif(k, 0, 10), 2)
g  <- rep(c("a", "b"), length.out = k)
yi <- round(0.2 + 0.05 * x + 0.3 * (g == "b") + rnorm(k, 0, sqrt(0.04 + vi)), 6)
dat <- data.frame(yi = yi, vi = vi, x = x, g = g)
num <- function(z) as.numeric(unname(z))

cases <- list()
for (mods in c("~ x", "~ x + g")) {
  for (method in c("REML", "ML", "EB", "PM", "DL", "HE", "SJ", "HS", "FE")) {
    # metafor warns about the variance ratio: that warning is what the case is about
    res <- suppressWarnings(rma(yi, vi, mods = as.formula(mods), data = dat, method = method,
                                control = ctrl))
    cases[[length(cases) + 1]] <- list(
      mods = mods, method = method,
      call = sprintf('rma(yi, vi, mods = %s, data = dat, method = "%s", control = ctrl)', mods, method),
      names = rownames(res$beta), p = res$p, k = res$k,
      beta = num(res$beta), se = num(res$se), zval = num(res$zval), pval = num(res$pval),
      tau2 = num(res$tau2), se_tau2 = if (method == "FE") NULL else num(res$se.tau2),
      I2 = num(res$I2), H2 = num(res$H2), R2 = if (is.null(res$R2)) NULL else num(res$R2),
      QE = num(res$QE), QEp = num(res$QEp), QM = num(res$QM), QMp = num(res$QMp))
  }
}

# REML Fisher scoring that needs more than metafor's 100 steps at threshold 1e-12
# (found by simulation); the reference is metafor with stepadj = 0.5, as the
# oscillating fixtures of tests/r/fixtures_rma.R
slow <- data.frame(yi = c(0.0904, 0.6044, 0.3591, 0.204, -0.2477, -0.0427, 0.5421, 0.4795),
                   vi = c(0.2017, 0.0742, 0.025, 0.6381, 0.1696, 2.4087, 0.7235, 1.7924),
                   x = c(-1.136, 1.811, -1.326, 1.265, -1.049, 0.767, -0.686, 1.559))
slow_fail <- tryCatch({ rma(yi, vi, mods = ~ x, data = slow, method = "REML",
                           control = list(threshold = 1e-12, tol = 1e-12)); "" },
                      error = function(e) conditionMessage(e))
slow_fit <- rma(yi, vi, mods = ~ x, data = slow, method = "REML",
                control = c(ctrl, list(stepadj = 0.5)))
slow_case <- list(
  call = 'rma(yi, vi, mods = ~ x, data = slow, method = "REML", control = c(ctrl, list(stepadj = 0.5)))',
  error_at_default_maxiter = slow_fail,
  yi = slow$yi, vi = slow$vi, x = slow$x,
  tau2 = num(slow_fit$tau2), beta = num(slow_fit$beta), se = num(slow_fit$se))

write_json(list(versions = versions, ctrl = ctrl,
                data = list(yi = yi, vi = vi, x = x, g = g), cases = cases, slow_fisher_scoring = slow_case),
           file.path("tests", "fixtures", "metareg_extreme.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
