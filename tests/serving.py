"""Running `micro110` as a real subprocess, for end-to-end tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil

_BANNER = re.compile(r"micro110 is running on (\S+)")


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database (keeps host, socket and credentials)."""
    base, sep, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{database}{sep}{query}"


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# For servers under a load of alarms from a few citizens on one address (multi-process
# tests, benchmarks): the intake budgets off.  They have their own tests
# (tests/dispatch/services/test_intake_budgets.py).
NO_INTAKE_BUDGETS = {
    "MICRO110_ALARMS_PER_CITIZEN": "0",
    "MICRO110_REPORTS_PER_CITIZEN": "0",
    "MICRO110_MESSAGES_PER_CITIZEN": "0",
    "MICRO110_INTAKE_PER_NETWORK": "0",
}


def child_env(extra: Mapping[str, str] | None = None, *, external: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO110_")}
    if not external:
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
    env["MICRO110_LOG_LEVEL"] = "INFO"
    env.update(extra or {})
    return env


@dataclass
class ServerProcess:
    proc: asyncio.subprocess.Process
    base_url: str
    stdout: list[str] = field(default_factory=list)
    stderr_path: Path | None = None

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 60) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            rest = await asyncio.wait_for(self.proc.stdout.read(), timeout_s)  # type: ignore[union-attr]
        except TimeoutError:
            self.proc.kill()
            raise
        self.stdout.extend(rest.decode().splitlines())
        return await self.proc.wait()

    def stderr_lines(self) -> list[str]:
        assert self.stderr_path is not None
        return self.stderr_path.read_text().splitlines()


async def run_cli(*args: str, env: Mapping[str, str], stdin: bytes = b"") -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dispatch.cli", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=dict(env),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def start_server(
    data_dir: Path, *, env: Mapping[str, str], port: int | None = None, timeout_s: float = 90
) -> ServerProcess:
    port = port or free_port()
    stderr_path = data_dir.parent / f"{data_dir.name}-{port}.stderr"
    stderr = stderr_path.open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dispatch.cli", "serve",
        "--data-dir", str(data_dir), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=stderr, env=dict(env),
    )  # fmt: skip
    stderr.close()
    server = ServerProcess(proc, "", stderr_path=stderr_path)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                raw = await proc.stdout.readline()
                if not raw:
                    code = await proc.wait()
                    raise RuntimeError(
                        f"server exited with {code}:\n" + stderr_path.read_text()[-3000:]
                    )
                line = raw.decode().rstrip("\n")
                server.stdout.append(line)
                if match := _BANNER.search(line):
                    server.base_url = match[1]
                if line.startswith("Press Ctrl+C"):
                    return server
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise


def processes_under(data_dir: Path) -> list[psutil.Process]:
    """Live processes that belong to the embedded servers of `data_dir`."""
    needle = str(data_dir.resolve())
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(needle in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
    return found


def embedded_pids(data_dir: Path) -> list[int]:
    """The postmaster and redis-server pids recorded in `data_dir`."""
    pids = []
    for pidfile in (data_dir / "postgres" / "postmaster.pid", data_dir / "redis" / "redis.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pids.append(int(pidfile.read_text().split()[0]))
    return pids


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
