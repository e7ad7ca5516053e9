"""The shape of the outcome table and of the totals table, and the rules a file must obey.

The contract lives in ``shared/cli-contract.md`` ("The outcome table"); this
module is its machine-readable form. ``msc_meta.data.load`` enforces every
rule below while reading, so that everything downstream can trust a loaded
``OutcomeTable``: counts are whole numbers, ``0 <= events <= n``, arms are
complete, keys are unique.

What a file may look like (reading)
-----------------------------------
- Encoding: UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8"),
  or UTF-16 with a byte-order mark (Excel's "Unicode text"; also UTF-16
  without a mark when its zero bytes make it unmistakable). Anything else
  (Latin-1 / Windows-1252 bytes, typically from Excel's plain "CSV") is
  refused, naming the row and column of the first offending byte, with the
  advice to save the file as "CSV UTF-8". We refuse rather than guess,
  because a guessed code page silently corrupts names and quotes.
- Delimiter: comma, semicolon or tab, detected from the header line (the
  one of the three that yields the known column names). In a semicolon- or
  tab-separated file a decimal comma is accepted in the number columns
  ``timepoint_weeks``, ``dose_cells``, ``pct_t``, ``pct_c`` (``43,3`` is 43.3),
  as European spreadsheets write it.
  A first line ``sep=;`` (Excel's delimiter directive) sets the delimiter and
  is not counted as a row (Excel hides it).
- Line ends: LF, CRLF or CR. Quoted fields may hold commas, quotes (doubled)
  and line breaks.
- Spaces and invisible characters (``keys.is_invisible``: byte-order marks,
  zero-width spaces, right-to-left marks, soft hyphens...) at either end of a
  cell are removed (so ``A`` and ``A`` followed by a zero-width space are one
  study group).
- Keys (study_id, outcome, trial, subgroup_of names, unit) are compared with
  ``keys.key``: after removing invisible characters, NFKC and case folding.
  A key written two ways in one table is refused, naming both rows.
- Blank lines, and rows whose every cell is blank, are skipped. Row numbers
  in messages count them anyway, so that they match what a spreadsheet shows
  (the header is row 1; a quoted line break does not start a new row).
- Unknown extra columns are kept as text (``--by`` can group on them). A
  header cell left blank is ignored when its column holds nothing; otherwise
  it is an error.
- Counts: whole numbers written as digits. ``3.0`` is accepted as 3
  (spreadsheets export whole numbers that way); ``3.5`` is not. A blank
  cell means "the source gives no count".

Validation table (each row: one InputError, one line, exit code 2)
------------------------------------------------------------------
Every message starts with ``<file>[, row R][, column 'C']:`` and then says,
in plain words, what is wrong and how to fix it.

==========================================  ======  ==========  ====================================================
problem                                     row     column      message (abridged)
==========================================  ======  ==========  ====================================================
file does not exist                         --      --          the file does not exist
path is a directory                         --      --          is a folder, not a file; give the path of a CSV file
a pipe or device (would hang)               --      --          is not a regular file (a pipe or a device)
file cannot be read (permissions, I/O)      --      --          cannot be read (permission denied)
file over 50,000,000 bytes (checked first)  --      --          is N bytes (73.1 MB); ... over 50,000,000 bytes
empty file (0 bytes or only blanks)         --      --          the file is empty
header only, no data rows                   --      --          has a header but no data rows
binary / not text (NUL bytes, xlsx, ...)    --      --          is not a text CSV file (looks like an Excel workbook)
Latin-1 / cp1252 bytes                      R       C           contains a character that is not valid UTF-8 ...
unbalanced quote                            R       --          a quoted text starting in row R is never closed
cell over 131,072 characters                R       C           a cell is N characters long, over the limit ...
control character in a cell (ESC, BEL...)   R       C           contains a control character (\x1b) ...
line break or tab inside a key cell         R       C           contains a line break or tab (\n) ...
stray quote inside a field                  R       --          badly placed double quote
header cell repeated                        1       C           the column name appears twice in the header
header cell blank but column has data       1       --          header cell N is blank but the column holds data
required column missing                     1       C           required column is missing (found: ...)
row with more / fewer cells than header     R       --          has 23 cells but the header has 21 columns
study_id or outcome blank                   R       C           is blank; every row needs a study_id and an outcome
count not a number (``abc``)                R       C           'abc' is not a whole number
count with decimals (``3.5``)               R       C           '3.5' is not a whole number
count with thousands separator (``1,234``)  R       C           write 1234 without separators
count written as NA / NaN / inf / ``-``     R       C           is not a count; leave the cell empty ...
count negative                              R       C           is negative
count huge (> 10^9)                         R       C           is implausibly large (over 1,000,000,000)
n = 0                                       R       C           is 0; an arm needs at least one participant
events > n                                  R       C           events_t (12) is larger than n_t (10)
events given, n blank                       R       C           events_t is given but n_t is blank
control arm half filled                     R       C           events_c is given but n_c is blank (or the reverse)
control counts without treatment events     R       C           events_c/n_c given but events_t blank
unit not patient / fistula                  R       unit        'patients' is not a unit; use patient or fistula
timepoint_weeks not plain digits 0-5200    R       C           '24 weeks' is not a number; '1_0' has an underscore
  (no 1e3, 1_0, -0, inf, nan)                                     '-0' has a minus sign; is over 5,200 weeks
dose_cells not a number from 1 to 1e12      R       C           '3x10^7' is not a number; write e.g. 3e7
pct_t / pct_c not a percentage 0-100        R       C           '63 pct' is not a percentage
p_value not in (0, 1] (``p < 0.05``, 0)     R       p_value     '0' is not a p-value; write the exact two-sided p
duplicate (study_id, outcome,               R       study_id    repeats row R0: same study_id, outcome,
  timepoint_weeks, unit), compared as keys                        timepoint_weeks and unit
key written two ways (Closure / closure)    R       C           'Closure' and 'closure' (row R0) are the same
                                                                  outcome written differently
totals.csv: arm not treatment/control/all   R       arm
totals.csv: members blank                   R       members
totals.csv: total_n not a count >= 1        R       total_n
==========================================  ======  ==========  ====================================================

Allowed on purpose: ``n_t`` (or ``n_c``) with a blank event count on a row
that has no event counts at all (the source printed only a percentage but
gives the arm size); such a row is listed, checked for arm size, and never
pooled.
"""

from __future__ import annotations

from msc_meta import registry

# Columns the outcome table must have (a user's file may have only these).
REQUIRED_COLUMNS: tuple[str, ...] = ("study_id", "outcome", "events_t", "n_t")


def required_columns(header) -> tuple[str, ...]:
    """The columns a file with this header must have: a table of another outcome type
    (any of ``OUTCOME_TYPE_COLUMNS`` in its header) needs no event counts."""
    if any(name in OUTCOME_TYPE_COLUMNS for name in header):
        return ("study_id", "outcome")
    return REQUIRED_COLUMNS


# Every column the curated file has, in its order.
CURATED_COLUMNS: tuple[str, ...] = (
    "study_id", "trial", "subgroup_of", "outcome", "timepoint_weeks", "unit",
    "events_t", "n_t", "pct_t", "events_c", "n_c", "pct_c",
    "design", "product", "cell_source", "donor", "route",
    "dose_cells", "dose_text", "source", "quote", "note", "bind",
)

COUNT_COLUMNS: tuple[str, ...] = ("events_t", "n_t", "events_c", "n_c")
PCT_COLUMNS: tuple[str, ...] = ("pct_t", "pct_c")
FLOAT_COLUMNS: tuple[str, ...] = ("timepoint_weeks", "dose_cells")
TEXT_COLUMNS: tuple[str, ...] = (
    "study_id", "outcome", "trial", "subgroup_of", "unit", "design", "product", "cell_source",
    "donor", "route", "dose_text", "source", "quote", "note", "bind",
)
# Outcome types beyond counts (``shared/cli-contract.md``, "Outcome types beyond counts"):
# a row may hold one of them instead of counts. Numbers, parsed strictly like the other
# number columns (digits, one decimal point, an exponent such as 1e-4; no inf, nan, 1_0).
# Spread given another way ("Spread given another way" in the contract), converted to the
# SD (and mean) the measures read, in one place (``conversions.fill_spreads``), before
# ``effects.compute``: the 95% CI of an arm's mean, its median with the IQR and/or range
# (Wan et al. 2014), and for paired means the SEMs of the two means and the paired
# t statistic or two-sided p-value (the SD of the change when r is not reported).
QUANTILE_COLUMNS: tuple[str, ...] = tuple(
    f"{what}_{arm}" for arm in ("t", "c") for what in ("median", "q1", "q3", "min", "max"))
MEAN_CI_COLUMNS: tuple[str, ...] = ("mean_ci_low_t", "mean_ci_high_t", "mean_ci_low_c", "mean_ci_high_c")
PAIRED_TEST_COLUMNS: tuple[str, ...] = ("p_value", "t_stat")
SPREAD_COLUMNS: tuple[str, ...] = (
    ("se_t", "se_c", "se_pre", "se_post") + MEAN_CI_COLUMNS + QUANTILE_COLUMNS + PAIRED_TEST_COLUMNS)

SIGNED_COLUMNS: tuple[str, ...] = (      # any sign: means, effects on the analysis scale
    "mean_t", "mean_c", "mean_pre", "mean_post", "yi", "effect", "effect_ci_low", "effect_ci_high",
    "t_stat",
) + MEAN_CI_COLUMNS + QUANTILE_COLUMNS
POSITIVE_COLUMNS: tuple[str, ...] = (    # > 0: spreads, variances, standard errors, person-time
    "sd_t", "sd_c", "sd_pre", "sd_post", "se_t", "se_c", "se_pre", "se_post", "vi", "sei",
    "time_t", "time_c",
)
CORRELATION_COLUMNS: tuple[str, ...] = ("r", "cor_t")   # from -1 to 1
LEVEL_COLUMNS: tuple[str, ...] = ("effect_level",)      # a confidence level in percent, (0, 100)
PVALUE_COLUMNS: tuple[str, ...] = ("p_value",)          # a two-sided p-value, (0, 1]
OUTCOME_TYPE_COLUMNS: tuple[str, ...] = (
    "mean_t", "sd_t", "se_t", "mean_c", "sd_c", "se_c",
    "mean_pre", "mean_post", "sd_pre", "sd_post", "r",
    "time_t", "time_c", "cor_t",
    "yi", "vi", "sei", "effect", "effect_ci_low", "effect_ci_high", "effect_level",
    "se_pre", "se_post",
) + MEAN_CI_COLUMNS + QUANTILE_COLUMNS + PAIRED_TEST_COLUMNS

# Which input family (``registry.FAMILIES``) a row's filled columns make, tried in this
# order: the first whose marker columns hold a value decides. Counts (events_t and n_t)
# come last, since rates also have events_t. A row with none is no data (e.g. only a
# percentage printed): listed, never pooled.
FAMILY_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("generic", ("yi", "vi", "sei", "effect", "effect_ci_low", "effect_ci_high")),
    ("correlations", ("cor_t",)),
    ("means_paired", ("mean_pre", "mean_post", "sd_pre", "sd_post", "se_pre", "se_post")
     + PAIRED_TEST_COLUMNS),
    ("means_two", ("mean_c", "sd_c", "se_c", "mean_ci_low_c", "mean_ci_high_c")
     + QUANTILE_COLUMNS[5:]),
    ("means_one", ("mean_t", "sd_t", "se_t", "mean_ci_low_t", "mean_ci_high_t")
     + QUANTILE_COLUMNS[:5]),
    ("rates_two", ("time_c",)),
    ("rates_one", ("time_t",)),
)

KNOWN_COLUMNS: frozenset[str] = frozenset(CURATED_COLUMNS) | frozenset(OUTCOME_TYPE_COLUMNS)

# The loader reads every family's columns: the command line offers their measures.
for _family, _ in FAMILY_MARKERS:
    registry.add_table_family(_family)

UNITS: tuple[str, ...] = ("patient", "fistula")

# Optional risk-of-bias columns (Cochrane RoB 2, Sterne et al. 2019, BMJ 366:l4898): one
# judgement per domain and overall. Kept as extra text columns (``--by rob_overall`` groups on
# them) after the loader has checked each value and written it the one way listed here.
ROB_DOMAINS: tuple[tuple[str, str], ...] = (
    ("rob_d1", "randomisation process"),
    ("rob_d2", "deviations from intended interventions"),
    ("rob_d3", "missing outcome data"),
    ("rob_d4", "measurement of the outcome"),
    ("rob_d5", "selection of the reported result"),
    ("rob_overall", "overall"),
)
ROB_COLUMNS: tuple[str, ...] = tuple(column for column, _ in ROB_DOMAINS)
ROB_LEVELS: tuple[str, ...] = ("low", "some concerns", "high")

# A row is identified by these; two rows may not share them.
ROW_KEY: tuple[str, ...] = ("study_id", "outcome", "timepoint_weeks", "unit")

# No trial has a billion participants; a bigger count is a typing slip
# (or an ID pasted into the wrong column).
MAX_COUNT = 10**9

# Refuse before reading. The columnar loader reads a plain CSV at ~25 bytes per
# two-arm row, so 50 MB is ~2 million studies, which load and pool in a few
# seconds; a larger file is almost surely the wrong file (the curated table is
# a few kB). Decimal megabytes (what file managers show), stated in bytes in
# the message (whose wording tests/test_bad_inputs.py fixes).
MAX_FILE_BYTES = 50_000_000

# The longest cell: a quote from a paper is a few hundred characters. (The
# csv module's own default limit; a longer cell is a wrong file or a quote
# opened and closed far apart.)
MAX_CELL_CHARS = 131_072

# timepoint_weeks (and --timepoint): 100 years; more is a typing slip.
MAX_WEEKS = 5200

# dose_cells: local MSC doses are 1e7 to 1e9 cells; 1e12 (a kilogram of
# cells) is far beyond any dose, so a bigger number is a typing slip.
MAX_DOSE_CELLS = 1e12

# Columns holding keys (compared with msc_meta.data.keys.key): no line break
# or tab may occur inside them.
KEY_COLUMNS: frozenset[str] = frozenset(
    {"study_id", "outcome", "trial", "subgroup_of", "unit", "members", "arm"})

# totals.csv: totals that a source states for a trial, to check sums of arms.
TOTALS_REQUIRED_COLUMNS: tuple[str, ...] = (
    "trial", "timepoint_weeks", "unit", "arm", "members", "total_n",
)
TOTALS_COLUMNS: tuple[str, ...] = TOTALS_REQUIRED_COLUMNS + ("source", "quote", "note")
TOTALS_ARMS: tuple[str, ...] = ("treatment", "control", "all")
