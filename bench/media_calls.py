"""Video calls: N phones publishing at once, each watched by one console.

    .venv/bin/python bench/media.py [--calls 50] [--seconds 20] [--procs 2]
    (bench/media.py runs this file, bench/media_calls.py)

Starts PostgreSQL, Redis and one `micro110 serve` (bench/_harness.py).  Load processes
(--procs) each run their share of the calls with aiortc peers: a phone sends a
pre-encoded clip (VP8 640x480 @ 30 fps, ~1 Mbit/s, and Opus; encoded once, so a phone
costs almost no CPU) through `POST /api/calls` + the WHIP-shaped session, and a
commander's console picks it up (WHEP-shaped) and counts the encoded frames it receives
(no decoding on either side).  The server records and forwards every call.

Figures: each viewer's frame rate over the steady window (`--seconds`), offer -> first
frame at the viewer (the console's POST to its first video frame), the server's CPU per
call over the window (% of one core), and, after every phone hung up, each recording
decoded and its frames compared with what the phone sent.

Where the packets went, printed before the figures: RTP packets the phones sent, those
the server's receivers got and missed (its /metrics, `micro110_media_*`), the datagrams
the kernel dropped on the server's and the load processes' UDP sockets (their receive
buffers were full: /proc/net/udp), frames reassembled, recorded and dropped, packets
sent to and received by the viewers; how late the server answers /healthz (its event
loop) and how late the load processes' loops run; how sessions and viewers ended (the
server's log).  The phones answer a key-frame request (PLI) with their clip's next key
frame, as a camera's encoder would.

Goal (issue 15): >= 50 calls with every viewer >= 29 fps, every recording decodable with
>= 98% of the frames sent, offer -> first frame p99 < 300 ms.  The last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import psutil

# The repository first, bench/ last: bench/media.py must not stand in for the `media`
# package (this file also runs directly, as the load processes).
REPO = Path(__file__).resolve().parents[1]
_BENCH = REPO / "bench"
sys.path[:] = [str(REPO)] + [p for p in sys.path if p and Path(p).resolve() not in (REPO, _BENCH)]
sys.path.append(str(_BENCH))

import _media_profile  # noqa: E402
from _harness import (  # noqa: E402
    CpuMeter,
    cluster,
    grid_position,
    login,
    new_citizen,
    percentile_ms,
)
from _media_peers import FastConsole, FastPhone, packetize  # noqa: E402

from dispatch.domain.users import Role  # noqa: E402
from media import frames  # noqa: E402
from media.config import AUDIO_PTIMES_MS  # noqa: E402
from tests.media.peers import Clip, Console, Phone, encode_clip  # noqa: E402

SDP = {"Content-Type": "application/sdp"}
LOAD_NICENESS = 10  # = the node's default MICRO110_MEDIA_NICENESS


async def _one_call(
    http: aiohttp.ClientSession,
    base: str,
    n: int,
    token: str,
    watcher: str,
    clip: Clip,
    chunks: list[list[bytes]] | None,
) -> dict[str, Any]:
    citizen = await new_citizen(http, base, f"bench-phone-{n:05d}")
    headers = {"Authorization": f"Bearer {citizen}"}
    lon, lat = grid_position(n)
    body = {"lon": lon, "lat": lat, "accuracy_m": 10.0, "datum": "wgs84",
            "tag": "robbery", "idempotency_key": f"bench-call-{n:05d}-{token[:6]}"}  # fmt: skip
    async with http.post(f"{base}/api/calls", json=body, headers=headers) as response:
        assert response.status == 201, await response.text()
        call = await response.json()
    phone: Phone | FastPhone = Phone(video_clip=clip) if chunks is None else FastPhone(clip, chunks)
    async with http.post(
        base + call["session_url"], data=await phone.offer(), headers=headers | SDP
    ) as response:
        assert response.status == 201, await response.text()
        await phone.accept(await response.text())
        session = response.headers["Location"]
    console: Console | FastConsole = Console() if chunks is None else FastConsole()
    offer = await console.offer()
    posted = time.perf_counter()
    async with http.post(
        f"{base}/api/incidents/{call['incident_id']}/call/viewers", data=offer,
        headers={"Authorization": f"Bearer {watcher}"} | SDP,
    ) as response:  # fmt: skip
        # 409: the phone's call already ended (on a full machine it can vanish, nothing
        # heard for seconds, before its viewer comes): counted, its viewer gets nothing.
        gone = response.status == 409
        assert response.status == 201 or gone, await response.text()
        if not gone:
            await console.accept(await response.text())
    return {"phone": phone, "console": console, "posted": posted, "session": session,
            "headers": headers, "incident": call["incident_id"], "gone": gone}  # fmt: skip


def udp_drops(pid: int) -> tuple[int, int]:
    """(UDP sockets process `pid` holds, datagrams the kernel dropped on them because
    their receive buffer was full), from /proc/net/udp{,6}'s `drops` column."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    sockets = drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                sockets += 1
                drops += int(fields[-1])
    return sockets, drops


def kernel_udp_errors() -> dict[str, int]:
    """The machine's UDP receive-buffer errors (IPv4 and IPv6) and loopback backlog
    drops (/proc/net/softnet_stat), counters since boot."""
    snmp = Path("/proc/net/snmp").read_text().splitlines()
    udp = [line.split()[1:] for line in snmp if line.startswith("Udp:")]
    v4 = dict(zip(udp[0], map(int, udp[1]), strict=True))
    v6 = dict(line.split() for line in Path("/proc/net/snmp6").read_text().splitlines() if line)
    backlog = sum(
        int(line.split()[1], 16) for line in Path("/proc/net/softnet_stat").read_text().splitlines()
    )
    return {
        "rcvbuf_errors": v4["RcvbufErrors"] + int(v6.get("Udp6RcvbufErrors", 0)),
        "in_errors": v4["InErrors"] + int(v6.get("Udp6InErrors", 0)),
        "backlog_drops": backlog,
    }


async def _loop_lag(samples: list[float]) -> None:
    """How late this process's event loop wakes from a 20 ms sleep."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.02)
        samples.append(loop.time() - before - 0.02)


async def _ledger(calls: list[dict[str, Any]]) -> dict[str, float]:
    """Packets and frames of this process's phones and consoles so far."""
    ledger: dict[str, float] = dict.fromkeys(
        ("phone_packets_sent", "phone_frames_sent", "viewer_packets_received",
         "viewer_packets_lost", "viewer_frames"), 0,
    )  # fmt: skip
    for c in calls:
        if isinstance(c["phone"], FastPhone):
            ledger["phone_packets_sent"] += c["phone"].packets_sent
        else:
            for sender in c["phone"].pc.getSenders():
                for report in (await sender.getStats()).values():
                    if report.type == "outbound-rtp":
                        ledger["phone_packets_sent"] += report.packetsSent
        ledger["phone_frames_sent"] += c["phone"].video.sent
        for receiver in c["console"].pc.getReceivers():
            got, lost = frames.packets_received(receiver)
            ledger["viewer_packets_received"] += got
            ledger["viewer_packets_lost"] += lost
        ledger["viewer_frames"] += c["console"].video.frames
    return ledger


async def load(
    base: str,
    first: int,
    count: int,
    watcher: str,
    seconds: float,
    *,
    hold: bool = False,
    aiortc_peers: bool = False,
) -> None:
    """One load process: `count` calls; prints one JSON line of what it measured.  With
    `hold`, it first prints its packet ledger and waits for a line on stdin before
    hanging up (the parent reads the server's side meanwhile).  The peers are
    bench/_media_peers.py's (aiortc's per-packet path bypassed), or with
    `aiortc_peers` tests/media/peers.py's (aiortc all the way).

    The phones and consoles stand in for peers on other machines: they run at the media
    processes' priority (MICRO110_MEDIA_NICENESS's default), not above them.  (At the
    kernel's idle priority, SCHED_IDLE, they sent half their frames while fanout.py
    ran: the calls' load must be there in full to be measured.)"""
    with contextlib.suppress(OSError):
        os.nice(LOAD_NICENESS)
    loop = asyncio.get_running_loop()
    clip = await loop.run_in_executor(None, encode_clip, 640, 480, 4, 1_000_000)
    chunks = None if aiortc_peers else packetize(clip)
    lag: list[float] = []
    lag_task = asyncio.create_task(_loop_lag(lag))
    async with aiohttp.ClientSession() as http:
        calls = [
            await _one_call(http, base, first + i, watcher, watcher, clip, chunks)
            for i in range(count)
        ]
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.sleep(2)  # settle
        start = time.perf_counter()
        lag.clear()
        await asyncio.sleep(seconds)
        until = time.perf_counter()
        lag_task.cancel()
        fps = [c["console"].video.fps(start, until) for c in calls]
        gaps = []
        for c in calls:
            times = [t for t in c["console"].video.times if start <= t <= until]
            edges = [start, *times, until]
            gaps.append(max(b - a for a, b in itertools.pairwise(edges)))
        first_ms = [
            (c["console"].video.first_at - c["posted"]) * 1000
            if c["console"].video.first_at else None
            for c in calls
        ]  # fmt: skip
        ledger: dict[str, Any] = dict(await _ledger(calls))
        # Where the slowest offers' time to the first frame went (ms from the POST).
        steps = []
        for c, ms in zip(calls, first_ms, strict=True):
            console = c["console"]
            if ms is not None and isinstance(console, FastConsole):
                steps.append([round(ms)] + [
                    round((t - c["posted"]) * 1000) if t else None
                    for t in (console.answered_at, console.connected_at, console.first_packet_at)
                ])  # fmt: skip
        ledger["first_frame_steps"] = sorted(steps, reverse=True)[:3]
        ledger["calls_gone_before_viewer"] = sum(1 for c in calls if c["gone"])
        ledger["udp_sockets"], ledger["udp_drops"] = udp_drops(os.getpid())
        lag.sort()
        ledger["lag_p99_ms"] = round(1000 * lag[int(0.99 * (len(lag) - 1))], 1) if lag else 0
        ledger["lag_max_ms"] = round(1000 * lag[-1], 1) if lag else 0
        ledger["viewer_max_gap_ms"] = round(1000 * max(gaps, default=0))
        if hold:
            print(json.dumps({"ledger": ledger}), flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
        sent: dict[str, int] = {}
        for c in calls:
            async with http.delete(base + c["session"], headers=c["headers"]) as response:
                assert response.status == 200, await response.text()
            sent[c["incident"]] = c["phone"].video.sent
        for c in calls:
            await c["phone"].close()
            await c["console"].close()
    print(
        json.dumps({"fps": fps, "first_ms": first_ms, "sent": sent, "ledger": ledger}), flush=True
    )


def _decoded_frames(path: str) -> tuple[int, int]:
    """(frames decoded, packets the decoder refused) of a recording's video."""
    import av

    decoded = refused = 0
    with av.open(path) as container:
        for packet in container.demux(video=0):
            if packet.size == 0:
                continue
            try:
                decoded += len(packet.decode())
            except av.FFmpegError:
                refused += 1
    return decoded, refused


async def start_calls(
    base: str, calls: int, watcher: str, seconds: float, procs: int = 2, first: int = 0
) -> list[asyncio.subprocess.Process]:
    """`calls` live calls (each watched) held for `seconds` by `procs` load processes;
    returns once every call is up.  Other benchmarks use it (`--calls`) to measure with
    media running; stop them with `stop_calls`."""
    share = [calls // procs + (i < calls % procs) for i in range(procs)]
    started = []
    for count in share:
        if count == 0:
            continue
        started.append(await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--load", base, str(first), str(count), watcher,
            str(seconds), stdout=asyncio.subprocess.PIPE,
        ))  # fmt: skip
        first += count
    for proc in started:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        assert json.loads(line)["ready"], line
    return started


async def stop_calls(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def _probe_health(base: str, samples: list[float]) -> None:
    """GET /healthz every 0.1 s: its latency is mostly the server's event-loop lag."""
    async with aiohttp.ClientSession() as http:
        while True:
            started = time.perf_counter()
            async with http.get(f"{base}/healthz") as response:
                await response.read()
            samples.append(time.perf_counter() - started)
            await asyncio.sleep(0.1)


def media_pids(node: int) -> list[int]:
    """The media processes of the node whose pid is `node` (MICRO110_MEDIA_PROCESSES)."""
    found = []
    for child in psutil.Process(node).children():
        with contextlib.suppress(psutil.Error):  # (one exiting meanwhile)
            if "media.process_main" in " ".join(child.cmdline()):
                found.append(child.pid)
    return found


# A phone sends 30 frames/s; a call recorded at less over a measurement was starved.
FULL_RATE_FPS = 29.0


class MediaWindow:
    """What the server's live calls did over a measurement (for benchmarks run with
    --calls): `await window.start()` before it, `await window.report()` after."""

    def __init__(self, base: str) -> None:
        self._base = base
        self._start: tuple[float, dict[str, float]] = (0.0, {})
        # After report(): whether every call ran at full rate over the window (all
        # still live, >= FULL_RATE_FPS recorded per call, no packet lost).  If not,
        # the machine could not carry the calls beside the benchmark, and a latency
        # compared with a run without calls says nothing about keeping media apart.
        self.full_rate: bool | None = None

    async def _read(self) -> tuple[float, dict[str, float]]:
        async with aiohttp.ClientSession() as http, http.get(f"{self._base}/metrics") as got:
            return time.monotonic(), _media_gauges(await got.text())

    async def start(self) -> None:
        self._start = await self._read()

    async def report(self) -> str:
        """The calls live at the end, and per call and second over the window: the
        packets and video frames the server received, the frames it recorded and the
        packets it sent to viewers (a phone sends ~30 frames/s, ~130 packets/s)."""
        (t0, before), (t1, now) = self._start, await self._read()
        calls = max((before.get("calls", 0) + now.get("calls", 0)) / 2, 1)

        def rate(name: str) -> float:
            return (now.get(name, 0) - before.get(name, 0)) / (t1 - t0) / calls

        lost = now.get("packets_lost", 0) - before.get("packets_lost", 0)
        self.full_rate = (
            now.get("calls", 0) == before.get("calls", 0)
            and rate("frames_recorded") >= FULL_RATE_FPS
            and lost == 0
        )
        return (
            f"{before.get('calls', 0):.0f} -> {now.get('calls', 0):.0f} calls live, "
            f"{now.get('viewers', 0):.0f} viewers; "
            f"over the {t1 - t0:.1f} s measured, per call: received "
            f"{rate('packets_received'):.0f} packets/s and {rate('video_frames'):.1f} "
            f"video frames/s, recorded {rate('frames_recorded'):.1f} frames/s, sent "
            f"{rate('packets_sent_to_viewers'):.0f} packets/s to the viewer; packets lost "
            f"{lost:.0f}; "
            + ("at full rate" if self.full_rate else
               "NOT at full rate: the machine could not carry the calls beside this "
               "benchmark, so its latency against a run without calls is not a measure "
               "of keeping media apart")
        )  # fmt: skip


def _media_gauges(text: str) -> dict[str, float]:
    """The server's micro110_media_* gauges from its /metrics text."""
    found = {}
    for line in text.splitlines():
        if line.startswith("micro110_media_"):
            name, value = line.split()
            found[name.removeprefix("micro110_media_")] = float(value)
    return found


def _print_server_log(path: Path | None) -> None:
    """How the server's call sessions and viewers ended, and its warnings, from its log."""
    ended: Counter[str] = Counter()
    left: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    for line in path.read_text().splitlines() if path else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == "call session ended":
            ended[entry.get("reason", "?")] += 1
        elif entry.get("msg") == "viewer left":
            left[entry.get("reason", "?")] += 1
        elif entry.get("level") in ("warning", "error", "critical"):
            problems[entry.get("msg", "")[:80]] += 1
    print(f"server log: sessions ended {dict(ended)}, viewers left {dict(left)}")
    for message, count in problems.most_common(5):
        print(f"  server {count} x {message}")


def _print_ledger(
    ledgers: list[dict[str, Any]],
    server: dict[str, float],
    server_sockets: int,
    server_drops: int,
    kernel: dict[str, int],
) -> None:
    """Where the packets went: phones -> server -> recorders and viewers (counts since
    each call started, read at the end of the window)."""
    total = {
        k: sum(ledger[k] for ledger in ledgers) for k in ledgers[0] if k != "first_frame_steps"
    }

    def share(part: float, whole: float) -> str:
        return f"{100 * part / whole:.2f}%" if whole else "-"

    received = server.get("packets_received", 0)
    lost = server.get("packets_lost", 0)
    print(
        f"phones sent {total['phone_packets_sent']} RTP packets, {total['phone_frames_sent']} "
        f"video frames; server received {received:.0f} packets, {lost:.0f} missing "
        f"({share(lost, received + lost)}); kernel dropped {server_drops} on the server's "
        f"{server_sockets} UDP sockets"
    )
    print(
        f"server: {server.get('video_frames', 0):.0f} video frames reassembled, "
        f"{server.get('frames_recorded', 0):.0f} recorded ({server.get('recorder_dropped', 0):.0f} "
        f"dropped), {server.get('viewer_frames_dropped', 0):.0f} dropped by viewers' queues, "
        f"{server.get('packets_sent_to_viewers', 0):.0f} packets sent to viewers"
    )
    got, missing = total["viewer_packets_received"], total["viewer_packets_lost"]
    print(
        f"viewers received {got} packets, {missing} missing ({share(missing, got + missing)}), "
        f"{total['viewer_frames']} video frames; kernel dropped {total['udp_drops']} on the "
        f"load processes' {total['udp_sockets']} UDP sockets; longest gap between frames at a "
        f"viewer {max(ledger['viewer_max_gap_ms'] for ledger in ledgers)} ms"
    )
    print(
        f"load processes' event loop lag p99 "
        f"{max(ledger['lag_p99_ms'] for ledger in ledgers)} ms, max "
        f"{max(ledger['lag_max_ms'] for ledger in ledgers)} ms; machine over the window: "
        f"{kernel['rcvbuf_errors']} UDP receive-buffer errors, {kernel['backlog_drops']} "
        f"backlog drops"
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="m110-media-profile-") as profiles:
        return await _measure(args, Path(profiles))


async def _measure(args: argparse.Namespace, profiles: Path) -> dict[str, Any]:
    async with cluster(
        1, MICRO110_MAX_CALLS=str(args.calls + 10), MICRO110_LOG_LEVEL="INFO",
        MICRO110_MEDIA_PROFILE_DIR=str(profiles), MICRO110_CALL_AUDIO_PTIME=str(args.ptime),
    ) as c:  # fmt: skip
        base = c.urls[0]
        await c.add_staff("bench-commander", Role.COMMANDER)
        async with aiohttp.ClientSession() as http:
            watcher = await login(http, base, "bench-commander")
        share = [
            args.calls // args.procs + (i < args.calls % args.procs) for i in range(args.procs)
        ]
        procs = []
        first = 0
        for count in share:
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--load", base, str(first), str(count), watcher,
                str(args.seconds), "--hold", *(["--aiortc-peers"] if args.aiortc_peers else []),
                stdout=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.PIPE,
            ))  # fmt: skip
            first += count
        for proc in procs:  # every call up and watched
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            assert json.loads(line)["ready"], line
        server = c.nodes[0].proc.pid
        # The node and its media processes (MICRO110_MEDIA_PROCESSES), apart.
        media_pids = [p.pid for p in psutil.Process(server).children()]
        meter = CpuMeter(
            {"node": [server], "media": media_pids, "load": [p.pid for p in procs]},
            flat=("node",),
        )
        await asyncio.sleep(2)
        before = meter.read()
        kernel_before = kernel_udp_errors()
        health: list[float] = []
        probe = asyncio.create_task(_probe_health(base, health))
        await asyncio.sleep(args.seconds - 1)
        probe.cancel()
        spent = CpuMeter.spent(before, meter.read())
        # The packet ledger: each load process's at the end of its window, then the
        # server's (its /metrics), before anyone hangs up.
        ledgers = []
        for proc in procs:
            assert proc.stdout is not None
            ledgers.append(json.loads(await proc.stdout.readline())["ledger"])
        async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
            server_stats = _media_gauges(await response.text())
        server_sockets = server_drops = 0
        for pid in (server, *media_pids):
            sockets, drops = udp_drops(pid)
            server_sockets += sockets
            server_drops += drops
        kernel_after = kernel_udp_errors()
        profiled = ""
        if args.profile:  # after the window (cProfile slows what it measures), calls still up
            profiled = _media_profile.report(
                await _media_profile.profile(media_pids, profiles, args.profile)
            )
        results = []
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        for proc in procs:
            assert proc.stdout is not None
            results.append(json.loads(await proc.stdout.readline()))
            await proc.wait()
        fps = [f for r in results for f in r["fps"]]
        first_ms = [f for r in results for f in r["first_ms"]]
        sent = {k: v for r in results for k, v in r["sent"].items()}
        # Every recording, decoded, against the frames its phone sent.
        await asyncio.sleep(1)
        async with c.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT incident_id, storage_key FROM attachments WHERE kind = 'video'"
            )
        data_dir = Path(c.nodes[0].stderr_path or ".").parent / "node-1"
        ok = refused_total = 0
        ratios = []
        loop = asyncio.get_running_loop()
        for row in rows:
            frames, refused = await loop.run_in_executor(
                None, _decoded_frames, str(data_dir / "evidence" / row["storage_key"])
            )
            refused_total += refused
            ratio = frames / max(1, sent.get(str(row["incident_id"]), 1))
            ratios.append(ratio)
            ok += ratio >= 0.98
        server_s = spent.total("node") + spent.total("media")
        figures = {
            "calls": args.calls,
            "viewer_fps_min": round(min(fps), 2),
            "viewer_fps_p50": round(sorted(fps)[len(fps) // 2], 2),
            "server_cpu_pct_per_call": round(100 * server_s / spent.elapsed_s / args.calls, 2),
            "first_frame_p50_ms": percentile_ms([f / 1000 for f in first_ms if f], 50),
            "first_frame_p99_ms": percentile_ms([f / 1000 for f in first_ms if f], 99),
            "recordings_ok": ok,
            "recordings_total": args.calls,
        }
        elapsed = spent.elapsed_s
        node_cores, media_cores = spent.total("node") / elapsed, spent.total("media") / elapsed
        print(
            f"server CPU {server_s / elapsed:.2f} cores (the node {node_cores:.2f}, "
            f"{len(media_pids)} media processes {media_cores:.2f}), load processes "
            f"{spent.total('load') / elapsed:.2f}, rest of the machine "
            f"{spent.other_s / elapsed:.2f}, stolen {spent.stolen_s / elapsed:.2f}"
        )
        _print_server_log(c.nodes[0].stderr_path)
        print(
            f"server answered /healthz (every 0.1 s over the window) in p50 "
            f"{percentile_ms(health, 50)} ms, p99 {percentile_ms(health, 99)} ms, max "
            f"{percentile_ms(health, 100)} ms: how late its event loop runs"
        )
        _print_ledger(ledgers, server_stats, server_sockets, server_drops,
                      {k: v - kernel_before[k] for k, v in kernel_after.items()})  # fmt: skip
        slow = sorted((f for f in first_ms if f), reverse=True)
        worst = sorted((s for ledger in ledgers for s in ledger["first_frame_steps"]), reverse=True)
        print(
            f"offer -> first frame: slowest {[round(f) for f in slow[:5]]} ms, "
            f"(first frame, answer, connected, first packet) ms after the POST: {worst[:4]}, "
            f"{sum(1 for f in slow if f >= 300)} of {len(first_ms)} at 300 ms or more, "
            f"{sum(1 for f in first_ms if not f)} never (of which "
            f"{sum(ledger['calls_gone_before_viewer'] for ledger in ledgers)} calls had ended "
            f"before their viewer came)"
        )
        print(
            f"recordings: {len(rows)} found, decoded/sent min {min(ratios, default=0):.3f}, "
            f"{refused_total} packets the decoder refused"
        )
        if profiled:
            print(profiled)
        return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        base, first, count, watcher, seconds = sys.argv[2:7]
        flags = sys.argv[7:]
        asyncio.run(load(
            base, int(first), int(count), watcher, float(seconds),
            hold="--hold" in flags, aiortc_peers="--aiortc-peers" in flags,
        ))  # fmt: skip
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument(
        "--ptime", type=int, default=60, choices=AUDIO_PTIMES_MS,
        help="MICRO110_CALL_AUDIO_PTIME: audio ms per packet the phones are asked for "
        "(0: theirs, 20)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=float, default=0, metavar="SECONDS",
        help="after the window, profile the media processes (cProfile) for SECONDS",
    )  # fmt: skip
    parser.add_argument(
        "--aiortc-peers", action="store_true",
        help="phones and consoles on aiortc's own per-packet path (costlier)",
    )  # fmt: skip
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures))
