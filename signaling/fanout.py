"""The Socket.IO client manager: one encode per event, then one queue put per client.

python-socketio's managers send a room emit through one asyncio task per recipient and
then wait for them all.  On this server each send only puts the encoded packet on the
client's Engine.IO queue (unbounded: the client's own writer task does the socket I/O),
so a task per recipient buys nothing and, with 50 consoles and hundreds of events a
second, costs more CPU than the rest of the delivery.  `FeedManager` sends the packet
encoded once, for every room of an event at once, in a plain loop: the order of puts is
the order of events, which is what each console's writer sends.

A client that stops reading (a hung tab, a dead link whose TCP connection lingers) would
make its queue grow with every event, without bound: the server's memory.  A client more
than `max_backlog` packets behind is cut off instead: its queue is emptied and its
connection aborted.  Nothing is lost: it connects again and resumes after the last seq
it has, from PostgreSQL.  The others never wait for it (a put on an unbounded queue).

A client whose writer is idle gets the event without its queue at all: the WebSocket
frame, built once per event, written straight to its connection (`signaling.direct`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from signaling.direct import Links, text_frame

logger = logging.getLogger(__name__)

# Packets waiting for one client's socket before it is cut off.  Above what a resume
# replays at once (namespaces.MAX_REPLAY, 5,000), so only a client that does not read
# gets there; an event is 1-2 KiB, so this bounds a client's backlog near 10-20 MiB.
MAX_BACKLOG = 10_000


@dataclass(frozen=True, slots=True)
class Encoded:
    """An event as Engine.IO packets, and as the one WebSocket frame that carries it when
    it is a single text packet (None: binary attachments, sent through the queue)."""

    packets: list[Any]
    frame: bytes | None


class FeedManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """AsyncRedisManager (cross-node emits and disconnects) with a cheap local room emit,
    and `end_room`: tell every client of a room, on every node, why, and disconnect it."""

    async def end_room(self, namespace: str, room: str, event: str, data: Any) -> None:
        """Send `event` to the clients in `room` and disconnect them, here at once and on
        the other nodes as soon as they read Redis.  Rides on the manager's `close_room`
        message (one Redis publish), which every node of this version reads as an end."""
        message = {"method": "close_room", "room": room, "namespace": namespace,
                   "end": {"event": event, "data": data}, "host_id": self.host_id}  # fmt: skip
        await self._handle_close_room(message)
        await self._publish(message)

    async def _handle_close_room(self, message: dict[str, Any]) -> None:
        end = message.get("end")
        if not isinstance(end, dict):
            await super()._handle_close_room(message)
            return
        namespace, room = message.get("namespace") or "/", message.get("room")
        for sid, _ in list(self.get_participants(namespace, room)):
            await self.server.emit(end["event"], end["data"], to=sid, namespace=namespace,
                                   ignore_queue=True)  # fmt: skip
            await self.server.disconnect(sid, namespace=namespace, ignore_queue=True)

    max_backlog = MAX_BACKLOG

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Sockets cut off and not yet closed by Engine.IO: nothing more is put on them.
        self._cut: weakref.WeakSet[Any] = weakref.WeakSet()
        self.links = Links()

    def set_server(self, server: Any) -> None:
        super().set_server(server)
        self.links.install(server.eio)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: str | Sequence[str] | None = None,
        skip_sid: str | list[str] | None = None,
        callback: Any = None,
        to: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if not kwargs.get("ignore_queue") or callback is not None or room is None:
            # Through Redis to other nodes, acknowledged, or to everyone: as upstream.
            await super().emit(
                event, data, namespace=namespace, room=room, skip_sid=skip_sid,
                callback=callback, **kwargs,
            )  # fmt: skip
            return
        await self.send_to_rooms(namespace or "/", room, event, data, skip_sid)

    async def send_to_rooms(
        self,
        namespace: str,
        rooms: str | Sequence[str],
        event: str,
        data: Any,
        skip_sid: str | list[str] | None = None,
        *,
        binary: bool | None = None,
    ) -> int:
        """Send `event` to this node's clients in any of `rooms` (each once); how many.

        `binary=False` says `data` is plain JSON, which spares a walk of it looking for
        bytes; None looks."""
        # A snapshot: a send may close a dead client, which leaves its rooms.
        recipients = list(self.get_participants(namespace, rooms))
        if not recipients:
            return 0
        return await self._send(
            recipients, self.encode(namespace, event, data, binary=binary), skip_sid
        )

    def encode(
        self, namespace: str, event: str, data: Any, *, binary: bool | None = None
    ) -> Encoded:
        """`event` with `data` as `send_encoded` sends it."""
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args], binary=binary
        ).encode()
        packets = [
            eio_packet.Packet(eio_packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        text = len(packets) == 1 and not packets[0].binary
        return Encoded(packets, text_frame(packets[0].encode()) if text else None)

    async def send_encoded(
        self,
        namespace: str,
        rooms: str | Sequence[str],
        encoded: Encoded,
        skip_sid: str | list[str] | None = None,
    ) -> int:
        """Send what `encode` made to this node's clients in any of `rooms` (each once)."""
        return await self._send(list(self.get_participants(namespace, rooms)), encoded, skip_sid)

    async def _send(
        self,
        recipients: Sequence[tuple[str, str]],
        encoded: Encoded,
        skip_sid: str | list[str] | None,
    ) -> int:
        skipped = set(skip_sid if isinstance(skip_sid, list) else [skip_sid])
        sent = 0
        sockets = self.server.eio.sockets
        packets, frame = encoded.packets, encoded.frame
        for sid, eio_sid in recipients:
            if sid in skipped:
                continue
            socket = sockets.get(eio_sid)
            if socket is not None and (
                socket in self._cut or socket.queue.qsize() >= self.max_backlog
            ):
                self.cut_off(sid, eio_sid, socket)
                continue
            if socket is None or socket.closed:
                # Gone: the library says so (and forgets a closed one), as for any send.
                for part in packets:
                    await self.server.eio.send_packet(eio_sid, part)
            elif await socket.check_ping_timeout() and (
                frame is None or not self.links.write(socket, frame)
            ):
                # Not written directly: what Engine.IO's send does, without three
                # coroutines per client and packet (the queue is unbounded, a put never
                # waits).
                for part in packets:
                    socket.queue.put_nowait(part)
            sent += 1
        return sent

    def cut_off(self, sid: str, eio_sid: str, socket: Any) -> None:
        """Drop a client that does not read: free its backlog, abort its connection (the
        writer blocked on it fails, and Engine.IO closes the session as for a lost link)."""
        if socket in self._cut:
            return
        self._cut.add(socket)
        dropped = 0
        queue: asyncio.Queue[Any] = socket.queue
        while not queue.empty():
            queue.get_nowait()
            queue.task_done()
            dropped += 1
        queue.put_nowait(None)  # the writer's end-of-stream, once it is free again
        # The WebSocket's own connection: the session's first request may have been
        # another one (a long-poll before the upgrade).
        transport = self.links.transport(socket)
        if transport is None:
            request = self.server.environ.get(eio_sid, {}).get("aiohttp.request")
            transport = getattr(request, "transport", None)
        if transport is not None:
            transport.abort()
        logger.warning(
            "client too far behind; cut off (it resumes when it reconnects)",
            extra={"sid": sid, "dropped_packets": dropped},
        )
