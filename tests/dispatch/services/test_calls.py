"""Video calls end to end: the HTTP API, real aiortc peers, PostgreSQL, the feeds."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import av
import msgspec

from dispatch.http.keys import CALLS
from signaling.events.catalogue import CATALOGUE
from tests.conftest import CitizenSession, Client, Staff, app_of
from tests.media.calls import connect_phone, pick_up, sdp_headers, start_call
from tests.media.peers import Console, Phone, wait_for
from tests.signaling.feeds import FeedClient


async def event_types(pg: asyncpg.Pool, incident_id: str) -> list[str]:
    async with pg.acquire() as conn:
        rows = await conn.fetch(
            "SELECT type FROM incident_events WHERE incident_id = $1 ORDER BY seq",
            uuid.UUID(incident_id),
        )
    return [r["type"] for r in rows]


def decoded(events: list[tuple[str, dict[str, Any]]], prefix: str) -> list[Any]:
    return [msgspec.convert(d, CATALOGUE[n]) for n, d in events if n.startswith(prefix)]


async def test_a_call_is_queued_recorded_picked_up_and_kept_as_evidence(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    base = str(app_client.make_url("/")).rstrip("/")
    console_feed = FeedClient(base, "/console", staff.dispatcher.token)
    citizen_feed = FeedClient(base, "/citizen", citizen.token)
    await console_feed.go_live()
    await citizen_feed.go_live()
    call = await start_call(app_client, citizen)
    incident_id = call["incident_id"]
    assert call["session_url"] == f"/api/calls/{incident_id}/sessions"
    assert call["precinct"]["code"] == "320102" and call["status"] == "queued"
    phone, dispatcher, commander = Phone(), Console(talk=True), Console(talk=True)
    try:
        location = await connect_phone(app_client, citizen, call["session_url"], phone)
        assert location.startswith(f"/api/calls/{incident_id}/sessions/")
        # Not picked up yet: a dispatcher must claim first.
        refused = await app_client.post(
            f"/api/incidents/{incident_id}/call/viewers",
            data=await Console().offer(), headers=sdp_headers(staff.dispatcher.headers),
        )  # fmt: skip
        assert refused.status == 403, await refused.text()
        claim = await app_client.post(
            f"/api/incidents/{incident_id}/claim", headers=staff.dispatcher.headers
        )
        assert claim.status == 200
        viewer = await pick_up(app_client, incident_id, staff.dispatcher.headers, dispatcher)
        listener = await pick_up(app_client, incident_id, staff.commander.headers, commander)
        await wait_for(lambda: dispatcher.video.frames >= 20 and commander.video.frames >= 20,
                       what="video at both consoles")  # fmt: skip
        await wait_for(lambda: phone.heard.frames >= 20, what="the dispatcher's voice")
        # Nobody else in scope... and out of scope the call does not exist.
        other = await app_client.post(
            f"/api/incidents/{incident_id}/call/viewers",
            data=await Console().offer(), headers=sdp_headers(staff.other_dispatcher.headers),
        )  # fmt: skip
        assert other.status == 404
        assert (await app_client.delete(listener, headers=staff.commander.headers)).status == 200
        assert (await app_client.delete(viewer, headers=staff.dispatcher.headers)).status == 200
        assert (await app_client.delete(location, headers=citizen.headers)).status == 200
        # Hanging up twice is fine.
        assert (await app_client.delete(location, headers=citizen.headers)).status == 200
    finally:
        for peer in (phone, dispatcher, commander):
            await peer.close()
    types = await event_types(pg, incident_id)
    assert types == [
        "incident.created", "call.started", "incident.claimed", "call.answered",
        "call.answered", "call.left", "call.left", "call.ended",
    ]  # fmt: skip
    await console_feed.wait_for(lambda events: any(n == "call.ended" for n, _ in events))
    (started,) = decoded(console_feed.events, "call.started")
    (ended,) = decoded(console_feed.events, "call.ended")
    answered = decoded(console_feed.events, "call.answered")
    assert started.segment == 1 and ended.reason == "hang_up"
    assert [a.talk for a in answered] == [True, False]
    recording = ended.recording
    assert recording is not None and recording.codecs == ["VP8", "opus"]
    assert recording.duration_s > 0.5
    # The citizen is told when the dispatcher joins and leaves, never of the commander.
    await citizen_feed.wait_for(
        lambda events: sum(1 for _, d in events if "video call" in d.get("text", "")) >= 2
    )
    texts = [d["text"] for n, d in citizen_feed.events if n == "case.status"]
    assert "A dispatcher joined your video call." in texts
    assert "The dispatcher left your video call." in texts
    assert sum("video call" in t for t in texts) == 2
    await console_feed.close()
    await citizen_feed.close()

    # The recording: fetched by staff in scope with a range, audited; nobody else.
    url = recording.url
    whole = await app_client.get(url, headers=staff.dispatcher.headers)
    assert whole.status == 200 and whole.content_type == "video/webm"
    data = await whole.read()
    assert len(data) == recording.bytes
    part = await app_client.get(url, headers=staff.dispatcher.headers | {"Range": "bytes=0-99"})
    assert part.status == 206 and len(await part.read()) == 100
    assert (await app_client.get(url, headers=staff.other_dispatcher.headers)).status == 404
    assert (await app_client.get(url, headers=citizen.headers)).status == 401
    async with pg.acquire() as conn:
        reads = await conn.fetch("SELECT user_id, byte_range FROM recording_reads ORDER BY id")
        attachment = await conn.fetchrow("SELECT * FROM attachments WHERE kind = 'video'")
    assert [(r["user_id"], r["byte_range"]) for r in reads] == [
        (staff.dispatcher.id, None), (staff.dispatcher.id, "bytes=0-99"),
    ]  # fmt: skip
    assert attachment["sha256"] == recording.sha256 and attachment["codecs"] == ["VP8", "opus"]
    path = app_of(app_client)[CALLS].evidence_root / attachment["storage_key"]
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 20
    history = await (
        await app_client.get(
            f"/api/incidents/{incident_id}/history", headers=staff.dispatcher.headers
        )
    ).json()
    assert [e["type"] for e in history["events"]] == types
    eido = await (
        await app_client.get(f"/api/incidents/{incident_id}/eido", headers=staff.dispatcher.headers)
    ).json()
    (attached,) = eido["attachmentComponent"]
    assert attached["hash"] == recording.sha256 and attached["url"] == url
    assert eido["incidentComponent"]["callSource"] == "video"


async def test_a_call_that_never_connects_stands_as_a_report(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    call = await start_call(app_client, citizen)
    incident = await app_client.get(
        f"/api/incidents/{call['incident_id']}", headers=staff.dispatcher.headers
    )
    body = await incident.json()
    assert body["channel"] == "video" and body["state"] == "queued"
    await app_client.post(f"/api/incidents/{call['incident_id']}/claim",
                          headers=staff.dispatcher.headers)  # fmt: skip
    watch = await app_client.post(
        f"/api/incidents/{call['incident_id']}/call/viewers",
        data=await Console().offer(), headers=sdp_headers(staff.dispatcher.headers),
    )  # fmt: skip
    assert watch.status == 409
    assert (await watch.json())["error"]["code"] == "conflict"
    assert await event_types(pg, call["incident_id"]) == ["incident.created", "incident.claimed"]
