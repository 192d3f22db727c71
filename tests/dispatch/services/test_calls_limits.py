"""Video calls: bad input, limits, ICE configuration and the lifecycle of connections."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gc
import hashlib
import hmac
import time
import uuid
from pathlib import Path

import asyncpg
import psutil
import pytest

from dispatch.http.keys import CALLS
from dispatch.settings import Settings
from media.network import interface_addresses, limit_host_interfaces, turn_rest_credentials
from tests.conftest import CitizenSession, Client, Staff, app_of, register_citizen
from tests.media.calls import call_body, connect_phone, sdp_headers, start_call
from tests.media.peers import Console, Phone, wait_for

TURN_SECRET = "turn-shared-secret-for-tests"
CHROMIUM_OFFER = Path(__file__).parents[2] / "fixtures" / "media" / "chromium-offer.sdp"


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, max_calls=1, call_peer_timeout_s=2.0, turn_secret=TURN_SECRET,
        ice_servers=("stun:turn.example.org:3478", "turn:turn.example.org:3478?transport=udp"),
    )  # fmt: skip


async def counts(pg: asyncpg.Pool) -> dict[str, int]:
    async with pg.acquire() as conn:
        return {
            t: await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in (
                "incidents",
                "incident_events",
                "call_sessions",
                "call_viewers",
                "attachments",
            )
        }


async def test_bad_offers_are_refused_naming_the_problem_and_write_nothing(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    call = await start_call(app_client, citizen)
    url = call["session_url"]
    stranger = await register_citizen(app_client, "stranger-device-1")
    before = await counts(pg)
    good = await Phone().offer()
    no_video = "\r\n".join(
        line for line in good.split("\r\n") if "video" not in line.lower()
    )  # crude, but enough to drop the m=video section's identity
    h264_only = good.replace("VP8/90000", "H264/90000")
    chromium = CHROMIUM_OFFER.read_bytes().decode()
    cases = [
        ("application/json", good, 415, "Content-Type: application/sdp"),
        ("application/sdp", "hello", 400, "not an SDP offer"),
        ("application/sdp", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96\r\n", 400,
         "not valid SDP"),
        ("application/sdp", "v=0\r\n" + "a=x-padding:" + "x" * 40_000 + "\r\n", 413, "larger"),
        ("application/sdp", await Console().offer(), 400, "video must send"),
        ("application/sdp", h264_only, 400, "no common video codec"),
        # Found by tests/media/test_offer_fuzz.py, each once a 500 (the last one also
        # left a recorder's thread behind):
        ("application/sdp", chromium.replace("a=rtcp:9 IN IP4 0.0.0.0", "a=rtcp"), 400,
         "not valid SDP"),
        ("application/sdp", chromium.replace("a=sendrecv\r\n", ""), 400, "no direction"),
        ("application/sdp", chromium.replace("a=mid:1", "a=mid:0"), 400,
         "cannot be accepted"),
    ]  # fmt: skip
    for content_type, body, status, words in cases:
        response = await app_client.post(
            url, data=body, headers=citizen.headers | {"Content-Type": content_type}
        )
        assert response.status == status, (words, await response.text())
        error = (await response.json())["error"]
        assert words in error["message"], error
    response = await app_client.post(url, data=no_video, headers=sdp_headers(citizen.headers))
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "sdp"
    # Someone else's call looks like no call at all.
    response = await app_client.post(url, data=good, headers=sdp_headers(stranger.headers))
    assert response.status == 404
    assert await counts(pg) == before
    assert app_of(app_client)[CALLS].media.live_calls() == 0


async def test_calls_per_node_are_limited_with_retry_after_and_a_hint(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    call = await start_call(app_client, citizen)
    phone = Phone()
    try:
        await connect_phone(app_client, citizen, call["session_url"], phone)
        other = await register_citizen(app_client, "second-phone-01")
        before = await counts(pg)
        refused = await app_client.post("/api/calls", json=call_body(), headers=other.headers)
        assert refused.status == 503
        assert refused.headers["Retry-After"].isdigit()
        message = (await refused.json())["error"]["message"]
        assert "silent alarm" in message and "text report" in message
        assert await counts(pg) == before  # nothing written
        # The call that is here may reconnect: a new segment of the same incident.
        again = Phone()
        try:
            await connect_phone(app_client, citizen, call["session_url"], again)
            await wait_for(lambda: app_of(app_client)[CALLS].media.live_calls() == 1)
        finally:
            await again.close()
    finally:
        await phone.close()
    async with pg.acquire() as conn:
        rows = await conn.fetch("SELECT segment, end_reason FROM call_sessions ORDER BY segment")
    assert [r["segment"] for r in rows] == [1, 2]
    assert rows[0]["end_reason"] == "replaced"
    # No live call: a pick-up is 409.
    await wait_for(lambda: app_of(app_client)[CALLS].media.live_calls() == 0, within=10)
    await app_client.post(f"/api/incidents/{call['incident_id']}/claim",
                          headers=staff.dispatcher.headers)  # fmt: skip
    watch = await app_client.post(
        f"/api/incidents/{call['incident_id']}/call/viewers",
        data=await Console().offer(), headers=sdp_headers(staff.dispatcher.headers),
    )  # fmt: skip
    assert watch.status == 409


async def test_rtc_config_hands_out_expiring_turn_credentials(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    assert (await app_client.get("/api/rtc/config")).status == 401
    for headers in (citizen.headers, staff.dispatcher.headers):
        body = await (await app_client.get("/api/rtc/config", headers=headers)).json()
        stun, turn = body["ice_servers"]
        assert stun == {"urls": ["stun:turn.example.org:3478"]}
        expiry, _, user = turn["username"].partition(":")
        assert int(expiry) > time.time() + 3000 and user
        mac = hmac.new(TURN_SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
        assert turn["credential"] == base64.b64encode(mac).decode()
    # coturn's documented example (TURN REST API draft): the same derivation.
    assert turn_rest_credentials("secret", "alice", 1_700_000_000)[0] == "1700000000:alice"


def test_host_candidates_are_limited_to_the_named_interfaces() -> None:
    import aioice.ice

    original = aioice.ice.get_host_addresses
    try:
        limit_host_interfaces(["lo"])
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert interface_addresses(["no-such-interface"]) == []
    finally:
        aioice.ice.get_host_addresses = original


async def test_a_vanished_phone_ends_within_seconds_and_memory_returns(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    calls = app_of(app_client)[CALLS]
    call = await start_call(app_client, citizen)
    phone = Phone()
    await connect_phone(app_client, citizen, call["session_url"], phone)
    await wait_for(lambda: phone.video.sent > 10)
    phone.video.stop()  # the network goes; nothing more arrives
    assert phone.audio is not None
    phone.audio.stop()
    started = time.monotonic()
    await wait_for(lambda: calls.media.live_calls() == 0, within=10, what="the phone declared gone")
    assert time.monotonic() - started < 10
    await phone.close()
    reason = None
    for _ in range(500):  # the end is written just after the media let go
        async with pg.acquire() as conn:
            reason = await conn.fetchval("SELECT end_reason FROM call_sessions WHERE reported")
        if reason is not None:
            break
        await asyncio.sleep(0.02)
    assert reason in ("vanished", "failed")

    # Many connect / hang-up cycles: connections, recorders and threads are released.
    process = psutil.Process()

    async def cycle(n: int) -> None:
        body = call_body(idempotency_key=f"cycle-{uuid.uuid4()}")
        answer = await (
            await app_client.post("/api/calls", json=body, headers=citizen.headers)
        ).json()
        phone = Phone()
        try:
            location = await connect_phone(app_client, citizen, answer["session_url"], phone)
            await wait_for(lambda: phone.video.sent > 3)
            assert (await app_client.delete(location, headers=citizen.headers)).status == 200
        finally:
            await phone.close()

    for n in range(5):
        await cycle(n)
    gc.collect()
    threads, rss = process.num_threads(), process.memory_info().rss
    for n in range(20):
        await cycle(n)
    await wait_for(lambda: calls.media.live_calls() == 0)
    gc.collect()
    assert process.num_threads() <= threads + 2
    grown = (process.memory_info().rss - rss) / 2**20
    assert grown < 40, f"RSS grew {grown:.0f} MiB over 20 calls"
