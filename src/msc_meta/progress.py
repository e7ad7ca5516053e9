"""A progress bar on stderr for long work (many pages of a figure, many refits).

Shown only when stderr is a terminal and the work has enough steps to be worth
it: a pipe, a file or a CI log gets nothing, so that stderr stays a list of
diagnostics that scripts can read. ``rich`` is imported only when a bar is shown.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

MIN_STEPS = 3


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):      # closed or replaced stderr
        return False


@contextmanager
def progress(total: int, description: str, *, min_steps: int = MIN_STEPS):
    """``with progress(n, "drawing pages") as advance: ... advance()`` once per step.

    A transient rich progress bar on stderr when stderr is a terminal and
    ``total >= min_steps``; otherwise ``advance`` does nothing.
    """
    if total < min_steps or not _stderr_is_terminal():
        yield lambda steps=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=sys.stderr, markup=False, highlight=False)
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda steps=1: bar.advance(task, steps)
