"""Text from data is text: the one place where terminal output is made safe.

Study ids, outcome keys, factor levels, notes and paths come from files the
user may not have written. Printed through rich, ``bcg_1[red]`` would be
read as markup (and vanish), ``[/]`` would crash the table, ``[link=…]``
would become a clickable link, and an escape sequence could clear the
screen or set the window title. So every console of ``msc_meta.report``
is a :class:`SafeConsole` (made by :func:`console`), which never reads
markup, emoji codes or highlighting and shows control and invisible
format characters escaped (``\\x1b``, ``\\u200f``, as
``msc_meta.errors.visible`` does for error messages); and a styled cell is
made with :func:`cell`, which escapes the same way. Line breaks that the
report itself composes are kept.
"""

from __future__ import annotations

from msc_meta.errors import visible


def shown(value) -> str:
    """``value`` as text with control and invisible characters escaped, line breaks kept."""
    return "\n".join(visible(line) for line in str(value).split("\n"))


def cell(value, style: str = ""):
    """A rich ``Text`` of ``value`` (escaped, never markup), optionally styled."""
    from rich.text import Text

    return Text(shown(value), style=style)


def console(**options):
    """A :class:`SafeConsole`; options as ``rich.console.Console`` (markup is always off)."""
    return _safe_console_class()(**options)


_CLASS = None


def _safe_console_class():
    # rich is imported only by the commands that print tables.
    global _CLASS
    if _CLASS is None:
        from rich.console import Console

        class SafeConsole(Console):
            """A Console for which every string is plain, escaped text."""

            def __init__(self, **options):
                options.update(markup=False, emoji=False, highlight=False)
                super().__init__(**options)

            def render_str(self, text, **options):
                options.update(markup=False, emoji=False, highlight=False)
                return super().render_str(shown(text), **options)

        _CLASS = SafeConsole
    return _CLASS




def diagnostic(message: str) -> None:
    """One line on stderr (``msc-meta: …``), escaped: paths and data may hold anything."""
    import click

    click.echo(visible(message), err=True)


def json_document(doc) -> str:
    """``doc`` as the JSON text every ``--json`` prints: indented, no NaN, UTF-8.

    ``json`` already escapes control characters; invisible format and line
    separator characters (a right-to-left override in a study id…) are
    escaped too (``\\u202e``), which JSON readers decode to the same string.
    """
    import orjson      # C speed: the standard encoder with indent runs in pure Python

    # NaN and infinities were made null by the documents' builders (jsonable); orjson
    # would write them as null too
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()
    return escape_invisible(text)


def escape_invisible(text: str) -> str:
    """JSON text with its invisible characters escaped (``json_document``; any piece of it)."""
    if text.isascii():
        return text      # JSON writers escape every control character below U+0020
    import re

    from msc_meta.errors import is_invisible

    # json escapes what is below U+0020; any other invisible character is escaped here. The
    # distinct other characters are few (τ, ², ...) while their uses are many (10,000 notes
    # of a --by): test each once, then replace only the invisible ones, if any.
    hidden = [ch for ch in set(re.sub("[\x20-\x7e\n]+", "", text)) if is_invisible(ch)]
    if not hidden:
        return text
    return re.sub("[" + "".join(map(re.escape, hidden)) + "]", _json_escape, text)


def _json_escape(match) -> str:
    code = ord(match.group(0))
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


__all__ = ["cell", "console", "diagnostic", "escape_invisible", "json_document", "shown"]
