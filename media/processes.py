"""`MediaProcesses`: the node's calls carried by media processes, off its event loop.

Every packet of every call costs the process that terminates it (SRTP, jitter
buffers, packetising, RTCP, sockets): on the node's own event loop, tens of calls slow
intake and push, and one loop cannot use a second core.  Here each call lives in one of
`processes` child processes (`media.process_main`, each a `MediaServer` on its own
event loop, optionally at a lower CPU priority so that intake and push win the CPU),
and the node keeps the HTTP API: offers, answers, hang-ups and leaves go over a local
socket, and the ends come back to the `CallObserver` on the node's loop.

The same `CallMedia` as `MediaServer`: a call is answered by the process with the
fewest calls and stays there (its viewers and re-offers go to it); `hang_up` and
`leave` return once the observer has been told of what they ended, as in-process.
A media process that dies takes its calls with it: their sessions are reported ended
(`FAILED`, with what of the recording reached the disk, read back from the file) and
their viewers as left, at once, so the incident shows no call that is not there and
the citizen's page, offering again, starts a new segment; the next call starts a new
process.  (If the node dies too, its next start records them, as after a crash.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from media.config import MediaConfig
from media.interface import (
    Answer,
    AtCapacity,
    CallObserver,
    EndReason,
    LeaveReason,
    MediaStats,
    NoLiveCall,
    SessionEnded,
    Unobserved,
    ViewerLeft,
    check_call_limit,
)
from media.process_main import encode_message, read_message, refusal_from_wire
from media.recordings import read_back

logger = logging.getLogger(__name__)

_CLOSE_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class _LostSession:
    call_id: str
    session_id: str
    started_at: datetime


@dataclass(eq=False)
class _Process:
    index: int
    proc: asyncio.subprocess.Process
    writer: asyncio.StreamWriter
    ready: asyncio.Future[None]
    calls: set[str] = field(default_factory=set)  # calls it holds (it said so)
    routed: set[str] = field(default_factory=set)  # calls sent to it, not yet held
    pending: dict[int, asyncio.Future[tuple[Any, int]]] = field(default_factory=dict)
    events_received: int = 0
    events_done: int = 0
    events: asyncio.Queue[tuple[str, Any] | None] = field(default_factory=asyncio.Queue)
    done_changed: asyncio.Event = field(default_factory=asyncio.Event)
    alive: bool = True
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class MediaProcesses:
    """Implements `media.interface.CallMedia` with `processes` media processes."""

    def __init__(
        self,
        config: MediaConfig,
        *,
        processes: int = 2,
        niceness: int = 0,
        interfaces: Sequence[str] = (),
        observer: CallObserver | None = None,
    ) -> None:
        self._config = config
        self._count = max(1, processes)
        self._niceness = niceness
        self._interfaces = tuple(interfaces)
        self._observer: CallObserver = observer or Unobserved()
        self._processes: list[_Process | None] = [None] * self._count
        self._starting: list[asyncio.Task[_Process] | None] = [None] * self._count
        self._ids = itertools.count(1)
        self._live: dict[str, str] = {}  # call -> its live session
        self._started: dict[str, datetime] = {}  # live session -> when it was answered
        self._viewers: dict[str, set[str]] = {}  # call -> its viewers
        self._reserved = 0
        self._closing = False

    def attach(self, observer: CallObserver) -> None:
        self._observer = observer

    def start(self) -> None:
        """Start every media process (in the background)."""
        for index in range(self._count):
            self._spawn(index)

    # --- the processes ------------------------------------------------------------

    def _spawn(self, index: int) -> asyncio.Task[_Process]:
        current = self._processes[index]
        starting = self._starting[index]
        if starting is not None and (
            not starting.done()
            or (not starting.cancelled() and starting.exception() is None
                and current is not None and current.alive)
        ):  # fmt: skip
            return starting
        task = asyncio.create_task(self._start_process(index), name=f"media-process-{index}")
        self._starting[index] = task
        return task

    async def _start_process(self, index: int) -> _Process:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "media.process_main", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        loop = asyncio.get_running_loop()
        process = _Process(index, proc, writer, loop.create_future())
        self._processes[index] = process
        level = logging.getLogger().getEffectiveLevel()  # the node's: its records come here
        writer.write(encode_message((self._config, self._interfaces, self._niceness, index, level)))
        process.tasks.append(asyncio.create_task(self._read(process, reader)))
        process.tasks.append(asyncio.create_task(self._report(process)))
        await asyncio.shield(process.ready)
        return process

    async def _process_for(self, call_id: str, *, new: bool) -> _Process | None:
        """The process holding `call_id`; with `new`, the one to take it if none does."""
        for process in self._processes:
            if (
                process is not None
                and process.alive
                and (call_id in process.calls or call_id in process.routed)
            ):
                await asyncio.shield(process.ready)
                return process
        if not new:
            return None
        for index in range(self._count):
            if self._processes[index] is None or not self._processes[index].alive:  # type: ignore[union-attr]
                self._spawn(index)
        started = [t for t in self._starting if t is not None]
        await asyncio.gather(*(asyncio.shield(t) for t in started), return_exceptions=True)
        alive = [p for p in self._processes if p is not None and p.alive and p.ready.done()]
        if not alive:
            raise RuntimeError("no media process could be started")
        return min(alive, key=lambda p: (len(p.calls | p.routed), p.index))

    async def _read(self, process: _Process, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await read_message(reader)
                if message is None:
                    break
                kind = message[0]
                if kind == "reply":
                    _, request_id, ok, value, events_sent = message
                    future = process.pending.pop(request_id, None)
                    if future is not None and not future.done():
                        if ok:
                            future.set_result((value, events_sent))
                        else:
                            future.set_exception(refusal_from_wire(*value))
                elif kind == "event":
                    _, what, value = message
                    process.events_received += 1
                    if what == "call_added":
                        process.calls.add(value)
                        process.routed.discard(value)
                    elif what == "call_dropped":
                        process.calls.discard(value)
                        self._viewers.pop(value, None)  # each one's leave came before
                    if what == "session_ended":
                        self._started.pop(value.session_id, None)
                        if self._live.get(value.call_id) == value.session_id:
                            del self._live[value.call_id]
                    elif what == "viewer_left":
                        self._forget_viewer(value.call_id, value.viewer_id)
                    process.events.put_nowait((what, value))
                elif kind == "log":
                    record = logging.makeLogRecord(message[1])
                    logging.getLogger(record.name).handle(record)
                elif kind == "ready" and not process.ready.done():
                    process.ready.set_result(None)
        finally:
            self._lost(process)

    def _lost(self, process: _Process) -> None:
        """The process's socket closed: it ended (asked to, or not)."""
        process.alive = False
        error = RuntimeError("the media process ended")
        if not process.ready.done():
            process.ready.set_exception(error)
            process.ready.exception()  # retrieved: whoever waits raises it
        for future in process.pending.values():
            if not future.done():
                future.set_exception(error)
        process.pending.clear()
        now = datetime.now(UTC)
        sessions = [
            _LostSession(call_id, session_id, self._started.pop(session_id, now))
            for call_id, session_id in list(self._live.items()) if call_id in process.calls
        ]  # fmt: skip
        viewers = [
            (call_id, viewer_id) for call_id in process.calls
            for viewer_id in self._viewers.pop(call_id, ())
        ]  # fmt: skip
        for session in sessions:
            del self._live[session.call_id]
        if not self._closing:
            logger.error(
                "a media process ended: its calls are gone", extra={
                    "media_process": process.index, "calls": len(sessions),
                    "viewers": len(viewers), "returncode": process.proc.returncode,
                },
            )  # fmt: skip
            # Told after what the process itself reported before it died.
            process.events.put_nowait(("lost", (sessions, viewers, now)))
        process.calls.clear()
        process.routed.clear()
        process.events.put_nowait(None)

    def _forget_viewer(self, call_id: str, viewer_id: str) -> None:
        viewers = self._viewers.get(call_id)
        if viewers is not None:
            viewers.discard(viewer_id)
            if not viewers:
                del self._viewers[call_id]

    async def _report_lost(
        self, sessions: list[_LostSession], viewers: list[tuple[str, str]], at: datetime
    ) -> None:
        """The ends a dead process could not report: each session `FAILED` with its
        recording as the disk holds it (the muxer flushes as it goes, so the file is
        readable up to the last cluster; read back in a thread), each viewer `FAILED`."""
        for session in sessions:
            recording = await read_back(self._config.recordings_dir / self.recording_path(
                session.call_id, session.session_id
            ))  # fmt: skip
            await self._observer.session_ended(SessionEnded(
                session.call_id, session.session_id, EndReason.FAILED, session.started_at,
                at, connected=recording is not None, recording=recording,
            ))  # fmt: skip
        for call_id, viewer_id in viewers:
            await self._observer.viewer_left(ViewerLeft(call_id, viewer_id, LeaveReason.FAILED))

    async def _report(self, process: _Process) -> None:
        """Tell the observer, in order, what the process ended."""
        while True:
            item = await process.events.get()
            if item is None:
                return
            what, value = item
            try:
                if what == "lost":
                    await self._report_lost(*value)
                elif what == "session_ended":
                    await self._observer.session_ended(value)
                elif what == "viewer_left":
                    await self._observer.viewer_left(value)
            except Exception:
                logger.exception("the call observer failed", extra={"event": what})
            finally:
                process.events_done += 1
                process.done_changed.set()

    async def _call(self, process: _Process, method: str, *args: Any, **kwargs: Any) -> Any:
        if not process.alive:
            raise RuntimeError("the media process ended")
        request_id = next(self._ids)
        future: asyncio.Future[tuple[Any, int]] = asyncio.get_running_loop().create_future()
        process.pending[request_id] = future
        process.writer.write(encode_message((request_id, method, args, kwargs)))
        value, events_sent = await future
        # What the process reported before it answered is told before the caller goes on.
        while process.events_done < events_sent and process.alive:
            process.done_changed.clear()
            await process.done_changed.wait()
        return value

    # --- the interface ------------------------------------------------------------

    def recording_path(self, call_id: str, session_id: str) -> str:
        return f"calls/{call_id}/{session_id}.webm"

    def live_session(self, call_id: str) -> str | None:
        return self._live.get(call_id)

    def live_calls(self) -> int:
        return len(self._live)

    def check_capacity(self, call_id: str | None = None) -> None:
        if call_id is not None and any(
            p is not None and p.alive and call_id in p.calls for p in self._processes
        ):
            return
        check_call_limit(self.live_calls() + self._reserved, self._config.max_calls)

    async def publish(self, call_id: str, session_id: str, offer_sdp: str) -> Answer:
        if self._closing:
            raise AtCapacity("the server is stopping", retry_after_s=5)
        self.check_capacity(call_id)
        self._reserved += 1
        try:
            process = await self._process_for(call_id, new=True)
            assert process is not None
            process.routed.add(call_id)
            try:
                answer: Answer = await self._call(
                    process, "publish", call_id, session_id, offer_sdp
                )
            finally:
                process.routed.discard(call_id)
        finally:
            self._reserved -= 1
        self._live[call_id] = session_id
        self._started[session_id] = datetime.now(UTC)
        return answer

    async def watch(self, call_id: str, viewer_id: str, offer_sdp: str, *, talk: bool) -> Answer:
        process = await self._process_for(call_id, new=False)
        if process is None:
            raise NoLiveCall("no one is on this call now")
        answer: Answer = await self._call(process, "watch", call_id, viewer_id, offer_sdp,
                                          talk=talk)  # fmt: skip
        self._viewers.setdefault(call_id, set()).add(viewer_id)
        return answer

    async def hang_up(self, call_id: str, session_id: str, reason: EndReason) -> bool:
        process = await self._process_for(call_id, new=False)
        if process is None:
            return False
        return bool(await self._call(process, "hang_up", call_id, session_id, reason))

    async def leave(self, call_id: str, viewer_id: str, reason: LeaveReason) -> bool:
        process = await self._process_for(call_id, new=False)
        if process is None:
            return False
        left = bool(await self._call(process, "leave", call_id, viewer_id, reason))
        self._forget_viewer(call_id, viewer_id)
        return left

    async def end_call(self, call_id: str) -> None:
        process = await self._process_for(call_id, new=False)
        if process is not None:
            await self._call(process, "end_call", call_id)

    async def stats(self) -> MediaStats:
        totals = dict.fromkeys((f.name for f in fields(MediaStats)), 0)
        for process in self._processes:
            if process is None or not process.alive or not process.ready.done():
                continue
            with contextlib.suppress(RuntimeError):
                stats: MediaStats = await self._call(process, "stats")
                for name in totals:
                    totals[name] += getattr(stats, name)
        return MediaStats(**totals)

    async def close(self) -> None:
        """End every call (`SHUTDOWN`, reported) and every media process."""
        self._closing = True
        for task in self._starting:
            if task is not None:
                with contextlib.suppress(Exception):
                    await task
        await asyncio.gather(*(self._close_process(p) for p in self._processes if p is not None))

    async def _close_process(self, process: _Process) -> None:
        if process.alive:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._call(process, "close"), _CLOSE_TIMEOUT_S)
        process.writer.close()
        try:
            await asyncio.wait_for(process.proc.wait(), _CLOSE_TIMEOUT_S)
        except TimeoutError:
            process.proc.kill()
            await process.proc.wait()
        for task in process.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
