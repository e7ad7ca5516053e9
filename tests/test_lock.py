"""msc-meta lock / check --lock: every curated number and pooled result is locked; a change is a readable diff."""

from __future__ import annotations

import csv
import functools
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import write_table

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_LOCK = ROOT / "data" / "results.lock.json"


def _failures(out: str) -> list[str]:
    return [line for line in out.splitlines() if "[lock]" in line]


def test_shipped_lock_matches_the_shipped_table(run_cli):
    code, out, err = run_cli("check", "--lock", SHIPPED_LOCK)
    assert code == 0, out
    assert out.strip().splitlines()[-1].endswith("bind, numbers, timepoint, lock)")


def test_lock_is_stable_and_holds_numbers_options_and_results(run_cli, tmp_path):
    code, _, err = run_cli("lock", "-o", tmp_path / "a.json")
    assert code == 0 and "wrote" in err
    run_cli("lock", "-o", tmp_path / "b.json")
    text = (tmp_path / "a.json").read_text(encoding="utf-8")
    assert text == (tmp_path / "b.json").read_text(encoding="utf-8") == SHIPPED_LOCK.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert list(doc) == sorted(doc) and text.endswith("}\n")
    assert doc["options"] == {"measure": None, "method": "REML", "hksj": False, "pi": "hts", "cc": 0.5,
                              "level": 95.0, "multiarm": "combine", "study_ci": "wald"}
    assert doc["tolerance"]["pooled_rtol"] == 1e-9
    row = doc["curated"]["panes_cx601 / fistula_closure / 24 / patient"]
    assert (row["events_t"], row["n_t"], row["pct_t"], row["events_c"], row["n_c"], row["pct_c"]) == \
        (53, 107, "50", 36, 105, "34")
    assert row["dose_cells"] == 1.2e8 and row["timepoint_weeks"] == 24
    pooled = doc["analyses"]["fistula_closure / 208 / patient"]
    assert set(pooled) == {"k", "measure", "method", "estimate", "ci_low", "ci_high", "tau2"}
    assert doc["analyses"]["combined_healing / 24 / patient"] is None       # nothing to pool: no counts


def test_lock_refuses_to_overwrite_without_force(run_cli, tmp_path):
    target = tmp_path / "lock.json"
    target.write_text("old")
    code, _, err = run_cli("lock", "-o", target)
    assert code == 2 and err.strip().endswith("file exists; use --force to overwrite it")
    assert target.read_text() == "old"
    assert run_cli("lock", "-o", target, "--force")[0] == 0
    assert json.loads(target.read_text())["format"] == 1


def _copy_with(tmp_path, change) -> Path:
    from msc_meta.data import curated_path

    with open(curated_path(), newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, columns = list(reader), reader.fieldnames
    change(rows)
    return write_table(tmp_path / "copy.csv", rows, columns)


def test_check_lock_lists_a_moved_number_and_the_estimates_it_moves(run_cli, tmp_path):
    def more_events(rows):
        row = next(r for r in rows if (r["study_id"], r["outcome"], r["timepoint_weeks"], r["unit"]) ==
                   ("leiden_bmmsc_c3", "fistula_closure", "208", "patient"))
        row["events_t"], row["pct_t"] = "2", "40"
    run_cli("lock", "--data", _copy_with(tmp_path, lambda rows: None), "-o", tmp_path / "lock.json")
    data = _copy_with(tmp_path, more_events)
    code, out, _ = run_cli("check", "--data", data, "--lock", tmp_path / "lock.json")
    assert code == 1
    lines = _failures(out)
    assert "lock.json [lock] curated leiden_bmmsc_c3 / fistula_closure / 208 / patient: " \
           "events_t 1 in the lock, 2 now" in lines
    assert any(re.fullmatch(r"lock\.json \[lock\] analysis fistula_closure / 208 / patient: estimate \S+ in the "
                            r"lock, \S+ now \(relative change \S+; tolerance 1e-09\)", line) for line in lines)
    code, out, _ = run_cli("check", "--data", data, "--lock", tmp_path / "lock.json", "--json")
    kinds = {(f["check"], f["row"]) for f in json.loads(out)["failures"]}
    assert ("lock", None) in kinds


def _shift_estimates(monkeypatch, factor):
    import msc_meta.pooling.analysis as analysis

    original = analysis.run_pool

    @functools.wraps(original)
    def shifted(*args, **kwargs):
        found = original(*args, **kwargs)
        return replace(found, result=replace(found.result, estimate=found.result.estimate * factor))

    monkeypatch.setattr(analysis, "run_pool", shifted)


def test_a_code_change_that_moves_an_estimate_fails(run_cli, monkeypatch):
    _shift_estimates(monkeypatch, 1 + 1e-7)
    code, out, _ = run_cli("check", "--lock", SHIPPED_LOCK)
    assert code == 1
    assert all(": estimate " in line for line in _failures(out)) and len(_failures(out)) > 10


def test_changes_within_the_tolerance_pass(run_cli, monkeypatch):
    _shift_estimates(monkeypatch, 1 + 1e-11)
    assert run_cli("check", "--lock", SHIPPED_LOCK)[0] == 0


def test_a_changed_default_option_fails(run_cli, monkeypatch):
    from msc_meta.pooling.options import PoolOptions

    # the defaults live in PoolOptions' fields: make the default method DL
    defaults = list(PoolOptions.__init__.__defaults__)
    defaults[1] = "DL"
    monkeypatch.setattr(PoolOptions.__init__, "__defaults__", tuple(defaults))
    assert PoolOptions.build().method == "DL"
    code, out, _ = run_cli("check", "--lock", SHIPPED_LOCK)
    assert code == 1
    assert "results.lock.json [lock] options: method REML in the lock, DL now" in _failures(out)


@pytest.mark.parametrize("content,message", [
    (None, "the file does not exist (write it with msc-meta lock -o"),
    ("{not json", "not a readable JSON lock file"),
    ('{"format": 2}', "not a msc-meta lock file (format 1)"),
])
def test_bad_lock_file_is_one_line_exit_2(run_cli, tmp_path, content, message):
    path = tmp_path / "lock.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run_cli("check", "--lock", path)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
