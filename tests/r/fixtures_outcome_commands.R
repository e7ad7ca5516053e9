# Reference results for `msc-meta sensitivity`, `bias` and `regress` on outcome types beyond
# counts, through the command line.
#
# Run from the repository root:   Rscript tests/r/fixtures_outcome_commands.R
# Writes the input tables tests/fixtures/outcome_commands/*.csv and
# tests/fixtures/outcome_commands.json: for each case the msc-meta arguments, the metafor calls
# and their results: rma() (REML), leave1out(), cumul() (table order), influence(), regtest(),
# trimfill() and rma(mods=) with the case's moderator. Natural-scale values are metafor's own
# back-transformations (exp, transf.ztor) of the same results.
#
# Data: dat.normand1999 (MD, SMD; moderator mean_c, the control arm's mean), Morris (2008) as
# typed in by tests/r/fixtures_outcomes.R (MC, SMCC with the studies' r; moderator group:
# treatment or control groups), dat.hart1999 (IRR; moderator year), dat.molloy2014 (ZCOR;
# moderator meanage) and the log risk ratios of dat.bcg given as yi, vi (GEN --scale log;
# moderator ablat).

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})

versions <- list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                 metadat = as.character(packageVersion("metadat")),
                 jsonlite = as.character(packageVersion("jsonlite")))
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
dir <- file.path("tests", "fixtures", "outcome_commands")
dir.create(dir, showWarnings = FALSE, recursive = TRUE)
num <- function(x) { x <- as.numeric(unname(x)); x[!is.finite(x)] <- NA; x }

write_table <- function(df, name) {
  path <- file.path(dir, name)
  write.csv(df, path, row.names = FALSE, na = "")
  path
}

l1o_doc <- function(l, back) list(
  estimate = num(l$estimate), se = num(l$se), zval = num(l$zval), pval = num(l$pval),
  ci_lb = num(l$ci.lb), ci_ub = num(l$ci.ub), Q = num(l$Q), Qp = num(l$Qp),
  tau2 = num(l$tau2), I2 = num(l$I2), H2 = num(l$H2),
  estimate_natural = num(back(l$estimate)), ci_lb_natural = num(back(l$ci.lb)),
  ci_ub_natural = num(back(l$ci.ub)))

cases <- list()
add_case <- function(name, csv, args, es, study_ids, mods_label, mods, moddata, back, back_name,
                     escalc_call) {
  res <- rma(yi, vi, data = es, method = "REML", control = ctrl)
  inf <- influence(res)
  cum <- cumul(res)
  rt <- regtest(res)
  tf <- trimfill(res, control = ctrl)
  reg <- rma(es$yi, es$vi, mods = mods, data = moddata, method = "REML", control = ctrl)
  cases[[length(cases) + 1]] <<- list(
    name = name, csv = csv, args = args, mods = mods_label, back = back_name,
    call = sprintf(paste0('es <- %s; res <- rma(yi, vi, data = es, method = "REML", control = ctrl); ',
                          'leave1out(res); cumul(res); influence(res); regtest(res); ',
                          'trimfill(res, control = ctrl); rma(yi, vi, mods = %s, method = "REML", control = ctrl)'),
                   escalc_call, deparse(mods)),
    study_id = study_ids, yi = num(es$yi), vi = num(es$vi),
    full = list(k = res$k, beta = num(res$beta), se = num(res$se), tau2 = num(res$tau2),
                I2 = num(res$I2), QE = num(res$QE)),
    leave1out = l1o_doc(leave1out(res), back),
    cumul = c(l1o_doc(cum, back), list(slab = as.character(cum$slab))),
    influence = list(
      rstudent = num(inf$inf$rstudent), dffits = num(inf$inf$dffits),
      cook_d = num(inf$inf$cook.d), cov_r = num(inf$inf$cov.r),
      tau2_del = num(inf$inf$tau2.del), QE_del = num(inf$inf$QE.del),
      hat = num(inf$inf$hat), weight = num(inf$inf$weight),
      dfbs = num(inf$dfbs$intrcpt), inf = inf$is.infl),
    regtest = list(zval = num(rt$zval), pval = num(rt$pval), est = num(rt$est),
                   ci_lb = num(rt$ci.lb), ci_ub = num(rt$ci.ub)),
    trimfill = list(k0 = tf$k0, side = tf$side, se_k0 = num(tf$se.k0), k = tf$k,
                    beta = num(tf$beta), se = num(tf$se), ci_lb = num(tf$ci.lb),
                    ci_ub = num(tf$ci.ub), tau2 = num(tf$tau2),
                    estimate_natural = num(back(tf$beta)), ci_lb_natural = num(back(tf$ci.lb)),
                    ci_ub_natural = num(back(tf$ci.ub))),
    regress = list(names = rownames(reg$beta), beta = num(reg$beta), se = num(reg$se),
                   zval = num(reg$zval), pval = num(reg$pval), ci_lb = num(reg$ci.lb),
                   ci_ub = num(reg$ci.ub), tau2 = num(reg$tau2), I2 = num(reg$I2),
                   H2 = num(reg$H2), R2 = num(reg$R2), QM = num(reg$QM), QMdf = num(reg$QMdf),
                   QMp = num(reg$QMp), QE = num(reg$QE), QEdf = reg$k - reg$p,
                   QEp = num(reg$QEp), k = reg$k))
}
identity_back <- function(x) x

# ---------------------------------------------------------------- two-group means
nd <- dat.normand1999
normand <- data.frame(study_id = nd$source, outcome = "length_of_stay",
                      mean_t = nd$m1i, sd_t = nd$sd1i, n_t = nd$n1i,
                      mean_c = nd$m2i, sd_c = nd$sd2i, n_c = nd$n2i,
                      outcome_units = "days")
csv <- write_table(normand, "normand1999.csv")
for (m in c("MD", "SMD")) {
  es <- escalc(m, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)
  add_case(paste0("normand1999_", m), csv,
           c("--data", csv, "--outcome", "length_of_stay", "--measure", m),
           es, normand$study_id, "mean_c", ~ m2i, nd, identity_back, "none",
           sprintf('escalc("%s", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)', m))
}

# ---------------------------------------------------------------- paired before/after
# Morris (2008), as tests/r/fixtures_outcomes.R types it in (metadat 1.2-0 has no dat.morris2008):
# treatment groups (rows 1-5) then control groups (rows 6-10), each one pre/post group.
morris <- data.frame(
  m_pre   = c(30.6, 23.5, 0.5, 53.4, 35.6, 23.1, 24.9, 0.6, 55.7, 34.8),
  m_post  = c(38.5, 26.8, 0.7, 75.9, 36.0, 19.7, 25.3, 0.6, 60.7, 33.4),
  sd_pre  = c(15.0, 3.1, 0.1, 14.5, 4.7, 13.8, 4.1, 0.2, 17.3, 3.1),
  sd_post = c(11.6, 4.1, 0.1, 4.4, 4.6, 14.8, 3.3, 0.2, 17.9, 6.9),
  ni      = c(20, 50, 9, 10, 14, 20, 42, 9, 11, 14),
  ri      = c(0.47, 0.64, 0.77, 0.89, 0.44, 0.47, 0.64, 0.77, 0.89, 0.44),
  group   = rep(c("treatment", "control"), each = 5))
paired <- data.frame(study_id = paste0(rep(c("T", "C"), each = 5), 1:5), outcome = "performance",
                     mean_pre = morris$m_pre, mean_post = morris$m_post, sd_pre = morris$sd_pre,
                     sd_post = morris$sd_post, n_t = morris$ni, r = morris$ri, group = morris$group)
csv <- write_table(paired, "morris2008.csv")
for (m in c("MC", "SMCC")) {
  es <- escalc(m, m1i = m_post, m2i = m_pre, sd1i = sd_pre, sd2i = sd_post, ni = ni, ri = ri,
               data = morris)
  add_case(paste0("morris2008_", m), csv,
           c("--data", csv, "--outcome", "performance", "--measure", m),
           es, paired$study_id, "group", ~ group, morris, identity_back, "none",
           sprintf('escalc("%s", m1i = m_post, m2i = m_pre, sd1i = sd_pre, sd2i = sd_post, ni = ni, ri = ri, data = morris)', m))
}

# ---------------------------------------------------------------- incidence rates
hd <- dat.hart1999
hart <- data.frame(study_id = hd$study, outcome = "stroke", events_t = hd$x1i, time_t = hd$t1i,
                   events_c = hd$x2i, time_c = hd$t2i, year = hd$year)
csv <- write_table(hart, "hart1999.csv")
es <- escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = hd)
add_case("hart1999_IRR", csv, c("--data", csv, "--outcome", "stroke", "--measure", "IRR"),
         es, hart$study_id, "year", ~ year, hd, exp, "exp",
         'escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = dat.hart1999)')

# ---------------------------------------------------------------- correlations
ml <- dat.molloy2014
molloy <- data.frame(study_id = paste(ml$authors, ml$year), outcome = "adherence",
                     cor_t = ml$ri, n_t = ml$ni, meanage = ml$meanage)
stopifnot(!anyDuplicated(molloy$study_id))
csv <- write_table(molloy, "molloy2014.csv")
es <- escalc("ZCOR", ri = ri, ni = ni, data = ml)
add_case("molloy2014_ZCOR", csv, c("--data", csv, "--outcome", "adherence", "--measure", "ZCOR"),
         es, molloy$study_id, "meanage", ~ meanage, ml, transf.ztor, "transf.ztor",
         'escalc("ZCOR", ri = ri, ni = ni, data = dat.molloy2014)')

# ---------------------------------------------------------------- generic (log risk ratios)
bd <- dat.bcg
rr <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bd)
gen <- data.frame(study_id = paste(bd$author, bd$year), outcome = "tb", yi = num(rr$yi),
                  vi = num(rr$vi), ablat = bd$ablat)
csv <- write_table(gen, "bcg_yi_vi.csv")
es <- escalc(yi = yi, vi = vi, data = gen)
add_case("bcg_GEN_log", csv,
         c("--data", csv, "--outcome", "tb", "--measure", "GEN", "--scale", "log"),
         es, gen$study_id, "ablat", ~ ablat, gen, exp, "exp",
         'escalc(yi = yi, vi = vi, data = gen)  # gen: the log RRs of escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)')

path <- file.path("tests", "fixtures", "outcome_commands.json")
writeLines(toJSON(list(versions = versions, script = "tests/r/fixtures_outcome_commands.R",
                       ctrl = ctrl, cases = cases),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null"), path)
cat("wrote", path, "\n")
