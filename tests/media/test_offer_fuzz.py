"""Mutated SDP offers into the media core: every one is answered or refused in words.

aiortc's parser is lenient and its negotiation fails on odd input with whatever
exception the line it reached raises.  Starting from real offers (Chromium's, an aiortc
phone's and an aiortc console's), hypothesis deletes, repeats, swaps and rewrites lines and their
values; `publish` and `watch` must give an answer or one of the interface's refusals
(`MediaRefused`: the HTTP layer's 4xx), never another exception (a 500), and leave no
call, reservation or connection behind.
"""

from __future__ import annotations

import itertools
import os
import threading
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media.interface import EndReason, LeaveReason, MediaRefused, NoLiveCall
from media.server import MediaConfig, MediaServer
from tests.media.peers import Console, Phone, wait_for

CHROMIUM_OFFER = (
    Path(__file__).parent.parent / "fixtures" / "media" / "chromium-offer.sdp"
).read_text()

# Values that have broken SDP parsers: empty, signs, huge, not numbers, not text.
NASTY = [
    "", " ", "0", "-1", "65536", "4294967296", "99999999999999999999999", "1e309", "NaN",
    "x", ":", "/", "=", "IN IP4", "UDP/TLS/RTP/SAVPF", "sha-256", "AA:BB", "\x00", "é", "😀",
    "a" * 300, "111 111 111", "0.0.0.0", "::1", "300.1.1.1", "recvonly", "inactive",  # noqa: S104
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, offer: str) -> str:
    lines = offer.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "repeat", "swap", "value", "token", "cut"]))
        line = lines[index]
        if action == "delete":
            del lines[index]
        elif action == "repeat":
            lines.insert(index, line)
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], line
        elif action == "value":  # what follows "=" or the attribute's ":"
            head, sep, _ = line.partition(":") if line.startswith("a=") else line.partition("=")
            lines[index] = head + (sep or "=") + draw(st.sampled_from(NASTY))
        elif action == "token":
            tokens = line.split(" ")
            at = draw(st.integers(0, len(tokens) - 1))
            tokens[at] = draw(st.sampled_from(NASTY) | st.text(max_size=12))
            lines[index] = " ".join(tokens)
        else:
            lines[index] = line[: draw(st.integers(0, len(line)))]
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture
async def media(tmp_path: Path) -> AsyncIterator[MediaServer]:
    server = MediaServer(MediaConfig(recordings_dir=tmp_path, max_calls=4, peer_timeout_s=3600.0))
    yield server
    await server.close()


ids = itertools.count()
# A deeper search off CI, as for the HTTP fuzz: MICRO110_FUZZ_EXAMPLES=2000
# MICRO110_FUZZ_RANDOM=1 (new draws each run); MICRO110_FUZZ_DEBUG=1 prints tracebacks.
EXAMPLES = int(os.environ.get("MICRO110_FUZZ_EXAMPLES", "150"))
RANDOM = os.environ.get("MICRO110_FUZZ_RANDOM") == "1"
DEBUG = os.environ.get("MICRO110_FUZZ_DEBUG") == "1"


@pytest.mark.timeout(max(240, EXAMPLES // 2))
async def test_mutated_offers_are_answered_or_refused(media: MediaServer) -> None:
    phone = Phone()
    base = {"chromium": CHROMIUM_OFFER, "aiortc": await phone.offer()}
    await phone.close()
    console = Console(talk=True)
    viewer_offer = await console.offer()
    await console.close()
    # A live call to watch: answered, its media never connects (it still stands).
    live = await media.publish("live", "s0", CHROMIUM_OFFER)
    assert live.sdp.startswith("v=0")
    examples: list[tuple[str, str, str]] = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.sampled_from(["chromium", "aiortc", "viewer"]).flatmap(
        lambda name: st.tuples(
            st.just(name), mutated(viewer_offer if name == "viewer" else base[name])
        )
    ))  # fmt: skip
    def draw(case: tuple[str, str]) -> None:
        examples.append((case[0], case[1], f"c{next(ids)}"))

    draw()  # hypothesis draws synchronously; the examples then run on the test's loop

    def recorders() -> int:
        return sum(t.name.startswith("recorder-") for t in threading.enumerate())

    recording = recorders()  # the live call's
    process = psutil.Process()
    fds = process.num_fds()
    unexpected: list[str] = []
    answered = refused = 0
    for name, offer, call_id in examples:
        try:
            if name == "viewer":
                await media.watch("live", call_id, offer, talk=True)
                await media.leave("live", call_id, LeaveReason.LEFT)
            else:
                await media.publish(call_id, "s", offer)
                assert await media.hang_up(call_id, "s", EndReason.HANG_UP)
            answered += 1
        except MediaRefused:
            refused += 1
        except Exception as exc:  # the finding, reported below
            if DEBUG:
                traceback.print_exc()
            where = traceback.extract_tb(exc.__traceback__)[-1]
            unexpected.append(
                f"{name}: {type(exc).__name__}: {exc} at {where.filename}:{where.lineno}\n{offer}"
            )
    shown = "\n\n".join(sorted(unexpected)[:3])
    assert not unexpected, f"{len(unexpected)} offer(s) raised:\n{shown}"
    assert answered and refused, (answered, refused)
    # Nothing left behind: the one live call, no reservation, no viewer.
    assert media.live_calls() == 1 and media.viewers("live") == []
    assert media._reserved == 0  # the capacity count returns to 0
    # Every refused publish closed its recorder: no thread left waiting for frames.
    await wait_for(lambda: recorders() == recording, within=10, what="recorders to end")
    # ... and every connection its sockets (each answer bound some).
    await wait_for(lambda: process.num_fds() <= fds, within=10, what="sockets to close")
    with pytest.raises(NoLiveCall):
        await media.watch("gone", "v", viewer_offer, talk=False)
