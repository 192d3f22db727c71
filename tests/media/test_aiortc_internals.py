"""The private aiortc internals media/ relies on are still there, shaped as expected.

If aiortc is upgraded, these fail first and say what to re-check in media/frames.py
and media/server.py.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import version

from aioice.ice import Connection
from aiortc import RTCRtpReceiver, RTCRtpSender, clock, rtcrtpreceiver
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCDtlsTransport

from media import frames


def test_aiortc_is_the_pinned_version() -> None:
    assert version("aiortc") == frames.AIORTC_VERSION


def test_the_receiver_starts_the_module_level_decoder_worker() -> None:
    source = inspect.getsource(RTCRtpReceiver.receive)
    assert "target=decoder_worker" in source
    assert "self._track._queue" in source
    parameters = list(inspect.signature(frames._original_worker).parameters)
    assert parameters == ["loop", "input_q", "output_q", "decode_error"]
    frames.install()
    assert rtcrtpreceiver.decoder_worker is frames._forwarding_worker


def test_the_worker_gets_codec_and_jitter_frame_pairs() -> None:
    source = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in source
    assert "self.__timestamp_mapper.map" in source


def test_the_sender_packs_pre_encoded_packets_and_routes_pli_to_send_keyframe() -> None:
    assert "self.__encoder.pack(data)" in inspect.getsource(RTCRtpSender._next_encoded_frame)
    handle = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "self._send_keyframe()" in handle
    assert hasattr(RTCRtpReceiver, "_send_rtcp_pli")


def test_vp8_key_frame_header() -> None:
    key = bytes.fromhex("3012009d012a4001f000")
    assert frames.vp8_keyframe(key)
    assert frames.vp8_size(key) == (320, 240)
    assert not frames.vp8_keyframe(bytes.fromhex("3112009d012a4001f000"))


def test_the_receiver_queues_frames_for_its_worker_and_keeps_stream_statistics() -> None:
    init = inspect.getsource(RTCRtpReceiver.__init__)
    assert "self.__decoder_queue: queue.Queue = queue.Queue()" in init
    assert "self.__remote_streams" in init
    stop = inspect.getsource(RTCRtpReceiver._RTCRtpReceiver__stop_decoder)  # type: ignore[attr-defined]
    assert "self.__decoder_queue.put(None)" in stop
    assert rtcrtpreceiver.StreamStatistics(90_000).packets_received == 0
    assert isinstance(rtcrtpreceiver.StreamStatistics.packets_lost, property)


def test_aioice_keeps_its_sockets_protocols() -> None:
    assert "self._protocols: list[StunProtocol] = []" in inspect.getsource(Connection.__init__)


def test_the_receiver_sends_what_its_bitrate_estimator_returns() -> None:
    """`frames.ThrottledRemb` replaces the estimator; aiortc must still call `add` with
    these keywords and send a REMB exactly when it returns something."""
    init = inspect.getsource(RTCRtpReceiver.__init__)
    assert "self.__remote_bitrate_estimator = RemoteBitrateEstimator()" in init
    handle = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "remb = self.__remote_bitrate_estimator.add(" in handle
    assert "if self.__rtcp_ssrc is not None and remb is not None:" in handle
    assert "fci=pack_remb_fci(*remb)" in handle
    parameters = list(inspect.signature(RemoteBitrateEstimator.add).parameters)
    assert parameters == ["self", "arrival_time_ms", "abs_send_time", "payload_size", "ssrc"]


def test_the_faster_clock_reads_what_aiortc_s_own_does() -> None:
    """aiortc's modules call `clock.current_ntp_time()` / `clock.current_ms()` through the
    module, so `frames.install()` replacing them reaches every sender and transport."""
    assert "clock.current_ntp_time()" in inspect.getsource(RTCRtpSender._run_rtp)
    assert "clock.current_ms()" in inspect.getsource(RTCDtlsTransport._recv_next)
    importlib.reload(clock)  # aiortc's own functions again
    ntp_time, ms = clock.current_ntp_time, clock.current_ms
    frames.install()
    assert clock.current_ntp_time is frames._current_ntp_time
    assert clock.current_ms is frames._current_ms
    ntp, ours = ntp_time(), frames._current_ntp_time()
    assert 0 <= ours - ntp < (1 << 32) // 10  # within 0.1 s
    assert 0 <= frames._current_ms() - ms() < 100


def test_aioice_hands_what_is_not_stun_to_the_connection() -> None:
    # media/frames.py skips the failed STUN parse of each media datagram and does what
    # aioice does after it.
    from aioice.ice import StunProtocol

    source = inspect.getsource(frames._original_datagram_received)
    assert "stun.parse_message(data)" in source
    assert "self.receiver.data_received(data, self.local_candidate.component)" in source
    frames.install()
    assert StunProtocol.datagram_received is frames._datagram_received


def test_asyncio_reads_one_datagram_per_readiness_as_media_network_replaces() -> None:
    # media/network.py's burst reader is asyncio's _read_ready in a loop: the same
    # attributes, exceptions and callbacks.
    from media.network import ORIGINAL_READ_READY

    source = inspect.getsource(ORIGINAL_READ_READY)
    for needed in (
        "self._conn_lost",
        "self._sock.recvfrom(self.max_size)",
        "self._protocol.error_received(exc)",
        "self._fatal_error(exc, 'Fatal read error on datagram transport')",
        "self._protocol.datagram_received(data, addr)",
    ):
        assert needed in source, needed
