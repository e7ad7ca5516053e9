# Reference results for the figures of msc_meta.plot: Baujat coordinates (metafor baujat())
# and the L'Abbé plot's event rates (metafor labbe()), on metadat::dat.bcg.
#
# Run from the repository root:   Rscript tests/r/fixtures_plots.R
# Writes tests/fixtures/plots_baujat.json. Tests never need R.

suppressMessages(library(metafor))
suppressMessages(library(jsonlite))

ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
versions <- list(R = R.version.string,
                 metafor = as.character(packageVersion("metafor")),
                 metadat = as.character(packageVersion("metadat")))
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
num <- function(x) as.numeric(unname(x))

cases <- list(list(method = "REML", test = "z"), list(method = "REML", test = "knha"),
              list(method = "DL", test = "z"), list(method = "FE", test = "z"))
out <- lapply(cases, function(cs) {
  res <- rma(yi, vi, data = dat, method = cs$method, test = cs$test, control = ctrl)
  pdf(NULL)
  b <- baujat(res)
  dev.off()
  list(method = cs$method, test = cs$test,
       call = sprintf('baujat(rma(yi, vi, data = dat, method = "%s", test = "%s", control = ctrl))',
                      cs$method, cs$test),
       x = num(b$x), y = num(b$y))
})

pdf(NULL)
lab <- labbe(rma(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg, measure = "RR",
                 control = ctrl))
dev.off()
doc <- list(versions = versions,
            data = 'escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)',
            control = "list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)",
            yi = num(dat$yi), vi = num(dat$vi), cases = out,
            labbe = list(call = 'labbe(rma(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg, measure = "RR"))',
                         x = num(lab$x), y = num(lab$y)))
write_json(doc, file.path("tests", "fixtures", "plots_baujat.json"), digits = NA,
           auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null")
