"""A video call from headless Chromium (fake camera and microphone) to a second page
watching as the dispatcher: frames arrive, the phone hears the dispatcher, and the
recording holds the frames the browser encoded."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import asyncpg
import av
import pytest

from dispatch.http.keys import CALLS
from tests.browser import chromium
from tests.conftest import CitizenSession, Client, Staff, app_of
from tests.media.calls import start_call

# WebRTC on loopback, media that plays without a gesture.
WEBRTC_ARGS = ("--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required")

# Gather every candidate (at most 2 s: aiortc takes no trickled ones), then one offer.
CONNECT = """
async ({url, token, send, receiveVideo}) => {
  const pc = new RTCPeerConnection({iceServers: []});
  const media = await navigator.mediaDevices.getUserMedia(
    send === 'both' ? {video: {width: 640, height: 480, frameRate: 30}, audio: true}
                    : {audio: true});
  for (const track of media.getTracks()) {
    pc.addTransceiver(track, {direction: track.kind === 'audio' ? 'sendrecv' : 'sendonly'});
  }
  if (receiveVideo) pc.addTransceiver('video', {direction: 'recvonly'});
  pc.ontrack = (event) => {
    const element = document.createElement(event.track.kind);
    element.srcObject = new MediaStream([event.track]);
    element.muted = false;
    document.body.appendChild(element);
    element.play().catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange',
      () => pc.iceGatheringState === 'complete' && done());
    setTimeout(done, 2000);
  });
  const answer = await fetch(url, {method: 'POST', body: pc.localDescription.sdp,
    headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token}});
  if (answer.status !== 201) throw new Error(answer.status + ' ' + await answer.text());
  await pc.setRemoteDescription({type: 'answer', sdp: await answer.text()});
  window.pc = pc;
  return answer.headers.get('Location');
}
"""

STATS = """
async () => {
  const found = {framesEncoded: 0, framesDecoded: 0, audioPacketsReceived: 0, audioEnergy: 0,
                 audioPacketsSent: 0, at: performance.now()};
  (await window.pc.getStats()).forEach((r) => {
    if (r.type === 'outbound-rtp' && r.kind === 'audio') found.audioPacketsSent = r.packetsSent;
    if (r.type === 'outbound-rtp' && r.kind === 'video') found.framesEncoded = r.framesEncoded;
    if (r.type === 'inbound-rtp' && r.kind === 'video') found.framesDecoded = r.framesDecoded;
    if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      found.audioPacketsReceived = r.packetsReceived;
      found.audioEnergy = r.totalAudioEnergy || 0;
    }
  });
  return found;
}
"""


async def _until(page: Any, key: str, at_least: float, within: float = 20) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            stats: dict[str, Any] = await page.evaluate(STATS)
            if stats[key] >= at_least:
                return stats
            await asyncio.sleep(0.2)


@pytest.mark.browser
async def test_chromium_calls_a_dispatcher_who_answers_and_the_recording_holds_it(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    base = str(app_client.make_url("/")).rstrip("/")
    call = await start_call(app_client, citizen)
    incident = call["incident_id"]
    claimed = await app_client.post(f"/api/incidents/{incident}/claim",
                                    headers=staff.dispatcher.headers)  # fmt: skip
    assert claimed.status == 200
    async with chromium(*WEBRTC_ARGS) as browser:
        phone = await browser.new_page()
        await phone.goto(base + "/healthz")
        session = await phone.evaluate(
            CONNECT, {"url": base + call["session_url"], "token": citizen.token, "send": "both",
                      "receiveVideo": False},
        )  # fmt: skip
        await _until(phone, "framesEncoded", 10)
        desk = await browser.new_page()
        await desk.goto(base + "/healthz")
        viewer = await desk.evaluate(
            CONNECT, {"url": f"{base}/api/incidents/{incident}/call/viewers",
                      "token": staff.dispatcher.token, "send": "audio", "receiveVideo": True},
        )  # fmt: skip
        assert viewer.startswith(f"/api/incidents/{incident}/call/viewers/")
        # The dispatcher's page decodes the phone's video...
        await _until(desk, "framesDecoded", 30)
        # ... and the phone hears the dispatcher (Chromium's fake microphone beeps).
        heard = await _until(phone, "audioEnergy", 0.0001)
        assert heard["audioPacketsReceived"] > 0
        # Some seconds of the call recorded (about 60 frames more), then hang up.
        before = await phone.evaluate(STATS)
        desk_before = await desk.evaluate(STATS)
        after = await _until(phone, "framesEncoded", before["framesEncoded"] + 60)
        encoded = after["framesEncoded"]
        desk_after = await desk.evaluate(STATS)
        # Both browsers send 60 ms of speech per packet, as the answers ask (a=ptime:60):
        # 16.7 packets a second, not 50.
        for start, end in ((before, after), (desk_before, desk_after)):
            rate = (end["audioPacketsSent"] - start["audioPacketsSent"]) / (
                (end["at"] - start["at"]) / 1000
            )
            assert 10 < rate < 20, rate
        hung_up = await phone.evaluate(
            """async ({url, token}) => (await fetch(url, {method: 'DELETE',
                 headers: {'Authorization': 'Bearer ' + token}})).status""",
            {"url": base + session, "token": citizen.token},
        )
        assert hung_up == 200
    async with pg.acquire() as conn:
        key = await conn.fetchval("SELECT storage_key FROM attachments WHERE kind = 'video'")
    path = app_of(app_client)[CALLS].evidence_root / key
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded >= 0.95 * encoded, (decoded, encoded)
    # The phone's 60 ms Opus packets are recorded as they came, and decode.
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        assert audio.time_base is not None
        time_base = audio.time_base
        times = [p.pts * time_base for p in container.demux(audio) if p.pts is not None]
    with av.open(str(path)) as container:
        lengths = sorted(frame.samples for frame in container.decode(audio=0))
    spacing = sorted(b - a for a, b in itertools.pairwise(times))[len(times) // 2]
    assert 0.055 <= spacing <= 0.065, spacing
    assert len(lengths) > 30 and lengths[len(lengths) // 2] == 2880  # 60 ms at 48 kHz
