"""What a `MediaServer` is built with (no aiortc here: the application builds it
before the media is loaded, and sends it to media processes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from media.network import IceServer


@dataclass(frozen=True, slots=True)
class MediaConfig:
    recordings_dir: Path
    ice_servers: tuple[IceServer, ...] = ()
    max_calls: int = 60
    max_viewers_per_call: int = 8
    peer_timeout_s: float = 6.0  # nothing heard from a peer for this long: it is gone
    reoffer_window_s: float = 60.0  # viewers wait this long for a citizen to reconnect
    check_interval_s: float = 1.0
    # The audio packet time asked of the browsers (a=ptime in the answers), ms; 0: theirs
    # (20 ms).  See `media.offers.with_audio_ptime`.
    audio_ptime_ms: int = 60
