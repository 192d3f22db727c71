"""Officer and citizen feeds: assignments at least once, chat, case status, positions."""

from collections.abc import Callable

import pytest
import socketio

from dispatch.http.keys import ASSIGNMENTS
from tests.conftest import CitizenSession, Client, Staff, app_of
from tests.dispatch.calls import act, report
from tests.fakes import FakeClock
from tests.signaling.feeds import FeedClient


async def test_assignment_offered_until_acknowledged(
    app_client: Client, citizen: CitizenSession, staff: Staff,
    feed: Callable[[str, str], FeedClient], fake_clock: FakeClock,
) -> None:  # fmt: skip
    console = feed("/console", staff.dispatcher.token)
    await console.go_live()
    officer = feed("/officer", staff.officer.token)
    await officer.connect()
    assert (await officer.call("duty", {"on_duty": True}))["status"] == "available"
    await officer.resume(None)
    incident = (await report(app_client, citizen))["incident_id"]
    await act(app_client, staff.dispatcher, incident, "claim")
    await act(app_client, staff.dispatcher, incident, "assign", {"officer_ids": [staff.officer.id]})
    await officer.wait_for(lambda evs: any(n == "assignment.offered" for n, _ in evs))
    offer = next(d for n, d in officer.events if n == "assignment.offered")
    assert offer["incident"]["id"] == incident and offer["callsign"] == "XW-07"
    last_seen = officer.seqs()[-1]
    await officer.close()  # the phone drops off before answering

    # Redelivered on reconnect: the resume hands over what is still unanswered.
    officer = feed("/officer", staff.officer.token)
    await officer.connect()
    resumed = await officer.resume(last_seen)
    assert [p["assignment_id"] for p in resumed["pending"]] == [offer["assignment_id"]]

    # Re-offered after the timeout, then reported to the dispatcher as unacknowledged.
    sweeps = app_of(app_client)[ASSIGNMENTS]
    fake_clock.advance(31)
    assert await sweeps.sweep() == 1
    await officer.wait_for(
        lambda evs: any(n == "assignment.offered" and d.get("offers") == 2 for n, d in evs)
    )
    fake_clock.advance(120)
    await sweeps.sweep()
    await console.wait_for(lambda evs: any(n == "assignment.unacknowledged" for n, _ in evs))
    assert await sweeps.sweep() == 0  # raised once

    # A late answer still counts, and is idempotent.
    accepted = await officer.call("ack", {"assignment_id": offer["assignment_id"], "accept": True})
    assert accepted == {"ok": True, "state": "accepted"}
    again = await officer.call("ack", {"assignment_id": offer["assignment_id"], "accept": True})
    assert again == {"ok": True, "state": "accepted"}
    await console.wait_for(lambda evs: any(n == "assignment.accepted" for n, _ in evs))
    for status in ("en_route", "on_scene", "cleared"):
        moved = await officer.call(
            "status", {"assignment_id": offer["assignment_id"], "status": status}
        )
        assert moved == {"ok": True, "state": status}
    wrong = await officer.call(
        "status", {"assignment_id": offer["assignment_id"], "status": "en_route"}
    )
    assert wrong["error"]["code"] == "invalid_transition"
    for client in (console, officer):
        await client.close()


async def test_citizen_sees_case_status_and_chats_with_the_dispatcher(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
) -> None:
    me = feed("/citizen", citizen.token)
    await me.go_live()
    console = feed("/console", staff.dispatcher.token)
    await console.go_live()
    created = await report(app_client, citizen)
    incident = created["incident_id"]
    await act(app_client, staff.dispatcher, incident, "claim")
    await act(
        app_client, staff.dispatcher, incident, "notes", {"text": "internal: caller sounds drunk"}
    )
    sent = await console.call(
        "message", {"incident_id": incident, "body": "Are you safe to talk?", "client_key": "m1"}
    )
    assert sent["ok"]
    await me.wait_for(lambda evs: any(n == "message.created" for n, _ in evs))
    statuses = [d for n, d in me.events if n == "case.status"]
    assert [s["status"] for s in statuses] == ["queued", "claimed"]
    assert statuses[0]["case_no"] == created["case_no"]
    assert all("drunk" not in str(d) for _, d in me.events), (
        "internal notes never reach the citizen"
    )
    message = next(d for n, d in me.events if n == "message.created")
    assert message["message"]["body"] == "Are you safe to talk?"

    reply = await me.call(
        "message", {"incident_id": incident, "body": "Hiding in the bathroom", "client_key": "c1"}
    )
    assert reply["ok"]
    retry = await me.call(
        "message", {"incident_id": incident, "body": "Hiding in the bathroom", "client_key": "c1"}
    )
    assert retry["message"]["id"] == reply["message"]["id"]  # a retried send is one message
    await console.wait_for(
        lambda evs: any(n == "message.created" and d["sender_kind"] == "citizen" for n, d in evs)
    )
    assert (
        sum(
            1 for n, d in console.events if n == "message.created" and d["sender_kind"] == "citizen"
        )
        == 1
    )

    other = await app_client.post("/api/citizens", json={"device_id": "someone-else-1"})
    stranger = feed("/citizen", (await other.json())["token"])
    await stranger.connect()
    denied = await stranger.call("message", {"incident_id": incident, "body": "hi"})
    assert denied["error"]["code"] == "not_found"
    for client in (me, console, stranger):
        await client.close()


async def test_officer_positions_reach_their_precinct_and_geofence_events(
    app_client: Client, staff: Staff, feed: Callable[[str, str], FeedClient], fake_clock: FakeClock
) -> None:
    xuanwu, gulou = (
        feed("/console", staff.dispatcher.token),
        feed("/console", staff.other_dispatcher.token),
    )
    for client in (xuanwu, gulou):
        await client.go_live()
    officer = feed("/officer", staff.officer.token)
    await officer.connect()
    await officer.call("duty", {"on_duty": True})
    inside = await officer.call("position", {"lon": 118.7926, "lat": 32.0732, "accuracy_m": 5})
    assert inside == {"ok": True, "precinct_code": "320102"}
    limited = await officer.call("position", {"lon": 118.7926, "lat": 32.0732, "accuracy_m": 5})
    assert limited["error"]["code"] == "rate_limited"
    fake_clock.advance(2)
    outside = await officer.call("position", {"lon": 118.7787, "lat": 32.0604, "accuracy_m": 5})
    assert outside["precinct_code"] == "320106"
    await xuanwu.wait_for(lambda evs: any(n == "officer.geofence" for n, _ in evs))
    crossing = next(d for n, d in xuanwu.events if n == "officer.geofence")
    assert crossing["crossing"] == "left" and crossing["to_precinct"] == "320106"
    positions = [d for n, d in xuanwu.events if n == "officer.position"]
    assert len(positions) == 2
    bad = await officer.call("position", {"lon": "east", "lat": 32.0, "accuracy_m": 5})
    assert bad["error"]["field"] == "lon"
    assert not [n for n, _ in gulou.events if n.startswith("officer.")], (
        "another precinct's officer"
    )
    for client in (xuanwu, gulou, officer):
        await client.close()


async def test_resume_refuses_nonsense(
    app_client: Client, staff: Staff, feed: Callable[[str, str], FeedClient]
) -> None:
    console = feed("/console", staff.commander.token)
    await console.connect()
    for value in (-1, 10**12, 2**63, 2**64, "twelve"):
        answer = await console.call("resume", {"last_seq": value})
        assert answer["ok"] is False and answer["error"]["field"] == "last_seq", value
    await console.close()


@pytest.mark.parametrize(
    ("namespace", "who", "code"),
    [
        ("/officer", None, "unauthorized"),
        ("/officer", "garbage", "unauthorized"),
        ("/officer", "citizen", "unauthorized"),
        ("/officer", "dispatcher", "forbidden"),
        ("/citizen", None, "unauthorized"),
        ("/citizen", "garbage", "unauthorized"),
        ("/citizen", "officer", "unauthorized"),
    ],
)
async def test_officer_and_citizen_feeds_refuse_the_wrong_token(
    feed: Callable[[str, str], FeedClient],
    staff: Staff,
    citizen: CitizenSession,
    namespace: str,
    who: str | None,
    code: str,
) -> None:
    tokens = {"citizen": citizen.token, "dispatcher": staff.dispatcher.token,
              "officer": staff.officer.token, "garbage": "not.a.token"}  # fmt: skip
    client = feed(namespace, tokens[who] if who else "")
    if who is None:
        client.token = None  # type: ignore[assignment]
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()
    assert client.refusal["data"]["code"] == code
    assert client.refusal["message"]


async def test_an_officer_follows_the_incident_they_work_also_across_a_reconnect(
    app_client: Client,
    citizen: CitizenSession,
    staff: Staff,
    feed: Callable[[str, str], FeedClient],
) -> None:
    d = staff.dispatcher
    await app_client.post(
        "/api/officers/me/duty", json={"on_duty": True}, headers=staff.officer.headers
    )
    incident = (await report(app_client, citizen))["incident_id"]
    other = (await report(app_client, citizen))["incident_id"]
    officer = feed("/officer", staff.officer.token)
    await officer.go_live()
    assert (await act(app_client, d, incident, "claim"))[0] == 200
    assert (await act(app_client, d, incident, "assign", {"officer_ids": [staff.officer.id]}))[
        0
    ] == 200
    await officer.wait_for(lambda evs: any(n == "assignment.offered" for n, _ in evs))
    assignment = next(data for n, data in officer.events if n == "assignment.offered")
    # Offered is not enough: only once accepted does the officer follow the incident.
    await act(app_client, d, incident, "notes", {"text": "before accepting"})
    answer = await officer.call(
        "ack", {"assignment_id": assignment["assignment_id"], "accept": True}
    )
    assert answer["ok"], answer
    await act(app_client, d, incident, "notes", {"text": "suspect wears red"})
    await act(app_client, d, other, "claim")
    await act(app_client, d, other, "notes", {"text": "not theirs"})
    await officer.wait_for(lambda evs: any(d.get("text") == "suspect wears red" for _, d in evs))
    texts = [data.get("text") for name, data in officer.events if name == "incident.updated"]
    assert texts == ["suspect wears red"]
    last = officer.seqs()[-1]
    await officer.close()

    # Offline: the reporter's trail moves and the dispatcher writes; then the job ends.
    await act(app_client, d, incident, "notes", {"text": "now heading north"})
    assert (await act(app_client, d, incident, "resolve", {"disposition": "assisted"}))[0] == 200
    await act(app_client, d, incident, "notes", {"text": "after the end"})
    again = feed("/officer", staff.officer.token)
    await again.connect()
    await again.resume(last)
    await again.wait_for(lambda evs: any(n == "officer.status" for n, _ in evs))
    names = [(n, data.get("text") or data.get("status")) for n, data in again.events]
    assert names == [
        ("incident.updated", "now heading north"),
        ("incident.resolved", None),
        ("assignment.cleared", None),
        ("officer.status", "available"),  # free again with the incident's end
    ]
    await again.close()
