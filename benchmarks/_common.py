"""Shared helpers of the benchmark scripts: timing, machine description, data, R, tables.

Benchmarks are scripts, not tests: they time our engine and its baselines
(metafor through ``Rscript``, pandas/statsmodels imports, a Python loop) in
the same run, check that the numbers agree, and print a table with a
PASS/FAIL per target of issue 5. The machine may be shared with other work,
so every timing is the minimum of several repeats (the least disturbed run)
and the median is shown beside it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
R_DIR = HERE / "r"
RESULTS_DIR = HERE / "results"
SEED = 20240605


# ---------------------------------------------------------------------------
# Machine and versions
# ---------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rscript() -> str | None:
    """Path of Rscript, or None (R baselines are then skipped with a message)."""
    return shutil.which("Rscript")


def r_versions() -> dict:
    exe = rscript()
    if exe is None:
        return {"R": None, "metafor": None}
    code = ('cat(paste(R.version$major, R.version$minor, sep="."), '
            'tryCatch(as.character(packageVersion("metafor")), error=function(e) "absent"), sep="\\n")')
    try:
        out = subprocess.run([exe, "-e", code], capture_output=True, text=True, timeout=120).stdout.split()
        return {"R": out[0], "metafor": out[1] if len(out) > 1 else None}
    except (OSError, subprocess.SubprocessError, IndexError):
        return {"R": None, "metafor": None}


def has_metafor() -> bool:
    return r_versions().get("metafor") not in (None, "absent")


def machine_info() -> dict:
    import numpy

    info = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="minutes"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    try:
        import scipy

        info["scipy"] = scipy.__version__
    except ImportError:
        info["scipy"] = None
    info.update(r_versions())
    info["json_writer"] = json_writer()
    return info


def json_writer() -> str:
    """Which writer ``pool --json`` uses for long study lists, in a fresh process of the
    repository's code: "compiled" (report/_interleave.c, built by setup.py) or "python"."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p))
    found = subprocess.run([sys.executable, "-c", "import msc_meta.report._interleave"],
                           env=env, capture_output=True)
    return "compiled" if found.returncode == 0 else "python"


def print_machine(info: dict) -> None:
    la = info.get("loadavg_at_start")
    print(f"date {info['date']}; {info['cores']} cores, {info['cpu']}; "
          f"load average at start {la[0]:.2f}" if la else "")
    print(f"Python {info['python']}, numpy {info['numpy']}, scipy {info['scipy']}, "
          f"R {info['R']}, metafor {info['metafor']}; JSON writer of long study lists: "
          + ("compiled (report/_interleave.c)" if info.get("json_writer") == "compiled"
             else "Python (report/_interleave.c not built: slower)"))


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------

@dataclass
class Timing:
    """Repeated wall-clock timings of one thing, in seconds."""

    name: str
    runs: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)   # user + sys of child processes

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu) if self.cpu else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def time_call(fn, repeats: int, name: str = "") -> tuple[Timing, object]:
    """Time ``fn()`` ``repeats`` times; returns the timings and the last result."""
    t = Timing(name)
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        t.runs.append(time.perf_counter() - start)
    return t, result


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_command(argv, *, env=None, cwd=None, check=True, with_cpu=False):
    """Run one process to completion; wall time from spawn to exit (and, with
    ``with_cpu``, the CPU seconds, user + sys, the process and its children used:
    less sensitive than wall time to other work on a shared machine)."""
    cpu0 = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu0
    if check and proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(map(str, argv))}\n"
                           f"{proc.stderr.strip()[-2000:]}")
    if with_cpu:
        return elapsed, cpu, proc
    return elapsed, proc


def time_commands(commands: dict, repeats: int, *, warmup: int = 1, env=None) -> dict:
    """Time several commands, interleaved round by round so that a burst of
    load from other work on the machine hits all of them alike.

    ``commands`` maps a name to argv (or to ``(argv, env)``). Each is run
    ``warmup`` times first, untimed, so the OS file cache is warm for all:
    "cold" below means a fresh process, not a cold disk.
    Returns name -> (Timing, last CompletedProcess).
    """
    specs = {name: (c if isinstance(c, tuple) else (c, env)) for name, c in commands.items()}
    for _ in range(warmup):
        for name, (argv, e) in specs.items():
            run_command(argv, env=e)
    out = {name: (Timing(name), None) for name in specs}
    for _ in range(repeats):
        for name, (argv, e) in specs.items():
            elapsed, cpu, proc = run_command(argv, env=e, with_cpu=True)
            timing, _ = out[name]
            timing.runs.append(elapsed)
            timing.cpu.append(cpu)
            out[name] = (timing, proc)
    return out


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def make_batch(groups: int, k: int, *, seed: int = SEED, tau2: float = 0.05, mu: float = 0.3):
    """Fixed-seed random-effects data: ``groups`` analyses of ``k`` studies.

    Within-study variances resemble log risk ratios of trials with 20-400
    participants (``v ~ 4/n``), true effects vary with ``tau2`` around a
    group mean drawn around ``mu``. Returns ``(Y, V)``, both (groups, k).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    n = rng.integers(20, 401, size=(groups, k))
    V = 4.0 / n * rng.uniform(0.8, 1.25, size=(groups, k))
    theta_g = rng.normal(mu, 0.2, size=(groups, 1))
    Y = rng.normal(theta_g, np.sqrt(V + tau2))
    return Y, V


def make_count_table(groups: int, k: int, *, seed: int = SEED):
    """Fixed-seed two-arm count data in the outcome-table shape (pandas),
    ``groups`` analyses of ``k`` trials with 20-200 per arm, column
    ``analysis`` naming the group (for ``pool_many``)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_t = rng.integers(20, 201, size=(groups, k))
    n_c = rng.integers(20, 201, size=(groups, k))
    p_c = rng.uniform(0.2, 0.5, size=(groups, 1))
    rr = np.exp(rng.normal(0.3, 0.2, size=(groups, k)))
    e_t = rng.binomial(n_t, np.clip(p_c * rr, 0.0, 0.95))
    e_c = rng.binomial(n_c, np.broadcast_to(p_c, (groups, k)))
    return pd.DataFrame({
        "analysis": np.repeat(np.arange(groups), k),
        "study_id": [f"g{g}_s{i}" for g in range(groups) for i in range(k)],
        "outcome": "closure",
        "events_t": e_t.reshape(-1), "n_t": n_t.reshape(-1),
        "events_c": e_c.reshape(-1), "n_c": n_c.reshape(-1),
    })


def write_matrix_csv(path: Path, Y, V) -> None:
    """Long CSV ``group,yi,vi`` with 17 significant digits, for R to read back exactly."""
    import numpy as np

    G, k = Y.shape
    group = np.repeat(np.arange(1, G + 1), k)
    data = np.column_stack([group, Y.reshape(-1), V.reshape(-1)])
    np.savetxt(path, data, delimiter=",", header="group,yi,vi", comments="",
               fmt=["%d", "%.17g", "%.17g"])


def rel_diff(a, b, *, abs_floor: float = 1e-10):
    """Elementwise |a - b| / max(|b|, abs_floor), NaN-aware (NaN on both sides agrees)."""
    import numpy as np

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        d = np.abs(a - b) / np.maximum(np.abs(b), abs_floor)
    d = np.where(both_nan, 0.0, d)
    return np.where(np.isnan(d), np.inf, d)


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

@dataclass
class Target:
    """One line of the PASS/FAIL table."""

    name: str
    measured: str
    limit: str
    ok: bool | None            # None: skipped (e.g. no R)
    detail: str = ""

    @property
    def verdict(self) -> str:
        return "SKIP" if self.ok is None else ("PASS" if self.ok else "FAIL")


def print_table(headers, rows, *, title=None) -> str:
    """Plain fixed-width (Markdown-compatible) table; returns the text it printed."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    text = []
    if title:
        text.append(f"\n{title}")
    text.append(line([str(h) for h in headers]))
    text.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    text.extend(line(r) for r in rows)
    out = "\n".join(text)
    print(out)
    return out


def print_targets(targets: list[Target]) -> str:
    return print_table(["target", "measured", "limit", "result"],
                       [[t.name, t.measured, t.limit, t.verdict] for t in targets],
                       title="Targets (issue 5)")


def save_results(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    return path


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, Timing):
        return {"best": o.best, "median": o.median, "runs": o.runs,
                "best_cpu": o.best_cpu if o.cpu else None, "cpu": o.cpu}
    if isinstance(o, Target):
        return {"name": o.name, "measured": o.measured, "limit": o.limit, "result": o.verdict,
                "detail": o.detail}
    raise TypeError(type(o))


def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def python_exe() -> str:
    return sys.executable


def console_script(name: str = "msc-meta") -> list[str]:
    """The installed console script next to this interpreter (not a pyenv shim,
    whose bash wrapper would add its own start-up), else ``python -m msc_meta``."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return [str(candidate)]
    return [sys.executable, "-m", "msc_meta"]
