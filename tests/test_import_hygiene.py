"""The ``pool`` path must not import what it does not use (issue 5).

Each check runs in a fresh interpreter (``sys.modules`` of the test process
is polluted by other tests) and asserts on module names only: no timing
here, speed lives in ``benchmarks/``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# scipy too: the pool path uses msc_meta._dist, since `import scipy.special` alone costs ~330 ms
FORBIDDEN = ("pandas", "statsmodels", "matplotlib", "scipy")

POOL_PATH_MODULES = (
    "msc_meta",
    "msc_meta.cli",
    "msc_meta.cli.options",
    "msc_meta.cli.pool",
    "msc_meta.data",
    "msc_meta.effects",
    "msc_meta.pooling.analysis",
    "msc_meta.pooling.rma",
    "msc_meta.pooling.tau2",
    "msc_meta.pooling.mh",
    "msc_meta.pooling.exact",
    "msc_meta.pooling.glmm",       # guidance fits it on sparse two-arm data
    "msc_meta.pooling.results",
    "msc_meta.report.json_out",
    "msc_meta.report.forest_table",
    "msc_meta._dist",
)

CSV = """\
study_id,outcome,timepoint_weeks,events_t,n_t,events_c,n_c
a,closure,24,5,10,2,10
b,closure,24,7,12,3,11
c,closure,24,4,9,4,10
d,closure,24,9,15,2,14
e,healing,24,3,8,,
f,healing,24,6,11,,
g,healing,24,2,7,,
h,healing,24,5,9,,
"""


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _loaded(names_code: str) -> dict:
    """Run code, then report which forbidden / heavy modules ended up loaded."""
    out = _run(names_code + textwrap.dedent(f"""
        import json, sys
        print(json.dumps({{
            "forbidden": [m for m in {FORBIDDEN!r} if m in sys.modules],
            "numpy": "numpy" in sys.modules,
            "scipy_special": "scipy.special" in sys.modules,
            "pooling": [m for m in sys.modules if m.startswith("msc_meta.pooling")],
        }}))
    """))
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("module", POOL_PATH_MODULES)
def test_pool_path_module_imports_nothing_heavy(module):
    try:
        __import__(module)
    except ImportError:
        pytest.skip(f"{module} is not written yet")
    loaded = _loaded(f"import {module}\n")
    assert loaded["forbidden"] == [], f"importing {module} pulls in {loaded['forbidden']}"


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "outcomes.csv"
    path.write_text(CSV)
    return path


def _pool_run(args, require_ok=True) -> str:
    # run the real command in-process, then look at sys.modules
    check = ("assert exit.code in (0, None), exit.code" if require_ok else "pass")
    printed = ('assert buf.getvalue().strip(), "pool printed nothing"' if require_ok else "")
    return textwrap.dedent(f"""
        import contextlib, io
        from msc_meta.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
            try:
                main({args!r})
            except SystemExit as exit:
                {check}
        {printed}
    """)


@pytest.mark.parametrize("extra", [
    ["--json"],                                 # JSON document
    [],                                         # forest-style table
    ["--method", "DL", "--hksj", "--json"],
    ["--method", "MH", "--json"],
    ["--pi", "z", "--json"],
])
def test_pool_command_comparisons(table, extra):
    loaded = _loaded(_pool_run(["pool", "--data", str(table), "--outcome", "closure", *extra]))
    assert loaded["forbidden"] == []


@pytest.mark.parametrize("extra", [["--json"], [], ["--measure", "PFT", "--json"]])
def test_pool_command_single_arm(table, extra):
    loaded = _loaded(_pool_run(["pool", "--data", str(table), "--outcome", "healing", *extra]))
    assert loaded["forbidden"] == []


def test_pool_by_imports_nothing_heavy(table):
    loaded = _loaded(_pool_run(["pool", "--data", str(table), "--outcome", "closure",
                                "--by", "study_id", "--json"]))
    assert loaded["forbidden"] == []


def test_pool_on_shipped_table_imports_nothing_heavy():
    """The default data: the curated table shipped in the package (whatever
    the curated rows of this outcome currently allow, the imports must stay light)."""
    loaded = _loaded(_pool_run(["pool", "--outcome", "ae_malignancy", "--timepoint", "208", "--json"],
                               require_ok=False))
    assert loaded["forbidden"] == []


def test_pool_glmm_imports_nothing_heavy(tmp_path):
    """The binomial GLMMs are numpy only: `pool --method GLMM` imports no scipy either."""
    path = tmp_path / "sparse.csv"
    path.write_text("study_id,outcome,timepoint_weeks,events_t,n_t,events_c,n_c\n"
                    "a,closure,24,3,10,1,10\nb,closure,24,0,12,2,11\nc,closure,24,5,5,4,6\n")
    loaded = _loaded(_pool_run(["pool", "--data", str(path), "--outcome", "closure", "--measure", "OR",
                                "--method", "GLMM", "--json"]))
    assert "msc_meta.pooling.glmm" in loaded["pooling"]       # the fit ran
    assert loaded["forbidden"] == []


def test_help_imports_no_numpy():
    loaded = _loaded(textwrap.dedent("""
        import contextlib, io
        from msc_meta.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["--help"])
            except SystemExit:
                pass
    """))
    assert not loaded["numpy"], "msc-meta --help imports numpy"
    assert loaded["pooling"] == []
    assert loaded["forbidden"] == []


def test_package_import_is_light():
    loaded = _loaded("import msc_meta\n")
    assert not loaded["numpy"] and loaded["forbidden"] == []
