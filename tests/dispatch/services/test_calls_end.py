"""The dispatcher ends a call (DELETE /api/incidents/{id}/call): only the one who
claimed it, for everyone, and the phone may not reconnect into it."""

from __future__ import annotations

import signal
import uuid

import asyncpg
import psutil

from tests.conftest import CitizenSession, Client, Staff
from tests.media.calls import connect_phone, pick_up, sdp_headers, start_call
from tests.media.peers import Console, Phone, wait_for
from tests.signaling.feeds import FeedClient
from tests.waiting import eventually


async def test_only_the_claiming_dispatcher_ends_a_call_and_the_phone_cannot_call_back(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    citizen_feed = FeedClient(str(app_client.make_url("/")).rstrip("/"), "/citizen", citizen.token)
    await citizen_feed.go_live()
    call = await start_call(app_client, citizen)
    incident_id = call["incident_id"]
    end_url = f"/api/incidents/{incident_id}/call"
    phone, listener = Phone(), Console()
    try:
        await connect_phone(app_client, citizen, call["session_url"], phone)
        # Not claimed: nobody may end it; a commander listens but never ends.
        refused = await app_client.delete(end_url, headers=staff.dispatcher.headers)
        assert refused.status == 403, await refused.text()
        await pick_up(app_client, incident_id, staff.commander.headers, listener)
        assert (await app_client.delete(end_url, headers=staff.commander.headers)).status == 403
        gulou = await app_client.delete(end_url, headers=staff.other_dispatcher.headers)
        assert gulou.status == 404  # out of scope
        claimed = await app_client.post(
            f"/api/incidents/{incident_id}/claim", headers=staff.dispatcher.headers
        )
        assert claimed.status == 200
        await wait_for(lambda: listener.video.frames >= 3, what="the commander's picture")

        ended = await app_client.delete(end_url, headers=staff.dispatcher.headers)
        assert ended.status == 200, await ended.text()
        async with pg.acquire() as conn:
            session = await conn.fetchrow("SELECT * FROM call_sessions")
            viewer = await conn.fetchrow("SELECT * FROM call_viewers")
            state = await conn.fetchval("SELECT state FROM incidents")
        assert (session["state"], session["end_reason"]) == ("ended", "ended")
        assert session["attachment_id"] is not None  # the recording is evidence
        assert viewer["leave_reason"] == "call_ended" and state == "claimed"
        # The phone is told at once, on its feed, not only by its connection closing.
        await citizen_feed.wait_for(
            lambda events: any(d.get("event") == "call.ended" for _, d in events)
        )
        (told,) = [d for n, d in citizen_feed.events if d.get("event") == "call.ended"]
        assert told["text"] == "The dispatcher ended your video call."
        assert told["case_no"] == call["case_no"] and told["status"] == "claimed"
        # Twice is fine.
        assert (await app_client.delete(end_url, headers=staff.dispatcher.headers)).status == 200

        again = Phone()
        try:
            back = await app_client.post(
                call["session_url"], data=await again.offer(),
                headers=sdp_headers(citizen.headers),
            )  # fmt: skip
            assert back.status == 409
            assert "ended this call" in (await back.json())["error"]["message"]
        finally:
            await again.close()
        async with pg.acquire() as conn:
            segments = await conn.fetchval(
                "SELECT count(*) FROM call_sessions WHERE incident_id = $1",
                uuid.UUID(incident_id),
            )
        assert segments == 1
    finally:
        await phone.close()
        await listener.close()
        await citizen_feed.close()


async def test_a_dead_media_process_ends_its_calls_at_once_and_the_phone_calls_back(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    """Not at the node's next start: the session is recorded as failed with what of its
    recording reached the disk (evidence), the viewer as left, `call.ended` in the feed,
    and the phone's next offer is a second segment of the same incident."""
    call = await start_call(app_client, citizen)
    incident_id = call["incident_id"]
    phone, console = Phone(), Console()
    try:
        await connect_phone(app_client, citizen, call["session_url"], phone)
        claimed = await app_client.post(
            f"/api/incidents/{incident_id}/claim", headers=staff.dispatcher.headers
        )
        assert claimed.status == 200
        await pick_up(app_client, incident_id, staff.dispatcher.headers, console)
        # Two seconds watched: the file's last half second may not survive the kill.
        await wait_for(lambda: console.video.frames >= 60, what="two seconds of video")
        # The node's media processes (the call is in one of them) die; the node lives.
        children = [p for p in psutil.Process().children()
                    if "media.process_main" in " ".join(p.cmdline())]  # fmt: skip
        assert children
        for child in children:
            child.send_signal(signal.SIGKILL)

        async def ended() -> bool:  # the session's end, then the viewer's leave
            async with pg.acquire() as conn:
                return bool(await conn.fetchval(
                    """SELECT s.reported AND v.left_at IS NOT NULL FROM call_sessions s
                       JOIN call_viewers v USING (incident_id) WHERE s.incident_id = $1""",
                    uuid.UUID(incident_id),
                ))  # fmt: skip

        await eventually(ended, timeout_s=15, what="the session's end and the viewer's leave")
        async with pg.acquire() as conn:
            session = await conn.fetchrow("SELECT * FROM call_sessions")
            viewer = await conn.fetchrow("SELECT * FROM call_viewers")
            evidence = await conn.fetchrow(
                "SELECT * FROM attachments WHERE id = $1", session["attachment_id"]
            )
            events = [r["type"] for r in await conn.fetch(
                "SELECT type FROM incident_events WHERE incident_id = $1 ORDER BY seq",
                uuid.UUID(incident_id),
            )]  # fmt: skip
        assert (session["state"], session["end_reason"]) == ("ended", "failed")
        assert evidence is not None and evidence["sha256"] and evidence["duration_s"] > 0.5
        assert viewer["leave_reason"] == "failed" and viewer["left_at"] is not None
        assert "call.ended" in events

        again = Phone()
        try:
            await connect_phone(app_client, citizen, call["session_url"], again)
            async with pg.acquire() as conn:
                segments = await conn.fetch(
                    "SELECT segment, state FROM call_sessions ORDER BY segment"
                )
            assert [(r["segment"], r["state"]) for r in segments] == [(1, "ended"), (2, "live")]
        finally:
            await again.close()
    finally:
        await phone.close()
        await console.close()
