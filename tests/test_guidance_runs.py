"""Guidance offers only what runs: every suggestion, for every analysis of the shipped table.

Before, the 4-year fistula closure under ``--multiarm split`` suggested
``--method MH --cc 0`` (exit 1, "Mantel-Haenszel RR undefined") and
``--measure OR --method GLMM`` (exit 2 under split), and several
adverse-event analyses suggested ``--method GLMM`` under split.
"""

from __future__ import annotations

import json

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
            for s in doc["suggestions"]:
                assert f"`" in doc["guidance"]
                args = (s["command"], *(_apply(base, s["options"]) if s["command"] == "pool"
                                        else _command_args(s["command"], base)))
                assert s["why"] in doc["guidance"], doc["guidance"]
                if args in seen:
                    continue
                seen.add(args)
                code, out, err = run_cli(*args, "--json")
                assert code == 0, f"{_label(key)} {mode} {variant}: {' '.join(args)}\n{err}"
                tried += 1
    assert tried >= 10


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
