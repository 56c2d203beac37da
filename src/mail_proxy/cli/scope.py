"""What a command of ``mail-proxy NAME [TENANT] ...`` acts on, and its SDK client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click
from pydantic import BaseModel

from mail_proxy.cli.eml import EmlError
from mail_proxy.cli.home import Instance, InstanceError, State
from mail_proxy.client import MailProxyClient, MailProxyError

# What a command may fail with and still be one readable line (exit status 1):
# the proxy's answer (the SDK's errors carry its sentence), a local file or folder.
FAILURES: tuple[type[Exception], ...] = (InstanceError, EmlError, MailProxyError, OSError)


@dataclass
class Scope:
    """The proxy (and tenant) a command acts on, and its client, made when first used."""

    instance: Instance
    tenant: str | None = None
    _client: MailProxyClient | None = field(default=None, repr=False)

    def client(self) -> MailProxyClient:
        if self._client is None:
            if self.instance.state() in (State.STOPPED, State.STALE):
                raise InstanceError(
                    f"instance {self.instance.name!r} is not running "
                    f"(mail-proxy start {self.instance.name} --background)"
                )
            self._client = MailProxyClient(self.instance.url, self.instance.token())
        return self._client

    @property
    def tenant_id(self) -> str:
        assert self.tenant is not None  # set by the tenant group before its commands run
        return self.tenant

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def dump(model: BaseModel) -> dict[str, Any]:
    """A wire model as plain JSON values, without the ``ok`` every answer carries."""
    return {k: v for k, v in model.model_dump(mode="json", by_alias=True).items() if k != "ok"}


pass_scope = click.make_pass_decorator(Scope)
