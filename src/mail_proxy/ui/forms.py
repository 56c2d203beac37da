"""Reading the dashboard's forms (``application/x-www-form-urlencoded``).

Values are checked as the API checks JSON text: a NUL or text that is not UTF-8
is refused with a 400 naming the field, before any of it reaches the database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

from fastapi import Request

from mail_proxy.errors import InvalidInput

MAX_FIELDS = 200


class Form:
    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def text(self, name: str) -> str | None:
        """The field stripped; None when absent or blank."""
        values = self._fields.get(name)
        value = values[0].strip() if values else ""
        return value or None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise InvalidInput(f"{name} is required", field=name)
        return value

    def flag(self, name: str) -> bool:
        return self.text(name) in ("on", "true", "1")

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise InvalidInput(f"{name} must be a whole number", field=name) from None


async def read_form(request: Request) -> Form:
    body = await request.body()
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise InvalidInput("The form is not valid UTF-8") from None
    try:
        fields = parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except ValueError:  # undecodable %-escapes, or too many fields
        raise InvalidInput(f"The form is malformed (at most {MAX_FIELDS} fields)") from None
    for name, values in fields.items():
        if any("\x00" in v for v in values) or "\x00" in name:
            raise InvalidInput(f"NUL characters are not allowed ({name})", field=name)
    return Form(fields)


def parse_time(value: str, name: str) -> float | None:
    """A ``datetime-local`` value (``2026-12-05T14:30``), read as UTC."""
    if not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise InvalidInput(f"{name} must be a date and time", field=name) from None
