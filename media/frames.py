"""Encoded media frames as the server forwards and records them (never decoded).

aiortc has no public way to receive encoded frames (upstream issues #449, #627, #984,
#1176): every `RTCRtpReceiver` puts each frame its jitter buffer reassembles into a
queue read by a thread running the module-level `aiortc.rtcrtpreceiver.decoder_worker`,
which decodes it into the track's queue.  `forward_receiver` replaces that queue with
one that hands the frame, as it is (no decode), to a `FrameSink` on the event loop, and
`install()` replaces the worker with one that exits at once for such a receiver and
otherwise runs aiortc's own worker unchanged, so peers in the same process that want
decoded frames (tests, tools) still get them.

`forward_receiver` also puts a `ThrottledRemb` in front of a video receiver's bitrate
estimator: aiortc sends a REMB (RTCP) with every packet for as long as its estimator
sees over-use (a busy machine's jittery arrival times are enough), which costs the
server an RTCP packet built, encrypted and sent per RTP packet received.

This relies on aiortc's private internals, hence the exact version pin in
pyproject.toml and `tests/media/test_aiortc_internals.py`, which fails when they change.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from aioice.ice import StunProtocol
from aiortc import clock, rtcrtpreceiver

# What this module was written against; the tests check it is what is installed.
AIORTC_VERSION = "1.16.0"

VIDEO_CLOCK_RATE = 90_000
AUDIO_CLOCK_RATE = 48_000


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded video frame or audio packet, as the citizen's phone sent it."""

    kind: str  # "video" | "audio"
    codec: str  # "VP8", "opus", ...
    data: bytes
    pts: int  # in 1 / clock_rate, from the RTP timestamp (0 = the first frame)
    clock_rate: int
    keyframe: bool

    @property
    def time_base(self) -> Fraction:
        return Fraction(1, self.clock_rate)

    def with_pts(self, pts: int) -> EncodedFrame:
        return EncodedFrame(self.kind, self.codec, self.data, pts, self.clock_rate, self.keyframe)


def vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame."""
    return len(data) >= 10 and data[0] & 1 == 0 and data[3:6] == b"\x9d\x01\x2a"


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 key frame's header (14 bits each)."""
    if not vp8_keyframe(data):
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


class FrameSink:
    """Stands in for a remote track's frame queue: each encoded frame goes to `deliver`
    on the event loop, and None when the track ends."""

    def __init__(self, kind: str, deliver: Callable[[EncodedFrame | None], None]) -> None:
        self.kind = kind
        self.deliver = deliver

    # The shape aiortc's RemoteStreamTrack.recv() expects, never used: nobody reads
    # a forwarded track as decoded frames.
    async def get(self) -> None:
        raise RuntimeError("a forwarded track yields no decoded frames")


_original_worker = rtcrtpreceiver.decoder_worker
_installed = threading.Lock()

# Seconds from the NTP epoch (1900) to the Unix epoch (1970).
_NTP_UNIX_OFFSET = 2_208_988_800


def _current_ntp_time() -> int:
    """`aiortc.clock.current_ntp_time` (64-bit NTP time now) without building datetimes:
    every RTP packet sent asks for it twice."""
    now = time.time()
    seconds = int(now)
    return ((seconds + _NTP_UNIX_OFFSET) << 32) | int((now - seconds) * 4_294_967_296)


def _current_ms() -> int:
    """`aiortc.clock.current_ms` (milliseconds since 1900), asked once per packet received."""
    return int((time.time() + _NTP_UNIX_OFFSET) * 1000)


def _encoded(kind: str, codec: Any, jitter_frame: Any) -> EncodedFrame:
    data: bytes = jitter_frame.data
    name = codec.name
    return EncodedFrame(
        kind=kind,
        codec=name,
        data=data,
        pts=jitter_frame.timestamp,
        clock_rate=codec.clockRate,
        keyframe=vp8_keyframe(data) if name == "VP8" else kind == "audio",
    )


class _InlineQueue:
    """Stands in for a receiver's decoder queue: the receiver puts each reassembled
    frame (on the event loop) and it goes straight to the sink, on the loop, with no
    thread in between.  aiortc's path (a thread per receiver that takes each frame from
    a queue and hands it back to the loop) costs two thread switches per frame, and
    with a few hundred such threads their contention for the GIL slows the event loop
    that carries every call's packets."""

    def __init__(self, sink: FrameSink) -> None:
        self._sink = sink

    def put(self, item: tuple[Any, Any] | None) -> None:
        if item is None:
            self._sink.deliver(None)
            return
        codec, jitter_frame = item
        self._sink.deliver(_encoded(self._sink.kind, codec, jitter_frame))


def _forwarding_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: Any,  # queue.Queue (the name `queue` is bench/queue.py to mypy)
    output_q: Any,
    decode_error: threading.Event,
) -> None:
    if isinstance(input_q, _InlineQueue):
        return  # frames go to the sink on the loop: this thread has nothing to do
    if not isinstance(output_q, FrameSink):
        _original_worker(loop, input_q, output_q, decode_error)
        return
    while True:
        task = input_q.get()
        if task is None:
            loop.call_soon_threadsafe(output_q.deliver, None)
            return
        codec, jitter_frame = task
        frame = _encoded(output_q.kind, codec, jitter_frame)
        try:
            loop.call_soon_threadsafe(output_q.deliver, frame)
        except RuntimeError:  # the loop is closed: the process is stopping
            return


_original_datagram_received = StunProtocol.datagram_received


def _datagram_received(self: StunProtocol, data: bytes | str, addr: tuple[Any, ...]) -> None:
    """`aioice.ice.StunProtocol.datagram_received` without trying every media packet as
    STUN first (a parse that fails with an exception, per packet): a STUN message's
    first byte is 0 to 3, RTP, RTCP and DTLS never start so (RFC 7983)."""
    if data and isinstance(data, bytes) and data[0] > 3:
        self.receiver.data_received(data, self.local_candidate.component)
        return
    _original_datagram_received(self, data, addr)


def install() -> None:
    """Make receivers whose track queue is a `FrameSink` forward encoded frames, and
    aiortc's per-packet clock readings and aioice's per-datagram demultiplexing cheaper
    (the same results)."""
    with _installed:
        rtcrtpreceiver.decoder_worker = _forwarding_worker
        clock.current_ntp_time = _current_ntp_time
        clock.current_ms = _current_ms
        StunProtocol.datagram_received = _datagram_received  # type: ignore[method-assign]


# A REMB goes out at most this often, or sooner (but not within REMB_MIN_GAP_MS of the
# last) when the estimate falls below REMB_DROP of the last one sent: a browser's
# encoder hears of congestion at once and of everything else twice a second.
REMB_INTERVAL_MS = 500
REMB_MIN_GAP_MS = 100
REMB_DROP = 0.97


class ThrottledRemb:
    """Stands in for a receiver's `RemoteBitrateEstimator`: every packet still feeds
    the estimator, but an estimate is returned (and so sent as a REMB) only when one is
    due.  aiortc's receiver sends whatever `add` returns."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self._sent_at: int | None = None
        self._sent_bitrate = 0
        self.sent = 0

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        remb: tuple[int, list[int]] | None = self.estimator.add(
            arrival_time_ms=arrival_time_ms,
            abs_send_time=abs_send_time,
            payload_size=payload_size,
            ssrc=ssrc,
        )
        if remb is None:
            return None
        if self._sent_at is not None:
            since = arrival_time_ms - self._sent_at
            dropped = remb[0] < REMB_DROP * self._sent_bitrate
            if since < REMB_MIN_GAP_MS or (since < REMB_INTERVAL_MS and not dropped):
                return None
        self._sent_at = arrival_time_ms
        self._sent_bitrate = remb[0]
        self.sent += 1
        return remb


def forward_receiver(
    receiver: Any, deliver: Callable[[EncodedFrame | None], None], *, remb: bool = True
) -> None:
    """Before the connection starts (right after setRemoteDescription), make
    `receiver` hand its encoded frames to `deliver` instead of decoding them, and send
    its bandwidth estimates (REMB) at a sane rate, or never without `remb` (a peer whose
    sender ignores them: the server, forwarding encoded video, does)."""
    install()
    track = receiver.track
    assert track is not None, "call after setRemoteDescription"
    track._queue = sink = FrameSink(track.kind, deliver)
    receiver._RTCRtpReceiver__decoder_queue = _InlineQueue(sink)
    estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator
    if estimator is not None and not isinstance(estimator, ThrottledRemb):
        receiver._RTCRtpReceiver__remote_bitrate_estimator = (
            ThrottledRemb(estimator) if remb else None
        )


def packets_received(receiver: Any) -> tuple[int, int]:
    """(RTP packets received, packets missing from the sequence numbers) on `receiver`,
    over all its SSRCs (a retransmission stream is one).  getStats() cannot say: it
    reports one SSRC per receiver, whichever came last."""
    received = lost = 0
    for stream in receiver._RTCRtpReceiver__remote_streams.values():
        received += stream.packets_received
        lost += max(0, stream.packets_lost)
    return received, lost


async def request_keyframe(receiver: Any) -> None:
    """Ask the sender of `receiver`'s stream for a key frame (RTCP PLI)."""
    for source in receiver.getSynchronizationSources():
        await receiver._send_rtcp_pli(source.source)
