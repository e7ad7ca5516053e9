"""Start-up of ``msc-meta pool`` against its baselines (issue 5, target 1).

Times, as fresh processes interleaved round by round (minimum of N rounds,
after one untimed warm-up round so the OS file cache is warm for all):

- ``msc-meta pool --outcome KEY ... --json`` on the shipped table (ours),
- ``python -c "import pandas, statsmodels.api"`` (target: ours <= 0.5 x this),
- ``Rscript benchmarks/r/pool_metafor.R`` doing the same pool with metafor
  (read the CSV, select, escalc, rma, prediction interval, confint, JSON;
  target: ours <= 0.25 x); it keeps the studies msc-meta pooled (their ids
  are passed in) rather than re-implementing msc-meta's selection rules,
- the floor of our imports (bare Python; click; numpy; numpy + click), for
  information numpy + scipy.special + click (what the pool path paid before
  it moved to ``msc_meta._dist``), and ``msc-meta --help``.

The package's bytecode is compiled first, as ``pip install`` does (with
PYTHONDONTWRITEBYTECODE set, an editable install would otherwise compile
every module from source in every run).

Then ``python -X importtime`` of the pool run, summed by top-level package,
and a check that our JSON numbers equal metafor's.

Usage: python benchmarks/bench_startup.py [--repeats 7] [--outcome K --timepoint W --unit U]
(default: --outcome ae_malignancy --timepoint 208, a single-arm PLO pool, k = 3)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    R_DIR, REPO, Target, console_script, fmt_s, machine_info, print_machine, print_table,
    print_targets, rscript, run_command, save_results, time_commands,
)

COMPARE_KEYS = ("k", "theta", "se", "estimate", "ci_low", "ci_high", "pi_low", "pi_high",
                "tau2", "i2", "h2", "q", "q_pval", "stat", "pval")

# scipy.special name -> msc_meta._dist name (same signature and argument order)
SPECIAL_NAMES = ("ndtr", "ndtri", "chdtrc", "chdtri", "stdtr", "stdtrit", "expit")


def shipped_table() -> Path:
    import msc_meta.data

    return Path(msc_meta.data.__file__).resolve().parent / "outcomes.csv"


def pool_args(a) -> list[str]:
    args = ["pool", "--outcome", a.outcome]
    if a.timepoint is not None:
        args += ["--timepoint", str(a.timepoint)]
    if a.unit:
        args += ["--unit", a.unit]
    return args + ["--json"]


def compile_bytecode() -> None:
    """Write the package's .pyc files first, as ``pip install`` does.

    With PYTHONDONTWRITEBYTECODE set (as on the developers' machines) an
    editable install would otherwise compile every module from source in
    every run, which no installed copy does.
    """
    import compileall

    compileall.compile_dir(str(REPO / "src" / "msc_meta"), quiet=1)


def importtime_breakdown(argv, env=None) -> tuple[dict, dict, float]:
    """Run ``python -X importtime``; self time summed per top-level package,
    the cumulative time of a few modules of interest, and the total (seconds)."""
    _, proc = run_command([sys.executable, "-X", "importtime", *argv], env=env)
    per_pkg: dict[str, float] = defaultdict(float)
    cumulative: dict[str, float] = {}
    total = 0.0
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        self_us, cum_us, indent, name = int(m[1]), int(m[2]), len(m[3]), m[4]
        top = name.split(".")[0]
        if name.startswith("msc_meta"):
            top = ".".join(name.split(".")[:2]) if name.count(".") >= 1 else name
        per_pkg[top] += self_us / 1e6
        total += self_us / 1e6
        if indent == 1 or name in ("numpy", "scipy.special", "scipy._lib._array_api", "click",
                                   "scipy._lib.array_api_compat.numpy", "numpy.f2py",
                                   "numpy.testing", "pandas", "scipy.stats", "rich"):
            cumulative.setdefault(name, cum_us / 1e6)
    return dict(per_pkg), cumulative, total


def compare_with_metafor(ours: dict, theirs: dict) -> tuple[bool, float, list[str]]:
    worst, bad = 0.0, []
    for key in COMPARE_KEYS:
        a, b = ours.get(key), theirs.get(key)
        if a is None and b is None:
            continue
        if a is None or b is None:
            bad.append(f"{key}: ours {a}, metafor {b}")
            continue
        d = abs(a - b) / max(abs(b), 1e-10)
        worst = max(worst, d)
        if d > 1e-6 and abs(a - b) > 1e-10:
            bad.append(f"{key}: ours {a!r}, metafor {b!r}")
    w_ours = [s["weight"] for s in ours.get("studies", [])]
    w_r = [s["weight"] for s in theirs.get("studies", [])]
    if len(w_ours) != len(w_r):
        bad.append(f"studies: ours {len(w_ours)}, metafor {len(w_r)}")
    else:
        for a, b in zip(w_ours, w_r):
            worst = max(worst, abs(a - b) / max(abs(b), 1e-10))
    return not bad and worst <= 1e-6, worst, bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    # a single-arm pool (PLO, k = 4) of the shipped table: comparisons there
    # share control arms, which msc-meta combines and a plain rma() would not
    ap.add_argument("--outcome", default="ae_malignancy")
    ap.add_argument("--timepoint", type=float, default=208)
    ap.add_argument("--unit", default=None)
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/startup.json")
    a = ap.parse_args(argv)
    if a.timepoint is not None and a.timepoint == int(a.timepoint):
        a.timepoint = int(a.timepoint)

    info = machine_info()
    print_machine(info)
    py = sys.executable
    script = console_script()
    args = pool_args(a)
    table = shipped_table()
    print(f"pool: msc-meta {' '.join(args)}  (table {table.name}, {a.repeats} timed rounds, "
          "min shown, median in brackets)")

    commands = {
        "python -c pass": [py, "-c", "pass"],
        "import click": [py, "-c", "import click"],
        "import numpy": [py, "-c", "import numpy"],
        "import numpy, click": [py, "-c", "import numpy, click"],
        "import numpy, scipy.special, click": [py, "-c", "import numpy, scipy.special, click"],
        "msc-meta --help": [*script, "--help"],
        "msc-meta pool --json": [*script, *args],
        "import pandas, statsmodels.api": [py, "-c", "import pandas, statsmodels.api"],
    }
    compile_bytecode()
    r_exe = rscript()
    r_argv = None
    if r_exe:
        # R pools the studies msc-meta pooled (its selection rules are not re-implemented in R)
        _, first = run_command([*script, *args])
        pooled_ids = ",".join(st["study_id"] for st in json.loads(first.stdout)["studies"])
        r_argv = [r_exe, str(R_DIR / "pool_metafor.R"), str(table), a.outcome,
                  "NA" if a.timepoint is None else str(a.timepoint), a.unit or "NA", "REML",
                  pooled_ids]
        commands["Rscript -e 'invisible(0)'"] = [r_exe, "-e", "invisible(0)"]
        commands["Rscript pool_metafor.R"] = r_argv
    else:
        print("Rscript not found: the metafor baseline is skipped")

    results = time_commands(commands, a.repeats)

    rows = [[name, fmt_s(t.best), f"[{fmt_s(t.median)}]", fmt_s(t.best_cpu)]
            for name, (t, _) in results.items()]
    print_table(["process (fresh, warm file cache)", "wall min", "[median]", "CPU min"], rows,
                title="Start-up")

    ours_t = results["msc-meta pool --json"][0].best
    ours_json = json.loads(results["msc-meta pool --json"][1].stdout)
    pd_t = results["import pandas, statsmodels.api"][0].best
    cpu = {name: t.best_cpu for name, (t, _) in results.items()}
    targets = [Target("pool <= 0.5 x import pandas, statsmodels.api",
                      f"{ours_t / pd_t:.3f} ({fmt_s(ours_t)} / {fmt_s(pd_t)}; "
                      f"CPU {cpu['msc-meta pool --json'] / cpu['import pandas, statsmodels.api']:.3f})",
                      "<= 0.5", ours_t <= 0.5 * pd_t)]
    agree = None
    if r_argv:
        r_t = results["Rscript pool_metafor.R"][0].best
        r_json = json.loads(results["Rscript pool_metafor.R"][1].stdout)
        ok, worst, bad = compare_with_metafor(ours_json, r_json)
        agree = {"ok": ok, "max_rel_diff": worst, "mismatches": bad}
        floor = results["import numpy, click"][0].best
        r_cpu = cpu["Rscript pool_metafor.R"]
        targets.append(Target("pool <= 0.25 x Rscript metafor pool",
                              f"{ours_t / r_t:.3f} ({fmt_s(ours_t)} / {fmt_s(r_t)}; "
                              f"CPU {cpu['msc-meta pool --json'] / r_cpu:.3f})", "<= 0.25",
                              ours_t <= 0.25 * r_t))
        targets.append(Target("  (floor: import numpy, click / R)",
                              f"{floor / r_t:.3f} ({fmt_s(floor)}; "
                              f"CPU {cpu['import numpy, click'] / r_cpu:.3f})", "info", None))
        targets.append(Target("pool JSON equals metafor (1e-6 rel)",
                              f"max rel diff {worst:.1e}", "<= 1e-6", ok))
        if bad:
            print("mismatches with metafor:", *bad, sep="\n  ")
    else:
        targets.append(Target("pool <= 0.25 x Rscript metafor pool", "no R", "<= 0.25", None))

    # imports of the pool path
    per_pkg, cumulative, total = importtime_breakdown(["-m", "msc_meta", *args])
    help_pkg, _, help_total = importtime_breakdown(["-m", "msc_meta", "--help"])
    forbidden = [m for m in ("pandas", "statsmodels", "matplotlib", "scipy") if m in per_pkg]
    rows = sorted(per_pkg.items(), key=lambda kv: -kv[1])
    print_table(["package (self time summed)", "import time"],
                [[k, fmt_s(v)] for k, v in rows[:14]] + [["total", fmt_s(total)]],
                title="python -X importtime -m msc_meta pool ... --json (one run; importtime adds overhead)")
    interesting = {k: v for k, v in cumulative.items() if k in ("numpy", "click", "msc_meta.data",
                                                               "msc_meta.pooling.analysis")}
    print_table(["module (cumulative, first import)", "time"],
                [[k, fmt_s(v)] for k, v in sorted(interesting.items(), key=lambda kv: -kv[1])])
    targets.append(Target("pool path imports no pandas/statsmodels/matplotlib/scipy",
                          ", ".join(forbidden) or "none", "none", not forbidden))
    targets.append(Target("--help imports no numpy", "numpy" if "numpy" in help_pkg else "none",
                          "none", "numpy" not in help_pkg))
    print_targets(targets)
    if not a.no_save:
        save_results("startup", {
            "machine": info, "command": ["msc-meta", *args], "repeats": a.repeats,
            "timings": {name: t for name, (t, _) in results.items()},
            "importtime_self_by_package": per_pkg, "importtime_total": total,
            "importtime_help_total": help_total,
            "agreement_with_metafor": agree, "targets": targets,
        })
    return 0 if all(t.ok is not False for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
