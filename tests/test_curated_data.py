"""Content tests of the curated outcome table (src/msc_meta/data/outcomes.csv) and totals.csv.

These read the CSV files with the ``csv`` module only, independently of
``msc_meta.data.load`` / ``msc-meta check``, so that a slip in either the
data or the checker shows up. The quote tests need the source documents;
they are looked for in ``$MSC_META_SOURCES``, else in ``shared/sources`` beside
the checkout (where CI lays it), else ``/work/shared/sources``
and skipped when absent.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ROOT / "src" / "msc_meta" / "data"
LINKED = ROOT / "data"
DOCS = ROOT / "docs" / "data.md"
def _find_sources() -> Path:
    if os.environ.get("MSC_META_SOURCES"):
        return Path(os.environ["MSC_META_SOURCES"])
    beside = Path(__file__).resolve().parents[2] / "shared" / "sources"
    return beside if beside.is_dir() else Path("/work/shared/sources")


SOURCES = _find_sources()

COLUMNS = ("study_id,trial,subgroup_of,outcome,timepoint_weeks,unit,events_t,n_t,pct_t,events_c,n_c,pct_c,"
           "design,product,cell_source,donor,route,dose_cells,dose_text,source,quote,note,bind,"
           "mean_pre,se_pre,mean_post,se_post,p_value").split(",")
# The continuous columns the curated rows use (paired before/after means, shared/cli-contract.md).
MEASUREMENTS = ("mean_pre", "se_pre", "mean_post", "se_post", "p_value")
TOTALS_COLUMNS = "trial,timepoint_weeks,unit,arm,members,total_n,source,quote,note".split(",")
COUNTS = ("events_t", "n_t", "events_c", "n_c")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _int(text: str) -> int | None:
    return int(text) if text.strip() else None


def _weeks(text: str) -> float | None:
    return float(text) if text.strip() else None


def _collapse(text: str) -> str:
    # \s also matches the no-break spaces of the PDF-extracted sources.
    return re.sub(r"\s+", " ", text).strip()


HEADER, ROWS = _read(PACKAGED / "outcomes.csv")
TOTALS_HEADER, TOTALS = _read(PACKAGED / "totals.csv")


def _row(study_id: str, outcome: str, weeks: float | None, unit: str) -> dict:
    found = [r for r in ROWS if r["study_id"] == study_id and r["outcome"] == outcome
             and _weeks(r["timepoint_weeks"]) == weeks and r["unit"] == unit]
    assert len(found) == 1, (study_id, outcome, weeks, unit, len(found))
    return found[0]


def _counts(row: dict) -> tuple:
    return tuple(_int(row[c]) for c in COUNTS)


def _sources_needed():
    if not SOURCES.is_dir():
        pytest.skip(f"source documents not found in {SOURCES} (set MSC_META_SOURCES)")


# ---------------------------------------------------------------------------
# files


def test_header_is_the_schema_in_order():
    assert HEADER == COLUMNS
    assert TOTALS_HEADER == TOTALS_COLUMNS


@pytest.mark.parametrize("name", ["outcomes.csv", "totals.csv"])
def test_data_folder_holds_symlinks_to_the_packaged_files(name):
    link = LINKED / name
    assert link.is_symlink()
    assert os.readlink(link) == f"../src/msc_meta/data/{name}"
    assert link.resolve() == (PACKAGED / name).resolve()
    assert link.read_bytes() == (PACKAGED / name).read_bytes()


@pytest.mark.parametrize("name", ["outcomes.csv", "totals.csv"])
def test_git_stores_the_data_files_as_symlinks(name):
    try:
        out = subprocess.run(["git", "ls-files", "-s", f"data/{name}"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    if not out.strip():
        pytest.skip("not committed yet")
    assert out.split()[0] == "120000"


def test_files_are_plain_utf8_with_lf_line_ends():
    for name in ("outcomes.csv", "totals.csv"):
        data = (PACKAGED / name).read_bytes()
        data.decode("utf-8")
        assert not data.startswith(b"\xef\xbb\xbf")
        assert b"\r" not in data


# ---------------------------------------------------------------------------
# schema rules


def test_cells_obey_the_schema():
    keys = set()
    for r in ROWS:
        assert SNAKE.match(r["study_id"]), r["study_id"]
        assert SNAKE.match(r["trial"]), r["trial"]
        assert SNAKE.match(r["outcome"]), r["outcome"]
        assert r["unit"] in ("patient", "fistula")
        assert r["route"] in ("local", "systemic")
        assert r["cell_source"] in ("", "bone_marrow", "adipose")
        assert r["donor"] in ("", "allogeneic", "autologous")
        assert r["design"] in ("dose_finding_rct", "rct", "single_arm_trial", "single_arm_study",
                               "case_series", "case_report")
        assert re.fullmatch(r"\d{3}_[0-9a-f]{16}\.txt", r["source"])
        assert r["quote"].strip() and r["note"].strip()
        if r["dose_cells"]:
            assert float(r["dose_cells"]) > 0
            assert r["dose_text"]
        if r["timepoint_weeks"]:
            assert float(r["timepoint_weeks"]) > 0
        for c in COUNTS:
            assert re.fullmatch(r"\d*", r[c]), (c, r[c])
        e_t, n_t, e_c, n_c = _counts(r)
        if e_t is not None:
            assert n_t is not None and 0 <= e_t <= n_t and n_t >= 1
        if e_c is not None:
            assert n_c is not None and 0 <= e_c <= n_c and e_t is not None
        if n_c is not None and e_c is None:
            assert e_t is None
        for arm in ("t", "c"):
            if r[f"pct_{arm}"]:
                assert 0 <= float(r[f"pct_{arm}"]) <= 100
        key = (r["study_id"], r["outcome"], _weeks(r["timepoint_weeks"]), r["unit"])
        assert key not in keys, key
        keys.add(key)


def test_one_arm_size_per_study_group_time_point_and_unit():
    sizes = defaultdict(lambda: defaultdict(set))
    for r in ROWS:
        key = (r["study_id"], _weeks(r["timepoint_weeks"]), r["unit"])
        for c in ("n_t", "n_c"):
            if r[c]:
                sizes[key][c].add(int(r[c]))
    bad = {k: dict(v) for k, v in sizes.items() if any(len(s) > 1 for s in v.values())}
    assert not bad


def test_a_study_group_belongs_to_one_trial():
    trials = defaultdict(set)
    for r in ROWS:
        trials[r["study_id"]].add(r["trial"])
    assert all(len(t) == 1 for t in trials.values())


def _pct_fits(printed: str, events: int, n: int) -> bool:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    half = 0.5 * 10.0 ** -decimals
    return abs(100.0 * events / n - float(printed)) <= half + 1e-9


def test_every_printed_percentage_agrees_with_its_counts():
    checked = 0
    for r in ROWS:
        for arm in ("t", "c"):
            printed, events, n = r[f"pct_{arm}"], _int(r[f"events_{arm}"]), _int(r[f"n_{arm}"])
            if printed and events is not None:
                assert _pct_fits(printed, events, n), (r["study_id"], r["outcome"], arm)
                checked += 1
    assert checked >= 20


def test_derived_counts_are_the_only_ones_that_round_to_the_percentage():
    derived = [r for r in ROWS if "derived" in r["note"].lower() and r["events_t"]]
    assert len(derived) >= 5
    for r in derived:
        n = int(r["n_t"])
        fits = [e for e in range(n + 1) if _pct_fits(r["pct_t"], e, n)]
        assert fits == [int(r["events_t"])], (r["study_id"], r["outcome"], fits)


def test_every_count_and_percentage_appears_in_the_quote_or_note():
    for r in ROWS:
        tokens = NUMBER.findall(r["quote"] + " " + r["note"])
        for c in COUNTS + ("pct_t", "pct_c"):
            if r[c]:
                assert any(float(t) == float(r[c]) for t in tokens), (r["study_id"], r["outcome"], c)


def test_blank_counts_are_explained_in_the_note():
    for r in ROWS:
        if not r["events_t"]:
            assert re.search(r"blank|no count|not poolable|kaplan", r["note"], re.I), (r["study_id"], r["outcome"])


# ---------------------------------------------------------------------------
# quotes against the sources


def _source_text(name: str) -> str:
    return _collapse((SOURCES / name).read_text(encoding="utf-8"))


def test_every_quote_occurs_verbatim_in_its_source():
    """A quote is one verbatim span, or several joined by " … " (each verbatim on its own)."""
    _sources_needed()
    missing = [(r["study_id"], r["outcome"], span) for r in ROWS for span in _collapse(r["quote"]).split(" … ")
               if span not in _source_text(r["source"])]
    assert not missing


def test_every_number_has_a_bind_entry():
    for r in ROWS:
        bound = {entry.split("=", 1)[0].strip() for entry in re.split(r';(?=(?:[^"]*"[^"]*")*[^"]*$)', r["bind"])
                 if entry.strip()}
        given = {c for c in COUNTS + ("pct_t", "pct_c", "timepoint_weeks", "dose_cells") + MEASUREMENTS
                 if r[c].strip()}
        assert bound == given, (r["study_id"], r["outcome"], bound ^ given)


def test_every_totals_quote_occurs_verbatim_in_its_source():
    _sources_needed()
    for t in TOTALS:
        assert _collapse(t["quote"]) in _source_text(t["source"]), t["quote"]


def test_notes_do_not_copy_the_sources():
    """Notes are our words: no run of 7 words of a note may occur in its source."""
    _sources_needed()
    for r in ROWS:
        text = _source_text(r["source"]).lower()
        words = _collapse(r["note"]).lower().split(" ")
        copied = [" ".join(words[i:i + 7]) for i in range(len(words) - 6)
                  if " ".join(words[i:i + 7]) in text]
        assert not copied, (r["study_id"], r["outcome"], copied)


def test_all_five_sources_are_covered_or_explained():
    used = {r["source"] for r in ROWS}
    assert used == {"000_80f3b2960aa1bd3f.txt", "001_a9bf55ca4e3110f7.txt",
                    "002_d0953e2a140fb290.txt", "004_d6a83dc141184376.txt"}
    # 003 is the abstract of the 004 case report: documented, never a second row.
    assert "003_bdce61140b58d743.txt" in DOCS.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# the numbers themselves


def test_cx601_week24_is_53_of_107_vs_36_of_105():
    r = _row("panes_cx601", "fistula_closure", 24, "patient")
    assert _counts(r) == (53, 107, 36, 105)
    assert (r["pct_t"], r["pct_c"]) == ("50", "34")
    assert (r["product"], r["cell_source"], r["route"]) == ("Cx601", "adipose", "local")
    assert float(r["dose_cells"]) == 1.2e8


def test_cx601_12_months_has_percentages_only():
    r = _row("panes_cx601", "fistula_closure", 52, "patient")
    assert _counts(r) == (None, None, None, None)
    assert (r["pct_t"], r["pct_c"]) == ("56", "39")


def test_cx601_anti_hla_is_18_of_53():
    r = _row("panes_cx601_hla_negative", "anti_hla_antibodies", None, "patient")
    assert (_counts(r), r["pct_t"]) == ((18, 53, None, None), "34")


def test_leiden_week24_fistula_closure_is_percentages_only():
    expected = {1: "67", 2: "86", 3: "29"}
    for c, pct in expected.items():
        r = _row(f"leiden_bmmsc_c{c}", "fistula_closure", 24, "fistula")
        assert _counts(r) == (None, None, None, None)
        assert (r["pct_t"], r["pct_c"]) == (pct, "33")


def test_leiden_4_year_patient_closure_against_the_shared_placebo():
    expected = {1: (3, 4, "75"), 2: (4, 4, "100"), 3: (1, 5, "20")}
    for c, (e, n, pct) in expected.items():
        r = _row(f"leiden_bmmsc_c{c}", "fistula_closure", 208, "patient")
        assert _counts(r) == (e, n, 0, 3)
        assert (r["pct_t"], r["pct_c"]) == (pct, "0")
        assert r["trial"] == "leiden_bmmsc_nct01144962"
    r = _row("leiden_bmmsc_c3", "partial_fistula_closure", 208, "patient")
    assert _counts(r) == (2, 5, 0, 3)


def test_leiden_4_year_fistula_closure_uses_table1_fistula_counts():
    expected = {1: (5, 8, "63"), 2: (6, 6, "100"), 3: (3, 7, "43")}
    for c, (e, n, pct) in expected.items():
        r = _row(f"leiden_bmmsc_c{c}", "fistula_closure", 208, "fistula")
        assert _counts(r) == (e, n, 0, 3)
        assert r["pct_t"] == pct and r["pct_c"] == ""


def test_leiden_doses():
    for c, dose in ((1, 1e7), (2, 3e7), (3, 9e7)):
        for r in ROWS:
            if r["study_id"] in (f"leiden_bmmsc_c{c}", f"leiden_bmmsc_c{c}_treated"):
                assert float(r["dose_cells"]) == dose
                assert (r["cell_source"], r["donor"], r["route"]) == ("bone_marrow", "allogeneic", "local")


def test_leiden_follow_up_availability():
    assert _counts(_row("leiden_bmmsc_treated", "follow_up_available", 208, "patient")) == (13, 15, None, None)
    per_cohort = [_counts(_row(f"leiden_bmmsc_c{c}_treated", "follow_up_available", 208, "patient"))
                  for c in (1, 2, 3)]
    assert per_cohort == [(4, 5, 3, 6), (4, 5, 3, 6), (5, 5, 3, 6)]
    assert sum(e for e, *_ in per_cohort) == 13


def test_leiden_mri_hla_pdai_and_safety():
    assert _counts(_row("leiden_bmmsc_mri", "mri_improvement", 208, "patient"))[:2] == (6, 9)
    assert _counts(_row("leiden_bmmsc_mri", "mri_fibrosis", 208, "patient"))[:2] == (4, 9)
    assert _counts(_row("leiden_bmmsc_treated", "anti_hla_antibodies", 24, "patient"))[:2] == (0, 15)
    assert _counts(_row("leiden_bmmsc_sera_4y", "anti_hla_antibodies", 208, "patient"))[:2] == (0, 9)
    assert _counts(_row("leiden_bmmsc_followed", "pdai_lower", 208, "patient"))[:2] == (9, 13)
    assert _counts(_row("leiden_bmmsc_followed", "late_fistula_closure", 208, "patient"))[:2] == (2, 13)
    assert _counts(_row("leiden_bmmsc_treated", "ae_malignancy", 208, "patient"))[:2] == (2, 15)


def test_table3_adverse_events_add_up_to_the_text():
    """Section 3.2: four patients with abscesses, three with CD activity, five treated for infections."""
    stated = {"ae_perianal_abscess": 4, "ae_cd_activity": 3, "ae_infection": 5}
    for outcome, total in stated.items():
        rows = [_row(f"leiden_bmmsc_c{c}", outcome, 208, "patient") for c in (1, 2, 3)]
        assert [int(r["n_t"]) for r in rows] == [4, 4, 5]
        assert sum(int(r["events_t"]) for r in rows) == total
    abscess = [int(_row(f"leiden_bmmsc_c{c}", "ae_perianal_abscess", 208, "patient")["events_t"])
               for c in (1, 2, 3)]
    drainage = [int(_row(f"leiden_bmmsc_c{c}", "surgery_incision_drainage", 208, "patient")["events_t"])
                for c in (1, 2, 3)]
    assert abscess == drainage == [1, 0, 3]
    # The lymphoproliferative disease is placed in cohort 2 by the text.
    assert [int(_row(f"leiden_bmmsc_c{c}", "ae_malignancy", 208, "patient")["events_t"])
            for c in (1, 2, 3)] == [0, 1, 0]


def test_kaplan_meier_rows_have_no_event_counts():
    rows = [r for r in ROWS if r["outcome"] == "relapse_free_survival"]
    assert [(_weeks(r["timepoint_weeks"]), r["pct_t"]) for r in rows] == [(52, "88"), (104, "50"), (208, "37")]
    for r in rows:
        assert _counts(r) == (None, 8, None, None)
        assert "kaplan-meier" in r["note"].lower()


def test_systemic_series_from_the_case_report():
    assert _counts(_row("duijvestein_recruited", "completed_protocol", None, "patient"))[:2] == (8, 10)
    assert _counts(_row("duijvestein_systemic", "cdai_improvement", None, "patient"))[:2] == (5, 8)
    assert _counts(_row("duijvestein_systemic", "clinical_response", None, "patient"))[:2] == (3, 8)
    assert _counts(_row("duijvestein_systemic", "surgery", 14, "patient"))[:2] == (3, 8)
    assert _counts(_row("duijvestein_systemic", "clinical_remission", None, "patient"))[:2] == (0, 8)
    assert _counts(_row("liang_systemic", "clinical_remission", 13, "patient"))[:2] == (5, 7)
    assert _counts(_row("liang_systemic", "sustained_remission", 104, "patient"))[:2] == (2, 7)
    steroid = [int(_row("liang_systemic", k, None, "patient")["events_t"])
               for k in ("steroid_withdrawal", "steroid_partial_taper", "steroid_no_reduction")]
    assert steroid == [1, 3, 3] and sum(steroid) == 7
    for r in ROWS:
        if r["study_id"] == "liang_systemic":
            assert "ulcerative colitis" in r["note"]
        if r["study_id"].startswith(("duijvestein", "liang", "taddio")):
            assert r["route"] == "systemic"


def test_case_report_is_one_patient_without_clinical_response():
    r = _row("taddio_ifng_case", "clinical_response", 4, "patient")
    assert _counts(r) == (0, 1, None, None)
    assert r["source"] == "004_d6a83dc141184376.txt"
    assert r["dose_text"] == "2 × 10^6 cells/kg per infusion" and r["dose_cells"] == ""
    assert "003" in r["note"]


def test_case_series_counts_derived_from_percentages_of_30():
    assert _counts(_row("scrt_case_series_30", "radiological_remission", None, "patient"))[:2] == (13, 30)
    assert _counts(_row("scrt_case_series_30", "fistula_closure", None, "patient"))[:2] == (21, 30)
    assert _row("scrt_case_series_30", "radiological_remission", None, "patient")["pct_t"] == "43.3"


def test_stomp2_is_kept_without_counts():
    r = _row("stomp2_au101", "combined_healing", 24, "patient")
    assert _counts(r) == (None, None, None, None)
    assert (r["design"], r["product"], r["donor"]) == ("rct", "AU-101", "autologous")
    assert "109" in r["note"]


# ---------------------------------------------------------------------------
# totals


def test_totals_add_up():
    sizes = defaultdict(lambda: {"n_t": set(), "n_c": set()})
    for r in ROWS:
        key = (r["study_id"], _weeks(r["timepoint_weeks"]), r["unit"])
        for c in ("n_t", "n_c"):
            if r[c]:
                sizes[key][c].add(int(r[c]))
    assert len(TOTALS) >= 5
    for t in TOTALS:
        weeks = _weeks(t["timepoint_weeks"])
        members = t["members"].split(";")
        total = 0
        if t["arm"] in ("treatment", "all"):
            for m in members:
                (n,) = sizes[(m, weeks, t["unit"])]["n_t"]
                total += n
        if t["arm"] in ("control", "all"):
            shared = set().union(*(sizes[(m, weeks, t["unit"])]["n_c"] for m in members))
            assert len(shared) == 1, t
            total += shared.pop()
        assert total == int(t["total_n"]), t
        assert any(int(x) == int(t["total_n"]) for x in NUMBER.findall(t["quote"] + " " + t["note"]))
        for m in members:
            assert {r["trial"] for r in ROWS if r["study_id"] == m} == {t["trial"]}


def test_leiden_totals_present():
    got = {(t["members"], t["arm"], int(t["total_n"])) for t in TOTALS}
    cohorts = "leiden_bmmsc_c1;leiden_bmmsc_c2;leiden_bmmsc_c3"
    treated = "leiden_bmmsc_c1_treated;leiden_bmmsc_c2_treated;leiden_bmmsc_c3_treated"
    assert {(cohorts, "treatment", 13), (treated, "treatment", 15), (treated, "control", 6),
            (treated, "all", 21)} <= got


# ---------------------------------------------------------------------------
# codebook


def test_codebook_lists_every_outcome_key_study_id_and_column():
    text = DOCS.read_text(encoding="utf-8")
    for key in {r["outcome"] for r in ROWS} | {r["study_id"] for r in ROWS} | set(COLUMNS):
        assert f"`{key}`" in text, key


def test_packaged_table_loads_with_the_package_loader_when_available():
    """The same file through msc_meta.data.load (skipped while the loader is absent)."""
    load = pytest.importorskip("msc_meta.data.load")
    if not hasattr(load, "load_table"):
        pytest.skip("loader not available")
    table = load.load_table(PACKAGED / "outcomes.csv")
    assert len(table.rows) == len(ROWS)
    assert [r.study_id for r in table.rows] == [r["study_id"] for r in ROWS]


# ---------------------------------------------------------------------------
# continuous results (paired before/after means)


def _paired(row: dict) -> tuple:
    return tuple(float(row[c]) if row[c].strip() else None for c in ("n_t",) + MEASUREMENTS)


def test_leiden_maximal_fistula_diameter_is_means_and_sems_with_the_paired_p():
    r = _row("leiden_bmmsc_mri", "max_fistula_diameter", 208, "patient")
    assert _paired(r) == (9, 6.1, 1.2, 2.6, 0.9, 0.006)
    assert "means ± SEM" in r["quote"] and "Paired t-test" in r["quote"]
    assert "does not state the n" in r["note"]


def test_leiden_cdai_is_read_against_its_printed_order():
    """Printed "46.2 vs 101.5" where the text says activity was lower at 4 years: before 101.5."""
    r = _row("leiden_bmmsc_no_stoma", "cdai", 208, "patient")
    assert _paired(r) == (11, 101.5, None, 46.2, None, 0.014)
    assert float(r["mean_post"]) < float(r["mean_pre"])
    assert "significantly lower disease activity 4 years after" in r["quote"]
    assert "reversed" in r["note"]


@pytest.mark.parametrize("outcome, expected", [
    ("pdai", (13, 4.3, None, 3.8, None, 0.585)),
    ("sibdq", (13, 54.8, None, 60.1, None, 0.047)),
    ("sf36_mcs", (13, 42.8, None, 48.1, None, 0.089)),
    ("sf36_pcs", (13, 52.2, None, 52.8, None, None)),
])
def test_leiden_scores_before_and_after(outcome, expected):
    assert _paired(_row("leiden_bmmsc_followed", outcome, 208, "patient")) == expected


def test_case_report_cdai_270_to_215():
    r = _row("taddio_ifng_case", "cdai", 4, "patient")
    assert _paired(r) == (1, 270, None, 215, None, None)


def test_every_measurement_appears_in_the_quote():
    for r in ROWS:
        tokens = NUMBER.findall(r["quote"])
        for c in MEASUREMENTS:
            if r[c]:
                assert any(float(t) == float(r[c]) for t in tokens), (r["study_id"], r["outcome"], c)
