# Reference results for the GLMM separation rule (msc_meta.pooling.glmm_checks.or_divergence).
#
# Run from the repository root:  Rscript tests/r/fixtures_glmm_separation.R
# Writes tests/fixtures/glmm_or_separation.json. Tests never need R.
#
# rma.glmm(measure = "OR", model = "UM.FS", method = "ML", nAGQ = 7) with the
# tight glmerControl of tests/r/fixtures_glmm.R, on near-separated data:
# - "diverging": 3 of 4 studies with a zero cell in mixed directions; metafor
#   returns tau² ~ 1.7e3 (log-OR scale) and says nothing: we refuse (tau² > 100);
# - "quasi_separated_1", "quasi_separated_2": some studies with a zero cell,
#   finite maxima below the rule (tau² 30.7 and 54.7): we fit them, to 1e-6.
# Warnings raised by metafor/lme4 are recorded with each case.

suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(jsonlite)
})

glmer_ctrl <- list(optimizer = "bobyqa", tolPwrss = 1e-12, optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else as.numeric(x)

or_case <- function(name, ai, n1i, ci, n2i) {
  warnings <- character(0)
  fit <- withCallingHandlers(
    rma.glmm(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, model = "UM.FS", method = "ML",
             nAGQ = 7L, control = list(glmerCtrl = glmer_ctrl)),
    warning = function(w) { warnings <<- c(warnings, conditionMessage(w)); invokeRestart("muffleWarning") })
  list(name = name,
       call = "rma.glmm(measure=\"OR\", ai=ai, n1i=n1i, ci=ci, n2i=n2i, model=\"UM.FS\", method=\"ML\", nAGQ=7, control=list(glmerCtrl=list(optimizer=\"bobyqa\", tolPwrss=1e-12, optCtrl=list(rhoend=1e-12, maxfun=1e5))))",
       ai = ai, n1i = n1i, ci = ci, n2i = n2i, k = fit$k,
       b = num(fit$b), se = num(fit$se), tau2 = num(fit$tau2), warnings = warnings)
}

cases <- list(
  or_case("diverging", c(65, 49, 0, 5), c(65, 49, 22, 20), c(0, 0, 22, 3), c(117, 90, 22, 20)),
  or_case("quasi_separated_1", c(10, 0, 5), c(10, 12, 20), c(0, 2, 4), c(12, 11, 20)),
  or_case("quasi_separated_2", c(10, 12, 5), c(10, 12, 20), c(0, 0, 4), c(12, 11, 20)))

out <- list(r_version = R.version.string,
            metafor_version = as.character(packageVersion("metafor")),
            lme4_version = as.character(packageVersion("lme4")),
            generated_by = "tests/r/fixtures_glmm_separation.R", cases = cases)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           file.path("tests", "fixtures", "glmm_or_separation.json"))
