"""The event catalogue: complete, documented, and what every client really receives."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import msgspec
import pytest

from dispatch.domain.events import Actor, EventType, StoredEvent
from dispatch.http.keys import ASSIGNMENTS, OVERDUE
from dispatch.store.events import event_from_row, latest_seq
from signaling.audiences import (
    ALL_PRECINCTS_ROOM,
    CITIZEN,
    CONSOLE,
    OFFICER,
    citizen_room,
    membership,
    officer_room,
    rooms_for,
)
from signaling.events.catalogue import (
    CATALOGUE,
    NAMESPACES,
    IncidentUpdated,
    json_schema,
    namespace_union,
)
from signaling.events.docs import DOCS_DIR, rendered
from tests.conftest import CitizenSession, Client, Staff, app_of
from tests.dispatch.calls import act, report
from tests.fakes import FakeClock
from tests.signaling.feeds import FeedClient
from tests.signaling.test_console_feed import every_action

ROOT = Path(__file__).resolve().parents[2]

# Item 2 of issue 5, word for word.
ISSUE_EVENTS = (
    "incident.created", "incident.updated", "incident.claimed", "incident.released",
    "incident.assigned", "incident.merged", "incident.unmerged", "incident.transferred",
    "incident.escalated", "incident.overdue", "incident.resolved", "incident.closed",
    "message.created", "officer.position", "officer.status", "assignment.offered",
    "assignment.accepted", "assignment.declined", "assignment.unacknowledged", "case.status",
)  # fmt: skip


# --- the generated files ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(rendered()))
def test_generated_docs_are_what_the_catalogue_produces_now(name: str) -> None:
    path = DOCS_DIR / name
    assert path.is_file(), f"{path} is missing: run python -m signaling.events"
    assert path.read_text("utf-8") == rendered()[name], (
        f"{path} is stale: run python -m signaling.events"
    )


def test_the_exported_schema_is_valid_json_schema() -> None:
    schema = json.loads((DOCS_DIR / "events.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert len(schema["oneOf"]) == len(CATALOGUE)
    for name, event in CATALOGUE.items():
        definition = schema["$defs"][event.__name__]
        assert definition["properties"]["type"] == {"enum": [name]}
        assert {"type", "seq", "at"} <= set(definition["required"])
        assert definition["additionalProperties"] is False
        assert definition["description"], f"{name} has no description"


def test_every_event_documents_itself() -> None:
    for name, event in CATALOGUE.items():
        # Its own docstring, not one inherited from its base.
        assert (vars(event).get("__doc__") or "").strip(), f"{event.__name__} ({name})"
        assert NAMESPACES[name], name


# --- complete: every wire name the server can produce ------------------------------


def _assignment_states() -> list[str]:
    sql = (ROOT / "dispatch/store/migrations/0001_initial.sql").read_text("utf-8")
    table = sql[sql.index("CREATE TABLE assignments") :]
    check = re.search(r"state\s+text NOT NULL CHECK \(state IN \(([^)]*)\)", table)
    assert check is not None
    return re.findall(r"'([a-z_]+)'", check.group(1))


def stored_event_types() -> set[str]:
    """Every event type the code can append: the members of `EventType` (the recorders
    take nothing else)."""
    return {event_type.value for event_type in EventType}


def _probes(event_type: str) -> Iterator[StoredEvent]:
    """The event with every audience key set: the most any client could be sent."""
    for sender in ("citizen", "staff"):
        for thread in ("reporter", "officers"):
            yield StoredEvent(
                seq=1, type=event_type, incident_id=uuid.uuid4(), precinct_code="320102",
                citizen_id=uuid.uuid4(), officer_id=7, actor=Actor.system("probe"),
                payload={"incident": {"state": "claimed", "case_no": "T1"},
                         "sender_kind": sender, "message": {"thread": thread}},
                created_at=datetime.now(UTC),
            )  # fmt: skip


def test_event_type_names_the_event_types() -> None:
    found = stored_event_types()
    assert {"incident.created", "incident.trail", "incident.overdue", "incident.rated",
            "message.created", "officer.geofence", "assignment.cleared", "assignment.offered",
            "user.created", "citizen.verified"} <= found, found  # fmt: skip
    # Every state an assignment can reach has its event type (EventType.of_assignment).
    assert {f"assignment.{state}" for state in _assignment_states()} <= found


def test_the_catalogue_holds_exactly_the_wire_events_rooms_for_can_produce() -> None:
    reachable: dict[str, set[str]] = {}
    for event_type in stored_event_types():
        for probe in _probes(event_type):
            for namespace, _room, name, data in rooms_for(probe):
                assert data["type"] == name and data["seq"] == probe.seq
                reachable.setdefault(name, set()).add(namespace)
    assert set(reachable) - set(CATALOGUE) == set(), "sent but not in the catalogue"
    assert set(CATALOGUE) - set(reachable) == set(), "catalogued but never sent"
    assert {name: set(spaces) for name, spaces in NAMESPACES.items()} == reachable


def test_the_catalogue_holds_every_event_the_issue_lists() -> None:
    assert set(ISSUE_EVENTS) - set(CATALOGUE) == set()


# --- true: every event of a full working day decodes --------------------------------


async def _offer(client: Client, staff: Staff, pg: asyncpg.Pool, incident: str) -> str:
    """Claim `incident` and send the officer; the new assignment's id."""
    for verb, body in (("claim", None), ("assign", {"officer_ids": [staff.officer.id]})):
        status, answer = await act(client, staff.dispatcher, incident, verb, body)
        assert status == 200, (verb, answer)
    async with pg.acquire() as conn:
        assignment = await conn.fetchval(
            "SELECT id FROM assignments WHERE incident_id = $1 AND state = 'offered'",
            uuid.UUID(incident),
        )
    return str(assignment)


async def officer_and_reporter_actions(
    client: Client,
    citizen: CitizenSession,
    staff: Staff,
    officer: FeedClient,
    reporter: FeedClient,
    pg: asyncpg.Pool,
    fake_clock: FakeClock,
) -> str:
    """What `every_action` leaves out: positions, every assignment path, chat from the
    reporter, a rating and an overdue incident.  Returns the offer never answered."""
    here, there = (118.7926, 32.0732), (118.7787, 32.0604)  # Xuanwu, then over into Gulou
    for lon, lat in (here, there):
        answer = await officer.call("position", {"lon": lon, "lat": lat, "accuracy_m": 5})
        assert answer["ok"], answer
        fake_clock.advance(2)
    sweeps = app_of(client)[ASSIGNMENTS]

    # Offered, re-offered, unacknowledged, then accepted late and worked to the end.
    case = await report(client, citizen)
    first = await _offer(client, staff, pg, case["incident_id"])
    fake_clock.advance(31)
    assert await sweeps.sweep() == 1
    fake_clock.advance(120)
    assert await sweeps.sweep() == 1
    stamp = {"captured_at": fake_clock.now().isoformat(),
             "place": {"lon": here[0], "lat": here[1], "accuracy_m": 9}}  # fmt: skip
    steps = [("ack", {"accept": True, **stamp})] + [
        ("status", {"status": s, "client_key": f"step-{s}", **stamp})
        for s in ("en_route", "on_scene", "cleared")
    ]
    for verb, body in steps:
        answer = await officer.call(verb, {"assignment_id": first, **body})
        assert answer["ok"], (verb, answer)
        if body.get("status") == "en_route":
            # Working it, the officer follows the incident through its room.
            status, answer = await act(client, staff.dispatcher, case["incident_id"], "notes",
                                       {"text": "suspect wears a red jacket"})  # fmt: skip
            assert status in (200, 201), answer
            await officer.wait_for(lambda evs: any(n == "incident.updated" for n, _ in evs))
            # Chat in the officers' thread, stamped with when and where it was written.
            said = await officer.call(
                "message", {"incident_id": case["incident_id"], "body": "on my way",
                            "client_key": "o-1", "captured_at": fake_clock.now().isoformat(),
                            "place": {"lon": here[0], "lat": here[1], "accuracy_m": 9}},
            )  # fmt: skip
            assert said["ok"], said
            status, answer = await act(client, staff.dispatcher, case["incident_id"], "messages",
                                       {"body": "copy", "thread": "officers"})  # fmt: skip
            assert status == 201, answer
    sent = await reporter.call(
        "message", {"incident_id": case["incident_id"], "body": "thank you", "client_key": "k1"}
    )
    assert sent["ok"], sent
    status, answer = await act(
        client, staff.dispatcher, case["incident_id"], "resolve", {"disposition": "assisted"}
    )
    assert status == 200, answer
    rated = await client.post(
        f"/api/cases/{case['case_no']}/rating", json={"rating": 5, "comment": "quick"},
        headers={"Authorization": f"Bearer {case['tracking_token']}"},
    )  # fmt: skip
    assert rated.status == 201, await rated.text()

    # Declined.
    second = await _offer(client, staff, pg, (await report(client, citizen))["incident_id"])
    answer = await officer.call(
        "ack", {"assignment_id": second, "accept": False, "reason": "flat tyre"}
    )
    assert answer["ok"], answer

    # Never answered: the offer ends with its incident, and a late answer is refused.
    stale = (await report(client, citizen))["incident_id"]
    third = await _offer(client, staff, pg, stale)
    fake_clock.advance(121)
    assert await sweeps.sweep() == 1
    handed_over = {"to": "department", "name": "Fire brigade"}
    status, answer = await act(client, staff.dispatcher, stale, "transfer", handed_over)
    assert status == 200, answer
    late = await officer.call("ack", {"assignment_id": third, "accept": True})
    assert late["ok"] is False and late["error"]["code"] == "invalid_transition", late

    # Mutual aid: Gulou's dispatcher borrows the Xuanwu officer, whose precinct is told.
    gulou = (await report(client, citizen, lon=118.7787, lat=32.0604))["incident_id"]
    borrow: dict[str, Any] = {"officer_ids": [staff.officer.id], "mutual_aid_reason": "no Gulou"}
    assert (await act(client, staff.other_dispatcher, gulou, "claim"))[0] == 200
    status, answer = await act(client, staff.other_dispatcher, gulou, "assign", borrow)
    assert status == 200, answer

    assert (await officer.call("duty", {"on_duty": False}))["status"] == "off_duty"
    await report(client, citizen)
    fake_clock.advance(3600)
    assert await app_of(client)[OVERDUE].sweep() >= 1
    return third


def _decode_failures(
    namespace: str, events: list[tuple[str, dict[str, Any]]]
) -> Iterator[tuple[str, int, str]]:
    validator = jsonschema.Draft202012Validator(
        json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    union = namespace_union(namespace)
    for name, data in events:
        try:
            decoded = msgspec.convert(data, CATALOGUE[name], strict=True)
            assert data["type"] == name, "the payload's type is the event name"
            assert type(msgspec.convert(data, union, strict=True)) is type(decoded)
            validator.validate(data)
            if isinstance(decoded, IncidentUpdated):
                groups = [decoded.points, decoded.reason, decoded.kind, decoded.refused_attempts]
                assert sum(g is not msgspec.UNSET for g in groups) == 1, "one kind of update"
                assert (decoded.kind is msgspec.UNSET) == (decoded.text is msgspec.UNSET)
        except (msgspec.ValidationError, jsonschema.ValidationError, AssertionError) as exc:
            yield name, data.get("seq", -1), str(exc).splitlines()[0]


async def test_every_event_each_client_receives_fits_the_catalogue(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
    fake_clock: FakeClock,
    pg: asyncpg.Pool,
) -> None:
    clients = {
        CONSOLE: feed(CONSOLE, staff.commander.token),
        OFFICER: feed(OFFICER, staff.officer.token),
        CITIZEN: feed(CITIZEN, citizen.token),
    }
    rooms = {
        CONSOLE: ALL_PRECINCTS_ROOM,
        OFFICER: officer_room(staff.officer.id),
        CITIZEN: citizen_room(citizen.id),
    }
    for client in clients.values():
        await client.go_live()
    async with pg.acquire() as conn:
        start = await latest_seq(conn)

    await every_action(app_client, citizen, staff)
    unanswered = await officer_and_reporter_actions(
        app_client, citizen, staff, clients[OFFICER], clients[CITIZEN], pg, fake_clock
    )

    # What each client must have been sent: the committed events, through `rooms_for`.
    async with pg.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM incident_events WHERE seq > $1 ORDER BY seq", start)
    expected: dict[str, list[tuple[str, int]]] = {namespace: [] for namespace in clients}
    # Each client's rooms as the feed moves it (the officer into incident rooms).
    joined = {namespace: {room} for namespace, room in rooms.items()}
    for event in map(event_from_row, rows):
        sent_to: set[str] = set()  # a client in two of an event's rooms gets it once
        for namespace, room, name, _ in rooms_for(event):
            if room in joined[namespace] and namespace not in sent_to:
                expected[namespace].append((name, event.seq))
                sent_to.add(namespace)
        moved = membership(event)
        if moved is not None and moved[1] in joined[moved[0]]:
            (joined[moved[0]].add if moved[3] else joined[moved[0]].discard)(moved[2])
    assert any(n.startswith("incident.") for n, _ in expected[OFFICER]), "incident rooms"
    for namespace, client in clients.items():
        await client.wait_for_seq(expected[namespace][-1][1])
        assert [(name, data["seq"]) for name, data in client.events] == expected[namespace]
        seqs = client.seqs()
        assert all(a < b for a, b in pairwise(seqs)), namespace
        failures = list(_decode_failures(namespace, client.events))
        assert failures == [], f"{namespace}: events that do not fit the catalogue"

    received = {name for client in clients.values() for name, _ in client.events}
    assert received == set(CATALOGUE), "every catalogued event was exercised"
    told = [data["text"] for name, data in clients[CITIZEN].events if name == "case.status"]
    assert {"An officer is on the way.", "An officer has arrived."} <= set(told)
    ended = [d for n, d in clients[OFFICER].events if n == "assignment.cancelled"]
    assert [d["assignment_id"] for d in ended] == [unanswered], "an unanswered offer ends too"
    for client in clients.values():
        await client.close()
