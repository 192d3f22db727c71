"""A video call started before the phone has a fix: accepted at once like an alarm
without one, its media connects, and the call's trail routes it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from dispatch.http.keys import REDIS_WRITES
from dispatch.infra.queue_index import GLOBAL_KEY, precinct_key
from tests.conftest import CitizenSession, Client, Staff, app_of
from tests.media.calls import call_body, connect_phone
from tests.media.peers import Phone

POSITION = ("lon", "lat", "accuracy_m", "datum")


def without_fix() -> dict[str, Any]:
    return {k: v for k, v in call_body().items() if k not in POSITION}


async def test_a_call_without_a_fix_is_queued_for_everyone_then_routed_by_its_trail(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool,
    redis: aioredis.Redis,
) -> None:  # fmt: skip
    response = await app_client.post("/api/calls", json=without_fix(), headers=citizen.headers)
    assert response.status == 201, await response.text()
    call = await response.json()
    incident_id = call["incident_id"]
    assert call["precinct"] is None and call["jurisdiction"] == {"status": "unknown"}
    async with pg.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM incidents")
        report = await conn.fetchrow("SELECT * FROM reports")
    assert row["channel"] == "video" and row["lon"] is None and row["state"] == "queued"
    assert report["location_source"] == "none"
    await app_of(app_client)[REDIS_WRITES].drain()
    assert await redis.zscore(precinct_key(None), incident_id) == row["priority_score"]

    # The media does not wait for a position.
    phone = Phone()
    try:
        await connect_phone(app_client, citizen, call["session_url"], phone)
        fix = {"lon": 118.7926, "lat": 32.0732, "accuracy_m": 25.0, "datum": "wgs84",
               "time": datetime.now(UTC).isoformat()}  # fmt: skip
        trail = await app_client.post(
            f"/api/calls/{incident_id}/trail", json={"points": [fix]}, headers=citizen.headers
        )
        assert trail.status == 202, await trail.text()
    finally:
        await phone.close()
    async with pg.acquire() as conn:
        routed = await conn.fetchrow("SELECT * FROM incidents")
        events = [r["type"] for r in await conn.fetch(
            "SELECT type FROM incident_events WHERE incident_id = $1 ORDER BY seq",
            uuid.UUID(incident_id),
        )]  # fmt: skip
    assert (routed["precinct_code"], routed["jurisdiction"]) == ("320102", "inside")
    assert routed["priority_score"] == row["priority_score"]  # it keeps its place
    assert events[:3] == ["incident.created", "call.started", "incident.trail"]
    await app_of(app_client)[REDIS_WRITES].drain()
    assert await redis.zscore(precinct_key(None), incident_id) is None
    assert await redis.zscore(precinct_key("320102"), incident_id) == row["priority_score"]
    assert await redis.zscore(GLOBAL_KEY, incident_id) == row["priority_score"]
    # Now Xuanwu's alone.
    other = await app_client.get(
        f"/api/incidents/{incident_id}", headers=staff.other_dispatcher.headers
    )
    assert other.status == 404


@pytest.mark.parametrize("missing", POSITION)
async def test_half_a_position_is_refused_by_name_and_nothing_is_written(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, missing: str
) -> None:
    body = call_body()
    del body[missing]
    response = await app_client.post("/api/calls", json=body, headers=citizen.headers)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["field"] == missing and "together" in error["message"]
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM incidents") == 0


async def test_a_text_report_still_has_no_trail(
    app_client: Client, citizen: CitizenSession
) -> None:
    form = {"text": "a report", "idempotency_key": f"r-{uuid.uuid4()}"}
    sent = await app_client.post("/api/reports", data=form, headers=citizen.headers)
    assert sent.status == 201, await sent.text()
    incident_id = (await sent.json())["incident_id"]
    fix = {"lon": 118.7926, "lat": 32.0732, "accuracy_m": 25.0, "datum": "wgs84",
           "time": datetime.now(UTC).isoformat()}  # fmt: skip
    trail = await app_client.post(
        f"/api/calls/{incident_id}/trail", json={"points": [fix]}, headers=citizen.headers
    )
    assert trail.status == 400
