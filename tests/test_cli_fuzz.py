"""CLI fuzzing: random combinations of valid and invalid options over every registered command.

The commands and their options are read from the click objects at run time
(``msc_meta.cli.COMMANDS``), so a new command or option is fuzzed without
editing this file; only its values need a generator below when the type
alone (choice, float range, flag, path) does not say what is valid.

Each run goes through ``msc_meta.cli.main`` in-process with a fixed seed and
a bounded count (and a time budget), and must:

- never raise (a traceback for the user) and never print "Traceback";
- exit with 0, 1 or 2 (130 never: nothing interrupts it);
- exit with 2 whenever one option value is invalid (unknown choice, out of
  range, missing file, unknown column or outcome, bad formula or prior ...);
- print strict JSON (no NaN / Infinity) on stdout when ``--json`` succeeded;
- print no Python warning on stderr.

All failures are collected and reported together, each with its command line.
"""

from __future__ import annotations

import json
import random
import time
import warnings
from pathlib import Path

import click
import pytest

from msc_meta.cli.options import BoundedFloat

RUNS = 150
TIME_BUDGET_S = 150.0
SEED = 20240607

# A table with two outcomes, two time points, both units, zero cells, a
# single-arm row, a percentage-only row, moderators and an extra column.
FUZZ_COLUMNS = ("study_id", "trial", "outcome", "timepoint_weeks", "unit", "events_t", "n_t", "pct_t",
                "events_c", "n_c", "design", "cell_source", "route", "dose_cells", "region", "note")
FUZZ_ROWS = [
    ("A", "A", "closure", 24, "patient", 12, 20, "", 6, 20, "rct", "adipose", "local", 1.2e8, "EU", ""),
    ("B", "B", "closure", 24, "patient", 30, 50, "", 20, 48, "rct", "bone_marrow", "local", 3e7, "EU", ""),
    ("C", "C", "closure", 24, "patient", 0, 15, "", 3, 16, "rct", "adipose", "systemic", 9e7, "US", ""),
    ("D1", "D", "closure", 24, "patient", 21, 40, "", 9, 38, "dose_finding_rct", "adipose", "local", 1e7, "US", ""),
    ("D2", "D", "closure", 24, "patient", 25, 40, "", 9, 38, "dose_finding_rct", "adipose", "local", 3e7, "US", ""),
    ("E", "E", "closure", 24, "patient", 0, 12, "", 0, 11, "rct", "bone_marrow", "local", 5e7, "", ""),
    ("S", "S", "closure", 24, "patient", 14, 20, "", "", "", "case_series", "adipose", "local", 2e7, "EU", ""),
    ("P", "P", "closure", 24, "patient", "", 30, "63", "", "", "case_series", "adipose", "local", "", "EU",
     "only a percentage printed"),
    ("A", "A", "closure", 52, "patient", 10, 20, "", 5, 20, "rct", "adipose", "local", 1.2e8, "EU", ""),
    ("B", "B", "closure", 52, "patient", 28, 50, "", 22, 48, "rct", "bone_marrow", "local", 3e7, "EU", ""),
    ("C", "C", "closure", 52, "fistula", 5, 18, "", 4, 19, "rct", "adipose", "systemic", 9e7, "US", ""),
    ("F1", "F1", "response", 24, "fistula", 7, 10, "70", "", "", "case_series", "adipose", "local", 1e7, "EU", ""),
    ("F2", "F2", "response", 24, "fistula", 12, 15, "", "", "", "case_series", "adipose", "local", 2e7, "US", ""),
    ("F3", "F3", "response", 24, "fistula", 20, 20, "", "", "", "case_series", "bone_marrow", "local", 4e7, "", ""),
    ("F4", "F4", "response", 24, "fistula", 0, 6, "", "", "", "case_report", "adipose", "systemic", 6e7, "EU", ""),
    ("F5", "F5", "response", 24, "fistula", 33, 60, "", "", "", "case_series", "umbilical", "local", 1e8, "US", ""),
]
FUZZ_SELECTIONS = [("closure", 24.0, "patient"), ("closure", 52.0, "patient"), ("closure", 52.0, "fistula"),
                   ("response", 24.0, "fistula")]
COLUMNS_TO_GROUP = ("cell_source", "route", "design", "trial", "region", "unit")
NOT_A_COLUMN = "no_such_column"

CORPUS = Path(__file__).parent / "bad_inputs"

# Bugs the fuzzer found in files being edited by others: each is pinned by a
# strict xfail test at the end of this file. While it is open, a run failing
# with this exact signature does not fail test_cli_fuzz; once the xfail test
# passes (XPASS fails the suite), delete its entry here and its marker there.
KNOWN_BUGS: dict = {
    # all of these words in the failure -> the pinning test
}


def _known_bug(text: str) -> bool:
    return any(all(word in text for word in words) for words in KNOWN_BUGS)


def _write_fuzz_table(path: Path) -> Path:
    lines = [",".join(FUZZ_COLUMNS)]
    for row in FUZZ_ROWS:
        lines.append(",".join("" if v == "" else (f"{v:g}" if isinstance(v, float) else str(v)) for v in row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _selections(path=None) -> list:
    """Every (outcome, timepoint, unit) of a table that has rows with counts."""
    from msc_meta.data import load_table

    found = {(r.outcome, r.timepoint_weeks, r.unit) for r in load_table(path).rows if r.has_counts}
    return sorted(found, key=str)


class Case:
    """Builds one command line; ``invalid`` names the option given a bad value (or None)."""

    def __init__(self, rnd: random.Random, tmp: Path, dataset: str, selections: list, counter: list):
        self.rnd, self.tmp, self.dataset, self.counter = rnd, tmp, dataset, counter
        self.outcome, self.timepoint, self.unit = rnd.choice(selections)

    # ------------------------------------------------------------- per-option values
    def output_path(self, command: str, valid: bool) -> str:
        self.counter[0] += 1
        n = self.counter[0]
        if not valid:
            return self.rnd.choice([str(self.tmp / "no_such_folder" / f"out{n}.png"),
                                    str(self.tmp),                       # a folder
                                    str(self._package_data() / f"out{n}.csv")])
        suffix = {"forest": [".png", ".svg", ".pdf"], "export": [".csv", ".json"],
                  "bias": [".png", ".svg"], "regress": [".png", ".svg"],
                  "report": [".html"]}.get(command, [".png"])
        return str(self.tmp / f"out{n}{self.rnd.choice(suffix)}")

    @staticmethod
    def _package_data() -> Path:
        from msc_meta.data import curated_path

        return curated_path().parent

    def value(self, command: str, param: click.Parameter, valid: bool):
        """A value for ``param``; None means "no value can be invalid for this option"."""
        rnd, name, kind = self.rnd, param.name, param.type
        if name == "data_path":
            if valid:
                return None if self.dataset == "curated" else str(self.tmp / "fuzz.csv")
            return rnd.choice([str(self.tmp / "missing.csv"), str(self.tmp),
                               str(CORPUS / "count_decimal.csv"), str(CORPUS / "latin1.csv"),
                               str(CORPUS / "duplicate_key.csv"), str(CORPUS / "duplicate_key_rlm.csv"),
                               str(CORPUS / "duplicate_key_fullwidth.csv"),
                               str(CORPUS / "outcome_key_case_variants.csv"),
                               str(CORPUS / "timepoint_underscore.csv"), str(CORPUS / "dose_nan.csv"),
                               str(CORPUS / "control_escape_in_study_id.csv"),
                               str(self.tmp / "new\nline.csv")])
        if name == "outcome":
            # 'Closure' is no longer invalid: outcome keys are compared after case folding
            return self.outcome if valid else rnd.choice(["no_such_outcome", "closur", " ", "clo\nsure"])
        if name == "timepoint":
            if valid:
                return None if self.timepoint is None else f"{self.timepoint:g}"
            return rnd.choice(["abc", "24 weeks", "9999", "nan", "inf", "2_4", "-0", "1e30", "-24"])
        if name == "unit" and valid:
            return self.unit
        if name in ("by",):
            return rnd.choice(COLUMNS_TO_GROUP) if valid else NOT_A_COLUMN
        if name == "order_by":
            return rnd.choice(["dose_cells", "timepoint_weeks", "study_id", "n_t"]) if valid else NOT_A_COLUMN
        if name == "mods":
            if valid:
                return rnd.choice(["log10(dose_cells)", "dose_cells", "cell_source", "route"])
            return rnd.choice(["log10(", NOT_A_COLUMN, "dose_cells +", "exp(dose_cells) * ((route"])
        if name == "prior_tau":
            return (rnd.choice(["halfnormal:0.5", "halfnormal:1"]) if valid
                    else rnd.choice(["halfnormal:-1", "cauchy", "halfnormal:abc", "halfnormal:"]))
        if name == "prior_mu":
            return (rnd.choice(["flat", "normal:0:10"]) if valid
                    else rnd.choice(["normal:0", "uniform", "normal:0:-1", "normal:a:b"]))
        if name == "control_risk":
            return f"{rnd.uniform(0.05, 0.95):.3f}" if valid else rnd.choice(["1.5", "-0.1", "abc", "0"])
        if name == "output":
            return self.output_path(command, valid)
        if name == "sources_dir":
            return str(Path("/work/shared/sources") if Path("/work/shared/sources").is_dir() else self.tmp) \
                if valid else str(self.tmp / "no_such_sources")
        if name == "totals_path":
            return None if valid else str(self.tmp / "missing_totals.csv")
        if name in ("title", "favours_left", "favours_right"):
            return rnd.choice(["MSC vs placebo", "Favours MSC ✓", "=HYPERLINK(\"x\")", "α/β — 24 wk"]) \
                if valid else None
        if isinstance(kind, click.Choice):
            if valid:
                choice = rnd.choice(list(kind.choices))
                return choice.upper() if (not kind.case_sensitive and rnd.random() < 0.5) else choice
            return "bogus"
        if isinstance(kind, BoundedFloat):      # --cc, --level of options.py: strict, nan refused
            gap = kind.zero_or_from              # --cc: 0, or 0.001 to 1 (not one interval)
            if valid:
                if gap is not None and rnd.random() < 0.3:
                    return "0"
                return f"{rnd.uniform(gap if gap is not None else kind.min, kind.max):.4g}"
            bad = ["abc", "nan", "inf", "-inf", "1_0", "1e308", f"{kind.min - 1:g}", f"{kind.max + 1:g}"]
            if gap is not None:
                bad += [f"{gap / 10:g}", "1e-320"]
            return rnd.choice(bad)
        if isinstance(kind, click.types.FloatRange):
            lo = kind.min if kind.min is not None else 0.0
            hi = kind.max if kind.max is not None else lo + 2.0
            if valid:
                return f"{rnd.uniform(lo, hi):.4g}"
            bad = ["abc"]
            if kind.min is not None:
                bad.append(f"{kind.min - 1:g}")
            if kind.max is not None:
                bad.append(f"{kind.max + 1:g}")
            return rnd.choice(bad)
        if isinstance(kind, click.types.FloatParamType):
            return f"{rnd.uniform(0, 100):.3g}" if valid else "abc"
        return None


def _options(command: click.Command):
    return [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]


def build_args(rnd, tmp, name, command, datasets, counter):
    """(args, invalid option name or reason, expect_exit_2)."""
    dataset = rnd.choice(["fuzz"] * 3 + ["curated"])
    case = Case(rnd, tmp, dataset, datasets[dataset], counter)
    # the selection options usually go together (else "several time points")
    keep_selection = rnd.random() < 0.9
    options = _options(command)
    roll = rnd.random()
    if roll < 0.03:
        return [name, "--help"], None, False
    if roll < 0.06:
        return [name, "--no-such-option", "x"], "unknown option", True
    invalid = None
    candidates = [p for p in options if not getattr(p, "is_flag", False)
                  and case.value(name, p, valid=False) is not None]
    if candidates and rnd.random() < 0.35:
        invalid = rnd.choice(candidates)
    drop_required = rnd.random() < 0.04
    args = [name]
    dropped = None
    for p in options:
        required = p.required
        if p.name == "data_path" and dataset == "fuzz":
            required = True
        if p.name in ("outcome", "timepoint", "unit") and keep_selection and name != "fragility":
            required = True
        if p is not invalid and not required and rnd.random() < 0.5:
            continue
        if p.required and drop_required and p is not invalid and dropped is None:
            dropped = p.name
            continue
        flag = p.opts[-1] if p.opts[-1].startswith("--") else p.opts[0]
        if getattr(p, "is_flag", False):
            args.append(flag)
            continue
        value = case.value(name, p, valid=p is not invalid)
        if value is None:
            continue
        args += [flag, value]
    if name in ("export", "report"):
        # export and report need --outcome or --all (not both): keep it valid unless fuzzed
        has_outcome = "--outcome" in args
        if "--all" in args and (has_outcome or "--timepoint" in args or "--unit" in args):
            args.remove("--all")
        if "--all" not in args and not has_outcome:
            args += ["--outcome", case.outcome]
    reason = dropped and f"missing required {dropped}"
    if invalid is not None:
        reason = f"invalid {invalid.name}"
    return args, reason, reason is not None


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def datasets():
    return {"fuzz": FUZZ_SELECTIONS, "curated": _selections(None)}


def test_cli_fuzz(tmp_path, run_cli, datasets):
    from msc_meta.cli import cli

    _write_fuzz_table(tmp_path / "fuzz.csv")
    ctx = click.Context(cli)
    commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    assert {"pool", "studies", "check"} <= set(commands)

    rnd = random.Random(SEED)
    counter = [0]
    failures, seen_codes, runs = [], {}, 0
    start = time.monotonic()
    for i in range(RUNS):
        if time.monotonic() - start > TIME_BUDGET_S:
            break
        name = sorted(commands)[i % len(commands)] if i < 2 * len(commands) else rnd.choice(sorted(commands))
        args, reason, expect_2 = build_args(rnd, tmp_path, name, commands[name], datasets, counter)
        runs += 1
        try:
            with warnings.catch_warnings(record=True) as caught:
                # pytest would swallow them; a user sees them on stderr
                warnings.simplefilter("always")
                code, out, err = run_cli(*args)
        except BaseException as exc:          # a traceback the user would see
            if not _known_bug(str(exc)):
                failures.append((args, reason, f"raised {type(exc).__name__}: {exc}"))
            continue
        leaked = [f"{w.category.__name__}: {w.message} ({Path(w.filename).name}:{w.lineno})" for w in caught
                  if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
        seen_codes.setdefault(name, set()).add(code)
        problem = None
        if "Traceback" in err or "Traceback" in out:
            problem = "traceback printed"
        elif code not in (0, 1, 2):
            problem = f"exit code {code}"
        elif expect_2 and code != 2:
            problem = f"exit {code} although {reason}"
        elif leaked or "Warning:" in err:
            problem = f"a Python warning on stderr: {leaked[:1] or err}"
        elif code == 0 and "--json" in args:
            try:
                _strict_json(out)
            except ValueError as exc:
                problem = f"--json output is not strict JSON ({exc})"
        if problem and not _known_bug(problem):
            failures.append((args, reason, problem, (err or "").strip().splitlines()[-1:]))
    report = "\n".join(f"msc-meta {' '.join(map(str, f[0]))}\n    -> {f[2:]} [{f[1]}]" for f in failures)
    assert not failures, f"{len(failures)} of {runs} runs failed:\n{report}"
    assert runs >= 60, f"only {runs} runs within the time budget"
    # the fuzzer reached success and refusal in most commands
    assert sum(1 for codes in seen_codes.values() if 0 in codes) >= len(commands) // 2, seen_codes


# --------------------------------------------------------------------------- found by fuzzing

def _fuzz_table(tmp_path) -> Path:
    return _write_fuzz_table(tmp_path / "fuzz.csv")


def test_bubble_plot_with_a_dropped_moderator_is_refused(tmp_path, run_cli):
    """k = 1 (or one dose): metafor drops the redundant slope; there is no line to draw.

    Was an IndexError traceback in plot/bubble.py (fixed there).
    """
    out_png = tmp_path / "bubble.png"
    code, out, err = run_cli("regress", "--data", _fuzz_table(tmp_path), "--outcome", "closure",
                             "--timepoint", "52", "--unit", "fistula", "--mods", "log10(dose_cells)",
                             "--method", "FE", "-o", out_png)
    assert "Traceback" not in err and code == 2, (code, err)
    assert "a bubble plot needs a fitted slope, but log10(dose_cells) was dropped" in err
    assert not out_png.exists()


def test_pool_by_with_overlapping_subgroups(curated_path, run_cli):
    """Was a TypeError traceback (analysis.py unpacked Excluded objects as pairs) under --by."""
    code, out, err = run_cli("pool", "--outcome", "ae_malignancy", "--timepoint", "208", "--unit", "patient",
                             "--by", "route", "--json")
    assert code == 0 and "Traceback" not in err
    assert isinstance(json.loads(out), list)


def test_saturated_meta_regression_prints_no_warning(tmp_path, run_cli_process):
    code, out, err = run_cli_process("regress", "--data", _fuzz_table(tmp_path), "--outcome", "closure",
                                     "--timepoint", "52", "--unit", "patient", "--mods", "cell_source",
                                     "--method", "FE", "--json")
    assert code == 0, err
    assert "Warning" not in err, err


@pytest.mark.parametrize("command", ["pool", "forest", "sensitivity", "bias", "sof", "bayes", "export"])
@pytest.mark.parametrize("weeks", ["nan", "inf", "-inf"])
def test_non_finite_timepoint_is_a_usage_error(tmp_path, run_cli, command, weeks):
    """Was a ValueError/OverflowError traceback in data.load.format_weeks (fixed there).

    Now refused by the option itself (the parser of the timepoint_weeks column)."""
    args = [command, "--data", _fuzz_table(tmp_path), "--outcome", "closure", f"--timepoint={weeks}"]
    if command in ("forest", "export"):
        args += ["-o", tmp_path / ("x.png" if command == "forest" else "x.csv")]
    code, out, err = run_cli(*args)
    assert "Traceback" not in err and code == 2, (code, err)
    assert f"Invalid value for '--timepoint': '{weeks}' is not a finite number" in err
