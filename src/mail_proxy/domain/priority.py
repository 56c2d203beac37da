"""Message priority: the wire forms clients send and the precedence between them.

Clients send a priority as an integer 0-3 or as a label (``immediate``, ``high``,
``medium``, ``low``). A message's own priority wins over the batch's
``default_priority``, which wins over the instance default (``GMP_DEFAULT_PRIORITY``).
The dispatcher sends priority 0 in a pass of its own, then 1, 2, 3, FIFO within one.
"""

from __future__ import annotations

from mail_proxy.domain.models import Priority

LABELS: dict[str, Priority] = {p.name.lower(): p for p in Priority}


class InvalidPriority(ValueError):
    """The value is neither an integer 0-3 nor one of the labels."""


def parse_priority(value: object) -> Priority:
    """Turn ``2``, ``"2"`` or ``"medium"`` into a Priority; raise InvalidPriority otherwise."""
    if isinstance(value, bool):
        raise InvalidPriority(f"invalid priority: {value!r}")
    if isinstance(value, int):
        return _from_int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in LABELS:
            return LABELS[text]
        if text.isascii() and text.isdigit():  # "²".isdigit() is True, int("²") fails
            return _from_int(int(text))
    raise InvalidPriority(f"invalid priority: {value!r} (use 0-3 or {', '.join(LABELS)})")


def _from_int(value: int) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        raise InvalidPriority(f"invalid priority: {value} (use 0-3)") from None


def resolve_priority(
    message_value: object, batch_default: Priority | None, instance_default: int
) -> Priority:
    """The priority a message is queued with: its own, else the batch's, else the instance's."""
    if message_value is not None:
        return parse_priority(message_value)
    if batch_default is not None:
        return batch_default
    return Priority(instance_default)
