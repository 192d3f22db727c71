"""Silent alarms through the real HTTP app on real PostgreSQL and Redis."""

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from dispatch.queue import GLOBAL_KEY, precinct_key
from dispatch.services.views import incident_view
from dispatch.store.workflow import incident_from_row
from geo.datum import wgs84_to_gcj02
from tests.conftest import CitizenSession, Client, register_citizen

XUANWU_LAKE = (118.7926, 32.0732)  # WGS84, in 玄武区 (320102)
SHANGHAI = (121.4737, 31.2304)  # outside every Nanjing district


def alarm(**overrides: Any) -> dict[str, Any]:
    body = {
        "tag": "kidnapping",
        "lon": XUANWU_LAKE[0],
        "lat": XUANWU_LAKE[1],
        "accuracy_m": 12.5,
        "datum": "wgs84",
        "client_time": datetime.now(UTC).isoformat(),
        "idempotency_key": f"key-{uuid.uuid4()}",
    }
    body.update(overrides)
    return body


async def counts(pg: asyncpg.Pool) -> dict[str, int]:
    async with pg.acquire() as conn:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("incidents", "reports", "incident_events", "alarm_trail", "attachments")
        }


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
