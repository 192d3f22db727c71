"""What the dispatch tests send again and again: a citizen's alarm and its posting, a
staff member's verb on an incident, and the rows an intake writes."""

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from tests.conftest import CitizenSession, Client, StaffLogin

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


GULOU_DRUM_TOWER = (118.7787, 32.0604)  # in 鼓楼区 (320106)


async def report(client: Client, citizen: CitizenSession, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/alarms", json=alarm(**overrides), headers=citizen.headers)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def act(
    client: Client, who: StaffLogin, incident: str, verb: str, body: Any = None
) -> tuple[int, Any]:
    response = await client.post(
        f"/api/incidents/{incident}/{verb}", json=body or {}, headers=who.headers
    )
    return response.status, await response.json()


async def copy_queued(pg: asyncpg.Pool, template: uuid.UUID, count: int) -> None:
    """`count` queued copies of incident `template` (ids, case numbers and scores of
    their own), straight into PostgreSQL: many open incidents in no time."""
    async with pg.acquire() as conn:
        columns = [
            r["column_name"]
            for r in await conn.fetch(
                """SELECT column_name FROM information_schema.columns
                   WHERE table_name = 'incidents' ORDER BY ordinal_position"""
            )
        ]
        overrides = {
            "id": "gen_random_uuid()",
            "case_no": "'COPY-' || g",
            "priority_score": "t.priority_score + g",
        }
        select = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
        await conn.execute(
            f"""INSERT INTO incidents ({", ".join(columns)})
                SELECT {select} FROM incidents t, generate_series(1, {count}) g
                WHERE t.id = $1""",
            template,
        )
