"""Content-addressed evidence files under the data directory.

A file is written (temp file, fsync, rename) before the transaction that records it,
so a committed row never points at a missing file; a failed transaction leaves at
worst an unreferenced file, which `discard` removes when nothing else refers to it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class EvidenceStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def key_for(self, sha256: str, extension: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"

    def path(self, key: str) -> Path:
        resolved = (self._root / key).resolve()
        if not resolved.is_relative_to(self._root.resolve()):
            raise ValueError(f"evidence key escapes the store: {key!r}")
        return resolved

    def put(self, data: bytes, sha256: str, extension: str) -> tuple[str, bool]:
        """Store `data`; returns (key, whether this call created the file).  Blocking."""
        key = self.key_for(sha256, extension)
        target = self.path(key)
        if target.exists():
            return key, False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return key, True

    def discard(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()
