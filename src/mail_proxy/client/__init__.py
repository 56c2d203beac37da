"""The Python SDK: what an application needs to work with the proxy, without the server.

``pip install mail-proxy`` (no extra) brings this package and ``mail_proxy.schemas``
with pydantic and httpx only; it imports nothing of the server (an import-linter
contract keeps it so): ``MailProxyClient`` and ``AsyncMailProxyClient`` for every
endpoint of the API, their typed errors, and the check of the signature on the
proxy's client sync calls.
"""

from mail_proxy.client.api import Stats
from mail_proxy.client.clients import AsyncMailProxyClient, MailProxyClient
from mail_proxy.client.errors import (
    AuthenticationError,
    Conflict,
    MailProxyError,
    NotFound,
    RequestTimeout,
    ServerUnavailable,
    ValidationError,
)
from mail_proxy.client.signature import (
    HEADER,
    ExpiredSignature,
    InvalidSignature,
    MalformedSignature,
    SignatureMismatch,
    check_signature,
    verify_signature,
)

__all__ = [
    "HEADER",
    "AsyncMailProxyClient",
    "AuthenticationError",
    "Conflict",
    "ExpiredSignature",
    "InvalidSignature",
    "MailProxyClient",
    "MailProxyError",
    "MalformedSignature",
    "NotFound",
    "RequestTimeout",
    "ServerUnavailable",
    "SignatureMismatch",
    "Stats",
    "ValidationError",
    "check_signature",
    "verify_signature",
]
