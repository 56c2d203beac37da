"""The attachment cache: memory LRU, then disk, both bounded in bytes; one fetch
per key at a time.

A newsletter with the same 1 MB PDF for 1,000 recipients should fetch it once. Entries
are keyed by the content's MD5 as the sender gave it (``content_md5`` or the file
name's marker) within its tenant, so one tenant can never receive another's file
by naming its hash. Content fetched without a given MD5 is stored under the MD5
it turns out to have, for later messages that name it.

- Memory: ``GMP_CACHE_MEMORY_MAX_MB``; least recently used entries go first; an
  entry larger than the whole tier is not kept there.
- Disk: ``GMP_CACHE_DISK_DIR`` (off when unset), ``GMP_CACHE_DISK_MAX_MB``; one
  file per entry, written to a temporary name and renamed (atomic, so a reader or
  another process never sees half a file); least recently used evicted. The index
  is rebuilt from the folder at start (oldest first), so the tier survives restarts.
- Single-flight: concurrent requests for one key share the one fetch in flight
  (``shared``); its outcome, success or failure, is every waiter's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from mail_proxy.metrics import Metrics

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Blob:
    content: bytes
    mime_type: str | None = None


class AttachmentCache:
    def __init__(
        self, memory_bytes: int, disk_dir: str | None, disk_bytes: int, metrics: Metrics
    ) -> None:
        self._memory = _Memory(memory_bytes)
        self._disk = _Disk(Path(disk_dir).expanduser(), disk_bytes) if disk_dir else None
        self._metrics = metrics
        self._inflight: dict[str, asyncio.Future[Blob]] = {}

    async def get(self, key: str) -> Blob | None:
        """The cached blob (a disk hit is promoted to memory), or None."""
        blob = self._memory.get(key)
        if blob is not None:
            self._metrics.attachment_cache.labels(result="memory_hit").inc()
            return blob
        if self._disk is not None:
            blob = await asyncio.to_thread(self._disk.get, key)
            if blob is not None:
                self._metrics.attachment_cache.labels(result="disk_hit").inc()
                self._memory.put(key, blob)
                return blob
        self._metrics.attachment_cache.labels(result="miss").inc()
        return None

    async def put(self, key: str, blob: Blob) -> None:
        self._memory.put(key, blob)
        if self._disk is not None:
            await asyncio.to_thread(self._disk.put, key, blob)

    async def shared(self, key: str, fetch: Callable[[], Awaitable[Blob]]) -> Blob:
        """``fetch()``'s result, run once for every concurrent caller with ``key``.

        The fetch runs as a task of its own, so a caller that gives up (its lease
        deadline) does not cancel it for the others waiting on it.
        """
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: str, task: asyncio.Future[Blob]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: nobody may be waiting any more


class _Memory:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._size = 0
        self._entries: OrderedDict[str, Blob] = OrderedDict()

    def get(self, key: str) -> Blob | None:
        blob = self._entries.get(key)
        if blob is not None:
            self._entries.move_to_end(key)
        return blob

    def put(self, key: str, blob: Blob) -> None:
        if len(blob.content) > self._limit or key in self._entries:
            return
        self._entries[key] = blob
        self._size += len(blob.content)
        while self._size > self._limit:
            _, old = self._entries.popitem(last=False)
            self._size -= len(old.content)


class _Disk:
    """Blocking: called in worker threads, one operation at a time per call."""

    def __init__(self, folder: Path, limit: int) -> None:
        self._folder = folder
        self._limit = limit
        folder.mkdir(parents=True, exist_ok=True)
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._types: dict[str, str | None] = {}
        entries = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        for path in sorted(entries, key=lambda p: p.stat().st_mtime):
            self._sizes[path.name] = path.stat().st_size
        self._size = sum(self._sizes.values())

    def get(self, key: str) -> Blob | None:
        name = _file_name(key)
        try:
            content = (self._folder / name).read_bytes()
        except FileNotFoundError:  # evicted by another process sharing the folder
            self._forget(name)
            return None
        if name in self._sizes:
            self._sizes.move_to_end(name)
        return Blob(content, self._types.get(name))

    def put(self, key: str, blob: Blob) -> None:
        name = _file_name(key)
        if name in self._sizes or len(blob.content) > self._limit:
            return
        fd, temporary = tempfile.mkstemp(dir=self._folder, prefix=".incoming-")
        with os.fdopen(fd, "wb") as out:
            out.write(blob.content)
        os.replace(temporary, self._folder / name)
        self._sizes[name] = len(blob.content)
        self._types[name] = blob.mime_type
        self._size += len(blob.content)
        while self._size > self._limit:
            old = next(iter(self._sizes))
            with contextlib.suppress(FileNotFoundError):
                (self._folder / old).unlink()
            self._forget(old)

    def _forget(self, name: str) -> None:
        self._size -= self._sizes.pop(name, 0)
        self._types.pop(name, None)


def _file_name(key: str) -> str:
    """Keys hold tenant ids: hashed, they make safe file names of one length."""
    return hashlib.sha256(key.encode()).hexdigest()
