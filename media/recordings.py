"""What a finished recording is, and its hash: all the application needs of recordings,
without the muxer (`media.recorder`, which loads PyAV and aiortc: a server that starts
should not wait for them)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

MEDIA_TYPE = "video/webm"


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
