"""The media core with real aiortc peers: a phone publishing, consoles watching."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from media.interface import (
    AtCapacity,
    BadOffer,
    EndReason,
    LeaveReason,
    NoLiveCall,
    SessionEnded,
    ViewerLeft,
)
from media.server import MediaConfig, MediaServer
from tests.media.peers import Console, Phone, wait_for


class Observed:
    """The application side of the interface, as a test sees it."""

    def __init__(self) -> None:
        self.ended: list[SessionEnded] = []
        self.left: list[ViewerLeft] = []

    async def session_ended(self, ended: SessionEnded) -> None:
        self.ended.append(ended)

    async def viewer_left(self, left: ViewerLeft) -> None:
        self.left.append(left)


@pytest.fixture
def observed() -> Observed:
    return Observed()


@pytest.fixture
async def media(tmp_path: Path, observed: Observed) -> AsyncIterator[MediaServer]:
    server = MediaServer(
        MediaConfig(recordings_dir=tmp_path, max_calls=2, peer_timeout_s=3.0), observed
    )
    yield server
    await server.close()


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_call_is_recorded_forwarded_and_answered(
    media: MediaServer, observed: Observed
) -> None:
    phone = Phone()
    answer = await media.publish("call-1", "s1", await phone.offer())
    await phone.accept(answer.sdp)
    dispatcher = Console(talk=True)
    commander = Console()
    try:
        await wait_for(lambda: phone.video.sent > 10, what="the phone sending")
        for console, talk in ((dispatcher, True), (commander, False)):
            viewing = await media.watch("call-1", f"v-{talk}", await console.offer(), talk=talk)
            await console.accept(viewing.sdp)
        await wait_for(lambda: dispatcher.video.frames >= 30 and commander.video.frames >= 30,
                       what="both consoles getting video")  # fmt: skip
        # A viewer joining mid-call starts at a key frame.
        assert dispatcher.video.keyframes >= 1
        await wait_for(lambda: dispatcher.audio.frames >= 25, what="the dispatcher hearing")
        # The dispatcher's voice reaches the phone; the commander's mic is never taken.
        await wait_for(lambda: phone.heard.frames >= 25, what="the phone hearing the dispatcher")
        sent = phone.video.sent
        assert await media.hang_up("call-1", "s1", EndReason.HANG_UP)
    finally:
        for peer in (phone, dispatcher, commander):
            await peer.close()
    (ended,) = observed.ended
    assert ended.reason is EndReason.HANG_UP and ended.connected
    recording = ended.recording
    assert recording is not None
    assert recording.codecs == ("VP8", "opus")
    assert (recording.width, recording.height) == (320, 240)
    assert recording.video_frames >= sent - 15
    assert decoded_frames(recording.path) == recording.video_frames
    assert {left.reason for left in observed.left} == {LeaveReason.CALL_ENDED}
    assert media.live_calls() == 0


async def test_nothing_is_played_to_the_citizen_before_a_dispatcher_speaks(
    media: MediaServer,
) -> None:
    phone = Phone()
    answer = await media.publish("call-2", "s1", await phone.offer())
    await phone.accept(answer.sdp)
    listener = Console()  # a commander listening in, silent
    try:
        viewing = await media.watch("call-2", "v1", await listener.offer(), talk=True)
        await listener.accept(viewing.sdp)
        await wait_for(lambda: listener.video.frames >= 15, what="video at the listener")
        assert phone.heard.frames == 0
    finally:
        await phone.close()
        await listener.close()


async def test_refusals(media: MediaServer, observed: Observed) -> None:
    with pytest.raises(BadOffer, match="not an SDP offer"):
        await media.publish("c", "s", "hello")
    video_only_offer = await Console().offer()  # receives video: not a publisher
    with pytest.raises(BadOffer, match="video must send"):
        await media.publish("c", "s", video_only_offer)
    with pytest.raises(NoLiveCall):
        await media.watch("c", "v", video_only_offer, talk=False)
    phones = [Phone(), Phone()]
    try:
        for index, phone in enumerate(phones):
            answer = await media.publish(f"full-{index}", "s", await phone.offer())
            await phone.accept(answer.sdp)
        with pytest.raises(AtCapacity):
            await media.publish("full-3", "s", await Phone().offer())
        # A call already here may reconnect (a new segment) even at the limit.
        again = Phone()
        phones.append(again)
        answer = await media.publish("full-0", "s2", await again.offer())
        await again.accept(answer.sdp)
        assert observed.ended[-1].reason is EndReason.REPLACED
        assert media.live_calls() == 2
    finally:
        for phone in phones:
            await phone.close()


async def test_a_vanished_phone_is_noticed(media: MediaServer, observed: Observed) -> None:
    phone = Phone()
    answer = await media.publish("call-3", "s1", await phone.offer())
    await phone.accept(answer.sdp)
    await wait_for(lambda: media.live_session("call-3") == "s1" and phone.video.sent > 5)
    # The phone stops sending without a word (a network gone), like a dead battery.
    phone.video.stop()
    assert phone.audio is not None
    phone.audio.stop()
    started = asyncio.get_running_loop().time()
    await wait_for(lambda: observed.ended, within=10, what="the session to end")
    assert asyncio.get_running_loop().time() - started < 10
    assert observed.ended[0].reason in (EndReason.VANISHED, EndReason.FAILED)
    await phone.close()
