"""Output under hostile conditions (issues 10.5, 11.1, 11.6).

Files: a user's file is never lost (no replace without --force, also when
the file appears while msc-meta writes or when several exports race), the
mode of a replaced file is kept, no temporary file survives a catchable
signal, long names work, bad paths get a clear line. stdout: ``-o -``
writes there; a full disk, a closed descriptor or a broken pipe end the run
with one line (or quietly, for a pipe) and a non-zero exit code, never a
traceback and never a silent exit 0. Real processes wherever it matters.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from msc_meta import io_safe
from msc_meta.errors import UsageError

SELECT = ("--outcome", "fistula_closure", "--timepoint", "208", "--unit", "patient")
EXPORT = ("export", *SELECT)


def _msc(*args) -> list[str]:
    return [sys.executable, "-m", "msc_meta", *[str(a) for a in args]]


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    return subprocess.run(_msc(*args), text=True, timeout=120, **kwargs)


def _temps(folder: Path) -> list[str]:
    return [p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def reference_csv() -> str:
    """The export of SELECT, as `-o -` prints it."""
    done = _run(*EXPORT, "-o", "-")
    assert done.returncode == 0, done.stderr
    return done.stdout


# ----------------------------------------------------------------------- paths and messages

def test_empty_name_is_named(run_cli):
    code, out, err = run_cli(*EXPORT, "-o", "")
    assert code == 2 and out == ""
    assert err.strip() == ("msc-meta: error: the output file name is empty; give a file name "
                           "(or - for standard output where the command allows it)")


@pytest.mark.parametrize("under", ["x.csv", "sub/x.csv"])
def test_a_file_used_as_folder_is_named(run_cli, tmp_path, under):
    afile = tmp_path / "afile"
    afile.write_text("keep", encoding="utf-8")
    code, out, err = run_cli(*EXPORT, "-o", afile / under)
    assert code == 2 and out == ""
    assert err.strip() == f"msc-meta: error: {afile / under}: {afile} is a file, not a folder"
    assert afile.read_text(encoding="utf-8") == "keep"


def test_forest_names_a_file_used_as_folder(run_cli, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("keep", encoding="utf-8")
    code, _, err = run_cli("forest", *SELECT, "-o", afile / "f.png")
    assert code == 2 and "is a file, not a folder" in err


def test_missing_folder_still_says_so(run_cli, tmp_path):
    code, _, err = run_cli(*EXPORT, "-o", tmp_path / "nope" / "x.csv")
    assert code == 2 and f"the folder {tmp_path / 'nope'} does not exist" in err


@pytest.mark.parametrize("name", ["a" * 246 + ".csv", "é" * 125 + ".csv"])
def test_longest_legal_names_work(run_cli, tmp_path, name):
    """250 characters (and 254 bytes of UTF-8): the temporary name is shortened, not the target's."""
    assert len(os.fsencode(name)) <= 255
    target = tmp_path / name
    code, _, err = run_cli(*EXPORT, "-o", target)
    assert code == 0, err
    assert target.read_text(encoding="utf-8").startswith("analysis,row_type,")
    assert _temps(tmp_path) == []
    code, _, err = run_cli(*EXPORT, "-o", target)
    assert code == 2 and "file exists; use --force" in err


def test_temp_prefix_fits_the_name_limit(tmp_path):
    prefix = io_safe.temp_prefix("b" * 250, tmp_path)
    assert len(os.fsencode(prefix)) + 8 + len(".tmp") <= 255
    assert io_safe.temp_prefix("short.csv", tmp_path) == ".short.csv."


# ----------------------------------------------------------------------- never replace without --force

def test_a_file_appearing_during_the_write_survives(tmp_path):
    target = tmp_path / "out.csv"

    def write(stream):
        stream.write("ours\n")
        target.write_text("theirs\n", encoding="utf-8")      # someone else, meanwhile

    with pytest.raises(UsageError, match="file exists; use --force"):
        io_safe.write_output(target, write)
    assert target.read_text(encoding="utf-8") == "theirs\n"
    assert _temps(tmp_path) == []


def test_a_file_appearing_during_an_export_survives(run_cli, tmp_path, monkeypatch):
    from msc_meta.report import export

    target = tmp_path / "out.csv"
    real = export.write_csv

    def racing_write_csv(rows, stream, *args, **kwargs):
        target.write_text("theirs\n", encoding="utf-8")
        real(rows, stream, *args, **kwargs)

    monkeypatch.setattr(export, "write_csv", racing_write_csv)
    code, out, err = run_cli(*EXPORT, "-o", target)
    assert code == 2 and out == ""
    assert err.strip() == f"msc-meta: error: {target}: file exists; use --force to overwrite it"
    assert target.read_text(encoding="utf-8") == "theirs\n"
    assert _temps(tmp_path) == []


def test_a_symlink_appearing_during_the_write_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    target = tmp_path / "out.csv"

    def write(stream):
        stream.write("ours\n")
        target.symlink_to(victim)

    with pytest.raises(UsageError, match="file exists"):
        io_safe.write_output(target, write)
    assert target.is_symlink() and victim.read_text(encoding="utf-8") == "precious"


def test_symlinks_are_never_written_through(run_cli, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    code, _, err = run_cli(*EXPORT, "-o", link)
    assert code == 2 and "file exists" in err
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere.csv")
    code, _, err = run_cli(*EXPORT, "-o", dangling)
    assert code == 2 and "file exists" in err and not (tmp_path / "nowhere.csv").exists()
    code, _, err = run_cli(*EXPORT, "-o", link, "--force")
    assert code == 0, err
    assert not link.is_symlink() and link.read_text(encoding="utf-8").startswith("analysis,")
    assert victim.read_text(encoding="utf-8") == "precious"


def test_without_hard_links_an_exclusive_create_is_used(tmp_path, monkeypatch):
    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "out.csv"
    io_safe.write_output(target, lambda s: s.write("first\n"))
    assert target.read_text(encoding="utf-8") == "first\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask

    def write(stream):
        stream.write("second\n")
        target.write_text("theirs\n", encoding="utf-8")

    target.unlink()
    with pytest.raises(UsageError, match="file exists"):
        io_safe.write_output(target, write)
    assert target.read_text(encoding="utf-8") == "theirs\n"
    assert _temps(tmp_path) == []


# Children that pass the "file exists" check, then wait for each other before
# writing, so that they really race at the publish step.
_BARRIER_EXPORT = r"""
import sys, time
from pathlib import Path
import msc_meta.report.export as export

barrier, me, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
real = export.write_csv

def write_csv(rows, stream, *args, **kwargs):
    (barrier / me).touch()
    deadline = time.monotonic() + 60
    while len(list(barrier.iterdir())) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    real(rows, stream, *args, **kwargs)

export.write_csv = write_csv
from msc_meta.cli import main
main(sys.argv[4:])
"""


@pytest.mark.parametrize("barrier", [False, True], ids=["free-for-all", "all-past-the-check"])
def test_concurrent_exports_to_one_new_path(tmp_path, reference_csv, barrier):
    n = 4
    target = tmp_path / "race.csv"
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = []
    for i in range(n):
        if barrier:
            argv = [sys.executable, "-c", _BARRIER_EXPORT, str(gate), str(i), str(n),
                    *EXPORT, "-o", str(target)]
        else:
            argv = _msc(*EXPORT, "-o", target)
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, out, err))
    codes = sorted(code for code, _, _ in results)
    assert codes == [0] + [2] * (n - 1), results
    for code, out, err in results:
        assert out == "" and "Traceback" not in err
        if code == 2:
            assert err.strip() == f"msc-meta: error: {target}: file exists; use --force to overwrite it"
    assert target.read_text(encoding="utf-8") == reference_csv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate", "race.csv"]


# ----------------------------------------------------------------------- --force keeps the mode

@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_force_keeps_the_mode_of_the_replaced_file(run_cli, tmp_path, mode):
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    target.chmod(mode)
    code, _, err = run_cli(*EXPORT, "-o", target, "--force")
    assert code == 0, err
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert target.read_text(encoding="utf-8").startswith("analysis,")


def test_forest_force_keeps_the_mode(run_cli, tmp_path):
    target = tmp_path / "f.svg"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o600)
    code, _, err = run_cli("forest", *SELECT, "-o", target, "--force")
    assert code == 0, err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text(encoding="utf-8").startswith("<?xml")


# ----------------------------------------------------------------------- signals

# An export whose CSV writer stops half-way (flushed to the temporary file)
# and waits for a "go" file, so that a signal arrives mid-write.
_STALLED_EXPORT = r"""
import io, os, sys, time
from pathlib import Path
import msc_meta.report.export as export

real = export.write_csv
marker, go = Path(sys.argv[1]), Path(sys.argv[2])

def write_csv(rows, stream, *args, **kwargs):
    buffer = io.StringIO()
    real(rows, buffer, *args, **kwargs)
    text = buffer.getvalue()
    stream.write(text[: len(text) // 2])
    stream.flush()
    os.fsync(stream.fileno())
    marker.write_text("half written")
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    stream.write(text[len(text) // 2:])

export.write_csv = write_csv
from msc_meta.cli import main
main(sys.argv[3:])
"""

OLD = "analysis,row_type\nprevious,result\n"


def _stalled_export(tmp_path, sig, *, ignore=None):
    """Export over an existing file with --force; send ``sig`` mid-write, then let it go on."""
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "results.csv"
    target.write_text(OLD, encoding="utf-8")
    marker, go = tmp_path / "marker", tmp_path / "go"

    def preexec():
        if ignore is not None:
            signal.signal(ignore, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, "-c", _STALLED_EXPORT, str(marker), str(go),
                             *EXPORT, "-o", str(target), "--force"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.02)
        assert len(_temps(folder)) == 1
        assert target.read_text(encoding="utf-8") == OLD
        os.kill(proc.pid, sig)
        time.sleep(0.3)
        go.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err, folder


@pytest.mark.parametrize("name", ["SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGINT"])
def test_signal_mid_write_removes_the_temporary_file(tmp_path, name):
    sig = getattr(signal, name)
    code, err, folder = _stalled_export(tmp_path, sig)
    assert code == 128 + sig, (code, err)          # as a shell reports a signal death
    assert "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == ["results.csv"]
    assert (folder / "results.csv").read_text(encoding="utf-8") == OLD


def test_sigpipe_is_ignored_and_the_export_completes(tmp_path, reference_csv):
    code, err, folder = _stalled_export(tmp_path, signal.SIGPIPE)
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == ["results.csv"]
    assert (folder / "results.csv").read_text(encoding="utf-8") == reference_csv


def test_an_ignored_sighup_stays_ignored(tmp_path, reference_csv):
    """Under nohup (SIGHUP ignored) a hang-up does not stop the export."""
    code, err, folder = _stalled_export(tmp_path, signal.SIGHUP, ignore=signal.SIGHUP)
    assert code == 0, err
    assert (folder / "results.csv").read_text(encoding="utf-8") == reference_csv
    assert _temps(folder) == []


# ----------------------------------------------------------------------- -o - (stdout)

def test_export_to_stdout_csv_and_json(tmp_path, reference_csv):
    target = tmp_path / "x.csv"
    done = _run(*EXPORT, "-o", target)
    assert done.returncode == 0, done.stderr
    assert target.read_text(encoding="utf-8") == reference_csv
    done = _run(*EXPORT, "-o", "-", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["row_type"] for r in rows] == [r["row_type"] for r in
                                              csv.DictReader(io.StringIO(reference_csv))]
    assert "written to stdout" in done.stderr
    assert not (tmp_path / "-").exists()


def test_export_to_stdout_in_process(run_cli, reference_csv):
    code, out, err = run_cli(*EXPORT, "-o", "-")
    assert code == 0, err
    assert out == reference_csv


def test_stdout_gets_nothing_when_building_the_document_fails(capsys):
    def half_then_fail(stream):
        stream.write("analysis,row_type\nhalf,")
        raise RuntimeError("simulated")

    with pytest.raises(RuntimeError, match="simulated"):
        io_safe.write_output("-", half_then_fail)
    assert capsys.readouterr().out == ""


def test_forest_to_stdout_is_svg(tmp_path):
    done = subprocess.run(_msc("forest", *SELECT, "-o", "-"), capture_output=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"<?xml") and b"<svg" in done.stdout
    assert done.stdout.rstrip().endswith(b"</svg>")
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("command, extra", [("bias", ()), ("regress", ("--mods", "log10(dose_cells)"))])
def test_plots_beside_a_table_refuse_stdout(run_cli, command, extra):
    code, out, err = run_cli(command, *SELECT, *extra, "-o", "-")
    assert code == 2 and out == ""
    assert f"stdout carries the {command} results" in err


def test_help_documents_stdout():
    for command in ("export", "forest"):
        text = " ".join(_run(command, "--help").stdout.split())
        assert "or - for stdout" in text or "or - to write SVG to stdout" in text, command


# ----------------------------------------------------------------------- stdout failures

STDOUT_COMMANDS = {
    "pool": ("pool", *SELECT),
    "pool --json": ("pool", *SELECT, "--json"),
    "studies": ("studies",),
    "studies --json": ("studies", "--json"),
    "check": ("check",),
    "check --json": ("check", "--json"),
    "export -o -": (*EXPORT, "-o", "-"),
    "export -o - json": (*EXPORT, "-o", "-", "--format", "json"),
}


@pytest.mark.parametrize("name", list(STDOUT_COMMANDS))
def test_full_disk_is_one_line_and_exit_1(name):
    with open("/dev/full", "w") as full:
        done = subprocess.run(_msc(*STDOUT_COMMANDS[name]), stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr == "msc-meta: error: cannot write to stdout: No space left on device\n"


def _close_stdout():
    os.close(1)


@pytest.mark.parametrize("name", list(STDOUT_COMMANDS))
def test_closed_stdout_is_one_line_and_exit_1(name):
    done = subprocess.run(_msc(*STDOUT_COMMANDS[name]), stderr=subprocess.PIPE, text=True,
                          timeout=120, preexec_fn=_close_stdout)
    assert done.returncode == 1
    assert done.stderr == "msc-meta: error: cannot write to stdout: Bad file descriptor\n"


@pytest.mark.parametrize("name", list(STDOUT_COMMANDS))
def test_broken_pipe_is_quiet_and_exit_1(name):
    read_end, write_end = os.pipe()
    os.close(read_end)          # the reader is gone before the first write
    try:
        done = subprocess.run(_msc(*STDOUT_COMMANDS[name]), stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == ""


def test_closed_stdout_does_not_stop_a_file_export(tmp_path, reference_csv):
    """Only a write to stdout fails: an export to a file needs no stdout, and
    no file of the run may land on the free descriptor 1."""
    target = tmp_path / "x.csv"
    done = subprocess.run(_msc(*EXPORT, "-o", target), stderr=subprocess.PIPE, text=True,
                          timeout=120, preexec_fn=_close_stdout)
    assert done.returncode == 0, done.stderr
    assert target.read_text(encoding="utf-8") == reference_csv


def test_stdout_is_unharmed_when_all_goes_well():
    done = _run("pool", *SELECT, "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["k"] >= 1


def test_escape_invisible_escapes_exactly_the_invisible_characters():
    """Every character below U+0020 or not printable ASCII is escaped iff is_invisible, as
    the one-character-at-a-time definition (the fast path tests distinct characters once)."""
    from msc_meta.errors import is_invisible
    from msc_meta.report.terminal import escape_invisible

    def reference(text):
        out = []
        for ch in text:
            if (ch == "\n" or " " <= ch <= "~") or not is_invisible(ch):
                out.append(ch)
            elif ord(ch) > 0xFFFF:
                c = ord(ch) - 0x10000
                out.append(f"\\u{0xD800 + (c >> 10):04x}\\u{0xDC00 + (c & 0x3FF):04x}")
            else:
                out.append(f"\\u{ord(ch):04x}")
        return "".join(out)

    text = "τ² x\u202ey\u200b z\U000e0001 \ud800 é\u2028 \t\x01\x7f]\\-^ [\u00ad] τ²\n" * 3
    assert escape_invisible(text) == reference(text)
    assert escape_invisible("I² = 40%") == "I² = 40%"
