"""The media loaded beside the first requests (media/deferred.py): before it exists the
questions that need no media are answered at once, a call waits for it, and a server
that starts imports neither aiortc nor PyAV before it serves."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from media.deferred import DeferredMedia, StartableMedia
from media.interface import AtCapacity, EndReason, LeaveReason
from media.server import MediaConfig, MediaServer

ROOT = Path(__file__).resolve().parents[2]


def test_the_application_imports_no_media_library() -> None:
    code = "import sys, dispatch.app; print(sorted({'aiortc', 'av', 'aioice'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


async def test_before_it_is_loaded_nothing_lives_here_and_a_call_waits_for_it(
    tmp_path: Path,
) -> None:
    built: list[MediaServer] = []

    def build() -> StartableMedia:
        server = MediaServer(MediaConfig(recordings_dir=tmp_path, ice_servers=(), max_calls=2))
        built.append(server)
        return server

    media = DeferredMedia(build, modules=["media.server"], max_calls=2)
    assert media.live_calls() == 0 and media.live_session("a") is None
    media.check_capacity()
    assert not await media.hang_up("a", "b", EndReason.HANG_UP)
    assert not await media.leave("a", "b", LeaveReason.LEFT)
    assert (await media.stats()).calls == 0
    with pytest.raises(RuntimeError):
        media.recording_path("a", "b")
    assert built == []
    media.start()
    real = await asyncio.wait_for(media.loaded(), 30)
    assert built == [real]
    assert media.recording_path("a", "b") == real.recording_path("a", "b")
    await media.close()


async def test_no_line_at_all_is_refused_before_it_is_loaded(tmp_path: Path) -> None:
    media = DeferredMedia(lambda: pytest.fail("not built"), modules=[], max_calls=0)
    with pytest.raises(AtCapacity):
        media.check_capacity()
    await media.close()
