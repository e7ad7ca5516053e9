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
    "sof": ("msc_meta.cli.sof", "sof", "GRADE-style summary of findings: absolute effects and NNT."),
    "bayes": ("msc_meta.cli.bayes", "bayes", "Bayesian random-effects meta-analysis by numerical integration."),
    "fragility": ("msc_meta.cli.fragility", "fragility", "Fragility index of each two-arm result."),
    "export": ("msc_meta.cli.export", "export", "Export per-study and pooled results to CSV or JSON."),
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
1 a check or computation found a problem, 2 bad usage or bad input.
"""


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="msc-meta")
def cli():
    """Meta-analysis of mesenchymal stem/stromal cell (MSC) therapy in Crohn's disease.

    msc-meta ships a hand-curated outcome table, each number traceable to a
    verbatim quote of its source, and a pooling engine checked against R's
    metafor.
    """


def _exit_on_sigterm():
    """Make SIGTERM raise SystemExit(143), so that cleanup code runs; returns the old handler.

    Python's default SIGTERM action ends the process at once, which would
    leave an interrupted export's temporary file behind.
    """
    import signal

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    try:
        return signal.signal(signal.SIGTERM, terminate)
    except ValueError:      # not the main thread (e.g. the CLI run from a worker thread)
        return None


def main(argv=None):
    """Console-script entry point: run the CLI, turning our errors into exit codes."""
    import signal

    previous = _exit_on_sigterm()
    try:
        _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv):
    from msc_meta.errors import MscMetaError

    try:
        cli.main(args=argv, prog_name="msc-meta", standalone_mode=False)
    except MscMetaError as err:
        click.echo(f"msc-meta: error: {err}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except BrokenPipeError:
        # `msc-meta studies | head` must not print a traceback.
        sys.stderr.close()
        sys.exit(0)
    sys.exit(0)
