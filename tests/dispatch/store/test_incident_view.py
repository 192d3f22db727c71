"""PostgreSQL's incident view (incident_view_sql) is Python's incident_view to the letter.

`next` writes a claim and its event in one statement, so the event's incident is built
by PostgreSQL; consoles must not be able to tell.  Every column the view reads is
drawn at random, written to a real incident row, and both views of it compared.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.domain.identity import VerificationLevel
from dispatch.domain.incidents import Disposition
from dispatch.store.incident_view import incident_view_sql
from dispatch.store.workflow import get_incident
from dispatch.wire.incident_view import incident_view
from tests.conftest import CitizenSession, Client, Staff
from tests.dispatch.calls import report

PROPERTY = settings(
    database=None,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# What PostgreSQL text can hold: no NUL, no lone surrogates.
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
# Doubles as the domain has them (coordinates, metres, epoch seconds), sign and all:
# below 2**53 in magnitude an integral double reads back from jsonb as the same number.
doubles = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False, allow_infinity=False)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
) | st.datetimes(  # whole seconds: Python then writes no fraction
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "case_no": draw(texts),
        "state": draw(st.sampled_from(["queued", "claimed", "assigned", "merged", "closed"])),
        "channel": draw(st.sampled_from(["alarm", "text", "video"])),
        "tag": draw(texts),
        "severity": draw(st.integers(-32768, 32767)),
        "verification": draw(st.sampled_from([level.value for level in VerificationLevel])),
        "precinct_code": draw(st.none() | texts),
        "jurisdiction": draw(st.sampled_from(["inside", "out_of_jurisdiction", "unknown"])),
        "nearest_precinct_code": draw(st.none() | texts),
        "distance_m": draw(st.none() | doubles),
        "lon": draw(st.none() | doubles),
        "lat": draw(st.none() | doubles),
        "accuracy_m": draw(st.none() | doubles),
        "received_at": draw(moments),
        "priority_score": draw(doubles),
        "claimed": draw(st.booleans()),
        "merged": draw(st.booleans()),
        "disposition": draw(st.none() | st.sampled_from([d.value for d in Disposition])),
        "overdue_at": draw(st.none() | moments),
        "cancelled_at": draw(st.none() | moments),
        "version": draw(st.integers(-(2**31), 2**31 - 1)),
        "refused_attempts": draw(st.integers(0, 2**31 - 1)),
    }


async def _compare(conn: asyncpg.Connection, incident_id: uuid.UUID) -> None:
    from_sql = await conn.fetchval(
        f"SELECT {incident_view_sql('i')} FROM incidents i WHERE id = $1", incident_id
    )
    incident = await get_incident(conn, incident_id)
    assert incident is not None
    assert from_sql == incident_view(incident)


async def test_an_incident_as_filed_and_claimed(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    incident = uuid.UUID((await report(app_client, citizen))["incident_id"])
    async with pg.acquire() as conn:
        await _compare(conn, incident)
    await app_client.post("/api/incidents/next", headers=staff.dispatcher.headers)
    async with pg.acquire() as conn:
        await _compare(conn, incident)


@PROPERTY
@given(row=rows())
async def test_any_row_looks_the_same_from_postgresql_and_python(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool, row: dict[str, Any]
) -> None:
    async with pg.acquire() as conn:
        incident = await conn.fetchval("SELECT id FROM incidents LIMIT 1")
        if incident is None:
            incident = uuid.UUID((await report(app_client, citizen))["incident_id"])
        claimed, merged = row.pop("claimed"), row.pop("merged")
        row["claimed_by"] = staff.dispatcher.id if claimed else None
        row["merged_into"] = incident if merged else None
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(row, start=2))
        await conn.execute(f"UPDATE incidents SET {sets} WHERE id = $1", incident, *row.values())
        await _compare(conn, incident)
