"""Claims across a cluster: two `micro110 serve` processes, one PostgreSQL, one Redis.

Twenty dispatchers, half on each node, take incidents with "next" as fast as they can;
every one of a thousand incidents must be handed out exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from dispatch.auth.passwords import Passwords
from dispatch.domain.events import Actor
from dispatch.domain.users import Role
from dispatch.infra.queue_index import GLOBAL_KEY
from dispatch.services.users import create_user
from dispatch.store.database import create_pool
from tests.conftest import STAFF_PASSWORD
from tests.dispatch.calls import alarm
from tests.serving import ServerProcess
from tests.waiting import eventually

INCIDENTS = 1000
DISPATCHERS = 20
CITIZENS = 20  # each reports INCIDENTS / CITIZENS alarms, one after another
TAGS = ("kidnapping", "robbery", "medical", "suspicious", "other")


def grid_position(n: int) -> tuple[float, float]:
    """Points about 400 m apart across Nanjing, so no alarm is another's possible duplicate."""
    return 118.70 + (n % 40) * 0.0045, 31.95 + (n // 40) * 0.0045


async def _index_holds(redis: aioredis.Redis, count: int) -> None:
    """The queue index follows each commit without holding up its answer: soon."""

    async def holds() -> bool:
        return bool(await redis.zcard(GLOBAL_KEY) == count)

    await eventually(holds, interval_s=0.01, what=f"the index holding {count}")


async def _post(http: aiohttp.ClientSession, url: str, body: Any, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(url, json=body, headers=headers) as response:
        assert response.status in (200, 201), await response.text()
        return await response.json()


async def _report_alarms(http: aiohttp.ClientSession, base: str, first: int) -> list[str]:
    citizen = await _post(http, f"{base}/api/citizens", {"device_id": f"load-{first:04d}"})
    made = []
    for n in range(first, first + INCIDENTS // CITIZENS):
        lon, lat = grid_position(n)
        body = alarm(
            tag=TAGS[n % len(TAGS)], lon=lon, lat=lat, idempotency_key=f"load-alarm-{n:05d}"
        )
        made.append(
            (await _post(http, f"{base}/api/alarms", body, citizen["token"]))["incident_id"]
        )
    return made


async def _dispatch_until_empty(base: str, username: str) -> list[str]:
    async with aiohttp.ClientSession() as http:
        login = {"username": username, "password": STAFF_PASSWORD}
        token = (await _post(http, f"{base}/api/auth/login", login))["token"]
        taken: list[str] = []
        while True:
            incident = (await _post(http, f"{base}/api/incidents/next", {}, token))["incident"]
            if incident is None:
                return taken
            assert incident["state"] == "claimed"
            taken.append(incident["id"])


@pytest.mark.slow
async def test_twenty_dispatchers_on_two_nodes_claim_each_of_a_thousand_incidents_once(
    cluster: tuple[ServerProcess, ServerProcess, str], redis: aioredis.Redis
) -> None:
    node_1, node_2, database_url = cluster
    nodes = [node_1.base_url, node_2.base_url]
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            precincts = frozenset(r["code"] for r in await conn.fetch("SELECT code FROM precincts"))
        assert len(precincts) == 11
        passwords = Passwords()
        users: dict[str, int] = {}
        for i in range(DISPATCHERS):
            user = await create_user(
                pool, passwords, username=f"load-dispatcher-{i:02d}", password=STAFF_PASSWORD,
                role=Role.DISPATCHER, precincts=precincts, actor=Actor.system("test"),
            )  # fmt: skip
            users[user.username] = user.id

        async with aiohttp.ClientSession() as http:
            batches = await asyncio.gather(
                *(_report_alarms(http, nodes[c % 2], c * (INCIDENTS // CITIZENS))
                  for c in range(CITIZENS))
            )  # fmt: skip
        created = {incident for batch in batches for incident in batch}
        assert len(created) == INCIDENTS
        await _index_holds(redis, INCIDENTS)

        names = sorted(users)
        claims = await asyncio.gather(
            *(_dispatch_until_empty(nodes[i % 2], name) for i, name in enumerate(names))
        )
        handed_out = [incident for taken in claims for incident in taken]
        twice = [i for i, n in Counter(handed_out).items() if n > 1]
        assert twice == []
        assert len(handed_out) == INCIDENTS
        assert set(handed_out) == created
        assert all(sum(len(claims[i]) for i in range(node, DISPATCHERS, 2)) for node in (0, 1))
        await _index_holds(redis, 0)

        # PostgreSQL agrees: each incident claimed by the dispatcher who was handed it.
        holder = {
            uuid.UUID(incident): users[name]
            for name, taken in zip(names, claims, strict=True)
            for incident in taken
        }
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, state, claimed_by FROM incidents")
            claim_events = await conn.fetch(
                """SELECT incident_id, count(*) AS n FROM incident_events
                   WHERE type = 'incident.claimed' GROUP BY incident_id"""
            )
        assert len(rows) == INCIDENTS
        assert {r["state"] for r in rows} == {"claimed"}
        assert {r["id"]: r["claimed_by"] for r in rows} == holder
        assert {r["incident_id"]: r["n"] for r in claim_events} == dict.fromkeys(holder, 1)
    finally:
        await pool.close()

    # Both nodes stop cleanly on SIGTERM.
    for node in (node_1, node_2):
        assert await node.stop(signal.SIGTERM) == 0, node.stderr_lines()[-20:]
        assert "micro110: stopped" in node.stdout
