"""One line of guidance when the data are too thin for the method asked for.

When k < 5 or an arm has no events (or only events), ``pool`` names the
better-suited methods. Each is a :class:`Suggestion` (a command and the
options it changes), and a suggestion is offered only if it runs on these
very studies under the same ``--multiarm`` handling: the Mantel-Haenszel
and Peto estimates are computed (closed form, O(k)), the GLMM's refusals
are checked, and nothing that needs whole counts is offered for a split
control arm. ``tests/test_guidance_runs.py`` executes every suggestion for
every analysis of the shipped table.

Why these methods: with few studies tau² is barely estimable and z-based
random-effects CIs are too narrow (IntHout et al. 2014, BMC Med Res
Methodol 14:25); with zero cells the continuity-corrected normal
approximation is biased and MH / exact-likelihood models do better
(Sweeting et al. 2004, Stat Med 23:1351; Stijnen et al. 2010, Stat Med
29:3046); a weakly informative prior on tau stabilises small-k random
effects (Friede et al. 2017, Biom J 59:658).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msc_meta import registry
from msc_meta.errors import MscMetaError


@dataclass(frozen=True)
class Suggestion:
    """Run ``msc-meta COMMAND`` on the same selection with ``options`` changed."""

    command: str                   # "pool", "bayes" or "fragility"
    options: tuple[str, ...]       # e.g. ("--method", "MH", "--cc", "0")
    why: str                       # what it does, in a few words

    def text(self) -> str:
        spelled = " ".join(self.options) if self.command == "pool" else \
            " ".join(("msc-meta", self.command, *self.options))
        return f"`{spelled}` ({self.why})"

    def to_dict(self) -> dict:
        return {"command": self.command, "options": list(self.options), "why": self.why}


@dataclass(frozen=True)
class Guidance:
    """The problem in words, and the suggestions that run on these data."""

    problem: str
    suggestions: tuple[Suggestion, ...]
    advice: str | None = None      # said instead of suggestions (e.g. "nothing to pool")

    def text(self) -> str:
        if self.advice:
            return f"{self.problem}: {self.advice}"
        if not self.suggestions:
            return self.problem
        parts = [s.text() for s in self.suggestions]
        joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
        return f"{self.problem}; consider {joined}"


BAYES = Suggestion("bayes", (), "weakly informative prior on tau")
_GLMM = registry.method("GLMM")


def guidance_for(measure, method, hksj, rows, cc, multiarm) -> Guidance | None:
    """Guidance for a pool of ``rows`` (the studies pooled), or None when none is needed."""
    if registry.measure(measure).family != "counts":
        return _other_family(measure, method, hksj, len(rows))
    two_arm = registry.measure(measure).two_arm
    kind = registry.method(method).kind
    random = kind == "random"
    zero_rows, full_rows = _sparse_rows(_columns(rows, two_arm))
    zero, full = bool(zero_rows.any()), bool(full_rows.any())
    k = len(rows)
    small = k < 5
    if not _needed(k, zero, full):
        return None
    what = _what(k, two_arm, zero, full)
    if k == 1:
        return _single(what, two_arm, zero or full, measure, cc, multiarm)
    bayes = (BAYES,) if small else ()
    raw_counts = not registry.method(method).inverse_variance
    if kind == "glmm" or (two_arm and raw_counts and (zero or full)):
        if not small:
            return None
        if kind == "glmm":
            return Guidance(f"{what}: the GLMM uses the exact binomial likelihood, but tau² is "
                            f"barely estimable from {k} studies", bayes)
        return Guidance(f"{what}: {registry.method(method).label} already pools the raw counts, "
                        f"but {k} studies say little about between-study variation", bayes)
    if not two_arm:
        return _single_arm(what, measure, random, rows, multiarm, small)
    if zero or full:
        return _sparse_two_arm(what, measure, random, rows, multiarm, small)
    if random and not hksj:
        return Guidance(f"{what}: tau² is barely estimable and the z-based random-effects CI "
                        "ignores its uncertainty",
                        (Suggestion("pool", ("--hksj",), "t with k-1 df"),) + bayes)
    return Guidance(f"{what}: between-study variation is barely estimable from {k} studies; "
                    "see how far the result depends on it", bayes)


def guidance_many(measure, method, hksj, rows, bounds, cc, multiarm) -> list:
    """:func:`guidance_for` of many pools at once (``--by``, ``export --all``): their
    studies one after another in ``rows`` (a view), pool g at ``bounds[g]:bounds[g + 1]``.

    Whether a pool needs guidance at all (k, a zero or full arm) is found for every pool
    on the columns; only the pools that need it are looked at one by one.
    """
    bounds = np.asarray(bounds, dtype=np.int64)
    sizes = np.diff(bounds)
    need = np.ones(sizes.size, dtype=bool)
    if registry.measure(measure).family == "counts":
        zero_rows, full_rows = _sparse_rows(_columns(rows, registry.measure(measure).two_arm))
        group = np.repeat(np.arange(sizes.size), sizes)
        zero = np.bincount(group, weights=zero_rows, minlength=sizes.size) > 0
        full = np.bincount(group, weights=full_rows, minlength=sizes.size) > 0
        need = _needed(sizes, zero, full)
    out = [None] * sizes.size
    for g in np.flatnonzero(need).tolist():
        out[g] = guidance_for(measure, method, hksj, rows.take(np.arange(bounds[g], bounds[g + 1])),
                              cc, multiarm)
    return out


def _needed(k, zero, full):
    """Guidance is given when k < 5 or an arm has no events or only events (scalars or arrays)."""
    return (k < 5) | zero | full


def _sparse_rows(columns):
    """Per study: an arm with no events, an arm where everyone had the event."""
    events, totals = columns[0::2], columns[1::2]
    zero = np.zeros(len(events[0]), dtype=bool)
    full = zero.copy()
    for e, n in zip(events, totals):
        zero |= e == 0
        full |= e == n
    return zero, full


def _other_family(measure, method, hksj, k) -> Guidance | None:
    """Outcome types other than counts: no count methods (MH, Peto, GLMM, fragility, bayes
    read event counts); only the number of studies can call for a t-based CI."""
    if k >= 5:
        return None
    if k == 1:
        return Guidance(f"k = 1: one study, nothing to pool; the pooled row is its own {measure}", ())
    if registry.method(method).kind == "random" and not hksj:
        return Guidance(f"k = {k}: tau² is barely estimable and the z-based random-effects CI "
                        "ignores its uncertainty", (Suggestion("pool", ("--hksj",), "t with k-1 df"),))
    return Guidance(f"k = {k}: between-study variation is barely estimable from {k} studies", ())


def _what(k, two_arm, zero, full) -> str:
    if zero:
        return f"k = {k} with {'zero-event arms' if two_arm else 'zero-event studies (0/n)'}"
    if full:
        return (f"k = {k} with "
                f"{'arms where everyone had the event' if two_arm else 'all-event studies (n/n)'}")
    return f"k = {k}"


def _single(what, two_arm, sparse, measure, cc, multiarm) -> Guidance:
    if not two_arm:
        return Guidance(what, (), "a single proportion, nothing to pool; its exact "
                                  "(Clopper-Pearson) interval (--study-ci exact) is the honest one")
    if sparse:
        fragility = Suggestion("fragility", (), "Fisher's exact test, no continuity correction")
        return Guidance(f"{what}: one comparison; its {measure} and CI rest on the {cc:g} "
                        "continuity correction", () if multiarm == "split" else (fragility,))
    fragility = Suggestion("fragility", (), "how many events its significance hinges on")
    return Guidance(f"{what}: one comparison, nothing to pool",
                    () if multiarm == "split" else (fragility,))


def _single_arm(what, measure, random, rows, multiarm, small) -> Guidance:
    model = "random effects" if random else "common-effect pooling"
    verb = "are" if model == "random effects" else "is"
    target = _GLMM.default_measure[1]
    options = _switch(measure, target, _GLMM.name)
    found = []
    if _glmm_runs(target, rows, multiarm):
        found.append(Suggestion("pool", options, "exact binomial likelihood, no continuity correction"))
    if small:
        found.append(BAYES)
    return Guidance(f"{what}: normal-approximation {model} of proportions {verb} unreliable here",
                    tuple(found))


def _sparse_two_arm(what, measure, random, rows, multiarm, small) -> Guidance:
    model = "random effects" if random else "inverse-variance pooling"
    verb = "are" if model == "random effects" else "is"
    target = _GLMM.default_measure[2]
    glmm = _switch(measure, target, _GLMM.name)
    candidates = [
        (Suggestion("pool", glmm, "exact binomial likelihood"), _glmm_runs(target, rows, multiarm)),
        (Suggestion("pool", ("--method", "MH", "--cc", "0"), "Mantel-Haenszel on the raw counts"),
         _raw_runs("MH", measure, rows)),
    ]
    if measure == "OR":
        candidates.append((Suggestion("pool", ("--method", "PETO", "--cc", "0"),
                                      "Peto, raw counts"), _raw_runs("PETO", measure, rows)))
    if measure != "OR":
        candidates.reverse()       # MH first for RR and RD: it keeps the measure asked for
    found = [s for s, runs in candidates if runs] + ([BAYES] if small else [])
    return Guidance(f"{what}: normal-approximation {model} of continuity-corrected {measure}s "
                    f"{verb} unreliable here", tuple(found))


def _switch(measure, target, method) -> tuple[str, ...]:
    """The options that move a pool of ``measure`` to ``method`` on ``target``."""
    if measure == target:
        return ("--method", method)
    return ("--measure", target, "--method", method)


def _columns(rows, two_arm=True):
    from msc_meta.data.columns import rows_column

    names = ("events_t", "n_t", "events_c", "n_c") if two_arm else ("events_t", "n_t")
    return [rows_column(rows, name) for name in names]


def _raw_runs(method, measure, rows) -> bool:
    """Do MH (or Peto) give a finite estimate from these raw counts? (closed form, O(k): for
    MH the estimate and its se alone, not the whole pool with Q and weights)"""
    from msc_meta.pooling import mh

    try:
        if method == "MH":
            # the rows are the pool's studies: their counts passed the pool's escalc
            theta, se = mh.mh_estimate(measure, *_columns(rows), counts_checked=True)
        else:
            fit = mh.pool_peto(*_columns(rows))
            theta, se = fit.theta, fit.se
    except MscMetaError:
        return False
    return bool(np.isfinite(theta) and np.isfinite(se) and se > 0)


def _glmm_runs(measure, rows, multiarm) -> bool:
    """Would ``--method GLMM`` run on these studies? Decided without fitting it.

    Its closed-form refusals first. The two-arm OR GLMM is also refused when
    a Newton step passes tau² = 100 (``glmm_checks.or_divergence``), which
    only a fit can tell; where that rule can fire at all
    (``glmm_checks.divergence_possible``: a zero cell, or study ORs 1e4 apart)
    the GLMM is not offered. Fitting it to find out costs ~0.1 s per
    analysis (numpy overhead of the AGQ Newton steps), which would triple
    ``--by`` and ``export --all`` over thousands of groups, and a suggestion
    must run: MH and Peto, checked in closed form, are offered instead.
    """
    from msc_meta.pooling import glmm_checks as glmm

    if multiarm == "split" or len(rows) < 2:
        return False            # non-integer counts have no binomial likelihood
    if measure == "PLO":
        return glmm.plo_refusal(*_columns(rows, two_arm=False)) is None
    a, n1, c, n2 = _columns(rows)
    keep = ~(((a == 0) & (c == 0)) | ((a == n1) & (c == n2)))   # drop00, as pool does for OR
    if keep.sum() < 2:
        return False
    counts = (a, n1, c, n2) if keep.all() else (a[keep], n1[keep], c[keep], n2[keep])
    return glmm.or_refusal(*counts) is None and not glmm.divergence_possible(*counts)


__all__ = ["Guidance", "Suggestion", "guidance_for", "guidance_many"]
