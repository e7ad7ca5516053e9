"""The ``msc-meta`` command line: a thin layer over the library.

Each command lives in its own module under ``msc_meta.cli`` and is imported
only when it runs, so ``msc-meta --help`` pays for click alone. stdout carries
data (tables, JSON); stderr carries diagnostics. Errors derived from
``MscMetaError`` become one line on stderr and the exit code they define.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from msc_meta import __version__

# name -> (module, function, one-line help). The help is duplicated here so
# that ``msc-meta --help`` lists the commands without importing them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "studies": ("msc_meta.cli.studies", "studies", "List the curated evidence, one row per outcome."),
    "check": ("msc_meta.cli.check", "check", "Check an outcome table for internal and source consistency (CI guard)."),
    "pool": ("msc_meta.cli.pool", "pool", "Pool one outcome across studies and print a forest-style table."),
    "forest": ("msc_meta.cli.forest", "forest", "Draw a forest plot of one outcome to PNG, SVG or PDF."),
    "sensitivity": ("msc_meta.cli.sensitivity", "sensitivity", "Leave-one-out, cumulative and influence analyses."),
    "regress": ("msc_meta.cli.regress", "regress", "Mixed-effects meta-regression on moderators (e.g. dose)."),
    "bias": ("msc_meta.cli.bias", "bias", "Small-study effects: Egger's test, trim-and-fill, funnel plot."),
    "labbe": ("msc_meta.cli.labbe", "labbe", "L'Abbe plot of a two-arm outcome: event risk, control vs treatment."),
    "sof": ("msc_meta.cli.sof", "sof", "GRADE-style summary of findings: absolute effects and NNT."),
    "bayes": ("msc_meta.cli.bayes", "bayes", "Bayesian random-effects meta-analysis by numerical integration."),
    "fragility": ("msc_meta.cli.fragility", "fragility", "Fragility index of each two-arm result."),
    "export": ("msc_meta.cli.export", "export", "Export per-study and pooled results to CSV or JSON."),
    "lock": ("msc_meta.cli.lock", "lock", "Write every curated number and pooled result to a lock file (check --lock)."),
    "report": ("msc_meta.cli.report", "report", "Write one self-contained HTML report: pool, forest plot, sensitivity, methods, provenance."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return [name for name, spec in COMMANDS.items() if _available(spec[0])]

    def get_command(self, ctx, name):
        spec = COMMANDS.get(name)
        if spec is None or not _available(spec[0]):
            return None
        module = importlib.import_module(spec[0])
        return getattr(module, spec[1])

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _available(module: str) -> bool:
    # A command whose module is not written yet is simply not listed.
    return importlib.util.find_spec(module) is not None


EPILOG = """\b
Examples:
  msc-meta studies --outcome fistula_closure
  msc-meta check --sources ../shared/sources
  msc-meta pool --outcome fistula_closure --timepoint 24 --unit patient
  msc-meta pool --outcome fistula_closure --timepoint 208 --unit patient --json

Every command reads the curated table shipped with msc-meta unless --data
names your own CSV of the same shape (see docs/data.md). Exit codes: 0 ok,
1 a check or computation found a problem, or stdout could not be written
(a full disk, a closed stdout, a pipe whose reader left), 2 bad usage or
bad input.
"""


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="msc-meta")
def cli():
    """Meta-analysis of mesenchymal stem/stromal cell (MSC) therapy in Crohn's disease.

    msc-meta ships a hand-curated outcome table, each number traceable to a
    verbatim quote of its source, and a pooling engine checked against R's
    metafor.
    """


def _exit_on_signals():
    """Make SIGHUP, SIGQUIT, SIGTERM, SIGUSR1 and SIGUSR2 raise SystemExit(128 + signum)
    so that cleanup code runs (an interrupted export removes its temporary file);
    returns a function that puts the old handlers back.

    Their default action ends the process at once, which would leave the
    temporary file behind. A signal the caller set to be ignored (``nohup``
    ignores SIGHUP) stays ignored. SIGINT is already KeyboardInterrupt (exit
    130); SIGPIPE is ignored by Python, so a closed pipe is an EPIPE write
    error (see :func:`_run`).
    """
    import signal

    from msc_meta.io_safe import EXIT_SIGNALS

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = {}
    for signum in EXIT_SIGNALS:
        try:
            if signal.getsignal(signum) is signal.SIG_DFL:
                previous[signum] = signal.signal(signum, terminate)
        except (ValueError, OSError):   # not the main thread (the CLI run from a worker thread)
            break

    def restore():
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def main(argv=None):
    """Console-script entry point: run the CLI, turning our errors into exit codes."""
    from msc_meta.io_safe import StdoutGuard

    restore_signals = _exit_on_signals()
    guard = StdoutGuard().install()
    try:
        _run(argv, guard)
    finally:
        guard.restore()
        restore_signals()


def _stdout_failure(err: OSError) -> None:
    """Report a failed write to stdout and exit: quietly with 1 on a broken pipe
    (the reader went away: Python's note on SIGPIPE), else one line and 1."""
    import errno
    import os

    if err.errno == errno.EPIPE:
        # Python's docs (signal, "Note on SIGPIPE"): exit 1 without a message.
        # The guarded stdout discards what is still buffered, so the final
        # flush cannot fail again.
        sys.exit(1)
    reason = err.strerror or os.strerror(err.errno or 0) or str(err)
    click.echo(f"msc-meta: error: cannot write to stdout: {reason}", err=True)
    sys.exit(1)


def _run(argv, guard=None):
    from msc_meta.errors import MscMetaError

    code = 0
    try:
        try:
            cli.main(args=argv, prog_name="msc-meta", standalone_mode=False)
        except SystemExit as exc:
            # a command's own exit (check: 1 on a failure; rich: 1 on a broken pipe)
            code = exc.code
        # inside the guarded region: a full disk or a closed stdout surfaces here
        if sys.stdout is not None:
            sys.stdout.flush()
    except MscMetaError as err:
        _flush_quietly()
        click.echo(f"msc-meta: error: {_cli_words(err)}", err=True)
        sys.exit(err.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        _flush_quietly()
        click.echo(_one_line(err), err=True)
        sys.exit(err.exit_code)
    except OSError as err:
        if guard is not None and guard.error is not None:
            _stdout_failure(guard.error)    # err is it, or a consequence of it
        if isinstance(err, BrokenPipeError):    # a stream the caller gave us
            _stdout_failure(err)
        raise
    if guard is not None and guard.error is not None:
        # an error some library caught and swallowed still fails the run
        _stdout_failure(guard.error)
    sys.exit(code)


def _cli_words(err) -> str:
    """The error in the command line's words: option names become flags (``--method MH``)."""
    from msc_meta.errors import visible

    for_cli = getattr(err, "for_cli", None)
    return visible(for_cli()) if for_cli is not None else str(err)


def _one_line(err) -> str:
    """click's error as one escaped line, with where to read more (click prints three)."""
    from msc_meta.errors import visible

    text = f"msc-meta: error: {visible(err.format_message())}"
    ctx = getattr(err, "ctx", None)
    if isinstance(err, click.UsageError) and ctx is not None:
        text += f" (see '{ctx.command_path} --help')"
    return text


def _flush_quietly() -> None:
    """Flush what a command printed before failing, so that it comes before the error line."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):
        pass
