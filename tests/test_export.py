"""Tidy export: exact round trips (pandas, json), formula-injection
neutralising, refusal to overwrite, atomic writes, --all and --by."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from msc_meta.errors import UsageError
from msc_meta.report import export


def _rows():
    def row(study_id, trial, e_t, n_t, e_c, n_c, source="adipose", outcome="healing", weeks=12,
            pct_t=""):
        return {"study_id": study_id, "trial": trial, "outcome": outcome, "timepoint_weeks": weeks,
                "unit": "patient", "events_t": e_t, "n_t": n_t, "pct_t": pct_t, "events_c": e_c,
                "n_c": n_c, "cell_source": source}
    return [
        row("D1", "D", 2, 5, 1, 6), row("D2", "D", 3, 5, 1, 6), row("A", "A", 10, 20, 5, 20),
        row("B", "B", 7, 15, 0, 14, "bone_marrow"), row("C", "C", 30, 60, 18, 58, "bone_marrow"),
        row("Z", "Z", 0, 12, 0, 10),
        row("S1", "S1", 7, 10, "", "", outcome="closure", weeks=24),
        row("S2", "S2", 12, 15, "", "", outcome="closure", weeks=24),
        row("P", "P", "", "", "", "", outcome="closure", weeks=52, pct_t="40"),
    ]


@pytest.fixture
def table(tmp_table):
    return tmp_table(_rows())


def _analysis(table_path):
    from msc_meta.data import load_table
    from msc_meta.pooling.analysis import run_pool

    return run_pool(load_table(table_path), outcome="healing", hksj=True, multiarm="keep")


def _same(a, b) -> bool:
    """Equal, with NaN/None/blank all meaning 'missing'."""
    def missing(x):
        return x is None or (isinstance(x, float) and math.isnan(x))
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    return a == b


# ----------------------------------------------------------------------- tidy rows

def test_tidy_rows_layout(table):
    analysis = _analysis(table)
    rows = export.tidy_rows([analysis])
    kinds = [r["row_type"] for r in rows]
    assert kinds.count("study") == len(analysis.studies) == 5
    assert kinds.count("excluded") == 1
    assert kinds.count("pooled") == 2
    assert all(list(r) == list(export.COLUMNS) for r in rows)
    assert {r["analysis"] for r in rows} == {"healing|12w|patient"}
    random = next(r for r in rows if r["row_type"] == "pooled" and r["model"] == "random")
    common = next(r for r in rows if r["row_type"] == "pooled" and r["model"] == "common")
    assert random["method"] == "REML" and common["method"] == "FE"
    assert random["estimate"] == analysis.result.estimate
    assert random["test"] == "t" and random["df"] == analysis.result.df
    assert common["estimate"] == analysis.common.estimate
    assert random["hksj"] is True and random["pi"] == "hts" and random["cc"] == 0.5
    excluded = next(r for r in rows if r["row_type"] == "excluded")
    assert excluded["study_id"] == "Z" and "no events in either arm" in excluded["reason"]
    study = next(r for r in rows if r["study_id"] == "A")
    line = next(s for s in analysis.studies if s.study_id == "A")
    assert (study["yi"], study["vi"], study["weight"]) == (line.yi, line.vi, line.weight)
    assert study["estimate"] == line.estimate and study["k"] is None


def test_csv_round_trip_with_pandas_is_exact(table, tmp_path):
    import pandas as pd

    rows = export.tidy_rows([_analysis(table)])
    out = export.export_rows(rows, tmp_path / "out.csv")
    frame = pd.read_csv(out)
    assert list(frame.columns) == list(export.COLUMNS)
    assert len(frame) == len(rows)
    for key in ("theta", "se", "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2",
                "i2", "q", "q_pval", "stat", "pval", "yi", "vi", "weight", "df"):
        for written, read in zip(rows, frame[key].tolist()):
            assert _same(written[key], read), (key, written[key], read)
    for key in ("events_t", "n_t", "events_c", "n_c", "k", "row_number"):
        for written, read in zip(rows, frame[key].tolist()):
            assert _same(written[key], None if pd.isna(read) else int(read)), key
    assert frame["hksj"].tolist() == [True] * len(rows)


def test_floats_are_written_with_repr():
    assert export.csv_cell(0.1 + 0.2) == "0.30000000000000004"
    assert export.csv_cell(-1.5e-300) == "-1.5e-300"
    assert export.csv_cell(float("nan")) == "" and export.csv_cell(math.inf) == ""
    assert export.csv_cell(True) == "TRUE" and export.csv_cell(False) == "FALSE" and export.csv_cell(3) == "3"


def test_json_round_trip(table, tmp_path):
    rows = export.tidy_rows([_analysis(table)])
    out = export.export_rows(rows, tmp_path / "out.json", fmt="json")
    back = json.loads(out.read_text(encoding="utf-8"))
    assert back == rows


# ----------------------------------------------------------------------- formula injection

@pytest.mark.parametrize("text, expected", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1+2", "'+1+2"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"), ("\rcmd", "'\rcmd"), ("plain", "plain"), ("a=b", "a=b"),
])
def test_neutralise_formula(text, expected):
    assert export.neutralise_formula(text) == expected
    assert export.csv_cell(text) == expected


def test_formula_cells_neutralised_numbers_untouched(tmp_table, tmp_path, run_cli):
    import pandas as pd

    rows = [{"study_id": "=1+1", "outcome": "closure", "events_t": 1, "n_t": 10},
            {"study_id": "@cmd", "outcome": "closure", "events_t": 2, "n_t": 10},
            {"study_id": "-danger", "outcome": "closure", "events_t": 3, "n_t": 10}]
    path = tmp_table(rows)
    out = tmp_path / "x.csv"
    code, _, err = run_cli("export", "--data", path, "--outcome", "closure", "-o", out)
    assert code == 0, err
    frame = pd.read_csv(out)
    studies = frame[frame.row_type == "study"]
    assert studies.study_id.tolist() == ["'=1+1", "'@cmd", "'-danger"]
    # negative numbers (logits of proportions below 0.5) are never altered
    assert (studies.yi < 0).all()
    text = out.read_text(encoding="utf-8")
    assert ",-2.1972245773362196," in text or ",-2.197224577336219," in text


# ----------------------------------------------------------------------- safe writing

def test_refuses_to_overwrite_without_force(run_cli, table, tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old content", encoding="utf-8")
    code, stdout, err = run_cli("export", "--data", table, "--outcome", "healing", "-o", out)
    assert code == 2
    assert "file exists; use --force" in err and "Traceback" not in err
    assert out.read_text(encoding="utf-8") == "old content"
    code, _, err = run_cli("export", "--data", table, "--outcome", "healing", "-o", out, "--force")
    assert code == 0, err
    assert out.read_text(encoding="utf-8").startswith("analysis,row_type,")


def test_atomic_write_keeps_old_file_when_writer_fails(table, tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    out.write_text("old content", encoding="utf-8")
    rows = export.tidy_rows([_analysis(table)])

    def failing_writer(rows, stream, columns=export.COLUMNS):
        stream.write("analysis,row_type\nhalf,a row")
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(export, "write_csv", failing_writer)
    with pytest.raises(RuntimeError, match="simulated"):
        export.export_rows(rows, out, force=True)
    assert out.read_text(encoding="utf-8") == "old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "table.csv"]


def test_atomic_write_new_file_leaves_nothing_on_failure(tmp_path):
    def boom(stream):
        stream.write("partial")
        raise OSError("simulated")

    with pytest.raises(OSError):
        export.atomic_write(tmp_path / "new.csv", boom)
    assert list(tmp_path.iterdir()) == []


def test_written_file_has_normal_permissions(table, tmp_path):
    import os
    import stat

    out = export.export_rows(export.tidy_rows([_analysis(table)]), tmp_path / "p.csv")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("where, message", [
    ("package", "package folder"), ("folder", "is a folder"), ("missing", "does not exist"),
])
def test_output_path_checks(tmp_path, where, message):
    from msc_meta.data import curated_path

    path = {"package": curated_path().parent / "export.csv", "folder": tmp_path,
            "missing": tmp_path / "nope" / "x.csv"}[where]
    with pytest.raises(UsageError, match=message):
        export.check_output_path(path)
    assert not (curated_path().parent / "export.csv").exists()


def test_cli_refuses_package_folder(run_cli, table):
    from msc_meta.data import curated_path

    target = curated_path().parent / "outcomes.csv"
    before = target.read_bytes() if target.exists() else None
    code, _, err = run_cli("export", "--data", table, "--outcome", "healing", "-o", target,
                           "--force")
    assert code == 2 and "package folder" in err
    if before is not None:
        assert target.read_bytes() == before


# ----------------------------------------------------------------------- CLI

def test_cli_export_by_has_subgroup_rows(run_cli, table, tmp_path):
    import pandas as pd

    out = tmp_path / "by.csv"
    code, _, err = run_cli("export", "--data", table, "--outcome", "healing", "--by", "cell_source",
                           "-o", out)
    assert code == 0, err
    frame = pd.read_csv(out)
    assert set(frame.analysis) == {"healing|12w|patient|cell_source=adipose",
                                   "healing|12w|patient|cell_source=bone_marrow",
                                   "healing|12w|patient|by=cell_source"}
    test = frame[frame.row_type == "subgroup_test"].iloc[0]
    assert test.q_df == 1 and 0 <= test.q_pval <= 1
    assert set(frame[frame.row_type == "study"].by) == {"cell_source"}


def test_cli_export_all(run_cli, table, tmp_path):
    import pandas as pd

    out = tmp_path / "all.json"
    code, stdout, err = run_cli("export", "--data", table, "--all", "-o", out)
    assert code == 0, err
    assert stdout == ""
    docs = json.loads(out.read_text(encoding="utf-8"))
    assert {d["analysis"] for d in docs} == {"closure|24w|patient", "healing|12w|patient"}
    # the 52-week selection has no counts (k = 0): skipped and said so on stderr
    assert "skipped closure|52w|patient" in err
    closure = [d for d in docs if d["analysis"] == "closure|24w|patient" and d["row_type"] == "pooled"]
    assert {d["measure"] for d in closure} == {"PLO"}
    csv_out = tmp_path / "all.csv"
    code, _, err = run_cli("export", "--data", table, "--all", "--format", "csv", "-o", csv_out)
    assert code == 0, err
    assert len(pd.read_csv(csv_out)) == len(docs)


@pytest.mark.parametrize("args, message", [
    (["--all", "--outcome", "healing"], "drop --outcome"),
    ([], "give --outcome KEY"),
    (["--outcome", "nosuch"], "nosuch"),
])
def test_cli_export_usage_errors(run_cli, table, tmp_path, args, message):
    out = tmp_path / "x.csv"
    code, stdout, err = run_cli("export", "--data", table, "-o", out, *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_cli_export_curated(run_cli, curated_path, tmp_path):
    import pandas as pd

    out = tmp_path / "curated.csv"
    code, _, err = run_cli("export", "--outcome", "fistula_closure", "--timepoint", "24",
                           "--unit", "patient", "-o", out)
    assert code == 0, err
    frame = pd.read_csv(out)
    study = frame[frame.row_type == "study"].iloc[0]
    assert study.study_id == "panes_cx601"
    assert study.estimate == pytest.approx((53 / 107) / (36 / 105), rel=1e-12)


def test_cli_export_multiarm_columns(run_cli, table, tmp_path):
    import pandas as pd

    out = tmp_path / "multi.csv"
    code, _, err = run_cli("export", "--data", table, "--outcome", "healing", "-o", out)
    assert code == 0, err
    frame = pd.read_csv(out)
    combined = frame[frame.members.notna()]
    assert combined.study_id.tolist() == ["D1+D2"]
    assert combined.members.tolist() == ["D1;D2"]
    assert combined.multiarm_role.tolist() == ["combine"]
    assert (combined.events_t == 5).all() and (combined.n_c == 6).all()
    assert set(frame.multiarm) == {"combine"}
    out2 = tmp_path / "split.csv"
    code, _, err = run_cli("export", "--data", table, "--outcome", "healing", "--multiarm", "split",
                           "-o", out2)
    assert code == 0, err
    split = pd.read_csv(out2)
    shared = split[split.multiarm_role == "split"]
    assert shared.n_c.tolist() == [3, 3] and shared.events_c.tolist() == [0.5, 0.5]
    assert shared.control_share.tolist() == [0.5, 0.5]
