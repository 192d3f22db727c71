"""Direct writes: an event's WebSocket frame built once and written to each idle client.

Engine.IO gives every client a queue and a writer task: a send puts the packet on the
queue, the task wakes, takes it, frames it and writes it to the connection.  A feed
event for 50 consoles costs 50 task wake-ups (three loop turns each on Python 3.11,
whose `wait_for` runs the queue's `get` in a task of its own), 50 UTF-8 encodes and 50
frame builds of the same bytes: most of the server's CPU per delivery.

A server's WebSocket frames are not masked, so an uncompressed text frame is the same
bytes for every client: `text_frame` builds it once per event, and a client whose
connection can take it now gets it without its queue (`Links.write`) when:

* its Engine.IO session is on a WebSocket (upgraded) without permessage-deflate.
  Browsers negotiate compression, whose compressor carries state from message to
  message per connection, so their frames differ: they keep the queue (python-socketio
  clients do not ask for it);
* its writer task waits on an empty queue: everything queued for it before (a ping, an
  answer, earlier events) is on the connection already, so a direct write keeps its
  order; anything queued or in flight sends the event through the queue after it;
* its connection has less than `BUFFER_LIMIT` bytes the kernel has not taken.  A client
  that reads slowly, or not at all, gets its events through the queue, whose writer
  waits for the connection to drain and whose length `FeedManager` bounds (cut off):
  the server's memory for it stays bounded (this limit plus the writer's flow control
  plus `max_backlog` packets).

Ping, pong and close still go through the queue, as Engine.IO sends them.

The frames a client gets directly during one turn of the event loop (the events of one
commit batch: under load the group commit carries several) are written together at
the end of the turn, one system call per client instead of one per event: at 200
alarms/s on a busy machine, ~4 events a write.  Their order against the queue holds
because the end-of-turn write is scheduled (call_soon) when the first frame is held,
before anything put on the client's queue afterwards can wake its writer, and asyncio
runs callbacks in the order they were scheduled.  The held frames are the event's
shared bytes, so holding them costs no copy per client.
"""

from __future__ import annotations

import asyncio
import functools
import struct
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from engineio.async_drivers import aiohttp as engineio_aiohttp

# Unsent bytes on a connection above which it gets no direct write (the queue, with its
# flow control, takes over): asyncio's own high-water mark for a transport.
BUFFER_LIMIT = 64 * 1024


def text_frame(text: str) -> bytes:
    """An unmasked, uncompressed, final WebSocket text frame (RFC 6455 5.2)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


@dataclass(frozen=True, slots=True)
class Link:
    """The WebSocket connection carrying one Engine.IO session."""

    response: web.WebSocketResponse
    transport: asyncio.Transport
    # No permessage-deflate: the event's shared frame is what this connection sends.
    plain: bool


def _writer_waits(queue: asyncio.Queue[Any]) -> bool:
    """Whether a task waits on `queue` for its next item, and nothing is in it.

    asyncio.Queue keeps its waiting getters in `_getters` (since Python 3.4), the one
    place that says so; a getter already woken (or cancelled) is done.  Should a
    Python lack it, every client keeps its queue."""
    getters: Any = getattr(queue, "_getters", None)
    return queue.empty() and bool(getters) and not getters[0].done()


class Links:
    """This node's Engine.IO sessions on a WebSocket, and which can take a frame directly."""

    def __init__(self) -> None:
        self._links: dict[Any, Link] = {}
        # Frames written directly, since start (the rest went through the queues), and
        # the writes that carried them.
        self.written = 0
        self.writes = 0
        # The frames held for each socket during this loop turn, written at its end.
        self._held: dict[Any, list[bytes]] = {}

    def install(self, eio: Any) -> None:
        """Wrap `eio`'s aiohttp WebSocket adapter so that every WebSocket an Engine.IO
        session opens is known here while it lasts.  The adapter table is the driver
        module's own dict: this server gets a copy, never the module's."""
        eio._async = {**eio._async, "websocket": functools.partial(_WebSocket, links=self)}

    def writable(self, socket: Any) -> bool:
        """Whether a frame for `socket` may be written to its connection now."""
        link = self._links.get(socket)
        return not (
            link is None
            or not link.plain
            or not socket.upgraded
            or link.response.closed
            or link.transport.is_closing()
            or link.transport.get_write_buffer_size() >= BUFFER_LIMIT
            or not _writer_waits(socket.queue)
        )

    def write(self, socket: Any, frame: bytes) -> bool:
        """Write `frame` (from `text_frame`) to `socket`'s connection, at the end of this
        loop turn, if it may be; False: send it through the queue."""
        if not self.writable(socket):
            return False
        if not self._held:
            asyncio.get_running_loop().call_soon(self._flush)
        self._held.setdefault(socket, []).append(frame)
        self.written += 1
        return True

    def _flush(self) -> None:
        held, self._held = self._held, {}
        for socket, frames in held.items():
            link = self._links.get(socket)
            if link is None or link.response.closed or link.transport.is_closing():
                continue  # gone meanwhile: it resumes from its last seq when it reconnects
            link.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            self.writes += 1

    def transport(self, socket: Any) -> asyncio.Transport | None:
        """The WebSocket connection of `socket`, if it is on one."""
        link = self._links.get(socket)
        return None if link is None else link.transport

    def add(self, socket: Any, ws: Any) -> None:
        """`socket`'s WebSocket `ws` (the adapter) is open."""
        response = getattr(ws, "_sock", None)
        transport = ws.environ["aiohttp.request"].transport
        if isinstance(response, web.WebSocketResponse) and transport is not None:
            self._links[socket] = Link(response, transport, plain=not response.compress)

    def discard(self, socket: Any) -> None:
        self._links.pop(socket, None)


class _WebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
    """engineio's aiohttp WebSocket, known to `links` from the handshake to the end.

    engineio hands the adapter its socket's bound `_websocket_handler`, which runs
    for as long as the connection carries the session.  Should another engineio hand
    it something else, the adapter is engineio's own and every client keeps its queue."""

    def __init__(self, handler: Any, server: Any, *, links: Links) -> None:
        socket = getattr(handler, "__self__", None)
        if not isinstance(getattr(socket, "queue", None), asyncio.Queue):
            super().__init__(handler, server)
            return

        async def handle(ws: Any) -> None:
            links.add(socket, ws)
            try:
                await handler(ws)
            finally:
                links.discard(socket)

        super().__init__(handle, server)
