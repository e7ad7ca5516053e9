"""Guidance offers only what runs: every suggestion, for every analysis of the shipped table.

Before, the 4-year fistula closure under ``--multiarm split`` suggested
``--method MH --cc 0`` (exit 1, "Mantel-Haenszel RR undefined") and
``--measure OR --method GLMM`` (exit 2 under split), and several
adverse-event analyses suggested ``--method GLMM`` under split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from msc_meta.data import load_table
from msc_meta.pooling.selection import analysis_keys
from tests.test_one_selection import _args, _label

KEYS = analysis_keys(load_table())
VARIANTS = ((), ("--measure", "OR"), ("--method", "FE"))


def _suggestions(run_cli, key, mode, variant):
    code, out, err = run_cli("pool", *_args(key), "--multiarm", mode, *variant, "--json")
    if code != 0:
        return None
    doc = json.loads(out)
    return doc


def _apply(base, options):
    """The base options with ``options`` overriding any flag they repeat."""
    flags = {options[i] for i in range(len(options)) if options[i].startswith("--")}
    out, skip = [], False
    for i, item in enumerate(base):
        if skip:
            skip = False
            continue
        if item in flags:
            skip = i + 1 < len(base) and not base[i + 1].startswith("--")
            continue
        out.append(item)
    return out + list(options)


@pytest.mark.parametrize("mode", ("combine", "split", "keep"))
def test_every_suggestion_runs(run_cli, mode):
    tried, seen = 0, set()
    for key in KEYS:
        for variant in VARIANTS:
            doc = _suggestions(run_cli, key, mode, variant)
            if doc is None or not doc.get("guidance"):
                continue
            base = [*_args(key), "--multiarm", mode, *variant]
            tried += _run_suggestions(run_cli, base, doc, seen, f"{_label(key)} {mode} {variant}")
    assert tried >= 10


def _run_suggestions(run_cli, base, doc, seen, label) -> int:
    """Run each suggestion of ``doc`` (a pool's JSON) on ``base``; all must exit 0. Returns how many ran."""
    tried = 0
    for s in doc["suggestions"]:
        assert "`" in doc["guidance"]
        args = (s["command"], *(_apply(base, s["options"]) if s["command"] == "pool"
                                else _command_args(s["command"], base)))
        assert s["why"] in doc["guidance"], doc["guidance"]
        if args in seen:
            continue
        seen.add(args)
        code, out, err = run_cli(*args, "--json")
        assert code == 0, f"{label}: {' '.join(args)}\n{err}"
        tried += 1
    return tried


def _command_args(command, base):
    """bayes takes pool's selection, --measure and --multiarm; fragility no --measure/--method."""
    out, skip = [], False
    drop = {"--method"} if command == "bayes" else {"--method", "--measure"}
    for i, item in enumerate(base):
        if skip:
            skip = False
            continue
        if item in drop:
            skip = True
            continue
        out.append(item)
    return out


def test_split_fistula_closure_suggests_nothing_that_fails(run_cli):
    code, out, err = run_cli("pool", "--outcome", "fistula_closure", "--timepoint", "208", "--unit",
                             "patient", "--multiarm", "split", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert "GLMM" not in doc["guidance"] and "--cc 0" not in doc["guidance"]
    assert [s["command"] for s in doc["suggestions"]] == ["bayes"]


def test_guidance_text_lists_exactly_the_suggestions(run_cli):
    code, out, err = run_cli("pool", "--outcome", "fistula_closure", "--timepoint", "208", "--unit",
                             "fistula", "--multiarm", "keep", "--json")
    doc = json.loads(out)
    assert doc["guidance"].count("`") == 2 * len(doc["suggestions"])


# Two-arm tables with zero cells, where guidance fits the GLMM before suggesting it
# (glmm_checks.divergence_possible). "diverging": the counts of
# tests/fixtures/glmm_or_separation.json on which the GLMM's divergence rule fires.
SEPARATION = json.loads((Path(__file__).parent / "fixtures" / "glmm_or_separation.json").read_text())
DIVERGING = next(c for c in SEPARATION["cases"] if c["name"] == "diverging")
CONVERGING = {"ai": [3, 0, 5, 7, 2], "n1i": [10, 12, 5, 30, 8], "ci": [1, 2, 4, 2, 3], "n2i": [10, 11, 6, 28, 9]}


def _sparse_table(tmp_path, case) -> list[str]:
    path = tmp_path / "sparse.csv"
    lines = ["study_id,outcome,timepoint_weeks,unit,events_t,n_t,events_c,n_c"]
    lines += [f"s{i + 1},closure,24,patient,{a},{n1},{c},{n2}"
              for i, (a, n1, c, n2) in enumerate(zip(case["ai"], case["n1i"], case["ci"], case["n2i"]))]
    path.write_text("\n".join(lines) + "\n")
    return ["--data", str(path), "--outcome", "closure"]


def _pool_doc(run_cli, base):
    code, out, err = run_cli("pool", *base, "--json")
    assert code == 0, err
    return json.loads(out)


def _offers_glmm(doc) -> bool:
    return any("GLMM" in s["options"] for s in doc["suggestions"])


@pytest.mark.parametrize("variant", ((), ("--measure", "OR")))
def test_no_glmm_suggestion_where_its_divergence_rule_fires(run_cli, tmp_path, variant):
    base = [*_sparse_table(tmp_path, DIVERGING), *variant]
    code, _, err = run_cli("pool", *_apply(base, ["--measure", "OR", "--method", "GLMM"]))
    assert code != 0 and "tau² ran past 100" in err       # the GLMM is refused here ...
    doc = _pool_doc(run_cli, base)
    assert "zero-event arms" in doc["guidance"]
    assert not _offers_glmm(doc) and "GLMM" not in doc["guidance"]   # ... so it is not suggested
    assert ["--method", "MH", "--cc", "0"] in [s["options"] for s in doc["suggestions"]]
    assert _run_suggestions(run_cli, base, doc, set(), f"diverging {variant}") == len(doc["suggestions"])


@pytest.mark.parametrize("variant", ((), ("--measure", "OR")))
def test_glmm_not_offered_where_only_a_fit_could_tell(run_cli, tmp_path, variant):
    """Zero cells where the GLMM does converge: guidance cannot know that without the fit
    (~0.1 s an analysis), so it offers MH/Peto, which run, and not the GLMM; the GLMM itself
    runs when asked."""
    base = [*_sparse_table(tmp_path, CONVERGING), *variant]
    doc = _pool_doc(run_cli, base)
    assert "zero-event arms" in doc["guidance"] and not _offers_glmm(doc)
    assert doc["suggestions"]
    assert _run_suggestions(run_cli, base, doc, set(), f"converging {variant}") == len(doc["suggestions"])
    fit = _pool_doc(run_cli, _apply(base, ["--measure", "OR", "--method", "GLMM"]))
    assert fit["method"] == "GLMM" and fit["measure"] == "OR" and 0 < fit["tau2"] < 1


def test_guidance_never_fits_the_glmm(monkeypatch):
    """The GLMM suggestion is decided in closed form: no fit, whatever k (a --by over thousands
    of groups pays nothing for it); without a zero cell and with ORs < 1e4 apart it is offered."""
    from types import SimpleNamespace

    from msc_meta.pooling import glmm, guidance

    monkeypatch.setattr(glmm, "glmm_or", lambda *a, **kw: pytest.fail("guidance fitted the GLMM"))
    rng = np.random.default_rng(7)

    def rows(k, zero):
        n1, n2 = rng.integers(20, 40, k), rng.integers(20, 40, k)
        a, c = rng.binomial(n1, 0.3) + 1, rng.binomial(n2, 0.2) + 1
        if zero:
            a[0] = 0                                  # one zero cell: the rule could fire
        return [SimpleNamespace(events_t=float(a[i]), n_t=float(n1[i]), events_c=float(c[i]), n_c=float(n2[i]))
                for i in range(k)]

    for k in (5, 60):
        assert guidance._glmm_runs("OR", rows(k, zero=False), "keep")
        assert not guidance._glmm_runs("OR", rows(k, zero=True), "keep")
