"""The media loaded beside the first requests, not before them.

Importing aiortc and PyAV (and everything they pull in) is ~0.2 s of CPU, several times
that on a busy machine, and until a node's first call there is no media to serve: a
node that restarts accepts alarms first.  `DeferredMedia` is the `CallMedia` the
application holds from the start; `start()` imports the modules in a worker thread (the
event loop goes on serving) and then builds the real one.  A call that comes before
that waits for it; the questions that need no media answer at once (before the real
one exists, this node carries no call).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from media.interface import (
    Answer,
    CallMedia,
    CallObserver,
    EndReason,
    LeaveReason,
    MediaStats,
    check_call_limit,
)

logger = logging.getLogger(__name__)


class StartableMedia(CallMedia, Protocol):
    """A `CallMedia` that is told whom to report to, then started (`MediaServer`)."""

    def attach(self, observer: CallObserver) -> None: ...

    def start(self) -> None: ...


class DeferredMedia:
    """Implements `CallMedia` by `build()`, called once `modules` are imported."""

    def __init__(
        self,
        build: Callable[[], StartableMedia],
        *,
        modules: Sequence[str],
        max_calls: int,
    ) -> None:
        self._build = build
        self._modules = tuple(modules)
        self._max_calls = max_calls
        self._observer: CallObserver | None = None
        self._media: StartableMedia | None = None
        self._loading: asyncio.Task[StartableMedia] | None = None

    def attach(self, observer: CallObserver) -> None:
        self._observer = observer

    def start(self) -> None:
        """Begin loading (in the background); idempotent."""
        if self._loading is None:
            self._loading = asyncio.create_task(self._load(), name="media-load")
            self._loading.add_done_callback(_report_failure)

    async def _load(self) -> StartableMedia:
        for name in self._modules:
            await asyncio.to_thread(importlib.import_module, name)
        media = self._build()
        if self._observer is not None:
            media.attach(self._observer)
        media.start()
        self._media = media
        return media

    async def loaded(self) -> StartableMedia:
        """The real media, once loaded (loading it now if `start()` was not called)."""
        if self._media is not None:
            return self._media
        self.start()
        assert self._loading is not None
        return await asyncio.shield(self._loading)

    # --- CallMedia --------------------------------------------------------------------

    def recording_path(self, call_id: str, session_id: str) -> str:
        if self._media is None:
            raise RuntimeError("the media is not loaded yet (a call publishes first)")
        return self._media.recording_path(call_id, session_id)

    async def publish(self, call_id: str, session_id: str, offer_sdp: str) -> Answer:
        return await (await self.loaded()).publish(call_id, session_id, offer_sdp)

    async def watch(self, call_id: str, viewer_id: str, offer_sdp: str, *, talk: bool) -> Answer:
        return await (await self.loaded()).watch(call_id, viewer_id, offer_sdp, talk=talk)

    async def hang_up(self, call_id: str, session_id: str, reason: EndReason) -> bool:
        if self._media is None:
            return False  # not loaded: no session lives here
        return await self._media.hang_up(call_id, session_id, reason)

    async def leave(self, call_id: str, viewer_id: str, reason: LeaveReason) -> bool:
        if self._media is None:
            return False
        return await self._media.leave(call_id, viewer_id, reason)

    def check_capacity(self, call_id: str | None = None) -> None:
        if self._media is not None:
            self._media.check_capacity(call_id)
        else:  # as `MediaServer` says it with no call live
            check_call_limit(0, self._max_calls)

    def live_session(self, call_id: str) -> str | None:
        return None if self._media is None else self._media.live_session(call_id)

    def live_calls(self) -> int:
        return 0 if self._media is None else self._media.live_calls()

    async def stats(self) -> MediaStats:
        if self._media is None:
            return MediaStats(
                calls=0, viewers=0, packets_received=0, packets_lost=0, video_frames=0,
                audio_frames=0, frames_recorded=0, recorder_dropped=0,
                viewer_frames_dropped=0, packets_sent_to_viewers=0,
            )  # fmt: skip
        return await self._media.stats()

    async def close(self) -> None:
        loading, self._loading = self._loading, None
        if loading is not None and not loading.done():
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
        if self._media is not None:
            await self._media.close()


def _report_failure(task: asyncio.Task[StartableMedia]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.error("the media could not be loaded: calls will fail", exc_info=exc)
