"""A silent alarm sent before the phone has a fix: accepted at once, routed by the trail."""

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from dispatch.http.keys import REDIS_WRITES
from dispatch.infra.queue_index import GLOBAL_KEY, precinct_key
from tests.conftest import CitizenSession, Client, Staff, app_of
from tests.dispatch.calls import SHANGHAI, XUANWU_LAKE, alarm


def no_fix(**overrides: Any) -> dict[str, Any]:
    body = alarm(**overrides)
    for name in ("lon", "lat", "accuracy_m", "datum"):
        body.pop(name, None)
    return body


def fix(lon: float, lat: float) -> dict[str, Any]:
    return {"lon": lon, "lat": lat, "accuracy_m": 25.0, "datum": "wgs84",
            "time": datetime.now(UTC).isoformat()}  # fmt: skip


async def send(client: Client, citizen: CitizenSession, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/alarms", json=body, headers=citizen.headers)
    assert response.status == 201, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def trail(
    client: Client, citizen: CitizenSession, incident_id: str, *points: dict[str, Any]
) -> None:
    response = await client.post(
        f"/api/alarms/{incident_id}/trail", json={"points": list(points)}, headers=citizen.headers
    )
    assert response.status == 202, await response.text()


async def test_an_alarm_without_a_fix_is_stored_queued_for_everyone_and_ranked_from_sending(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, redis: aioredis.Redis
) -> None:
    body = await send(app_client, citizen, no_fix())
    assert body["precinct"] is None and body["jurisdiction"] == {"status": "unknown"}
    async with pg.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM incidents")
        report = await conn.fetchrow("SELECT * FROM reports")
        event = await conn.fetchrow("SELECT * FROM incident_events WHERE type = 'incident.created'")
    assert row["lon"] is None and row["jurisdiction"] == "unknown" and row["state"] == "queued"
    assert report["location_source"] == "none" and report["datum"] is None
    assert event["type"] == "incident.created" and event["precinct_code"] is None
    # Ranked like any alarm: the credit of its tag and channel, from when it was sent.
    assert row["priority_score"] < row["received_at"].timestamp() - 60
    await app_of(app_client)[REDIS_WRITES].drain()
    assert await redis.zscore(precinct_key(None), body["incident_id"]) == row["priority_score"]
    assert await redis.zscore(GLOBAL_KEY, body["incident_id"]) == row["priority_score"]


@pytest.mark.parametrize("missing", ["lon", "lat", "accuracy_m", "datum"])
async def test_half_a_position_is_refused_by_name(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, missing: str
) -> None:
    body = alarm()
    del body[missing]
    response = await app_client.post("/api/alarms", json=body, headers=citizen.headers)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["field"] == missing and "together" in error["message"]
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM incidents") == 0


async def test_the_first_fix_routes_it_keeping_its_place_and_later_fixes_only_move_it(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, redis: aioredis.Redis,
    staff: Staff,
) -> None:  # fmt: skip
    body = await send(app_client, citizen, no_fix())
    incident_id = body["incident_id"]
    async with pg.acquire() as conn:
        score, version = await conn.fetchrow("SELECT priority_score, version FROM incidents")
    await trail(app_client, citizen, incident_id, fix(*XUANWU_LAKE))
    async with pg.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM incidents")
        routing = await conn.fetchrow(
            "SELECT * FROM incident_events WHERE type = 'incident.trail' ORDER BY seq"
        )
    assert (row["precinct_code"], row["jurisdiction"]) == ("320102", "inside")
    assert row["priority_score"] == score and row["version"] == version + 1
    # The routing event goes where the alarm was listed (every console), then it is
    # Xuanwu's alone.
    assert routing["precinct_code"] is None and routing["payload"]["routed"] is True
    assert routing["payload"]["incident"]["precinct_code"] == "320102"
    await app_of(app_client)[REDIS_WRITES].drain()
    assert await redis.zscore(precinct_key(None), incident_id) is None
    assert await redis.zscore(precinct_key("320102"), incident_id) == score
    assert await redis.zscore(GLOBAL_KEY, incident_id) == score

    # Another precinct's dispatcher no longer sees it; Xuanwu's takes it next.
    other = await app_client.get(
        f"/api/incidents/{incident_id}", headers=staff.other_dispatcher.headers
    )
    assert other.status == 404

    # A later fix across the boundary moves it on the map, not to another precinct.
    await trail(app_client, citizen, incident_id, fix(118.7784, 32.0722))
    async with pg.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM incidents")
        later = await conn.fetchrow(
            "SELECT * FROM incident_events WHERE type = 'incident.trail' ORDER BY seq DESC LIMIT 1"
        )
    assert row["precinct_code"] == "320102" and row["lon"] == 118.7784
    assert later["precinct_code"] == "320102" and later["payload"]["routed"] is False

    taken = await app_client.post("/api/incidents/next", headers=staff.dispatcher.headers)
    assert (await taken.json())["incident"]["id"] == incident_id


async def test_a_first_fix_out_of_jurisdiction_names_the_nearest_precinct(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, redis: aioredis.Redis
) -> None:
    body = await send(app_client, citizen, no_fix())
    await trail(app_client, citizen, body["incident_id"], fix(*SHANGHAI))
    async with pg.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM incidents")
    assert row["precinct_code"] is None and row["jurisdiction"] == "out_of_jurisdiction"
    assert row["nearest_precinct_code"].startswith("3201") and row["distance_m"] > 150_000
    await app_of(app_client)[REDIS_WRITES].drain()
    assert await redis.zscore(precinct_key(None), body["incident_id"]) is not None


async def test_an_alarm_a_dispatcher_holds_stays_with_them_when_its_fix_arrives(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, staff: Staff
) -> None:
    body = await send(app_client, citizen, no_fix())
    # A Gulou dispatcher sees unrouted alarms and takes this one.
    taken = await app_client.post("/api/incidents/next", headers=staff.other_dispatcher.headers)
    assert (await taken.json())["incident"]["id"] == body["incident_id"]
    await trail(app_client, citizen, body["incident_id"], fix(*XUANWU_LAKE))
    async with pg.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM incidents WHERE id = $1",
                                  uuid.UUID(body["incident_id"]))  # fmt: skip
    assert row["lon"] == XUANWU_LAKE[0] and row["precinct_code"] is None
    still = await app_client.get(
        f"/api/incidents/{body['incident_id']}", headers=staff.other_dispatcher.headers
    )
    assert still.status == 200
