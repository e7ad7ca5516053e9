"""Text from data is text: never rich markup, never a terminal control sequence.

Before ``msc_meta.report.terminal``, ``bcg_1[red]`` printed as ``bcg_1``,
``regress --mods alloc`` printed ``alloc`` for every level, a study id
``[/]`` crashed pool, sensitivity and bias with a traceback, and a
``[link=…]`` id became a clickable link.
"""

from __future__ import annotations

import re

import pytest

HOSTILE_IDS = ("bcg_1[red]", "[/]", "[link=u]c", "d\u202eevil",
               "[bold]e", ":smile:")
COUNTS = ((4, 123, 11, 139), (6, 306, 29, 303), (3, 231, 11, 220), (62, 13598, 248, 12867),
          (33, 5069, 47, 5808), (180, 1541, 372, 1451))
LEVELS = ("random", "systematic", "alternate", "random", "systematic", "alternate")
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def hostile(tmp_table):
    rows = [dict(study_id=sid, trial=f"[t{i}]", outcome="x", events_t=a, n_t=n1, events_c=c,
                 n_c=n2, alloc=f"{level}[x]" if i == 0 else level, note="[red]note[/red]")
            for i, (sid, (a, n1, c, n2), level) in enumerate(zip(HOSTILE_IDS, COUNTS, LEVELS))]
    return tmp_table(rows)


def _shown(sid):
    return sid.replace("\u202e", "\\u202e")


@pytest.mark.parametrize("command", ["pool", "sensitivity", "bias", "fragility", "studies"])
def test_study_ids_print_as_written(run_cli, hostile, command):
    code, out, err = run_cli(command, "--data", hostile, "--outcome", "x")
    assert code == 0, err
    flat = "".join(out.split())
    for sid in HOSTILE_IDS:
        assert "".join(_shown(sid).split()) in flat, (sid, out)
    assert not RAW_CONTROL.search(out + err)


def test_regress_prints_every_factor_level(run_cli, hostile):
    code, out, err = run_cli("regress", "--data", hostile, "--outcome", "x", "--mods", "alloc")
    assert code == 0, err
    for name in ("alloc[random]", "alloc[systematic]"):
        assert name in out, out
    assert "alloc[random[x]]" in out or "random[x]" in out


def test_markup_in_notes_is_literal(run_cli, tmp_table):
    path = tmp_table([dict(study_id="a", outcome="x", events_t=3, n_t=10, events_c=1, n_c=9),
                      dict(study_id="b", outcome="x", events_t=4, n_t=10, events_c=2, n_c=9),
                      dict(study_id="c", outcome="x", pct_t="40", note="[red]counts[/red] missing")])
    code, out, err = run_cli("pool", "--data", path, "--outcome", "x")
    assert code == 0, err
    assert "[red]counts[/red] missing" in " ".join(out.split())


def test_paths_with_control_characters_are_escaped(run_cli, hostile, tmp_path):
    odd = tmp_path / "t\x1b]0;owned\x07able.csv"
    odd.write_bytes(hostile.read_bytes())
    code, out, err = run_cli("studies", "--data", odd)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;owned\\x07" in "".join(out.split())
    code, out, err = run_cli("pool", "--data", odd, "--outcome", "nothing")
    assert code == 2 and "\x1b" not in err and "\\x1b" in err and err.count("\n") == 1


def test_file_messages_escape_the_path(run_cli, hostile, tmp_path):
    target = tmp_path / "out\x1b[2J.csv"
    code, out, err = run_cli("export", "--data", hostile, "--outcome", "x", "-o", target)
    assert code == 0, err
    assert "\x1b" not in err and "\\x1b[2J" in err


def test_one_escaping_function(run_cli):
    """terminal.shown escapes exactly what errors.visible escapes, and keeps composed line breaks."""
    from msc_meta.errors import visible
    from msc_meta.report.terminal import shown

    text = "a\x1b[31mb\u200fc"
    assert shown(text) == visible(text) == "a\\x1b[31mb\\u200fc"
    assert shown("x\ny") == "x\ny"


@pytest.mark.parametrize("command", ["pool", "bayes", "fragility", "studies", "sensitivity", "bias"])
def test_json_escapes_invisible_characters_and_round_trips(run_cli, hostile, command):
    import json

    code, out, err = run_cli(command, "--data", hostile, "--outcome", "x", "--json")
    assert code == 0, err
    assert not RAW_CONTROL.search(out) and "\\u202e" in out
    text = json.dumps(json.loads(out), ensure_ascii=False)
    assert "d\u202eevil" in text
