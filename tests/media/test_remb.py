"""REMB (the receiver's bandwidth estimate) goes out at a sane rate, not per packet."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket

from media import frames
from media.frames import ThrottledRemb
from media.server import KEYFRAME_INTERVAL_S, MediaConfig, MediaServer
from tests.media.peers import Console, Phone, wait_for


class Overusing:
    """An estimator in aiortc's over-use state: an estimate with every packet."""

    def __init__(self, bitrates: list[int] | None = None) -> None:
        self.bitrates = bitrates
        self.calls = 0

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        self.calls += 1
        bitrate = self.bitrates[self.calls - 1] if self.bitrates else 1_000_000
        return bitrate, [ssrc]


def feed(throttle: ThrottledRemb, packets: int, every_ms: int = 10) -> list[int]:
    """Arrival times (ms) of the packets whose estimate was let through."""
    sent = []
    for index in range(packets):
        at = index * every_ms
        if throttle.add(arrival_time_ms=at, abs_send_time=0, payload_size=1200, ssrc=7):
            sent.append(at)
    return sent


def test_a_steady_estimate_goes_out_twice_a_second() -> None:
    estimator = Overusing()
    sent = feed(ThrottledRemb(estimator), packets=1000)  # 10 s at 100 packets/s
    assert estimator.calls == 1000  # the estimator still sees every packet
    assert sent[0] == 0
    assert len(sent) == 20
    assert all(b - a >= frames.REMB_INTERVAL_MS for a, b in itertools.pairwise(sent))


def test_a_falling_estimate_goes_out_sooner_but_at_most_ten_a_second() -> None:
    falling = [int(1_000_000 * 0.995**i) for i in range(1000)]  # ~5% lower in 100 ms
    sent = feed(ThrottledRemb(Overusing(falling)), packets=1000)
    assert len(sent) == 100
    assert all(b - a >= frames.REMB_MIN_GAP_MS for a, b in itertools.pairwise(sent))


def test_nothing_to_say_sends_nothing() -> None:
    class Quiet:
        def add(self, **_: Any) -> None:
            return None

    assert feed(ThrottledRemb(Quiet()), packets=100) == []


async def test_the_phone_gets_few_rembs_and_a_viewer_s_picture_loss_reaches_it(
    tmp_path: Any,
) -> None:
    media = MediaServer(MediaConfig(recordings_dir=tmp_path))
    phone = Phone()
    rembs: list[float] = []
    (video_sender, *_) = phone.pc.getSenders()
    handle = video_sender._handle_rtcp_packet

    async def counting(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            rembs.append(asyncio.get_running_loop().time())
        await handle(packet)

    video_sender._handle_rtcp_packet = counting  # type: ignore[method-assign]
    console = Console()
    try:
        answer = await media.publish("call-r", "s1", await phone.offer())
        await phone.accept(answer.sdp)
        receiver: RTCRtpReceiver = media._calls["call-r"].publisher.receivers["video"]  # type: ignore[union-attr]
        throttle = receiver._RTCRtpReceiver__remote_bitrate_estimator  # type: ignore[attr-defined]
        assert isinstance(throttle, ThrottledRemb)
        # The estimator is in over-use from now on: without the throttle, a REMB per packet.
        throttle.estimator = Overusing()
        started = asyncio.get_running_loop().time()
        viewing = await media.watch("call-r", "v1", await console.offer(), talk=False)
        await console.accept(viewing.sdp)
        await wait_for(lambda: console.video.frames >= 30, what="video at the viewer")
        await asyncio.sleep(KEYFRAME_INTERVAL_S * 1.2)  # past the last key-frame request
        asked = phone.video.keyframe_requests
        # The viewer reports picture loss: the server asks the phone for a key frame.
        (console_video, *_) = console.pc.getReceivers()
        source = console_video.getSynchronizationSources()[0].source
        # (The server asks at most every 0.5 s: a viewer's PLI may fall in that window,
        # as a browser's would, so it repeats while it sees no key frame.)
        for _ in range(50):
            await console_video._send_rtcp_pli(source)
            await asyncio.sleep(0.2)
            if phone.video.keyframe_requests > asked:
                break
        assert phone.video.keyframe_requests > asked, "the viewer's PLI never reached the phone"
        elapsed = asyncio.get_running_loop().time() - started
        overused = throttle.estimator.calls
        assert overused > 20  # the video packets still reach the estimator
        assert len([t for t in rembs if t >= started]) <= 2 * elapsed + 2
    finally:
        await phone.close()
        await console.close()
        await media.close()
