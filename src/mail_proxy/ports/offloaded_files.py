"""The port of offloaded large files: their download links and download state.

A file a tenant's ``large_file_config`` moved out of a message is downloaded
through whichever process answers the link, so its expiry and first download are
kept in the database, where every process sees the same values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from mail_proxy.domain.large_files import OffloadedFile


class OffloadedFiles(ABC):
    """Rows of uploaded files; the download tokens the proxy signs for them."""

    @abstractmethod
    async def add(self, file: OffloadedFile) -> None: ...

    @abstractmethod
    def token(self, file: OffloadedFile) -> str:
        """The signed token of the file's download link, valid until ``expires_at``
        (signed with a key derived from the instance's secret key)."""

    @abstractmethod
    async def redeem(self, token: str, now: float) -> OffloadedFile | None:
        """The file of a genuine token that has not expired, with this download
        counted in the same transaction (the first one brings ``expires_at``
        forward by ``lifespan_after_download``); None for a forged, altered, unknown
        or expired token."""

    @abstractmethod
    async def expired(self, now: float, limit: int) -> list[OffloadedFile]:
        """Files whose ``expires_at`` has passed, oldest expiry first."""

    @abstractmethod
    async def delete(self, file_ids: Sequence[str]) -> int: ...
