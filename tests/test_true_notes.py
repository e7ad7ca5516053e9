"""Notes that are true (issue: every printed number right), on the shipped table."""

from __future__ import annotations

import json

import pytest

SPLIT_208_FISTULA = ("--outcome", "fistula_closure", "--timepoint", "208", "--unit", "fistula",
                     "--multiarm", "split")


@pytest.mark.parametrize("command", ["sensitivity", "bias"])
def test_a_split_control_is_not_said_to_be_used_three_times(run_cli, command):
    code, out, err = run_cli(command, *SPLIT_208_FISTULA, "--json")
    assert code == 0, err
    notes = " ".join(json.loads(out)["notes"])
    assert "used 3 times" not in notes
    assert "split evenly among the 3 comparisons" in notes


def test_k1_glmm_is_not_headed_as_a_glmm(run_cli):
    code, out, err = run_cli("pool", "--outcome", "fistula_closure", "--timepoint", "208", "--unit",
                             "patient", "--method", "GLMM")
    assert code == 0, err
    first = " ".join(" ".join(out.split("\n")[:2]).split())
    assert "GLMM" not in first and "the study's own estimate (Wald CI)" in first
    assert "no GLMM model was fitted to one study" in " ".join(out.split())


def test_a_single_proportion_says_why_it_shows_two_intervals(run_cli):
    code, out, err = run_cli("pool", "--outcome", "clinical_remission", "--timepoint", "blank",
                             "--json")
    assert code == 0, err
    doc = json.loads(out)
    study = doc["studies"][0]
    assert (study["ci_low"], study["ci_high"]) != (doc["ci_low"], doc["ci_high"])
    assert any("hence the two different intervals" in note for note in doc["notes"])


def test_exclusion_reasons_are_whole(run_cli):
    code, out, err = run_cli("pool", "--outcome", "fistula_closure", "--timepoint", "any", "--unit",
                             "patient", "--json")
    assert code == 0, err
    reasons = [e["reason"] for e in json.loads(out)["excluded"]]
    cx601 = next(r for r in reasons if "presumably" in r)
    assert "…" not in cx601 and "presumably the same trial's 12-month results" in cx601
