"""The Python SDK: what an application needs to work with the proxy, without the server.

``pip install mail-proxy`` (no extra) brings this package and ``mail_proxy.schemas``
with pydantic and httpx only; it imports nothing of the server (an import-linter
contract keeps it so). Today it verifies the signature on the proxy's client sync
calls.
"""

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
    "ExpiredSignature",
    "InvalidSignature",
    "MalformedSignature",
    "SignatureMismatch",
    "check_signature",
    "verify_signature",
]
