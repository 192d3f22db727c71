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

Goal (issue 15): >= 50 calls with every viewer >= 29 fps, every recording decodable with
>= 98% of the frames sent, offer -> first frame p99 < 300 ms.  The last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

# The repository first, bench/ last: bench/media.py must not stand in for the `media`
# package (this file also runs directly, as the load processes).
REPO = Path(__file__).resolve().parents[1]
_BENCH = REPO / "bench"
sys.path[:] = [str(REPO)] + [p for p in sys.path if p and Path(p).resolve() not in (REPO, _BENCH)]
sys.path.append(str(_BENCH))

from _harness import (  # noqa: E402
    CpuMeter,
    cluster,
    grid_position,
    login,
    new_citizen,
    percentile_ms,
)

from dispatch.domain.users import Role  # noqa: E402
from tests.media.peers import Clip, Console, Phone, encode_clip  # noqa: E402

SDP = {"Content-Type": "application/sdp"}


async def _one_call(
    http: aiohttp.ClientSession, base: str, n: int, token: str, watcher: str, clip: Clip
) -> dict[str, Any]:
    citizen = await new_citizen(http, base, f"bench-phone-{n:05d}")
    headers = {"Authorization": f"Bearer {citizen}"}
    lon, lat = grid_position(n)
    body = {"lon": lon, "lat": lat, "accuracy_m": 10.0, "datum": "wgs84",
            "tag": "robbery", "idempotency_key": f"bench-call-{n:05d}-{token[:6]}"}  # fmt: skip
    async with http.post(f"{base}/api/calls", json=body, headers=headers) as response:
        assert response.status == 201, await response.text()
        call = await response.json()
    phone = Phone(video_clip=clip)
    async with http.post(
        base + call["session_url"], data=await phone.offer(), headers=headers | SDP
    ) as response:
        assert response.status == 201, await response.text()
        await phone.accept(await response.text())
        session = response.headers["Location"]
    console = Console()
    offer = await console.offer()
    posted = time.perf_counter()
    async with http.post(
        f"{base}/api/incidents/{call['incident_id']}/call/viewers", data=offer,
        headers={"Authorization": f"Bearer {watcher}"} | SDP,
    ) as response:  # fmt: skip
        assert response.status == 201, await response.text()
        await console.accept(await response.text())
    return {"phone": phone, "console": console, "posted": posted, "session": session,
            "headers": headers, "incident": call["incident_id"]}  # fmt: skip


async def load(base: str, first: int, count: int, watcher: str, seconds: float) -> None:
    """One load process: `count` calls; prints one JSON line of what it measured."""
    loop = asyncio.get_running_loop()
    clip = await loop.run_in_executor(None, encode_clip, 640, 480, 4, 1_000_000)
    async with aiohttp.ClientSession() as http:
        calls = [
            await _one_call(http, base, first + i, watcher, watcher, clip) for i in range(count)
        ]
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.sleep(2)  # settle
        start = time.perf_counter()
        await asyncio.sleep(seconds)
        until = time.perf_counter()
        fps = [c["console"].video.fps(start, until) for c in calls]
        first_ms = [
            (c["console"].video.first_at - c["posted"]) * 1000
            if c["console"].video.first_at else None
            for c in calls
        ]  # fmt: skip
        sent: dict[str, int] = {}
        for c in calls:
            async with http.delete(base + c["session"], headers=c["headers"]) as response:
                assert response.status == 200
            sent[c["incident"]] = c["phone"].video.sent
        for c in calls:
            await c["phone"].close()
            await c["console"].close()
    print(json.dumps({"fps": fps, "first_ms": first_ms, "sent": sent}), flush=True)


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


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with cluster(1, MICRO110_MAX_CALLS=str(args.calls + 10)) as c:
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
                str(args.seconds), stdout=asyncio.subprocess.PIPE,
            ))  # fmt: skip
            first += count
        for proc in procs:  # every call up and watched
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            assert json.loads(line)["ready"], line
        server = c.nodes[0].proc.pid
        meter = CpuMeter({"server": [server], "load": [p.pid for p in procs]})
        await asyncio.sleep(2)
        before = meter.read()
        await asyncio.sleep(args.seconds - 1)
        spent = CpuMeter.spent(before, meter.read())
        results = []
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
        server_s = spent.total("server")
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
        print(
            f"server CPU {server_s / elapsed:.2f} cores, load processes "
            f"{spent.total('load') / elapsed:.2f}, rest of the machine "
            f"{spent.other_s / elapsed:.2f}, stolen {spent.stolen_s / elapsed:.2f}"
        )
        print(
            f"recordings: {len(rows)} found, decoded/sent min {min(ratios, default=0):.3f}, "
            f"{refused_total} packets the decoder refused"
        )
        return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        base, first, count, watcher, seconds = sys.argv[2:7]
        asyncio.run(load(base, int(first), int(count), watcher, float(seconds)))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--procs", type=int, default=2)
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures))
