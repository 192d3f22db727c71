"""The console's video pane in headless Chromium: an aiortc phone calls, the dispatcher
picks up, sees the picture play, hears the caller, talks back (Chromium's fake
microphone, received by the phone), mutes, hangs up; a commander listens in silently."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import av
import numpy as np
import pytest

from media.frames import EncodedFrame
from tests.browser import chromium
from tests.conftest import CitizenSession, Client, Staff
from tests.console_web.pages import open_console, row
from tests.media.calls import connect_phone, sdp_headers, start_call
from tests.media.peers import Counter, Phone
from tests.waiting import eventually

pytestmark = pytest.mark.browser

# A spy on the page's peer connections (their stats say what was heard and sent).
SPY = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
})();
"""

STATS = """
async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const found = {videoFrames: 0, audioPackets: 0, audioEnergy: 0, sentAudio: 0, micOn: null};
  if (!pc) return found;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') found.videoFrames = r.framesDecoded;
    if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      found.audioPackets = r.packetsReceived;
      found.audioEnergy = r.totalAudioEnergy || 0;
    }
    if (r.type === 'outbound-rtp' && r.kind === 'audio') found.sentAudio = r.packetsSent;
  });
  const mic = pc.getSenders().find((s) => s.track && s.track.kind === 'audio');
  found.micOn = mic ? mic.track.enabled : null;
  return found;
}
"""

# What the <video> element plays: the picture's size, its clock, the caller's voice.
PLAYING = """
() => {
  const v = document.querySelector('.video video');
  const stream = v && v.srcObject;
  return v && {
    width: v.videoWidth, time: v.currentTime, paused: v.paused, muted: v.muted,
    audio: stream ? stream.getAudioTracks().filter((t) => t.readyState === 'live').length : 0,
  };
}
"""


class Heard(Counter):
    """The dispatcher's voice at the phone, each packet decoded to its peak level (how
    Opus codes silence depends on the encoder's state: sizes cannot tell)."""

    def __init__(self) -> None:
        super().__init__()
        self.peaks: list[float] = []
        self._decoder: Any = av.CodecContext.create("opus", "r")

    def add(self, frame: EncodedFrame | None) -> None:
        super().add(frame)
        if frame is None:
            return
        peak = 0.0
        for decoded in self._decoder.decode(av.Packet(frame.data)):
            peak = max(peak, float(np.abs(decoded.to_ndarray()).max()))
        self.peaks.append(peak)


SILENCE = 0.001  # peak level (full scale 1.0) below which a packet is silence


def silent_second(peaks: list[float]) -> bool:
    """50 packets (20 ms each) of silence in a row: a muted microphone (Chromium's fake
    one beeps with pauses of about 0.1 s)."""
    run = 0
    for peak in peaks:
        run = run + 1 if peak < SILENCE else 0
        if run >= 50:
            return True
    return False


async def stats(page: Any) -> dict[str, Any]:
    found: dict[str, Any] = await page.evaluate(STATS)
    return found


async def plays(page: Any) -> None:
    """The picture has a size and its clock moves on."""
    await eventually(
        lambda: page.evaluate(
            "() => (document.querySelector('.video video')?.videoWidth || 0) > 0"
        ),
        what="a picture in the video pane",
    )
    start = (await page.evaluate(PLAYING))["time"]

    async def advanced() -> bool:
        now = await page.evaluate(PLAYING)
        return bool(now["time"] > start + 0.5 and not now["paused"])

    await eventually(advanced, what="the video playing on")


async def open_incident(page: Any, incident_id: str) -> None:
    await page.wait_for_selector(row(incident_id))
    await page.click(row(incident_id))
    await page.wait_for_selector(f".detail[data-id='{incident_id}'] .video")


async def viewer_rows(pg: asyncpg.Pool, incident_id: str) -> list[asyncpg.Record]:
    async with pg.acquire() as conn:
        return list(await conn.fetch(
            "SELECT v.*, u.username FROM call_viewers v JOIN users u ON u.id = v.user_id"
            " WHERE v.incident_id = $1 ORDER BY joined_at", uuid.UUID(incident_id),
        ))  # fmt: skip


async def test_the_dispatcher_picks_up_sees_hears_talks_mutes_and_hangs_up(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    call = await start_call(app_client, citizen)
    incident_id = call["incident_id"]
    phone = Phone()
    heard = phone.heard = Heard()
    try:
        session = await connect_phone(app_client, citizen, call["session_url"], phone)
        async with chromium() as browser:
            desk = await browser.new_page()
            await desk.add_init_script(SPY)
            desk = await open_console(browser, app_client, staff.dispatcher.username, "en", desk)
            await open_incident(desk, incident_id)
            await desk.wait_for_selector(f"{row(incident_id)} >> text=live call")
            assert heard.frames == 0  # nobody speaks to a caller before pick-up

            # Pick up: the pane claims the queued call first, then connects.
            await desk.click(".video [data-action=pick-up]")
            await desk.wait_for_selector(".video[data-call=live]", timeout=30_000)
            await desk.wait_for_selector(f"{row(incident_id)}[data-state=claimed]")
            await plays(desk)
            # The caller's voice: a live audio track on the element, unmuted, with sound.
            playing = await desk.evaluate(PLAYING)
            assert playing["audio"] == 1 and playing["muted"] is False
            await eventually(lambda: _energy(desk), what="the caller's voice")
            # Talking back: Chromium's fake microphone beeps; the phone receives it.
            await eventually(lambda: heard.frames >= 50, what="the dispatcher's voice at the phone")
            await eventually(lambda: max(heard.peaks) > 0.05, what="a beep at the phone")

            # Mute: the microphone is off and the phone hears only silence.
            await desk.click(".video [data-action=mute]")
            await desk.wait_for_selector(".video [data-action=mute][aria-pressed=true]")
            assert (await stats(desk))["micOn"] is False
            muted_at = len(heard.peaks)
            assert not silent_second(heard.peaks[:muted_at])  # the microphone was live
            await eventually(lambda: silent_second(heard.peaks[muted_at:]),
                             what="a second of silence at the phone")  # fmt: skip
            await desk.click(".video [data-action=mute]")
            await desk.wait_for_selector(".video [data-action=mute][aria-pressed=false]")
            unmuted_from = len(heard.peaks)
            await eventually(lambda: max(heard.peaks[unmuted_from:], default=0) > 0.05,
                             what="the voice back after unmuting")  # fmt: skip

            # Leave: the call goes on without the dispatcher (the phone still recording).
            await desk.click(".video [data-action=leave]")
            await desk.wait_for_selector(".video[data-call=ended]")
            (viewer,) = await viewer_rows(pg, incident_id)
            assert viewer["talk"] is True and viewer["username"] == staff.dispatcher.username

            async def left() -> bool:
                (seen,) = await viewer_rows(pg, incident_id)
                return bool(seen["leave_reason"] == "left" and seen["left_at"] is not None)

            await eventually(left, what="the leave recorded")
            await desk.wait_for_selector(
                f".detail[data-id='{incident_id}'] .timeline [data-type='call.left']"
            )
            assert (await session_row(pg, incident_id))["state"] == "live"

            # Pick up again, then hang up: the call ends for everyone, the recording kept.
            await desk.click(".video [data-action=pick-up]")
            await desk.wait_for_selector(".video[data-call=live]", timeout=30_000)
            await plays(desk)
            await desk.click(".video [data-action=hang-up]")
            await desk.wait_for_selector(".video[data-call=ended]")

            async def ended() -> bool:
                return bool((await session_row(pg, incident_id))["end_reason"] == "ended")

            await eventually(ended, what="the call ended")
            await desk.wait_for_selector(
                f".detail[data-id='{incident_id}'] .timeline [data-type='call.ended']"
            )

            async def everyone_left() -> bool:
                reasons = [v["leave_reason"] for v in await viewer_rows(pg, incident_id)]
                return reasons == ["left", "call_ended"]

            await eventually(everyone_left, what="the viewer leaving with the call")
            async with pg.acquire() as conn:
                event = await conn.fetchrow(
                    "SELECT * FROM incident_events WHERE type = 'call.ended'"
                    " AND incident_id = $1", uuid.UUID(incident_id),
                )  # fmt: skip
                state = await conn.fetchval(
                    "SELECT state FROM incidents WHERE id = $1", uuid.UUID(incident_id)
                )
            assert event["payload"]["recording"]["bytes"] > 0
            assert (event["actor_kind"], event["actor_id"]) == ("staff", str(staff.dispatcher.id))
            assert state == "claimed"  # the incident goes on; only the call ended
            assert desk.js_errors == []
        # The phone cannot take the end for a lost network and call back into it.
        again = Phone()
        try:
            refused = await app_client.post(
                call["session_url"], data=await again.offer(),
                headers=sdp_headers(citizen.headers),
            )  # fmt: skip
            assert refused.status == 409, await refused.text()
        finally:
            await again.close()
        assert (await app_client.delete(session, headers=citizen.headers)).status == 200
    finally:
        await phone.close()


async def session_row(pg: asyncpg.Pool, incident_id: str) -> asyncpg.Record:
    async with pg.acquire() as conn:
        found = await conn.fetchrow(
            "SELECT * FROM call_sessions WHERE incident_id = $1", uuid.UUID(incident_id)
        )
    assert found is not None
    return found


async def _energy(page: Any) -> bool:
    found = await stats(page)
    return bool(found["audioPackets"] > 0 and found["audioEnergy"] > 0)


async def test_a_commander_listens_in_silently_beside_the_dispatcher(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    call = await start_call(app_client, citizen)
    incident_id = call["incident_id"]
    phone = Phone()
    heard = phone.heard = Heard()
    try:
        session = await connect_phone(app_client, citizen, call["session_url"], phone)
        async with chromium() as browser:
            chief = await browser.new_page()
            await chief.add_init_script(SPY)
            chief = await open_console(browser, app_client, staff.commander.username, "en", chief)
            await open_incident(chief, incident_id)
            # A commander listens in without claiming, and has no microphone to mute.
            await chief.click(".video [data-action=pick-up]:has-text('Listen in')")
            await chief.wait_for_selector(".video[data-call=live]", timeout=30_000)
            await plays(chief)
            await eventually(lambda: _energy(chief), what="the caller's voice at the commander")
            assert await chief.locator(".video [data-action=mute]").count() == 0
            found = await stats(chief)
            assert found["sentAudio"] == 0 and found["micOn"] is None
            (viewer,) = await viewer_rows(pg, incident_id)
            assert viewer["talk"] is False and viewer["username"] == staff.commander.username
            async with pg.acquire() as conn:
                state = await conn.fetchval(
                    "SELECT state FROM incidents WHERE id = $1", uuid.UUID(incident_id)
                )
            assert state == "queued"  # listening in takes nothing from the queue
            assert heard.frames == 0  # and the caller hears nobody
            assert await chief.locator(".video [data-action=hang-up]").count() == 0
            await chief.click(".video [data-action=leave]")
            await chief.wait_for_selector(".video[data-call=ended]")

            async def left() -> bool:
                (seen,) = await viewer_rows(pg, incident_id)
                return bool(seen["leave_reason"] == "left")

            await eventually(left, what="the commander's leave recorded")

            # Listening again when the citizen hangs up: the console says so at once (the
            # server's DTLS close), no frozen picture left looking live.
            await chief.click(".video [data-action=pick-up]:has-text('Listen in')")
            await chief.wait_for_selector(".video[data-call=live]", timeout=30_000)
            await plays(chief)
            ice_before = await chief.evaluate("() => window.__pcs.at(-1).iceConnectionState")
            assert (await app_client.delete(session, headers=citizen.headers)).status == 200
            await chief.wait_for_selector(".video[data-call=ended]", timeout=30_000)
            # Ended by the close, not by ICE noticing the silence (~8 s: "disconnected").
            ice_after = await chief.evaluate("() => window.__pcs.at(-1).iceConnectionState")
            assert ice_before == "connected" and ice_after in ("connected", "closed"), ice_after

            async def ended_with_the_call() -> bool:
                reasons = [v["leave_reason"] for v in await viewer_rows(pg, incident_id)]
                return reasons == ["left", "call_ended"]

            await eventually(ended_with_the_call, what="the second listening ended with the call")
            assert chief.js_errors == []
    finally:
        await phone.close()
