# Reference values for msc_meta.effects and msc_meta.pooling.mh, from metafor.
#
# Run from the repository root:   Rscript tests/r/fixtures_effects.R
# Writes tests/fixtures/effects_escalc.json, effects_transform.json,
#        mh_rma_mh.json and mh_rma_peto.json.
# Non-finite values (NA, +-Inf) are written as null: the Python side returns
# NaN where escalc gives NA or an infinite yi/vi.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

versions <- list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
                 metadat = as.character(packageVersion("metadat")),
                 jsonlite = as.character(packageVersion("jsonlite")))
out_dir <- file.path("tests", "fixtures")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

fin <- function(x) { x <- as.numeric(x); x[!is.finite(x)] <- NA; x }
write_fixture <- function(obj, name) {
  path <- file.path(out_dir, name)
  writeLines(toJSON(obj, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE), path)
  cat("wrote", path, "\n")
}

# ---------------------------------------------------------------- data sets
bcg <- dat.bcg
two_arm <- list(
  bcg = list(ai = bcg$tpos, n1i = bcg$tpos + bcg$tneg, ci = bcg$cpos, n2i = bcg$cpos + bcg$cneg,
             source = "metadat dat.bcg (ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg)"),
  # hand-made: single zeros in either arm, double zeros, all-events arms
  zeros = list(ai = c(0, 3, 0, 5, 10, 7, 12, 0), n1i = c(20, 15, 10, 5, 10, 30, 40, 8),
               ci = c(4, 0, 0, 2, 9, 5, 20, 0), n2i = c(20, 14, 12, 6, 9, 28, 41, 9),
               source = "hand-made zero-cell set"),
  # seed: Cx601 (ADMIRE-CD) combined remission 53/107 vs 36/105, plus one hand-made study
  k2 = list(ai = c(53, 8), n1i = c(107, 12), ci = c(36, 3), n2i = c(105, 12),
            source = "Cx601 53/107 vs 36/105 and a hand-made 8/12 vs 3/12"),
  seed = list(ai = 53, n1i = 107, ci = 36, n2i = 105, source = "Cx601 53/107 vs 36/105 (single study)")
)
single_arm <- list(
  pritz = list(xi = dat.pritz1997$xi, ni = dat.pritz1997$ni, source = "metadat dat.pritz1997 (xi, ni)"),
  zeros = list(xi = c(0, 5, 12, 12, 1, 30, 0), ni = c(10, 5, 40, 12, 3, 31, 1),
               source = "hand-made set with 0/n and n/n studies")
)

back_transf <- list(
  PR = NULL, RD = NULL, PLO = transf.ilogit, PAS = transf.iarcsin, RR = exp, OR = exp,
  PFT = transf.ipft
)
back_name <- c(PR = "none", RD = "none", PLO = "transf.ilogit", PAS = "transf.iarcsin",
               RR = "exp", OR = "exp", PFT = "transf.ipft (ni = attr(yi, 'ni'))")

# ---------------------------------------------------------------- escalc
cases <- list()
add_case <- function(measure, set_name, d, cc, single) {
  uses_add <- !(measure %in% c("PFT", "PAS"))
  if (single) {
    if (uses_add) {
      es <- escalc(measure, xi = d$xi, ni = d$ni, add = cc, to = "only0")
      call <- sprintf('escalc("%s", xi = xi, ni = ni, add = %s, to = "only0")', measure, cc)
    } else {
      es <- escalc(measure, xi = d$xi, ni = d$ni)
      call <- sprintf('escalc("%s", xi = xi, ni = ni)  # no add: escalc default add = 0 for %s', measure, measure)
    }
    input <- list(events_t = d$xi, n_t = d$ni)
  } else {
    drop00 <- measure %in% c("RR", "OR")
    es <- escalc(measure, ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i, add = cc, to = "only0",
                 drop00 = drop00)
    call <- sprintf('escalc("%s", ai = ai, n1i = n1i, ci = ci, n2i = n2i, add = %s, to = "only0", drop00 = %s)',
                    measure, cc, drop00)
    input <- list(events_t = d$ai, n_t = d$n1i, events_c = d$ci, n_c = d$n2i)
  }
  tf <- back_transf[[measure]]
  for (level in c(95, 90)) {
    if (is.null(tf)) {
      s <- summary(es, level = level)
      est <- s$yi
    } else if (measure == "PFT") {
      s <- summary(es, level = level, transf = tf, ni = attr(es$yi, "ni"))
      est <- s$yi
    } else {
      s <- summary(es, level = level, transf = tf)
      est <- s$yi
    }
    if (level == 95) { lb95 <- s$ci.lb; ub95 <- s$ci.ub; est95 <- est }
    else { lb90 <- s$ci.lb; ub90 <- s$ci.ub }
  }
  cases[[length(cases) + 1]] <<- list(
    name = sprintf("%s_%s_cc%s", measure, set_name, cc), measure = measure, set = set_name,
    source = d$source, cc = cc, call = call,
    summary_call = sprintf("summary(es, level = 95 or 90, transf = %s)", back_name[[measure]]),
    input = input,
    yi = fin(es$yi), vi = fin(es$vi), ni = fin(attr(es$yi, "ni")),
    estimate = fin(est95), ci_low = fin(lb95), ci_high = fin(ub95),
    ci_low_90 = fin(lb90), ci_high_90 = fin(ub90)
  )
}
for (cc in c(0.5, 0.25, 0)) {
  for (m in c("PR", "PLO", "PFT", "PAS")) for (s in names(single_arm)) add_case(m, s, single_arm[[s]], cc, TRUE)
  for (m in c("RR", "OR", "RD")) for (s in names(two_arm)) add_case(m, s, two_arm[[s]], cc, FALSE)
}
write_fixture(list(versions = versions, script = "tests/r/fixtures_effects.R", cases = cases),
              "effects_escalc.json")

# ---------------------------------------------------------------- transform_back
x <- c(-3, -1.2, -0.3, 0, 1e-3, 0.05, 0.2, 0.5, 0.7853982, 1.0, 1.3, 1.5, 1.5707963, 1.58, 2, 3.5)
ni_sets <- list(pritz = dat.pritz1997$ni, small = c(1, 3, 5), seed = c(107))
tcases <- list(
  list(measure = "PLO", call = "transf.ilogit(x)", x = x, value = fin(transf.ilogit(x))),
  list(measure = "PAS", call = "transf.iarcsin(x)", x = x, value = fin(transf.iarcsin(x))),
  list(measure = "RR", call = "exp(x)", x = x, value = fin(exp(x))),
  list(measure = "OR", call = "exp(x)", x = x, value = fin(exp(x))),
  list(measure = "PR", call = "x", x = x, value = x),
  list(measure = "RD", call = "x", x = x, value = x)
)
for (s in names(ni_sets)) {
  tcases[[length(tcases) + 1]] <- list(
    measure = "PFT", call = sprintf("transf.ipft.hm(x, targs = list(ni = ni))  # ni: %s", s),
    x = x, ni = ni_sets[[s]], value = fin(transf.ipft.hm(x, targs = list(ni = ni_sets[[s]]))))
}
write_fixture(list(versions = versions, script = "tests/r/fixtures_effects.R", cases = tcases),
              "effects_transform.json")

# ---------------------------------------------------------------- rma.mh / rma.peto
fit_out <- function(res, extra = list()) {
  c(list(beta = fin(coef(res)), se = fin(res$se), zval = fin(res$zval), pval = fin(res$pval),
         ci_lb = fin(res$ci.lb), ci_ub = fin(res$ci.ub), QE = fin(res$QE), QEp = fin(res$QEp),
         I2 = fin(res$I2), H2 = fin(res$H2), k = res$k, k_yi = res$k.yi, tau2 = res$tau2,
         weights = fin(weights(res))), extra)
}
# Published sets with double-zero tables (metadat), for the MH pools only. rma.mh() keeps its
# default drop00 = c(TRUE, FALSE): escalc(drop00 = TRUE) drops double-zero (and double-all-event)
# tables from Q, its df (k.yi - 1), I² and H² for every measure, RD included, while the MH
# estimate uses all tables. yusuf1985 table 6 has one table without counts (Snow 1, all NA),
# which rma.mh omits (k = 21); it is left out of the input here.
yus6 <- subset(dat.yusuf1985, table == "6" & !is.na(ai))
mh_sets <- c(two_arm[c("bcg", "zeros", "k2")], list(
  yusuf1985_t6 = list(ai = yus6$ai, n1i = yus6$n1i, ci = yus6$ci, n2i = yus6$n2i,
                      source = paste('metadat dat.yusuf1985, subset(table == "6" & !is.na(ai))',
                                     "(Snow 1 has no counts; 3 double-zero tables)")),
  nielweise2007 = list(ai = dat.nielweise2007$ai, n1i = dat.nielweise2007$n1i,
                       ci = dat.nielweise2007$ci, n2i = dat.nielweise2007$n2i,
                       source = "metadat dat.nielweise2007 (1 double-zero table)")
))
# per-study values, only for the published sets (the older cases keep their keys):
# yi_f / vi_f: the escalc values rma.mh computes Q from (NA where drop00 drops a table);
# study_*: escalc() as the study table shows it (drop00 = FALSE: RD keeps double-zero tables);
# drop00_false: what rma.mh(drop00 = FALSE) would give for Q, to show where a df of k - 1 comes from
per_study <- function(res, d, m, cc, level) {
  es <- escalc(m, ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i, add = cc, to = "only0")
  s <- summary(es, level = level)
  alt <- suppressWarnings(rma.mh(measure = m, ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i,
                                 add = cc, level = level, drop00 = c(FALSE, FALSE)))
  list(yi_f = fin(res$yi.f), vi_f = fin(res$vi.f),
       study_call = sprintf('summary(escalc("%s", ai = ai, n1i = n1i, ci = ci, n2i = n2i, add = %s, to = "only0"), level = %s)',
                            m, cc, level),
       study_yi = fin(s$yi), study_vi = fin(s$vi), study_ci_lb = fin(s$ci.lb), study_ci_ub = fin(s$ci.ub),
       drop00_false = list(call = "rma.mh(..., drop00 = c(FALSE, FALSE))", QE = fin(alt$QE), k_yi = alt$k.yi))
}
mh_cases <- list()
for (s in names(mh_sets)) {
  d <- mh_sets[[s]]
  for (m in c("RR", "OR", "RD")) {
    for (cc in c(0.5, 0.25, 0)) {
      for (level in c(95, 90)) {
        if (level == 90 && cc != 0.5) next
        res <- suppressWarnings(rma.mh(measure = m, ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i,
                                       add = cc, level = level))
        extra <- if (m == "OR") list(MH = fin(res$MH), MHp = fin(res$MHp)) else list()
        if (s %in% c("yusuf1985_t6", "nielweise2007")) extra <- c(extra, per_study(res, d, m, cc, level))
        mh_cases[[length(mh_cases) + 1]] <- c(list(
          name = sprintf("MH_%s_%s_cc%s_level%s", m, s, cc, level), measure = m, set = s, source = d$source,
          cc = cc, level = level,
          call = sprintf('rma.mh(measure = "%s", ai = ai, n1i = n1i, ci = ci, n2i = n2i, add = %s, level = %s)',
                         m, cc, level),
          input = list(events_t = d$ai, n_t = d$n1i, events_c = d$ci, n_c = d$n2i)), fit_out(res, extra))
      }
    }
  }
}
write_fixture(list(versions = versions, script = "tests/r/fixtures_effects.R",
                   note = "weights are metafor weights(res) in percent; rma.mh has no control argument (closed form)",
                   cases = mh_cases), "mh_rma_mh.json")

peto_cases <- list()
for (s in c("bcg", "zeros", "k2")) {
  d <- two_arm[[s]]
  for (level in c(95, 90)) {
    res <- suppressWarnings(rma.peto(ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i, level = level))
    peto_cases[[length(peto_cases) + 1]] <- c(list(
      name = sprintf("PETO_%s_level%s", s, level), measure = "OR", set = s, source = d$source, level = level,
      call = sprintf("rma.peto(ai = ai, n1i = n1i, ci = ci, n2i = n2i, level = %s)", level),
      input = list(events_t = d$ai, n_t = d$n1i, events_c = d$ci, n_c = d$n2i)), fit_out(res))
  }
}
write_fixture(list(versions = versions, script = "tests/r/fixtures_effects.R",
                   note = "weights are metafor weights(res) in percent; rma.peto has no control argument (closed form)",
                   cases = peto_cases), "mh_rma_peto.json")
