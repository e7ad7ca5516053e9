"""GRADE certainty of the evidence: the rater's judgements, read and combined.

A summary of findings grades each outcome's body of evidence (GRADE
Handbook, Schünemann et al. 2013, section 5; Guyatt et al. 2011, "GRADE
guidelines 3: rating the quality of evidence", J Clin Epidemiol 64:401-406):

- it starts **high** for randomised trials and **low** for observational
  (non-randomised or non-comparative) evidence;
- it goes down one level per *serious* and two per *very serious* concern
  in each of five domains: risk of bias, inconsistency, indirectness,
  imprecision, publication bias;
- observational evidence may go up for a large effect (+1, very large +2),
  a dose-response gradient (+1) or plausible confounding that would reduce
  the effect shown (+1) (Guyatt et al. 2011, GRADE guidelines 9, J Clin
  Epidemiol 64:1311-1316); randomised evidence is not upgraded here;
- the result is one of high, moderate, low, very low.

These are judgements: msc-meta never makes them. When a domain is not rated
(by the certainty file or an option) the certainty is **not rated**, and the
facts that bear on it (k, I², whether the CI crosses no effect, the
optimal-information-size rule of thumb) are shown as hints only
(``msc_meta.pooling.sof``).

The certainty file (``msc-meta sof --certainty FILE``) is a CSV, one row per
outcome; see :data:`COLUMNS` and docs/methods.md. Every cell is checked,
and a bad one is reported with its file, row and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from msc_meta.errors import InputError, UsageError

DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")
DOMAIN_TITLES = {"risk_of_bias": "risk of bias", "inconsistency": "inconsistency",
                 "indirectness": "indirectness", "imprecision": "imprecision",
                 "publication_bias": "publication bias"}
UPGRADES = ("large_effect", "dose_response", "plausible_confounding")
LEVELS = ("very low", "low", "moderate", "high")
NOT_RATED = "not rated"
DESIGNS = ("randomised", "observational")

# the words a rater may write, and the levels they move the certainty down (or up)
_DOWN = {"not serious": 0, "no": 0, "none": 0, "0": 0,
         "serious": 1, "1": 1, "-1": 1,
         "very serious": 2, "2": 2, "-2": 2}
_PUBLICATION = {"undetected": 0, "suspected": 1, "strongly suspected": 1,
                "very strongly suspected": 2}
_UP = {"large_effect": {"no": 0, "0": 0, "large": 1, "1": 1, "+1": 1, "very large": 2, "2": 2,
                        "+2": 2},
       "dose_response": {"no": 0, "0": 0, "yes": 1, "1": 1, "+1": 1},
       "plausible_confounding": {"no": 0, "0": 0, "yes": 1, "1": 1, "+1": 1}}
_DESIGN = {"randomised": "randomised", "randomized": "randomised", "rct": "randomised",
           "observational": "observational", "non-randomised": "observational",
           "non-randomized": "observational", "nonrandomised": "observational"}
_EVENTS = ("beneficial", "harmful")

KEYS = ("outcome", "timepoint_weeks", "unit")
EXTRA = ("design", "assumed_control", "units", "sd", "events", "comments")
COLUMNS = KEYS + DOMAINS + UPGRADES + EXTRA


def _words(text: str) -> str:
    """Lower case, one space between words; ``very_serious`` and ``very-serious`` read as words."""
    s = " ".join(text.strip().lower().replace("_", " ").split())
    return s if s.lstrip("+-").isdigit() else s.replace("-", " ").replace("non randomi", "non-randomi")


def downgrade_of(domain: str, text: str) -> int:
    """Levels down for a rating word (``ValueError`` with the accepted words otherwise)."""
    s = _words(text)
    table = dict(_DOWN, **_PUBLICATION) if domain == "publication_bias" else _DOWN
    if s not in table:
        accepted = "not serious, serious or very serious (or 0, 1, 2)"
        if domain == "publication_bias":
            accepted += "; or undetected, strongly suspected, very strongly suspected"
        raise ValueError(f"'{text}' is not a rating; write {accepted}")
    return table[s]


def upgrade_of(name: str, text: str) -> int:
    s = _words(text)
    if s not in _UP[name]:
        words = "no, large or very large (or 0, 1, 2)" if name == "large_effect" else "no or yes (or 0, 1)"
        raise ValueError(f"'{text}' is not a rating; write {words}")
    return _UP[name][s]


def design_of(text: str) -> str:
    s = _words(text)
    if s not in _DESIGN:
        raise ValueError(f"'{text}' is not a design; write randomised or observational")
    return _DESIGN[s]


@dataclass(frozen=True)
class Ratings:
    """The rater's inputs for one outcome (from one file row, or from the options).

    ``downgrades`` maps a domain to (word as given, levels down); a domain
    left blank is absent. ``source`` says where they came from.
    """

    downgrades: dict = field(default_factory=dict)
    upgrades: dict = field(default_factory=dict)
    design: str | None = None
    assumed_control: float | None = None
    units: str | None = None
    sd: float | None = None
    events: str | None = None
    comments: str | None = None
    source: str | None = None
    path: str | None = None            # where a bad value is reported (file rows)
    row: int | None = None


@dataclass(frozen=True)
class Certainty:
    """The GRADE certainty of one outcome, or ``not rated`` with what is missing."""

    level: str                          # one of LEVELS, or NOT_RATED
    design: str | None                  # randomised | observational | None
    design_source: str | None
    start: str | None                   # high | low
    domains: tuple = ()                 # (domain, word or None, levels down or None)
    upgrades: tuple = ()                # (name, word, levels up)
    missing: tuple[str, ...] = ()       # domains (or "design") not rated
    source: str | None = None

    def to_dict(self) -> dict:
        data = {"certainty": self.level, "design": self.design, "design_source": self.design_source,
                "start": self.start, "missing": list(self.missing), "source": self.source}
        for domain, word, down in self.domains:
            data[domain] = word
            data[f"{domain}_downgrade"] = down
        for name, word, up in self.upgrades:
            data[name] = word
            data[f"{name}_upgrade"] = up
        return data


def grade(ratings: Ratings | None, inferred_design: str | None, design_note: str | None) -> Certainty:
    """Combine the rater's judgements (see the module doc); ``not rated`` when any is missing.

    ``inferred_design`` is the design the pooled rows' ``design`` column
    implies (None when mixed or unknown); a rater's ``design`` overrides it.
    """
    ratings = ratings or Ratings()
    design, design_source = inferred_design, design_note
    if ratings.design is not None:
        design, design_source = ratings.design, ratings.source
    domains = tuple((d, *(ratings.downgrades[d] if d in ratings.downgrades else (None, None)))
                    for d in DOMAINS)
    upgrades = tuple((u, *ratings.upgrades[u]) for u in UPGRADES if u in ratings.upgrades)
    if design == "randomised" and any(up for _, _, up in upgrades):
        raise _bad(ratings, UPGRADES, "upgrading (large effect, dose-response, confounding) is for "
                   "observational evidence; randomised evidence starts high (GRADE guidelines 9)")
    missing = tuple(d for d, word, _ in domains if word is None)
    if design is None:
        missing += ("design",)
    start = None if design is None else ("high" if design == "randomised" else "low")
    if missing:
        level = NOT_RATED
    else:
        score = (3 if design == "randomised" else 1) - sum(down for _, _, down in domains) \
            + sum(up for _, _, up in upgrades)
        level = LEVELS[min(max(score, 0), 3)]
    return Certainty(level=level, design=design, design_source=design_source, start=start,
                     domains=domains, upgrades=upgrades, missing=missing,
                     source=ratings.source if (ratings.downgrades or ratings.upgrades
                                               or ratings.design) else None)


def _bad(ratings: Ratings, columns, message: str):
    present = [c for c in columns if c in ratings.upgrades] or list(columns)
    if ratings.path is not None:
        return InputError(message, path=ratings.path, row=ratings.row, column=present[0])
    return UsageError(message)


def ratings_from_options(values: dict) -> Ratings | None:
    """Ratings given as options (``--risk-of-bias serious`` ...), applied to every outcome."""
    downgrades = {}
    for domain in DOMAINS:
        text = values.get(domain)
        if text is None:
            continue
        try:
            downgrades[domain] = (_words(text), downgrade_of(domain, text))
        except ValueError as err:
            raise UsageError(f"--{domain.replace('_', '-')}: {err}") from None
    design = None
    if values.get("design") is not None:
        try:
            design = design_of(values["design"])
        except ValueError as err:
            raise UsageError(f"--design: {err}") from None
    if not downgrades and design is None:
        return None
    return Ratings(downgrades=downgrades, design=design, source="options")


# ------------------------------------------------------------------ the certainty file

@dataclass(frozen=True)
class RaterRow:
    """One row of the certainty file: which outcome it rates and the ratings."""

    row: int
    outcome: str
    timepoint: float | None
    unit: str | None
    ratings: Ratings

    def matches(self, outcome_key: str, weeks, unit) -> bool:
        from msc_meta.data.keys import key

        return (key(self.outcome) == outcome_key
                and (self.timepoint is None or self.timepoint == weeks)
                and (self.unit is None or self.unit == unit))

    def label(self) -> str:
        parts = [self.outcome]
        if self.timepoint is not None:
            parts.append(f"at {self.timepoint:g} weeks")
        if self.unit:
            parts.append(f"per {self.unit}")
        return " ".join(parts)


def read_certainty_file(path, known_outcomes) -> tuple[RaterRow, ...]:
    """Read and check the certainty file (CSV); ``InputError`` naming file, row and column."""
    from msc_meta.data.keys import key
    from msc_meta.data.load import NumberError, read_csv_records, weeks_from_text

    raw = read_csv_records(path, ("outcome",), frozenset(COLUMNS), what="certainty file")
    shown = raw.path
    unknown = [c for c in raw.header if c not in COLUMNS]
    if unknown:
        raise InputError(f"unknown column; the certainty file's columns are {', '.join(COLUMNS)}",
                         path=shown, row=1, column=unknown[0])
    outcomes = {key(o) for o in known_outcomes}
    rows = []
    for number, cells in raw.records:
        def bad(column, message):
            return InputError(message, path=shown, row=number, column=column)

        get = {c: (cells.get(c) or "").strip() for c in COLUMNS}
        if not get["outcome"]:
            raise bad("outcome", "blank; name the outcome key this row rates")
        if key(get["outcome"]) not in outcomes:
            raise bad("outcome", f"'{get['outcome']}' is not an outcome of the table "
                                 f"(see `msc-meta studies`)")
        try:
            weeks = weeks_from_text(get["timepoint_weeks"])
        except NumberError as err:
            raise bad("timepoint_weeks", str(err)) from None
        unit = get["unit"] or None
        if unit is not None and unit not in ("patient", "fistula"):
            raise bad("unit", f"'{unit}' is not a unit; write patient or fistula, or leave it blank")
        downgrades, upgrades = {}, {}
        for domain in DOMAINS:
            if get[domain]:
                try:
                    downgrades[domain] = (_words(get[domain]), downgrade_of(domain, get[domain]))
                except ValueError as err:
                    raise bad(domain, str(err)) from None
        for name in UPGRADES:
            if get[name]:
                try:
                    upgrades[name] = (_words(get[name]), upgrade_of(name, get[name]))
                except ValueError as err:
                    raise bad(name, str(err)) from None
        try:
            design = design_of(get["design"]) if get["design"] else None
        except ValueError as err:
            raise bad("design", str(err)) from None
        numbers = {}
        for column in ("assumed_control", "sd"):
            numbers[column] = _number(get[column], bad, column)
        if numbers["sd"] is not None and not numbers["sd"] > 0:
            raise bad("sd", f"'{get['sd']}' is not a positive standard deviation")
        events = get["events"].lower() or None
        if events is not None and events not in _EVENTS:
            raise bad("events", f"'{get['events']}' is not beneficial or harmful")
        source = f"{shown} row {number}"
        ratings = Ratings(downgrades=downgrades, upgrades=upgrades, design=design,
                          assumed_control=numbers["assumed_control"], units=get["units"] or None,
                          sd=numbers["sd"], events=events, comments=get["comments"] or None,
                          source=source, path=shown, row=number)
        if design == "randomised" and any(up for _, up in upgrades.values()):
            raise bad(next(u for u in UPGRADES if u in upgrades),
                      "upgrading (large effect, dose-response, confounding) is for observational "
                      "evidence; randomised evidence starts high (GRADE guidelines 9)")
        rows.append(RaterRow(row=number, outcome=get["outcome"], timepoint=weeks, unit=unit,
                             ratings=ratings))
    return tuple(rows)


def _number(text: str, bad, column: str) -> float | None:
    import math

    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise bad(column, f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise bad(column, f"'{text}' is not a finite number")
    return value


def rating_for(rows, outcome: str, weeks, unit, path: str | None = None) -> Ratings | None:
    """The file row that rates this outcome, time point and unit (None when none does).

    Two rows that both match are refused: one outcome has one rating.
    """
    from msc_meta.data.keys import key

    found = [r for r in rows if r.matches(key(outcome), weeks, unit)]
    if len(found) > 1:
        raise InputError(f"rows {found[0].row} and {found[1].row} both rate {found[1].label()}; "
                         f"keep one (a blank timepoint_weeks or unit matches every value)",
                         path=path, row=found[1].row, column="outcome")
    return found[0].ratings if found else None


__all__ = ["COLUMNS", "DOMAINS", "LEVELS", "NOT_RATED", "UPGRADES", "Certainty", "RaterRow",
           "Ratings", "grade", "rating_for", "ratings_from_options", "read_certainty_file"]
