"""The Redis priority queue is an index: PostgreSQL holds the truth, `rebuild` restores it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from dispatch.app import create_app
from dispatch.http.keys import QUEUE, REDIS_WRITES
from dispatch.infra.connections import Infrastructure
from dispatch.infra.precinct_registry import IndexCache
from dispatch.infra.queue_index import BUILT_KEY, GLOBAL_KEY, PriorityQueue, precinct_key
from dispatch.settings import Settings
from tests.conftest import CitizenSession, Client, Servers, Staff, app_of, register_citizen
from tests.dispatch.calls import (
    GULOU_DRUM_TOWER,
    SHANGHAI,
    XUANWU_LAKE,
    act,
    copy_queued,
    report,
)
from tests.fakes import FakeClock
from tests.serving import child_env, run_cli
from tests.waiting import eventually

XUANWU, GULOU = "320102", "320106"


async def verified(
    client: Client, pg: asyncpg.Pool, level: str, false_alarms: int = 0
) -> CitizenSession:
    """A citizen at `level`; set directly, the attestation and registry paths have their tests."""
    session = await register_citizen(client, f"device-{level}-{uuid.uuid4().hex[:8]}")
    async with pg.acquire() as conn:
        await conn.execute(
            "UPDATE citizens SET verification = $2, false_alarms = $3 WHERE id = $1",
            uuid.UUID(session.id), level, false_alarms,
        )  # fmt: skip
    return session


async def queue_state(queue: PriorityQueue) -> dict[str | None, list[uuid.UUID]]:
    """The global order and each precinct's (None: the no-precinct queue)."""
    return {
        "*": await queue.ordered(all_precincts=True),
        XUANWU: await queue.ordered(XUANWU),
        GULOU: await queue.ordered(GULOU),
        None: await queue.ordered(None),
    }


async def postgres_order(pg: asyncpg.Pool) -> list[uuid.UUID]:
    async with pg.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id FROM incidents WHERE state = 'queued' ORDER BY priority_score, id"
        )
    return [r["id"] for r in rows]


async def populate(client: Client, pg: asyncpg.Pool, clock: FakeClock) -> dict[str, uuid.UUID]:
    """Alarms of several tags, places and reporters; returns incident ids by name."""
    anonymous = await verified(client, pg, "anonymous")
    phone = await verified(client, pg, "phone")
    real_name = await verified(client, pg, "real_name")
    face = await verified(client, pg, "face")
    repeat_offender = await verified(client, pg, "face", false_alarms=5)
    xuanwu = {"lon": XUANWU_LAKE[0], "lat": XUANWU_LAKE[1]}
    gulou = {"lon": GULOU_DRUM_TOWER[0], "lat": GULOU_DRUM_TOWER[1]}
    shanghai = {"lon": SHANGHAI[0], "lat": SHANGHAI[1]}
    made: dict[str, uuid.UUID] = {}

    async def post(name: str, who: CitizenSession, **body: object) -> None:
        made[name] = uuid.UUID((await report(client, who, **body))["incident_id"])

    # Four robberies at one instant: only the reporter's verification differs.
    await post("robbery-anonymous", anonymous, tag="robbery", **xuanwu)
    await post("robbery-phone", phone, tag="robbery", **xuanwu)
    await post("robbery-face", face, tag="robbery", **xuanwu)
    await post("robbery-real-name", real_name, tag="robbery", **xuanwu)
    clock.advance(30)
    await post("other-face", face, tag="other", **gulou)
    await post("medical-anonymous", anonymous, tag="medical", **gulou)
    await post("kidnapping-offender", repeat_offender, tag="kidnapping", **gulou)
    clock.advance(45)
    await post("suspicious-real-name", real_name, tag="suspicious", **shanghai)
    await post("fire-phone", phone, tag="fire", **shanghai)
    clock.advance(600)
    await post("other-anonymous-late", anonymous, tag="other", **xuanwu)
    await settled(client)
    return made


async def settled(client: Client) -> None:
    """Wait until the app has told Redis everything (it answers before Redis has it)."""
    await app_of(client)[REDIS_WRITES].drain()


async def test_order_follows_verification_and_severity_and_survives_a_redis_wipe(
    app_client: Client, pg: asyncpg.Pool, redis: aioredis.Redis, fake_clock: FakeClock
) -> None:
    made = await populate(app_client, pg, fake_clock)
    queue = PriorityQueue(redis)
    before = await queue_state(queue)
    name_of = {v: k for k, v in made.items()}
    order = [name_of[i] for i in before["*"]]

    assert sorted(before["*"]) == sorted(made.values())
    assert before["*"] == await postgres_order(pg)
    # At one instant, a better verified reporter ranks first: face > real name > phone > anonymous.
    robberies = [n for n in order if n.startswith("robbery-")]
    assert robberies == ["robbery-face", "robbery-real-name", "robbery-phone", "robbery-anonymous"]
    # Severity earns credit; a record of false alarms costs some, but not the place in the queue.
    assert order.index("kidnapping-offender") < order.index("medical-anonymous")
    assert order.index("medical-anonymous") < order.index("other-face")
    assert order.index("fire-phone") < order.index("suspicious-real-name")
    assert order[-1] == "other-anonymous-late"
    # Each precinct's queue is the global order restricted to it.
    for code in (XUANWU, GULOU, None):
        async with pg.acquire() as conn:
            members = {
                r["id"]
                for r in await conn.fetch(
                    "SELECT id FROM incidents WHERE precinct_code IS NOT DISTINCT FROM $1", code
                )
            }
        assert members and before[code] == [i for i in before["*"] if i in members]

    await redis.flushdb()  # Redis lost everything (this session's database only)
    assert (await queue_state(queue))["*"] == []
    assert await queue.rebuild(pg) == len(made)
    assert await queue_state(queue) == before
    # Scores come back exactly, not just the order.
    async with pg.acquire() as conn:
        scores = {r["id"]: r["priority_score"] for r in await conn.fetch(
            "SELECT id, priority_score FROM incidents")}  # fmt: skip
    for incident_id, score in scores.items():
        assert await redis.zscore(GLOBAL_KEY, str(incident_id)) == score


async def test_claimed_and_stale_members_are_left_out_of_a_rebuild(
    app_client: Client,
    pg: asyncpg.Pool,
    redis: aioredis.Redis,
    fake_clock: FakeClock,
    staff: Staff,
) -> None:
    made = await populate(app_client, pg, fake_clock)
    queue = PriorityQueue(redis)
    response = await app_client.post("/api/incidents/next", headers=staff.commander.headers)
    first = uuid.UUID((await response.json())["incident"]["id"])
    assert first == made["robbery-face"]
    await settled(app_client)
    assert first not in await queue.ordered(all_precincts=True)

    await redis.flushdb()
    await queue.rebuild(pg)
    assert first not in await queue.ordered(all_precincts=True)
    assert first not in await queue.ordered(GULOU)

    # A claim whose index removal was lost (Redis blipped after commit): the entry stayed.
    claimed = made["robbery-real-name"]
    status, _ = await act(app_client, staff.commander, str(claimed), "claim")
    assert status == 200
    await settled(app_client)
    async with pg.acquire() as conn:
        score = await conn.fetchval("SELECT priority_score FROM incidents WHERE id = $1", claimed)
    await redis.zadd(GLOBAL_KEY, {str(claimed): score})
    await redis.zadd(precinct_key(XUANWU), {str(claimed): score})
    # And one that was never an incident at all.
    ghost = uuid.uuid4()
    await redis.zadd(precinct_key(GULOU), {str(ghost): 1.0})
    assert claimed in await queue.ordered(all_precincts=True)
    # And junk that is not even an incident id (a stray write by some other tool).
    await redis.zadd(GLOBAL_KEY, {"not-a-uuid": 1.0})

    assert await queue.rebuild(pg) == len(made) - 2
    assert await redis.zscore(GLOBAL_KEY, "not-a-uuid") is None
    for members in (await queue_state(queue)).values():
        assert claimed not in members and ghost not in members
    assert await queue.ordered(all_precincts=True) == await postgres_order(pg)


async def test_rebuild_drops_an_entry_left_under_the_precinct_it_was_rerouted_from(
    app_client: Client,
    citizen: CitizenSession,
    pg: asyncpg.Pool,
    redis: aioredis.Redis,
    staff: Staff,
) -> None:
    moved = (await report(app_client, citizen, tag="robbery"))["incident_id"]
    status, body = await act(
        app_client, staff.commander, moved, "transfer", {"to": "precinct", "name": GULOU}
    )
    assert status == 200 and body["state"] == "queued" and body["precinct_code"] == GULOU
    await settled(app_client)
    queue = PriorityQueue(redis)
    assert await queue.ordered(GULOU) == [uuid.UUID(moved)]
    assert await queue.ordered(XUANWU) == []
    # The removal from the old precinct was lost: the incident shows in both.
    await redis.zadd(precinct_key(XUANWU), {moved: 1.0})

    assert await queue.rebuild(pg) == 1
    assert await queue.ordered(XUANWU) == []
    assert await queue.ordered(GULOU) == [uuid.UUID(moved)]
    assert await queue.ordered(all_precincts=True) == [uuid.UUID(moved)]


async def test_the_queue_rebuild_command_restores_the_index(
    app_client: Client,
    pg: asyncpg.Pool,
    redis: aioredis.Redis,
    fake_clock: FakeClock,
    servers: Servers,
    tmp_path: Path,
) -> None:
    made = await populate(app_client, pg, fake_clock)
    queue = PriorityQueue(redis)
    before = await queue_state(queue)
    await redis.flushdb()

    env = child_env(
        {"DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url}, external=True
    )
    code, out, err = await run_cli("queue", "rebuild", "--data-dir", str(tmp_path), env=env)
    assert code == 0, err
    assert f"queue rebuilt with {len(made)} queued incident(s)" in out
    assert await queue_state(queue) == before


@contextlib.asynccontextmanager
async def keeping(queue: PriorityQueue, pg: asyncpg.Pool) -> AsyncIterator[None]:
    """The app's queue keeper, as `serve` runs it (tests turn background work off)."""
    task = asyncio.create_task(queue.keep(pg, interval_s=0.02))
    try:
        yield
    finally:
        # It must stop when told to: a node's shutdown waits for it.  (It once did not:
        # a cancellation swallowed below it, see dispatch/infra/loops.py.)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=30)
        assert task in done and task.cancelled(), "the queue keeper did not stop"


async def test_a_running_node_rebuilds_an_index_redis_has_lost(
    app_client: Client,
    pg: asyncpg.Pool,
    redis: aioredis.Redis,
    fake_clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="dispatch.infra.queue_index")
    made = await populate(app_client, pg, fake_clock)
    await settled(app_client)
    queue = app_of(app_client)[QUEUE]
    before = await queue_state(queue)
    assert sorted(before["*"]) == sorted(made.values())
    assert await redis.exists(BUILT_KEY)  # the start-up rebuild marked it whole

    async with keeping(queue, pg):
        await redis.flushdb()  # Redis restarted without persistence, or was flushed

        async def restored() -> bool:
            return await queue_state(queue) == before

        await eventually(restored, interval_s=0.02)
    assert "queue index out of step with PostgreSQL; rebuilding" in caplog.text
    assert await redis.exists(BUILT_KEY)


async def test_a_running_node_repairs_an_index_write_that_failed(
    app_client: Client,
    citizen: CitizenSession,
    pg: asyncpg.Pool,
    redis: aioredis.Redis,
) -> None:
    queue = app_of(app_client)[QUEUE]
    # Something else wrote a string where Xuanwu's queue is: every ZADD to it fails.
    await redis.set(precinct_key(XUANWU), "not a sorted set")
    made = uuid.UUID((await report(app_client, citizen, tag="robbery"))["incident_id"])
    await settled(app_client)
    noticed = queue.out_of_step
    assert noticed  # the receipt went out; the index write did not land
    assert await redis.get(precinct_key(XUANWU)) == b"not a sorted set"

    async with keeping(queue, pg):

        async def repaired() -> bool:
            return await redis.type(precinct_key(XUANWU)) in (b"zset", "zset") and (
                await queue.ordered(XUANWU) == [made]
            )

        await eventually(repaired, interval_s=0.02)
    assert not queue.out_of_step
    assert await queue.ordered(all_precincts=True) == await postgres_order(pg) == [made]


async def test_alarms_acknowledged_while_the_start_up_rebuild_runs_are_queued_once(
    app_client: Client,
    citizen: CitizenSession,
    pg: asyncpg.Pool,
    redis: aioredis.Redis,
    infra: Infrastructure,
    app_settings: Settings,
    fake_clock: FakeClock,
    index_cache: IndexCache,
) -> None:
    """A node starting on an empty Redis serves at once and rebuilds the index beside
    the requests: what it acknowledges meanwhile is in PostgreSQL and in the index, once."""
    template = uuid.UUID((await report(app_client, citizen, tag="robbery"))["incident_id"])
    await settled(app_client)
    await app_client.close()  # the node stops; Redis loses everything; it starts again
    copies = 12_000  # a few of the rebuild's slices
    await copy_queued(pg, template, copies)
    await redis.flushdb()
    restarted = TestClient(
        TestServer(
            create_app(app_settings, infrastructure=infra, clock=fake_clock,
                       index_cache=index_cache)
        )
    )  # fmt: skip
    # Redis takes no writes for a while: the rebuild cannot finish before the alarms
    # below are acknowledged (they wait for PostgreSQL only).
    await redis.client_pause(4000, all=False)  # writes only
    try:
        await restarted.start_server()  # listening, whatever the index is doing
        queue = app_of(restarted)[QUEUE]
        during: list[uuid.UUID] = []
        # Away from the copies (which would all be its possible duplicates).
        gulou = {"lon": GULOU_DRUM_TOWER[0], "lat": GULOU_DRUM_TOWER[1]}
        for n in range(3):
            key = f"during-rebuild-{n}"
            made = await report(restarted, citizen, idempotency_key=key, **gulou)
            # The phone did not hear the answer and sends it again: the same incident.
            again = await report(restarted, citizen, idempotency_key=key, **gulou)
            assert again["incident_id"] == made["incident_id"]
            during.append(uuid.UUID(made["incident_id"]))
        assert not queue.started.is_set()  # all acknowledged during the rebuild
    finally:
        await redis.client_unpause()
    try:
        await asyncio.wait_for(queue.started.wait(), 30)
        assert not queue.out_of_step
        await settled(restarted)
        indexed = await queue.ordered(all_precincts=True)
        # The index is PostgreSQL's queue, in its order; every alarm of the node in it.
        assert indexed == await postgres_order(pg)
        assert len(indexed) == 1 + copies + len(during)
        assert set(during) <= set(indexed)
        assert await queue.ordered(GULOU) == [i for i in indexed if i in during]
        assert await queue.ordered(XUANWU) == [i for i in indexed if i not in during]
        async with pg.acquire() as conn:
            created = await conn.fetch(
                """SELECT incident_id, count(*) AS n FROM incident_events
                   WHERE type = 'incident.created' AND incident_id = any($1::uuid[])
                   GROUP BY incident_id""",
                during,
            )
        assert {r["incident_id"]: r["n"] for r in created} == {i: 1 for i in during}
    finally:
        await restarted.close()
