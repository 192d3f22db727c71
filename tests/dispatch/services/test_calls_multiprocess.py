"""Video calls across real `micro110 serve` processes: two nodes, and a node killed."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import av
import psutil
import pytest

from dispatch.auth.passwords import Passwords
from dispatch.domain.events import Actor
from dispatch.domain.users import Role
from dispatch.services.users import create_user
from dispatch.store.database import create_pool
from tests.conftest import STAFF_PASSWORD, Servers
from tests.media.calls import call_body
from tests.media.peers import Console, Phone, wait_for
from tests.serving import ServerProcess, child_env, start_server

SDP = {"Content-Type": "application/sdp"}


async def _json(response: aiohttp.ClientResponse, status: int = 201) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def _citizen_call(http: aiohttp.ClientSession, base: str) -> tuple[dict[str, str], Any]:
    citizen = await _json(await http.post(f"{base}/api/citizens", json={"device_id": "phone-0001"}))
    headers = {"Authorization": f"Bearer {citizen['token']}"}
    call = await _json(await http.post(f"{base}/api/calls", json=call_body(), headers=headers))
    return headers, call


async def _offer(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], sdp: str
) -> tuple[str, str]:
    async with http.post(url, data=sdp, headers=headers | SDP) as response:
        assert response.status == 201, await response.text()
        return await response.text(), response.headers["Location"]


async def _dispatcher(pool: asyncpg.Pool, http: aiohttp.ClientSession, base: str) -> dict[str, str]:
    await create_user(
        pool, Passwords(), username="video-desk", password=STAFF_PASSWORD,
        role=Role.DISPATCHER, precincts=frozenset({"320102"}), actor=Actor.system("test"),
    )  # fmt: skip
    login = {"username": "video-desk", "password": STAFF_PASSWORD}
    token = (await _json(await http.post(f"{base}/api/auth/login", json=login), 200))["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
async def test_a_pick_up_on_the_other_node_reaches_the_call(
    cluster: tuple[ServerProcess, ServerProcess, str],
) -> None:
    node_1, node_2, database_url = cluster
    pool = await create_pool(database_url, min_size=1, max_size=2)
    phone, console = Phone(), Console(talk=True)
    try:
        async with aiohttp.ClientSession() as http:
            citizen, call = await _citizen_call(http, node_1.base_url)
            incident = call["incident_id"]
            answer, session = await _offer(
                http, node_1.base_url + call["session_url"], citizen, await phone.offer()
            )
            await phone.accept(answer)
            desk = await _dispatcher(pool, http, node_2.base_url)
            claimed = await http.post(f"{node_2.base_url}/api/incidents/{incident}/claim",
                                      headers=desk)  # fmt: skip
            assert claimed.status == 200
            # The call's media is on node 1; the console asks node 2.
            answer, viewer = await _offer(
                http, f"{node_2.base_url}/api/incidents/{incident}/call/viewers", desk,
                await console.offer(),
            )  # fmt: skip
            await console.accept(answer)
            await wait_for(lambda: console.video.frames >= 30, what="video through node 2")
            await wait_for(lambda: phone.heard.frames >= 10, what="the dispatcher's voice")
            assert (await http.delete(node_2.base_url + viewer, headers=desk)).status == 200
            assert (await http.delete(node_2.base_url + session, headers=citizen)).status == 200
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT node, state, reported FROM call_sessions")
            viewers = await conn.fetch("SELECT node, leave_reason FROM call_viewers")
            types = [r["type"] for r in await conn.fetch(
                "SELECT type FROM incident_events WHERE incident_id = $1 ORDER BY seq",
                uuid.UUID(incident),
            )]  # fmt: skip
        assert [tuple(r) for r in rows] == [("node-1", "ended", True)]
        assert [tuple(r) for r in viewers] == [("node-1", "left")]
        assert types[-4:] == ["incident.claimed", "call.answered", "call.left", "call.ended"]
    finally:
        await phone.close()
        await console.close()
        await pool.close()


@pytest.mark.slow
async def test_a_recording_is_readable_after_kill_9_and_becomes_evidence_at_restart(
    cluster: tuple[ServerProcess, ServerProcess, str], servers: Servers, tmp_path: Path
) -> None:
    node_1, _, database_url = cluster
    phone = Phone()
    try:
        async with aiohttp.ClientSession() as http:
            citizen, call = await _citizen_call(http, node_1.base_url)
            answer, session = await _offer(
                http, node_1.base_url + call["session_url"], citizen, await phone.offer()
            )
            await phone.accept(answer)
            await wait_for(lambda: phone.video.sent >= 90, within=20, what="3 s of video")
            sent = phone.video.sent
            # The call's media runs in the node's media processes: they die with it.
            media = psutil.Process(node_1.proc.pid).children()
            assert media, "no media process"
            node_1.proc.send_signal(signal.SIGKILL)
            await node_1.proc.wait()
            await wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                                           for p in media),
                           within=5, what="the media processes to die with the node")  # fmt: skip
    finally:
        await phone.close()
    session_id = session.rsplit("/", 1)[1]
    path = tmp_path / "node-1" / "evidence" / "calls" / call["incident_id"] / f"{session_id}.webm"
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    # All but the last half second (the cluster being written) survives the kill.
    assert decoded >= sent - 30, (decoded, sent)

    env = child_env(
        {"DATABASE_URL": database_url, "REDIS_URL": servers.redis_url,
         "MICRO110_LOG_LEVEL": "WARNING", "MICRO110_DEMO": "false",
         "MICRO110_NODE_NAME": "node-1"},
        external=True,
    )  # fmt: skip
    again = await start_server(tmp_path / "node-1", env=env)
    try:
        pool = await create_pool(database_url, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                row = await conn.fetchrow(
                    """SELECT s.end_reason, s.reported, a.sha256, a.codecs, a.duration_s
                       FROM call_sessions s JOIN attachments a ON a.id = s.attachment_id"""
                )
                ended = await conn.fetchrow(
                    "SELECT payload FROM incident_events WHERE type = 'call.ended'"
                )
        finally:
            await pool.close()
        assert row is not None and row["reported"] and row["end_reason"] == "server_restart"
        assert row["codecs"] == ["VP8", "opus"] and row["duration_s"] > 2
        assert ended["payload"]["recording"]["sha256"] == row["sha256"]
    finally:
        assert await again.stop(signal.SIGTERM) == 0
