"""A console that stops reading: the server's memory for it stays bounded, the other
consoles are not held back, and it loses nothing (it resumes after reconnecting).

The stalled console is a real WebSocket client (Engine.IO/Socket.IO spoken by hand on
a plain socket) that, once resumed, never reads again.  The link to it is narrowed as
a slow radio link would: small kernel buffers on both ends, so the server's writer
blocks after a few dozen events instead of after megabytes.  Its events go straight to
its connection (signaling.direct) until that holds BUFFER_LIMIT unsent bytes, then
through its queue: both stay bounded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from dispatch.app import SOCKETIO
from signaling.direct import BUFFER_LIMIT
from signaling.fanout import MAX_BACKLOG
from tests.conftest import CitizenSession, Client, Staff, app_of
from tests.dispatch.calls import alarm
from tests.signaling.feeds import FeedClient

BACKLOG = 30  # packets: the limit set for this test (10,000 in service)


class RawConsole:
    """Engine.IO v4 over a WebSocket on a plain non-blocking socket: it reads only when
    asked to, so once it stops asking, only the kernel's small buffer takes data."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.buffer = b""
        self.eio_sid = ""

    @classmethod
    async def open(cls, base_url: str, token: str) -> RawConsole:
        url = urlsplit(base_url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        console = cls(sock)
        await console.loop.sock_connect(sock, (url.hostname, url.port))
        key = base64.b64encode(os.urandom(16)).decode()
        await console.loop.sock_sendall(
            sock,
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {url.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode(),
        )
        while b"\r\n\r\n" not in console.buffer:
            console.buffer += await console._recv()
        head, _, console.buffer = console.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        opened = await console.message()
        assert opened.startswith("0"), opened
        console.eio_sid = json.loads(opened[1:])["sid"]
        await console.send("40/console," + json.dumps({"token": token}))
        assert (await console.message()).startswith("40/console,")
        return console

    async def _recv(self) -> bytes:
        data = await self.loop.sock_recv(self.sock, 65536)
        if not data:
            raise ConnectionResetError("closed by the server")
        return data

    async def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += await self._recv()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    async def message(self) -> str:
        """The next text message (Engine.IO packet); ConnectionResetError once closed."""
        while True:
            first, second = await self._exactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self._exactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self._exactly(8))
            payload = await self._exactly(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionResetError("closed by the server")
            if opcode == 0x1:
                return payload.decode()

    async def send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(data))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        await self.loop.sock_sendall(self.sock, header + mask + masked)

    async def resume(self) -> int:
        await self.send('42/console,1["resume",{"last_seq":null}]')
        while not (answer := await self.message()).startswith("43/console,1"):
            pass
        return int(json.loads(answer[len("43/console,1") :])[0]["seq"])

    async def events_until_closed(self) -> list[dict[str, Any]]:
        """Read what is left: the events that reached it before it was cut off."""
        events = []
        try:
            while True:
                text = await asyncio.wait_for(self.message(), 10)
                if text.startswith("42/console,"):
                    events.append(json.loads(text[len("42/console,") :])[1])
        except ConnectionResetError:
            return events


def created(incident_id: str) -> Callable[[list[tuple[str, dict[str, Any]]]], bool]:
    return lambda events: any(
        name == "incident.created" and data["incident"]["id"] == incident_id
        for name, data in events
    )


async def test_a_console_that_stops_reading_is_cut_off_and_the_others_keep_up(
    app_client: Client,
    staff: Staff,
    citizen: CitizenSession,
    feed: Callable[[str, str], FeedClient],
) -> None:
    sio = app_of(app_client)[SOCKETIO]
    sio.manager.max_backlog = BACKLOG
    base = str(app_client.make_url("/")).rstrip("/")
    live = feed("/console", staff.commander.token)
    await live.go_live()
    stalled = await RawConsole.open(base, staff.dispatcher.token)
    start_seq = await stalled.resume()
    transport = sio.manager.links.transport(sio.eio.sockets[stalled.eio_sid])
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    # The stalled console reads nothing from here on.
    seqs: list[int] = []
    backlog_seen = 0
    buffered_seen = 0
    for _ in range(400):
        response = await app_client.post("/api/alarms", json=alarm(), headers=citizen.headers)
        assert response.status == 201, await response.text()
        incident_id = (await response.json())["incident_id"]
        # Every alarm reaches the reading console at once, whatever the other does.
        await live.wait_for(created(incident_id))
        seqs.append(max(live.seqs()))
        eio_socket = sio.eio.sockets.get(stalled.eio_sid)
        if eio_socket is None or eio_socket.closed:
            break
        backlog_seen = max(backlog_seen, eio_socket.queue.qsize())
        assert eio_socket.queue.qsize() <= BACKLOG + 1  # bounded: never more than the limit
        # And what its connection holds: direct writes stop at BUFFER_LIMIT, aiohttp's
        # writer waits for the connection to drain once it has written 256 KiB more.
        buffered_seen = max(buffered_seen, transport.get_write_buffer_size())
        assert transport.get_write_buffer_size() <= BUFFER_LIMIT + 256 * 1024 + 16 * 1024
    else:
        raise AssertionError("400 alarms and the stalled console was never cut off")
    assert backlog_seen >= BACKLOG - 1  # it did fall behind, up to the limit
    assert buffered_seen >= BUFFER_LIMIT  # after its connection had filled up

    # It reads again: what had reached it, then the end of that connection.
    got = [event["seq"] for event in await stalled.events_until_closed()]
    stalled.sock.close()
    assert got == sorted(got)
    last = got[-1] if got else start_seq
    # It connects again and resumes after the last seq it has: nothing is missing.
    again = feed("/console", staff.dispatcher.token)
    # (A resume replays what was missed at once: the service's limit is above that.)
    sio.manager.max_backlog = MAX_BACKLOG
    await again.connect()
    await again.resume(last)
    await again.wait_for_seq(seqs[-1])
    delivered = set(got) | set(again.seqs())
    assert set(seqs) <= delivered
    await again.close()
    await live.close()
