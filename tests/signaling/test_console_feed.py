"""The console feed: auth, scope, live push, and resume as an invariant."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import socketio

from tests.conftest import CitizenSession, Client, Staff, StaffLogin
from tests.dispatch.calls import GULOU_DRUM_TOWER, act, report
from tests.media.calls import one_whole_call
from tests.signaling.feeds import FeedClient

OPEN = {"queued", "claimed", "assigned", "escalated"}


@pytest.fixture
async def console(
    feed: Callable[[str, str], FeedClient], staff: Staff
) -> AsyncIterator[FeedClient]:
    client = feed("/console", staff.commander.token)
    await client.connect()
    yield client
    await client.close()


async def snapshot(client: Client, who: StaffLogin) -> tuple[int, dict[str, dict[str, Any]]]:
    body = await (await client.get("/api/console/snapshot", headers=who.headers)).json()
    return body["seq"], {i["id"]: i for i in body["incidents"]}


def apply(
    state: dict[str, dict[str, Any]], events: list[tuple[str, dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """What a console does with the feed: every incident event carries the incident."""
    result = dict(state)
    for _, data in events:
        incident = data.get("incident")
        if incident is None:
            continue
        if incident["state"] in OPEN:
            result[incident["id"]] = incident
        else:
            result.pop(incident["id"], None)
    return result


@pytest.mark.parametrize("token", ["", "garbage.token.here", None])
async def test_connect_is_refused_without_a_valid_staff_token(
    feed: Callable[[str, str], FeedClient], token: str | None, citizen: CitizenSession
) -> None:
    client = feed("/console", token if token is not None else citizen.token)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()
    assert client.refusal["data"]["code"] == "unauthorized"
    assert client.refusal["message"]


async def test_officers_cannot_open_a_console(
    feed: Callable[[str, str], FeedClient], staff: Staff
) -> None:
    client = feed("/console", staff.officer.token)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()
    assert client.refusal["data"]["code"] == "forbidden"
    assert "role" in client.refusal["message"]


async def test_live_push_respects_precinct_scope(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
) -> None:
    xuanwu, gulou = (
        feed("/console", staff.dispatcher.token),
        feed("/console", staff.other_dispatcher.token),
    )
    for client in (xuanwu, gulou):
        await client.go_live()
    mine = await report(app_client, citizen)
    theirs = await report(app_client, citizen, lon=GULOU_DRUM_TOWER[0], lat=GULOU_DRUM_TOWER[1])
    await xuanwu.wait_for(
        lambda evs: any(d["incident"]["id"] == mine["incident_id"] for _, d in evs)
    )
    await gulou.wait_for(
        lambda evs: any(d["incident"]["id"] == theirs["incident_id"] for _, d in evs)
    )
    # Delivery is in seq order: having seen the later event, Gulou would have seen the first.
    assert [d["incident"]["id"] for _, d in gulou.events] == [theirs["incident_id"]]
    assert [d["incident"]["id"] for _, d in xuanwu.events] == [mine["incident_id"]]
    name, data = xuanwu.events[0]
    assert name == "incident.created" and data["incident"]["precinct_code"] == "320102"
    for client in (xuanwu, gulou):
        await client.close()


async def every_action(
    client: Client,
    citizen: CitizenSession,
    staff: Staff,
    after_each: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """One of each workflow step (and intake, trail, cancel, note, chat, next), calling
    `after_each(name)` after every one."""
    d, c = staff.dispatcher, staff.commander

    async def done(name: str) -> None:
        if after_each is not None:
            await after_each(name)

    made = []
    for _ in range(5):
        made.append((await report(client, citizen))["incident_id"])
        await done("intake")
    a, b, e, f, g = made
    await client.post(f"/api/alarms/{g}/trail", headers=citizen.headers,
                      json={"points": [{"lon": 118.80, "lat": 32.07, "accuracy_m": 9, "datum": "wgs84",
                                        "time": "2026-11-24T10:00:00+00:00"}]})  # fmt: skip
    await done("trail")
    await client.post(f"/api/alarms/{g}/cancel", json={"reason": "pocket"}, headers=citizen.headers)
    await done("cancel")
    await client.post(
        "/api/officers/me/duty", json={"on_duty": True}, headers=staff.officer.headers
    )
    await done("duty")
    steps: list[tuple[StaffLogin, str, str, Any]] = [
        (d, a, "claim", None), (d, a, "notes", {"text": "calling back"}),
        (d, a, "assign", {"officer_ids": [staff.officer.id]}), (d, a, "resolve", {"disposition": "advised"}),
        (d, a, "close", None), (d, b, "claim", None), (d, b, "release", None), (d, b, "escalate", {"note": "x"}),
        (c, b, "claim", None), (c, b, "invalid", {"reason": "hoax"}), (d, e, "claim", None),
        (d, e, "merge", {"into": f}), (d, e, "unmerge", None), (d, f, "claim", None),
        (d, f, "transfer", {"to": "precinct", "name": "320106"}), (c, f, "claim", None),
        (c, f, "transfer", {"to": "department", "name": "Fire brigade"}),
    ]  # fmt: skip
    for who, incident, verb, body in steps:
        status, answer = await act(client, who, incident, verb, body)
        assert status in (200, 201), (verb, answer)
        await done(verb)
    await client.post(
        f"/api/incidents/{e}/messages", json={"body": "Are you safe?"}, headers=d.headers
    )
    await done("message")
    response = await client.post("/api/incidents/next", headers=d.headers)
    assert (await response.json())["incident"]["id"] == e
    await done("next")
    await one_whole_call(client, citizen, d.headers)
    await done("call")


async def test_stale_snapshot_plus_replayed_events_equals_fresh_snapshot(
    app_client: Client, citizen: CitizenSession, staff: Staff, console: FeedClient
) -> None:
    seq0, before = await snapshot(app_client, staff.commander)
    await every_action(app_client, citizen, staff)
    seq1, after = await snapshot(app_client, staff.commander)
    answer = await console.resume(seq0)
    assert answer["seq"] >= seq1
    seqs = console.seqs()
    assert seqs == sorted(set(seqs)), "no duplicate, in seq order"
    assert apply(before, console.events) == after
    names = {name for name, _ in console.events}
    assert {"incident.created", "incident.updated", "incident.claimed", "incident.released",
            "incident.assigned", "incident.merged", "incident.unmerged", "incident.transferred",
            "incident.escalated", "incident.resolved", "incident.closed", "incident.invalid",
            "assignment.offered", "message.created"} <= names  # fmt: skip


async def test_live_feed_equals_fresh_snapshot_with_no_gap(
    app_client: Client, citizen: CitizenSession, staff: Staff, console: FeedClient, pg: Any
) -> None:
    seq0, before = await snapshot(app_client, staff.commander)
    await console.resume(seq0)
    await every_action(app_client, citizen, staff)
    seq1, after = await snapshot(app_client, staff.commander)
    await console.wait_for_seq(seq1)
    assert apply(before, console.events) == after
    seqs = console.seqs()
    assert seqs == sorted(set(seqs))
    async with pg.acquire() as conn:
        expected = [r["seq"] for r in await conn.fetch(
            """SELECT seq FROM incident_events WHERE seq > $1 AND seq <= $2
               AND (type LIKE 'incident.%' OR type LIKE 'message.%' OR type LIKE 'assignment.%'
                    OR type LIKE 'officer.%' OR type LIKE 'call.%') ORDER BY seq""", seq0, seq1)]  # fmt: skip
    assert [s for s in seqs if s <= seq1] == expected, "no gap"


async def test_reconnect_resumes_without_gap_or_duplicate(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
) -> None:
    first = feed("/console", staff.commander.token)
    await first.go_live()
    one = await report(app_client, citizen)
    await first.wait_for(lambda evs: len(evs) == 1)
    last_seen = first.seqs()[-1]
    await first.close()
    missed = [(await report(app_client, citizen))["incident_id"] for _ in range(3)]
    second = feed("/console", staff.commander.token)
    await second.connect()
    await second.resume(last_seen)
    later = await report(app_client, citizen)
    await second.wait_for(
        lambda evs: any(d["incident"]["id"] == later["incident_id"] for _, d in evs)
    )
    ids = [d["incident"]["id"] for _, d in second.events]
    assert ids == [*missed, later["incident_id"]]
    assert one["incident_id"] not in ids
    assert second.seqs() == sorted(set(second.seqs()))
    await second.close()


async def test_workflow_over_socketio_answers_in_acks(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
) -> None:
    incident = (await report(app_client, citizen))["incident_id"]
    mine, other = feed("/console", staff.dispatcher.token), feed("/console", staff.commander.token)
    await mine.connect()
    await other.connect()
    claimed = await mine.call("claim", {"incident_id": incident})
    assert claimed["ok"] and claimed["incident"]["state"] == "claimed"
    lost = await other.call("claim", {"incident_id": incident})
    assert lost == {"ok": False, "error": {"code": "invalid_transition", "field": "state",
                                           "message": lost["error"]["message"]}}  # fmt: skip
    assert "claimed" in lost["error"]["message"]
    bad = await mine.call("resolve", {"incident_id": incident, "disposition": "vanished"})
    assert (
        bad["ok"] is False
        and bad["error"]["code"] == "bad_request"
        and bad["error"]["field"] == "disposition"
    )
    garbage = await mine.call("claim", {"incident_id": "nope"})
    assert garbage["error"]["field"] == "incident_id"
    resolved = await mine.call("resolve", {"incident_id": incident, "disposition": "report_taken"})
    assert resolved["incident"]["state"] == "resolved"
    nothing = await mine.call("next")
    assert nothing == {"ok": True, "incident": None}
    for client in (mine, other):
        await client.close()


async def test_each_action_folds_the_last_snapshot_into_the_next(
    app_client: Client, citizen: CitizenSession, staff: Staff, console: FeedClient
) -> None:
    """The invariant, action by action: snapshot before + its events == snapshot after."""
    seq, state = await snapshot(app_client, staff.commander)
    await console.resume(seq)
    checked: list[str] = []

    async def check(name: str) -> None:
        nonlocal seq, state
        new_seq, new_state = await snapshot(app_client, staff.commander)
        await console.wait_for_seq(new_seq)
        emitted = [(n, d) for n, d in console.events if seq < d["seq"] <= new_seq]
        assert apply(state, emitted) == new_state, name
        seq, state = new_seq, new_state
        checked.append(name)

    await every_action(app_client, citizen, staff, after_each=check)
    assert len(checked) == 28 and {"claim", "merge", "transfer", "next", "message", "call"} <= set(
        checked
    )
    seqs = console.seqs()
    assert seqs == sorted(set(seqs))


async def test_a_snapshot_loads_those_in_hand_then_the_most_urgent_and_counts_them_all(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    """Bounded whatever the queue's length: a console with 100,000 open incidents loads
    the ones in hand and the top of the queue, and learns how many there are in all."""
    made = [(await report(app_client, citizen))["incident_id"] for _ in range(5)]
    held = made[-1]
    assert (await act(app_client, staff.dispatcher, held, "claim"))[0] == 200
    headers = staff.commander.headers
    full = await (await app_client.get("/api/console/snapshot", headers=headers)).json()
    assert {i["id"] for i in full["incidents"]} == set(made)
    assert full["more"] is False
    assert full["totals"] == {
        "open": 5,
        "queued": 4,
        "by_severity": {"1": 5, "2": 0, "3": 0, "4": 0},
    }

    body = await (await app_client.get("/api/console/snapshot?limit=3", headers=headers)).json()
    queued = [i for i in full["incidents"] if i["state"] == "queued"]
    expected = {held, *(i["id"] for i in queued[:2])}
    assert {i["id"] for i in body["incidents"]} == expected
    assert [i["priority_score"] for i in body["incidents"]] == sorted(
        i["priority_score"] for i in body["incidents"]
    )
    assert body["queue"] == [i["id"] for i in queued[:2]]
    assert body["more"] is True and body["totals"] == full["totals"]
    # The annotations with the same limit are for the same incidents.
    notes = await (await app_client.get("/api/console/annotations?limit=3", headers=headers)).json()
    assert {a["id"] for a in notes["incidents"]} == expected

    for bad in ("0", "-1", "twenty", "20001"):
        for path in ("/api/console/snapshot", "/api/console/annotations"):
            response = await app_client.get(f"{path}?limit={bad}", headers=headers)
            assert response.status == 400, (path, bad)
            assert (await response.json())["error"]["field"] == "limit"


async def test_a_bounded_snapshot_plus_the_feed_agrees_with_a_fresh_one(
    app_client: Client, citizen: CitizenSession, staff: Staff, console: FeedClient
) -> None:
    """Resuming from a bounded snapshot: what it loaded and what the events since brought
    are each as a fresh snapshot shows them (an incident beyond the limit comes in with
    its first event)."""
    headers = staff.commander.headers
    taken: dict[str, Any] = {}

    async def take(name: str) -> None:
        if name == "duty":  # five incidents made, none in hand yet: four beyond the limit
            taken.update(
                await (
                    await app_client.get("/api/console/snapshot?limit=1", headers=headers)
                ).json()
            )
            await console.resume(taken["seq"])

    await every_action(app_client, citizen, staff, after_each=take)
    assert taken["more"] is True and len(taken["incidents"]) == 1
    seq1, after = await snapshot(app_client, staff.commander)
    await console.wait_for_seq(seq1)
    held = apply({i["id"]: i for i in taken["incidents"]}, console.events)
    assert held.items() <= after.items()
    touched = {d["incident"]["id"] for _, d in console.events if d.get("incident")}
    assert touched & after.keys() <= held.keys()
    assert len(touched) > 1
