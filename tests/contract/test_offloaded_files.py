"""Offloaded large files: tokens, download state and expiry, on both backends and
across stores (processes) sharing one database."""

from __future__ import annotations

import asyncio
import dataclasses

from mail_proxy.domain.large_file_config import DAY
from mail_proxy.domain.large_files import OffloadedFile
from mail_proxy.ports import Store
from mail_proxy.settings import Settings
from mail_proxy.storage import open_store

NOW = 1_700_000_000.0


def _file(file_id: str, *, ttl_days: float = 30, lifespan_days: float | None = 2) -> OffloadedFile:
    return OffloadedFile(
        id=file_id,
        tenant_id="acme",
        message_id="m1",
        filename="big.pdf",
        url=f"file:///srv/big/acme/{file_id}/big.pdf",
        size=12_345_678,
        created_at=NOW,
        expires_at=NOW + ttl_days * DAY,
        lifespan_after_download=None if lifespan_days is None else lifespan_days * DAY,
    )


async def test_first_download_brings_the_expiry_forward(store: Store) -> None:
    file = _file("a" * 32)
    await store.offloaded_files.add(file)
    token = store.offloaded_files.token(file)
    first = await store.offloaded_files.redeem(token, NOW + DAY)
    assert first == dataclasses.replace(
        file, first_download_at=NOW + DAY, expires_at=NOW + 3 * DAY, downloads=1
    )
    second = await store.offloaded_files.redeem(token, NOW + 2 * DAY)
    assert second == dataclasses.replace(first, downloads=2)
    assert await store.offloaded_files.redeem(token, NOW + 3 * DAY) is None


async def test_lifespan_never_extends_and_is_optional(store: Store) -> None:
    short = _file("b" * 32, ttl_days=1, lifespan_days=5)
    plain = _file("c" * 32, lifespan_days=None)
    for file in (short, plain):
        await store.offloaded_files.add(file)
    got = await store.offloaded_files.redeem(store.offloaded_files.token(short), NOW)
    assert got is not None and got.expires_at == NOW + DAY
    got = await store.offloaded_files.redeem(store.offloaded_files.token(plain), NOW + 10 * DAY)
    assert got is not None and got.expires_at == plain.expires_at and got.downloads == 1


async def test_forged_unknown_or_deleted_tokens_are_refused(store: Store) -> None:
    file = _file("d" * 32)
    token = store.offloaded_files.token(file)
    assert await store.offloaded_files.redeem(token, NOW) is None  # never added
    await store.offloaded_files.add(file)
    assert await store.offloaded_files.redeem(token[:-2] + "xx", NOW) is None
    assert await store.offloaded_files.redeem(token, NOW) is not None
    assert await store.offloaded_files.delete([file.id]) == 1
    assert await store.offloaded_files.redeem(token, NOW) is None


async def test_expired_lists_oldest_first(store: Store) -> None:
    files = [_file(c * 32, ttl_days=days) for c, days in (("e", 3), ("f", 1), ("0", 9))]
    for file in files:
        await store.offloaded_files.add(file)
    due = await store.offloaded_files.expired(NOW + 5 * DAY, limit=10)
    assert [f.id for f in due] == ["f" * 32, "e" * 32]
    assert [f.id for f in await store.offloaded_files.expired(NOW + 5 * DAY, limit=1)] == ["f" * 32]


async def test_concurrent_first_downloads_shorten_once(db_settings: Settings) -> None:
    """Two processes serve the link at the same moment: the lifespan starts at the
    first download and the count holds both."""
    stores = [await open_store(db_settings) for _ in range(2)]
    try:
        file = _file("1" * 32)
        await stores[0].offloaded_files.add(file)
        token = stores[0].offloaded_files.token(file)
        got = await asyncio.gather(
            stores[0].offloaded_files.redeem(token, NOW + DAY),
            stores[1].offloaded_files.redeem(token, NOW + DAY + 5),
        )
        assert all(g is not None for g in got)
        [last] = [g for g in got if g is not None and g.downloads == 2]
        assert last.first_download_at in (NOW + DAY, NOW + DAY + 5)
        assert last.expires_at == last.first_download_at + 2 * DAY
    finally:
        for opened in stores:
            await opened.close()
