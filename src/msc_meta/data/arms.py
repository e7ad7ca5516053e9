"""What the arms of a table are called when the user does not say (one rule for every command).

The curated table compares MSC therapy with control; any other table says
nothing of its arms, so they are Treatment and Control. ``forest``,
``labbe``, ``sof`` and ``report`` take their default labels from here.
"""

from __future__ import annotations

DEFAULT_LABELS: tuple[str, str] = ("Treatment", "Control")
CURATED_TREATMENT = "MSC"


def arm_labels(data_path) -> tuple[str, str]:
    """Default (treatment, control) labels: MSC/Control for the curated table (no ``--data``),
    Treatment/Control for a user's table."""
    return (CURATED_TREATMENT if data_path is None else DEFAULT_LABELS[0]), DEFAULT_LABELS[1]
