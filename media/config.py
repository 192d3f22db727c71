"""What a `MediaServer` is built with (no aiortc here: the application builds it
before the media is loaded, and sends it to media processes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from media.network import IceServer

# Opus milliseconds a browser can be asked to put in one packet (RFC 7587: up to 120),
# or 0: ask nothing.
AUDIO_PTIMES_MS = (0, 20, 40, 60, 120)


@dataclass(frozen=True, slots=True)
class MediaConfig:
    recordings_dir: Path
    ice_servers: tuple[IceServer, ...] = ()
    max_calls: int = 60
    max_viewers_per_call: int = 8
    peer_timeout_s: float = 6.0  # nothing heard from a peer for this long: it is gone
    reoffer_window_s: float = 60.0  # viewers wait this long for a citizen to reconnect
    check_interval_s: float = 1.0
    # The audio packet time asked of the browsers (a=ptime in the answers), ms; one of
    # AUDIO_PTIMES_MS, 0: theirs (20 ms).  See `media.offers.with_audio_ptime`.
    audio_ptime_ms: int = 60
    # With a directory, SIGUSR1 to a media process starts cProfile and the next writes
    # `media-<pid>.prof` there (`media.process_main.profile_on_signal`).
    profile_dir: Path | None = None
