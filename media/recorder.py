"""Recording the citizen's encoded VP8 and Opus into WebM as they arrive.

No transcoding: the original bits go into the container.  The muxer flushes every
packet and closes a cluster every half second, so a recording stays readable (up to
the last half second) if the process is killed mid-call; a WebM that was closed
properly also carries its duration and cues.

Muxing and disk writes run in one thread per recording, fed through a bounded queue:
neither a slow disk nor the muxer ever blocks the event loop, and a recorder that
falls behind drops (and counts) rather than queueing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from media.frames import EncodedFrame, vp8_size
from media.recordings import MEDIA_TYPE as MEDIA_TYPE
from media.recordings import Recording as Recording
from media.recordings import file_sha256 as file_sha256

logger = logging.getLogger(__name__)

# Audio that arrives before the first video key frame is kept (up to ~5 s of it) and
# written once the video track's size is known.
_EARLY_AUDIO = 250
_QUEUE = 2000
_BATCH_S = 0.1
_MILLI = Fraction(1, 1000)


class _Handoff:
    """A bounded queue from the event loop to the recorder's thread; `put` never
    blocks (it refuses when full), `take` waits for what there is and takes it all.
    The thread is woken only when the queue was empty, and writes in batches (every
    `_BATCH_S`): a wake-up per frame, times every call, is that many thread switches
    fighting the event loop for the GIL."""

    def __init__(self, limit: int) -> None:
        self._items: deque[tuple[EncodedFrame, float] | None] = deque()
        self._limit = limit
        self._ready = threading.Condition()

    def put(self, item: tuple[EncodedFrame, float] | None, *, force: bool = False) -> bool:
        with self._ready:
            if not force and len(self._items) >= self._limit:
                return False
            self._items.append(item)
            if len(self._items) == 1:
                self._ready.notify()
            return True

    def take(self) -> list[tuple[EncodedFrame, float] | None]:
        with self._ready:
            while not self._items:
                self._ready.wait()
            items = list(self._items)
            self._items.clear()
            return items


class WebmRecorder:
    """Writes one recording segment; `write` from the event loop, `close` at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue = _Handoff(_QUEUE)
        self._thread = threading.Thread(target=self._run, name=f"recorder-{path.stem}")
        self._started = time.monotonic()
        self._dropped = 0
        self._video_frames = 0
        self._audio_packets = 0
        self._size: tuple[int, int] | None = None
        self._duration = 0.0
        self._codecs: list[str] = []
        self._failed: BaseException | None = None
        self._thread.start()

    @property
    def video_frames(self) -> int:
        """Video frames written so far."""
        return self._video_frames

    @property
    def dropped(self) -> int:
        return self._dropped

    def write(self, frame: EncodedFrame) -> None:
        if not self._queue.put((frame, time.monotonic() - self._started)):
            self._dropped += 1

    async def close(self) -> Recording | None:
        """Finish the file; None when nothing was recorded (no video key frame came)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._finish)
        if self._failed is not None:
            logger.error("recording failed: %s", self._failed, extra={"path": str(self.path)})
        if not self.path.exists():
            return None
        sha256, size = await loop.run_in_executor(None, file_sha256, self.path)
        return Recording(
            path=self.path, sha256=sha256, size=size, duration_s=round(self._duration, 3),
            codecs=tuple(self._codecs), video_frames=self._video_frames,
            audio_packets=self._audio_packets,
            width=self._size[0] if self._size else None,
            height=self._size[1] if self._size else None, dropped=self._dropped,
        )  # fmt: skip

    def _finish(self) -> None:
        self._queue.put(None, force=True)
        self._thread.join()

    def _run(self) -> None:
        container: Any = None
        streams: dict[str, Any] = {}
        early_audio: list[tuple[EncodedFrame, float]] = []
        # Each stream's timestamps start where its first frame arrived in the segment,
        # so audio and video stay together.
        origin: dict[str, tuple[int, float]] = {}
        try:
            for item in self._batches():
                frame, arrived = item
                if container is None:
                    if frame.kind == "audio":
                        early_audio.append(item)
                        del early_audio[:-_EARLY_AUDIO]
                        continue
                    size = vp8_size(frame.data) if frame.codec == "VP8" else None
                    if size is None:
                        continue  # wait for a key frame: its header gives the size
                    container, streams = self._open(size, audio=True)
                    self._size = size
                    for early in early_audio:
                        self._mux(container, streams, origin, *early)
                    early_audio.clear()
                self._mux(container, streams, origin, frame, arrived)
        except Exception as exc:  # noqa: BLE001 - kept for close() to report; the call goes on
            self._failed = exc
            for _ in self._batches():  # drain until closed, so writers never block
                pass
        finally:
            if container is not None:
                with contextlib.suppress(av.FFmpegError, OSError):
                    container.close()

    def _batches(self) -> Iterator[tuple[EncodedFrame, float]]:
        """The frames written to this recorder, in order, until it is closed."""
        while True:
            for item in self._queue.take():
                if item is None:
                    return
                yield item
            time.sleep(_BATCH_S)  # let a batch gather (the file is flushed per batch)

    def _open(self, size: tuple[int, int], *, audio: bool) -> tuple[Any, dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(
            str(self.path), mode="w", format="webm",
            options={"flush_packets": "1", "cluster_time_limit": "500"},
        )  # fmt: skip
        video = container.add_stream("vp8", rate=30)
        video.width, video.height = size
        streams: dict[str, Any] = {"video": video}
        self._codecs.append("VP8")
        if audio:
            streams["audio"] = container.add_stream("opus", rate=48000)
            self._codecs.append("opus")
        return container, streams

    def _mux(
        self,
        container: Any,
        streams: dict[str, Any],
        origin: dict[str, tuple[int, float]],
        frame: EncodedFrame,
        arrived: float,
    ) -> None:
        stream = streams.get(frame.kind)
        if stream is None:
            return
        first_pts, first_at = origin.setdefault(frame.kind, (frame.pts, arrived))
        pts = frame.pts - first_pts + round(first_at * frame.clock_rate)
        packet = av.Packet(frame.data)
        packet.stream = stream
        packet.time_base = Fraction(1, frame.clock_rate)
        packet.pts = packet.dts = pts
        packet.is_keyframe = frame.keyframe
        try:
            container.mux(packet)  # (rescales the packet to the stream's time base)
        except av.FFmpegError:  # one bad packet (a timestamp out of order): skip it
            self._dropped += 1
            return
        self._duration = max(self._duration, pts / frame.clock_rate)
        if frame.kind == "video":
            self._video_frames += 1
        else:
            self._audio_packets += 1
