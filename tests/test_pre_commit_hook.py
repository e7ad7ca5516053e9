"""The pre-commit hook (.pre-commit-hooks.yaml) runs ``msc-meta check`` in another repository.

``pre-commit try-repo`` on this checkout, in a temporary git repository
holding an outcome table: the hook installs msc-meta from the checkout
(language: python; pip needs only the index it is configured with) and
passes on a clean table, fails on a planted wrong number. Skipped when
pre-commit is not installed or git is missing. Installing the hook's
environment takes a minute or two.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import bound_rows, write_table

ROOT = Path(__file__).resolve().parents[1]


def _pre_commit() -> list[str]:
    try:
        import pre_commit  # noqa: F401
    except ImportError:
        pytest.skip("pre-commit is not installed")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    return [sys.executable, "-m", "pre_commit"]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
                   cwd=repo, check=True, capture_output=True)


def _try_repo(pre_commit: list[str], repo: Path, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), PATH=os.path.dirname(sys.executable) + os.pathsep
               + os.environ.get("PATH", ""))
    return subprocess.run([*pre_commit, "try-repo", str(ROOT), "msc-meta-check", "--all-files"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=900)


def test_manifest_declares_the_hook():
    text = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    for line in ("- id: msc-meta-check", "entry: msc-meta check", "language: python",
                 "pass_filenames: false", "args: [--data, outcomes.csv]"):
        assert line in text


def test_hook_passes_a_clean_table_and_fails_a_wrong_number(tmp_path):
    pre_commit = _pre_commit()
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    write_table(repo / "outcomes.csv", bound_rows())
    _git(repo, "add", "outcomes.csv")
    _git(repo, "commit", "-q", "-m", "table")
    done = _try_repo(pre_commit, repo, tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "msc-meta check" in done.stdout and "Passed" in done.stdout

    rows = bound_rows()
    rows[0]["events_t"] = 54                       # the quote says 53
    write_table(repo / "outcomes.csv", rows)
    done = _try_repo(pre_commit, repo, tmp_path / "home")
    assert done.returncode == 1
    assert "Failed" in done.stdout
    assert 'row 2 [numbers] R / combined_remission: events_t is 54 but "53 of 107 patients (49.5%)"[1] reads 53' \
        in done.stdout
