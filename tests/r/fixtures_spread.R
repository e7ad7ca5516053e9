# Reference values for `msc-meta pool` on rows whose spread is given another way (the contract's
# "Spread given another way"): SEMs, the 95% CI of a mean, a median with its IQR and/or range,
# and a paired t statistic or p-value, converted here in R on their own and then pooled by
# metafor escalc() + rma(REML).
#
# Run from the repository root:
#   METAFOR4_SRC=/path/to/metafor-4.0-0/R Rscript tests/r/fixtures_spread.R
# Writes the input tables tests/fixtures/spread_pool/{paired,means}.csv and
# tests/fixtures/spread_pool.json: per case the msc-meta command, the R conversion, the metafor
# call and rma()'s results.
#
# The median/IQR/range conversion is metafor's own conv.fivenum(method = "wan2014", test = TRUE)
# (Wan et al. 2014, with the skewness test of Shi et al.). It came with metafor 4.0-0; the
# installed metafor is 3.8.1, so METAFOR4_SRC must name the R/ folder of a metafor 4.0-0 source
# tree (git tag v4.0-0 of https://github.com/wviechtb/metafor), whose conv.fivenum.r and
# misc.func.hidden.r are sourced over the installed namespace (as tests/r/fixtures_outcomes.R).
#
# The paired conversions are written out independently of msc_meta.conversions:
#   sd = se * sqrt(n); t = qt(p/2, n - 1, lower.tail = FALSE); sd_change = |post - pre| sqrt(n) / t;
#   with both SDs, ri = (sd_pre^2 + sd_post^2 - sd_change^2) / (2 sd_pre sd_post);
#   without them, MC and SMCC read sd_change alone: escalc(sd1i = sd_change, sd2i = 0, ri = 0).
# The CI of a mean: sd = sqrt(n) (hi - lo) / (2 qt(0.975, n - 1)), the mean its midpoint.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

src4 <- Sys.getenv("METAFOR4_SRC")
if (!nzchar(src4)) stop("set METAFOR4_SRC to the R/ folder of metafor 4.0-0 (for conv.fivenum)")
env <- new.env(parent = asNamespace("metafor"))
sys.source(file.path(src4, "misc.func.hidden.r"), envir = env)
sys.source(file.path(src4, "conv.fivenum.r"), envir = env)
conv.fivenum <- env$conv.fivenum

versions <- list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                 jsonlite = as.character(packageVersion("jsonlite")),
                 conv.fivenum = "metafor 4.0-0 R/conv.fivenum.r (git tag v4.0-0), sourced over the installed namespace")
dir <- file.path("tests", "fixtures", "spread_pool")
dir.create(dir, showWarnings = FALSE, recursive = TRUE)
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)

write_table <- function(df, name) {
  path <- file.path(dir, name)
  write.csv(df, path, row.names = FALSE, na = "")
  path
}

result <- function(name, command, conversion, call, es, ids) {
  res <- rma(yi, vi, data = es, method = "REML", control = ctrl)
  list(name = name, command = command, conversion = conversion, call = call, k = res$k,
       theta = as.numeric(res$b), se = res$se, estimate = as.numeric(res$b),
       ci_low = res$ci.lb, ci_high = res$ci.ub, tau2 = res$tau2, i2 = res$I2,
       q = res$QE, q_pval = res$QEp, stat = res$zval, pval = res$pval,
       studies = list(study_id = ids, yi = as.numeric(es$yi), vi = as.numeric(es$vi),
                      weight = as.numeric(weights(res))))
}

cases <- list()

# ---------------------------------------------------------------- paired before/after
# s1: SDs and r given; s2: SEMs and p; s3: SEMs and t; s4: p only; s5: t only (negative);
# s6: SDs only (takes --r 0.5 in MC and SMCC, and r = 0.2/0.5/0.8 in the sensitivity).
paired <- data.frame(
  study_id = paste0("s", 1:6), outcome = "score",
  n_t = c(20, 9, 15, 13, 25, 30),
  mean_pre = c(10.0, 6.1, 50.2, 4.3, 30.0, 12.0),
  mean_post = c(8.0, 2.6, 44.9, 3.8, 27.5, 11.1),
  sd_pre = c(3.0, NA, NA, NA, NA, 4.0), sd_post = c(2.5, NA, NA, NA, NA, 3.6),
  r = c(0.6, NA, NA, NA, NA, NA),
  se_pre = c(NA, 1.2, 2.1, NA, NA, NA), se_post = c(NA, 0.9, 1.8, NA, NA, NA),
  p_value = c(NA, 0.006, NA, 0.585, NA, NA), t_stat = c(NA, NA, 3.2, NA, -2.9, NA))
csv_paired <- write_table(paired, "paired.csv")

paired_inputs <- function(d, assumed_r) {
  sd1 <- ifelse(is.na(d$sd_pre), d$se_pre * sqrt(d$n_t), d$sd_pre)
  sd2 <- ifelse(is.na(d$sd_post), d$se_post * sqrt(d$n_t), d$sd_post)
  t <- ifelse(is.na(d$t_stat), qt(d$p_value / 2, d$n_t - 1, lower.tail = FALSE), abs(d$t_stat))
  sdd <- abs(d$mean_post - d$mean_pre) * sqrt(d$n_t) / t
  implied <- (sd1^2 + sd2^2 - sdd^2) / (2 * sd1 * sd2)
  ri <- ifelse(!is.na(d$r), d$r, ifelse(!is.na(implied), implied, assumed_r))
  only_sdd <- is.na(sd1) & !is.na(sdd)
  # without the SDs, MC and SMCC read the SD of the change alone
  data.frame(m1i = d$mean_post, m2i = d$mean_pre, n = d$n_t,
             sd1i = ifelse(only_sdd, sdd, sd1), sd2i = ifelse(only_sdd, 0, sd2),
             ri = ifelse(only_sdd, 0, ri), implied = implied, sdd = sdd, only_sdd = only_sdd)
}

conv_paired <- paste("sd = se*sqrt(n); t = qt(p/2, n-1, lower.tail=FALSE) or |t_stat|;",
                     "sd_change = |post-pre|*sqrt(n)/t; ri = (sd1^2+sd2^2-sd_change^2)/(2 sd1 sd2) with both SDs,",
                     "else escalc(sd1i = sd_change, sd2i = 0, ri = 0); s6: ri = --r")
for (m in c("MC", "SMCC")) {
  x <- paired_inputs(paired, 0.5)
  es <- escalc(m, m1i = m1i, m2i = m2i, sd1i = sd1i, sd2i = sd2i, ni = n, ri = ri, data = x)
  case <- result(paste0("paired_", m),
                 sprintf("pool --data %s --outcome score --measure %s --r 0.5 --json", csv_paired, m),
                 conv_paired,
                 sprintf('rma(yi, vi, method = "REML", control = ctrl, data = escalc("%s", m1i = mean_post, m2i = mean_pre, sd1i, sd2i, ni = n_t, ri))', m),
                 es, paired$study_id)
  case$implied_r <- x$implied
  case$sd_change <- x$sdd
  # the values each study's effect size reads (what `pool`'s table shows), NA where none:
  # the SDs (from the SEMs where given so), and r (given, implied, or --r)
  case$used <- list(sd_pre = ifelse(x$only_sdd, NA, x$sd1i), sd_post = ifelse(x$only_sdd, NA, x$sd2i),
                    r = ifelse(x$only_sdd, NA, x$ri))
  sens <- list()
  for (rr in c(0.2, 0.5, 0.8)) {
    y <- paired_inputs(paired, rr)
    e2 <- escalc(m, m1i = m1i, m2i = m2i, sd1i = sd1i, sd2i = sd2i, ni = n, ri = ri, data = y)
    f2 <- rma(yi, vi, data = e2, method = "REML", control = ctrl)
    sens[[length(sens) + 1]] <- list(r = rr, estimate = as.numeric(f2$b), ci_low = f2$ci.lb, ci_high = f2$ci.ub)
  }
  case$r_sensitivity <- sens
  cases[[length(cases) + 1]] <- case
}
# SMCR needs sd_pre and r: s4 and s5 (the SD of the change only) are left out.
x <- paired_inputs(paired, 0.5)
keep <- !x$only_sdd
es <- escalc("SMCR", m1i = m1i, m2i = m2i, sd1i = sd1i, ni = n, ri = ri, data = x[keep, ])
cases[[length(cases) + 1]] <- result(
  "paired_SMCR", sprintf("pool --data %s --outcome score --measure SMCR --r 0.5 --json", csv_paired),
  conv_paired, 'rma(yi, vi, method = "REML", control = ctrl, data = escalc("SMCR", m1i = mean_post, m2i = mean_pre, sd1i, ni = n_t, ri)) without s4, s5',
  es, paired$study_id[keep])

# ---------------------------------------------------------------- two-group means
# a: SDs; b: SEMs; c: 95% CIs with the means; d: 95% CIs without the means (midpoints);
# e: median, IQR and range; f: median and IQR; g: median and range; h: skewed IQR (no estimate).
means <- data.frame(
  study_id = letters[1:8], outcome = "y",
  n_t = c(20, 25, 18, 40, 30, 24, 35, 30), n_c = c(22, 25, 17, 38, 31, 26, 33, 30),
  mean_t = c(10.2, 9.4, 11.0, NA, NA, NA, NA, NA), sd_t = c(2.1, NA, NA, NA, NA, NA, NA, NA),
  se_t = c(NA, 0.5, NA, NA, NA, NA, NA, NA),
  mean_ci_low_t = c(NA, NA, 9.9, 8.1, NA, NA, NA, NA), mean_ci_high_t = c(NA, NA, 12.1, 10.3, NA, NA, NA, NA),
  median_t = c(NA, NA, NA, NA, 10, 9.5, 10.5, 10), q1_t = c(NA, NA, NA, NA, 8.5, 8, NA, 9.9),
  q3_t = c(NA, NA, NA, NA, 11.8, 11.2, NA, 12), min_t = c(NA, NA, NA, NA, 5, NA, 4.8, NA),
  max_t = c(NA, NA, NA, NA, 15.5, NA, 16, NA),
  mean_c = c(8.1, 8.0, 9.1, NA, NA, NA, NA, NA), sd_c = c(2.4, NA, NA, NA, NA, NA, NA, NA),
  se_c = c(NA, 0.45, NA, NA, NA, NA, NA, NA),
  mean_ci_low_c = c(NA, NA, 8.0, 7.0, NA, NA, NA, NA), mean_ci_high_c = c(NA, NA, 10.2, 9.4, NA, NA, NA, NA),
  median_c = c(NA, NA, NA, NA, 8, 7.9, 8.2, 8), q1_c = c(NA, NA, NA, NA, 6.6, 6.5, NA, 6),
  q3_c = c(NA, NA, NA, NA, 9.7, 9.4, NA, 10), min_c = c(NA, NA, NA, NA, 3.5, NA, 3, NA),
  max_c = c(NA, NA, NA, NA, 12.6, NA, 13.5, NA))
csv_means <- write_table(means, "means.csv")

arm <- function(d, a) {
  n <- d[[paste0("n_", a)]]
  m <- d[[paste0("mean_", a)]]
  s <- d[[paste0("sd_", a)]]
  se <- d[[paste0("se_", a)]]
  lo <- d[[paste0("mean_ci_low_", a)]]
  hi <- d[[paste0("mean_ci_high_", a)]]
  s <- ifelse(is.na(s), se * sqrt(n), s)
  from_ci <- is.na(s) & !is.na(lo)
  s <- ifelse(from_ci, sqrt(n) * (hi - lo) / (2 * qt(0.975, n - 1)), s)
  m <- ifelse(from_ci & is.na(m), (lo + hi) / 2, m)
  q <- data.frame(min = d[[paste0("min_", a)]], q1 = d[[paste0("q1_", a)]], median = d[[paste0("median_", a)]],
                  q3 = d[[paste0("q3_", a)]], max = d[[paste0("max_", a)]], n = n)
  five <- conv.fivenum(min = min, q1 = q1, median = median, q3 = q3, max = max, n = n, data = q,
                       method = "wan2014", test = TRUE, append = FALSE)
  from_q <- is.na(s) & !is.na(q$median)
  list(m = ifelse(from_q, five$mean, m), sd = ifelse(from_q, five$sd, s))
}
t_arm <- arm(means, "t")
c_arm <- arm(means, "c")
x <- data.frame(m1i = t_arm$m, sd1i = t_arm$sd, n1i = means$n_t, m2i = c_arm$m, sd2i = c_arm$sd, n2i = means$n_c)
keep <- !is.na(x$sd1i) & !is.na(x$sd2i)
stopifnot(identical(which(!keep), 8L))      # h: the skewness test refuses its IQR
conv_means <- paste("sd = se*sqrt(n); sd = sqrt(n)*(hi-lo)/(2*qt(0.975, n-1)), mean = (lo+hi)/2 if blank;",
                    "median/IQR/range: conv.fivenum(min, q1, median, q3, max, n, method = 'wan2014', test = TRUE)")
for (m in c("MD", "SMD")) {
  es <- escalc(m, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = x[keep, ])
  case <- result(paste0("means_", m),
                 sprintf("pool --data %s --outcome y --measure %s --json", csv_means, m), conv_means,
                 sprintf('rma(yi, vi, method = "REML", control = ctrl, data = escalc("%s", m1i, sd1i, n1i, m2i, sd2i, n2i)) without h', m),
                 es, means$study_id[keep])
  case$left_out <- I(means$study_id[!keep])
  # the means and SDs each kept study's effect size reads (what `pool`'s table shows)
  case$used <- as.list(x[keep, c("m1i", "sd1i", "m2i", "sd2i")])
  cases[[length(cases) + 1]] <- case
}

path <- file.path("tests", "fixtures", "spread_pool.json")
writeLines(toJSON(list(versions = versions, script = "tests/r/fixtures_spread.R",
                       control = "control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)",
                       cases = cases),
                  digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE), path)
cat("wrote", path, "\n")
