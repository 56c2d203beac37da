"""Write-only secrets (SMTP and IMAP passwords, callback tokens): the rule of saving them.

Reads never show a stored secret, so a client editing what it read cannot send it
back; the doors turn "not sent" or "sent back masked" into ``None`` and the use
cases keep the stored secret for it.
"""

from __future__ import annotations


def kept(given: str | None, stored: str | None) -> str | None:
    """The secret to store: the one given, or the stored one when none is given."""
    return stored if given is None else given
