"""Scale: big tables through what users call, the CLI and ``pool_many`` (issue 5, spine targets).

In one run, on fixed-seed two-arm count data:

1. ``msc-meta pool --data <n rows> --outcome x --json > out.json`` as a whole
   process (stdout to a file) for n = 10^3, 10^4, 10^5 (and 10^6 with
   ``--big``): wall time (minimum of N runs), CPU time and peak RSS of the
   child (``/usr/bin/time -f %M``; see ``run_measured``), and the growth exponent
   log(t2/t1)/log(n2/n1) between consecutive sizes and over the whole range.
   A size is skipped when the previous one took over 60 s, or when its
   extrapolated peak RSS would not fit in the memory available.
   Targets: 10^6 rows < 2 s and < 1.5 GiB peak RSS; exponent 10^3 -> 10^6 <= 1.1.
2. ``msc_meta.pool_many(table, by=["g"], method="REML")`` on a count DataFrame
   of 10,000 analyses x k = 10, against (a) a metafor ``escalc()`` + ``rma()``
   loop over the same groups timed inside R (``benchmarks/r/scale_metafor.R``;
   a subset of groups, scaled) and (b) a Python loop of single pools,
   ``msc_meta.pooling.analysis.run_pool`` on each group's table (a sample of
   groups, scaled). Targets: pool_many >= 100x the metafor loop and >= 20x the
   Python loop. Checks: pool_many rows equal the single pools (1e-10) and
   metafor (1e-6).
3. ``msc-meta pool --data <the same table> --outcome closure --by g --json``
   and ``msc-meta export --data <the table with one outcome per group> --all
   -o out.csv`` as whole processes, on a ladder of group counts up to 10,000;
   a size whose predicted time (growth exponent of the two sizes before it)
   exceeds ``--budget`` seconds is not run and its time is extrapolated (and
   said so). Target: each within 3x of (pool_many time + CLI start-up), where
   start-up is ``msc-meta pool --json`` on a 3-row table.

The CLI runs as ``python -m msc_meta`` with this checkout's ``src`` first on
PYTHONPATH, after compiling its bytecode (as ``pip install`` does).

Usage: python benchmarks/bench_scale.py [--quick] [--big] [--no-r]
       [--sizes N ...] [--groups 10000] [--repeats 3] [--loop-sample 300]
       [--r-groups 1000] [--budget 300] [--no-save]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    R_DIR, REPO, SEED, Target, Timing, fmt_s, has_metafor, machine_info, make_count_table,
    print_machine, print_table, print_targets, rel_diff, rscript, run_command, save_results,
    time_call,
)
from bench_startup import compile_bytecode  # noqa: E402

GIB = 1024 ** 3
MIB = 1024 ** 2
SKIP_AFTER_S = 60.0                    # target 1: skip a size when the previous one took longer

# fields compared between pool_many rows and single pools (PoolResult attributes)
SELF_FIELDS = ("k", "theta", "se", "estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2",
               "tau", "i2", "h2", "q", "q_df", "q_pval", "stat", "pval", "theta_ci_low",
               "theta_ci_high", "tau2_ci_low", "tau2_ci_high", "i2_ci_low", "i2_ci_high")
# pool_many column -> scale_metafor.R column
R_FIELDS = {"theta": "theta", "se": "se", "tau2": "tau2", "theta_ci_low": "ci_low",
            "theta_ci_high": "ci_high", "q": "q", "i2": "i2", "pval": "pval"}


# ---------------------------------------------------------------------------
# Processes: wall time, CPU time and peak RSS of one child
# ---------------------------------------------------------------------------

@dataclass
class Run:
    wall: float
    cpu: float                 # user + sys of the child
    maxrss: int                # bytes, peak resident set size of the child
    returncode: int
    timed_out: bool = False
    stderr: str = ""


@dataclass
class Measured:
    """Repeated runs of one command."""

    runs: list[Run] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.returncode == 0 and not r.timed_out for r in self.runs)

    @property
    def best(self) -> float:
        return min(r.wall for r in self.runs)

    @property
    def median(self) -> float:
        import statistics

        return statistics.median(r.wall for r in self.runs)

    @property
    def best_cpu(self) -> float:
        return min(r.cpu for r in self.runs)

    @property
    def maxrss(self) -> int:
        return max(r.maxrss for r in self.runs)

    def as_dict(self) -> dict:
        return {"best": self.best, "median": self.median, "best_cpu": self.best_cpu,
                "maxrss_bytes": self.maxrss,
                "runs": [{"wall": r.wall, "cpu": r.cpu, "maxrss_bytes": r.maxrss,
                          "returncode": r.returncode, "timed_out": r.timed_out} for r in self.runs]}


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_measured(argv, *, env=None, stdout_path=None, timeout=None) -> Run:
    """Run one process to completion with stdout to a file: wall time, CPU
    (user + sys, ``os.wait4`` of this child and what it waited for) and peak RSS.

    Peak RSS comes from ``/usr/bin/time -f %M``: the ``ru_maxrss`` that
    ``wait4`` gives for a child spawned from this (large) process starts at
    this process's own RSS (the forked or vforked address space is the
    child's until it execs), e.g. 325 MiB for ``python -c pass`` spawned
    from a 300 MiB parent; ``time`` is small, so the RSS it reports for its
    child is the command's own. Without /usr/bin/time, ``ru_maxrss`` is used
    (an upper bound, said so in the output)."""
    with open(stdout_path or os.devnull, "wb") as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(mode="r", suffix=".rss") as rss:
        full = [TIME, "-f", "%M", "-o", rss.name, *argv] if TIME else list(argv)
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, env=env)
        killed = threading.Event()

        def kill():
            killed.set()
            if TIME:            # the command under time first (time does not pass SIGKILL on)
                subprocess.run(["pkill", "-KILL", "-P", str(proc.pid)], check=False)
            proc.kill()

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        maxrss = ru.ru_maxrss * 1024                        # Linux: KiB
        if TIME:
            lines = [ln for ln in rss.read().splitlines() if ln.strip()]
            if lines and lines[-1].strip().isdigit():
                maxrss = int(lines[-1]) * 1024
    return Run(wall=wall, cpu=ru.ru_utime + ru.ru_stime, maxrss=maxrss,
               returncode=proc.returncode, timed_out=killed.is_set(), stderr=text)


def measure(argv, *, env, repeats, stdout_path=None, timeout=None, long_after=20.0) -> Measured:
    """``repeats`` runs (stopping after the first when it took over
    ``long_after`` seconds, or failed)."""
    m = Measured()
    for _ in range(repeats):
        r = run_measured(argv, env=env, stdout_path=stdout_path, timeout=timeout)
        m.runs.append(r)
        if r.returncode != 0 or r.timed_out or r.wall > long_after:
            break
    return m


def failure_text(m: Measured) -> str:
    r = m.runs[-1]
    if r.timed_out:
        return f"killed after {fmt_s(r.wall)} (timeout)"
    tail = r.stderr.strip().splitlines()[-1:] or [""]
    return f"exit {r.returncode}: {tail[0][:160]}"


def mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def exponent(n1, t1, n2, t2) -> float:
    return math.log(t2 / t1) / math.log(n2 / n1)


def fmt_n(n: int) -> str:
    e = math.log10(n)
    return f"10^{e:.0f}" if n >= 1000 and abs(e - round(e)) < 1e-9 else f"{n:,}"


def fmt_mib(b: float) -> str:
    return f"{b / GIB:.2f} GiB" if b >= GIB else f"{b / MIB:.0f} MiB"


def loadavg() -> str:
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def write_two_arm_csv(path: Path, n: int, *, seed: int = SEED, outcome: str = "x") -> None:
    """n two-arm studies of one outcome: 20-200 per arm, control risk 0.2-0.5,
    log risk ratios ~ N(0.3, 0.2) (as ``_common.make_count_table``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_t = rng.integers(20, 201, size=n)
    n_c = rng.integers(20, 201, size=n)
    p_c = rng.uniform(0.2, 0.5, size=n)
    rr = np.exp(rng.normal(0.3, 0.2, size=n))
    e_t = rng.binomial(n_t, np.clip(p_c * rr, 0.0, 0.95))
    e_c = rng.binomial(n_c, p_c)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("study_id,outcome,events_t,n_t,events_c,n_c\n")
        f.writelines(f"s{i},{outcome},{a},{b},{c},{d}\n"
                     for i, (a, b, c, d) in enumerate(zip(e_t.tolist(), n_t.tolist(),
                                                          e_c.tolist(), n_c.tolist())))


def group_csvs(table, groups: int, k: int, workdir: Path) -> tuple[Path, Path]:
    """The first ``groups`` groups of the count table as CSV: one outcome with
    the group in column ``g`` (for ``pool --by g``), and one outcome per group
    (for ``export --all``)."""
    part = table.iloc[: groups * k]
    by_g = workdir / f"groups_{groups}.csv"
    part[["study_id", "outcome", "g", "events_t", "n_t", "events_c", "n_c"]].to_csv(by_g, index=False)
    per_outcome = workdir / f"outcomes_{groups}.csv"
    p2 = part[["study_id", "outcome", "events_t", "n_t", "events_c", "n_c"]].copy()
    p2["outcome"] = "o" + part["g"].astype(str)
    p2.to_csv(per_outcome, index=False)
    return by_g, per_outcome


# ---------------------------------------------------------------------------
# Part 1: one pool of n studies through the CLI
# ---------------------------------------------------------------------------

def part_rows(a, cli, env, work: Path) -> tuple[list, list, dict]:
    sizes = a.sizes
    print(f"\n[1] msc-meta pool --data <n rows> --outcome x --json > out.json; sizes "
          f"{', '.join(fmt_n(n) for n in sizes)}; load average {loadavg()}")
    warm = work / "warm.csv"
    write_two_arm_csv(warm, min(sizes))
    run_measured([*cli, "pool", "--data", str(warm), "--outcome", "x", "--json"], env=env)
    results: list[dict] = []
    for n in sizes:
        rec = {"n": n}
        prev = next((r for r in reversed(results) if r.get("measured")), None)
        if prev and prev["best"] > SKIP_AFTER_S:
            rec["skipped"] = f"previous size took {fmt_s(prev['best'])} > {SKIP_AFTER_S:.0f} s"
        elif prev and (avail := mem_available()) and prev["maxrss"] * n / prev["n"] > 0.8 * avail:
            rec["skipped"] = (f"peak RSS extrapolated linearly ({fmt_mib(prev['maxrss'] * n / prev['n'])}) "
                              f"> 80 % of the memory available ({fmt_mib(avail)})")
        if "skipped" in rec:
            print(f"  n = {fmt_n(n)}: skipped: {rec['skipped']}")
            results.append(rec)
            continue
        data = work / f"rows_{n}.csv"
        write_two_arm_csv(data, n)
        out = work / f"out_{n}.json"
        m = measure([*cli, "pool", "--data", str(data), "--outcome", "x", "--json"], env=env,
                    repeats=a.repeats, stdout_path=out, timeout=a.timeout)
        rec.update(csv_bytes=data.stat().st_size, load=loadavg())
        if not m.ok:
            rec["failed"] = failure_text(m)
            print(f"  n = {fmt_n(n)}: FAILED: {rec['failed']}")
            results.append(rec)
            continue
        with open(out, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
        k = re.search(r'"k":\s*(\d+)', head)
        rec.update(measured=True, best=m.best, median=m.median, cpu=m.best_cpu, maxrss=m.maxrss,
                   out_bytes=out.stat().st_size, k=int(k.group(1)) if k else None, runs=m.as_dict())
        out.unlink()
        data.unlink()
        print(f"  n = {fmt_n(n)}: {fmt_s(m.best)} (min of {len(m.runs)}), CPU {fmt_s(m.best_cpu)}, "
              f"peak RSS {fmt_mib(m.maxrss)}, k = {rec['k']}; load average {rec['load']}")
        results.append(rec)

    done = [r for r in results if r.get("measured")]
    rows = []
    for i, r in enumerate(results):
        if not r.get("measured"):
            rows.append([fmt_n(r["n"]), r.get("skipped") or r.get("failed"), "", "", "", "", "", ""])
            continue
        j = done.index(r)
        e = (f"{exponent(done[j - 1]['n'], done[j - 1]['best'], r['n'], r['best']):.2f}"
             if j else "")
        r["exponent_from_previous"] = float(e) if e else None
        rows.append([fmt_n(r["n"]), fmt_s(r["best"]), f"[{fmt_s(r['median'])}]", fmt_s(r["cpu"]),
                     fmt_mib(r["maxrss"]), f"{r['maxrss'] / r['n']:,.0f}",
                     f"{r['out_bytes'] / MIB:.1f} MiB", e])
    summary = {"sizes": results}
    targets = []
    big = next((r for r in done if r["n"] == 10 ** 6), None)
    if len(done) >= 2 and not big:
        e_t = exponent(done[-2]["n"], done[-2]["best"], done[-1]["n"], done[-1]["best"])
        e_m = exponent(done[-2]["n"], done[-2]["maxrss"], done[-1]["n"], done[-1]["maxrss"])
        t6 = done[-1]["best"] * (10 ** 6 / done[-1]["n"]) ** e_t
        m6 = done[-1]["maxrss"] * (10 ** 6 / done[-1]["n"]) ** e_m
        summary["extrapolated_1e6"] = {"seconds": t6, "maxrss_bytes": m6}
    why = next((r.get("skipped") or r.get("failed") for r in results if r["n"] == 10 ** 6), None) \
        or "not run (add --big)"
    if big:
        targets.append(Target("pool 10^6 rows, whole process < 2 s", fmt_s(big["best"]), "< 2 s",
                              big["best"] < 2.0))
        targets.append(Target("pool 10^6 rows, peak RSS < 1.5 GiB", fmt_mib(big["maxrss"]),
                              "< 1.5 GiB", big["maxrss"] < 1.5 * GIB))
    else:
        t6 = summary.get("extrapolated_1e6")
        src = f"; extrapolated from {fmt_n(done[-1]['n'])}" if t6 else ""
        targets.append(Target("pool 10^6 rows, whole process < 2 s",
                              why + (f"{src}: ~{fmt_s(t6['seconds'])}" if t6 else ""), "< 2 s", None))
        targets.append(Target("pool 10^6 rows, peak RSS < 1.5 GiB",
                              why + (f"{src}: ~{fmt_mib(t6['maxrss_bytes'])}" if t6 else ""),
                              "< 1.5 GiB", None))
    if len(done) >= 2:
        e_all = exponent(done[0]["n"], done[0]["best"], done[-1]["n"], done[-1]["best"])
        summary["exponent_whole_range"] = e_all
        full = done[0]["n"] == 10 ** 3 and done[-1]["n"] == 10 ** 6
        rng_txt = f"{fmt_n(done[0]['n'])} -> {fmt_n(done[-1]['n'])}"
        rows.append(["whole range", rng_txt, "", "", "", "", "", f"{e_all:.2f}"])
        targets.append(Target(f"pool growth exponent {rng_txt}"
                              + ("" if full else " (target range 10^3 -> 10^6)"),
                              f"{e_all:.2f}", "<= 1.1", e_all <= 1.1))
    headers = ["rows n", "wall (min)", "[median]", "CPU (min)", "peak RSS", "RSS bytes/row",
               "out.json", "exponent vs previous"]
    return [("One pool of n two-arm studies: `msc-meta pool --json > out.json` (whole process)",
             headers, rows)], targets, summary


# ---------------------------------------------------------------------------
# Part 2: pool_many vs a metafor loop and a Python loop of run_pool
# ---------------------------------------------------------------------------

def split_loaded(path: Path):
    """The CSV loaded once by msc-meta's loader, then one OutcomeTable per value of ``g``."""
    from msc_meta.data import load_table
    from msc_meta.data.load import OutcomeTable

    table = load_table(path)
    by: dict[str, list] = {}
    for row in table.rows:
        by.setdefault(row.value("g"), []).append(row)
    return {g: OutcomeTable(path=table.path, columns=table.columns, rows=tuple(rows))
            for g, rows in by.items()}


def compare_self(frame, analyses: dict) -> float:
    """Largest relative difference between pool_many rows and single run_pool results."""
    worst = 0.0
    index = {str(g): i for i, g in enumerate(frame["g"])}
    for g, analysis in analyses.items():
        row = frame.iloc[index[g]]
        for name in SELF_FIELDS:
            a = row[name]
            b = getattr(analysis.result, name)
            a = float("nan") if a is None else float(a)
            b = float("nan") if b is None else float(b)
            worst = max(worst, float(rel_diff(a, b, abs_floor=1e-12)[()]))
    return worst


def compare_r(frame, r: dict) -> tuple[float, dict]:
    import numpy as np

    res = r["results"]
    index = {int(g): i for i, g in enumerate(frame["g"])}
    rows = [index[int(g)] for g in res["g"]]
    ok = np.array([x is not None for x in res["theta"]])
    worst = {}
    for ours, theirs in R_FIELDS.items():
        a = frame[ours].to_numpy(dtype=float)[rows][ok]
        b = np.array(res[theirs], dtype=float)[ok]
        # at tau² = 0 metafor's Fisher scoring stops at threshold-sized values
        # where ours is exactly 0: absolute there (1e-9 for tau², 1e-6 % for I²)
        floor = {"tau2": 1e-3, "i2": 1.0}.get(ours, 1e-12)
        worst[ours] = float(rel_diff(a, b, abs_floor=floor).max())
    return max(worst.values()), worst


def part_pool_many(a, work: Path, table, data_g: Path) -> tuple[list, list, dict]:
    import msc_meta
    from msc_meta.pooling.analysis import run_pool

    G, k = a.groups, a.k
    print(f"\n[2] pool_many on {G:,} analyses x k = {k} (two-arm counts, RR, REML); "
          f"load average {loadavg()}")
    msc_meta.pool_many(table.iloc[: 20 * k], by=["g"], method="REML")      # warm-up
    t_pm, frame = time_call(lambda: msc_meta.pool_many(table, by=["g"], method="REML"),
                            a.pm_repeats, "pool_many")
    n_err = int(frame["error"].notna().sum())
    ks = frame["k"].value_counts().to_dict()
    print(f"  pool_many: {fmt_s(t_pm.best)} (min of {a.pm_repeats}); {len(frame):,} rows, "
          f"{n_err} without a fit, k counts {ks}")

    groups = split_loaded(data_g)
    m = min(a.loop_sample, G)
    sample = list(groups)[:m]
    run_pool(groups[sample[0]], outcome="closure", method="REML")            # warm-up
    analyses = {}

    def loop():
        for g in sample:
            analyses[g] = run_pool(groups[g], outcome="closure", method="REML")

    t_loop, _ = time_call(loop, 3, "run_pool loop")
    loop_all = t_loop.best * G / m
    worst_self = compare_self(frame, analyses)
    print(f"  Python loop of run_pool: {fmt_s(t_loop.best)} for {m} groups (min of 3), "
          f"scaled x{G / m:.3g} = {fmt_s(loop_all)}")

    rows = [["pool_many (all groups, one call)", fmt_s(t_pm.best), f"[{fmt_s(t_pm.median)}]", "1"]]
    targets = []
    summary = {"groups": G, "k": k, "pool_many": t_pm, "pool_many_rows_without_fit": n_err,
               "loop_sample": m, "run_pool_loop": t_loop, "run_pool_loop_scaled": loop_all,
               "self_max_rel_diff": worst_self}
    if a.no_r or not rscript() or not has_metafor():
        print("  R/metafor not available (or --no-r): metafor baseline skipped")
        targets.append(Target("pool_many >= 100x metafor escalc()+rma() loop", "skipped",
                              ">= 100x", None))
    else:
        out = work / "r_scale.json"
        n_r = min(a.r_groups, G)
        start = time.perf_counter()
        run_command([rscript(), str(R_DIR / "scale_metafor.R"), str(data_g), str(out), str(n_r)])
        r_wall = time.perf_counter() - start
        r = json.loads(out.read_text())
        n_r = r["groups"]
        r_all = r["elapsed"] * G / n_r
        retries = sum(1 for x in r["results"]["retry"] if x == 1)
        failed = sum(1 for x in r["results"]["retry"] if x == 2)
        worst_r, per_field = compare_r(frame, r)
        scaled = "" if n_r == G else f" ({n_r:,} timed, x{G / n_r:.3g})"
        print(f"  metafor loop: {fmt_s(r['elapsed'])} inside R for {n_r:,} groups{scaled}; "
              f"{retries} retried with stepadj, {failed} failed; R process {fmt_s(r_wall)} in all")
        print("  max rel diff vs metafor by field: "
              + ", ".join(f"{f} {v:.1e}" for f, v in per_field.items()))
        rows.append([f"metafor escalc()+rma() loop, inside R{scaled}", fmt_s(r_all), "",
                     f"{r_all / t_pm.best:.1f}"])
        targets.append(Target("pool_many >= 100x metafor escalc()+rma() loop (time inside R)",
                              f"{r_all / t_pm.best:.1f}x", ">= 100x", r_all >= 100 * t_pm.best))
        summary["metafor"] = {"elapsed_inside_R": r["elapsed"], "groups": n_r, "scaled": r_all,
                              "retries_stepadj": retries, "failed": failed,
                              "max_rel_diff": per_field, "R_process_wall": r_wall}
    rows.append([f"Python loop of run_pool ({m} timed, x{G / m:.3g})", fmt_s(loop_all),
                 f"[{fmt_s(t_loop.median * G / m)}]", f"{loop_all / t_pm.best:.1f}"])
    targets.append(Target("pool_many >= 20x Python loop of run_pool", f"{loop_all / t_pm.best:.1f}x",
                          ">= 20x", loop_all >= 20 * t_pm.best))
    targets.append(Target(f"pool_many rows == run_pool alone ({m} groups, {len(SELF_FIELDS)} fields)",
                          f"max rel diff {worst_self:.1e}", "<= 1e-10", worst_self <= 1e-10))
    if "metafor" in summary:
        targets.append(Target(f"pool_many == metafor ({summary['metafor']['groups']:,} groups: "
                              "θ, se, τ², CI, Q, I², p)", f"max rel diff {worst_r:.1e}", "<= 1e-6",
                              worst_r <= 1e-6))
    headers = [f"{G:,} analyses x k = {k}, REML", "time (min)", "[median]", "x pool_many"]
    return [("pool_many vs loops", headers, rows)], targets, summary


# ---------------------------------------------------------------------------
# Part 3: the CLI on many groups (pool --by g, export --all)
# ---------------------------------------------------------------------------

def ladder(G: int) -> list[int]:
    steps = [g for g in (300, 1000, 3000, 10_000, 30_000, 100_000) if g < G]
    return steps + [G]


def part_many_groups(a, cli, env, work: Path, table, startup: Measured, pm_full: Timing):
    import msc_meta

    G, k = a.groups, a.k
    sizes = ladder(G)
    print(f"\n[3] CLI on many groups: sizes {', '.join(f'{g:,}' for g in sizes)} groups; "
          f"budget {a.budget:.0f} s per run; load average {loadavg()}")
    # name -> (argv from the two CSVs and the -o file, whether stdout is the JSON to keep)
    commands = {
        "pool --by g --json": (lambda d_g, d_o, out: [*cli, "pool", "--data", str(d_g), "--outcome",
                                                      "closure", "--by", "g", "--json"], True),
        "export --all -o out.csv": (lambda d_g, d_o, out: [*cli, "export", "--data", str(d_o), "--all",
                                                           "-o", str(out), "--force"], False),
    }
    pm_times: dict[int, float] = {G: pm_full.best}
    res: dict[str, list[dict]] = {name: [] for name in commands}
    stopped: dict[str, str] = {}
    for g in sizes:
        d_g, d_o = group_csvs(table, g, k, work)
        if g not in pm_times:
            t, _ = time_call(lambda: msc_meta.pool_many(table.iloc[: g * k], by=["g"], method="REML"),
                             2, "pool_many")
            pm_times[g] = t.best
        for name, make in commands.items():
            done = [r for r in res[name] if r.get("measured")]
            if name in stopped:
                res[name].append({"groups": g, "skipped": stopped[name]})
                continue
            if done:
                e = (exponent(done[-2]["groups"], done[-2]["best"], done[-1]["groups"], done[-1]["best"])
                     if len(done) >= 2 else 1.0)
                pred = done[-1]["best"] * (g / done[-1]["groups"]) ** max(e, 1.0)
                if pred > a.budget:
                    why = (f"predicted {fmt_s(pred)} (exponent {max(e, 1.0):.2f} from the sizes "
                           f"before) > budget {a.budget:.0f} s")
                    stopped[name] = f"not run: {g:,} groups was not run"
                    res[name].append({"groups": g, "skipped": why, "predicted": pred})
                    print(f"  {name}, {g:,} groups: not run: {why}")
                    continue
            make_argv, to_stdout = make
            argv = make_argv(d_g, d_o, work / "cli_out.csv")
            stdout_path = work / "cli_out.json" if to_stdout else None
            m = measure(argv, env=env, repeats=a.cli_repeats, stdout_path=stdout_path,
                        timeout=a.timeout, long_after=20.0)
            rec = {"groups": g, "load": loadavg()}
            if not m.ok:
                rec["failed"] = failure_text(m)
                stopped[name] = f"not run: failed at {g:,} groups"
                print(f"  {name}, {g:,} groups: FAILED: {rec['failed']}")
                res[name].append(rec)
                continue
            rec.update(measured=True, best=m.best, cpu=m.best_cpu, maxrss=m.maxrss, runs=m.as_dict())
            rec["check"] = check_cli_output(name, g, stdout_path, m.runs[-1].stderr)
            limit = 3 * (pm_times[g] + startup.best)
            rec.update(pool_many=pm_times[g], ratio=m.best / (pm_times[g] + startup.best),
                       limit=limit)
            print(f"  {name}, {g:,} groups: {fmt_s(m.best)} (min of {len(m.runs)}), peak RSS "
                  f"{fmt_mib(m.maxrss)}; pool_many {fmt_s(pm_times[g])}; "
                  f"{rec['ratio']:.1f}x (pool_many + start-up); {rec['check']}; load {rec['load']}")
            res[name].append(rec)

    rows, targets = [], []
    for name, recs in res.items():
        done = [r for r in recs if r.get("measured")]
        for r in recs:
            if not r.get("measured"):
                rows.append([name, f"{r['groups']:,}", r.get("skipped") or r.get("failed"),
                             "", "", fmt_s(pm_times[r["groups"]]), "", ""])
                continue
            j = done.index(r)
            e = f"{exponent(done[j - 1]['groups'], done[j - 1]['best'], r['groups'], r['best']):.2f}" \
                if j else ""
            rows.append([name, f"{r['groups']:,}", fmt_s(r["best"]), fmt_mib(r["maxrss"]), e,
                         fmt_s(r["pool_many"]), f"{r['ratio']:.1f}", "PASS" if r["ratio"] <= 3 else "FAIL"])
        full = next((r for r in done if r["groups"] == G), None)
        tname = f"{name} on {G:,} groups within 3x (pool_many + start-up)"
        base = pm_times[G] + startup.best
        if full:
            targets.append(Target(tname, f"{full['ratio']:.1f}x ({fmt_s(full['best'])} vs "
                                  f"{fmt_s(base)})", "<= 3x", full["ratio"] <= 3))
        elif done:
            last = done[-1]
            e = (exponent(done[-2]["groups"], done[-2]["best"], last["groups"], last["best"])
                 if len(done) >= 2 else 1.0)
            e = max(e, 1.0)           # as the budget rule: at least linear
            pred = last["best"] * (G / last["groups"]) ** e
            res[name].append({"groups": G, "extrapolated": pred, "exponent": e})
            # not measured at G: the verdict is that of the largest size run, said so
            targets.append(Target(tname, f"not run; extrapolated ~{fmt_s(pred)} = ~{pred / base:.0f}x "
                                  f"(exponent {e:.2f}); at {last['groups']:,} groups measured "
                                  f"{last['ratio']:.1f}x", "<= 3x", last["ratio"] <= 3,
                                  detail="verdict from the largest size measured"))
        else:
            targets.append(Target(tname, "no size ran", "<= 3x", None))
    headers = ["command", "groups", "wall (min)", "peak RSS", "exponent vs previous",
               "pool_many", "x (pool_many + start-up)", "<= 3x"]
    title = (f"The CLI on many groups (start-up: `msc-meta pool --json` on 3 rows, "
             f"{fmt_s(startup.best)})")
    return [(title, headers, rows)], targets, {"startup": startup.as_dict(), "pool_many": pm_times,
                                                "commands": res}


def check_cli_output(name: str, groups: int, stdout_path, stderr: str) -> str:
    if stdout_path is not None:
        size = Path(stdout_path).stat().st_size
        if size > 500 * MIB:
            return f"output {size / MIB:.0f} MiB (not parsed)"
        doc = json.loads(Path(stdout_path).read_text())
        ks = {a.get("k") for a in doc}
        return f"{len(doc):,} groups in the JSON, k {sorted(ks)}"
    m = re.search(r"(\d+) rows \((\d+) pooled\)", stderr)
    return f"{m.group(1)} rows, {m.group(2)} pooled" if m else "no summary line on stderr"


# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: rows 10^3, 10^4; 1,000 groups; fewer repeats")
    ap.add_argument("--big", action="store_true", help="add 10^6 rows to target 1")
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="rows for target 1")
    ap.add_argument("--groups", type=int, default=None, help="analyses for targets 2-3 (10,000)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=None, help="runs per CLI size (3; quick 2)")
    ap.add_argument("--loop-sample", type=int, default=300)
    ap.add_argument("--r-groups", type=int, default=None, help="groups in the R loop (1000; quick 200)")
    ap.add_argument("--budget", type=float, default=300.0,
                    help="target 3: do not run a size predicted to take longer (seconds)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="kill a CLI run after this (seconds)")
    ap.add_argument("--only", choices=["1", "2", "3"], nargs="+", default=None,
                    help="run only these parts (3 needs 2's pool_many time and runs it)")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    a.sizes = a.sizes or ([10 ** 3, 10 ** 4] if a.quick else [10 ** 3, 10 ** 4, 10 ** 5])
    if a.big and 10 ** 6 not in a.sizes:
        a.sizes.append(10 ** 6)
    a.groups = a.groups or (1000 if a.quick else 10_000)
    a.repeats = a.repeats or (2 if a.quick else 3)
    a.r_groups = a.r_groups or (200 if a.quick else 1000)
    a.pm_repeats = 2 if a.quick else 3
    a.cli_repeats = 2
    parts = set(a.only or ["1", "2", "3"])

    t_start = time.perf_counter()
    info = machine_info()
    print_machine(info)
    compile_bytecode()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    cli = [sys.executable, "-m", "msc_meta"]
    print(f"CLI: {' '.join(cli)} with PYTHONPATH={REPO / 'src'}; seed {SEED}; peak RSS from "
          + ("/usr/bin/time -f %M" if TIME else "wait4 ru_maxrss (upper bound: includes this "
                                                 "process's RSS at spawn)"))

    tables, targets, payload = [], [], {"machine": info, "seed": SEED, "argv": sys.argv[1:]}
    with tempfile.TemporaryDirectory(prefix="msc_meta_scale_") as tmp:
        work = Path(tmp)
        tiny = work / "three.csv"
        write_two_arm_csv(tiny, 3)
        start_argv = [*cli, "pool", "--data", str(tiny), "--outcome", "x", "--json"]
        run_measured(start_argv, env=env)
        startup = measure(start_argv, env=env, repeats=7, long_after=1e9)
        if not startup.ok:
            raise SystemExit(f"msc-meta pool on 3 rows failed: {failure_text(startup)}")
        print(f"CLI start-up (pool --json, 3 rows): {fmt_s(startup.best)} (min of 7), "
              f"peak RSS {fmt_mib(startup.maxrss)}")

        if "1" in parts:
            t, tg, s = part_rows(a, cli, env, work)
            tables += t
            targets += tg
            payload["rows"] = s
        if parts & {"2", "3"}:
            table = make_count_table(a.groups, a.k).rename(columns={"analysis": "g"})
            data_g, _ = group_csvs(table, a.groups, a.k, work)
            t, tg, s = part_pool_many(a, work, table, data_g)
            tables += t
            targets += tg
            payload["pool_many"] = s
            if "3" in parts:
                t, tg, s = part_many_groups(a, cli, env, work, table, startup, s["pool_many"])
                tables += t
                targets += tg
                payload["many_groups"] = s

    for title, headers, rows in tables:
        print_table(headers, rows, title=title)
    print_targets(targets)
    took = time.perf_counter() - t_start
    print(f"\nscript took {fmt_s(took)}; load average at the end {loadavg()}")
    payload.update(targets=targets, script_seconds=took, loadavg_at_end=os.getloadavg())
    if not a.no_save:
        print(f"results: {save_results('scale', payload)}")
    return 0 if all(t.ok is not False for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
