"""Multi-arm trials: comparisons that share one control arm (Cochrane Handbook 23.3.4).

Comparisons of one ``trial`` with identical control counts share one
control arm (e.g. three dose cohorts against one placebo group).
``combine`` sums their treatment arms into one comparison, ``split``
divides the control's events and n evenly among them (non-integer counts),
``keep`` pools them as they are (the control then counts several times; a
note says so). Higgins et al. (eds.), Cochrane Handbook for Systematic
Reviews of Interventions 6.4 (2023), section 23.3.4. Only two-arm measures
are affected: single-arm measures ignore control arms anyway.
"""

from __future__ import annotations

import os.path
from dataclasses import dataclass

from msc_meta import registry


@dataclass(frozen=True)
class MultiArmUnit:
    """A comparison built from rows that share one control arm (combined or split).

    Stands in for a table ``Row`` in the pool: counts and ``study_id`` are its
    own, anything else (``trial``, ``timepoint_weeks``, ``row_number``,
    ``value(column)``, ...) is read from ``base``, the first member row.
    """

    base: object
    study_id: str
    events_t: float
    n_t: float
    events_c: float
    n_c: float
    multiarm: str                  # "combine" or "split"
    members: tuple[str, ...]
    member_rows: tuple[int, ...]
    control_share: float           # fraction of the shared control this unit carries

    def __getattr__(self, name):
        # Only reached for attributes not defined above.
        return getattr(object.__getattribute__(self, "base"), name)

    def value(self, column):
        if column in ("study_id", "events_t", "n_t", "events_c", "n_c"):
            return getattr(self, column)
        return self.base.value(column)

    @property
    def source_rows(self) -> int:
        return len(self.member_rows) if self.multiarm == "combine" else 1


def shared_control_sets(rows, measure) -> list[tuple[tuple, list]]:
    """Rows of one ``trial`` with identical control counts: one control arm, several comparisons.

    ``select()`` has already fixed the outcome, time point and unit, so the
    key is (trial, events_c, n_c). Only two-arm measures use control arms.
    Returns ``[((trial, events_c, n_c), [rows...]), ...]`` in table order.
    """
    spec = registry.measure(measure)
    if not spec.two_arm or spec.family != "counts":
        return []       # shared control arms are found among event counts only
    sets: dict[tuple, list] = {}
    if hasattr(rows, "column"):     # a view on the table's columns: look at rows naming a trial only
        data = getattr(rows, "data", None)
        if data is not None and not data.filled("trial"):
            return []       # no row of the table names a trial (asked once per table)
        trials = rows.column("trial")
        if list(trials).count(None) == len(trials):
            return []       # no row names a trial (list.count: one C pass over 10^6 rows)
        rows = [rows[i] for i, t in enumerate(trials) if t is not None]
    for r in rows:
        trial = (getattr(r, "trial", None) or "").strip()
        if not trial or not (r.has_counts and r.is_comparison):
            continue
        sets.setdefault((trial, r.events_c, r.n_c), []).append(r)
    return [(key, members) for key, members in sets.items() if len(members) > 1]


def apply_multiarm(rows, measure, mode, *, group_of=None):
    """Combine or split comparisons sharing a control arm (Cochrane Handbook 23.3.4).

    ``combine``: the treatment arms of a trial's comparisons are summed into
    one comparison against the control, counted once. With ``group_of``
    (``--by``), only members of one subgroup are combined, and a control
    shared by G subgroups is divided evenly among them, so that the subgroup
    test does not count it G times either. ``split``: each comparison keeps
    its treatment arm and gets events_c/m of n_c/m (m comparisons);
    non-integer counts are what the Handbook describes and escalc accepts.
    ``keep``: rows unchanged, with a note that the control counts m times.

    Returns the rows to pool (``MultiArmUnit`` in place of changed rows, at
    the first member's position) and notes as ``(text, frozenset(ids))``.
    """
    sets = shared_control_sets(rows, measure)
    if not sets:
        return (rows if hasattr(rows, "take") else list(rows)), []
    taken_ids = {r.study_id for r in rows}
    replace: dict[int, object] = {}
    notes: list[tuple[str, frozenset]] = []
    for (trial, e, n), members in sets:
        ids = [r.study_id for r in members]
        m = len(members)
        who = frozenset(ids)
        arm = f"({count_text(e)}/{count_text(n)})"
        if mode == "keep":
            notes.append((f"trial {trial}: {', '.join(ids)} share one control arm {arm}, counted {m} "
                          f"times (--multiarm keep): this overstates the precision; --multiarm "
                          f"combine or split counts it once", who))
            continue
        if mode == "split":
            rows_of = tuple(r.row_number for r in members)
            for r in members:
                replace[id(r)] = MultiArmUnit(
                    base=r, study_id=r.study_id, events_t=r.events_t, n_t=r.n_t,
                    events_c=_count(e / m), n_c=_count(n / m), multiarm="split",
                    members=tuple(ids), member_rows=rows_of, control_share=1.0 / m)
            notes.append((f"trial {trial}: {', '.join(ids)} share one control arm {arm}; its events "
                          f"and participants are split evenly among the {m} comparisons "
                          f"({count_text(e / m)}/{count_text(n / m)} each) so that it counts once "
                          "(--multiarm split, Cochrane Handbook 23.3.4); the comparisons remain "
                          "correlated, which the model ignores", who))
            continue
        # combine
        parts: dict[object, list] = {}
        for r in members:
            parts.setdefault(group_of(r) if group_of else None, []).append(r)
        g = len(parts)
        made = []
        for part in parts.values():
            part_ids = tuple(r.study_id for r in part)
            label = _combined_label(part_ids, trial, taken_ids) if len(part) > 1 else part_ids[0]
            taken_ids.add(label)
            unit = MultiArmUnit(
                base=part[0], study_id=label, events_t=sum(r.events_t for r in part),
                n_t=sum(r.n_t for r in part), events_c=_count(e / g), n_c=_count(n / g),
                multiarm="combine", members=part_ids, member_rows=tuple(r.row_number for r in part),
                control_share=1.0 / g)
            replace[id(part[0])] = unit
            for r in part[1:]:
                replace[id(r)] = None
            made.append(unit)
        if g == 1:
            u = made[0]
            notes.append((f"trial {trial}: {', '.join(ids)} share one control arm {arm}; their "
                          f"treatment arms are combined into one comparison, {u.study_id} "
                          f"({count_text(u.events_t)}/{count_text(u.n_t)} vs {count_text(e)}/"
                          f"{count_text(n)}), so that the control counts once (--multiarm combine, "
                          "Cochrane Handbook 23.3.4)", who))
        else:
            notes.append((f"trial {trial}: {', '.join(ids)} share one control arm {arm} but fall in "
                          f"{g} subgroups: the arms within a subgroup are combined and the control "
                          f"is divided evenly among the {g} subgroups ({count_text(e / g)}/"
                          f"{count_text(n / g)} each), so that it counts once, also in the subgroup "
                          "test (--multiarm combine, Cochrane Handbook 23.3.4)", who))
    units = []
    for r in rows:
        new = replace.get(id(r), r)
        if new is not None:
            units.append(new)
    return units, notes


def _combined_label(ids, trial, taken) -> str:
    """leiden_bmmsc_c1, leiden_bmmsc_c2 -> leiden_bmmsc_c1+c2; else D1+D2, else the trial."""
    prefix = os.path.commonprefix(list(ids))
    cut = max(prefix.rfind(sep) for sep in "_-. ")
    tails = [i[cut + 1:] for i in ids]
    if cut >= 0 and all(tails):
        label = ids[0][:cut + 1] + "+".join(tails)
    else:
        label = "+".join(ids)
    if len(label) > 40:
        label = trial
    while label in taken:
        label += " (combined)"
    return label


def _count(x):
    """Whole counts as int (0/3 split three ways is 0/1), others as float."""
    x = float(x)
    return int(x) if x.is_integer() else x


def count_text(x) -> str:
    x = float(x)
    return f"{int(x)}" if x.is_integer() else f"{x:.2f}".rstrip("0").rstrip(".")


def source_ids(unit) -> tuple[str, ...]:
    members = getattr(unit, "members", None) if isinstance(unit, MultiArmUnit) else None
    return members or (unit.study_id,)


__all__ = ["MultiArmUnit", "apply_multiarm", "count_text", "shared_control_sets", "source_ids"]
