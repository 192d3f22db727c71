"""aiortc peers for tests and benchmarks: a citizen's phone and a dispatcher's console.

The citizen sends a pre-encoded clip (VP8 and Opus, encoded once per process), so a
publisher costs almost no CPU; viewers count the encoded frames they receive (the
server's own forwarding hook, `media.frames.forward_receiver`) instead of decoding.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media import frames
from media.frames import EncodedFrame
from media.interface import CallMedia

FPS = 30


@dataclass(frozen=True, slots=True)
class Clip:
    video: tuple[bytes, ...]  # one VP8 frame each, the first a key frame
    keyframes: frozenset[int]  # indexes of key frames
    audio: tuple[bytes, ...]  # 20 ms Opus packets


CLIP_FILE = Path(__file__).parent.parent / "fixtures" / "media" / "clip-320x240.webm"


@functools.cache
def clip() -> Clip:
    """The test clip (2 s, 320x240 VP8 + Opus), read from its file: encoding it would
    hold the event loop for seconds on a busy machine (and drop Socket.IO clients)."""
    video: list[bytes] = []
    audio: list[bytes] = []
    with av.open(str(CLIP_FILE)) as container:
        for packet in container.demux():
            if packet.size == 0:
                continue
            (video if packet.stream.type == "video" else audio).append(bytes(packet))
    keyframes = frozenset(i for i, data in enumerate(video) if frames.vp8_keyframe(data))
    return Clip(tuple(video), keyframes, tuple(audio))


def write_clip(path: Path, clip: Clip, width: int, height: int) -> None:
    """Store an encoded clip as WebM (how CLIP_FILE was made)."""
    with av.open(str(path), "w", format="webm") as container:
        vstream = container.add_stream("vp8", rate=FPS)
        vstream.width, vstream.height = width, height
        astream = container.add_stream("opus", rate=48000)
        for index, data in enumerate(clip.video):
            packet = av.Packet(data)
            packet.stream, packet.time_base = vstream, Fraction(1, FPS)
            packet.pts = packet.dts = index
            packet.is_keyframe = index in clip.keyframes
            container.mux(packet)
        for index, data in enumerate(clip.audio):
            packet = av.Packet(data)
            packet.stream, packet.time_base = astream, Fraction(1, 48000)
            packet.pts = packet.dts = index * 960
            container.mux(packet)


def encode_clip(
    width: int = 320, height: int = 240, seconds: int = 2, bitrate: int = 300_000
) -> Clip:
    """A moving test picture and a tone, encoded (key frame every second).  CPU work
    of seconds: run it in a thread or before the event loop starts."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.bit_rate = bitrate
    encoder.gop_size = FPS
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    video: list[bytes] = []
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([(xs * 255 // width), (ys * 255 // height), (xs + ys) % 256], axis=-1)
    base = base.astype(np.uint8)
    for index in range(seconds * FPS):
        picture = np.roll(base, index * 4, axis=1)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        video.extend(bytes(p) for p in encoder.encode(frame))
    video.extend(bytes(p) for p in encoder.encode(None))
    opus = av.CodecContext.create("libopus", "w")
    opus.sample_rate, opus.layout, opus.format = 48000, "stereo", "s16"
    opus.time_base = Fraction(1, 48000)
    audio: list[bytes] = []
    t = np.arange(960) / 48000
    for index in range(seconds * 50):
        tone = (np.sin(2 * np.pi * 440 * (t + index * 0.02)) * 8000).astype(np.int16)
        samples = np.repeat(tone, 2).reshape(1, -1)
        aframe = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        aframe.sample_rate = 48000
        aframe.pts = index * 960
        audio.extend(bytes(p) for p in opus.encode(aframe))
    keyframes = frozenset(i for i, data in enumerate(video) if frames.vp8_keyframe(data))
    return Clip(tuple(video), keyframes, tuple(audio))


class ClipTrack(MediaStreamTrack):
    """Sends a clip's encoded frames in real time, looping; counts what it sent.  Asked
    for a key frame (a PLI, through `answer_keyframe_requests`), it goes on from the
    clip's next key frame, as a camera's encoder would make one at once."""

    def __init__(
        self, kind: str, packets: tuple[bytes, ...], keyframes: frozenset[int] = frozenset()
    ) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._keyframes = sorted(keyframes)
        self._rate = 90_000 if kind == "video" else 48_000
        self._step = 3000 if kind == "video" else 960
        self._interval = 1 / FPS if kind == "video" else 0.02
        self._start: float | None = None
        self._position = 0  # the clip's next frame
        self._keyframe_wanted = False
        self.sent = 0
        self.keyframe_requests = 0

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted = bool(self._keyframes)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self.sent * self._interval
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            self._position = next(
                (k for k in self._keyframes if k >= self._position), self._keyframes[0]
            )
        packet = av.Packet(self._packets[self._position])
        self._position = (self._position + 1) % len(self._packets)
        packet.pts = self.sent * self._step
        packet.time_base = Fraction(1, self._rate)
        self.sent += 1
        return packet


@dataclass
class Counter:
    """Encoded frames received on one track."""

    frames: int = 0
    keyframes: int = 0
    first_at: float | None = None
    last_at: float | None = None
    times: list[float] = field(default_factory=list)

    def add(self, frame: EncodedFrame | None) -> None:
        if frame is None:
            return
        now = time.perf_counter()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.frames += 1
        self.keyframes += frame.keyframe
        self.times.append(now)

    def fps(self, since: float, until: float) -> float:
        count = sum(1 for t in self.times if since <= t <= until)
        return count / (until - since)


async def wait_for(condition: object, within: float = 10.0, what: str = "condition") -> None:
    """Poll `condition()` (a callable) until true; fail after `within` seconds."""
    assert callable(condition)
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Phone:
    """The citizen: sends the clip's video and audio, receives the dispatcher's voice."""

    def __init__(self, *, audio: bool = True, video_clip: Clip | None = None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        data = video_clip or clip()
        self.video = ClipTrack("video", data.video, data.keyframes)
        sender = self.pc.addTransceiver(self.video, direction="sendonly").sender
        # A PLI reaches RTCRtpSender._send_keyframe, which only an encoder it runs
        # itself would act on: the clip answers instead.
        sender._send_keyframe = self.video.request_keyframe  # type: ignore[method-assign]
        self.heard = Counter()
        self.audio: ClipTrack | None = None
        if audio:
            self.audio = ClipTrack("audio", data.audio)
            self.pc.addTransceiver(self.audio, direction="sendrecv")

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio" and transceiver.receiver.track is not None:
                frames.forward_receiver(transceiver.receiver, self.heard.add)

    async def close(self) -> None:
        await self.pc.close()


class Console:
    """A dispatcher (or commander) watching: counts video and audio received; with
    `talk`, sends the clip's audio as the dispatcher's voice."""

    def __init__(self, *, talk: bool = False) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video = Counter()
        self.audio = Counter()
        self.pc.addTransceiver("video", direction="recvonly")
        self.voice: ClipTrack | None = None
        if talk:
            self.voice = ClipTrack("audio", clip().audio)
            self.pc.addTransceiver(self.voice, direction="sendrecv")
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.offered_at: float | None = None

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offered_at = time.perf_counter()
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        # Hooked before the connection starts, so no frame is ever decoded.  No REMB:
        # the server's senders forward encoded video and ignore bandwidth estimates
        # (a browser's come once a second or so; aiortc's estimator would cost this
        # process its work on every packet).
        for transceiver in self.pc.getTransceivers():
            if transceiver.receiver.track is not None:
                counter = self.video if transceiver.kind == "video" else self.audio
                frames.forward_receiver(transceiver.receiver, counter.add, remb=False)

    async def close(self) -> None:
        await self.pc.close()


async def publish_and_watch(
    media: CallMedia, call_id: str, session_id: str, phone: Phone, console: Console,
    *, viewer_id: str = "v1", frames: int = 30,
) -> str:  # fmt: skip
    """`phone` publishes `call_id` on `media`, `console` watches it (silent) until it has
    `frames` video frames; the publisher's answer SDP."""
    answer = await media.publish(call_id, session_id, await phone.offer())
    await phone.accept(answer.sdp)
    viewing = await media.watch(call_id, viewer_id, await console.offer(), talk=False)
    await console.accept(viewing.sdp)
    await wait_for(lambda: console.video.frames >= frames, what=f"{frames} frames watched")
    return answer.sdp
