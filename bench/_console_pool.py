"""Resuming console feeds (bench/_phones.Console) for bench/faults.py, in this process
or spread over processes of their own.

One load-generator process cannot keep up with a reconnect storm of 200 python-socketio
clients beside the phones: it notices dropped connections late and its own connection
attempts time out, so the figures would be the client's.  `ConsolePool.start(...,
processes=P)` runs the consoles in P child processes (as bench/fanout.py does with
bench/_consoles.py); each child answers over a pipe:

* `connected`: whether every one of its consoles is connected and resumed;
* `wait_for` (seq, timeout): once every console has `seq` (or the timeout ran out);
* `snapshot`: a copy of each console's record (every event with its CLOCK_MONOTONIC
  arrival, shared with the parent; connections, resumes, drops, refusals, resyncs);
* `stop`: ends the consoles and sends the last snapshot.

Snapshots come back in the order the consoles were given.  `processes=0` keeps the
consoles in this process (the snapshots are then the live objects).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
from collections.abc import AsyncIterator, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from _phones import Console

ConsoleSpec = tuple[str, int]  # (staff token, home node)


def _state(console: Console) -> dict[str, Any]:
    return {
        f.name: getattr(console, f.name)
        for f in dataclasses.fields(console)
        if not f.name.startswith("_")
    }


async def _serve(conn: Connection, urls: list[str], specs: list[ConsoleSpec]) -> None:
    loop = asyncio.get_running_loop()
    consoles = [Console(urls, token, home) for token, home in specs]
    stop = asyncio.Event()
    running = [asyncio.create_task(c.run(stop)) for c in consoles]
    while True:
        kind, *args = await loop.run_in_executor(None, conn.recv)
        if kind == "connected":
            conn.send(all(c.connected for c in consoles))
        elif kind == "wait_for":
            seq, timeout_s = args
            await asyncio.gather(*(c.wait_for(seq, timeout_s) for c in consoles))
            conn.send(True)
        elif kind == "snapshot":
            conn.send([_state(c) for c in consoles])
        elif kind == "stop":
            stop.set()
            await asyncio.gather(*running, return_exceptions=True)
            conn.send([_state(c) for c in consoles])
            return


def _child(conn: Connection, urls: list[str], specs: list[ConsoleSpec]) -> None:
    asyncio.run(_serve(conn, urls, specs))


class ConsolePool:
    """The consoles of `specs` on `urls`, in this process or in child processes."""

    def __init__(self, urls: Sequence[str], specs: Sequence[ConsoleSpec], processes: int):
        self.urls = list(urls)
        self.count = len(specs)
        self.processes = processes
        # Console k runs in process (k // nodes) % P: each process gets consoles of every
        # node, so the killed node's consoles are not all in one process.
        self._slots = [(k // max(1, len(urls))) % max(1, processes) for k in range(len(specs))]
        self._local = [Console(self.urls, t, h) for t, h in specs] if processes == 0 else []
        self._local_stop = asyncio.Event()
        self._local_tasks: list[asyncio.Task[None]] = []
        self._pipes: list[Connection] = []
        self._procs: list[BaseProcess] = []
        self._specs = list(specs)
        self._lock = asyncio.Lock()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def _start(self) -> None:
        if self.processes == 0:
            self._local_tasks = [asyncio.create_task(c.run(self._local_stop)) for c in self._local]
            return
        ctx = multiprocessing.get_context("spawn")
        for p in range(self.processes):
            mine = [s for s, slot in zip(self._specs, self._slots, strict=True) if slot == p]
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_child, args=(child, self.urls, mine), daemon=True)
            proc.start()
            child.close()
            self._pipes.append(parent)
            self._procs.append(proc)

    async def _ask(self, *message: Any, timeout_s: float = 120) -> list[Any]:
        """Send `message` to every child; their answers, in process order."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            for pipe in self._pipes:
                pipe.send(message)
            answers = []
            for pipe in self._pipes:
                if not await loop.run_in_executor(None, pipe.poll, timeout_s):
                    raise TimeoutError(f"a console process did not answer {message[0]!r}")
                answers.append(pipe.recv())
            return answers

    def _merge(self, per_process: list[list[dict[str, Any]]]) -> list[Console]:
        taken = [0] * len(per_process)
        merged = []
        for slot in self._slots:
            merged.append(Console(**per_process[slot][taken[slot]]))
            taken[slot] += 1
        return merged

    async def connected(self) -> bool:
        if self.processes == 0:
            return all(c.connected for c in self._local)
        return all(await self._ask("connected"))

    async def wait_for(self, seq: int, timeout_s: float) -> None:
        if self.processes == 0:
            await asyncio.gather(*(c.wait_for(seq, timeout_s) for c in self._local))
            return
        await self._ask("wait_for", seq, timeout_s, timeout_s=timeout_s + 60)

    async def snapshot(self) -> list[Console]:
        """Each console's record so far, in the order of the specs."""
        if self.processes == 0:
            return self._local
        return self._merge(await self._ask("snapshot"))

    async def _stop(self) -> None:
        if self.processes == 0:
            self._local_stop.set()
            await asyncio.gather(*self._local_tasks, return_exceptions=True)
            return
        with contextlib.suppress(Exception):
            await self._ask("stop", timeout_s=60)
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, urls: Sequence[str], specs: Sequence[ConsoleSpec], processes: int
    ) -> AsyncIterator[ConsolePool]:
        pool = cls(urls, specs, processes)
        try:
            pool._start()
            yield pool
        finally:
            await pool._stop()
