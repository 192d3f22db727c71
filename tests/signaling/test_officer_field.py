"""The officer's phone in the field: chat with the dispatcher, steps stamped with when and
where they were tapped, sent again from an outbox without being recorded twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from dispatch.domain.field_reports import Thread, message_thread
from geo.datum import Datum, from_wgs84
from tests.conftest import CitizenSession, Client, Staff, make_staff
from tests.dispatch.calls import act, report
from tests.fakes import FakeClock
from tests.signaling.feeds import FeedClient


async def _offered(
    client: Client, staff: Staff, citizen: CitizenSession, created: dict[str, Any] | None = None
) -> tuple[str, str]:
    """A fresh incident, claimed, with the officer sent: (incident id, assignment id)."""
    incident = (created or await report(client, citizen))["incident_id"]
    for verb, body in (("claim", None), ("assign", {"officer_ids": [staff.officer.id]})):
        status, answer = await act(client, staff.dispatcher, incident, verb, body)
        assert status == 200, (verb, answer)
    response = await client.get(
        f"/api/incidents/{incident}/history", headers=staff.dispatcher.headers
    )
    events = (await response.json())["events"]
    offered = next(e for e in events if e["type"] == "assignment.offered")
    return incident, offered["payload"]["assignment_id"]


def _named(events: list[tuple[str, dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    return [d for n, d in events if n == name]


async def test_officers_chat_with_the_dispatcher_apart_from_the_reporter(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
    fake_clock: FakeClock,
    pg: asyncpg.Pool,
) -> None:
    console = feed("/console", staff.dispatcher.token)
    reporter = feed("/citizen", citizen.token)
    officer = feed("/officer", staff.officer.token)
    for client in (console, reporter, officer):
        await client.go_live()
    assert (await officer.call("duty", {"on_duty": True}))["ok"]
    created = await report(app_client, citizen)
    incident, assignment = await _offered(app_client, staff, citizen, created)

    # Offered but not yet working it: nothing to chat about yet.
    early = await officer.call("message", {"incident_id": incident, "body": "where exactly?"})
    assert early["ok"] is False and early["error"]["code"] == "not_found", early
    assert (await officer.call("ack", {"assignment_id": assignment, "accept": True}))["ok"]

    # The dispatcher writes to the officers (HTTP and Socket.IO alike).
    response = await app_client.post(
        f"/api/incidents/{incident}/messages",
        json={"body": "Suspect in a red jacket", "thread": "officers", "client_key": "d1"},
        headers=staff.dispatcher.headers,
    )
    assert response.status == 201, await response.text()
    await officer.wait_for(lambda evs: bool(_named(evs, "message.created")))
    got = _named(officer.events, "message.created")[0]
    assert got["message"]["body"] == "Suspect in a red jacket"
    assert got["message"]["thread"] == "officers" and got["sender_kind"] == "staff"

    # The officer answers from where they are, captured a minute ago (GCJ-02 phone).
    here = (118.7926, 32.0732)
    gcj = from_wgs84(*here, Datum.GCJ02)
    captured = fake_clock.now() - timedelta(minutes=1)
    body = {"incident_id": incident, "body": "Two minutes away", "client_key": "o1",
            "captured_at": captured.isoformat(),
            "place": {"lon": gcj[0], "lat": gcj[1], "accuracy_m": 8, "datum": "gcj02"}}  # fmt: skip
    sent = await officer.call("message", body)
    assert sent["ok"], sent
    again = await officer.call("message", body)  # the outbox sent it twice
    assert again["message"]["id"] == sent["message"]["id"]
    message = sent["message"]
    assert message["thread"] == "officers" and message["captured_at"] == captured.isoformat()
    assert message["place"]["lon"] == pytest.approx(here[0], abs=1e-7)
    assert message["place"]["lat"] == pytest.approx(here[1], abs=1e-7)

    def from_officer(evs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        return [d for d in _named(evs, "message.created") if d["message"]["client_key"] == "o1"]

    await console.wait_for(lambda evs: bool(from_officer(evs)))
    await officer.wait_for(lambda evs: bool(from_officer(evs)))  # its own confirmation
    assert len(from_officer(console.events)) == 1
    async with pg.acquire() as conn:
        rows = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE incident_id = $1 AND client_key = 'o1'",
            uuid.UUID(incident),
        )
    assert rows == 1

    # The reporter's thread stays theirs: they see neither side of the officers' chat.
    said = await console.call(
        "message", {"incident_id": incident, "body": "Help is coming", "client_key": "d2"}
    )
    assert said["ok"] and said["message"]["thread"] == "reporter"
    await reporter.wait_for(lambda evs: bool(_named(evs, "message.created")))
    assert [d["message"]["body"] for d in _named(reporter.events, "message.created")] == [
        "Help is coming"
    ]
    assert "red jacket" not in str(reporter.events) and "Two minutes" not in str(reporter.events)
    marker = await console.call(
        "message", {"incident_id": incident, "body": "marker", "thread": "officers"}
    )
    assert marker["ok"], marker
    await officer.wait_for(lambda evs: "marker" in str(evs))  # delivered in seq order
    assert "Help is coming" not in str(officer.events), "the reporter's thread is not theirs"
    tracked = await app_client.get(
        f"/api/cases/{created['case_no']}",
        headers={"Authorization": f"Bearer {created['tracking_token']}"},
    )
    timeline = str(await tracked.json())
    assert timeline.count("New message from the dispatcher.") == 1, timeline

    # Another officer, not sent, cannot write into it.
    stranger = await make_staff(app_client, "off-xw2", "officer", ("320102",), "XW-09")
    other = feed("/officer", stranger.token)
    await other.connect()
    refused = await other.call("message", {"incident_id": incident, "body": "hello"})
    assert refused["error"]["code"] == "not_found"
    for client in (console, reporter, officer, other):
        await client.close()


async def test_status_steps_are_stamped_and_recorded_once_per_key(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
    fake_clock: FakeClock,
    pg: asyncpg.Pool,
) -> None:
    console = feed("/console", staff.dispatcher.token)
    officer = feed("/officer", staff.officer.token)
    for client in (console, officer):
        await client.go_live()
    assert (await officer.call("duty", {"on_duty": True}))["ok"]
    incident, assignment = await _offered(app_client, staff, citizen)
    refused = await officer.call("ack", {"assignment_id": assignment, "accept": False})
    assert refused["error"] == {
        "code": "bad_request", "message": "say why you decline", "field": "reason"
    }  # fmt: skip
    accept = {"assignment_id": assignment, "accept": True, "client_key": "ack-0001"}
    assert await officer.call("ack", accept) == {"ok": True, "state": "accepted"}

    tapped = fake_clock.now() - timedelta(minutes=3)  # tapped offline, sent now
    en_route = {"assignment_id": assignment, "status": "en_route", "client_key": "step-0001",
                "captured_at": tapped.isoformat(),
                "place": {"lon": 118.79, "lat": 32.07, "accuracy_m": 12}}  # fmt: skip
    assert await officer.call("status", en_route) == {"ok": True, "state": "en_route"}
    on_scene = {"assignment_id": assignment, "status": "on_scene", "client_key": "step-0002"}
    assert await officer.call("status", on_scene) == {"ok": True, "state": "on_scene"}
    # The ack of the first send was lost: the outbox sends it again, after on_scene.
    assert await officer.call("status", en_route) == {"ok": True, "state": "en_route"}
    reused = await officer.call("status", {**on_scene, "client_key": "step-0001"})
    assert reused["error"]["code"] == "conflict" and reused["error"]["field"] == "client_key"

    future = fake_clock.now() + timedelta(hours=1)
    wrong_clock = {"assignment_id": assignment, "status": "cleared", "client_key": "step-0003",
                   "captured_at": future.isoformat()}  # fmt: skip
    answer = await officer.call("status", wrong_clock)
    assert answer["error"]["code"] == "bad_request" and answer["error"]["field"] == "captured_at"
    naive = await officer.call("status", {**wrong_clock, "captured_at": "2026-01-01T10:00:00"})
    assert naive["error"]["field"] == "captured_at"
    slightly_ahead = fake_clock.now() + timedelta(seconds=20)  # a phone clock a bit fast
    cleared = {**wrong_clock, "captured_at": slightly_ahead.isoformat()}
    assert await officer.call("status", cleared) == {"ok": True, "state": "cleared"}

    def steps(evs: list[tuple[str, dict[str, Any]]]) -> list[str]:
        return [n for n, _ in evs if n.startswith("assignment.") and n != "assignment.offered"]

    want = ["assignment.accepted", "assignment.en_route", "assignment.on_scene",
            "assignment.cleared"]  # fmt: skip
    await console.wait_for(lambda evs: steps(evs) == want)
    await officer.wait_for(lambda evs: steps(evs) == want)
    by_name = dict(console.events)
    assert by_name["assignment.en_route"]["captured_at"] == tapped.isoformat()
    assert by_name["assignment.en_route"]["place"] == {"lon": 118.79, "lat": 32.07,
                                                       "accuracy_m": 12}  # fmt: skip
    assert "captured_at" not in by_name["assignment.on_scene"]  # an old client's step
    assert by_name["assignment.cleared"]["captured_at"] == fake_clock.now().isoformat()

    # The history shows each step once, with the time it was tapped.
    response = await app_client.get(
        f"/api/incidents/{incident}/history", headers=staff.dispatcher.headers
    )
    history = [e for e in (await response.json())["events"] if e["type"] == "assignment.en_route"]
    assert len(history) == 1 and history[0]["payload"]["captured_at"] == tapped.isoformat()
    async with pg.acquire() as conn:
        kept = await conn.fetch(
            "SELECT client_key, action FROM officer_actions WHERE officer_id = $1 ORDER BY 1",
            staff.officer.id,
        )
    assert [(r["client_key"], r["action"]) for r in kept] == [
        ("ack-0001", "accepted"), ("step-0001", "en_route"), ("step-0002", "on_scene"),
        ("step-0003", "cleared"),
    ]  # fmt: skip
    for client in (console, officer):
        await client.close()


async def test_a_reconnecting_phone_gets_its_offers_and_its_work(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
) -> None:
    officer = feed("/officer", staff.officer.token)
    await officer.go_live()
    assert (await officer.call("duty", {"on_duty": True}))["ok"]
    working_on, first = await _offered(app_client, staff, citizen)
    assert (await officer.call("ack", {"assignment_id": first, "accept": True}))["ok"]
    waiting_on, second = await _offered(app_client, staff, citizen)
    await officer.wait_for(lambda evs: len(_named(evs, "assignment.offered")) == 2)
    await officer.close()

    again = feed("/officer", staff.officer.token)
    await again.connect()
    resumed = await again.resume(None)
    assert [(p["assignment_id"], p["state"], p["incident"]["id"]) for p in resumed["pending"]] == [
        (second, "offered", waiting_on)
    ]
    assert [(a["assignment_id"], a["state"], a["incident"]["id"]) for a in resumed["active"]] == [
        (first, "accepted", working_on)
    ]
    await again.close()


def test_message_threads_default_to_the_reporter() -> None:
    assert message_thread({"message": {"body": "recorded before threads"}}) is Thread.REPORTER
    assert message_thread({"message": {"thread": "officers"}}) is Thread.OFFICERS
    assert message_thread({}) is Thread.REPORTER


async def test_the_officer_snapshot_is_where_the_feed_resumes(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
) -> None:
    officer = feed("/officer", staff.officer.token)
    await officer.go_live()
    assert (await officer.call("duty", {"on_duty": True}))["ok"]
    _, assignment = await _offered(app_client, staff, citizen)
    response = await app_client.get("/api/officers/me/snapshot", headers=staff.officer.headers)
    assert response.status == 200, await response.text()
    snapshot = await response.json()
    assert snapshot["status"] == "available"
    assert [p["assignment_id"] for p in snapshot["pending"]] == [assignment]
    assert snapshot["active"] == []
    assert (await officer.call("ack", {"assignment_id": assignment, "accept": True}))["ok"]
    await officer.close()

    # Resumed after the snapshot's seq: exactly what happened since, the acceptance (and
    # the officer's status becoming busy with it).
    again = feed("/officer", staff.officer.token)
    await again.connect()
    await again.resume(snapshot["seq"])
    await again.wait_for(lambda evs: any(n == "officer.status" for n, _ in evs))
    assert [(n, d.get("status")) for n, d in again.events] == [
        ("assignment.accepted", None),
        ("officer.status", "busy"),
    ]
    await again.close()
    forbidden = await app_client.get("/api/officers/me/snapshot", headers=staff.dispatcher.headers)
    assert forbidden.status == 403
