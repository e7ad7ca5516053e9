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

write_json(list(versions = versions, ctrl = ctrl,
                data = list(yi = yi, vi = vi, x = x, g = g), cases = cases),
           file.path("tests", "fixtures", "metareg_extreme.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
