"""The hook between fetching attachments and building the message.

Tenants may ask for large files to be sent differently (``large_file_config``:
warn, reject, or rewrite into a download link). That policy runs after every
attachment is fetched, when sizes are known, and before the MIME message is
built; its implementation lives beside this module (``large_files.py``).
"""

from __future__ import annotations

from typing import Protocol

from mail_proxy.domain.mime import Attachment
from mail_proxy.domain.models import Tenant
from mail_proxy.domain.outgoing import OutgoingMessage


class LargeFilePolicy(Protocol):
    """Implementations may subclass this to inherit the no-op default."""

    async def apply(
        self,
        tenant: Tenant,
        message: OutgoingMessage,
        attachments: list[Attachment],
        now: float,
    ) -> tuple[OutgoingMessage, list[Attachment]]:
        """The message and attachments to send: unchanged, or with attachments
        replaced by links in the bodies. Raises ``AttachmentRefused`` (the message
        fails) when the tenant's policy rejects what it was given. The default sends
        everything as it was fetched."""
        return message, attachments


class _Unchanged(LargeFilePolicy):
    """No large-file handling (no policy wired in)."""


NO_LARGE_FILES: LargeFilePolicy = _Unchanged()
