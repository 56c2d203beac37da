"""The one hook between resolved attachments and MIME building.

The dispatcher calls ``apply`` after a message's attachments are fetched (sizes
are known then) and before the message is built, so a tenant's rules (large files
offloaded, warned about or refused; ``large_files.LargeFilePolicy``) change what
is sent without the dispatcher knowing them.
"""

from __future__ import annotations

from typing import Protocol

from mail_proxy.domain.mime import Attachment
from mail_proxy.domain.models import Tenant
from mail_proxy.domain.outgoing import OutgoingMessage


class AttachmentPolicy(Protocol):
    """Implementations may subclass this to inherit the no-op default."""

    async def apply(
        self,
        tenant: Tenant,
        message: OutgoingMessage,
        attachments: list[Attachment],
        now: float,
    ) -> tuple[OutgoingMessage, list[Attachment]]:
        """The message and attachments to send: unchanged, or with attachments
        replaced by links in the bodies. Raises an ``Unsendable`` (the message
        fails) when the tenant's policy rejects what it was given. The default sends
        everything as it was fetched."""
        return message, attachments


class _Unchanged(AttachmentPolicy):
    """No attachment policy wired in."""


NO_POLICY: AttachmentPolicy = _Unchanged()
