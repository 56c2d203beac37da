"""Attachment test kit: a real HTTP file server (``mail_proxy.testing.FileServer``)
per test, and the delivery kit (real aiosmtpd servers, a running dispatcher, a
queue over a real SQLite store) for the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.integration.delivery.conftest import (  # noqa: F401 (fixtures used here)
    ca,
    client_tls,
    pipelining,
    queue,
    server_tls,
    smtp_server,
    start_dispatcher,
)

from mail_proxy.testing import FileServer


@pytest.fixture
def files() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server
