"""Cheap aiortc peers for bench/media_calls.py: the load generator, not the system
under test.

The server still gets real WebRTC from them: aiortc negotiates ICE, DTLS and SRTP, and
its RTCP (sender and receiver reports, the server's PLIs and NACKs) runs as usual.
Only the per-packet media path is bypassed, because aiortc's costs about as much CPU as
the server's and two cores cannot carry both at 50 calls:

* `FastPhone` packetises the clip once per process (VP8 payloads as aiortc's own
  packetiser cuts them, Opus as it is, or joined into packets of as many milliseconds
  as the answer's `a=ptime` asks, as Chrome does) and sends each frame's packets straight through
  the DTLS transport's SRTP session and the nominated ICE pair's socket, with the
  headers aiortc would write (sequence numbers, timestamps, marker, the mid and
  abs-send-time extensions: the server's bandwidth estimator runs as for a browser).
  A PLI makes it go on from the clip's next key frame; a NACK resends the packet.
* `FastConsole` takes the server's RTP off the ICE connection before aiortc's queue,
  decrypts it and counts whole video frames from the sequence numbers, the marker bit
  and the VP8 payload descriptor (no jitter buffer, no depacketiser, no decoder).  The
  first frame it counts is a complete key frame, as a decoder would show it.  The
  receivers' statistics are kept (sequence numbers), so their receiver reports still
  tell the server the viewer is alive.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.vpx import PACKET_MAX
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import HeaderExtensions

from media import frames
from media.network import read_datagrams_in_bursts
from media.offers import audio_ptime
from tests.media.peers import FPS, Clip, Counter

frames.install()  # aioice hands media datagrams over without trying them as STUN first
read_datagrams_in_bursts()  # a load process carries media only

_VP8_CHUNK = PACKET_MAX - 4  # aiortc's descriptor: 4 bytes (2-byte picture id)
_HEADER = struct.Struct("!BBHII")
_NTP_UNIX = 2_208_988_800


class _Idle(MediaStreamTrack):
    """A track aiortc's sender waits on for ever: the packets go out another way."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._never: asyncio.Future[None] | None = None

    async def recv(self) -> Any:
        self._never = asyncio.get_running_loop().create_future()
        await self._never
        raise MediaStreamError

    def stop(self) -> None:
        if self._never is not None and not self._never.done():
            self._never.set_exception(MediaStreamError())
        super().stop()


def _abs_send_time() -> int:
    now = time.time() + _NTP_UNIX
    return int(now * (1 << 18)) & 0xFFFFFF  # 6.18 fixed point seconds


class _Stream:
    """One outgoing RTP stream of a phone, sent with aiortc's headers."""

    def __init__(self, sender: Any, kind: str) -> None:
        self.sender = sender
        self.kind = kind
        self.ssrc: int = sender._ssrc
        self.seq = int.from_bytes(os.urandom(2), "big")
        self.ts_origin = int.from_bytes(os.urandom(4), "big")
        self.history: dict[int, bytes] = {}
        self.pt = 0
        self.ext_prefix = b""
        self.ext_suffix = b""
        self.abs_send_time = False

    def configure(self, parameters: Any) -> None:
        self.pt = parameters.codecs[0].payloadType
        hmap = self.sender._RTCRtpSender__rtp_header_extensions_map
        mid = self.sender._RTCRtpSender__mid
        marker_value = 0xABCDEF
        profile, ext = hmap.set(HeaderExtensions(mid=mid, abs_send_time=marker_value))
        assert profile == 0xBEDE, profile
        header = struct.pack("!HH", profile, len(ext) // 4)
        at = ext.find(marker_value.to_bytes(3, "big"))
        self.abs_send_time = at >= 0  # negotiated (for video)
        if self.abs_send_time:
            self.ext_prefix, self.ext_suffix = header + ext[:at], ext[at + 3 :]
        else:
            self.ext_prefix = header + ext

    def packet(self, payload: bytes, timestamp: int, marker: bool) -> bytes:
        seq = self.seq
        self.seq = (seq + 1) & 0xFFFF
        header = _HEADER.pack(0x90, (marker << 7) | self.pt, seq,
                              (self.ts_origin + timestamp) & 0xFFFFFFFF, self.ssrc)  # fmt: skip
        if self.abs_send_time:
            data = b"".join((header, self.ext_prefix, _abs_send_time().to_bytes(3, "big"),
                             self.ext_suffix, payload))  # fmt: skip
        else:
            data = b"".join((header, self.ext_prefix, payload))
        self.history[seq & 0x3FF] = data
        return data


def join_opus(packets: list[bytes]) -> bytes:
    """One Opus packet holding the frames of `packets` (single-frame packets of one
    configuration): RFC 6716 3.2.5, code 3, variable sizes."""
    if len(packets) == 1:
        return packets[0]
    toc = packets[0][0]
    if any(p[0] != toc or toc & 3 for p in packets):
        raise ValueError("only single-frame packets of one configuration join")
    lengths = b""
    for frame in packets[:-1]:
        size = len(frame) - 1
        lengths += bytes((size,)) if size < 252 else bytes((252 + (size & 3), (size - 252) >> 2))
    return bytes((toc | 3, 0x80 | len(packets))) + lengths + b"".join(p[1:] for p in packets)


def packetize(clip: Clip) -> list[list[bytes]]:
    """Each video frame's VP8 payload chunks (without the 4-byte descriptor)."""
    return [
        [frame[pos : pos + _VP8_CHUNK] for pos in range(0, len(frame), _VP8_CHUNK)]
        for frame in clip.video
    ]


class _Sent:
    """What a phone's video sent (the name the bench reads, as for `ClipTrack`)."""

    def __init__(self) -> None:
        self.sent = 0
        self.keyframe_requests = 0


class FastPhone:
    """The citizen: the clip's video and audio, sent in real time, looping."""

    def __init__(self, clip: Clip, chunks: list[list[bytes]]) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._clip = clip
        self._chunks = chunks
        self._keyframes = sorted(clip.keyframes)
        self.video = _Sent()
        self.packets_sent = 0
        self._keyframe_wanted = False
        self._position = 0
        self._picture_id = 0
        self._audio_sent = 0
        self._audio: list[bytes] = list(clip.audio)
        self._audio_per = 1
        self._tracks = [_Idle("video"), _Idle("audio")]
        self._video_sender = self.pc.addTransceiver(self._tracks[0], direction="sendonly").sender
        self._audio_sender = self.pc.addTransceiver(self._tracks[1], direction="sendrecv").sender
        self._video_sender._send_keyframe = self._want_keyframe  # type: ignore[method-assign]
        self._send: Callable[[bytes], None] | None = None
        self._handles: list[asyncio.TimerHandle] = []
        self._closed = False

    def _want_keyframe(self) -> None:
        self.video.keyframe_requests += 1
        self._keyframe_wanted = True

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        # Each audio packet: ptime / 20 of the clip's 20 ms packets, joined.
        per = max(1, audio_ptime(answer) // 20)
        clip = self._clip.audio
        whole = len(clip) - len(clip) % per
        self._audio = [join_opus(list(clip[i : i + per])) for i in range(0, whole, per)]
        self._audio_per = per
        asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        dtls = self._video_sender.transport
        while dtls.state != "connected" or dtls._tx_srtp is None:
            if self._closed or dtls.state in ("closed", "failed"):
                return
            await asyncio.sleep(0.01)
        self._streams = {}
        for kind, sender in (("video", self._video_sender), ("audio", self._audio_sender)):
            stream = _Stream(sender, kind)
            transceiver = next(t for t in self.pc.getTransceivers() if t.sender is sender)
            pc: Any = self.pc  # (aiortc's private parameters of the negotiated stream)
            stream.configure(pc._RTCPeerConnection__localRtp(transceiver))
            self._streams[kind] = stream
            # NACKs: resend the packet as it was.
            sender._retransmit = self._retransmitter(stream)  # type: ignore[method-assign,assignment]
        connection = dtls.transport._connection
        pair = connection._nominated[1]
        sock, addr, srtp = pair.protocol.transport, pair.remote_addr, dtls._tx_srtp

        def send(data: bytes) -> None:
            if sock.is_closing():
                raise OSError("the phone's connection is closed")
            sock.sendto(srtp.protect(data), addr)
            self.packets_sent += 1

        self._send = send
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._video_at = self._audio_at = now
        self._tick_video()
        self._tick_audio()

    def _retransmitter(self, stream: _Stream) -> Callable[[int], Any]:
        async def retransmit(seq: int) -> None:
            data = stream.history.get(seq & 0x3FF)
            if data is not None and self._send is not None and data[2:4] == seq.to_bytes(2, "big"):
                self._send(data)

        return retransmit

    def _tick_video(self) -> None:
        if self._closed or self._send is None:
            return
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            self._position = next(
                (k for k in self._keyframes if k >= self._position), self._keyframes[0]
            )
        chunks = self._chunks[self._position]
        self._position = (self._position + 1) % len(self._chunks)
        stream = self._streams["video"]
        pid = self._picture_id
        self._picture_id = (pid + 1) & 0x7FFF
        first = bytes((0x90, 0x80, 0x80 | pid >> 8, pid & 0xFF))
        rest = bytes((0x80, 0x80, 0x80 | pid >> 8, pid & 0xFF))
        timestamp = self.video.sent * 3000
        last = len(chunks) - 1
        send = self._send
        try:
            for i, chunk in enumerate(chunks):
                send(stream.packet((first if i == 0 else rest) + chunk, timestamp, i == last))
        except OSError:
            return
        self.video.sent += 1
        self._video_at += 1 / FPS
        loop = asyncio.get_running_loop()
        self._handles.append(loop.call_at(max(self._video_at, loop.time()), self._tick_video))
        if len(self._handles) > 8:
            del self._handles[:4]

    def _tick_audio(self) -> None:
        if self._closed or self._send is None:
            return
        audio, per = self._audio, self._audio_per
        stream = self._streams["audio"]
        try:
            self._send(stream.packet(audio[self._audio_sent % len(audio)],
                                     self._audio_sent * 960 * per, True))  # fmt: skip
        except OSError:
            return
        self._audio_sent += 1
        self._audio_at += 0.02 * per
        loop = asyncio.get_running_loop()
        self._handles.append(loop.call_at(max(self._audio_at, loop.time()), self._tick_audio))

    async def close(self) -> None:
        self._closed = True
        for handle in self._handles:
            handle.cancel()
        for track in self._tracks:
            track.stop()
        await self.pc.close()


class FastConsole:
    """A commander watching: counts whole video frames and audio packets received."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video = Counter()
        self.audio = Counter()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.packets = 0
        self.lost = 0
        self._expect: int | None = None  # next sequence number of the frame in progress
        self._frame_ok = False
        self._frame_key = False
        self._shown = False  # a key frame was complete: frames count from there on
        # When (perf_counter) the answer came, the connection was up, the first media
        # packet arrived: where an offer's time to the first frame goes.
        self.answered_at: float | None = None
        self.connected_at: float | None = None
        self.first_packet_at: float | None = None

        @self.pc.on("connectionstatechange")
        def changed() -> None:
            if self.pc.connectionState == "connected" and self.connected_at is None:
                self.connected_at = time.perf_counter()

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        self.answered_at = time.perf_counter()
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        video, audio = self.pc.getTransceivers()
        dtls = video.receiver.transport
        pc: Any = self.pc  # (aiortc's private parameters and statistics)
        params = {t.kind: pc._RTCPeerConnection__remoteRtp(t) for t in (video, audio)}
        video_pts = {c.payloadType for c in params["video"].codecs if c.name == "VP8"}
        audio_pts = {c.payloadType for c in params["audio"].codecs if c.name == "opus"}
        stats: dict[int, StreamStatistics] = {}
        receivers: dict[str, Any] = {"video": video.receiver, "audio": audio.receiver}
        streams = {kind: r._RTCRtpReceiver__remote_streams for kind, r in receivers.items()}
        connection = dtls.transport._connection
        original = connection.data_received
        counter_video, counter_audio = self.video, self.audio
        unpack = _HEADER.unpack_from

        def data_received(data: bytes, component: int) -> None:
            srtp = dtls._rx_srtp
            if srtp is None or not 127 < data[0] < 192 or 192 <= data[1] <= 223:
                original(data, component)  # DTLS, STUN, RTCP: aiortc's path
                return
            try:
                data = srtp.unprotect(data)
            except Exception:
                return
            b0, b1, seq, _ts, ssrc = unpack(data)
            pt = b1 & 0x7F
            kind = "video" if pt in video_pts else "audio" if pt in audio_pts else None
            if kind is None:
                return  # retransmissions (RTX): not counted
            self.packets += 1
            if self.first_packet_at is None:
                self.first_packet_at = time.perf_counter()
            stream = stats.get(ssrc)
            if stream is None:
                stream = stats[ssrc] = streams[kind].setdefault(
                    ssrc, StreamStatistics(90_000 if kind == "video" else 48_000)
                )
                stream.base_seq = seq
            stream.packets_received += 1
            if stream.max_seq is None or (seq - stream.max_seq) & 0xFFFF < 0x8000:
                if stream.max_seq is not None and seq < stream.max_seq:
                    stream.cycles += 1 << 16
                stream.max_seq = seq
            if kind == "audio":
                counter_audio.frames += 1
                return
            marker = b1 & 0x80
            offset = 12 + 4 * (b0 & 0x0F)
            if b0 & 0x10:
                offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
            descriptor = data[offset]
            if descriptor & 0x10 and descriptor & 0x07 == 0:  # a frame starts
                pos = offset + 1
                if descriptor & 0x80:
                    ext = data[pos]
                    pos += 1
                    if ext & 0x80:
                        pos += 2 if data[pos] & 0x80 else 1
                    pos += bool(ext & 0x40) + bool(ext & 0x30)
                self._frame_ok = True
                self._frame_key = data[pos] & 1 == 0
            elif self._expect != seq:
                self._frame_ok = False
            self._expect = (seq + 1) & 0xFFFF
            if marker:
                if self._frame_ok and (self._shown or self._frame_key):
                    self._shown = True
                    now = time.perf_counter()
                    if counter_video.first_at is None:
                        counter_video.first_at = now
                    counter_video.frames += 1
                    counter_video.keyframes += self._frame_key
                    counter_video.times.append(now)
                self._frame_ok = False

        connection.data_received = data_received  # type: ignore[method-assign]

    async def close(self) -> None:
        await self.pc.close()
