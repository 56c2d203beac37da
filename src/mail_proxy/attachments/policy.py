"""The one hook between resolved attachments and MIME building.

The dispatcher calls ``apply`` after a message's attachments are resolved and
before the message is built, so a tenant's rules (large files offloaded, warned
about or refused) change what is sent without the dispatcher knowing them.
"""

from __future__ import annotations

from typing import Protocol

from mail_proxy.domain.mime import Attachment
from mail_proxy.domain.models import Tenant
from mail_proxy.domain.outgoing import OutgoingMessage


class AttachmentPolicy(Protocol):
    async def apply(
        self, tenant: Tenant, message: OutgoingMessage, attachments: list[Attachment], now: float
    ) -> tuple[OutgoingMessage, list[Attachment]]: ...
