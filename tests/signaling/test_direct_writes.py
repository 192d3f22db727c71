"""Direct writes (signaling.direct): a feed event's frame written straight to each idle
console's connection keeps every console's order, leaves compressing clients (browsers)
on their queue, and survives a reconnect and resume.

The consoles are real python-socketio clients; the server's side is read, never faked.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any

from dispatch.app import SOCKETIO
from signaling.direct import BUFFER_LIMIT
from signaling.fanout import FeedManager
from tests.conftest import CitizenSession, Client, Staff, app_of
from tests.dispatch.calls import report
from tests.signaling.feeds import FeedClient
from tests.waiting import eventually


def server_side(manager: FeedManager, client: FeedClient) -> tuple[str, Any]:
    """The client's Socket.IO sid on the server and its Engine.IO socket."""
    sid = client.sio.get_sid(client.namespace)
    assert sid is not None
    return sid, manager.server.eio.sockets[manager.eio_sid_from_sid(sid, client.namespace)]


def numbered(events: list[tuple[str, dict[str, Any]]]) -> list[int]:
    return [data["i"] for name, data in events if name == "n"]


async def test_order_holds_when_direct_and_queued_sends_mix(
    app_client: Client, staff: Staff, feed: Callable[[str, str], FeedClient]
) -> None:
    sio = app_of(app_client)[SOCKETIO]
    manager: FeedManager = sio.manager
    console = feed("/console", staff.commander.token)
    await console.go_live()
    sid, eio_socket = server_side(manager, console)
    transport = manager.links.transport(eio_socket)
    assert transport is not None, "an uncompressed WebSocket is written to directly"
    # A narrow link, so that bursts leave more than BUFFER_LIMIT unsent on the server.
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    rng = random.Random(19)
    paths: Counter[str] = Counter()
    count = 800
    burst = 0
    for i in range(count):
        encoded = manager.encode(
            "/console", "n", {"i": i, "pad": "x" * rng.choice((10, 2000, 20000))}, binary=False
        )
        if rng.random() < 0.2:
            # Engine.IO's own send, as its pings and the answers to calls go: the queue.
            await sio.eio.send_packet(manager.eio_sid_from_sid(sid, "/console"), encoded.packets[0])
            paths["Engine.IO's queue"] += 1
        else:
            full = transport.get_write_buffer_size() >= BUFFER_LIMIT
            direct = manager.links.writable(eio_socket)
            assert await manager.send_encoded("/console", sid, encoded) == 1
            paths["direct" if direct else "buffer full" if full else "behind the queue"] += 1
        if burst == 0:
            # The writer task and the client run between bursts; now and then until the
            # connection has caught up.
            await asyncio.sleep(0)
            if rng.random() < 0.5:
                await eventually(
                    lambda: manager.links.writable(eio_socket), interval_s=0, what="caught up"
                )
            burst = rng.randint(0, 25)
        else:
            burst -= 1

    await console.wait_for(lambda events: len(numbered(events)) == count, within=60)
    assert numbered(console.events) == list(range(count))
    # Every path was taken, many times.
    assert min(paths.values()) >= 20 and len(paths) == 4, paths
    await console.close()


async def test_a_compressing_client_keeps_its_queue_and_both_get_everything(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
) -> None:
    manager: FeedManager = app_of(app_client)[SOCKETIO].manager
    plain = feed("/console", staff.commander.token)
    base = str(app_client.make_url("/")).rstrip("/")
    deflating = FeedClient(base, "/console", staff.commander.token, compress=15)
    await plain.go_live()
    await deflating.go_live()
    assert deflating.sio.eio.ws.compress == 15, "permessage-deflate was negotiated"
    deflating_socket = server_side(manager, deflating)[1]
    # Known (a cut-off aborts its own connection), never written to directly.
    assert manager.links.transport(deflating_socket) is not None
    assert not manager.links.writable(deflating_socket)
    await eventually(lambda: manager.links.writable(server_side(manager, plain)[1]))

    written = manager.links.written
    ids = [(await report(app_client, citizen))["incident_id"] for _ in range(20)]
    for client in (plain, deflating):
        await client.wait_for(lambda events: len(events) == len(ids))
        assert [data["incident"]["id"] for _, data in client.events] == ids
        assert client.seqs() == sorted(set(client.seqs()))
    # The plain client's events went directly (most of them: a ping may queue one).
    assert manager.links.written - written >= len(ids) // 2
    await plain.close()
    await deflating.close()


async def test_a_session_upgraded_from_long_polling_is_written_to_once_upgraded(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    manager: FeedManager = app_of(app_client)[SOCKETIO].manager
    base = str(app_client.make_url("/")).rstrip("/")
    console = FeedClient(
        base, "/console", staff.commander.token, transports=("polling", "websocket")
    )
    await console.go_live()
    assert console.sio.eio.current_transport == "websocket"
    _, eio_socket = server_side(manager, console)
    assert eio_socket.upgraded and manager.links.transport(eio_socket) is not None

    written = manager.links.written
    ids = [(await report(app_client, citizen))["incident_id"] for _ in range(10)]
    await console.wait_for(lambda events: len(events) == len(ids))
    assert [data["incident"]["id"] for _, data in console.events] == ids
    assert manager.links.written - written >= len(ids) // 2
    await console.close()


async def test_a_console_resumes_after_reconnecting_and_gets_events_directly_again(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
) -> None:
    manager: FeedManager = app_of(app_client)[SOCKETIO].manager
    first = feed("/console", staff.dispatcher.token)
    await first.go_live()
    before = [(await report(app_client, citizen))["incident_id"] for _ in range(5)]
    await first.wait_for(lambda events: len(events) == len(before))
    last_seen = first.seqs()[-1]
    await first.close()

    missed = [(await report(app_client, citizen))["incident_id"] for _ in range(5)]
    second = feed("/console", staff.dispatcher.token)
    await second.connect()
    written = manager.links.written
    await second.resume(last_seen)
    assert manager.links.written - written == len(missed), "the replay went directly"
    later = [(await report(app_client, citizen))["incident_id"] for _ in range(5)]
    await second.wait_for(lambda events: len(events) == len(missed) + len(later))
    assert [data["incident"]["id"] for _, data in second.events] == [*missed, *later]
    assert second.seqs() == sorted(set(second.seqs()))
    assert manager.links.written - written >= len(missed) + len(later) // 2
    await second.close()


async def test_the_events_of_one_loop_turn_reach_a_console_in_one_write(
    app_client: Client, staff: Staff, feed: Callable[[str, str], FeedClient]
) -> None:
    manager: FeedManager = app_of(app_client)[SOCKETIO].manager
    console = feed("/console", staff.commander.token)
    await console.go_live()
    sid, eio_socket = server_side(manager, console)
    await eventually(lambda: manager.links.writable(eio_socket), what="an idle writer")
    written, writes = manager.links.written, manager.links.writes
    # As the hub delivers a commit batch: one event after another, with no loop turn.
    for i in range(5):
        encoded = manager.encode("/console", "n", {"i": i}, binary=False)
        await manager.send_encoded("/console", sid, encoded)
    await console.wait_for(lambda events: len(numbered(events)) == 5)
    assert numbered(console.events) == list(range(5))
    assert (manager.links.written - written, manager.links.writes - writes) == (5, 1)
    await console.close()
