"""CI runs exactly the README's test command, in a fresh virtual environment."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)\n```", text, flags=re.S)
    commands = [b.strip() for b in blocks if "pytest" in b]
    assert len(commands) == 1, commands
    return commands[0]


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r"^README_TEST_COMMAND='(.*)'$", script, flags=re.M)
    assert match, "README_TEST_COMMAND not found in .ci/run"
    assert match.group(1) == _readme_test_command()
    assert 'bash -c "$README_TEST_COMMAND"' in script


def test_ci_builds_a_new_venv_and_fails_without_sources():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m venv" in script and "mktemp -d" in script
    assert re.search(r'elif \[ -n "\$\{CI:-\}" \]; then.*?exit 1', script, flags=re.S)


def test_ci_checks_the_shipped_lock():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "\nmsc-meta check --lock data/results.lock.json\n" in script
    assert (ROOT / "data" / "results.lock.json").is_file()
