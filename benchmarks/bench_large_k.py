"""One analysis with very many studies: k = 10^6 by REML in under 2 s, memory
linear in k (issue 5, target 2).

Each size runs in its own fresh process (so the peak resident set size,
``ru_maxrss``, belongs to that size alone). In it: fixed-seed data
(benchmarks/_common.make_batch with one group), then ``pool_rma`` (the
single-pool function: fit plus the PoolResult with a million weights) and
``fit_batch`` on the one row, minimum of N runs; then one more run under
``tracemalloc`` (numpy reports its buffers to it) for the peak memory the
fit allocates beyond its input.

Correctness at this size cannot come from metafor: ``rma()`` builds k x k
matrices (8 TB at k = 10^6). Instead the REML estimating equation is
checked at the returned tau² (score / information below 1e-9, computed here
independently of the engine), and metafor is compared at k = 2000 when R is
present.

Usage: python benchmarks/bench_large_k.py [--sizes 100000 1000000 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    R_DIR, SEED, Target, fmt_s, has_metafor, machine_info, make_batch, print_machine, print_table,
    print_targets, rel_diff, rscript, run_command, save_results, write_matrix_csv,
)


def reml_score(y, v, tau2) -> float:
    """REML score for tau² scaled by its expected information (metafor rma.uni:
    ``y'PPy - tr(P)`` over ``tr(PP)``, intercept-only P = W - w w'/Σw).
    At an interior REML solution it is 0; at the boundary tau² = 0 it is <= 0."""
    w = 1.0 / (v + tau2)
    sw = w.sum()
    mu = (w * y).sum() / sw
    py = w * (y - mu)
    w2 = (w * w).sum()
    tr_p = sw - w2 / sw
    tr_pp = w2 - 2.0 * (w ** 3).sum() / sw + w2 * w2 / sw ** 2
    return float(((py * py).sum() - tr_p) / tr_pp)


def child(k: int, repeats: int) -> dict:
    """Runs in the subprocess for one size."""
    import tracemalloc

    from msc_meta.pooling.rma import fit_batch, pool_rma

    Y, V = make_batch(1, k)
    y, v = Y[0], V[0]
    fit_batch(Y[:, :100], V[:, :100])                 # warm-up: first-call costs
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times_pool, times_fit = [], []
    result = fit = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = pool_rma(y, v, method="REML")
        times_pool.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fit = fit_batch(Y, V, method="REML")
        times_fit.append(time.perf_counter() - t0)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    del result
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result = pool_rma(y, v, method="REML")
    peak_pool = tracemalloc.get_traced_memory()[1] - base
    del result
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fit2 = fit_batch(Y, V, method="REML")
    peak_fit = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del fit2
    return {
        "k": k, "pool_rma": times_pool, "fit_batch": times_fit,
        "rss_peak_before_fit": rss_before, "rss_peak_after": rss_after,
        "traced_peak_pool_rma": peak_pool, "traced_peak_fit_batch": peak_fit,
        "input_bytes": int(Y.nbytes + V.nbytes),
        "tau2": float(fit.tau2[0]), "theta": float(fit.theta[0]), "se": float(fit.se[0]),
        "iterations": int(fit.iterations[0]), "converged": bool(fit.converged[0]),
        "score": reml_score(y, v, float(fit.tau2[0])),
    }


def run_child(k: int, repeats: int) -> dict:
    _, proc = run_command([sys.executable, __file__, "--child", str(k), "--repeats", str(repeats)])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def metafor_check(k: int) -> dict | None:
    """fit_batch vs metafor rma(method="REML") at a size metafor can hold."""
    if not rscript() or not has_metafor():
        return None
    from msc_meta.pooling.rma import fit_batch
    from msc_meta.pooling.tau2 import DEFAULT_MAXITER, DEFAULT_TOL

    Y, V = make_batch(1, k, seed=SEED + 7)
    fit = fit_batch(Y, V, method="REML")
    with tempfile.TemporaryDirectory(prefix="msc_meta_bench_") as tmp:
        data = Path(tmp) / "one.csv"
        out = Path(tmp) / "out.json"
        write_matrix_csv(data, Y, V)
        run_command([rscript(), str(R_DIR / "batch_metafor.R"), str(data), str(out),
                     str(DEFAULT_TOL), str(DEFAULT_MAXITER)])
        r = json.loads(out.read_text())
    res = r["results"]
    diffs = {name: float(rel_diff(getattr(fit, ours)[0], float(res[name][0]), abs_floor=1e-12))
             for ours, name in (("theta", "theta"), ("se", "se"), ("tau2", "tau2"),
                                ("theta_ci_low", "ci_low"), ("theta_ci_high", "ci_high"))}
    return {"k": k, "max_rel_diff": max(diffs.values()), "by_field": diffs,
            "metafor_elapsed_inside_R": r["elapsed"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--metafor-k", type=int, default=2000)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    if a.child is not None:
        print(json.dumps(child(a.child, a.repeats)))
        return 0

    info = machine_info()
    print_machine(info)
    print(f"data: one analysis, fixed seed {SEED}, tau² = 0.05, v ~ 4/n; REML; "
          f"each size in a fresh process, min of {a.repeats} runs")
    runs = [run_child(k, a.repeats) for k in sorted(a.sizes)]
    rows = []
    for r in runs:
        rows.append([f"{r['k']:,}", fmt_s(min(r["pool_rma"])), fmt_s(min(r["fit_batch"])),
                     f"{r['iterations']}", f"{r['traced_peak_pool_rma'] / 2**20:.0f} MiB",
                     f"{r['traced_peak_pool_rma'] / r['k']:.0f}",
                     f"{r['traced_peak_fit_batch'] / r['k']:.0f}",
                     f"{(r['rss_peak_after']) / 2**20:.0f} MiB",
                     f"{r['score']:.1e}"])
    print_table(["k", "pool_rma", "fit_batch", "REML iter", "peak alloc (pool_rma)", "bytes/study pool_rma",
                 "bytes/study fit_batch", "peak RSS (process)", "REML score/info"], rows,
                title="One large analysis")
    targets = []
    big = max(runs, key=lambda r: r["k"])
    t_big = min(big["pool_rma"])
    targets.append(Target(f"pool_rma, k = {big['k']:,}, REML < 2 s", fmt_s(t_big), "< 2 s",
                          t_big < 2.0 and big["converged"]))
    if len(runs) >= 2:
        small = min(runs, key=lambda r: r["k"])
        ratio_k = big["k"] / small["k"]
        ratio_mem = big["traced_peak_pool_rma"] / small["traced_peak_pool_rma"]
        per_small = small["traced_peak_pool_rma"] / small["k"]
        per_big = big["traced_peak_pool_rma"] / big["k"]
        linear = 0.5 * ratio_k <= ratio_mem <= 1.5 * ratio_k
        targets.append(Target("memory linear in k (peak allocation ratio / k ratio)",
                              f"{ratio_mem / ratio_k:.2f} ({per_small:.0f} -> {per_big:.0f} bytes/study)",
                              "0.5 .. 1.5", linear))
    worst_score = max(abs(r["score"]) if r["tau2"] > 0 else max(r["score"], 0.0) for r in runs)
    targets.append(Target("REML equation holds at the returned tau²", f"{worst_score:.1e}", "<= 1e-9",
                          worst_score <= 1e-9))
    mf = metafor_check(a.metafor_k) if a.metafor_k else None
    if mf is None:
        targets.append(Target("fit_batch == metafor at a size metafor holds", "no R", "<= 1e-6", None))
    else:
        targets.append(Target(f"fit_batch == metafor rma() at k = {mf['k']}",
                              f"max rel diff {mf['max_rel_diff']:.1e}", "<= 1e-6", mf["max_rel_diff"] <= 1e-6))
    print_targets(targets)
    if not a.no_save:
        save_results("large_k", {"machine": info, "runs": runs, "metafor": mf, "targets": targets})
    return 0 if all(t.ok is not False for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
