"""When two labels are the same key: the one normalisation behind every comparison of keys.

``study_id``, ``outcome``, ``trial``, the study_ids named in ``subgroup_of``
and in totals.csv ``members``, ``unit``, and the ``--outcome`` option are all
compared with ``key()``: two spellings that print alike, or differ only in
capitals, are the same key. ``key()`` is:

1. remove invisible characters: Unicode format characters (category Cf:
   right-to-left and left-to-right marks, soft hyphen, zero-width space and
   joiners, word joiner, byte-order mark, ...) and the other characters
   Unicode marks as default-ignorable that print as nothing (combining
   grapheme joiner, Hangul fillers, variation selectors, Mongolian free
   variation selectors);
2. NFKC normalisation (full-width ``Ａ`` is ``A``, the ligature ``ﬁ`` is
   ``fi``, a no-break space is a space, composed and decomposed accents are
   one letter), then case folding (``A`` is ``a``, ``ß`` is ``ss``), then
   NFKC again (case folding can undo it);
3. every run of white space (spaces, tabs, line breaks) becomes one space,
   and spaces at the ends go.

The loader refuses a table in which two rows write one key differently
(``msc_meta.data.load``), so the spelling a loaded table uses for a key is
unique and code that compares the text of a loaded table directly stays
right; ``key()`` is what decides that two spellings are the same.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Default-ignorable code points that are not in category Cf (Cf is tested by category).
_IGNORABLE_NOT_CF = frozenset(
    [chr(c) for c in (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0)]
    + [chr(c) for c in range(0x180B, 0x1810)]        # Mongolian free variation selectors (+ U+180E, Cf)
    + [chr(c) for c in range(0xFE00, 0xFE10)]        # variation selectors 1-16
    + [chr(c) for c in range(0xE0100, 0xE01F0)]      # variation selectors 17-256
)


def is_invisible(ch: str) -> bool:
    """True for a character that prints as nothing: a format character (Cf) or another default-ignorable one."""
    return ch in _IGNORABLE_NOT_CF or unicodedata.category(ch) == "Cf"


def key(text: str | None) -> str | None:
    """The comparison key of a label (``None`` stays ``None``): see the module docstring.
    Called for every row by every check: ASCII takes an exact shortcut, and the Unicode
    path (the costly one) is cached."""
    if text is None:
        return None
    if text.isascii():
        # exact shortcut: ASCII has no format characters, NFKC leaves it alone
        # and case folding is lower(); most labels are ASCII
        return " ".join(text.lower().split())
    return _key_unicode(text)


@lru_cache(maxsize=4096)
def _key_unicode(text: str) -> str:
    visible = "".join(ch for ch in text if not is_invisible(ch))
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", visible).casefold())
    return " ".join(folded.split())


def same_key(a: str | None, b: str | None) -> bool:
    """True when ``a`` and ``b`` are the same key (``None`` only equals ``None``)."""
    return key(a) == key(b)


__all__ = ["is_invisible", "key", "same_key"]
