"""The two ways fetching an attachment fails, as the dispatcher must treat them."""

from __future__ import annotations

from mail_proxy.domain.outgoing import Unsendable
from mail_proxy.domain.text import storable

MAX_REASON = 500


def _reason(text: str) -> str:
    """Reasons end up in events the tenant reads: storable and bounded."""
    return storable(text, MAX_REASON)


class AttachmentRefused(Unsendable):
    """The attachment cannot be sent and waiting will not change it (gone, refused
    by policy, too large, not the content its MD5 names): the message fails."""

    def __init__(self, reason: str) -> None:
        super().__init__(_reason(reason))


class AttachmentUnavailable(Exception):
    """The attachment could not be fetched now (timeout, connection, 5xx): the
    message is deferred on the retry schedule."""

    def __init__(self, reason: str) -> None:
        super().__init__(_reason(reason))
