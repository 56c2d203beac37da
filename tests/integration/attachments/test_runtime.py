"""The runtime wires fetching and the attachment policy into its dispatcher: a
message fetched by URL arrives; one above the tenant's large-file limit with
``action: reject`` fails with the policy's reason."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from email import message_from_bytes, policy

from mail_proxy.domain.models import Account, NewMessage, Tenant
from mail_proxy.runtime import Runtime
from mail_proxy.settings import Settings
from mail_proxy.testing import FileRoute, FileServer, RecordingSink

BIG = bytes(range(256)) * 80  # 20 KiB


async def test_runtime_fetches_and_applies_the_large_file_policy(
    settings_factory: Callable[..., Settings], files: FileServer
) -> None:
    files.routes["/small.txt"] = FileRoute(body=b"small", content_type="text/plain")
    settings = settings_factory(allow_private_targets=True, send_loop_interval=0.05)
    reject = {"enabled": True, "max_size_mb": 10 / 1024, "action": "reject"}
    with RecordingSink() as sink:
        runtime = await Runtime.open(settings)
        try:
            store, now = runtime.store, time.time()
            await store.tenants.create(Tenant(id="t1", large_file_config=reject), None, now)
            account = Account(id="acc", tenant_id="t1", host="127.0.0.1", port=sink.port)
            await store.accounts.upsert(account, now)
            small = {"filename": "s.txt", "storage_path": f"{files.url}/small.txt"}
            big = {"filename": "b.bin", "storage_path": "base64:" + base64.b64encode(BIG).decode()}
            await store.intake.enqueue(
                [
                    NewMessage("t1", "small", "acc", 2, _payload("small", small)),
                    NewMessage("t1", "big", "acc", 2, _payload("big", big)),
                ],
                now,
            )
            runtime.start_workers()
            async with asyncio.timeout(10):
                while (failed := await store.messages.get("t1", "big")) is None or (
                    failed.status != "error" or not sink.count()
                ):
                    await asyncio.sleep(0.02)
            assert "b.bin" in (failed.error or "")
            parsed = message_from_bytes(sink.arrivals[0].raw, policy=policy.default)
            assert [p.get_filename() for p in parsed.iter_attachments()] == ["s.txt"]
        finally:
            await runtime.close()


def _payload(message_id: str, spec: dict[str, str]) -> dict[str, object]:
    return {
        "id": message_id,
        "from": "a@example.org",
        "to": ["b@example.com"],
        "subject": "s",
        "attachments": [spec],
    }
