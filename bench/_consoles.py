"""Console feeds for the fan-out benchmark, in their own processes.

Each process runs some python-socketio clients on `/console`, as the console app does:
connect, resume, take the live feed, and on a lost connection reconnect and resume after
the last seq it has.  Every event is recorded with the CLOCK_MONOTONIC time it arrived
(shared with the process that posts the alarms).  The parent talks to each process over
a pipe: "ready" once every console has resumed; then ("finish", seq, grace_s) makes it
wait until every console has `seq` (or the grace ran out) and send back its logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import msgspec
import socketio

CONSOLE = "/console"

# One receipt at a console: (monotonic time, seq, event name, incident id or None).
Receipt = tuple[float, int, str, str | None]


@dataclass(frozen=True, slots=True)
class ConsoleSpec:
    url: str
    token: str


class _FastJson:
    """The json module for python-socketio clients, on msgspec: a console process decodes
    every event for each of its consoles, and the clients share the machine being measured."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return msgspec.json.encode(obj).decode()

    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        return msgspec.json.decode(text)


@dataclass(slots=True)
class ConsoleLog:
    """What one console saw: every event with its arrival, and its reconnections."""

    received: list[Receipt] = field(default_factory=list)
    reconnects: int = 0
    refused_resumes: list[str] = field(default_factory=list)


class _Console:
    """One console feed, as a console app runs it: on a lost connection it reconnects
    and resumes after the last seq it has; records every event with its arrival."""

    def __init__(self, spec: ConsoleSpec) -> None:
        self.spec = spec
        self.sio = socketio.AsyncClient(
            reconnection_delay=0.5, reconnection_delay_max=2, json=_FastJson
        )
        self.log = ConsoleLog()
        self.received = self.log.received
        self.last_seq = 0
        self.joined = False
        self.target_seq: int | None = None
        self.caught_up = asyncio.Event()
        self.sio.on("*", self._record, namespace=CONSOLE)
        self.sio.on("connect", self._connected, namespace=CONSOLE)

    async def _connected(self) -> None:
        if not self.joined:
            return  # the first connection resumes in open()
        self.log.reconnects += 1
        await self.sio.emit(
            "resume", {"last_seq": self.last_seq}, namespace=CONSOLE, callback=self._resumed
        )

    def _resumed(self, answer: Any) -> None:
        if not (isinstance(answer, dict) and answer.get("ok") and not answer.get("resync")):
            self.log.refused_resumes.append(repr(answer)[:200])

    def _record(self, name: str, data: Any) -> None:
        now = time.monotonic()
        seq = int(data["seq"])
        incident = data.get("incident")
        self.received.append((now, seq, name, incident["id"] if incident else None))
        self.last_seq = max(self.last_seq, seq)
        if self.target_seq is not None and self.last_seq >= self.target_seq:
            self.caught_up.set()

    async def wait_for(self, seq: int) -> None:
        self.target_seq = seq
        if self.last_seq < seq:
            await self.caught_up.wait()

    async def open(self) -> None:
        await self.sio.connect(
            self.spec.url, namespaces=[CONSOLE], auth={"token": self.spec.token},
            transports=["websocket"], wait_timeout=30,
        )  # fmt: skip
        answer = await self.sio.call("resume", {"last_seq": None}, namespace=CONSOLE, timeout=30)
        if not answer.get("ok"):
            raise RuntimeError(f"resume refused: {answer}")
        self.last_seq = int(answer["seq"])
        self.joined = True


async def _consoles(conn: Connection, specs: Sequence[ConsoleSpec]) -> None:
    loop = asyncio.get_running_loop()
    consoles = [_Console(spec) for spec in specs]
    try:
        await asyncio.gather(*(c.open() for c in consoles))
    except Exception as exc:
        conn.send(("error", repr(exc)))
        return
    conn.send(("ready", len(consoles)))
    # ("finish", seq, grace_s): wait until every console has seq, or the grace ran out.
    _, target_seq, grace_s = await loop.run_in_executor(None, conn.recv)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace_s):
            await asyncio.gather(*(c.wait_for(target_seq) for c in consoles))
    await asyncio.gather(*(c.sio.disconnect() for c in consoles), return_exceptions=True)
    conn.send(("results", [c.log for c in consoles]))


def _console_process(conn: Connection, specs: list[ConsoleSpec]) -> None:
    asyncio.run(_consoles(conn, specs))


async def _receive(conn: Connection, timeout_s: float) -> Any:
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, conn.poll, timeout_s):
        raise TimeoutError(f"no answer from a console process within {timeout_s} s")
    return conn.recv()


@contextlib.asynccontextmanager
async def console_processes(
    specs: Sequence[ConsoleSpec], processes: int
) -> AsyncIterator[tuple[list[Connection], list[int]]]:
    """Start `processes` processes sharing the consoles of `specs` between them; yield
    (pipes, pids) once every console has resumed."""
    ctx = multiprocessing.get_context("spawn")
    pipes, started = [], []
    try:
        for k in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_console_process, args=(child, list(specs[k::processes])), daemon=True
            )
            proc.start()
            child.close()
            pipes.append(parent)
            started.append(proc)
        for pipe in pipes:
            kind, detail = await _receive(pipe, 120)
            if kind != "ready":
                raise RuntimeError(f"a console process failed: {detail}")
        yield pipes, [proc.pid for proc in started if proc.pid is not None]
    finally:
        for proc in started:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


async def collect(pipes: Sequence[Connection], seq: int, grace_s: float) -> list[ConsoleLog]:
    """Each console's log, in the order of the specs, once all have `seq` or after grace_s."""
    for pipe in pipes:
        pipe.send(("finish", seq, grace_s))
    per_process = [(await _receive(pipe, grace_s + 60))[1] for pipe in pipes]
    # Console k ran in process k % P as its (k // P)-th console.
    processes = len(pipes)
    total = sum(len(p) for p in per_process)
    return [per_process[k % processes][k // processes] for k in range(total)]
