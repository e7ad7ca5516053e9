"""Safe output: every file msc-meta writes, and its standard output.

One function publishes a file, :func:`write_output`; every command that
takes ``-o FILE`` (export, forest, bias, regress) goes through it:

- ``-o -`` writes to standard output instead of a file (the whole document
  is built in memory first, so a failure while building it prints nothing);
- otherwise the document is written into a temporary file in the target's
  folder, flushed to disk, and only then published under its name:

  * without ``force``, with ``os.link(tmp, target)``, which fails if
    anything (a file, a folder, a symlink) appeared at the target meanwhile,
    so a file created by someone else, or by a second export racing this
    one, is never replaced; on file systems without hard links, by copying
    into ``open(target, 'x')`` (exclusive create: same guarantee, but the
    copy is not atomic);
  * with ``force``, with ``os.replace`` (atomic), keeping the permission
    bits of the file replaced (a 0600 file stays 0600);

  a symlink at the target is replaced (with ``force``) or refused, never
  written through; on any failure or catchable signal the temporary file is
  removed (the CLI turns SIGHUP, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 into
  ``SystemExit`` and SIGINT is ``KeyboardInterrupt``; see ``msc_meta.cli``).

:class:`StdoutGuard` makes a failed write to standard output (a full disk, a
closed descriptor, a broken pipe) visible to the CLI, which then exits
non-zero with one line instead of a traceback or a silent loss.

This module imports only the standard library (it is on every command's path).
"""

from __future__ import annotations

import errno
import io
import os
import signal
import stat
import sys
import tempfile
from pathlib import Path
from typing import Callable

from msc_meta.errors import UsageError

STDOUT = "-"

# Signals whose default action ends the process and which the CLI turns into
# SystemExit (so that ``finally``/``except BaseException`` cleanup runs).
EXIT_SIGNALS = tuple(getattr(signal, name) for name in
                     ("SIGHUP", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2")
                     if hasattr(signal, name))
# The signals blocked while a temporary file is created, so that it cannot
# be left behind by a signal arriving before its name is known.
_DEFERRED_SIGNALS = EXIT_SIGNALS + (signal.SIGINT,)

_TMP_SUFFIX = ".tmp"
_TMP_RANDOM = 8          # characters tempfile.mkstemp adds


def is_stdout(path) -> bool:
    """True for ``-o -`` (standard output)."""
    return path is not None and str(path) == STDOUT


# --------------------------------------------------------------------------
# checking a path
# --------------------------------------------------------------------------

def _package_dir() -> Path:
    import msc_meta

    return Path(msc_meta.__file__).resolve().parent


def check_output_early(path, *, force: bool = False) -> None:
    """:func:`check_output_path` before a command does any work, so that a bad ``-o`` fails at
    once; no path (an optional ``-o`` not given) and ``-`` (stdout) need no check."""
    if path is not None and not is_stdout(path):
        check_output_path(path, force=force)


def check_output_path(path, *, force: bool = False) -> Path:
    """Validate an output path; raise ``UsageError`` with a one-line reason.

    Refuses: an empty name, a folder, a missing parent folder (or a parent
    that is a file), an existing file or symlink without ``force``, and any
    path inside the installed msc_meta package (its ``data`` folder holds
    the curated table). ``-`` (stdout) is not a path: callers test
    :func:`is_stdout` first.
    """
    if path is None or str(path) == "":
        raise UsageError("the output file name is empty; give a file name "
                         "(or - for standard output where the command allows it)")
    target = Path(os.path.expanduser(str(path)))
    resolved = target.resolve()
    package = _package_dir()
    if resolved == package or package in resolved.parents:
        raise UsageError(f"{path}: refusing to write inside the msc-meta package folder "
                         f"({package}); choose another output path")
    if target.is_dir():
        raise UsageError(f"{path}: is a folder; give a file name")
    parent = resolved.parent
    if not parent.is_dir():
        # the nearest part of the path that exists tells what is wrong
        for ancestor in (parent, *parent.parents):
            if os.path.lexists(ancestor):
                if not ancestor.is_dir():
                    raise UsageError(f"{path}: {ancestor} is a file, not a folder")
                break
        raise UsageError(f"{path}: the folder {parent} does not exist")
    if os.path.lexists(target) and not force:
        raise UsageError(f"{path}: file exists; use --force to overwrite it")
    return target


def _exists_error(path) -> UsageError:
    return UsageError(f"{path}: file exists; use --force to overwrite it")


# --------------------------------------------------------------------------
# publishing a file
# --------------------------------------------------------------------------

def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def temp_prefix(name: str, folder: Path) -> str:
    """``.NAME.`` for the temporary file, NAME shortened (by bytes) so that
    ``.NAME.XXXXXXXX.tmp`` fits the file system's limit on a name: a legal
    250-character target must not fail because of its temporary file."""
    room = _name_max(folder) - len(".") - len(".") - _TMP_RANDOM - len(_TMP_SUFFIX)
    while name and len(os.fsencode(name)) > room:
        name = name[:-1]
    return f".{name}."


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


class _SignalsDeferred:
    """Block the exit signals (not in threads other than the main one)."""

    def __enter__(self):
        self.old = None
        if hasattr(signal, "pthread_sigmask"):
            try:
                self.old = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
            except (OSError, ValueError):
                self.old = None
        return self

    def release(self):
        if self.old is not None:
            old, self.old = self.old, None
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def __exit__(self, *exc):
        self.release()
        return False


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish(path, write: Callable, *, binary: bool = False, force: bool = False) -> Path:
    """Write ``path`` safely: ``write(stream)`` fills a temporary file in the
    same folder, which is then published under ``path`` (see the module doc).

    Without ``force`` an existing target (also one that appears while
    ``write`` runs) is never replaced: ``UsageError`` "file exists". With
    ``force`` the target is replaced atomically and keeps its permission
    bits. On any failure, and on the signals the CLI turns into SystemExit,
    the temporary file is removed and an old ``path`` is left as it was.
    Other errors (``OSError`` from the file system, anything ``write``
    raises) propagate unchanged.
    """
    target = Path(path)
    folder = target.resolve().parent
    tmp_name = None
    with _SignalsDeferred() as deferred:
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(target.name, folder),
                                            suffix=_TMP_SUFFIX, dir=folder)
            deferred.release()      # a pending signal is raised here, inside the try
            if binary:
                stream = os.fdopen(fd, "wb")
            else:
                stream = os.fdopen(fd, "w", encoding="utf-8", newline="")
            with stream:
                write(stream)
                stream.flush()
                os.fsync(stream.fileno())
            # from here to the removal of the temporary file, signals wait
            with _SignalsDeferred():
                try:
                    _publish_tmp(tmp_name, target, path, force=force)
                finally:
                    _unlink_quietly(tmp_name)
                    tmp_name = None
            _fsync_folder(folder)
        finally:
            if tmp_name is not None:
                _unlink_quietly(tmp_name)
    return target


def _publish_tmp(tmp_name: str, target: Path, path, *, force: bool) -> None:
    mode = _default_mode()       # mkstemp creates 0600
    if force:
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISREG(st.st_mode):
                mode = stat.S_IMODE(st.st_mode)
    os.chmod(tmp_name, mode)
    if force:
        os.replace(tmp_name, target)
        return
    try:
        os.link(tmp_name, target)
        return
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP,
                             errno.EMLINK, errno.ENOSYS, errno.EXDEV):
            raise
    # no hard links here (FAT, some network shares): exclusive create and copy
    try:
        out = open(target, "xb")
    except FileExistsError:
        raise _exists_error(path) from None
    try:
        with out, open(tmp_name, "rb") as src:
            os.chmod(out.fileno(), mode)
            while chunk := src.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        _unlink_quietly(target)     # the partial copy is ours: we created it
        raise


def _unlink_quietly(name) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


def _write_stdout(write: Callable, *, binary: bool) -> None:
    """Build the whole document in memory, then write it to stdout at once."""
    buffer = io.BytesIO() if binary else io.StringIO(newline="")
    write(buffer)
    data = buffer.getvalue()
    if not binary:
        data = data.encode("utf-8")
    stdout = sys.stdout
    if stdout is None:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    stdout.flush()
    raw = getattr(stdout, "buffer", None)
    if raw is not None:
        raw.write(data)
        raw.flush()
    else:                       # a text-only stream (e.g. tests redirecting stdout)
        stdout.write(data.decode("utf-8"))
        stdout.flush()


def write_output(path, write: Callable, *, binary: bool = False, force: bool = False):
    """The one way msc-meta writes an output: ``-`` -> stdout, else a checked,
    safely published file (:func:`publish`). Returns ``"stdout"`` or the
    Path. Failures to write a file become ``UsageError`` with one line; a
    failure to write stdout is left to the CLI (see :class:`StdoutGuard`)."""
    if is_stdout(path):
        _write_stdout(write, binary=binary)
        return "stdout"
    target = check_output_path(path, force=force)
    try:
        return publish(target, write, binary=binary, force=force)
    except PermissionError as err:
        raise UsageError(f"{path}: cannot write ({(err.strerror or str(err)).lower()})") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot write ({err.strerror or err})") from None


# --------------------------------------------------------------------------
# standard output
# --------------------------------------------------------------------------

class _GuardedStdout(io.RawIOBase):
    """fd 1 as a raw stream that remembers its first write error.

    After an error further writes are discarded, so that the interpreter's
    final flush cannot print "Exception ignored"; the CLI reports the error.
    """

    def __init__(self, guard: "StdoutGuard", closed_fd: bool):
        super().__init__()
        self._guard = guard
        self._closed_fd = closed_fd

    def writable(self):
        return True

    def fileno(self):
        return 1

    def isatty(self):
        if self._closed_fd:
            return False
        try:
            return os.isatty(1)
        except OSError:
            return False

    def write(self, data):
        if self._guard.error is not None:
            return len(data)
        try:
            if self._closed_fd:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            return os.write(1, data)
        except OSError as err:
            self._guard.error = err
            raise

    def close(self):            # never close fd 1 itself
        super().close()


class StdoutGuard:
    """Route ``sys.stdout`` through :class:`_GuardedStdout` for one CLI run.

    Installed only when ``sys.stdout`` is the process's own standard output
    (or missing because fd 1 was closed); a caller that redirected it (tests,
    an embedding program) keeps its stream. ``error`` is the first OSError
    met writing stdout, if any.
    """

    def __init__(self):
        self.error: OSError | None = None
        self.installed = False
        self._saved = None

    def install(self) -> "StdoutGuard":
        current = sys.stdout
        if current is not None and current is not sys.__stdout__:
            return self
        closed_fd = current is None
        if current is not None:
            try:
                if current.fileno() != 1:
                    return self
            except (OSError, ValueError, AttributeError):
                return self
            try:
                current.flush()
            except OSError:
                pass
        _occupy_closed_std_fds()
        raw = _GuardedStdout(self, closed_fd)
        line_buffering = bool(getattr(current, "line_buffering", False))
        encoding = getattr(current, "encoding", None) or "utf-8"
        errors = getattr(current, "errors", None) or "strict"
        self._saved = current
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(raw), encoding=encoding, errors=errors,
                                      line_buffering=line_buffering)
        self.installed = True
        return self

    def flush(self) -> None:
        """Flush stdout (raises the OSError a failed write gives)."""
        if sys.stdout is not None:
            sys.stdout.flush()

    def restore(self) -> None:
        if not self.installed:
            return
        mine = sys.stdout
        try:
            mine.flush()
        except (OSError, ValueError):
            pass
        sys.stdout = self._saved
        self.installed = False


def _occupy_closed_std_fds() -> None:
    """Point a closed fd 0, 1 or 2 at /dev/null, so that no file this run
    opens gets that number (writes meant for stdout must never land in an
    output file)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                new = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            except OSError:
                return
            if new != fd:
                os.dup2(new, fd)
                os.close(new)
