"""Every command pools exactly the studies `pool` pools (issue: one selection, every command).

For every analysis of the shipped table (``selection.analysis_keys``) and
each ``--multiarm`` mode, ``pool --json`` gives the pooled study ids and the
rows left out; pool_many, export (one analysis and ``--all``), forest, bayes,
bias, sof, sensitivity, fragility and regress must agree with it. Before the
shared selection path, ``export --all`` pooled ``ae_malignancy`` with k = 4
(it kept leiden_bmmsc_treated, which ``pool`` leaves out as overlapping) and
``fragility``/``export`` could not take ``--timepoint blank``.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from msc_meta import registry

from msc_meta.data import load_table
from msc_meta.pooling.selection import analysis_keys

MODES = ("combine", "split", "keep")


def _args(key):
    outcome, timepoint, unit = key
    args = ["--outcome", outcome, "--timepoint", f"{timepoint:g}" if timepoint != "blank" else "blank"]
    return args + (["--unit", unit] if unit else [])


def _label(key):
    outcome, timepoint, unit = key
    return f"{outcome}|{timepoint}|{unit}"


KEYS = analysis_keys(load_table())


def _pool(run_cli, key, mode, *extra):
    code, out, err = run_cli("pool", *_args(key), "--multiarm", mode, "--json", *extra)
    if code != 0:
        assert code == 2 and err.count("\n") == 1, err
        return None
    doc = json.loads(out)
    return doc


def _ids(doc):
    return sorted(s["study_id"] for s in doc["studies"])


def _left_out(doc):
    return sorted(e["study_id"] for e in doc["excluded"])


@pytest.fixture(scope="module")
def pooled():
    from tests.conftest import run_cli_in_process as run

    return {(key, mode): _pool(run, key, mode) for key in KEYS for mode in MODES}


def test_the_shipped_table_has_many_analyses(pooled):
    assert len(KEYS) >= 40
    assert sum(doc is not None for doc in pooled.values()) >= 60
    # the case that showed the bug: pool leaves out the trial total 2/15
    doc = pooled[(("ae_malignancy", 208.0, "patient"), "combine")]
    assert doc["k"] == 3 and _left_out(doc) == ["leiden_bmmsc_treated"]


@pytest.mark.parametrize("mode", MODES)
def test_export_all_pools_what_pool_pools(run_cli, tmp_path, pooled, mode):
    out = tmp_path / f"all_{mode}.csv"
    code, _, err = run_cli("export", "--all", "--multiarm", mode, "-o", out)
    assert code == 0, err
    studies, excluded = {}, {}
    for row in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))):
        target = studies if row["row_type"] == "study" else excluded if row["row_type"] == "excluded" else None
        if target is not None:
            target.setdefault(row["analysis"], []).append(row["study_id"])
    exported = 0
    for key in KEYS:
        doc = pooled[(key, mode)]
        label = next((a for a in studies if _matches_label(a, key)), None)
        if doc is None:
            assert label is None, _label(key)
            continue
        exported += 1
        assert label is not None, _label(key)
        assert sorted(studies[label]) == _ids(doc), _label(key)
        assert sorted(excluded.get(label, [])) == _left_out(doc), _label(key)
    assert exported == len(studies)


def _matches_label(label, key):
    outcome, timepoint, unit = key
    parts = label.split("|")
    if parts[0] != outcome:
        return False
    weeks = "NA" if timepoint == "blank" else f"{timepoint:g}w"
    return weeks in parts[1:] and (unit is None or unit in parts[1:])


@pytest.mark.parametrize("mode", MODES)
def test_pool_many_pools_what_pool_pools(pooled, mode):
    import pandas as pd

    from msc_meta.data import curated_path
    from msc_meta.pooling.batch import pool_many

    frame = pd.read_csv(curated_path(), dtype=str, keep_default_na=False)
    frame = frame.replace("", None)
    result = pool_many(frame, by=["outcome", "timepoint_weeks", "unit"], multiarm=mode)
    for _, row in result.iterrows():
        weeks = row["timepoint_weeks"]
        key = (row["outcome"], "blank" if pd.isna(weeks) else float(weeks), row["unit"])
        doc = pooled[(key, mode)]
        if doc is None:
            assert row["k"] in (0, None) or row["error"], _label(key)
            continue
        assert row["k"] == doc["k"], _label(key)
        assert sorted(e["study_id"] for e in row["excluded"]) == _left_out(doc), _label(key)


@pytest.mark.parametrize("mode", MODES)
def test_bayes_and_bias_and_sof_pool_what_pool_pools(run_cli, pooled, mode):
    for key in KEYS:
        doc = pooled[(key, mode)]
        # a measure in the outcome's own units has no default prior on tau (bayes asks for one)
        prior = () if doc is None or registry.measure(doc["measure"]).tau_prior else (
            "--prior-tau", "halfnormal:1")
        code, out, err = run_cli("bayes", *_args(key), "--multiarm", mode, "--json", *prior)
        if doc is None:
            assert code == 2, _label(key)
            continue
        assert code == 0, err
        bayes = json.loads(out)
        assert sorted(s["study_id"] for s in bayes["studies"]) == _ids(doc), _label(key)
        assert _left_out(bayes) == _left_out(doc), _label(key)
        code, out, err = run_cli("bias", *_args(key), "--multiarm", mode, "--json")
        if code == 0:
            bias = json.loads(out)
            assert bias["k"] == doc["k"], _label(key)
            assert sorted(s["study_id"] for s in bias["funnel"]["studies"]) == _ids(doc)
            assert _left_out(bias) == _left_out(doc), _label(key)
        if doc["measure"] in ("RR", "OR", "RD"):
            code, out, err = run_cli("sof", *_args(key), "--multiarm", mode, "--json")
            assert code == 0, err
            assert json.loads(out)["k"] == doc["k"], _label(key)


@pytest.mark.parametrize("mode", MODES)
def test_sensitivity_leaves_out_each_study_pool_pools(run_cli, pooled, mode):
    checked = 0
    for key in KEYS:
        doc = pooled[(key, mode)]
        if doc is None or doc["k"] < 3:
            continue
        code, out, err = run_cli("sensitivity", *_args(key), "--multiarm", mode, "--json")
        assert code == 0, err
        omitted = sorted(x["omitted"] for x in json.loads(out)["leave_one_out"])
        assert omitted == _ids(doc), _label(key)
        checked += 1
    assert checked >= 1


def test_regress_pools_what_pool_keep_pools(run_cli, pooled):
    """regress keeps the dose cohorts apart on purpose: it must match `pool --multiarm keep`."""
    checked = 0
    for key in KEYS:
        doc = pooled[(key, "keep")]
        if doc is None or doc["k"] < 3:
            continue
        code, out, err = run_cli("regress", *_args(key), "--mods", "log10(dose_cells)", "--json")
        if code != 0:
            continue
        reg = json.loads(out)
        assert sorted(s["study_id"] for s in reg["studies"]) == _ids(doc), _label(key)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("mode", ("combine", "keep"))
def test_fragility_tests_the_comparisons_pool_pools(run_cli, pooled, mode):
    code, out, err = run_cli("fragility", "--multiarm", mode, "--json")
    assert code == 0, err
    listed = {}
    for item in json.loads(out):
        listed.setdefault(item["outcome"], []).append(item["study_id"])
    expected = {}
    for key in KEYS:
        code, out, _ = run_cli("pool", *_args(key), "--multiarm", mode, "--measure", "RD", "--json")
        if code == 0:
            expected.setdefault(key[0], []).extend(_ids(json.loads(out)))
    assert {k: sorted(v) for k, v in listed.items()} == {k: sorted(v) for k, v in expected.items()}


def test_fragility_and_export_take_every_timepoint_form(run_cli, tmp_path):
    for args in (["--timepoint", "blank"], ["--timepoint", "any"], ["--timepoint", "24"]):
        code, out, err = run_cli("export", "--outcome", "clinical_remission", *args, "-o",
                                 tmp_path / f"x{args[1]}.csv")
        assert code in (0, 2) and "is not a valid float" not in err, err
    code, out, err = run_cli("export", "--outcome", "clinical_remission", "--timepoint", "blank",
                             "-o", tmp_path / "blank.csv")
    assert code == 0, err
    code, out, err = run_cli("fragility", "--timepoint", "24", "--json")
    assert code == 0, err
    assert {x["study_id"] for x in json.loads(out)} == {"panes_cx601"}


@pytest.mark.parametrize("mode", MODES)
def test_forest_draws_what_pool_pools(run_cli, tmp_path, pooled, monkeypatch, mode):
    import msc_meta.plot._common as common
    import msc_meta.plot.forest as forest_module

    drawn = []
    monkeypatch.setattr(forest_module, "forest_pages",
                        lambda analyses, **kw: drawn.append(analyses) or [None])
    monkeypatch.setattr(common, "save_pages", lambda figs, path, **kw: [path])
    for key in KEYS:
        doc = pooled[(key, mode)]
        drawn.clear()
        code, _, err = run_cli("forest", *_args(key), "--multiarm", mode, "-o", tmp_path / "f.png")
        if doc is None:
            assert code == 2, _label(key)
            continue
        assert code == 0, err
        (analysis,) = drawn[0]
        assert sorted(s.study_id for s in analysis.studies) == _ids(doc), _label(key)
        assert sorted(e.study_id for e in analysis.excluded) == _left_out(doc), _label(key)
