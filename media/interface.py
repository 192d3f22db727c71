"""The line between the application and the media: what `dispatch` asks of `media`,
and what `media` tells `dispatch` back.

`dispatch` knows a call only by an id (the incident's) and SDP text; `media` knows
nothing of incidents, users or the database.  `MediaServer` (aiortc, on one event loop)
implements `CallMedia`, and so does `MediaProcesses` (several `MediaServer`s in media
processes, the node's default); an SFU such as LiveKit or mediasoup could implement it too
(publish and watch become WHIP/WHEP or the SFU's own signalling, and recordings come
from its egress), with the rest of the application unchanged.  See docs/calls.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from media.recordings import Recording

logger = logging.getLogger(__name__)


class EndReason(StrEnum):
    HANG_UP = "hang_up"  # the citizen hung up (DELETE)
    REPLACED = "replaced"  # the citizen offered again (a new segment)
    VANISHED = "vanished"  # no media from the citizen for the timeout
    FAILED = "failed"  # the connection failed or closed
    ENDED = "ended"  # the application ended the call (the incident closed)
    SHUTDOWN = "shutdown"  # the server is stopping


class LeaveReason(StrEnum):
    LEFT = "left"  # the viewer hung up (DELETE)
    VANISHED = "vanished"
    FAILED = "failed"
    CALL_ENDED = "call_ended"
    SHUTDOWN = "shutdown"


class MediaRefused(Exception):
    """An offer or a request the media side refuses; nothing was kept."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadOffer(MediaRefused):
    """The SDP is malformed, too large, lacks video, or shares no codec with us."""


class NoLiveCall(MediaRefused):
    """Nobody is sending media on this call now."""


class AtCapacity(MediaRefused):
    """This node carries as many calls (or viewers) as it is allowed."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def check_call_limit(calls: int, max_calls: int) -> None:
    """`AtCapacity` when `calls` (live and being set up) leave no room for a new one."""
    if calls >= max_calls:
        raise AtCapacity(
            f"this server carries its limit of {max_calls} video calls", retry_after_s=30
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """The SDP answer to an offer, and the id of what it created (session or viewer)."""

    id: str
    sdp: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    call_id: str
    session_id: str
    reason: EndReason
    started_at: datetime
    ended_at: datetime
    connected: bool  # media arrived at least once
    recording: Recording | None  # None when no video key frame ever arrived


@dataclass(frozen=True, slots=True)
class ViewerLeft:
    call_id: str
    viewer_id: str
    reason: LeaveReason


@dataclass(frozen=True, slots=True)
class MediaStats:
    """Where the live calls' media went, summed over them (counts since each session or
    viewer started): what the citizens' RTP brought, what became frames, what the
    recorders and the viewers got, and what was dropped on the way."""

    calls: int
    viewers: int
    packets_received: int  # RTP from citizens, video and audio (retransmissions included)
    packets_lost: int  # missing from the citizens' sequence numbers
    video_frames: int  # whole video frames reassembled from the citizens' packets
    audio_frames: int
    frames_recorded: int  # video frames the recorders wrote
    recorder_dropped: int  # frames a recorder refused (its queue full, or unmuxable)
    viewer_frames_dropped: int  # frames a viewer's queue dropped (it fell behind)
    packets_sent_to_viewers: int  # RTP sent to viewers, video and audio


class CallObserver(Protocol):
    """What the application implements: told after the fact, must not raise."""

    async def session_ended(self, ended: SessionEnded) -> None: ...

    async def viewer_left(self, left: ViewerLeft) -> None: ...


class Unobserved:
    """The observer before the application attaches its own: an end is only logged."""

    async def session_ended(self, ended: SessionEnded) -> None:
        logger.info("call session ended, nobody told", extra={"session_id": ended.session_id})

    async def viewer_left(self, left: ViewerLeft) -> None:
        pass


class CallMedia(Protocol):
    """Start a call, watch it, end it; recordings come back through `CallObserver`."""

    def recording_path(self, call_id: str, session_id: str) -> str:
        """Where the segment is recorded, relative to the recordings root."""
        ...

    async def publish(self, call_id: str, session_id: str, offer_sdp: str) -> Answer:
        """The citizen's offer (video and audio to record and forward; the answer
        carries the dispatcher's voice back).  A live session of the same call ends
        (`REPLACED`).  Raises `BadOffer` or `AtCapacity`."""
        ...

    async def watch(self, call_id: str, viewer_id: str, offer_sdp: str, *, talk: bool) -> Answer:
        """A viewer's offer: gets the call's video and audio; with `talk`, the viewer's
        microphone goes to the citizen.  Raises `NoLiveCall`, `BadOffer`, `AtCapacity`."""
        ...

    async def hang_up(self, call_id: str, session_id: str, reason: EndReason) -> bool:
        """End a session (its recording is finished and reported); False if unknown."""
        ...

    async def leave(self, call_id: str, viewer_id: str, reason: LeaveReason) -> bool: ...

    def check_capacity(self, call_id: str | None = None) -> None:
        """`AtCapacity` if a new call (or `call_id`, if not here yet) would be refused."""
        ...

    def live_session(self, call_id: str) -> str | None:
        """The call's live session id on this node, if any."""
        ...

    def live_calls(self) -> int: ...

    async def stats(self) -> MediaStats:
        """Totals over the live calls (for /metrics and the benchmark)."""
        ...

    async def close(self) -> None:
        """End everything (`SHUTDOWN`) and release every connection and thread."""
        ...
