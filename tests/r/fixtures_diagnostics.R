# Reference results for msc_meta.pooling.sensitivity / metareg / bias.
#
# Run from the repository root:   Rscript tests/r/fixtures_diagnostics.R
# Writes tests/fixtures/diag_*.json. Tests never need R; they read these files.
#
# Data: metadat::dat.bcg (13 BCG vaccine trials), log risk ratios from
# escalc(measure = "RR"). Every rma() fit uses the tight control below so the
# fixtures hold the exact root of each estimating equation, not metafor's
# default 1e-5 stopping point; functions that refit internally (leave1out,
# cumul, influence, regtest) reuse the model's control, and trimfill() is
# handed the same control (and the model's test) through its `...`.

suppressMessages(library(metafor))
suppressMessages(library(jsonlite))

ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
versions <- list(R = R.version.string,
                 metafor = as.character(packageVersion("metafor")),
                 metadat = as.character(packageVersion("metadat")))

dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg,
              data = dat.bcg, slab = paste0("trial", dat.bcg$trial))

out_path <- function(name) file.path("tests", "fixtures", name)
save_json <- function(x, name) {
  write_json(x, out_path(name), digits = NA, auto_unbox = TRUE, pretty = TRUE,
             na = "null", null = "null")
}
num <- function(x) as.numeric(unname(x))

fit <- function(method, test = "z", mods = NULL, yi = dat$yi, vi = dat$vi, data = dat) {
  if (is.null(mods)) {
    rma(yi, vi, method = method, test = test, control = ctrl)
  } else {
    rma(yi, vi, mods = mods, data = data, method = method, test = test, control = ctrl)
  }
}

# ---------------------------------------------------------------- data
data_doc <- list(
  versions = versions,
  call = 'escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)',
  trial = dat$trial, author = as.character(dat$author), year = dat$year,
  ablat = dat$ablat, alloc = as.character(dat$alloc),
  tpos = dat$tpos, tneg = dat$tneg, cpos = dat$cpos, cneg = dat$cneg,
  yi = num(dat$yi), vi = num(dat$vi))
save_json(data_doc, "diag_bcg_data.json")

# ---------------------------------------------------------------- sensitivity
l1o_doc <- function(l) list(estimate = num(l$estimate), se = num(l$se),
  zval = num(if (!is.null(l$zval)) l$zval else l$tval),
  pval = num(if (!is.null(l$pval)) l$pval else l$pvals),
  ci_lb = num(l$ci.lb), ci_ub = num(l$ci.ub), Q = num(l$Q), Qp = num(l$Qp),
  tau2 = if (is.null(l$tau2)) NULL else num(l$tau2), I2 = num(l$I2), H2 = num(l$H2))

sens_cases <- list(
  list(method = "REML", test = "z"), list(method = "REML", test = "knha"),
  list(method = "DL", test = "z"), list(method = "FE", test = "z"),
  list(method = "ML", test = "z"), list(method = "PM", test = "z"),
  list(method = "HE", test = "z"), list(method = "SJ", test = "z"),
  list(method = "HS", test = "z"), list(method = "EB", test = "z"))
sens <- lapply(sens_cases, function(cs) {
  res <- fit(cs$method, cs$test)
  inf <- influence(res)
  cum_default <- cumul(res)
  cum_year <- cumul(res, order = dat$year)
  list(
    method = cs$method, test = cs$test,
    call = sprintf('res <- rma(yi, vi, data = dat, method = "%s", test = "%s", control = ctrl); leave1out(res); cumul(res); cumul(res, order = dat$year); influence(res)',
                   cs$method, cs$test),
    full = list(beta = num(res$beta), se = num(res$se), tau2 = num(res$tau2),
                QE = num(res$QE), I2 = num(res$I2)),
    leave1out = l1o_doc(leave1out(res)),
    cumul = l1o_doc(cum_default),
    cumul_year = c(l1o_doc(cum_year), list(slab = as.character(cum_year$slab))),
    influence = list(
      rstudent = num(inf$inf$rstudent), dffits = num(inf$inf$dffits),
      cook_d = num(inf$inf$cook.d), cov_r = num(inf$inf$cov.r),
      tau2_del = num(inf$inf$tau2.del), QE_del = num(inf$inf$QE.del),
      hat = num(inf$inf$hat), weight = num(inf$inf$weight),
      dfbs = num(inf$dfbs$intrcpt), inf = inf$is.infl))
})
save_json(list(versions = versions, ctrl = ctrl, cases = sens), "diag_sensitivity.json")

# ---------------------------------------------------------------- meta-regression
reg_doc <- function(res) {
  list(names = rownames(res$beta), beta = num(res$beta), se = num(res$se),
       zval = num(res$zval), pval = num(res$pval),
       ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub),
       tau2 = num(res$tau2), I2 = num(res$I2), H2 = num(res$H2),
       R2 = if (is.null(res$R2)) NULL else num(res$R2),
       QM = num(res$QM), QMdf = num(res$QMdf), QMp = num(res$QMp),
       QE = num(res$QE), QEdf = res$k - res$p, QEp = num(res$QEp),
       k = res$k, p = res$p, s2w = num(res$s2w))
}
reg_cases <- list()
add_reg <- function(label, formula, method, test) {
  res <- rma(yi, vi, mods = formula, data = dat, method = method, test = test,
             control = ctrl)
  reg_cases[[length(reg_cases) + 1]] <<- c(
    list(mods = label, method = method, test = test,
         call = sprintf('rma(yi, vi, mods = %s, data = dat, method = "%s", test = "%s", control = ctrl)',
                        deparse(formula), method, test)),
    reg_doc(res))
}
for (m in c("REML", "ML", "DL", "FE", "HE", "HS", "SJ", "EB", "PM")) add_reg("ablat", ~ ablat, m, "z")
for (m in c("REML", "ML", "DL")) add_reg("ablat", ~ ablat, m, "knha")
for (m in c("REML", "ML", "DL", "FE")) for (t in c("z", "knha")) add_reg("ablat + year", ~ ablat + year, m, t)
for (m in c("REML", "ML", "DL", "FE")) for (t in c("z", "knha")) add_reg("alloc", ~ alloc, m, t)
add_reg("log10(ablat)", ~ log10(ablat), "REML", "z")
add_reg("sqrt(ablat) + alloc", ~ sqrt(ablat) + alloc, "REML", "z")
add_reg("log(year) + alloc", ~ log(year) + alloc, "REML", "knha")
save_json(list(versions = versions, ctrl = ctrl,
               note = "alloc levels alternate (reference), random, systematic: R factor, alphabetical",
               cases = reg_cases), "diag_metareg.json")

# ---------------------------------------------------------------- small-study effects
bias_cases <- list()
add_bias <- function(label, method, test, yi, vi) {
  res <- rma(yi, vi, method = method, test = test, control = ctrl)
  rt <- regtest(res)
  # test is handed on so the filled model keeps the pooled model's test
  # (metafor's trimfill() refits with test = "z" unless told otherwise).
  tf <- trimfill(res, control = ctrl, test = test)
  bias_cases[[length(bias_cases) + 1]] <<- list(
    data = label, method = method, test = test,
    call = sprintf('res <- rma(yi, vi, method = "%s", test = "%s", control = ctrl); regtest(res); trimfill(res, control = ctrl, test = \"%s\")',
                   method, test, test),
    yi = num(yi), vi = num(vi),
    regtest = list(zval = num(rt$zval), pval = num(rt$pval), ddf = num(rt$ddf),
                   est = num(rt$est), ci_lb = num(rt$ci.lb), ci_ub = num(rt$ci.ub),
                   slope = num(coef(rt$fit)[2]), slope_se = num(rt$fit$se[2])),
    trimfill = list(k0 = tf$k0, side = tf$side, se_k0 = num(tf$se.k0),
                    beta = num(tf$beta), se = num(tf$se),
                    ci_lb = num(tf$ci.lb), ci_ub = num(tf$ci.ub),
                    tau2 = num(tf$tau2), k = tf$k,
                    fill = tf$fill, yi_all = num(tf$yi), vi_all = num(tf$vi)))
}
for (m in c("REML", "DL", "FE", "ML", "PM")) add_bias("bcg", m, "z", dat$yi, dat$vi)
add_bias("bcg", "REML", "knha", dat$yi, dat$vi)
# Mirror image of the BCG data: the asymmetry flips, so trim-and-fill fills on the left.
add_bias("bcg_mirrored", "REML", "z", -dat$yi, dat$vi)
add_bias("bcg_mirrored", "FE", "z", -dat$yi, dat$vi)
# Dropping trials 7 and 12 leaves a subset where REML also fills two studies.
keep <- setdiff(seq_len(nrow(dat)), c(7, 12))
add_bias("bcg_without_7_12", "REML", "z", dat$yi[keep], dat$vi[keep])
add_bias("bcg_without_7_12", "FE", "z", dat$yi[keep], dat$vi[keep])
save_json(list(versions = versions, ctrl = ctrl, cases = bias_cases), "diag_bias.json")
cat("wrote tests/fixtures/diag_*.json\n")
