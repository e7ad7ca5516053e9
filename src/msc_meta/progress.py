"""A progress bar on stderr for long work: the pages of a long forest plot, many ``--by`` /
``--all`` groups, group-by-group GLMM, MH or Peto fits.

Shown only when stderr is a terminal and the work has enough steps to be worth
it: a pipe, a file or a CI log gets nothing, so that stderr stays a list of
diagnostics that scripts can read, and library callers (whose stderr is rarely
a terminal) see nothing either. The bar is transient (erased when done) and
says nothing about the results; computation only calls ``advance()``.
``rich`` is imported only when a bar is shown, so the ``pool`` path stays light.
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


@contextmanager
def many_objects():
    """Build many long-lived objects (10^4 analyses of ``--by`` / ``export --all``, their
    results, study lines and output rows) with the cyclic garbage collector paused.

    None of them forms a reference cycle, but each collection of the oldest generation
    walks every live object, so collections triggered by the allocations grow with the
    work done so far (~0.3 s of a 10^4-group ``--by``). Reference counting still frees
    everything as usual. On leaving, what was built is moved to the oldest generation
    (``gc.freeze`` then ``gc.unfreeze``), so that the youngest generation's next
    collection does not walk it all once more; the collector resumes if it ran before.
    """
    import gc

    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
