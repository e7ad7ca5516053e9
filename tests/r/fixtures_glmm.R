# Reference results for msc_meta.pooling.exact, .glmm and .fragility.
#
# Run from the repository root:  Rscript tests/r/fixtures_glmm.R
# Writes tests/fixtures/exact_proportion_ci.json, exact_fisher.json,
# glmm_*.json (PLO) and glmm_or_*.json (two-arm OR, model="UM.FS").
#
# - proportion intervals: binom.test()$conf.int (Clopper-Pearson) and
#   prop.test(correct=FALSE)$conf.int (Wilson score);
# - Fisher's exact test: fisher.test()$p.value, plus the fragility index
#   computed here by brute force with fisher.test() (convention of
#   msc_meta.pooling.fragility, see docs/methods.md);
# - GLMM: metafor rma.glmm(measure="PLO", method="ML") and
#   rma.glmm(measure="OR", model="UM.FS", method="ML") with lme4. glmer's
#   default optimiser stops ~1e-6 (relative) short of the optimum, so every
#   fit passes a tight glmerControl (bobyqa, rhoend=1e-12, tolPwrss=1e-12);
#   nAGQ is always given explicitly. The lme4 AGQ deviance is recorded from
#   a direct glmer() fit of the same model and controls.

suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(jsonlite)
})

out_dir <- file.path("tests", "fixtures")
versions <- list(
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  lme4_version = as.character(packageVersion("lme4")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  generated_by = "tests/r/fixtures_glmm.R"
)
num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else as.numeric(x)
write_fixture <- function(obj, name) {
  path <- file.path(out_dir, name)
  writeLines(toJSON(c(versions, obj), auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE), path)
  cat("wrote", path, "\n")
}

# ---------------------------------------------------------------------------
# proportion intervals
# ---------------------------------------------------------------------------
grid <- expand.grid(x = c(0, 1, 2, 3, 5), n = c(1, 3, 5, 10, 12, 30, 107))
grid <- rbind(grid, data.frame(x = c(53, 36, 107, 105, 10, 12, 29, 30), n = c(107, 105, 107, 105, 10, 12, 30, 30)))
grid <- grid[grid$x <= grid$n, ]
cases <- list()
for (level in c(95, 90, 99)) {
  for (i in seq_len(nrow(grid))) {
    x <- grid$x[i]; n <- grid$n[i]
    bt <- binom.test(x, n, conf.level = level / 100)$conf.int
    pt <- suppressWarnings(prop.test(x, n, correct = FALSE, conf.level = level / 100))$conf.int
    cases[[length(cases) + 1]] <- list(x = x, n = n, level = level,
      exact_low = bt[1], exact_high = bt[2], wilson_low = pt[1], wilson_high = pt[2])
  }
}
write_fixture(list(calls = c("binom.test(x, n, conf.level=level/100)$conf.int",
                             "prop.test(x, n, correct=FALSE, conf.level=level/100)$conf.int"),
                   cases = cases), "exact_proportion_ci.json")

# ---------------------------------------------------------------------------
# Fisher's exact test and the fragility index
# ---------------------------------------------------------------------------
fisher_p <- function(a, n1, c, n2) fisher.test(matrix(c(a, c, n1 - a, n2 - c), 2))$p.value

# Convention (Walsh et al. 2014, J Clin Epidemiol 67:622): significant
# (p < 0.05) -> in the arm with the lower event proportion, turn non-events
# into events one at a time until p >= 0.05; the index is the number of
# changes (NA if the arm runs out of non-events first). Not significant ->
# reverse index: the fewest status changes that make p < 0.05, moving the
# arms apart (non-event -> event in the higher arm and/or event -> non-event
# in the lower arm), searched over every split of the changes.
# Ties in proportion: the arm with the fewer events is "lower" (Walsh);
# a complete tie is lowered/raised in whichever direction needs fewer changes.
fragility <- function(a, n1, c, n2, alpha = 0.05) {
  p <- fisher_p(a, n1, c, n2)
  if (p < alpha) {
    low_is_t <- (a / n1 < c / n2) || (a / n1 == c / n2 && a <= c)
    m <- 0
    repeat {
      m <- m + 1
      aa <- a + if (low_is_t) m else 0
      cc <- c + if (low_is_t) 0 else m
      if (aa > n1 || cc > n2) return(list(p = p, significant = TRUE, fi = NA))
      if (fisher_p(aa, n1, cc, n2) >= alpha) return(list(p = p, significant = TRUE, fi = m))
    }
  } else {
    best <- NA
    dirs <- if (a / n1 > c / n2) list(c(1, -1)) else if (a / n1 < c / n2) list(c(-1, 1)) else list(c(1, -1), c(-1, 1))
    for (m in 1:(n1 + n2)) {
      for (d in dirs) {
        for (j in 0:m) {
          aa <- a + d[1] * j
          cc <- c + d[2] * (m - j)
          if (aa < 0 || aa > n1 || cc < 0 || cc > n2) next
          if (fisher_p(aa, n1, cc, n2) < alpha) { best <- m; break }
        }
        if (!is.na(best)) break
      }
      if (!is.na(best)) break
    }
    list(p = p, significant = FALSE, fi = best)
  }
}

tables <- list(
  c(53, 107, 36, 105),  # Cx601 (ADMIRE-CD) week 24, as in the README
  c(5, 5, 1, 5), c(4, 5, 0, 5), c(3, 5, 1, 5), c(0, 10, 0, 10), c(10, 10, 10, 10),
  c(12, 20, 4, 20), c(30, 100, 15, 100), c(1, 50, 9, 50), c(6, 100, 5, 10),
  c(7, 15, 7, 15), c(8, 20, 2, 22), c(25, 60, 24, 58), c(0, 12, 6, 12)
)
fcases <- lapply(tables, function(t) {
  fr <- fragility(t[1], t[2], t[3], t[4])
  list(events_t = t[1], n_t = t[2], events_c = t[3], n_c = t[4],
       fisher_pval = fr$p, significant = fr$significant, fragility_index = fr$fi,
       pval_greater = fisher.test(matrix(c(t[1], t[3], t[2] - t[1], t[4] - t[3]), 2), alternative = "greater")$p.value,
       pval_less = fisher.test(matrix(c(t[1], t[3], t[2] - t[1], t[4] - t[3]), 2), alternative = "less")$p.value)
})
write_fixture(list(call = "fisher.test(matrix(c(a, c, n1 - a, n2 - c), 2))$p.value; fragility() in this script",
                   cases = fcases), "exact_fisher.json")

# ---------------------------------------------------------------------------
# GLMM (rma.glmm, measure = "PLO")
# ---------------------------------------------------------------------------
glmer_ctrl <- list(optimizer = "bobyqa", tolPwrss = 1e-12, optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
glmm_case <- function(name, xi, ni, nAGQ, data_call) {
  fit <- rma.glmm(measure = "PLO", xi = xi, ni = ni, method = "ML", nAGQ = nAGQ,
                  control = list(glmerCtrl = glmer_ctrl))
  study <- factor(seq_along(xi))
  direct <- glmer(cbind(xi, ni - xi) ~ 1 + (1 | study), family = binomial, nAGQ = nAGQ,
                  control = do.call(glmerControl, glmer_ctrl))
  pr <- predict(fit)
  list(
    name = name, data = data_call,
    call = sprintf("rma.glmm(measure=\"PLO\", xi=xi, ni=ni, method=\"ML\", nAGQ=%d, control=list(glmerCtrl=list(optimizer=\"bobyqa\", tolPwrss=1e-12, optCtrl=list(rhoend=1e-12, maxfun=1e5))))", nAGQ),
    n_agq = nAGQ, xi = as.numeric(xi), ni = as.numeric(ni), k = fit$k,
    b = num(fit$b), se = num(fit$se), zval = num(fit$zval), pval = num(fit$pval),
    ci_lb = num(fit$ci.lb), ci_ub = num(fit$ci.ub), tau2 = num(fit$tau2),
    I2 = num(fit$I2), H2 = num(fit$H2), vt = num(fit$vt),
    QE_Wld = num(fit$QE.Wld), QEp_Wld = num(fit$QEp.Wld), QE_LRT = num(fit$QE.LRT), QEp_LRT = num(fit$QEp.LRT),
    QE_df = num(fit$QE.df),
    pi_lb = num(pr$pi.lb), pi_ub = num(pr$pi.ub),
    metafor_loglik = num(fit$fit.stats["ll", "ML"]),
    lme4_agq_deviance = num(-2 * logLik(direct)),
    lme4_singular = isSingular(direct)
  )
}

pritz <- dat.pritz1997
write_fixture(glmm_case("pritz1997_agq7", pritz$xi, pritz$ni, 7L, "metadat::dat.pritz1997 (xi, ni)"),
              "glmm_pritz1997.json")
write_fixture(glmm_case("pritz1997_agq1", pritz$xi, pritz$ni, 1L, "metadat::dat.pritz1997 (xi, ni)"),
              "glmm_pritz1997_laplace.json")
# 0/n and n/n studies: the saturated glm() diverges for them.
edge_x <- c(0, 2, 5, 8, 10, 12, 3)
edge_n <- c(8, 10, 15, 12, 10, 12, 20)
write_fixture(glmm_case("zero_and_all_agq7", edge_x, edge_n, 7L,
                        "xi=c(0,2,5,8,10,12,3), ni=c(8,10,15,12,10,12,20)"), "glmm_zero_all.json")
# Tiny dose-cohort-like data (k = 3, n = 5).
tiny_x <- c(3, 4, 5)
tiny_n <- c(5, 5, 5)
write_fixture(glmm_case("tiny_k3_agq7", tiny_x, tiny_n, 7L, "xi=c(3,4,5), ni=c(5,5,5)"), "glmm_tiny.json")

# ---------------------------------------------------------------------------
# GLMM for two-arm odds ratios: rma.glmm(measure = "OR", model = "UM.FS")
# ---------------------------------------------------------------------------
glmm_or_case <- function(name, ai, n1i, ci, n2i, nAGQ, data_call) {
  fit <- suppressWarnings(rma.glmm(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i,
                                   model = "UM.FS", method = "ML", nAGQ = nAGQ,
                                   control = list(glmerCtrl = glmer_ctrl)))
  pr <- predict(fit)
  list(
    name = name, data = data_call,
    call = sprintf("rma.glmm(measure=\"OR\", ai=ai, n1i=n1i, ci=ci, n2i=n2i, model=\"UM.FS\", method=\"ML\", nAGQ=%d, control=list(glmerCtrl=list(optimizer=\"bobyqa\", tolPwrss=1e-12, optCtrl=list(rhoend=1e-12, maxfun=1e5))))", nAGQ),
    n_agq = nAGQ, ai = as.numeric(ai), n1i = as.numeric(n1i), ci = as.numeric(ci), n2i = as.numeric(n2i),
    k = fit$k, b = num(fit$b), se = num(fit$se), zval = num(fit$zval), pval = num(fit$pval),
    ci_lb = num(fit$ci.lb), ci_ub = num(fit$ci.ub), tau2 = num(fit$tau2),
    I2 = num(fit$I2), H2 = num(fit$H2), vt = num(fit$vt),
    QE_Wld = num(fit$QE.Wld), QEp_Wld = num(fit$QEp.Wld), QE_LRT = num(fit$QE.LRT), QEp_LRT = num(fit$QEp.LRT),
    QE_df = num(fit$QE.df), pi_lb = num(pr$pi.lb), pi_ub = num(pr$pi.ub)
  )
}

niel <- dat.nielweise2007
niel <- niel[!(niel$ai == 0 & niel$ci == 0), ]   # drop00, as rma.glmm does
write_fixture(glmm_or_case("nielweise2007_umfs_agq7", niel$ai, niel$n1i, niel$ci, niel$n2i, 7L,
                           "metadat::dat.nielweise2007 without the double-zero study (Yucel 2004)"),
              "glmm_or_nielweise2007.json")
# Tiny trials like the MSC ones: zero cells and n/n arms.
write_fixture(glmm_or_case("tiny_or_umfs_agq7", c(4, 3, 12, 6, 53), c(5, 5, 20, 6, 107),
                           c(0, 1, 4, 0, 36), c(5, 5, 20, 3, 105), 7L,
                           "ai=c(4,3,12,6,53), n1i=c(5,5,20,6,107), ci=c(0,1,4,0,36), n2i=c(5,5,20,3,105)"),
              "glmm_or_tiny.json")
