"""Reading ``filesystem`` attachments from the operator's folders, and nowhere else.

A tenant names a path; the proxy reads it with its own rights. Unconfined, that
reads any file of the host (``/etc/passwd``, the proxy's database and key). So:

- only under the roots of ``GMP_ATTACHMENT_BASE_DIR``; none set, the mode is off
  (refused at submission, ``domain.attachment_spec.filesystem_refusal``);
- ``..`` is refused outright, and the path is resolved (``realpath``): a symlink
  whose target leaves every root is refused;
- the file is opened with ``O_NOFOLLOW`` and judged on the open descriptor
  (``fstat``; on Linux the descriptor's own path in ``/proc/self/fd``), so swapping
  a path component for a symlink between the check and the open gains nothing;
- a file with more than one hard link is refused: a hard link made inside a root
  to a file outside it looks like any other file there, and only the link count
  shows it (a root whose files legitimately have several links cannot be served);
- the proxy's own files (instance folder with ``secret.key`` and ``admin.token``,
  the SQLite database and its journals, the attachment cache) are refused by path
  and by inode, even when a root was set to contain them;
- only regular files, at most ``GMP_ATTACHMENT_MAX_MB``, read in a worker thread.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from mail_proxy.attachments.errors import AttachmentRefused
from mail_proxy.domain.attachment_spec import filesystem_refusal

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_PROC_FD = Path("/proc/self/fd")
_CHUNK = 1024 * 1024
_JOURNALS = ("-wal", "-shm", "-journal")


class ConfinedFiles:
    """Reads files under ``roots``, never the proxy's ``own`` paths."""

    def __init__(self, roots: Sequence[str], own: Sequence[Path], max_bytes: int) -> None:
        self._given = tuple(roots)
        self._roots = tuple(Path(root).expanduser().resolve() for root in roots)
        self._own = tuple(path.resolve() for path in own)
        self._max = max_bytes

    def read(self, path: str, name: str) -> bytes:
        """The content of ``path`` (blocking: run it in a thread)."""
        refusal = filesystem_refusal(path, self._given)
        if refusal is not None:
            raise AttachmentRefused(f"attachment {name}: {refusal}")
        real = Path(os.path.realpath(path))
        self._check_place(real, name)
        fd = _open(real, name)
        try:
            self._check_open(fd, name)
            return _read_capped(fd, self._max, name)
        finally:
            os.close(fd)

    def _check_place(self, real: Path, name: str) -> None:
        if not any(real.is_relative_to(root) for root in self._roots):
            raise AttachmentRefused(
                f"attachment {name}: the path leads outside the allowed folders (symlink)"
            )
        if any(real == own or real.is_relative_to(own) for own in self._own):
            raise AttachmentRefused(f"attachment {name}: the path is one of the proxy's own files")

    def _check_open(self, fd: int, name: str) -> None:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AttachmentRefused(f"attachment {name}: not a regular file")
        if info.st_nlink > 1:
            raise AttachmentRefused(
                f"attachment {name}: the file has several hard links, "
                "which could lead outside the allowed folders"
            )
        if info.st_size > self._max:
            raise AttachmentRefused(f"attachment {name}: larger than {self._max} bytes")
        if (info.st_dev, info.st_ino) in self._own_inodes():
            raise AttachmentRefused(f"attachment {name}: the path is one of the proxy's own files")
        opened = _PROC_FD / str(fd)
        if opened.exists():  # Linux: where the descriptor really is, after the open
            self._check_place(Path(os.readlink(opened)), name)

    def _own_inodes(self) -> set[tuple[int, int]]:
        """(device, inode) of every own file now: the files directly in own folders,
        own files and their SQLite journals. Read per call: they come and go."""
        found: set[tuple[int, int]] = set()
        for own in self._own:
            candidates = [own, *(own.with_name(own.name + suffix) for suffix in _JOURNALS)]
            if own.is_dir():
                candidates += list(own.iterdir())
            for candidate in candidates:
                try:
                    info = candidate.stat()
                except OSError:
                    continue
                found.add((info.st_dev, info.st_ino))
        return found


def _open(real: Path, name: str) -> int:
    try:
        return os.open(real, _FLAGS)
    except FileNotFoundError:
        raise AttachmentRefused(f"attachment {name}: no such file") from None
    except PermissionError:
        raise AttachmentRefused(f"attachment {name}: the proxy may not read the file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AttachmentRefused(f"attachment {name}: the file is a symlink") from None
        raise AttachmentRefused(f"attachment {name}: cannot be opened") from None


def _read_capped(fd: int, max_bytes: int, name: str) -> bytes:
    """At most ``max_bytes``: a file that grew since ``fstat`` is refused too."""
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, _CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise AttachmentRefused(f"attachment {name}: larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
