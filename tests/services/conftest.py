"""Requesters for the admin use cases: the trusted admin, and a tenant whose
targets a policy judges (here: a list of refused hosts, recording what was asked)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mail_proxy.errors import TargetRefused
from mail_proxy.services.requester import Requester


@dataclass
class Policy:
    """What the checks were asked, and the hosts (or URLs) they refuse."""

    refused: set[str] = field(default_factory=set)
    asked: list[tuple[str | None, int | None, str]] = field(default_factory=list)

    async def host(self, host: str | None, port: int, field: str) -> None:
        self._judge(host, port, field)

    async def url(self, url: str, field: str) -> None:
        self._judge(url, None, field)

    def _judge(self, target: str | None, port: int | None, field: str) -> None:
        self.asked.append((target, port, field))
        if target in self.refused:
            raise TargetRefused(f"{field}: refused", field=field)

    def requester(self, *, is_admin: bool) -> Requester:
        return Requester(is_admin, self.host, self.url)


@pytest.fixture
def policy() -> Policy:
    return Policy()


@pytest.fixture
def admin(policy: Policy) -> Requester:
    return policy.requester(is_admin=True)


@pytest.fixture
def tenant(policy: Policy) -> Requester:
    return policy.requester(is_admin=False)
