"""Multi-arm trials with a shared control arm: `pool --multiarm combine|split|keep`.

References: tests/fixtures/multiarm.json (tests/r/fixtures_multiarm.R,
metafor 3.8.1): the combined / split 2x2 counts, done by hand as the
Cochrane Handbook (23.3.4) describes, then escalc/rma/rma.mh/rma.peto.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from msc_meta.cli import main
from msc_meta.data import load_table
from msc_meta.pooling.analysis import (
    MultiArmUnit,
    apply_multiarm,
    run_pool,
    shared_control_sets,
)
from msc_meta.pooling.subgroups import run_pool_by

FIXTURES = Path(__file__).parent / "fixtures"
MULTI = json.loads((FIXTURES / "multiarm.json").read_text())
COLUMNS = ["study_id", "outcome", "events_t", "n_t", "events_c", "n_c", "trial",
           "timepoint_weeks", "unit", "route"]
CURATED = ["--outcome", "fistula_closure", "--timepoint", "208"]
LEIDEN = ["leiden_bmmsc_c1", "leiden_bmmsc_c2", "leiden_bmmsc_c3"]
FIT_KEYS = ("theta", "se", "estimate", "ci_low", "ci_high", "stat", "pval", "tau2", "i2", "h2",
            "q", "q_pval")


def approx(expected):
    return pytest.approx(expected, rel=1e-6, abs=1e-10)


def write(tmp_path, rows, name="t.csv"):
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in COLUMNS])
    return str(path)


@pytest.fixture
def cli(capsys, monkeypatch):
    def run(*argv):
        monkeypatch.setenv("COLUMNS", "80")
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err
    return run


def pool_json(cli, *argv):
    code, out, err = cli("pool", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def small_csv(tmp_path):
    return write(tmp_path, MULTI["small"]["rows"])


@pytest.fixture
def curated_rows():
    try:
        table = load_table()
    except Exception:  # the curated table may not be shipped yet
        pytest.skip("curated table not shipped yet")
    rows = {u: [(r.study_id, r.events_t, r.n_t, r.events_c, r.n_c) for r in table.rows
                if r.outcome == "fistula_closure" and r.timepoint_weeks == 208 and r.unit == u]
            for u in ("patient", "fistula")}
    for unit, got in rows.items():
        ref = MULTI["curated_fistula_closure_208"][unit]["rows"]
        expected = [(r["study_id"], r["events_t"], r["n_t"], r["events_c"], r["n_c"]) for r in ref]
        if got != expected:
            pytest.skip(f"curated rows changed ({got}); regenerate tests/r/fixtures_multiarm.R")
    return rows


def assert_pooled_counts(doc, pooled):
    got = [(s["study_id"], s["events_t"], s["n_t"], s["events_c"], s["n_c"]) for s in doc["studies"]]
    ids = pooled["study_id"] if isinstance(pooled["study_id"], list) else [pooled["study_id"]]
    cols = [pooled[c] if isinstance(pooled[c], list) else [pooled[c]]
            for c in ("events_t", "n_t", "events_c", "n_c")]
    assert [g[0] for g in got] == ids
    for j, col in enumerate(cols, start=1):
        assert [g[j] for g in got] == approx(col)


def assert_studies(doc, ref):
    for key in ("yi", "vi", "estimate", "ci_low", "ci_high"):
        expected = ref[key] if isinstance(ref[key], list) else [ref[key]]
        assert [s[key] for s in doc["studies"]] == approx(expected), key


def assert_fit(doc, ref, keys=FIT_KEYS):
    assert doc["k"] == ref["k"] and doc["q_df"] == ref["q_df"]
    for key in keys:
        assert doc[key] == approx(ref[key]), key
    assert [s["weight"] for s in doc["studies"]] == approx(ref["weights"])


# ---------------------------------------------------------------- the curated table

def test_curated_default_combines_the_three_cohorts(cli, curated_rows):
    """Source 002: three bmMSC dose cohorts against one 0/3 placebo arm -> 8/13 vs 0/3."""
    ref = MULTI["curated_fistula_closure_208"]["patient"]["combine"]
    doc = pool_json(cli, *CURATED, "--unit", "patient")
    assert doc["multiarm"] == "combine" and doc["k"] == 1
    (study,) = doc["studies"]
    assert study["study_id"] == "leiden_bmmsc_c1+c2+c3"
    assert (study["events_t"], study["n_t"], study["events_c"], study["n_c"]) == (8, 13, 0, 3)
    assert study["multiarm"] == "combine" and study["members"] == LEIDEN
    assert study["control_share"] == 1.0 and len(study["member_rows"]) == 3
    assert_pooled_counts(doc, ref["pooled"])
    assert_studies(doc, ref["RR"]["studies"])
    assert doc["estimate"] == approx(ref["RR"]["studies"]["estimate"])
    assert (doc["ci_low"], doc["ci_high"]) == (approx(ref["RR"]["studies"]["ci_low"]),
                                               approx(ref["RR"]["studies"]["ci_high"]))
    notes = "\n".join(doc["notes"])
    assert ("leiden_bmmsc_c1, leiden_bmmsc_c2, leiden_bmmsc_c3 share one control arm (0/3); their "
            "treatment arms are combined into one comparison, leiden_bmmsc_c1+c2+c3 (8/13 vs 0/3)") in notes
    assert "counted 3 times" not in notes
    # nothing was left out: the three rows are one comparison, not three exclusions
    assert doc["excluded"] == []


@pytest.mark.parametrize("measure", ["OR", "RD"])
def test_curated_combine_other_measures(cli, curated_rows, measure):
    ref = MULTI["curated_fistula_closure_208"]["patient"]["combine"][measure]["studies"]
    doc = pool_json(cli, *CURATED, "--unit", "patient", "--measure", measure)
    assert_studies(doc, ref)


def test_curated_split(cli, curated_rows):
    ref = MULTI["curated_fistula_closure_208"]["patient"]["split"]
    doc = pool_json(cli, *CURATED, "--unit", "patient", "--multiarm", "split")
    assert doc["multiarm"] == "split"
    assert_pooled_counts(doc, ref["pooled"])
    assert [(s["events_c"], s["n_c"]) for s in doc["studies"]] == [(0, 1)] * 3
    assert all(s["members"] == LEIDEN and s["multiarm"] == "split" for s in doc["studies"])
    assert [s["control_share"] for s in doc["studies"]] == approx([1 / 3] * 3)
    assert_fit(doc, ref["RR"]["REML"])
    assert_studies(doc, ref["RR"]["studies"])
    assert doc["common"]["estimate"] == approx(ref["RR"]["FE"]["estimate"])
    assert any("split evenly among the 3 comparisons (0/1 each)" in n for n in doc["notes"])
    for measure in ("OR", "RD"):
        doc = pool_json(cli, *CURATED, "--unit", "patient", "--multiarm", "split", "--measure", measure)
        assert_fit(doc, ref[measure]["REML"])


def test_curated_keep_warns(cli, curated_rows):
    doc = pool_json(cli, *CURATED, "--unit", "patient", "--multiarm", "keep")
    assert doc["multiarm"] == "keep" and doc["k"] == 3
    assert all(s["members"] is None and s["multiarm"] is None for s in doc["studies"])
    assert any("share one control arm (0/3), counted 3 times (--multiarm keep)" in n
               for n in doc["notes"])


def test_curated_fistulas(cli, curated_rows):
    ref = MULTI["curated_fistula_closure_208"]["fistula"]
    doc = pool_json(cli, *CURATED, "--unit", "fistula")
    assert_pooled_counts(doc, ref["combine"]["pooled"])
    assert_studies(doc, ref["combine"]["RR"]["studies"])
    doc = pool_json(cli, *CURATED, "--unit", "fistula", "--multiarm", "split")
    assert_fit(doc, ref["split"]["RR"]["REML"])
    doc = pool_json(cli, *CURATED, "--unit", "fistula", "--multiarm", "split", "--measure", "RD",
                    "--method", "MH")
    assert_fit(doc, ref["split"]["RD"]["MH"], keys=("theta", "se", "estimate", "ci_low", "ci_high"))


def test_curated_table_shows_the_combined_counts(cli, curated_rows):
    code, out, err = cli("pool", *CURATED, "--unit", "patient")
    assert code == 0, err
    assert "8/13      0/3" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "leiden_bmmsc_c1+" in out


def test_regress_keeps_the_cohorts_and_says_why(cli, curated_rows):
    code, out, err = cli("regress", *CURATED, "--unit", "patient", "--mods", "log10(dose_cells)",
                         "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["k"] == 3
    note = next(n for n in doc["notes"] if "share one control arm (0/3)" in n)
    assert "the model treats them as independent, so standard errors are too small" in note


# ---------------------------------------------------------------- a small table

@pytest.mark.parametrize("mode", ["combine", "split"])
@pytest.mark.parametrize("measure, method, extra", [
    ("RR", "REML", ()), ("RR", "FE", ()), ("RR", "DL", ()), ("RR", "REML", ("--hksj",)),
    ("RR", "MH", ()), ("OR", "REML", ()), ("OR", "PETO", ()), ("OR", "MH", ()), ("RD", "REML", ()),
])
def test_small_table_against_metafor(cli, small_csv, mode, measure, method, extra):
    ref = MULTI["small"][mode]
    key = "REML_knha" if extra else method
    doc = pool_json(cli, "--data", small_csv, "--outcome", "closure", "--multiarm", mode,
                    "--measure", measure, "--method", method, *extra)
    assert_pooled_counts(doc, ref["pooled"])
    keys = FIT_KEYS if method not in ("MH", "PETO") else ("theta", "se", "estimate", "ci_low",
                                                          "ci_high", "stat", "pval", "q", "q_pval")
    assert_fit(doc, ref[measure][key], keys=keys)
    assert_studies(doc, ref[measure]["studies"])


def test_split_counts_are_not_integers(cli, small_csv):
    doc = pool_json(cli, "--data", small_csv, "--outcome", "closure", "--multiarm", "split")
    split = [s for s in doc["studies"] if s["multiarm"] == "split"]
    assert [s["study_id"] for s in split] == ["D1", "D2", "D3"]
    assert all(s["events_c"] == approx(2 / 3) and s["n_c"] == approx(10 / 3) for s in split)
    assert all(s["members"] == ["D1", "D2", "D3"] for s in split)
    code, out, err = cli("pool", "--data", small_csv, "--outcome", "closure", "--multiarm", "split")
    assert code == 0, err
    assert "0.67/3.33" in out
    # the control total counts the shared control once: 3 x 2/3 + 3 + 2 + 1 = 8 of 10 + 11 + 14 + 9
    assert "8/44" in out


def test_combine_label_members_and_totals(cli, small_csv):
    doc = pool_json(cli, "--data", small_csv, "--outcome", "closure")
    combined = doc["studies"][0]
    assert combined["study_id"] == "D1+D2+D3" and combined["members"] == ["D1", "D2", "D3"]
    assert combined["row"] == 2 and combined["member_rows"] == [2, 4, 6]
    code, out, err = cli("pool", "--data", small_csv, "--outcome", "closure")
    assert "35/64" in out and "8/44" in out


@pytest.mark.parametrize("mode", ["combine", "split"])
def test_by_counts_the_control_once_across_subgroups(cli, small_csv, mode):
    ref = MULTI["small"]["by_route"][mode]
    doc = pool_json(cli, "--data", small_csv, "--outcome", "closure", "--multiarm", mode,
                    "--by", "route")
    groups = {d["group"]: d for d in doc}
    assert set(groups) == {"iv", "local"}
    for g in ("iv", "local"):
        assert_pooled_counts(groups[g], ref[g]["pooled"])
        assert_fit(groups[g], ref[g])
        assert_studies(groups[g], ref[g]["studies"])
    test = doc[0]["subgroup_test"]
    assert test["q_between"] == approx(ref["q_between"]) and test["pval"] == approx(ref["pval"])
    if mode == "combine":
        note = next(n for n in groups["local"]["notes"] if "share one control arm" in n)
        assert "fall in 2 subgroups" in note and "(1/5 each)" in note
        assert groups["local"]["studies"][0]["control_share"] == 0.5


def test_pool_cli_two_arm_table(cli, tmp_path):
    """G1 and G2 of tests/fixtures/pool_cli.json share a 4/14 control."""
    rows = json.loads((FIXTURES / "pool_cli.json").read_text())["two_arm"]["rows"]
    path = write(tmp_path, [{c: r.get(c) for c in COLUMNS} for r in rows])
    for mode in ("combine", "split"):
        ref = MULTI["two_arm"][mode]
        doc = pool_json(cli, "--data", path, "--outcome", "closure", "--multiarm", mode)
        assert_pooled_counts(doc, ref["pooled"])
        assert_fit(doc, ref["RR"]["REML"])
        assert [e["study_id"] for e in doc["excluded"]] == ["C", "D", "F"]
        assert any(n.startswith("3 of 8 selected rows left out") for n in doc["notes"])


def test_single_arm_measures_ignore_control_arms(cli, small_csv):
    docs = [pool_json(cli, "--data", small_csv, "--outcome", "closure", "--measure", "PLO",
                      "--multiarm", mode) for mode in ("combine", "split", "keep")]
    assert {d["estimate"] for d in docs} == {docs[0]["estimate"]}
    for doc in docs:
        assert doc["k"] == 6 and all(s["members"] is None for s in doc["studies"])
        assert not any("share one control arm" in n for n in doc["notes"])


# ---------------------------------------------------------------- the library

def table(tmp_path, rows):
    return load_table(write(tmp_path, rows))


def r(study_id, et, nt, ec, nc, trial=None, **extra):
    return dict(study_id=study_id, outcome="closure", events_t=et, n_t=nt, events_c=ec, n_c=nc,
                trial=trial, **extra)


def test_library_default_is_combine_as_the_cli(tmp_path):
    t = table(tmp_path, MULTI["small"]["rows"])
    assert run_pool(t, outcome="closure").multiarm == "combine"
    analyses, _ = run_pool_by(t, "route", outcome="closure")
    assert all(a.multiarm == "combine" for a in analyses)
    keep = run_pool(t, outcome="closure", multiarm="keep")
    assert keep.k == 6
    assert keep.studies[0].members == () and keep.studies[0].multiarm is None


def test_what_counts_as_a_shared_control(tmp_path):
    rows = [r("A1", 3, 10, 2, 12, "X"), r("A2", 5, 10, 2, 12, "X"),   # shared
            r("A3", 6, 10, 3, 12, "X"),                               # other control counts
            r("B1", 4, 10, 2, 12, "Y"),                               # other trial
            r("C1", 4, 10, 2, 12), r("C2", 5, 10, 2, 12),             # no trial: never assumed
            r("S", 4, 10, None, None, "X")]                           # single arm
    t = table(tmp_path, rows)
    sets = shared_control_sets(t.rows, "RR")
    assert [(key, [m.study_id for m in members]) for key, members in sets] == \
        [(("X", 2, 12), ["A1", "A2"])]
    assert shared_control_sets(t.rows, "PLO") == []
    units, notes = apply_multiarm(t.rows, "RR", "combine")
    assert [u.study_id for u in units] == ["A1+A2", "A3", "B1", "C1", "C2", "S"]
    assert isinstance(units[0], MultiArmUnit) and (units[0].events_t, units[0].n_t) == (8, 20)
    assert units[0].trial == "X" and units[0].row_number == 2 and units[0].source_rows == 2
    assert len(notes) == 1 and notes[0][1] == frozenset({"A1", "A2"})
    units, _ = apply_multiarm(t.rows, "RR", "keep")
    assert list(units) == list(t.rows)


@pytest.mark.parametrize("ids, expected", [
    (["leiden_bmmsc_c1", "leiden_bmmsc_c2", "leiden_bmmsc_c3"], "leiden_bmmsc_c1+c2+c3"),
    (["D1", "D2"], "D1+D2"),
    (["trial-low", "trial-high"], "trial-low+high"),
    (["a_very_long_study_label_one", "another_very_long_label_two"], "T"),
])
def test_combined_labels(tmp_path, ids, expected):
    t = table(tmp_path, [r(i, 3, 10, 1, 9, "T") for i in ids])
    units, _ = apply_multiarm(t.rows, "RR", "combine")
    assert [u.study_id for u in units] == [expected]


def test_combined_label_never_collides(tmp_path):
    t = table(tmp_path, [r("D1", 3, 10, 1, 9, "T"), r("D2", 4, 10, 1, 9, "T"),
                         r("D1+D2", 5, 10, 2, 9, "U")])
    units, _ = apply_multiarm(t.rows, "RR", "combine")
    assert [u.study_id for u in units] == ["D1+D2 (combined)", "D1+D2"]


def test_double_zero_member(tmp_path):
    """Combining keeps a cohort without events; splitting leaves its 0 vs 0 comparison out (RR)."""
    t = table(tmp_path, [r("D1", 0, 10, 0, 10, "X"), r("D2", 3, 10, 0, 10, "X"),
                         r("Y", 4, 10, 2, 10, "Y")])
    combined = run_pool(t, outcome="closure", multiarm="combine")
    assert [(s.study_id, s.events_t, s.n_t, s.events_c, s.n_c) for s in combined.studies] == \
        [("D1+D2", 3, 20, 0, 10), ("Y", 4, 10, 2, 10)]
    assert combined.excluded == ()
    split = run_pool(t, outcome="closure", multiarm="split")
    assert [e.study_id for e in split.excluded] == ["D1"]
    assert [(s.study_id, s.events_c, s.n_c) for s in split.studies] == [("D2", 0, 5), ("Y", 2, 10)]
    assert "1 of 3 selected rows left out" in split.notes[0]


def test_combined_row_keeps_the_members_by_value(tmp_path):
    t = table(tmp_path, [r("D1", 3, 10, 1, 9, "T", route="iv"), r("D2", 4, 10, 1, 9, "T", route="iv"),
                         r("E", 5, 10, 2, 9, "U", route="iv"), r("F", 2, 10, 3, 9, "V", route="local"),
                         r("G", 2, 12, 3, 11, "W", route="local")])
    analyses, test = run_pool_by(t, "route", outcome="closure", multiarm="combine")
    iv = next(a for a in analyses if a.group == "iv")
    assert [s.study_id for s in iv.studies] == ["D1+D2", "E"]
    assert iv.studies[0].control_share == 1.0 and (iv.studies[0].events_c, iv.studies[0].n_c) == (1, 9)
    local = next(a for a in analyses if a.group == "local")
    assert not any("share one control arm" in n for n in local.notes)
