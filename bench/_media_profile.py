"""Where a media process's CPU goes, measured with cProfile (MICRO110_MEDIA_PROFILE_DIR).

cProfile is deterministic: every call is counted, and the paths a packet takes can be
added up.  It makes small Python functions look dearer than they are (its cost per call),
so read its shares as an upper bound for the interpreter's work and a lower bound for the
kernel's (`sendto`, `recvfrom`).  The sampling profiler py-spy, the other choice, was
misleading here: it put 12% of a media process in aiortc's bandwidth estimator and 5% in
the recorder's hand-off, and making both cheaper changed nothing measurable.
"""

from __future__ import annotations

import asyncio
import os
import pstats
import signal
from collections.abc import Sequence
from pathlib import Path

# The ways a packet goes through a media process, by the function at their top:
# (label, file suffix, function name); shares are cumulative, so they overlap.
PATHS = (
    ("receive: SRTP/RTCP in, all of it", "aiortc/rtcdtlstransport.py", "_recv_next"),
    ("  an RTP packet to its receiver", "aiortc/rtcrtpreceiver.py", "_handle_rtp_packet"),
    ("    bandwidth estimate (REMB)", "aiortc/rate.py", "add"),
    ("    jitter buffer", "aiortc/jitterbuffer.py", "add"),
    ("    frames to the recorder and viewers", "media/fanout.py", "push"),
    ("  RTP parse", "aiortc/rtp.py", "parse"),
    ("send: to the viewers, all of it", "aiortc/rtcrtpsender.py", "_run_rtp"),
    ("  the next frame, packetised", "aiortc/rtcrtpsender.py", "_next_encoded_frame"),
    ("  SRTP and the socket", "aiortc/rtcdtlstransport.py", "_send_rtp"),
    ("reading sockets", "media/network.py", "_read_ready"),
    ("the kernel: sendto", "~", "<method 'sendto' of '_socket.socket' objects>"),
    ("the kernel: recvfrom", "~", "<method 'recvfrom' of '_socket.socket' objects>"),
    ("the kernel: epoll (and waiting)", "~", "<method 'poll' of 'select.epoll' objects>"),
)


async def profile(pids: Sequence[int], directory: Path, seconds: float) -> list[Path]:
    """Profile the media processes `pids` for `seconds`; their stats files."""
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)
    await asyncio.sleep(seconds)
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)
    files = [directory / f"media-{pid}.prof" for pid in pids]
    for _ in range(50):
        if all(f.exists() for f in files):
            break
        await asyncio.sleep(0.1)
    return [f for f in files if f.exists()]


def report(files: Sequence[Path], top: int = 15) -> str:
    """The paths' shares of the profiled time and the dearest functions by own time."""
    if not files:
        return "profile: no media process wrote one"
    stats = pstats.Stats(*(str(f) for f in files))
    table = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = [f"profile of {len(files)} media process(es), {total:.2f} s of their main threads:"]
    for label, suffix, name in PATHS:
        cumulative = sum(
            entry[3] for (path, _, function), entry in table.items()
            if function == name and path.endswith(suffix)
        )  # fmt: skip
        lines.append(f"  {100 * cumulative / total:5.1f}%  {label}")
    lines.append("  dearest by own time:")
    ranked = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (path, line, function), (_, calls, own, _, _) in ranked:
        where = "/".join(Path(path).parts[-2:]) + f":{line}" if path != "~" else ""
        lines.append(f"  {100 * own / total:5.1f}%  {calls:>8} calls  {function} {where}")
    return "\n".join(lines)
