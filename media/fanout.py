"""One stream of a call handed to each of its consumers, encoded, with bounded memory.

Each consumer (a viewer's sender, the recorder, the citizen's back channel) has its
own bounded queue (the recorder's is inside the recorder, fed at once on the event
loop): a slow or dead one drops its own frames (a video consumer then waits for the
next key frame, and one is asked for) and never holds up the others or grows without
bound (the stock relay's bug: ~14 MB/s per call queued for a dead recorder).  Frames
are immutable values, so sharing one among consumers is safe (the stock relay's other
bug: PyAV rewriting a shared frame's pts in place).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.frames import EncodedFrame

logger = logging.getLogger(__name__)

# One frame's worth of time, to keep timestamps rising when the source changes.
_STEP = {"video": 3000, "audio": 960}


@functools.cache
def _time_base(clock_rate: int) -> Fraction:
    return Fraction(1, clock_rate)


class Subscription:
    """A consumer's bounded queue of frames, or, with `consumer`, a consumer that takes
    each frame at once on the event loop and bounds its own queue (the recorder): no
    task, future and wake-up per frame."""

    def __init__(
        self,
        kind: str,
        limit: int,
        on_gap: Callable[[], None],
        consumer: Callable[[EncodedFrame], None] | None = None,
    ) -> None:
        self.kind = kind
        self._consumer = consumer
        self._items: deque[EncodedFrame] = deque()
        self._limit = limit
        self._on_gap = on_gap
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        # Video starts at a key frame, and starts again at one after a gap.
        self._need_keyframe = kind == "video"
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, frame: EncodedFrame) -> None:
        if self._closed:
            return
        if self._need_keyframe:
            if not frame.keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
        if self._consumer is not None:
            try:
                self._consumer(frame)
            except Exception:  # a consumer's fault must not stop the packets' path
                self.dropped += 1
                logger.exception("a media consumer failed on a frame")
            return
        if len(self._items) >= self._limit:
            self.dropped += len(self._items)
            self._items.clear()
            if self.kind == "video":
                # What is queued is useless without what was dropped: restart at a
                # key frame (and ask for one now rather than wait for the next).
                self._need_keyframe = not frame.keyframe
                if self._need_keyframe:
                    self.dropped += 1
                    self._on_gap()
                    return
        self._items.append(frame)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> EncodedFrame | None:
        """The next frame, or None once closed."""
        while not self._items:
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def close(self) -> None:
        self._closed = True
        self._items.clear()
        self._wake()


class Fanout:
    """One stream (video, audio, or the dispatcher's voice) from its current source to
    every subscription.  Timestamps keep rising when the source changes (a citizen who
    reconnects), so viewers' decoders carry on."""

    def __init__(self, kind: str, on_gap: Callable[[], None] = lambda: None) -> None:
        self.kind = kind
        self._on_gap = on_gap
        self._subscriptions: list[Subscription] = []
        self._offset = 0
        self._last_pts: int | None = None
        self._rebase = False
        self.frames = 0

    def subscribe(self, limit: int) -> Subscription:
        """A queue of at most `limit` frames, read with `get()`."""
        return self._add(Subscription(self.kind, limit, self._on_gap))

    def attach(self, consumer: Callable[[EncodedFrame], None]) -> Subscription:
        """`consumer` gets each frame at once, on the event loop; it must not block."""
        return self._add(Subscription(self.kind, 0, self._on_gap, consumer))

    def _add(self, subscription: Subscription) -> Subscription:
        self._subscriptions.append(subscription)
        if self.kind == "video":
            self._on_gap()  # a new viewer or recording starts at a fresh key frame
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def new_source(self) -> None:
        """The next frame comes from another sender, whose timestamps start anew."""
        self._rebase = True

    def push(self, frame: EncodedFrame | None) -> None:
        if frame is None:
            return  # a source ended; its owner decides what that means for the call
        if self._rebase or self._last_pts is None:
            start = 0 if self._last_pts is None else self._last_pts + _STEP[self.kind]
            self._offset = start - frame.pts
            self._rebase = False
        pts = frame.pts + self._offset
        if self._last_pts is not None and pts < self._last_pts:
            pts = self._last_pts  # never backwards (a reordered audio packet)
        self._last_pts = pts
        self.frames += 1
        out = frame if pts == frame.pts else frame.with_pts(pts)
        for subscription in self._subscriptions:
            subscription.offer(out)

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()


class ForwardedTrack(MediaStreamTrack):
    """A track whose frames are already encoded: the sender packetises them as they are
    (aiortc's pre-encoded path), so NACK and retransmission towards the viewer work."""

    def __init__(self, subscription: Subscription) -> None:
        super().__init__()
        self.kind = subscription.kind
        self._subscription = subscription

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._subscription.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        packet = av.Packet(frame.data)
        packet.pts = frame.pts
        packet.dts = frame.pts
        packet.time_base = _time_base(frame.clock_rate)
        return packet

    def stop(self) -> None:
        self._subscription.close()
        super().stop()
