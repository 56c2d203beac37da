"""Attachments between the queue and MIME building: fetching them, and the policy a
tenant applies to them (large files offloaded) before the message is built.

``AttachmentResolver`` turns a message's attachment specs into ``Attachment``
values for ``domain.mime.build_message``: inline base64 decoded, files read from the
operator's folders only (``filesystem``), URLs and the tenant's endpoint fetched
under the target policy, each bounded in time and size, through a two-tier cache
keyed by MD5. A failure is ``AttachmentRefused`` (waiting will not help: the
message fails) or ``AttachmentUnavailable`` (try again on the retry schedule).
See docs/attachments.md and docs/large-files.md.
"""

from mail_proxy.attachments.errors import AttachmentRefused, AttachmentUnavailable
from mail_proxy.attachments.policy import NO_POLICY, AttachmentPolicy
from mail_proxy.attachments.resolver import AttachmentResolver

__all__ = [
    "NO_POLICY",
    "AttachmentPolicy",
    "AttachmentRefused",
    "AttachmentResolver",
    "AttachmentUnavailable",
]
