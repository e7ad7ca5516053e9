"""The `pool --json` document against shared/cli-contract.md (`### --json output`).

A hand-written schema: every contract key present with its type, strict JSON
(no NaN / Infinity), `--by` giving a list whose elements carry `group` and
`subgroup_test`. Values through the CLI are compared with metafor on
dat.bcg, using the rma engine's own fixtures (tests/fixtures/rma_bcg.json,
diag_bcg_data.json).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from msc_meta.cli import main
from msc_meta.pooling.analysis import Analysis, Excluded, StudyLine
from msc_meta.pooling.subgroups import SubgroupTest
from msc_meta.pooling.results import PoolResult
from msc_meta.report.json_out import (
    CONTRACT_KEYS,
    EXTENSION_KEYS,
    STUDY_KEYS,
    analysis_to_dict,
    to_json,
)

FIXTURES = Path(__file__).parent / "fixtures"

NUMBER = (int, float)
OPT_NUMBER = (int, float, type(None))

# The contract's keys and the JSON types they may take (null where undefined).
SCHEMA = {
    "measure": str, "method": str, "k": int,
    "theta": OPT_NUMBER, "se": OPT_NUMBER,
    "estimate": OPT_NUMBER, "ci_low": OPT_NUMBER, "ci_high": OPT_NUMBER,
    "pi_low": OPT_NUMBER, "pi_high": OPT_NUMBER,
    "tau2": OPT_NUMBER, "tau": OPT_NUMBER, "i2": OPT_NUMBER, "h2": OPT_NUMBER,
    "q": OPT_NUMBER, "q_df": (int, type(None)), "q_pval": OPT_NUMBER,
    "stat": OPT_NUMBER, "pval": OPT_NUMBER,
    "excluded": list, "studies": list,
}
STUDY_SCHEMA = {
    "study_id": str, "events_t": int, "n_t": int,
    # integers, except a control split among comparisons (--multiarm split)
    "events_c": OPT_NUMBER, "n_c": OPT_NUMBER,
    "yi": OPT_NUMBER, "vi": OPT_NUMBER, "estimate": OPT_NUMBER,
    "ci_low": OPT_NUMBER, "ci_high": OPT_NUMBER, "weight": OPT_NUMBER,
}
EXTENSION_SCHEMA = {
    "outcome": str, "timepoint_weeks": OPT_NUMBER, "unit": (str, type(None)),
    "group": (str, type(None)), "level": NUMBER, "hksj": bool, "test": (str, type(None)),
    "df": OPT_NUMBER, "theta_ci_low": OPT_NUMBER, "theta_ci_high": OPT_NUMBER,
    "tau2_ci_low": OPT_NUMBER, "tau2_ci_high": OPT_NUMBER,
    "i2_ci_low": OPT_NUMBER, "i2_ci_high": OPT_NUMBER, "pi_method": (str, type(None)),
    "common": (dict, type(None)), "notes": list,
    "multiarm": str, "study_ci": str, "guidance": (str, type(None)),
    "assumed_r": OPT_NUMBER, "scale": (str, type(None)), "r_sensitivity": (list, type(None)),
}
STUDY_EXTENSION_SCHEMA = {
    "row": int, "cc_added": bool, "multiarm": (str, type(None)), "members": (list, type(None)),
    "member_rows": (list, type(None)), "control_share": OPT_NUMBER,
}


def check_schema(doc: dict) -> None:
    """Assert that one pool object follows the contract (raises with the offending key)."""
    assert isinstance(doc, dict)
    for key, types in SCHEMA.items():
        assert key in doc, f"missing contract key {key}"
        assert isinstance(doc[key], types), f"{key}: {doc[key]!r} is not {types}"
        # bool is an int in Python, never a valid number here
        assert not isinstance(doc[key], bool), key
    for key, types in EXTENSION_SCHEMA.items():
        assert key in doc, f"missing extension key {key}"
        assert isinstance(doc[key], types), f"{key}: {doc[key]!r} is not {types}"
    assert doc["measure"] in ("PR", "PLO", "PFT", "PAS", "RR", "OR", "RD")
    assert doc["method"] in ("FE", "MH", "PETO", "DL", "REML", "ML", "PM", "HE", "SJ", "HS", "EB",
                             "GLMM")
    assert doc["multiarm"] in ("combine", "split", "keep")
    assert doc["study_ci"] in ("exact", "wilson", "wald")
    for item in doc["excluded"]:
        assert isinstance(item["study_id"], str) and isinstance(item["reason"], str) and item["reason"]
    for study in doc["studies"]:
        for key, types in {**STUDY_SCHEMA, **STUDY_EXTENSION_SCHEMA}.items():
            assert key in study, f"study missing {key}"
            assert isinstance(study[key], types), f"study {key}: {study[key]!r}"
        if study["multiarm"] != "split" and study["events_c"] is not None:
            assert isinstance(study["events_c"], int) and isinstance(study["n_c"], int)
        assert (study["members"] is None) == (study["multiarm"] is None)
    assert len(doc["studies"]) == doc["k"]
    if doc["k"] > 0:
        weights = [s["weight"] for s in doc["studies"]]
        if doc["method"] == "GLMM":
            assert all(w is None for w in weights)      # not defined for the GLMM
        else:
            assert sum(weights) == pytest.approx(100.0)
        assert doc["ci_low"] <= doc["estimate"] <= doc["ci_high"]
        assert doc["i2"] is None or 0.0 <= doc["i2"] <= 100.0
    if doc["common"] is not None:
        for key in ("method", "k", "theta", "se", "estimate", "ci_low", "ci_high", "stat", "pval"):
            assert key in doc["common"], f"common missing {key}"


def strict_loads(text: str):
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


# ---------------------------------------------------------------- hand-built

def _fit(**overrides) -> PoolResult:
    values = dict(
        measure="RR", method="REML", k=2, theta=0.4, se=0.2, theta_ci_low=0.008, theta_ci_high=0.792,
        estimate=math.exp(0.4), ci_low=math.exp(0.008), ci_high=math.exp(0.792), stat=2.0,
        pval=0.0455, tau2=0.01, tau=0.1, i2=10.0, h2=1.1, q=1.2, q_df=1, q_pval=0.27,
        weights=(40.0, 60.0), random=True, pi_method="hts", pi_low=float("nan"),
        pi_high=float("inf"), tau2_ci_low=0.0, tau2_ci_high=float("nan"),
    )
    values.update(overrides)
    return PoolResult(**values)


def _analysis(**overrides) -> Analysis:
    studies = (
        StudyLine("A", 2, 10, 20, 5, 20, 0.69, 0.3, 2.0, 0.68, 5.9, 40.0, False),
        StudyLine("B", 3, 0, 15, 3, 15, -1.9, 2.1, 0.14, 0.01, 2.5, 60.0, True),
    )
    values = dict(
        outcome="closure", timepoint_weeks=24.0, unit="patient", group=None, measure="RR",
        result=_fit(), common=_fit(method="FE", random=False, tau2=0.0, tau=0.0,
                                   pi_method=None, pi_low=None, pi_high=None),
        studies=studies, excluded=(Excluded("C", 4, "no counts in the source: 40% printed"),),
        notes=("with k = 2 the z-based CI is too narrow",),
    )
    values.update(overrides)
    return Analysis(**values)


def test_contract_key_lists_match_the_contract_text():
    """CONTRACT_KEYS and STUDY_KEYS are the keys the contract lists, in its order."""
    contract = Path(__file__).resolve().parents[2] / "shared" / "cli-contract.md"
    if not contract.exists():
        pytest.skip("shared/cli-contract.md not available next to the repository")
    block = contract.read_text().split("### `--json` output", 1)[1].split("```")[1]
    code = " ".join(line.split("#")[0] for line in block.splitlines())
    top, studies = code.split("studies:")
    words = lambda text: [w for w in (x.strip(" ,:[{}]") for x in text.split()) if w]  # noqa: E731
    assert list(CONTRACT_KEYS) == words(top) + ["studies"]
    assert list(STUDY_KEYS) == words(studies)


def test_hand_built_document_follows_the_schema_and_is_strict_json():
    text = to_json([_analysis()])
    doc = strict_loads(text)
    check_schema(doc)
    assert list(doc)[: len(CONTRACT_KEYS)] == list(CONTRACT_KEYS)  # contract keys first, in order
    assert set(EXTENSION_KEYS) <= set(doc)
    assert doc["pi_low"] is None and doc["pi_high"] is None     # NaN and inf -> null
    assert doc["tau2_ci_high"] is None
    assert doc["excluded"] == [{"study_id": "C", "reason": "no counts in the source: 40% printed", "row": 4}]
    assert doc["studies"][1]["cc_added"] is True
    assert doc["common"]["method"] == "FE" and doc["common"]["weights"] == [40.0, 60.0]
    assert "subgroup_test" not in doc
    # no --r, a fixed-scale measure, nothing assumed
    assert (doc["assumed_r"], doc["scale"], doc["r_sensitivity"]) == (None, None, None)


def test_nothing_pooled_keeps_every_key_with_nulls():
    doc = analysis_to_dict(_analysis(result=None, common=None, studies=(), group="iv", by="route"))
    check_schema(doc)
    assert doc["k"] == 0 and doc["theta"] is None and doc["method"] == "REML"
    assert doc["subgroup_test"] is None


def test_by_document_is_a_list_with_group_and_subgroup_test():
    test = SubgroupTest(q_between=2.5, df=1, pval=0.11, by="route", groups=("iv", "local"))
    text = to_json([_analysis(group="iv", by="route"), _analysis(group="local", by="route")], test,
                   grouped=True)
    doc = strict_loads(text)
    assert isinstance(doc, list) and [d["group"] for d in doc] == ["iv", "local"]
    for element in doc:
        check_schema(element)
        assert element["subgroup_test"] == {"by": "route", "q_between": 2.5, "df": 1, "pval": 0.11,
                                            "n_groups": 2, "in_test": True}


# ---------------------------------------------------------------- through the CLI, vs metafor

def _bcg_csv(tmp_path):
    data_file, fits_file = FIXTURES / "diag_bcg_data.json", FIXTURES / "rma_bcg.json"
    if not (data_file.exists() and fits_file.exists()):
        pytest.skip("dat.bcg fixtures of the rma engine not present")
    bcg = json.loads(data_file.read_text())
    path = tmp_path / "bcg.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["study_id", "outcome", "events_t", "n_t", "events_c", "n_c", "alloc"])
        for i in range(len(bcg["trial"])):
            writer.writerow([f"{bcg['author'][i]} {bcg['year'][i]}", "tb", bcg["tpos"][i],
                             bcg["tpos"][i] + bcg["tneg"][i], bcg["cpos"][i],
                             bcg["cpos"][i] + bcg["cneg"][i], bcg["alloc"][i]])
    cases = {c["name"]: c for c in json.loads(fits_file.read_text())["cases"]}
    return str(path), cases


def run_json(capsys, monkeypatch, *argv):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exit_info:
        main(["pool", *argv, "--json"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0, err
    return out


@pytest.mark.parametrize("case, argv", [
    ("bcg_RR_REML_z", []),
    ("bcg_RR_REML_knha", ["--hksj"]),
    ("bcg_RR_DL_z", ["--method", "DL"]),
    ("bcg_OR_PM_z", ["--measure", "OR", "--method", "PM"]),
    ("bcg_RD_FE_z", ["--measure", "RD", "--method", "FE"]),
    ("bcg_RR_REML_z_level90", ["--level", "90"]),
])
def test_cli_json_matches_metafor_on_bcg(tmp_path, capsys, monkeypatch, case, argv):
    path, cases = _bcg_csv(tmp_path)
    ref = cases[case]
    out = run_json(capsys, monkeypatch, "--data", path, "--outcome", "tb", *argv)
    doc = strict_loads(out)
    check_schema(doc)
    rel = dict(rel=1e-6, abs=1e-10)
    assert doc["k"] == 13 and doc["method"] == ref["method"]
    assert doc["theta"] == pytest.approx(ref["b"], **rel)
    assert doc["se"] == pytest.approx(ref["se"], **rel)
    assert doc["theta_ci_low"] == pytest.approx(ref["ci_lb"], **rel)
    assert doc["theta_ci_high"] == pytest.approx(ref["ci_ub"], **rel)
    assert doc["stat"] == pytest.approx(ref["zval"], **rel)
    assert doc["pval"] == pytest.approx(ref["pval"], **rel)
    assert doc["tau2"] == pytest.approx(ref["tau2"], **rel)
    assert doc["i2"] == pytest.approx(ref["I2"], **rel)
    assert doc["h2"] == pytest.approx(ref["H2"], **rel)
    assert doc["q"] == pytest.approx(ref["QE"], **rel)
    assert doc["q_pval"] == pytest.approx(ref["QEp"], **rel)
    assert [s["weight"] for s in doc["studies"]] == pytest.approx(ref["weights"], **rel)
    assert [s["yi"] for s in doc["studies"]] == pytest.approx(ref["yi"], **rel)
    assert [s["vi"] for s in doc["studies"]] == pytest.approx(ref["vi"], **rel)
    if "natural" in ref:
        assert doc["estimate"] == pytest.approx(ref["natural"]["estimate"], **rel)
    if ref["method"] != "FE" and ref.get("hts_lb") is not None and ref["test"] == "z":
        back = math.exp if doc["measure"] in ("RR", "OR") else (lambda x: x)
        assert doc["pi_low"] == pytest.approx(back(ref["hts_lb"]), **rel)
        assert doc["pi_high"] == pytest.approx(back(ref["hts_ub"]), **rel)
        assert doc["tau2_ci_low"] == pytest.approx(ref["tau2_ci_lb"], **rel)
        assert doc["tau2_ci_high"] == pytest.approx(ref["tau2_ci_ub"], **rel)


def test_cli_by_document_on_bcg(tmp_path, capsys, monkeypatch):
    path, _ = _bcg_csv(tmp_path)
    doc = strict_loads(run_json(capsys, monkeypatch, "--data", path, "--outcome", "tb", "--by", "alloc"))
    assert [d["group"] for d in doc] == ["alternate", "random", "systematic"]
    for element in doc:
        check_schema(element)
        assert element["subgroup_test"]["df"] == 2
    assert sum(d["k"] for d in doc) == 13


@pytest.mark.parametrize("argv", [
    ["--multiarm", "combine"], ["--multiarm", "split"], ["--multiarm", "keep"],
    ["--method", "GLMM"], ["--measure", "PLO", "--study-ci", "wilson"],
    ["--measure", "PLO", "--method", "GLMM", "--by", "route"],
])
def test_multiarm_glmm_and_study_ci_documents_follow_the_schema(tmp_path, capsys, monkeypatch, argv):
    rows = json.loads((FIXTURES / "multiarm.json").read_text())["small"]["rows"]
    path = tmp_path / "small.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    doc = strict_loads(run_json(capsys, monkeypatch, "--data", str(path), "--outcome", "closure", *argv))
    for element in doc if isinstance(doc, list) else [doc]:
        check_schema(element)
        assert element["guidance"] is None or "\n" not in element["guidance"]


# ---------------------------------------------------------------- assumed_r, scale, r_sensitivity

SPREAD = json.loads((FIXTURES / "spread_pool.json").read_text())
SPREAD_CASES = {case["name"]: case for case in SPREAD["cases"]}


@pytest.mark.parametrize("name", ["paired_MC", "paired_SMCC"])
def test_the_r_sensitivity_is_structured_and_equals_metafor(capsys, monkeypatch, name):
    """tests/r/fixtures_spread.R: the pool at r = 0.2, 0.5, 0.8 for the study without r (s6)."""
    ref = SPREAD_CASES[name]
    measure = name.split("_")[1]
    doc = strict_loads(run_json(capsys, monkeypatch, "--data", str(FIXTURES / "spread_pool" / "paired.csv"),
                                "--outcome", "score", "--measure", measure, "--r", "0.5"))
    assert doc["assumed_r"] == 0.5 and doc["scale"] is None
    found = doc["r_sensitivity"]
    assert [list(item) for item in found] == [["r", "estimate", "ci_low", "ci_high"]] * 3
    assert [item["r"] for item in found] == [0.2, 0.5, 0.8]
    for ours, theirs in zip(found, ref["r_sensitivity"]):
        for key in ("estimate", "ci_low", "ci_high"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-6), (ours["r"], key)
    # the note says the same numbers, rounded
    note = next(n for n in doc["notes"] if n.startswith("sensitivity to the assumed r"))
    assert f"r = 0.8: {ref['r_sensitivity'][2]['estimate']:.4g}" in note


def test_assumed_r_is_reported_even_where_no_study_takes_it(capsys, monkeypatch):
    doc = strict_loads(run_json(capsys, monkeypatch, "--data", str(FIXTURES / "spread_pool" / "paired.csv"),
                                "--outcome", "score", "--measure", "MC", "--r", "0.3", "--by", "study_id"))
    by_study = {d["group"]: d for d in doc}
    assert all(d["assumed_r"] == 0.3 for d in doc)
    # s1 gives its own r: nothing rests on --r; s6 gives none: its own MC at r = 0.2, 0.5, 0.8
    assert by_study["s1"]["r_sensitivity"] is None
    s6 = by_study["s6"]["r_sensitivity"]
    # MC of s6 (n 30, 12 -> 11.1, SDs 4 and 3.6): yi = -0.9, vi = (16 + 12.96 - 2 r 14.4)/30
    for item in s6:
        half = 1.959963984540054 * math.sqrt((16 + 12.96 - 2 * item["r"] * 4 * 3.6) / 30)
        assert item["estimate"] == pytest.approx(-0.9, rel=1e-12)
        assert (item["ci_low"], item["ci_high"]) == pytest.approx((-0.9 - half, -0.9 + half), rel=1e-9)


def test_without_r_the_key_is_null(capsys, monkeypatch):
    doc = strict_loads(run_json(capsys, monkeypatch, "--data", str(FIXTURES / "spread_pool" / "paired.csv"),
                                "--outcome", "score", "--measure", "MC"))
    assert doc["assumed_r"] is None and doc["r_sensitivity"] is None
    assert doc["k"] == 5        # s6 has no r and none is assumed: left out
    assert [e["study_id"] for e in doc["excluded"]] == ["s6"]


@pytest.mark.parametrize("data, argv, scale", [
    ("cli_outcomes/bcg_gen.csv", ["--outcome", "tb", "--measure", "GEN", "--scale", "log"], "log"),
    ("outcome_commands/bcg_yi_vi.csv", ["--outcome", "tb", "--measure", "GEN"], "identity"),
])
def test_gen_documents_name_their_scale(capsys, monkeypatch, data, argv, scale):
    doc = strict_loads(run_json(capsys, monkeypatch, "--data", str(FIXTURES / data), *argv))
    assert doc["measure"] == "GEN" and doc["scale"] == scale
    assert doc["assumed_r"] is None and doc["r_sensitivity"] is None
    if scale == "log":      # the estimate is exp(theta): the scale the key names
        ref = {c["name"]: c for c in json.loads((FIXTURES / "cli_outcomes.json").read_text())["cases"]}
        assert doc["estimate"] == pytest.approx(ref["bcg_GEN_log"]["estimate"], rel=1e-6)
        assert doc["estimate"] == pytest.approx(math.exp(doc["theta"]), rel=1e-12)


@pytest.mark.parametrize("measure, units", [("MD", "days"), ("SMD", None), ("ROM", None)])
def test_outcome_units_of_measures_in_the_outcomes_units(capsys, monkeypatch, measure, units):
    """normand1999 with outcome_units = days (tests/r/fixtures_outcome_commands.R): MD is in
    days, SMD and the ratio of means have no units."""
    doc = strict_loads(run_json(capsys, monkeypatch, "--data",
                                str(FIXTURES / "outcome_commands" / "normand1999.csv"),
                                "--outcome", "length_of_stay", "--measure", measure))
    assert doc["outcome_units"] == units
    assert doc["k"] == 9 and doc["scale"] is None
