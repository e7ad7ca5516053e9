"""Meta-regression against metafor rma(mods=) fixtures (tests/r/fixtures_diagnostics.R)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from msc_meta.errors import UsageError
from msc_meta.pooling.metareg import design_matrix, fit_mods, parse_mods

FIXTURES = Path(__file__).parent / "fixtures"
BCG = json.loads((FIXTURES / "diag_bcg_data.json").read_text())
REG = json.loads((FIXTURES / "diag_metareg.json").read_text())
COLUMNS = {name: BCG[name] for name in ("ablat", "year", "alloc", "author")}


def close(actual, expected, rel=1e-6, abs_=1e-10):
    assert np.asarray(actual, dtype=float) == pytest.approx(np.asarray(expected, dtype=float),
                                                             rel=rel, abs=abs_)


def r_name(name: str) -> str:
    """Our coefficient names in R's spelling ('alloc[random]' -> 'allocrandom')."""
    if name == "intercept":
        return "intrcpt"
    return name.replace("[", "").replace("]", "")


@pytest.mark.parametrize("case", REG["cases"], ids=lambda c: f"{c['mods']}-{c['method']}-{c['test']}")
def test_matches_metafor(case):
    design = design_matrix(case["mods"], COLUMNS)
    fit = fit_mods(BCG["yi"], BCG["vi"], design.X, names=design.names, method=case["method"],
                   knha=case["test"] == "knha")
    assert [r_name(n) for n in fit.names] == case["names"]
    assert fit.k == case["k"] == 13 and fit.p == case["p"]
    close(fit.beta, case["beta"])
    close(fit.se, case["se"])
    close(fit.stat, case["zval"])
    close(fit.pval, case["pval"])
    close(fit.ci_low, case["ci_lb"])
    close(fit.ci_high, case["ci_ub"])
    close(fit.tau2, case["tau2"])
    close(fit.i2, case["I2"])
    close(fit.h2, case["H2"])
    close(fit.r2, case["R2"])
    close(fit.qm, case["QM"])
    assert fit.qm_df == case["QMdf"][0]
    close(fit.qm_pval, case["QMp"])
    close(fit.qe, case["QE"])
    assert fit.qe_df == case["QEdf"]
    close(fit.qe_pval, case["QEp"])
    close(fit.s2w, case["s2w"])
    if case["test"] == "knha":
        assert fit.test == "t" and fit.ddf == fit.k - fit.p and fit.qm_df2 == case["QMdf"][1]
    else:
        assert fit.test == "z" and fit.ddf is None and fit.qm_df2 is None


def test_json_document_has_contract_keys():
    design = design_matrix("ablat + alloc", COLUMNS)
    doc = fit_mods(BCG["yi"], BCG["vi"], design.X, names=design.names).to_dict()
    for key in ("method", "k", "coefficients", "tau2", "i2", "r2", "qm", "qm_df", "qm_pval",
                "qe", "qe_df", "qe_pval"):
        assert key in doc
    assert [c["name"] for c in doc["coefficients"]] == [
        "intercept", "ablat", "alloc[random]", "alloc[systematic]"]
    assert set(doc["coefficients"][0]) == {"name", "estimate", "se", "stat", "pval", "ci_low", "ci_high"}
    json.dumps(doc, allow_nan=False)


def test_redundant_predictor_is_dropped_with_a_note():
    # ablat and 2*ablat are aliased: metafor keeps the first and says so.
    columns = dict(COLUMNS, ablat2=[2 * a for a in BCG["ablat"]])
    design = design_matrix("ablat + ablat2", columns)
    fit = fit_mods(BCG["yi"], BCG["vi"], design.X, names=design.names)
    reference = next(c for c in REG["cases"] if c["mods"] == "ablat" and c["method"] == "REML"
                     and c["test"] == "z")
    assert fit.names == ("intercept", "ablat")
    close(fit.beta, reference["beta"])
    assert any("ablat2" in note for note in fit.notes)


def test_too_few_studies_is_a_usage_error():
    with pytest.raises(UsageError, match="too few"):
        fit_mods([0.1, 0.2, 0.3], [0.1, 0.1, 0.2], np.column_stack([np.ones(3), [1, 2, 4], [0, 1, 1]]))


# ---------------------------------------------------------------- formulas

def test_parse_terms():
    terms = parse_mods("~ log10(dose_cells) + route + sqrt( x ) + route")
    assert [t.label for t in terms] == ["log10(dose_cells)", "route", "sqrt(x)"]


@pytest.mark.parametrize("expr", ["", "  ", "dose*route", "log2(dose)", "a + ", "exp(a)", "a:b",
                                  "__import__('os')", "1"])
def test_parse_rejects(expr):
    with pytest.raises(UsageError):
        parse_mods(expr)


def test_unknown_column_names_it():
    with pytest.raises(UsageError, match="unknown column 'dose'"):
        design_matrix("log10(dose)", COLUMNS)


def test_transform_of_text_names_the_column():
    with pytest.raises(UsageError, match="column 'alloc'"):
        design_matrix("log10(alloc)", COLUMNS)


def test_log_of_zero_names_the_column():
    with pytest.raises(UsageError, match="column 'x'"):
        design_matrix("log(x)", {"x": [0.0, 1.0, 2.0]})


def test_categorical_coding_reference_is_first_alphabetically():
    design = design_matrix("route", {"route": ["local", "iv", "local", "iv", "intra"]})
    assert design.names == ("intercept", "route[iv]", "route[local]")
    assert design.levels == (("intra", "iv", "local"),)
    assert design.X.tolist() == [[1, 0, 1], [1, 1, 0], [1, 0, 1], [1, 1, 0], [1, 0, 0]]


def test_numbers_written_as_text_are_numeric():
    design = design_matrix("log10(dose)", {"dose": ["1e7", "3e7", "9e7"]})
    close(design.X[:, 1], [7, math.log10(3e7), math.log10(9e7)])


def test_missing_values_leave_rows_out_with_reason():
    design = design_matrix("log10(dose) + route", {"dose": [1e7, None, 3e7, 9e7],
                                                   "route": ["a", "b", "", "b"]})
    assert design.used.tolist() == [True, False, False, True]
    assert design.reasons[1] == "missing moderator value 'dose'"
    assert design.reasons[2] == "missing moderator value 'route'"
    assert design.X.shape == (2, 3)


def test_single_level_factor_is_refused():
    with pytest.raises(UsageError, match="single value"):
        design_matrix("route", {"route": ["local", "local", "local"]})
