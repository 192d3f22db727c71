"""Silent alarms through the real HTTP app on real PostgreSQL and Redis."""

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from dispatch.http.keys import INTAKE, REDIS_WRITES
from dispatch.infra.queue_index import GLOBAL_KEY, precinct_key
from dispatch.store.events import FEED_LOCK
from dispatch.store.workflow import incident_from_row
from dispatch.wire.incident_view import incident_view
from geo.datum import wgs84_to_gcj02
from tests.conftest import CitizenSession, Client, app_of, register_citizen
from tests.dispatch.calls import SHANGHAI, XUANWU_LAKE, alarm, counts
from tests.waiting import eventually


async def test_alarm_is_committed_located_queued_and_tracked(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, redis: aioredis.Redis
) -> None:
    response = await app_client.post("/api/alarms", json=alarm(), headers=citizen.headers)
    assert response.status == 201, await response.text()
    body = await response.json()
    assert re.fullmatch(r"110-\d{8}-\d{6}", body["case_no"])
    assert body["precinct"] == {"code": "320102", "name": "玄武区"}
    assert body["jurisdiction"] == {"status": "inside"}
    assert body["status"] == "queued"
    async with pg.acquire() as conn:
        incident = await conn.fetchrow(
            "SELECT * FROM incidents WHERE id = $1", uuid.UUID(body["incident_id"])
        )
        event = await conn.fetchrow("SELECT * FROM incident_events WHERE type = 'incident.created'")
    assert incident["state"] == "queued" and incident["channel"] == "alarm"
    assert incident["severity"] == 1 and incident["verification"] == "anonymous"
    assert incident["priority_score"] < incident["received_at"].timestamp()  # credit earned
    assert event["incident_id"] == incident["id"] and event["precinct_code"] == "320102"
    # The event carries the incident exactly as stored (the intake writes both in one
    # statement and builds the event's copy without reading the row back).
    assert event["payload"]["incident"] == incident_view(incident_from_row(incident))
    await app_of(app_client)[REDIS_WRITES].drain()  # the index follows the receipt
    assert await redis.zscore(GLOBAL_KEY, body["incident_id"]) == incident["priority_score"]
    assert await redis.zscore(precinct_key("320102"), body["incident_id"]) is not None

    case = await app_client.get(
        f"/api/cases/{body['case_no']}",
        headers={"Authorization": f"Bearer {body['tracking_token']}"},
    )
    assert case.status == 200
    tracked = await case.json()
    assert tracked["status"] == "queued"
    assert [entry["event"] for entry in tracked["timeline"]] == ["incident.created"]
    assert "received" in tracked["timeline"][0]["text"]


async def test_declared_gcj02_lands_in_the_same_district(
    app_client: Client, citizen: CitizenSession
) -> None:
    lon, lat = wgs84_to_gcj02(*XUANWU_LAKE)
    response = await app_client.post(
        "/api/alarms", json=alarm(lon=lon, lat=lat, datum="gcj02"), headers=citizen.headers
    )
    assert (await response.json())["precinct"]["code"] == "320102"


async def test_out_of_jurisdiction_is_accepted_and_queued(
    app_client: Client, citizen: CitizenSession, redis: aioredis.Redis
) -> None:
    response = await app_client.post(
        "/api/alarms", json=alarm(lon=SHANGHAI[0], lat=SHANGHAI[1]), headers=citizen.headers
    )
    assert response.status == 201
    body = await response.json()
    assert body["precinct"] is None
    assert body["jurisdiction"]["status"] == "out_of_jurisdiction"
    assert body["jurisdiction"]["nearest"]["code"].startswith("3201")
    assert 150_000 < body["jurisdiction"]["distance_m"] < 350_000
    await app_of(app_client)[REDIS_WRITES].drain()
    assert await redis.zscore(precinct_key(None), body["incident_id"]) is not None
    assert await redis.zscore(GLOBAL_KEY, body["incident_id"]) is not None


async def test_retries_with_one_key_make_one_incident_even_when_racing(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    payload = alarm()
    responses = await asyncio.gather(
        *(app_client.post("/api/alarms", json=payload, headers=citizen.headers) for _ in range(12))
    )
    bodies = [await r.json() for r in responses]
    assert {r.status for r in responses} == {201}
    assert all(b == bodies[0] for b in bodies)
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 11
    assert (await counts(pg))["incidents"] == 1
    later = await app_client.post("/api/alarms", json=payload, headers=citizen.headers)
    assert await later.json() == bodies[0]
    # The same key from another citizen is another report.
    other = await register_citizen(app_client, "other-device-01")
    again = await app_client.post("/api/alarms", json=payload, headers=other.headers)
    assert (await again.json())["incident_id"] != bodies[0]["incident_id"]


async def test_trail_updates_position_and_is_rate_bounded(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    created = await (
        await app_client.post("/api/alarms", json=alarm(), headers=citizen.headers)
    ).json()
    url = f"/api/alarms/{created['incident_id']}/trail"
    point = {"lon": 118.80, "lat": 32.06, "accuracy_m": 8.0, "datum": "wgs84",
             "time": datetime.now(UTC).isoformat()}  # fmt: skip
    response = await app_client.post(url, json={"points": [point, point]}, headers=citizen.headers)
    assert response.status == 202
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM alarm_trail") == 2
        assert await conn.fetchval("SELECT lon FROM incidents") == 118.80
    # Someone else cannot add to it, learns nothing about it, and cannot spend its budget.
    other = await register_citizen(app_client, "other-device-02")
    for _ in range(4):
        response = await app_client.post(url, json={"points": [point] * 50}, headers=other.headers)
        assert response.status == 404
    statuses = [
        (await app_client.post(url, json={"points": [point] * 50}, headers=citizen.headers)).status
        for _ in range(4)
    ]
    assert statuses[:2] == [202, 202] and 429 in statuses


async def test_cancel_keeps_and_marks_the_incident(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, redis: aioredis.Redis
) -> None:
    created = await (
        await app_client.post("/api/alarms", json=alarm(), headers=citizen.headers)
    ).json()
    url = f"/api/alarms/{created['incident_id']}/cancel"
    response = await app_client.post(
        url, json={"reason": "pressed by accident"}, headers=citizen.headers
    )
    assert response.status == 200
    assert (await response.json())["status"] == "cancelled"
    async with pg.acquire() as conn:
        row = await conn.fetchrow("SELECT state, cancel_reason FROM incidents")
    assert dict(row) == {"state": "cancelled", "cancel_reason": "pressed by accident"}
    await app_of(app_client)[REDIS_WRITES].drain()
    assert await redis.zscore(GLOBAL_KEY, created["incident_id"]) is None
    again = await app_client.post(url, json={"reason": "again"}, headers=citizen.headers)
    assert again.status == 400
    case = await app_client.get(f"/api/cases/{created['case_no']}", headers=citizen.headers)
    assert (await case.json())["status_text"] == "You cancelled this alarm."


async def test_tracking_is_404_for_everyone_else(
    app_client: Client, citizen: CitizenSession
) -> None:
    created = await (
        await app_client.post("/api/alarms", json=alarm(), headers=citizen.headers)
    ).json()
    url = f"/api/cases/{created['case_no']}"
    other = await register_citizen(app_client, "other-device-03")
    forged = created["tracking_token"][:-4] + (
        "AAAA" if not created["tracking_token"].endswith("AAAA") else "BBBB"
    )
    for headers in (
        {},
        other.headers,
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": "Basic x"},
    ):
        response = await app_client.get(url, headers=headers)
        assert response.status == 404, headers
        assert (await response.json())["error"]["code"] == "not_found"
    missing = await app_client.get("/api/cases/110-20000101-000001", headers=citizen.headers)
    assert missing.status == 404
    assert (await app_client.get(url, headers=citizen.headers)).status == 200  # the owner


async def _while_writers_wait(
    app_client: Client,
    pg: asyncpg.Pool,
    first: dict[str, Any],
    together: list[dict[str, Any]],
    headers: dict[str, str],
) -> tuple[Any, list[Any]]:
    """Post `first`; hold its write (the feed lock) until every one of `together` waits
    behind it, so that they are written as one batch; then let go."""
    intake = app_of(app_client)[INTAKE]
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", FEED_LOCK)
        lead = asyncio.create_task(app_client.post("/api/alarms", json=first, headers=headers))
        await eventually(lambda: intake.writes.running == 1)
        rest = [
            asyncio.create_task(app_client.post("/api/alarms", json=body, headers=headers))
            for body in together
        ]
        await eventually(lambda: intake.writes.waiting == len(together))
    return await lead, list(await asyncio.gather(*rest))


async def test_alarms_arriving_together_are_written_together_each_on_its_own_terms(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    intake = app_of(app_client)[INTAKE]
    batches = intake.writes.batches
    lake = [alarm(tag="robbery") for _ in range(4)]
    far = alarm(tag="robbery", lon=SHANGHAI[0], lat=SHANGHAI[1])
    unknown = alarm(tag="alien_abduction")
    lead, rest = await _while_writers_wait(
        app_client, pg, alarm(tag="robbery"), [*lake, unknown, far], citizen.headers
    )
    assert intake.writes.batches == batches + 2  # the lead, then the other six at once
    assert lead.status == 201
    assert [r.status for r in rest] == [201] * 4 + [400, 201]
    error = (await rest[4].json())["error"]
    assert error["field"] == "tag" and "alien_abduction" in error["message"]
    created = [await r.json() for r in (lead, *rest[:4], rest[5])]
    ids = [uuid.UUID(body["incident_id"]) for body in created]
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM incidents") == 6
        assert await conn.fetchval("SELECT count(*) FROM reports") == 6
        events = await conn.fetch(
            "SELECT seq, incident_id, payload FROM incident_events"
            " WHERE type = 'incident.created' ORDER BY seq"
        )
        links = await conn.fetch("SELECT incident_id, other_id FROM incident_links")
    assert sorted(e["incident_id"] for e in events) == sorted(ids)
    # The five robberies at the lake are each other's possible duplicates, whether they
    # were written before (the lead) or in the same statement; Shanghai is no one's.
    at_lake = set(ids[:5])
    assert {(r["incident_id"], r["other_id"]) for r in links} == {
        (a, b) for a in at_lake for b in at_lake if a != b
    }
    by_incident = {e["incident_id"]: e["payload"] for e in events}
    # In the order they were written (seq): requests sent together may arrive in any order.
    written = [e["incident_id"] for e in events if e["incident_id"] in at_lake]
    for later, incident_id in enumerate(written[1:], start=1):
        suggested = {d["incident_id"] for d in by_incident[incident_id]["possible_duplicates"]}
        assert suggested == {str(i) for i in written[:later]}  # those written before it
    for body in created:  # each answer is its own and tracks its own case
        case = await app_client.get(
            f"/api/cases/{body['case_no']}",
            headers={"Authorization": f"Bearer {body['tracking_token']}"},
        )
        assert case.status == 200


async def test_retries_in_the_batch_of_their_original_are_replays_and_spoil_nothing(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    # A phone on a bad network resends: three copies of one key in one batch.  Written
    # as three, the key's unique index would fail the batch's one statement; the copies
    # are answered as replays of the first, and the batch is written at once.
    retry = alarm(tag="medical")
    others = [alarm(tag="fire", lon=118.70, lat=32.00), alarm(tag="medical", lon=118.90)]
    lead, rest = await _while_writers_wait(
        app_client, pg, alarm(), [retry, *others, retry, retry], citizen.headers
    )
    assert lead.status == 201 and [r.status for r in rest] == [201] * 5
    answers = [await r.json() for r in rest]
    assert answers[0] == answers[3] == answers[4]
    replayed = [r.headers.get("Idempotent-Replayed") for r in rest]
    # Sent together, the copies may arrive in any order: one is the original.
    assert replayed[1:3] == [None, None]
    assert sorted([replayed[0], replayed[3], replayed[4]], key=str) == [None, "true", "true"]
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM incidents") == 4
        assert await conn.fetchval("SELECT count(*) FROM reports") == 4
        created = await conn.fetchval(
            "SELECT count(*) FROM incident_events WHERE type = 'incident.created'"
        )
        # The batch behind the lead went in one transaction, not one by one.
        transactions = await conn.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM incidents WHERE id = any($1::uuid[])",
            [uuid.UUID(a["incident_id"]) for a in answers],
        )
    assert created == 4
    assert transactions == 1


async def test_an_alarm_gets_its_receipt_while_redis_holds_back_writes(
    app_client: Client, citizen: CitizenSession, redis: aioredis.Redis, pg: asyncpg.Pool
) -> None:
    """The receipt waits for PostgreSQL only: Redis (queue index, feed to other nodes)
    catches up when it takes writes again."""
    await redis.client_pause(30000, all=False)  # writes only
    try:
        response = await asyncio.wait_for(
            app_client.post("/api/alarms", json=alarm(), headers=citizen.headers), 20
        )
        assert response.status == 201
        incident = (await response.json())["incident_id"]
        assert await redis.zscore(GLOBAL_KEY, incident) is None  # not indexed yet
        async with pg.acquire() as conn:
            assert await conn.fetchval("SELECT state FROM incidents") == "queued"
    finally:
        await redis.client_unpause()
    await app_of(app_client)[REDIS_WRITES].drain()
    assert await redis.zscore(GLOBAL_KEY, incident) is not None


async def test_a_node_refuses_more_than_it_will_hold_while_postgresql_is_stuck(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    """While writes cannot go through, what waits is held in memory: beyond a bound the
    node answers 503 with Retry-After (nothing kept, so the phone's retry is safe)
    instead of running out of memory and losing everything it holds."""
    intake = app_of(app_client)[INTAKE]
    intake.max_waiting = 2
    before = await counts(pg)
    refused_body = alarm(tag="robbery")
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", FEED_LOCK)  # writes stall
        lead = asyncio.create_task(
            app_client.post("/api/alarms", json=alarm(), headers=citizen.headers)
        )
        await eventually(lambda: intake.writes.running == 1)
        held = [
            asyncio.create_task(app_client.post("/api/alarms", json=alarm(lon=118.70 + n / 100),
                                                headers=citizen.headers))
            for n in range(2)
        ]  # fmt: skip
        await eventually(lambda: intake.writes.waiting == 2)
        refused = await app_client.post("/api/alarms", json=refused_body, headers=citizen.headers)
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "2"
        assert (await refused.json())["error"]["code"] == "busy"
    assert (await lead).status == 201
    assert [(await task).status for task in held] == [201, 201]
    again = await app_client.post("/api/alarms", json=refused_body, headers=citizen.headers)
    assert again.status == 201 and again.headers.get("Idempotent-Replayed") is None
    assert (await counts(pg))["incidents"] == before["incidents"] + 4


async def test_a_write_cut_off_by_the_database_is_503_and_the_retry_is_stored(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    """PostgreSQL restarting under a write: the answer says try again (503, Retry-After),
    not 500, and the same submission sent again is stored once."""
    body = alarm(tag="kidnapping")
    before = await counts(pg)
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", FEED_LOCK)  # the write waits
        pending = asyncio.create_task(
            app_client.post("/api/alarms", json=body, headers=citizen.headers)
        )
        waiting: int | None = None
        for _ in range(1000):
            waiting = await conn.fetchval(
                """SELECT pid FROM pg_stat_activity
                   WHERE wait_event = 'advisory' AND pid <> pg_backend_pid()"""
            )
            if waiting is not None:
                break
            await asyncio.sleep(0.01)
        assert waiting is not None
        await conn.execute("SELECT pg_terminate_backend($1)", waiting)
        cut_off = await pending
    assert cut_off.status == 503, await cut_off.text()
    assert cut_off.headers["Retry-After"] == "2"
    assert (await cut_off.json())["error"]["code"] == "dependency_unavailable"
    assert await counts(pg) == before
    again = await app_client.post("/api/alarms", json=body, headers=citizen.headers)
    assert again.status == 201 and again.headers.get("Idempotent-Replayed") is None
    assert (await counts(pg))["incidents"] == before["incidents"] + 1
