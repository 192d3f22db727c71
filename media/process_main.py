"""A media process: one `MediaServer` on its own event loop, driven by the node
(`media.processes.MediaProcesses`) over a socket it inherited.

    python -m media.process_main FD

Messages both ways are length-prefixed pickles (the node and this process are one
program).  From the node: the configuration first, then requests
(`(id, method, args, kwargs)`).  To the node: `("ready",)`, replies
(`("reply", id, ok, value, events_sent)`), and events in the order they happen
(`("event", kind, value)`: sessions ended, viewers left, calls this process took or
dropped, and its log records).  A reply says how many events went before it, so the
node answers its caller only once those have been handled (as `MediaServer` reports an
end to its observer before `hang_up` returns).

The process ends when the node's socket closes (everything is closed first) and, on
Linux, is killed with the node (PR_SET_PDEATHSIG): recordings are flushed as they are
written, so they stay readable either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import ctypes
import logging
import os
import pickle
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import Any

from media.interface import (
    AtCapacity,
    BadOffer,
    MediaRefused,
    NoLiveCall,
    SessionEnded,
    ViewerLeft,
)

_LENGTH = struct.Struct("!I")


async def read_message(reader: asyncio.StreamReader) -> Any:
    """The next message, or None at the end of the stream."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        return pickle.loads(await reader.readexactly(_LENGTH.unpack(header)[0]))  # noqa: S301 - our own process
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def encode_message(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def refusal_to_wire(exc: BaseException) -> tuple[str, str, Any]:
    if isinstance(exc, AtCapacity):
        return ("AtCapacity", exc.message, exc.retry_after_s)
    if isinstance(exc, NoLiveCall):
        return ("NoLiveCall", exc.message, exc.field)
    if isinstance(exc, BadOffer):
        return ("BadOffer", exc.message, exc.field)
    if isinstance(exc, MediaRefused):
        return ("MediaRefused", exc.message, exc.field)
    return ("Error", f"{type(exc).__name__}: {exc}", None)


def refusal_from_wire(kind: str, message: str, extra: Any) -> Exception:
    if kind == "AtCapacity":
        return AtCapacity(message, retry_after_s=int(extra))
    if kind == "NoLiveCall":
        return NoLiveCall(message, field=extra)
    if kind == "BadOffer":
        return BadOffer(message, field=extra)
    if kind == "MediaRefused":
        return MediaRefused(message, field=extra)
    return RuntimeError(f"the media process failed: {message}")


class _Link:
    """This process's side of the socket: writes are queued in order."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.events_sent = 0

    def send(self, message: Any) -> None:
        if self._writer.is_closing():
            return
        self._writer.write(encode_message(message))

    def event(self, kind: str, value: Any) -> None:
        self.events_sent += 1
        self.send(("event", kind, value))


class _Relay:
    """The `CallObserver` here: every report goes to the node."""

    def __init__(self, link: _Link) -> None:
        self._link = link

    async def session_ended(self, ended: SessionEnded) -> None:
        self._link.event("session_ended", ended)

    async def viewer_left(self, left: ViewerLeft) -> None:
        self._link.event("viewer_left", left)


class _LogRelay(logging.Handler):
    """This process's log records, handled by the node's logging (its format)."""

    def __init__(self, link: _Link, index: int) -> None:
        super().__init__()
        self._link = link
        self._index = index

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = dict(record.__dict__)
            fields["msg"] = record.getMessage()
            fields["args"] = None
            if record.exc_info:
                fields["exc_text"] = logging.Formatter().formatException(record.exc_info)
            fields["exc_info"] = None
            fields["media_process"] = self._index
            try:
                pickle.dumps(fields)
            except Exception:  # noqa: BLE001 - an extra that does not pickle: as text
                fields = {k: v if isinstance(v, (int, float, str, type(None))) else str(v)
                          for k, v in fields.items()}  # fmt: skip
            self._link.send(("log", fields))
        except Exception:  # noqa: BLE001
            self.handleError(record)


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


async def serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    link = _Link(writer)
    setup = await read_message(reader)
    if setup is None:
        return
    config, interfaces, niceness, index, level = setup
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    root = logging.getLogger()
    root.handlers[:] = [_LogRelay(link, index)]
    # The node's level, and its quiet for aiortc's and aioice's chatter.
    root.setLevel(level)
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))

    from media.network import limit_host_interfaces, read_datagrams_in_bursts
    from media.server import MediaServer

    limit_host_interfaces(interfaces)
    read_datagrams_in_bursts()  # this process carries media only
    if config.profile_dir is not None:
        profile_on_signal(config.profile_dir)

    class _Server(MediaServer):
        def _new_call(self, call_id: str) -> Any:
            link.event("call_added", call_id)
            return super()._new_call(call_id)

        def _drop_call(self, call: Any) -> None:
            known = self._calls.get(call.id) is call
            super()._drop_call(call)
            if known:
                link.event("call_dropped", call.id)

    server = _Server(config, _Relay(link))
    server.start()
    tasks: set[asyncio.Task[None]] = set()

    async def handle(
        request_id: int, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        try:
            value = await getattr(server, method)(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, MediaRefused):
                logging.getLogger(__name__).exception("media request %s failed", method)
            link.send(("reply", request_id, False, refusal_to_wire(exc), link.events_sent))
        else:
            link.send(("reply", request_id, True, value, link.events_sent))
        await writer.drain()

    link.send(("ready",))
    try:
        while True:
            message = await read_message(reader)
            if message is None:
                break
            request_id, method, args, kwargs = message
            if method == "close":
                await server.close()
                link.send(("reply", request_id, True, None, link.events_sent))
                await writer.drain()
                break
            task = asyncio.create_task(handle(request_id, method, args, kwargs))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        await server.close()  # (idempotent) the node is gone: close everything
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()


def profile_on_signal(directory: Path) -> None:
    """SIGUSR1 starts cProfile in this process; the next writes what it measured to
    `directory/media-<pid>.prof` (and the next starts again).  Deterministic, unlike a
    sampling profiler: those over-count the places where a thread takes a lock and the
    costly first packet of every burst, and their pauses of the process shift its work."""
    profile: cProfile.Profile | None = None

    def toggle(*_: Any) -> None:
        nonlocal profile
        if profile is None:
            profile = cProfile.Profile()
            profile.enable()
            return
        profile.disable()
        directory.mkdir(parents=True, exist_ok=True)
        # Whole or not at all: whoever waits for the file may read it the moment it exists.
        path = directory / f"media-{os.getpid()}.prof"
        partial = path.with_suffix(".prof.partial")
        profile.dump_stats(partial)
        os.replace(partial, path)
        profile = None

    signal.signal(signal.SIGUSR1, toggle)


def main() -> None:
    _die_with_parent()
    # A Ctrl-C or SIGTERM to the node's process group: the node closes us in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
