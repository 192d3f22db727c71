"""The media in media processes (`MediaProcesses`), with real aiortc peers: the same
`CallMedia` as `MediaServer` in the node, across a process boundary."""

from __future__ import annotations

import asyncio
import os
import pstats
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import av
import psutil
import pytest

from media.config import MediaConfig
from media.interface import AtCapacity, BadOffer, EndReason, LeaveReason, NoLiveCall
from media.processes import MediaProcesses
from tests.media.peers import Console, Phone, publish_and_watch, wait_for
from tests.media.test_media_server import Observed
from tests.waiting import eventually


@pytest.fixture
def observed() -> Observed:
    return Observed()


@pytest.fixture
async def media(tmp_path: Path, observed: Observed) -> AsyncIterator[MediaProcesses]:
    server = MediaProcesses(
        MediaConfig(recordings_dir=tmp_path, max_calls=2, peer_timeout_s=3.0),
        processes=2, observer=observed,
    )  # fmt: skip
    server.start()
    yield server
    await server.close()


def _children() -> list[psutil.Process]:
    return [p for p in psutil.Process(os.getpid()).children() if "media.process_main" in
            " ".join(p.cmdline())]  # fmt: skip


async def test_a_call_across_the_process_boundary(
    media: MediaProcesses, observed: Observed
) -> None:
    phone = Phone()
    answer = await media.publish("call-1", "s1", await phone.offer())
    await phone.accept(answer.sdp)
    console = Console(talk=True)
    try:
        viewing = await media.watch("call-1", "v1", await console.offer(), talk=True)
        await console.accept(viewing.sdp)
        await wait_for(lambda: console.video.frames >= 30, what="video at the console")
        await wait_for(lambda: phone.heard.frames >= 10, what="the phone hearing the dispatcher")
        assert media.live_session("call-1") == "s1" and media.live_calls() == 1
        stats = await media.stats()
        assert stats.calls == 1 and stats.viewers == 1 and stats.video_frames > 0
        sent = phone.video.sent
        assert await media.hang_up("call-1", "s1", EndReason.HANG_UP)
        # As in the node: the end was reported before hang_up returned.
        (ended,) = observed.ended
        assert {left.reason for left in observed.left} == {LeaveReason.CALL_ENDED}
    finally:
        await phone.close()
        await console.close()
    assert ended.reason is EndReason.HANG_UP and ended.recording is not None
    assert ended.recording.video_frames >= sent - 15
    with av.open(str(ended.recording.path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == ended.recording.video_frames
    assert media.live_calls() == 0 and media.live_session("call-1") is None
    assert not await media.hang_up("call-1", "s1", EndReason.HANG_UP)


async def test_refusals_cross_the_boundary(media: MediaProcesses) -> None:
    with pytest.raises(BadOffer, match="not an SDP offer"):
        await media.publish("c", "s", "hello")
    with pytest.raises(NoLiveCall):
        await media.watch("c", "v", await Console().offer(), talk=False)
    phones = [Phone(), Phone()]
    try:
        for index, phone in enumerate(phones):
            answer = await media.publish(f"full-{index}", "s", await phone.offer())
            await phone.accept(answer.sdp)
        with pytest.raises(AtCapacity):
            media.check_capacity()
        with pytest.raises(AtCapacity):
            await media.publish("full-3", "s", await Phone().offer())
        media.check_capacity("full-0")  # a call already here may always reconnect
    finally:
        for phone in phones:
            await phone.close()


async def test_close_ends_every_call_and_process(tmp_path: Path, observed: Observed) -> None:
    media = MediaProcesses(MediaConfig(recordings_dir=tmp_path), processes=2, observer=observed)
    media.start()
    phone = Phone()
    try:
        answer = await media.publish("call-1", "s1", await phone.offer())
        await phone.accept(answer.sdp)
        await wait_for(lambda: phone.video.sent >= 30, what="a second of video")
        children = _children()
        assert len(children) == 2
        await media.close()
    finally:
        await phone.close()
    (ended,) = observed.ended
    assert ended.reason is EndReason.SHUTDOWN and ended.recording is not None
    await wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                                   for p in children), what="the media processes to exit")  # fmt: skip


async def test_a_dead_media_process_takes_its_calls_and_the_next_call_works(
    media: MediaProcesses, observed: Observed
) -> None:
    phone = Phone()
    console = Console()
    try:
        # Two seconds watched: the file's last half second (the cluster being written)
        # may not survive the kill, the first second and more does.
        await publish_and_watch(media, "call-1", "s1", phone, console, frames=60)
        holder = next(p for p in media._processes if p is not None and "call-1" in p.calls)
        holder.proc.send_signal(signal.SIGKILL)
        await wait_for(lambda: media.live_session("call-1") is None, what="the call to go")
        assert media.live_calls() == 0
        # Its end is told at once, not at the node's next start: the session failed,
        # with the recording as far as it reached the disk, and the viewer left.
        await wait_for(lambda: observed.ended and observed.left, what="the ends told")
    finally:
        await phone.close()
        await console.close()
    (ended,) = observed.ended
    assert (ended.call_id, ended.session_id, ended.reason) == ("call-1", "s1", EndReason.FAILED)
    assert ended.connected and ended.recording is not None
    assert ended.recording.video_frames >= 30 and ended.recording.size > 0
    assert ended.recording.codecs == ("VP8", "opus")
    assert [(v.call_id, v.viewer_id, v.reason) for v in observed.left] == [
        ("call-1", "v1", LeaveReason.FAILED)
    ]
    again = Phone()
    try:
        answer = await media.publish("call-2", "s1", await again.offer())
        await again.accept(answer.sdp)
        assert media.live_session("call-2") == "s1"
    finally:
        await again.close()
    await asyncio.sleep(0)


async def test_a_media_process_profiles_between_two_sigusr1(tmp_path: Path) -> None:
    """MICRO110_MEDIA_PROFILE_DIR: SIGUSR1 starts cProfile in a media process, the next
    writes its stats, and the calls go on (bench/media.py --profile)."""
    profiles = tmp_path / "profiles"
    server = MediaProcesses(
        MediaConfig(recordings_dir=tmp_path / "rec", profile_dir=profiles), processes=1
    )
    server.start()
    phone = Phone()
    try:
        answer = await server.publish("call-p", "s1", await phone.offer())
        await phone.accept(answer.sdp)
        (child,) = _children()
        os.kill(child.pid, signal.SIGUSR1)
        # The media process's own count (a busy machine may leave the phone's packets
        # unread for a while): packets received while the profile ran.
        profiled_from = (await server.stats()).packets_received

        async def profiled() -> bool:
            return (await server.stats()).packets_received >= profiled_from + 30

        await eventually(profiled, what="packets received while profiling")
        os.kill(child.pid, signal.SIGUSR1)
        written = profiles / f"media-{child.pid}.prof"
        await wait_for(written.exists, what="the profile written")
        functions = {name for _, _, name in pstats.Stats(str(written)).stats}  # type: ignore[attr-defined]
        assert "_recv_next" in functions  # the phone's packets, profiled
        assert server.live_session("call-p") == "s1"
    finally:
        await phone.close()
        await server.close()
