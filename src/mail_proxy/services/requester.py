"""Who asks a use case, in the terms the use cases need.

The admin is trusted: it may point the proxy at any host, and what it saves is
marked ``target_trusted``. A tenant's hosts and callback URLs are judged by the
operator's target policy when saved; the door binds that policy to its caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

HostCheck = Callable[[str | None, int, str], Awaitable[None]]
"""``(host, port, field)``: raises ``TargetRefused`` naming ``field`` when refused."""
UrlCheck = Callable[[str, str], Awaitable[None]]
"""``(url, field)``: raises ``InvalidInput`` or ``TargetRefused`` naming ``field``."""


@dataclass(frozen=True, slots=True)
class Requester:
    is_admin: bool
    check_host: HostCheck
    check_url: UrlCheck
