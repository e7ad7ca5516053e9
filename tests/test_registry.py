"""Measures and methods are defined once, in msc_meta.registry, and every module reads them.

A toy measure is added through the registry alone and pooled, and no module
outside the registry spells out a list of measures or methods.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

from msc_meta import registry
from msc_meta.pooling.analysis import run_pool

SRC = Path(__file__).resolve().parents[1] / "src" / "msc_meta"


def _sqrt_proportion(x, m):
    """Toy: square root of the proportion, delta-method variance (1 - p) / (4 n)."""
    n = x + m
    p = x / n
    return np.sqrt(p), (1.0 - p) / (4.0 * n)


@pytest.fixture
def toy_measure():
    toy = registry.Measure("PSQ", "Proportion", "Proportion", "square-root proportion",
                           "Square-root proportion", registry.COUNTS_ONE_ARM, _sqrt_proportion,
                           back=lambda x: np.clip(x, 0.0, None) ** 2, bounds=(0.0, 1.0))
    registry.register_measure(toy)
    yield toy
    registry.unregister_measure("PSQ")


ROWS = [("A", 4, 20), ("B", 9, 30), ("C", 5, 12), ("D", 0, 9)]


def _table(tmp_table):
    rows = [dict(study_id=s, outcome="healing", events_t=x, n_t=n) for s, x, n in ROWS]
    return tmp_table(rows)


def test_a_toy_measure_is_pooled_through_the_registry_alone(tmp_table, toy_measure):
    from msc_meta.data import load_table

    table = load_table(_table(tmp_table))
    analysis = run_pool(table, outcome="healing", measure="psq", method="FE", cc=0.5)
    x = np.array([r[1] for r in ROWS], dtype=float)
    n = np.array([r[2] for r in ROWS], dtype=float)
    zero = (x == 0) | (x == n)
    xa, ma = np.where(zero, x + 0.5, x), np.where(zero, n - x + 0.5, n - x)
    yi, vi = _sqrt_proportion(xa, ma)
    w = 1.0 / vi
    theta = float(np.sum(w * yi) / np.sum(w))
    assert analysis.measure == "PSQ" and analysis.k == 4
    assert analysis.result.theta == pytest.approx(theta, rel=1e-12)
    assert analysis.result.se == pytest.approx(math.sqrt(1.0 / np.sum(w)), rel=1e-12)
    assert analysis.result.estimate == pytest.approx(theta ** 2, rel=1e-12)
    assert [s.cc_added for s in analysis.studies] == [False, False, False, True]


def test_the_command_line_takes_a_registered_measure(tmp_table, toy_measure, run_cli):
    code, out, err = run_cli("pool", "--data", _table(tmp_table), "--outcome", "healing",
                             "--measure", "PSQ", "--method", "REML", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["measure"] == "PSQ" and doc["k"] == 4
    code, out, err = run_cli("pool", "--data", _table(tmp_table), "--outcome", "healing",
                             "--measure", "PSQ")
    assert code == 0 and "PSQ" in out, err


def test_registry_defaults_follow_the_contract():
    assert registry.default_measure(False) == "PLO" and registry.default_measure(True) == "RR"
    assert registry.measures(arms=1, family="counts") == ("PR", "PLO", "PFT", "PAS")
    assert registry.measures(arms=2, family="counts") == ("RR", "OR", "RD")
    assert registry.measures(family="means_two") == ("MD", "SMD", "SMDH", "ROM")
    assert registry.measures(scaled=True, every=True) == ("GEN",)
    # the command line offers the measures of the families the table loader reads
    import msc_meta.data.schema  # noqa: F401  (the loader registers the families it reads)

    assert set(registry.measures()) == set(registry.measures(every=True))
    assert registry.table_families() == registry.families()
    assert registry.methods(kind="random") == ("DL", "REML", "ML", "PM", "HE", "SJ", "HS", "EB")
    assert registry.method("peto").pools("OR") and not registry.method("MH").pools("PLO")


def _listed_names(node) -> set[str]:
    """Registered measure or method names written out as literals in one collection."""
    names = set(registry.measures(every=True)) | set(registry.methods())
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = node.elts
    elif isinstance(node, ast.Dict):
        items = [k for k in node.keys if k is not None]
    else:
        return set()
    values = {item.value for item in items
              if isinstance(item, ast.Constant) and isinstance(item.value, str)}
    return values & names


def test_no_module_outside_the_registry_lists_measures_or_methods():
    """A collection naming three or more measures or methods anywhere, or two in a module-level
    constant or a dict, is a list the registry should hold. Two names compared inside a
    function are a formula's own branch (e.g. DL and HS share a standard error)."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "registry.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {id(node.value) for node in tree.body if isinstance(node, ast.Assign)}
        for node in ast.walk(tree):
            found = _listed_names(node)
            flagged = len(found) >= 3 or (len(found) >= 2 and (id(node) in constants
                                                               or isinstance(node, ast.Dict)))
            if flagged:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {sorted(found)}")
    assert offenders == []
