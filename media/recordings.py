"""What a finished recording is, its hash, and what a file holds read back: all the
application needs of recordings, without the muxer (`media.recorder`, which loads PyAV
and aiortc: a server that starts should not wait for them; `probe_recording` imports
PyAV only when there is a file to read)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

MEDIA_TYPE = "video/webm"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recording:
    """A finished recording: what the evidence row holds."""

    path: Path
    sha256: str
    size: int
    duration_s: float
    codecs: tuple[str, ...]
    video_frames: int
    audio_packets: int
    width: int | None
    height: int | None
    dropped: int


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def probe_recording(path: Path) -> Recording:
    """What a recording holds, read back from the file (after a crash, the muxer never
    wrote its duration).  Blocking."""
    import av  # here: PyAV takes a while to import, and most starts recover nothing

    sha256, size = file_sha256(path)
    video_frames = audio_packets = 0
    duration = Fraction(0)
    codecs: list[str] = []
    width = height = None
    with av.open(str(path)) as container:
        for stream in container.streams:
            codecs.append(
                "VP8" if stream.codec_context.name == "vp8" else stream.codec_context.name
            )
            if stream.type == "video":
                context: Any = stream.codec_context
                width, height = context.width, context.height
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None or packet.size == 0:
                continue
            duration = max(duration, packet.pts * packet.time_base)
            if packet.stream.type == "video":
                video_frames += 1
            else:
                audio_packets += 1
    return Recording(
        path=path, sha256=sha256, size=size, duration_s=round(float(duration), 3),
        codecs=tuple(codecs), video_frames=video_frames, audio_packets=audio_packets,
        width=width, height=height, dropped=0,
    )  # fmt: skip


async def read_back(path: Path) -> Recording | None:
    """`probe_recording` in a thread for a session whose end its process never reported
    (the node or its media process killed): None when no file was started (no key frame
    came) or the file cannot be read (logged), so the end is recorded all the same."""
    return await asyncio.get_running_loop().run_in_executor(None, _probe_if_readable, path)


def _probe_if_readable(path: Path) -> Recording | None:
    if not path.exists():
        return None
    import av  # (imported only when there is a recording to read)

    try:
        return probe_recording(path)
    except (av.FFmpegError, OSError):
        logger.exception("unreadable recording", extra={"path": str(path)})
        return None
