"""GRADE summary of findings for several outcomes and every outcome type.

Absolute effects are checked against hand calculations with the GRADE
formulas (risk with the intervention = ACR x RR; ACR x OR / (1 - ACR + ACR x
OR); ACR + RD; mean with control + MD; ...) on real values, and the pooled
numbers against `pool --json` of the same selection. Certainty comes from
the rater only: without inputs it is "not rated".
"""

from __future__ import annotations

import csv
import io
import json
import math
from statistics import NormalDist

import pytest

from msc_meta.errors import InputError, UsageError
from msc_meta.pooling.certainty import Ratings, grade, read_certainty_file
from msc_meta.pooling.sof import apply_baseline, cohen_size

REL = dict(rel=1e-9)
Z = NormalDist().inv_cdf(0.975)

# Cx601 (ADMIRE-CD), combined remission at week 24 (curated table): 53/107 vs 36/105
A, N1, C, N2 = 53, 107, 36, 105
CX601 = ("--outcome", "fistula_closure", "--timepoint", "24", "--unit", "patient")


def _json(run_cli, *args):
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


# ----------------------------------------------------------------- GRADE formulas, by hand

@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
def test_per_1000_equal_the_grade_formula_on_cx601(run_cli, curated_path, measure):
    """At the pooled control risk, each measure's point estimate gives back the treated
    arm's own risk, 53/107 = 495.3 per 1,000; the CI bounds follow the measure's formula."""
    doc = _json(run_cli, "sof", *CX601, "--measure", measure)
    pool = _json(run_cli, "pool", *CX601, "--measure", measure)
    acr = C / N2
    # the pooled numbers are pool's (one selection path), and are the hand-computed effect
    assert (doc["estimate"], doc["ci_low"], doc["ci_high"]) == \
        (pool["estimate"], pool["ci_low"], pool["ci_high"])
    if measure == "RR":
        effect = (A / N1) / (C / N2)
        se = math.sqrt(1 / A - 1 / N1 + 1 / C - 1 / N2)
        low, high = effect * math.exp(-Z * se), effect * math.exp(Z * se)
        risk = lambda x: acr * x                                      # noqa: E731
    elif measure == "OR":
        effect = (A * (N2 - C)) / ((N1 - A) * C)
        se = math.sqrt(1 / A + 1 / (N1 - A) + 1 / C + 1 / (N2 - C))
        low, high = effect * math.exp(-Z * se), effect * math.exp(Z * se)
        risk = lambda x: acr * x / (1 - acr + acr * x)                # noqa: E731
    else:
        p1, p2 = A / N1, C / N2
        effect = p1 - p2
        se = math.sqrt(p1 * (1 - p1) / N1 + p2 * (1 - p2) / N2)
        low, high = effect - Z * se, effect + Z * se
        risk = lambda x: acr + x                                      # noqa: E731
    assert doc["estimate"] == pytest.approx(effect, **REL)
    assert doc["ci_low"] == pytest.approx(low, **REL)
    assert doc["ci_high"] == pytest.approx(high, **REL)
    absolute = doc["absolute"]
    assert absolute["comparator"] == pytest.approx(1000 * 36 / 105, **REL)       # 342.9
    assert absolute["value"] == pytest.approx(1000 * 53 / 107, **REL)            # 495.3
    assert absolute["value_ci_low"] == pytest.approx(1000 * risk(low), **REL)
    assert absolute["value_ci_high"] == pytest.approx(1000 * risk(high), **REL)
    assert absolute["difference"] == pytest.approx(1000 * (53 / 107 - 36 / 105), **REL)
    assert absolute["difference_ci_low"] == pytest.approx(1000 * (risk(low) - acr), **REL)
    assert doc["participants"] == 212 and doc["k"] == 1
    # the legacy keys of the single-outcome document are still there and agree
    assert doc["intervention_per_1000"] == absolute["value"]
    assert doc["rd_per_1000"] == absolute["difference"]


def test_or_with_an_assumed_control_risk_from_the_certainty_file(run_cli, curated_path, tmp_path):
    path = tmp_path / "grade.csv"
    path.write_text("outcome,timepoint_weeks,unit,assumed_control\nfistula_closure,24,patient,0.2\n")
    doc = _json(run_cli, "sof", *CX601, "--measure", "OR", "--certainty", path)
    odds_ratio = (A * (N2 - C)) / ((N1 - A) * C)
    expected = 0.2 * odds_ratio / (1 - 0.2 + 0.2 * odds_ratio)     # 319.9 per 1,000
    assert doc["absolute"]["comparator"] == pytest.approx(200.0, **REL)
    assert doc["absolute"]["value"] == pytest.approx(1000 * expected, **REL)
    assert doc["absolute"]["value"] == pytest.approx(319.9, abs=0.05)
    assert any("control risk from" in note for note in doc["notes"])


def test_apply_baseline_rules():
    assert apply_baseline("ratio", 0.2, 1.5) == pytest.approx(0.3, **REL)
    assert apply_baseline("odds", 0.2, 2.0) == pytest.approx(0.4 / 1.2, **REL)
    assert apply_baseline("difference", 10.0, -2.5) == pytest.approx(7.5, **REL)
    assert apply_baseline("sqrt_difference", 0.09, 0.1) == pytest.approx(0.16, **REL)
    assert apply_baseline("sqrt_difference", 0.04, -0.5) == 0.0
    with pytest.raises(ValueError):
        apply_baseline("", 0.2, 1.0)


# ----------------------------------------------------------------- several outcomes

def _pool(run_cli, row):
    args = ["pool", "--outcome", row["outcome"], "--timepoint", f"{row['timepoint_weeks']:g}",
            "--unit", row["unit"]]
    return _json(run_cli, *args)


def test_all_4_year_outcomes_one_row_each_equal_to_pool(run_cli, curated_path):
    code, out, err = run_cli("sof", "--all", "--timepoint", "208", "--json")
    assert code == 0, err
    rows = json.loads(out)
    keys = [(r["outcome"], r["unit"]) for r in rows]
    assert len(keys) == len(set(keys)) >= 20
    assert {("fistula_closure", "patient"), ("fistula_closure", "fistula"),
            ("partial_fistula_closure", "patient"), ("follow_up_available", "patient")} <= set(keys)
    assert all(r["timepoint_weeks"] == 208 for r in rows)
    # relapse-free survival has no counts at 4 years: skipped, and said on stderr
    assert "skipped relapse_free_survival" in err
    for row in rows:
        pool = _pool(run_cli, row)
        assert row["measure"] == pool["measure"] and row["k"] == pool["k"]
        assert (row["estimate"], row["ci_low"], row["ci_high"]) == \
            (pool["estimate"], pool["ci_low"], pool["ci_high"]), row["outcome"]
        assert row["certainty"] == "not rated"
    # comparisons first, then single-group outcomes
    kinds = [r["absolute"]["kind"] for r in rows]
    assert kinds == sorted(kinds, key=lambda k: k == "single_group")


def test_4_year_follow_up_by_hand(run_cli, curated_path):
    rows = _json(run_cli, "sof", "--outcome", "follow_up_available", "--outcome", "fistula_closure",
                 "--timepoint", "208", "--unit", "patient")
    assert [r["outcome"] for r in rows] == ["follow_up_available", "fistula_closure"]
    follow = rows[0]
    # the three cohorts' treated arms combined, 13/15 vs the shared placebo arm 3/6
    assert follow["estimate"] == pytest.approx((13 / 15) / (3 / 6), **REL)
    assert follow["absolute"]["comparator"] == pytest.approx(500.0, **REL)
    assert follow["absolute"]["value"] == pytest.approx(1000 * 13 / 15, **REL)
    assert follow["participants"] == 21
    closure = rows[1]
    # the placebo arm had no closure (0/3): a ratio gives no absolute effect (not a zero one)
    assert closure["absolute"]["comparator"] == 0.0 and closure["absolute"]["difference"] is None
    assert closure["absolute"]["value"] is None and closure["nnt_text"].startswith("not estimable")
    assert any("control risk is 0" in note for note in closure["notes"])


def test_single_group_rows_show_the_pooled_proportion(run_cli, curated_path):
    rows = _json(run_cli, "sof", "--outcome", "mri_improvement", "--outcome", "ae_infection",
                 "--timepoint", "208")
    for row in rows:
        pool = _pool(run_cli, row)
        assert row["absolute"]["kind"] == "single_group" and row["absolute"]["comparator"] is None
        assert row["absolute"]["value"] == pytest.approx(1000 * pool["estimate"], **REL)
        assert row["absolute"]["value_ci_low"] == pytest.approx(1000 * pool["ci_low"], **REL)
        assert row["design"] == "observational"
    assert rows[0]["absolute"]["value"] == pytest.approx(1000 * 6 / 9, **REL)   # k = 1: 6/9


def test_terminal_table_of_several_outcomes(run_cli, curated_path):
    code, out, err = run_cli("sof", "--all", "--timepoint", "208")
    assert code == 0, err
    assert "Summary of findings: MSC compared with control" in out
    for text in ("fistula closure", "partial fistula closure", "follow up available", "not rated",
                 "Hints (computed, not a rating)", "+367"):
        assert text in out, text


@pytest.mark.parametrize("args, message", [
    (["--outcome", "fistula_closure", "--all"], "--all covers every outcome"),
    (["--timepoint", "208"], "give --outcome KEY"),
    (["--outcome", "nope", "--outcome", "fistula_closure"], "outcome 'nope' has no rows"),
    (["--all", "--timepoint", "999"], "no outcome of the table has rows"),
    (["--outcome", "a", "--outcome", "b", "--by", "design"], "--by splits one outcome"),
    (["--all", "--imprecision", "serious", "--certainty", "x.csv"], "not both"),
])
def test_selection_errors(run_cli, curated_path, args, message):
    code, out, err = run_cli("sof", *args)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


# ----------------------------------------------------------------- certainty

def _ratings(**downgrades):
    return Ratings(downgrades={d: (w, n) for d, (w, n) in downgrades.items()}, source="test")


ALL_NOT_SERIOUS = {d: ("not serious", 0) for d in
                   ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")}


def test_grade_levels():
    assert grade(_ratings(**ALL_NOT_SERIOUS), "randomised", "x").level == "high"
    serious = dict(ALL_NOT_SERIOUS, imprecision=("serious", 1))
    assert grade(_ratings(**serious), "randomised", "x").level == "moderate"
    worse = dict(serious, risk_of_bias=("very serious", 2))
    assert grade(_ratings(**worse), "randomised", "x").level == "very low"
    # observational starts low; a large effect moves it up one level
    up = Ratings(downgrades=ALL_NOT_SERIOUS, upgrades={"large_effect": ("large", 1)}, source="t")
    assert grade(up, "observational", "x").level == "moderate"
    assert grade(_ratings(**ALL_NOT_SERIOUS), "observational", "x").level == "low"
    # never below very low
    floor = {d: ("very serious", 2) for d in ALL_NOT_SERIOUS}
    assert grade(_ratings(**floor), "observational", "x").level == "very low"


def test_nothing_invented_when_the_rater_is_silent():
    cert = grade(None, "randomised", "design column: rct")
    assert cert.level == "not rated" and cert.start == "high"
    assert set(cert.missing) == set(ALL_NOT_SERIOUS)
    partial = dict(ALL_NOT_SERIOUS)
    partial.pop("publication_bias")
    cert = grade(_ratings(**partial), "randomised", "x")
    assert cert.level == "not rated" and cert.missing == ("publication_bias",)
    assert grade(_ratings(**ALL_NOT_SERIOUS), None, None).level == "not rated"   # design unknown


def test_upgrading_randomised_evidence_is_refused():
    up = Ratings(downgrades=ALL_NOT_SERIOUS, upgrades={"dose_response": ("yes", 1)}, source="t")
    with pytest.raises(UsageError, match="observational evidence"):
        grade(up, "randomised", "x")


def test_options_rate_every_outcome(run_cli, curated_path):
    doc = _json(run_cli, "sof", *CX601, "--risk-of-bias", "not-serious", "--inconsistency",
                "not serious", "--indirectness", "serious", "--imprecision", "serious",
                "--publication-bias", "undetected")
    assert doc["certainty"] == "low"        # randomised (design rct): high - 1 - 1
    assert doc["start"] == "high" and doc["design_source"] == "design column: rct"
    assert doc["indirectness"] == "serious" and doc["indirectness_downgrade"] == 1
    assert doc["source"] == "options"


def _file(tmp_path, text):
    path = tmp_path / "grade.csv"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = ("outcome,timepoint_weeks,unit,design,risk_of_bias,inconsistency,indirectness,imprecision,"
        "publication_bias,large_effect,comments\n"
        "fistula_closure,24,patient,,not serious,not serious,not serious,serious,undetected,,"
        "single trial\n"
        "fistula_closure,208,patient,observational,serious,not serious,serious,very serious,"
        "undetected,no,3 cohorts and one placebo arm of 3\n")


def test_certainty_file_per_outcome(run_cli, curated_path, tmp_path):
    path = _file(tmp_path, GOOD)
    rows = _json(run_cli, "sof", "--outcome", "fistula_closure", "--outcome", "partial_fistula_closure",
                 "--timepoint", "208", "--certainty", path)
    by_key = {(r["outcome"], r["unit"]): r for r in rows}
    rated = by_key[("fistula_closure", "patient")]
    assert rated["certainty"] == "very low" and rated["design"] == "observational"
    assert rated["comments"] == "3 cohorts and one placebo arm of 3"
    assert rated["source"].endswith("grade.csv row 3")
    assert by_key[("fistula_closure", "fistula")]["certainty"] == "not rated"
    assert by_key[("partial_fistula_closure", "patient")]["certainty"] == "not rated"
    cx = _json(run_cli, "sof", *CX601, "--certainty", path)
    assert cx["certainty"] == "moderate" and cx["comments"] == "single trial"


def test_a_row_rating_nothing_shown_is_said(run_cli, curated_path, tmp_path):
    path = _file(tmp_path, GOOD)
    code, out, err = run_cli("sof", *CX601, "--certainty", path)
    assert code == 0
    assert "row 3: rates fistula_closure at 208 weeks per patient, which is not in this" in err


@pytest.mark.parametrize("text, row, column, message", [
    ("outcome,risk_of_bais\nfistula_closure,serious\n", 1, "risk_of_bais", "unknown column"),
    ("outcome,imprecision\nfistula_closure,quite serious\n", 2, "imprecision",
     "'quite serious' is not a rating"),
    ("outcome,imprecision\nfistula_closur,serious\n", 2, "outcome", "not an outcome of the table"),
    ("outcome,timepoint_weeks\nfistula_closure,-4\n", 2, "timepoint_weeks", "is negative"),
    ("outcome,unit\nfistula_closure,eye\n", 2, "unit", "not a unit"),
    ("outcome,design,large_effect\nfistula_closure,randomised,large\n", 2, "large_effect",
     "observational evidence"),
    ("outcome,design\nfistula_closure,cohort\n", 2, "design", "not a design"),
    ("outcome,sd\nfistula_closure,-1\n", 2, "sd", "not a positive standard deviation"),
    ("outcome,assumed_control\nfistula_closure,abc\n", 2, "assumed_control", "not a number"),
    ("outcome,events\nfistula_closure,good\n", 2, "events", "not beneficial or harmful"),
    ("outcome,imprecision\n,serious\n", 2, "outcome", "blank"),
])
def test_certainty_file_errors_name_file_row_and_column(run_cli, curated_path, tmp_path, text, row,
                                                        column, message):
    path = _file(tmp_path, text)
    code, out, err = run_cli("sof", *CX601, "--certainty", path)
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"{path}, row {row}, column '{column}'" in err, err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_two_rows_rating_one_outcome_are_refused(run_cli, curated_path, tmp_path):
    path = _file(tmp_path, "outcome,timepoint_weeks,imprecision\nfistula_closure,,serious\n"
                           "fistula_closure,24,not serious\n")
    code, out, err = run_cli("sof", *CX601, "--certainty", path)
    assert code == 2 and "rows 2 and 3 both rate fistula_closure at 24 weeks" in err


def test_assumed_control_risk_outside_0_1_is_refused_at_its_cell(run_cli, curated_path, tmp_path):
    path = _file(tmp_path, "outcome,timepoint_weeks,unit,assumed_control\nfistula_closure,24,patient,300\n")
    code, out, err = run_cli("sof", *CX601, "--certainty", path)
    assert code == 2 and f"{path}, row 2, column 'assumed_control'" in err
    assert "not a risk" in err


def test_read_certainty_file_words(tmp_path):
    path = _file(tmp_path, "outcome,publication_bias,risk_of_bias,dose_response\n"
                           "x,strongly suspected,Very_Serious,yes\n")
    (row,) = read_certainty_file(path, ["x"])
    assert row.ratings.downgrades == {"publication_bias": ("strongly suspected", 1),
                                      "risk_of_bias": ("very serious", 2)}
    assert row.ratings.upgrades == {"dose_response": ("yes", 1)}
    with pytest.raises(InputError):
        read_certainty_file(path, ["y"])


# ----------------------------------------------------------------- other outcome types

MEANS = [dict(study_id=s, outcome="pain", timepoint_weeks=12, unit="patient", mean_t=mt, sd_t=st,
              n_t=nt, mean_c=mc, sd_c=sc, n_c=nc)
         for s, mt, st, nt, mc, sc, nc in [("A", 3.1, 1.2, 20, 4.0, 1.5, 22),
                                           ("B", 2.8, 1.0, 30, 3.9, 1.1, 28),
                                           ("C", 3.5, 1.4, 15, 3.6, 1.3, 16)]]


def test_mean_difference_in_the_outcomes_units(run_cli, tmp_table, tmp_path):
    data = tmp_table(MEANS)
    grade_file = _file(tmp_path, "outcome,units\npain,points (0-10)\n")
    doc = _json(run_cli, "sof", "--data", data, "--outcome", "pain", "--certainty", grade_file)
    pool = _json(run_cli, "pool", "--data", data, "--outcome", "pain")
    assert doc["measure"] == "MD" and doc["estimate"] == pool["estimate"]
    control = (4.0 * 22 + 3.9 * 28 + 3.6 * 16) / (22 + 28 + 16)       # n-weighted control mean
    a = doc["absolute"]
    assert a["kind"] == "comparison" and a["scale"] == "points (0-10)"
    assert a["comparator_label"] == "Mean with control"
    assert a["comparator"] == pytest.approx(control, **REL)
    assert a["value"] == pytest.approx(control + pool["estimate"], **REL)
    assert a["value_ci_high"] == pytest.approx(control + pool["ci_high"], **REL)
    assert a["difference"] == pytest.approx(pool["estimate"], **REL)
    assert a["difference_ci_low"] == pytest.approx(pool["ci_low"], **REL)
    assert a["text"].startswith(f"{abs(pool['estimate']):.2f} lower points (0-10)")
    assert doc["participants"] == 20 + 22 + 30 + 28 + 15 + 16
    assert any("400" in hint for hint in doc["hints"])        # continuous OIS rule of thumb


def test_smd_rule_of_thumb_and_back_conversion_only_with_an_sd(run_cli, tmp_table, tmp_path):
    data = tmp_table(MEANS)
    doc = _json(run_cli, "sof", "--data", data, "--outcome", "pain", "--measure", "SMD")
    pool = _json(run_cli, "pool", "--data", data, "--outcome", "pain", "--measure", "SMD")
    a = doc["absolute"]
    assert a["kind"] == "standardised" and a["value"] is None and a["comparator"] is None
    assert a["difference"] == pool["estimate"]
    assert a["interpretation"].startswith(f"{cohen_size(pool['estimate'])} effect")
    assert "not back-converted" in a["text"]
    grade_file = _file(tmp_path, "outcome,sd,units\npain,2.5,points\n")
    doc = _json(run_cli, "sof", "--data", data, "--outcome", "pain", "--measure", "SMD",
                "--certainty", grade_file)
    a = doc["absolute"]
    assert a["scale"] == "points"
    assert a["difference"] == pytest.approx(2.5 * pool["estimate"], **REL)
    assert a["difference_ci_low"] == pytest.approx(2.5 * pool["ci_low"], **REL)


def test_cohen_words():
    assert [cohen_size(x) for x in (0.1, -0.2, 0.49, 0.5, -0.79, 0.8, 2.0)] == \
        ["less than small", "small", "small", "moderate", "moderate", "large", "large"]


def test_mean_change_starts_from_the_mean_before(run_cli, tmp_table):
    data = tmp_table([dict(study_id="A", outcome="cdai", mean_pre=270, mean_post=215, sd_pre=60,
                           sd_post=55, n_t=10, r=0.5),
                      dict(study_id="B", outcome="cdai", mean_pre=250, mean_post=190, sd_pre=50,
                           sd_post=60, n_t=12, r=0.5)])
    doc = _json(run_cli, "sof", "--data", data, "--outcome", "cdai")
    pool = _json(run_cli, "pool", "--data", data, "--outcome", "cdai")
    before = (270 * 10 + 250 * 12) / 22
    a = doc["absolute"]
    assert doc["measure"] == "MC" and a["comparator_label"] == "Mean before"
    assert a["comparator"] == pytest.approx(before, **REL)
    assert a["value"] == pytest.approx(before + pool["estimate"], **REL)
    assert doc["design"] == "observational"       # one group before/after: no randomised comparison


def test_rates_per_1000_person_time(run_cli, tmp_table):
    data = tmp_table([dict(study_id="A", outcome="flare", events_t=5, time_t=100, events_c=9, time_c=95),
                      dict(study_id="B", outcome="flare", events_t=3, time_t=80, events_c=7, time_c=85)])
    for measure in ("IRR", "IRD"):
        doc = _json(run_cli, "sof", "--data", data, "--outcome", "flare", "--measure", measure)
        pool = _json(run_cli, "pool", "--data", data, "--outcome", "flare", "--measure", measure)
        rate = (9 + 7) / (95 + 85)
        expected = rate * pool["estimate"] if measure == "IRR" else rate + pool["estimate"]
        a = doc["absolute"]
        assert a["scale"] == "per 1,000 person-time units"
        assert a["comparator"] == pytest.approx(1000 * rate, **REL)
        assert a["value"] == pytest.approx(1000 * expected, **REL)
        assert doc["participants"] is None and doc["person_time"] == 360
        assert doc["events"] == 24


# ----------------------------------------------------------------- export, HTML, escaping

def test_csv_export_equals_the_json(run_cli, curated_path, tmp_path):
    target = tmp_path / "sof.csv"
    code, out, err = run_cli("sof", "--all", "--timepoint", "208", "-o", target)
    assert code == 0, err
    assert out == "" and "written to" in err
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    docs = _json(run_cli, "sof", "--all", "--timepoint", "208")
    assert len(rows) == len(docs)
    for row, doc in zip(rows, docs):
        assert row["outcome"] == doc["outcome"] and float(row["estimate"]) == doc["estimate"]
        assert row["certainty"] == "not rated"
        if doc["absolute"]["value"] is not None:
            assert float(row["intervention"]) == doc["absolute"]["value"]
    # never overwritten without --force
    code, out, err = run_cli("sof", "--all", "--timepoint", "208", "-o", target)
    assert code == 2 and "--force" in err


def test_html_section_escapes_the_raters_text(curated_path):
    from msc_meta.data import load_table
    from msc_meta.pooling.analysis import run_pool
    from msc_meta.pooling.sof import finding
    from msc_meta.report.html_report import sof_html

    table = load_table(curated_path)
    analysis = run_pool(table, outcome="fistula_closure", timepoint=24, unit="patient")
    row = finding(analysis, ratings=Ratings(comments="<script>alert(1)</script>", source="t"))
    html = sof_html([row])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Summary of findings" in html and "495" in html and "not rated" in html


def test_report_has_the_sof_section(run_cli, curated_path, tmp_path):
    grade_file = _file(tmp_path, GOOD)
    target = tmp_path / "r.html"
    code, out, err = run_cli("report", *CX601, "--certainty", grade_file, "-o", target)
    assert code == 0, err
    html = target.read_text(encoding="utf-8")
    assert '<div id="sof" class="sof">' in html and "MODERATE" in html and "single trial" in html


def test_terminal_prints_the_raters_text_as_text(run_cli, curated_path, tmp_path):
    # the file reader refuses control characters (one line, file/row/column) ...
    bad = _file(tmp_path, "outcome,comments\nfistula_closure,\"bad\x1b[31mred\"\n")
    code, out, err = run_cli("sof", *CX601, "--certainty", bad)
    assert code == 2 and "row 2, column 'comments'" in err and "\x1b" not in err
    # ... and rich markup in a comment prints as it is written, never as style
    grade_file = _file(tmp_path, "outcome,comments\nfistula_closure,[bold red]see[/] RoB 2\n")
    code, out, err = run_cli("sof", *CX601, "--certainty", grade_file)
    assert code == 0, err
    assert "Comments: [bold red]see[/] RoB 2" in out


def test_correlations_and_generic_effects_have_no_absolute_effect(run_cli, tmp_table):
    data = tmp_table([dict(study_id="A", outcome="c", cor_t=0.3, n_t=40),
                      dict(study_id="B", outcome="c", cor_t=0.5, n_t=60)])
    doc = _json(run_cli, "sof", "--data", data, "--outcome", "c")
    pool = _json(run_cli, "pool", "--data", data, "--outcome", "c")
    assert doc["absolute"]["kind"] == "none" and doc["absolute"]["value"] is None
    assert "carries no comparator" in doc["absolute"]["text"]
    assert doc["estimate"] == pool["estimate"] and doc["participants"] == 100


def test_observational_upgrade_from_the_file(run_cli, tmp_table, tmp_path):
    rows = [dict(study_id=s, outcome="healing", design="cohort", events_t=a, n_t=n, events_c=c,
                 n_c=m) for s, a, n, c, m in [("A", 30, 40, 5, 40), ("B", 25, 35, 4, 36)]]
    data = tmp_table(rows)
    grade_file = _file(tmp_path, "outcome,risk_of_bias,inconsistency,indirectness,imprecision,"
                                 "publication_bias,large_effect\nhealing,0,0,0,0,0,very large\n")
    doc = _json(run_cli, "sof", "--data", data, "--outcome", "healing", "--certainty", grade_file)
    # observational (design column: cohort) starts low; a very large effect: +2 -> high
    assert doc["start"] == "low" and doc["design_source"] == "design column: cohort"
    assert doc["large_effect"] == "very large" and doc["large_effect_upgrade"] == 2
    assert doc["certainty"] == "high"


def test_measures_name_their_sof_rule_in_the_registry():
    """sof reads Measure.absolute, .baseline and .standardised, never a list of names."""
    from msc_meta import registry

    for name in registry.measures(every=True):
        spec = registry.measure(name)
        assert spec.baseline in ("", "ratio", "odds", "difference", "sqrt_difference"), name
        if spec.absolute:
            assert spec.baseline and spec.two_arm and spec.family == "counts", name
        if spec.standardised:
            assert not spec.baseline, name
        if spec.baseline == "ratio" or spec.baseline == "odds":
            assert spec.null == 1.0 and spec.log_axis, name
        if spec.baseline in ("difference", "sqrt_difference"):
            assert spec.null == 0.0, name


def test_control_risk_is_said_unused_for_non_risk_rows(run_cli, curated_path):
    rows = _json(run_cli, "sof", "--outcome", "follow_up_available", "--outcome", "mri_improvement",
                 "--timepoint", "208", "--control-risk", "0.3")
    follow, mri = rows
    assert follow["absolute"]["comparator"] == pytest.approx(300.0, **REL)
    assert follow["absolute"]["value"] == pytest.approx(1000 * 0.3 * (13 / 15) / (3 / 6), **REL)
    assert any("--control-risk applies to risks" in note for note in mri["notes"])


def test_csv_export_guards_text_cells_against_formulas(run_cli, curated_path, tmp_path):
    grade_file = _file(tmp_path, "outcome,comments\nfistula_closure,=HYPERLINK(\"x\")\n")
    target = tmp_path / "sof.csv"
    code, out, err = run_cli("sof", *CX601, "--certainty", grade_file, "-o", target)
    assert code == 0, err
    (row,) = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert row["comments"] == "'=HYPERLINK(\"x\")"
    assert float(row["difference"]) == pytest.approx(1000 * (53 / 107 - 36 / 105), **REL)
    json_target = tmp_path / "sof.json"
    code, out, err = run_cli("sof", *CX601, "-o", json_target)
    assert code == 0, err
    (doc,) = json.loads(json_target.read_text(encoding="utf-8"))
    assert doc["absolute"]["value"] == pytest.approx(1000 * 53 / 107, **REL)


def test_assumed_rate_is_per_unit_of_person_time(run_cli, tmp_table, tmp_path):
    data = tmp_table([dict(study_id="A", outcome="flare", events_t=5, time_t=100, events_c=9, time_c=95),
                      dict(study_id="B", outcome="flare", events_t=3, time_t=80, events_c=7, time_c=85)])
    grade_file = _file(tmp_path, "outcome,assumed_control,units\nflare,0.05,person-years\n")
    doc = _json(run_cli, "sof", "--data", data, "--outcome", "flare", "--certainty", grade_file)
    pool = _json(run_cli, "pool", "--data", data, "--outcome", "flare")
    a = doc["absolute"]
    assert a["scale"] == "per 1,000 person-years"
    assert a["comparator"] == pytest.approx(50.0, **REL)              # 0.05 per person-year
    assert a["value"] == pytest.approx(50.0 * pool["estimate"], **REL)
    bad = _file(tmp_path, "outcome,assumed_control\nflare,-1\n")
    code, out, err = run_cli("sof", "--data", data, "--outcome", "flare", "--certainty", bad)
    assert code == 2 and "row 2, column 'assumed_control'" in err and "negative" in err
