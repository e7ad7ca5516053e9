"""Text of ``msc-meta check``: one line per failure, then a one-line summary (presentation only)."""

from __future__ import annotations

import os

from msc_meta.data.check import CheckReport
from msc_meta.errors import visible


def render_check(report: CheckReport) -> str:
    """Failures as ``file row R [check] study / outcome: reason``; skipped checks; the summary last."""
    lines = []
    for failure in report.failures:
        where = f"row {failure.row}" if failure.row is not None else ""
        if failure.file != report.path:
            where = f"{os.path.basename(failure.file)} {where}".rstrip()
        who = failure.study_id or ""
        if failure.outcome:
            who += f" / {failure.outcome}"
        lines.append(visible(f"{where} [{failure.check}] {who + ': ' if who else ''}{failure.reason}"))
    for note in report.skipped:
        lines.append(visible(f"note: {note}"))
    lines.append(summary_line(report))
    return "\n".join(lines)


def summary_line(report: CheckReport) -> str:
    m = len(report.failures)
    return (f"{report.rows_checked} rows checked, {m} failure{'s' if m != 1 else ''} "
            f"(checks: {', '.join(report.checks_run)})")
