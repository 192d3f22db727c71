"""Possible duplicates at intake (suggested, never merged) and overdue incidents."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from dispatch.domain.events import StoredEvent
from dispatch.http.keys import OVERDUE, PUBLISHER
from dispatch.services.overdue import OVERDUE_BATCH
from geo.distance import EARTH_RADIUS_M, haversine_m
from tests.conftest import CitizenSession, Client, Staff, app_of, register_citizen
from tests.dispatch.calls import XUANWU_LAKE, act, copy_queued, report
from tests.fakes import FakeClock

LON, LAT = XUANWU_LAKE


def north_of(metres: float) -> dict[str, float]:
    """Alarm coordinates `metres` due north of the first alarm."""
    return {"lon": LON, "lat": LAT + math.degrees(metres / EARTH_RADIUS_M)}


async def post(client: Client, who: CitizenSession, tag: str, **where: Any) -> uuid.UUID:
    body = await report(client, who, tag=tag, **(where or north_of(0)))
    return uuid.UUID(body["incident_id"])


async def links(pg: asyncpg.Pool) -> set[tuple[uuid.UUID, uuid.UUID]]:
    async with pg.acquire() as conn:
        rows = await conn.fetch(
            "SELECT incident_id, other_id FROM incident_links WHERE kind = 'possible_duplicate'"
        )
    return {(r["incident_id"], r["other_id"]) for r in rows}


async def created_payload(pg: asyncpg.Pool, incident_id: uuid.UUID) -> dict[str, Any]:
    async with pg.acquire() as conn:
        payload: dict[str, Any] = await conn.fetchval(
            """SELECT payload FROM incident_events
               WHERE type = 'incident.created' AND incident_id = $1""",
            incident_id,
        )
    return payload


async def states(pg: asyncpg.Pool) -> dict[uuid.UUID, str]:
    async with pg.acquire() as conn:
        return {r["id"]: r["state"] for r in await conn.fetch("SELECT id, state FROM incidents")}


# --- possible duplicates ------------------------------------------------------------------


@pytest.fixture
async def witness(app_client: Client) -> CitizenSession:
    """A second reporter: duplicates come from different people."""
    return await register_citizen(app_client, "witness-device-01")


async def test_compatible_reports_close_in_space_and_time_are_linked_both_ways(
    app_client: Client,
    citizen: CitizenSession,
    witness: CitizenSession,
    pg: asyncpg.Pool,
    fake_clock: FakeClock,
) -> None:
    first = await post(app_client, citizen, "robbery")
    fake_clock.advance(20 * 60)
    second = await post(app_client, witness, "assault", **north_of(100))

    assert await links(pg) == {(first, second), (second, first)}
    async with pg.acquire() as conn:
        distance = await conn.fetchval("SELECT DISTINCT distance_m FROM incident_links")
    duplicates = (await created_payload(pg, second))["possible_duplicates"]
    assert duplicates == [{"incident_id": str(first), "distance_m": round(distance, 1)}]
    assert 99 < distance < 101
    assert distance == pytest.approx(haversine_m(LON, LAT, LON, north_of(100)["lat"]))
    assert (await created_payload(pg, first))["possible_duplicates"] == []
    # A suggestion for a dispatcher, never a merge.
    assert await states(pg) == {first: "queued", second: "queued"}


async def test_exactly_at_the_window_edge_and_just_inside_the_radius_reports_are_linked(
    app_client: Client,
    citizen: CitizenSession,
    witness: CitizenSession,
    pg: asyncpg.Pool,
    fake_clock: FakeClock,
) -> None:
    first = await post(app_client, citizen, "kidnapping")
    fake_clock.advance(30 * 60)
    second = await post(app_client, witness, "suspicious", **north_of(295))
    assert await links(pg) == {(first, second), (second, first)}


async def test_reports_too_far_too_late_or_of_another_kind_are_not_linked(
    app_client: Client,
    citizen: CitizenSession,
    witness: CitizenSession,
    pg: asyncpg.Pool,
    fake_clock: FakeClock,
) -> None:
    # Four robberies 5 km apart, each with one report nearby that must not be linked.
    kinds = {"fire": ("fire", 50), "medical": ("medical", 50), "far": ("assault", 500)}
    places = {name: 5000.0 * i for i, name in enumerate([*kinds, "late"])}
    first = {
        name: await post(app_client, citizen, "robbery", **north_of(at))
        for name, at in places.items()
    }
    fake_clock.advance(60)
    second = {
        name: await post(app_client, witness, tag, **north_of(places[name] + metres))
        for name, (tag, metres) in kinds.items()
    }
    fake_clock.advance(30 * 60)  # 31 minutes after the robberies
    second["late"] = await post(app_client, witness, "assault", **north_of(places["late"] + 100))

    assert await links(pg) == set()
    for incident_id in second.values():
        assert (await created_payload(pg, incident_id))["possible_duplicates"] == []
    assert set((await states(pg)).values()) == {"queued"}
    assert len(first) == len(second) == 4


async def test_a_report_tagged_other_may_duplicate_anything_and_resolved_ones_are_not_candidates(
    app_client: Client,
    citizen: CitizenSession,
    witness: CitizenSession,
    staff: Staff,
    pg: asyncpg.Pool,
    fake_clock: FakeClock,
) -> None:
    fire = await post(app_client, citizen, "fire")
    robbery = await post(app_client, citizen, "robbery", **north_of(30))
    status, _ = await act(app_client, staff.dispatcher, str(robbery), "claim")
    assert status == 200
    status, _ = await act(
        app_client, staff.dispatcher, str(robbery), "resolve", {"disposition": "advised"}
    )
    assert status == 200
    fake_clock.advance(60)
    vague = await post(app_client, witness, "other", **north_of(60))
    # The resolved robbery is no candidate; the open fire is, whatever its tag.
    assert await links(pg) == {(vague, fire), (fire, vague)}
    listed = (await created_payload(pg, vague))["possible_duplicates"]
    assert [d["incident_id"] for d in listed] == [str(fire)]


async def test_several_earlier_reports_are_all_listed(
    app_client: Client,
    citizen: CitizenSession,
    witness: CitizenSession,
    pg: asyncpg.Pool,
    fake_clock: FakeClock,
) -> None:
    a = await post(app_client, citizen, "robbery")
    fake_clock.advance(60)
    b = await post(app_client, citizen, "assault", **north_of(150))
    fake_clock.advance(60)
    c = await post(app_client, witness, "robbery", **north_of(75))
    assert await links(pg) == {(a, b), (b, a), (c, a), (a, c), (c, b), (b, c)}
    listed = (await created_payload(pg, c))["possible_duplicates"]
    assert {d["incident_id"] for d in listed} == {str(a), str(b)}
    assert set((await states(pg)).values()) == {"queued"}


# --- overdue --------------------------------------------------------------------------------


async def overdue_events(pg: asyncpg.Pool) -> dict[uuid.UUID, list[dict[str, Any]]]:
    async with pg.acquire() as conn:
        rows = await conn.fetch(
            """SELECT incident_id, payload FROM incident_events
               WHERE type = 'incident.overdue' ORDER BY seq"""
        )
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["incident_id"], []).append(row["payload"])
    return found


async def test_each_severity_goes_overdue_once_at_its_threshold(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    pg: asyncpg.Pool,
    fake_clock: FakeClock,
) -> None:
    watch = app_of(app_client)[OVERDUE]
    # Spread out, so no two are duplicates of each other (irrelevant here, but quieter).
    by_severity = {
        1: await post(app_client, citizen, "kidnapping"),
        2: await post(app_client, citizen, "medical", **north_of(1000)),
        3: await post(app_client, citizen, "suspicious", **north_of(2000)),
        4: await post(app_client, citizen, "other", **north_of(3000)),
    }
    claimed = await post(app_client, citizen, "robbery", **north_of(4000))
    status, _ = await act(app_client, staff.commander, str(claimed), "claim")
    assert status == 200

    received = fake_clock.current  # all five arrived at this instant
    assert await watch.sweep() == 0
    fake_clock.advance(59)
    assert await watch.sweep() == 0
    expected: dict[uuid.UUID, int] = {}
    # Past each threshold (60, 300, 900, 1800 s) in turn, sweeping twice each time.
    for severity, elapsed in ((1, 61), (2, 301), (3, 901), (4, 1801)):
        fake_clock.current = received + timedelta(seconds=elapsed)
        assert await watch.sweep() == 1, severity
        assert await watch.sweep() == 0
        expected[by_severity[severity]] = severity
        found = await overdue_events(pg)
        assert {k: len(v) for k, v in found.items()} == dict.fromkeys(expected, 1)

    fake_clock.advance(24 * 3600)
    assert await watch.sweep() == 0
    found = await overdue_events(pg)
    assert claimed not in found
    for incident_id, (payload,) in found.items():
        assert payload["incident"]["overdue"] is True
        assert payload["threshold_s"] == {1: 60, 2: 300, 3: 900, 4: 1800}[expected[incident_id]]
        assert payload["waited_s"] > payload["threshold_s"]
    async with pg.acquire() as conn:
        marked = await conn.fetch("SELECT id, overdue_at, state FROM incidents")
    assert {r["id"] for r in marked if r["overdue_at"] is not None} == set(by_severity.values())
    assert {r["id"]: r["state"] for r in marked}[claimed] == "claimed"


async def test_sweeps_racing_on_two_nodes_raise_each_overdue_event_once(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, fake_clock: FakeClock
) -> None:
    watch = app_of(app_client)[OVERDUE]
    made = [await post(app_client, citizen, "kidnapping", **north_of(i * 400)) for i in range(12)]
    fake_clock.advance(120)
    counts = await asyncio.gather(*(watch.sweep() for _ in range(6)))
    assert sum(counts) == len(made)
    found = await overdue_events(pg)
    assert {k: len(v) for k, v in found.items()} == dict.fromkeys(made, 1)


async def test_after_an_outage_many_go_overdue_at_once_in_short_transactions(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, fake_clock: FakeClock
) -> None:
    """Thousands due at one sweep (a node back after an hour): marked in batches, each
    its own transaction and publish, so the feed's writers and snapshots never wait
    for all of them; each incident still goes overdue once."""
    app = app_of(app_client)
    template = await post(app_client, citizen, "kidnapping")
    await copy_queued(pg, template, 2 * OVERDUE_BATCH + 50)
    published: list[int] = []

    async def count(events: Sequence[StoredEvent]) -> None:
        published.append(len(events))

    app[PUBLISHER].subscribe(count)
    fake_clock.advance(3600)
    assert await app[OVERDUE].sweep() == 2 * OVERDUE_BATCH + 51
    assert published == [OVERDUE_BATCH, OVERDUE_BATCH, 51]
    found = await overdue_events(pg)
    assert len(found) == 2 * OVERDUE_BATCH + 51
    assert all(len(payloads) == 1 for payloads in found.values())
    assert await app[OVERDUE].sweep() == 0
