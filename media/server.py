"""`MediaServer`: the calls this node carries, terminated with aiortc.

Per call: the citizen's current session (one peer connection; its video and audio
forwarded encoded into the call's fan-outs and recorded into one WebM segment), the
viewers (a peer connection each, fed from the fan-outs; a talking viewer's microphone
goes into the call's back channel, which the citizen's connection plays), and nothing
else.  Every connection, recorder and subscription has one owner here and is closed on
hang-up, on failure, when its peer vanishes, and at `close()`.

A peer is considered gone when nothing was heard from it for `peer_timeout_s` (media
from a citizen, RTCP from a viewer): ICE consent freshness alone takes ~30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSessionDescription
from aiortc.stats import RTCOutboundRtpStreamStats

from media import frames
from media.config import MediaConfig as MediaConfig
from media.fanout import Fanout, ForwardedTrack, Subscription
from media.frames import EncodedFrame
from media.interface import (
    Answer,
    AtCapacity,
    BadOffer,
    CallObserver,
    EndReason,
    LeaveReason,
    MediaStats,
    NoLiveCall,
    SessionEnded,
    Unobserved,
    ViewerLeft,
    check_call_limit,
)
from media.network import enlarge_receive_buffers, rtc_configuration
from media.offers import Role, check_offer, with_audio_ptime
from media.recorder import WebmRecorder

logger = logging.getLogger(__name__)

KEYFRAME_INTERVAL_S = 0.5  # at most one key-frame request to the citizen per this
VIEWER_VIDEO_QUEUE = 90  # ~3 s of video a viewer may fall behind before it skips ahead
VIEWER_AUDIO_QUEUE = 150


def _now() -> datetime:
    return datetime.now(UTC)


def _codec(kind: str, name: str) -> list[Any]:
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    wanted = [c for c in capabilities if c.mimeType.lower() == f"{kind}/{name}".lower()]
    # Retransmissions (RTX) stay allowed for video: NACK repair towards the viewer.
    return wanted + [c for c in capabilities if c.mimeType.lower() == f"{kind}/rtx"]


def _refused(step: str, exc: Exception) -> BadOffer:
    logger.info("an offer was refused at %s: %s: %s", step, type(exc).__name__, exc)
    return BadOffer(f"the offer cannot be accepted ({step}: {exc or type(exc).__name__})",
                    field="sdp")  # fmt: skip


async def _accept_offer(pc: RTCPeerConnection, offer_sdp: str) -> None:
    """`setRemoteDescription`, an offer aiortc cannot take refused in words.

    `check_offer` has already refused what it can name; what is left fails deep in
    aiortc's negotiation with whatever exception the line it reached raises (a
    `ValueError`, an `AttributeError` on a missing attribute, a `StopIteration` turned
    into `RuntimeError` by the coroutine, ...).  The offer is the only input of this
    step, so any of those is the offer's fault: `BadOffer` (4xx), never a 500.  An
    `OSError` is the machine's and goes on."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
    except OSError:
        raise
    except Exception as exc:
        raise _refused("setRemoteDescription", exc) from exc


async def _answer(pc: RTCPeerConnection) -> None:
    """`createAnswer` and `setLocalDescription` for the accepted offer.  Both work from
    the offer (an m-line the transceivers do not match, a `mid` used twice, a direction
    aiortc has no answer to), so a failure is again the offer's, but for an `OSError`
    (gathering candidates binds sockets): the machine's."""
    step = "createAnswer"
    try:
        answer = await pc.createAnswer()
        step = "setLocalDescription"
        await pc.setLocalDescription(answer)
    except OSError:
        raise
    except Exception as exc:
        raise _refused(step, exc) from exc


async def _close(pc: RTCPeerConnection) -> None:
    """Close `pc` whatever state a refused offer left it in.

    aiortc's `close()` stops every transceiver's transports and trips over one that an
    offer never gave a transport (`None`), leaving the rest open: then each transport
    that exists is stopped here (both stops are idempotent), and the error is logged
    rather than raised over the refusal being answered."""
    try:
        await pc.close()
    except Exception:  # a half-negotiated connection: finish by hand
        logger.info("closing a half-negotiated peer connection by hand", exc_info=True)
        for transceiver in pc.getTransceivers():
            with contextlib.suppress(Exception):
                await transceiver.stop()
            dtls = transceiver.receiver.transport
            if dtls is not None:
                with contextlib.suppress(Exception):
                    await dtls.stop()
                with contextlib.suppress(Exception):
                    await dtls.transport.stop()


@dataclass(eq=False)
class _Publisher:
    id: str
    pc: RTCPeerConnection
    recorder: WebmRecorder
    subscriptions: list[tuple[Fanout, Subscription]]
    receivers: dict[str, RTCRtpReceiver]
    started_at: datetime
    started: float
    last_heard: float | None = None
    ending: bool = False


@dataclass(eq=False)
class _Viewer:
    id: str
    pc: RTCPeerConnection
    talk: bool
    subscriptions: list[tuple[Fanout, Subscription]]
    started: float
    last_heard: float
    ending: bool = False


@dataclass(eq=False)
class _Call:
    id: str
    video: Fanout
    audio: Fanout
    back: Fanout  # the talking viewer's voice, to the citizen
    publisher: _Publisher | None = None
    viewers: dict[str, _Viewer] = field(default_factory=dict)
    without_publisher_since: float | None = None
    last_keyframe_request: float = 0.0


class MediaServer:
    """Implements `media.interface.CallMedia` with aiortc in this process."""

    def __init__(self, config: MediaConfig, observer: CallObserver | None = None) -> None:
        self._config = config
        self._observer = observer or Unobserved()
        self._calls: dict[str, _Call] = {}
        self._reserved = 0  # publishes negotiating now (count against the limit)
        self._watchdog: asyncio.Task[None] | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        frames.install()

    def attach(self, observer: CallObserver) -> None:
        """Who is told of ends and leaves (the application, once it is built)."""
        self._observer = observer

    # --- the interface ------------------------------------------------------------

    def recording_path(self, call_id: str, session_id: str) -> str:
        return f"calls/{call_id}/{session_id}.webm"

    def live_session(self, call_id: str) -> str | None:
        call = self._calls.get(call_id)
        return call.publisher.id if call and call.publisher else None

    def live_calls(self) -> int:
        return sum(1 for call in self._calls.values() if call.publisher is not None)

    def viewers(self, call_id: str) -> list[str]:
        call = self._calls.get(call_id)
        return list(call.viewers) if call else []

    async def stats(self) -> MediaStats:
        received = lost = sent = video = audio = recorded = recorder_dropped = 0
        viewer_dropped = viewers = calls = 0
        for call in list(self._calls.values()):
            publisher = call.publisher
            video += call.video.frames
            audio += call.audio.frames
            if publisher is not None:
                calls += 1
                recorded += publisher.recorder.video_frames
                recorder_dropped += publisher.recorder.dropped
                for receiver in publisher.receivers.values():
                    got, missing = frames.packets_received(receiver)
                    received += got
                    lost += missing
            for viewer in list(call.viewers.values()):
                viewers += 1
                viewer_dropped += sum(
                    s.dropped for f, s in viewer.subscriptions if f is not call.back
                )
                for report in (await viewer.pc.getStats()).values():
                    if isinstance(report, RTCOutboundRtpStreamStats):
                        sent += report.packetsSent
        return MediaStats(
            calls=calls, viewers=viewers, packets_received=received, packets_lost=lost,
            video_frames=video, audio_frames=audio, frames_recorded=recorded,
            recorder_dropped=recorder_dropped, viewer_frames_dropped=viewer_dropped,
            packets_sent_to_viewers=sent,
        )  # fmt: skip

    def start(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch(), name="media-watchdog")

    def check_capacity(self, call_id: str | None = None) -> None:
        """`AtCapacity` when a new call would be over the limit (a call that is already
        here may always reconnect)."""
        if call_id is not None and call_id in self._calls:
            return
        check_call_limit(self.live_calls() + self._reserved, self._config.max_calls)

    async def publish(self, call_id: str, session_id: str, offer_sdp: str) -> Answer:
        if self._closing:
            raise AtCapacity("the server is stopping", retry_after_s=5)
        summary = check_offer(offer_sdp, Role.PUBLISHER)
        self.check_capacity(call_id)
        self._reserved += 1
        pc = RTCPeerConnection(rtc_configuration(self._config.ice_servers))
        recorder: WebmRecorder | None = None
        try:
            call = self._calls.get(call_id) or self._new_call(call_id)
            back = call.back.subscribe(VIEWER_AUDIO_QUEUE)
            video = pc.addTransceiver("video", direction="recvonly")
            video.setCodecPreferences(_codec("video", "VP8"))
            # The dispatcher's voice comes back on the citizen's audio; it stays silent
            # (nothing is sent) until a dispatcher speaks.
            audio = pc.addTransceiver(ForwardedTrack(back), direction="sendrecv")
            audio.setCodecPreferences(_codec("audio", "opus"))
            await _accept_offer(pc, offer_sdp)
            recorder = WebmRecorder(
                self._config.recordings_dir / self.recording_path(call_id, session_id)
            )
            loop = asyncio.get_running_loop()
            publisher = _Publisher(
                id=session_id, pc=pc, recorder=recorder, subscriptions=[(call.back, back)],
                receivers={}, started_at=_now(), started=loop.time(),
            )  # fmt: skip
            for transceiver, fanout in ((video, call.video), (audio, call.audio)):
                if transceiver.kind == "audio" and not summary.sends_audio:
                    continue
                receiver = transceiver.receiver
                publisher.receivers[transceiver.kind] = receiver
                frames.forward_receiver(receiver, self._deliverer(call, publisher, fanout))
            await _answer(pc)
            enlarge_receive_buffers(pc)
        except BaseException:
            self._reserved -= 1
            await _close(pc)
            if recorder is not None:  # its thread ends; nothing reached it, so no file
                await recorder.close()
            left = self._calls.get(call_id)
            if left is not None:
                left.back.unsubscribe(back)
                if left.publisher is None and not left.viewers:
                    self._drop_call(left)
            raise
        self._reserved -= 1
        previous = call.publisher
        if previous is not None:
            await self._end_publisher(call, previous, EndReason.REPLACED)
        call.publisher = publisher
        call.without_publisher_since = None
        call.video.new_source()
        call.audio.new_source()
        # The recorder takes the call's streams from this segment's first frame on, each
        # frame as it comes (its own bounded queue feeds its thread).
        for fanout in (call.video, call.audio):
            subscription = fanout.attach(recorder.write)
            publisher.subscriptions.append((fanout, subscription))
        self._on_state(pc, lambda: self._publisher_failed(call, publisher))
        logger.info("call session answered", extra={"call_id": call_id, "session_id": session_id})
        self.start()
        return Answer(
            session_id, with_audio_ptime(pc.localDescription.sdp, self._config.audio_ptime_ms)
        )

    async def watch(self, call_id: str, viewer_id: str, offer_sdp: str, *, talk: bool) -> Answer:
        summary = check_offer(offer_sdp, Role.VIEWER)
        call = self._calls.get(call_id)
        if call is None or call.publisher is None:
            raise NoLiveCall("no one is on this call now")
        if len(call.viewers) >= self._config.max_viewers_per_call:
            raise AtCapacity(
                f"this call has its limit of {self._config.max_viewers_per_call} viewers",
                retry_after_s=10,
            )
        pc = RTCPeerConnection(rtc_configuration(self._config.ice_servers))
        loop = asyncio.get_running_loop()
        video_sub = call.video.subscribe(VIEWER_VIDEO_QUEUE)
        audio_sub = call.audio.subscribe(VIEWER_AUDIO_QUEUE)
        viewer = _Viewer(
            id=viewer_id, pc=pc, talk=talk and summary.sends_audio,
            subscriptions=[(call.video, video_sub), (call.audio, audio_sub)],
            started=loop.time(), last_heard=loop.time(),
        )  # fmt: skip
        try:
            video = pc.addTransceiver(ForwardedTrack(video_sub), direction="sendonly")
            video.setCodecPreferences(_codec("video", "VP8"))
            audio = pc.addTransceiver(
                ForwardedTrack(audio_sub), direction="sendrecv" if viewer.talk else "sendonly"
            )
            audio.setCodecPreferences(_codec("audio", "opus"))
            await _accept_offer(pc, offer_sdp)
            if viewer.talk:
                call.back.new_source()
                frames.forward_receiver(audio.receiver, self._heard(viewer, call.back.push))
            for sender in (video.sender, audio.sender):
                self._hook_sender(call, viewer, sender)
            await _answer(pc)
            enlarge_receive_buffers(pc)
        except BaseException:
            for fanout, subscription in viewer.subscriptions:
                fanout.unsubscribe(subscription)
            await _close(pc)
            raise
        if not self._is_live(call):  # ended while this viewer was negotiating
            await self._close_viewer(viewer)
            raise NoLiveCall("the call ended")
        call.viewers[viewer_id] = viewer
        self._on_state(pc, lambda: self._viewer_failed(call, viewer))
        self._request_keyframe(call, force=True)
        logger.info("viewer joined", extra={"call_id": call_id, "viewer_id": viewer_id})
        return Answer(
            viewer_id, with_audio_ptime(pc.localDescription.sdp, self._config.audio_ptime_ms)
        )

    async def hang_up(self, call_id: str, session_id: str, reason: EndReason) -> bool:
        call = self._calls.get(call_id)
        if call is None or call.publisher is None or call.publisher.id != session_id:
            return False
        await self._end_publisher(call, call.publisher, reason)
        if reason in (EndReason.HANG_UP, EndReason.ENDED):
            await self._end_call(call, LeaveReason.CALL_ENDED)
        return True

    async def end_call(self, call_id: str) -> None:
        """The application ends the call (its incident closed): everyone leaves."""
        call = self._calls.get(call_id)
        if call is None:
            return
        if call.publisher is not None:
            await self._end_publisher(call, call.publisher, EndReason.ENDED)
        await self._end_call(call, LeaveReason.CALL_ENDED)

    async def leave(self, call_id: str, viewer_id: str, reason: LeaveReason) -> bool:
        call = self._calls.get(call_id)
        viewer = call.viewers.get(viewer_id) if call else None
        if call is None or viewer is None:
            return False
        await self._end_viewer(call, viewer, reason)
        return True

    async def close(self) -> None:
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        for call in list(self._calls.values()):
            if call.publisher is not None:
                await self._end_publisher(call, call.publisher, EndReason.SHUTDOWN)
            await self._end_call(call, LeaveReason.SHUTDOWN)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- inside ---------------------------------------------------------------------

    def _is_live(self, call: _Call) -> bool:
        return self._calls.get(call.id) is call and call.publisher is not None

    def _new_call(self, call_id: str) -> _Call:
        def keyframe() -> None:
            self._request_keyframe(call)

        call = _Call(call_id, Fanout("video", on_gap=keyframe), Fanout("audio"), Fanout("audio"))
        self._calls[call_id] = call
        return call

    def _drop_call(self, call: _Call) -> None:
        call.video.close()
        call.audio.close()
        call.back.close()
        if self._calls.get(call.id) is call:
            del self._calls[call.id]

    def _deliverer(
        self, call: _Call, publisher: _Publisher, fanout: Fanout
    ) -> Callable[[EncodedFrame | None], None]:
        loop = asyncio.get_running_loop()

        def deliver(frame: EncodedFrame | None) -> None:
            if frame is None or publisher.ending:
                return
            publisher.last_heard = loop.time()
            fanout.push(frame)

        return deliver

    def _heard(
        self, viewer: _Viewer, deliver: Callable[[EncodedFrame | None], None]
    ) -> Callable[[EncodedFrame | None], None]:
        loop = asyncio.get_running_loop()

        def heard(frame: EncodedFrame | None) -> None:
            if frame is not None and not viewer.ending:
                viewer.last_heard = loop.time()
                deliver(frame)

        return heard

    def _hook_sender(self, call: _Call, viewer: _Viewer, sender: RTCRtpSender) -> None:
        """A viewer's RTCP says it is alive; its key-frame requests go to the citizen
        (the sender cannot make key frames of forwarded video)."""
        handle = sender._handle_rtcp_packet
        loop = asyncio.get_running_loop()

        async def handle_rtcp(packet: Any) -> None:
            viewer.last_heard = loop.time()
            await handle(packet)

        sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]
        sender._send_keyframe = lambda: self._request_keyframe(call)  # type: ignore[method-assign]

    def _request_keyframe(self, call: _Call, *, force: bool = False) -> None:
        publisher = call.publisher
        if publisher is None or "video" not in publisher.receivers:
            return
        now = asyncio.get_running_loop().time()
        if not force and now - call.last_keyframe_request < KEYFRAME_INTERVAL_S:
            return
        call.last_keyframe_request = now
        self._spawn(frames.request_keyframe(publisher.receivers["video"]), "keyframe-request")

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("media task failed: %r", task.exception(), extra={"task": task.get_name()})

    def _on_state(self, pc: RTCPeerConnection, failed: Callable[[], Any]) -> None:
        @pc.on("connectionstatechange")
        def changed() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._spawn(failed(), "peer-failed")

    async def _publisher_failed(self, call: _Call, publisher: _Publisher) -> None:
        if call.publisher is publisher and not publisher.ending:
            await self._end_publisher(call, publisher, EndReason.FAILED)

    async def _viewer_failed(self, call: _Call, viewer: _Viewer) -> None:
        if call.viewers.get(viewer.id) is viewer and not viewer.ending:
            await self._end_viewer(call, viewer, LeaveReason.FAILED)

    async def _end_publisher(self, call: _Call, publisher: _Publisher, reason: EndReason) -> None:
        if publisher.ending:
            return
        publisher.ending = True
        if call.publisher is publisher:
            call.publisher = None
            call.without_publisher_since = asyncio.get_running_loop().time()
        for fanout, subscription in publisher.subscriptions:
            fanout.unsubscribe(subscription)
        try:
            await _close(publisher.pc)
        finally:
            recording = await publisher.recorder.close()
            ended = SessionEnded(
                call_id=call.id, session_id=publisher.id, reason=reason,
                started_at=publisher.started_at, ended_at=_now(),
                connected=publisher.last_heard is not None, recording=recording,
            )  # fmt: skip
            logger.info(
                "call session ended",
                extra={"call_id": call.id, "session_id": publisher.id, "reason": reason.value},
            )
            await self._observer.session_ended(ended)
            if call.publisher is None and not call.viewers and reason is not EndReason.REPLACED:
                self._drop_call(call)

    async def _close_viewer(self, viewer: _Viewer) -> None:
        viewer.ending = True
        for fanout, subscription in viewer.subscriptions:
            fanout.unsubscribe(subscription)
        await _close(viewer.pc)

    async def _end_viewer(self, call: _Call, viewer: _Viewer, reason: LeaveReason) -> None:
        if viewer.ending:
            return
        call.viewers.pop(viewer.id, None)
        await self._close_viewer(viewer)
        logger.info(
            "viewer left",
            extra={"call_id": call.id, "viewer_id": viewer.id, "reason": reason.value},
        )
        await self._observer.viewer_left(ViewerLeft(call.id, viewer.id, reason))
        if call.publisher is None and not call.viewers:
            self._drop_call(call)

    async def _end_call(self, call: _Call, reason: LeaveReason) -> None:
        for viewer in list(call.viewers.values()):
            await self._end_viewer(call, viewer, reason)
        if call.publisher is None:
            self._drop_call(call)

    async def _watch(self) -> None:
        """End what has gone quiet: citizens and viewers not heard from, and viewers of
        a call whose citizen did not come back within the re-offer window."""
        loop = asyncio.get_running_loop()
        config = self._config
        while True:
            await asyncio.sleep(config.check_interval_s)
            now = loop.time()
            for call in list(self._calls.values()):
                try:
                    publisher = call.publisher
                    if publisher is not None:
                        heard = publisher.last_heard or publisher.started
                        if now - heard > config.peer_timeout_s:
                            await self._end_publisher(call, publisher, EndReason.VANISHED)
                    for viewer in list(call.viewers.values()):
                        if now - viewer.last_heard > config.peer_timeout_s:
                            await self._end_viewer(call, viewer, LeaveReason.VANISHED)
                    since = call.without_publisher_since
                    if (
                        call.publisher is None
                        and since is not None
                        and now - since > config.reoffer_window_s
                    ):
                        await self._end_call(call, LeaveReason.CALL_ENDED)
                except Exception:
                    logger.exception("media watchdog failed on a call", extra={"call_id": call.id})
