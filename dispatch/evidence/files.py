"""Content-addressed evidence files under the data directory.

A file is written (temp file, fsync, rename) before the transaction that records it,
so a committed row never points at a missing file.  Two reports carrying the same photo
share its file, so a failed submission never deletes a file there and then: another
submission may be about to record it, or its own rows may have committed after all
(an error after COMMIT).  Its files are handed to `IntakeService.forget_evidence`,
which removes them later, only if no attachment refers to them and no one has stored
them again meanwhile (`put` touches a file it finds, `discard_if_idle` spares it).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

from dispatch.domain.errors import StorageFull

logger = logging.getLogger(__name__)

# The disk (or the quota) is full: nothing can be stored until an operator makes room.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})
# What a client is told to wait before sending the same report again.
STORAGE_FULL_RETRY_S = 30


class EvidenceStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        # Finding a file (and touching it) and discarding it never interleave: a file
        # found by `put` is not unlinked by a discard that looked at it just before.
        self._lock = threading.Lock()

    def key_for(self, sha256: str, extension: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"

    def path(self, key: str) -> Path:
        resolved = (self._root / key).resolve()
        if not resolved.is_relative_to(self._root.resolve()):
            raise ValueError(f"evidence key escapes the store: {key!r}")
        return resolved

    def put(self, data: bytes, sha256: str, extension: str) -> tuple[str, bool]:
        """Store `data`; returns (key, whether this call created the file).  Blocking.
        Raises StorageFull when the disk has no room (nothing of `data` is left behind)."""
        try:
            return self._put(data, sha256, extension)
        except OSError as exc:
            if exc.errno not in _NO_ROOM:
                raise
            full = exc
        # An operator has to make room: say so every time, not once.
        logger.error("evidence store full; report refused", extra={"root": str(self._root)})
        raise StorageFull(
            "the evidence store is full: the report was not kept; send it again later",
            retry_after_s=STORAGE_FULL_RETRY_S,
        ) from full

    def _put(self, data: bytes, sha256: str, extension: str) -> tuple[str, bool]:
        key = self.key_for(sha256, extension)
        target = self.path(key)
        with self._lock:
            if target.exists():
                os.utime(target)  # wanted again: a pending discard spares it
                return key, False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            with self._lock:
                os.replace(tmp, target)
            _fsync_directory(target.parent)  # the rename itself survives a power cut
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return key, True

    def discard_if_idle(self, key: str, idle_s: float) -> bool:
        """Remove the file unless it was stored (or stored again) in the last `idle_s`
        seconds; the caller has checked that no attachment refers to it.  Blocking."""
        path = self.path(key)
        with self._lock:
            try:
                if path.stat().st_mtime > time.time() - idle_s:
                    return False
                path.unlink()
            except FileNotFoundError:
                return False
        return True


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
