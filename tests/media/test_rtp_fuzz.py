"""Crafted RTP and RTCP from a connected phone: the call may suffer, the server not.

A citizen's phone holds its own SRTP keys, so whatever it sends is decrypted and
handled: a hostile or broken client can put any header, extension, VP8 descriptor or
"key frame" into the server's receive path, jitter buffer and recorder.  Hypothesis
draws such packets (any payload type and SSRC, padding and extension bits, CSRCs, VP8
key frames of any size, RTCP of any type) and the phone sends them, encrypted, between
its real ones.  Then: no exception reached the event loop, the call's end (if it
ended) was reported, and a new call on the same server is recorded and watched.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pylibsrtp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media.interface import EndReason
from media.server import MediaConfig, MediaServer
from tests.media.peers import Console, Phone, publish_and_watch, wait_for
from tests.media.test_media_server import Observed

# A deeper search off CI, as for the offers: MICRO110_FUZZ_EXAMPLES=3000
# MICRO110_FUZZ_RANDOM=1 (new draws each run).
EXAMPLES = int(os.environ.get("MICRO110_FUZZ_EXAMPLES", "400"))
RANDOM = os.environ.get("MICRO110_FUZZ_RANDOM") == "1"


@pytest.fixture
def observed() -> Observed:
    return Observed()


@pytest.fixture
async def media(tmp_path: Path, observed: Observed) -> AsyncIterator[MediaServer]:
    server = MediaServer(MediaConfig(recordings_dir=tmp_path, max_calls=4), observed)
    yield server
    await server.close()


def _payload_types(sdp: str) -> list[int]:
    return [int(pt) for pt in re.findall(r"a=rtpmap:(\d+) ", sdp)]


@st.composite
def packet(draw: st.DrawFn, ssrcs: list[int], payload_types: list[int]) -> bytes:
    if draw(st.integers(0, 9)) == 0:  # RTCP: SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR
        kind = draw(st.integers(192, 208))
        body = draw(st.binary(max_size=64))
        count = draw(st.integers(0, 31))
        length = draw(st.integers(0, 0xFFFF) | st.just(len(body) // 4))
        return struct.pack("!BBH", 0x80 | count, kind, length) + body
    padding, extension, csrcs = draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 15))
    marker = draw(st.booleans())
    pt = draw(
        st.sampled_from(payload_types) | st.integers(0, 127).filter(lambda p: p < 64 or p > 80)
    )
    header = struct.pack(
        "!BBHII", 0x80 | padding << 5 | extension << 4 | csrcs, marker << 7 | pt,
        draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.sampled_from(ssrcs) | st.integers(0, 0xFFFFFFFF)),
    )  # fmt: skip
    header += draw(st.binary(min_size=4 * csrcs, max_size=4 * csrcs))
    if extension:
        words = draw(st.integers(0, 4))
        profile = draw(st.sampled_from([0xBEDE, 0x1000, 0]))
        header += struct.pack("!HH", profile, draw(st.integers(0, 0xFFFF) | st.just(words)))
        header += draw(st.binary(min_size=4 * words, max_size=4 * words))
    if draw(st.booleans()):  # a VP8 key frame, of any size, after a descriptor
        descriptor = draw(st.binary(min_size=1, max_size=6))
        width, height = draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF))
        body = b"\x10\x02\x00\x9d\x01\x2a" + struct.pack("<HH", width, height)
        payload = descriptor + body + draw(st.binary(max_size=200))
    else:
        payload = draw(st.binary(max_size=1200))
    if padding:
        payload += bytes([draw(st.integers(0, 255))])
    return header + payload


@pytest.mark.timeout(max(120, EXAMPLES // 10))
async def test_crafted_packets_from_a_phone_do_not_take_the_server_down(
    media: MediaServer, observed: Observed
) -> None:
    loop = asyncio.get_running_loop()
    escaped: list[dict[str, Any]] = []
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: escaped.append(context))
    phone, console = Phone(), Console()
    try:
        answer = await publish_and_watch(media, "hostile", "s1", phone, console, frames=10)
        senders = [t.sender for t in phone.pc.getTransceivers()]
        ssrcs = [sender._ssrc for sender in senders]
        dtls = senders[0].transport
        drawn: list[bytes] = []

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(packet(ssrcs, _payload_types(answer)))
        def draw(data: bytes) -> None:
            drawn.append(data)

        draw()
        sent = 0
        stopped = False
        refused = 0
        for data in drawn:
            try:
                await dtls._send_rtp(data)
            except ConnectionError:
                stopped = True
                break  # the server ended this call: allowed, and checked below
            except pylibsrtp.Error:  # the phone's libsrtp would not: not sent
                refused += 1
                continue
            sent += 1
            if sent % 20 == 0:
                await asyncio.sleep(0.01)  # between the phone's real packets
        # The phone's own libsrtp refuses to send some (an index it sent already, for its
        # own SSRC); the server gets the rest.
        assert stopped or sent >= len(drawn) // 4, (sent, refused, len(drawn))
        # The server has handled the flood once the call has ended, or once half a
        # second of the phone's real video sent after it has reached the console.
        after = console.video.frames + 15
        await wait_for(lambda: media.live_session("hostile") != "s1"
                       or console.video.frames >= after, what="the flood handled")  # fmt: skip
        if media.live_session("hostile") == "s1":
            assert await media.hang_up("hostile", "s1", EndReason.HANG_UP)
        await wait_for(lambda: any(e.session_id == "s1" for e in observed.ended),
                       what="the hostile call's end told")  # fmt: skip
    finally:
        await phone.close()
        await console.close()

    # The server carries the next call as if nothing happened.
    phone, console = Phone(), Console()
    try:
        await publish_and_watch(media, "next", "s2", phone, console, viewer_id="v2")
        assert await media.hang_up("next", "s2", EndReason.HANG_UP)
    finally:
        await phone.close()
        await console.close()
    (ended,) = [e for e in observed.ended if e.session_id == "s2"]
    assert ended.recording is not None and ended.recording.video_frames >= 30
    loop.set_exception_handler(handler)
    assert not escaped, [c.get("message") for c in escaped][:5]
