"""Text from outside made storable: one gate for everything the proxy did not write.

SMTP replies, HTTP answers, file names and mail headers arrive as bytes or as
``str`` decoded with ``surrogateescape``. Either may hold bytes that are not UTF-8
(lone surrogates once decoded), NUL characters that PostgreSQL ``text`` cannot
hold, or megabytes of banner. Such a value once broke a whole group commit of
outcomes, so every outside text passes through :func:`storable` before it is
stored, logged or put in an event: invalid bytes become U+FFFD, NUL and other C0
controls except tab/newline are dropped, and the length is capped with a marker.
"""

from __future__ import annotations

import re
from typing import Any

DEFAULT_LIMIT = 1000
ELLIPSIS = "…"
REPLACEMENT = "\ufffd"

# Lone surrogates: from surrogateescape decoding (U+DC80-U+DCFF) or typed as JSON escapes.
_SURROGATES = re.compile("[\ud800-\udfff]")

# C0 controls other than TAB, LF and CR, plus DEL: never useful in a stored reason.
_CONTROLS = {code: None for code in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)}


def storable(value: str | bytes | None, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as valid UTF-8 text of at most ``limit`` characters.

    Bytes are decoded as UTF-8 with replacement; a ``str`` carrying lone surrogates
    (from ``surrogateescape`` decoding) has them replaced the same way. The result
    always encodes to UTF-8 and never contains NUL.
    """
    if value is None:
        return ""
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="replace")
    else:
        text = _SURROGATES.sub(REPLACEMENT, value)
    text = text.translate(_CONTROLS)
    if len(text) > limit:
        return text[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS
    return text


def is_storable(value: str) -> bool:
    """True when ``value`` can be stored as given: valid UTF-8 and no NUL.

    Used to *refuse* caller input (ids, subjects, bodies) rather than silently
    change it: a caller should learn that its text was not what it meant.
    """
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_json(value: Any, limit: int | None = DEFAULT_LIMIT) -> Any:
    """A JSON value with every string in it, keys included, made :func:`storable`;
    strings cut at ``limit`` characters (``None``: not cut, only made valid)."""
    if isinstance(value, str):
        return storable(value, len(value) if limit is None else limit)
    if isinstance(value, dict):
        return {storable(str(key)): storable_json(item, limit) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item, limit) for item in value]
    return value
