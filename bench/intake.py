"""Silent-alarm intake: durable ingest throughput and latency, against a floor.

    .venv/bin/python bench/intake.py [--concurrency 32] [--duration 10] [--plot out.png]

Starts PostgreSQL and Redis (embedded, or DATABASE_URL / REDIS_URL), one `micro110
serve` process with the Nanjing demo city, and a *floor*: a bare aiohttp process on
the same PostgreSQL and Redis that parses the same JSON body, does one INSERT
(autocommitted) and one ZADD, and answers 201.  No service can ingest a durable alarm
for less than that.  The same load generator then drives both, one after the other in
alternating rounds, with the same number of requests in flight: each request is a
silent alarm from one of 50 citizens, with a unique idempotency key and a unique
position (a 330 x 390 m grid over the city, inside a precinct, so no alarm is another's
possible duplicate).  Warm-up requests are not counted.

Latency is measured by the client, from sending the request to reading the whole
answer.  micro110's 201 means the report, the incident and its event are committed;
afterwards PostgreSQL is checked to hold exactly one incident per 201.  To show that
the load generator is not the bottleneck, it is also run against a floor route that
does no I/O at all.  For each server the CPU time per request of its process, of
PostgreSQL (all its processes), of the load generator and of the rest of the machine is
printed (bench/_harness.py CpuMeter, as in every benchmark): on a small machine they
share the cores, so that is where the throughput goes.

Goals: throughput >= 60% of the floor's, p99 <= 2x the floor's.  The last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from _harness import REPO, CpuMeter, cluster, login, new_citizen, percentile_ms, service_pids

from dispatch.demo.loader import DEMO_FILE
from dispatch.domain.users import Role
from geo.datum import Datum
from geo.index import PrecinctIndex
from geo.precincts import load_precincts

CONCURRENCY = 32
DURATION_S = 10.0  # measured, per server, split over ROUNDS
ROUNDS = 2
WARMUP_S = 2.0
CITIZENS = 50
TAGS = ("kidnapping", "robbery", "medical", "suspicious", "fire")
GOALS = {"throughput_ratio": 0.6, "p99_ratio": 2.0}
# Grid spacing: 0.0035 degrees is about 330 m east-west and 390 m north-south at 32 N,
# more than the 300 m duplicate radius.
GRID_STEP = 0.0035
FLOOR_TABLE = "bench_floor_alarms"
FLOOR_QUEUE = "bench:floor:queue"
SCRIPT = Path(__file__).resolve()


# --- the floor: a bare aiohttp endpoint, run in its own process ------------------------


def _floor_app(database_url: str, redis_url: str) -> Any:
    import asyncpg
    import redis.asyncio as aioredis
    from aiohttp import web

    pool_key = web.AppKey("pool", asyncpg.Pool)
    redis_key = web.AppKey("redis", aioredis.Redis)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[pool_key] = await asyncpg.create_pool(database_url, min_size=20, max_size=20)
        app[redis_key] = aioredis.from_url(redis_url)
        async with app[pool_key].acquire() as conn:
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (
                        id bigserial PRIMARY KEY, idempotency_key text NOT NULL, tag text NOT NULL,
                        lon double precision NOT NULL, lat double precision NOT NULL,
                        accuracy_m double precision, client_time timestamptz NOT NULL,
                        received_at timestamptz NOT NULL DEFAULT now())"""
            )
        yield
        await app[redis_key].aclose()
        await app[pool_key].close()

    async def alarm(request: web.Request) -> web.Response:
        body = await request.json()
        async with request.app[pool_key].acquire() as conn:
            row_id = await conn.fetchval(
                f"""INSERT INTO {FLOOR_TABLE}
                        (idempotency_key, tag, lon, lat, accuracy_m, client_time)
                    VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
                body["idempotency_key"], body["tag"], body["lon"], body["lat"],
                body["accuracy_m"], datetime.fromisoformat(body["client_time"]),
            )  # fmt: skip
        await request.app[redis_key].zadd(FLOOR_QUEUE, {str(row_id): time.time()})
        return web.json_response({"id": row_id}, status=201)

    async def no_io(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"key": body["idempotency_key"]}, status=201)

    app = web.Application()
    app.cleanup_ctx.append(resources)
    app.router.add_post("/alarms", alarm)
    app.router.add_post("/no-io", no_io)
    return app


def _serve_floor(port: int, database_url: str, redis_url: str) -> None:
    from aiohttp import web

    web.run_app(
        _floor_app(database_url, redis_url),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=lambda _: print("floor ready", flush=True),
    )


@contextlib.asynccontextmanager
async def _floor(database_url: str, redis_url: str) -> AsyncIterator[tuple[str, int]]:
    """The floor server's base URL and process id."""
    from tests.serving import free_port

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "--floor-server",
        str(port), database_url, redis_url,
        stdout=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if b"floor ready" not in line:
            raise RuntimeError(f"the floor server did not start (exit {await proc.wait()})")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# --- the load ----------------------------------------------------------------------------


def city_positions() -> list[tuple[float, float]]:
    """Grid points inside the demo city's precincts, spread out: neighbours in the list
    are far apart on the map."""
    collection = json.loads((REPO / "dispatch" / "demo" / DEMO_FILE).read_text(encoding="utf-8"))
    loaded = load_precincts(
        collection, name_property="name", code_property="adcode", datum=Datum.WGS84
    )
    index = PrecinctIndex.build(loaded.precincts)
    lons = np.arange(118.35, 119.25, GRID_STEP)
    lats = np.arange(31.20, 32.65, GRID_STEP)
    grid_lon, grid_lat = (a.ravel() for a in np.meshgrid(lons, lats))
    inside = index.locate_many(grid_lon, grid_lat) >= 0
    points = np.column_stack([grid_lon[inside], grid_lat[inside]])
    np.random.default_rng(110).shuffle(points)
    return [(round(float(lon), 6), round(float(lat), 6)) for lon, lat in points]


@dataclass
class Alarms:
    """Request bodies, each with a unique idempotency key and position."""

    tokens: Sequence[str]
    positions: Sequence[tuple[float, float]]
    issued: int = 0
    _run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def next(self) -> tuple[bytes, dict[str, str]]:
        n = self.issued
        self.issued += 1
        if n == len(self.positions):
            print(f"  warning: more than {n} alarms; positions repeat (possible duplicates)")
        lon, lat = self.positions[n % len(self.positions)]
        body = {
            "tag": TAGS[n % len(TAGS)], "lon": lon, "lat": lat, "accuracy_m": 15.0,
            "datum": "wgs84", "client_time": datetime.now(UTC).isoformat(),
            "idempotency_key": f"bench-{self._run}-{n:07d}",
        }  # fmt: skip
        headers = {
            "Authorization": f"Bearer {self.tokens[n % len(self.tokens)]}",
            "Content-Type": "application/json",
        }
        return json.dumps(body).encode(), headers


@dataclass
class Sample:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    server_cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    other_cpu_s: float = 0.0  # the rest of the machine meanwhile
    stolen_cpu_s: float = 0.0  # taken by the host for another tenant

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    def add(self, other: Sample) -> None:
        self.latencies_s += other.latencies_s
        self.errors += other.errors
        self.elapsed_s += other.elapsed_s
        self.server_cpu_s += other.server_cpu_s
        self.postgres_cpu_s += other.postgres_cpu_s
        self.client_cpu_s += other.client_cpu_s
        self.other_cpu_s += other.other_cpu_s
        self.stolen_cpu_s += other.stolen_cpu_s
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n

    def cpu_ms(self, seconds: float) -> float:
        """CPU milliseconds per answered request."""
        return round(seconds * 1000.0 / self.ok, 3) if self.ok else float("nan")

    def per_s(self) -> float:
        return round(self.ok / self.elapsed_s, 1) if self.elapsed_s else 0.0


async def drive(
    http: aiohttp.ClientSession,
    url: str,
    request: Callable[[], tuple[bytes, dict[str, str]]],
    concurrency: int,
    duration_s: float,
    meter: CpuMeter | None = None,
) -> Sample:
    """`concurrency` requests in flight for `duration_s`; each worker stops at the deadline."""
    sample = Sample()
    clock = time.perf_counter
    cpu_before = meter.read() if meter else None
    start = clock()
    deadline = start + duration_s
    last = start

    async def worker() -> None:
        nonlocal last
        while clock() < deadline:
            data, headers = request()
            sent = clock()
            try:
                async with http.post(url, data=data, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, OSError):
                status = 0
            done = clock()
            last = max(last, done)
            sample.statuses[status] = sample.statuses.get(status, 0) + 1
            if status == 201:
                sample.latencies_s.append(done - sent)
            else:
                sample.errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    sample.elapsed_s = last - start
    if meter is not None and cpu_before is not None:
        spent = meter.spent(cpu_before, meter.read())
        sample.server_cpu_s = spent.total("server")
        sample.postgres_cpu_s = spent.total("postgres")
        sample.client_cpu_s = spent.total("client")
        sample.other_cpu_s = spent.other_s
        sample.stolen_cpu_s = spent.stolen_s
    return sample


# --- the run -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    alarms_per_s: float
    p50_ms: float
    p99_ms: float
    floor_per_s: float
    floor_p50_ms: float
    floor_p99_ms: float
    errors: int
    concurrency: int
    duration_s: float
    alarms: int
    floor_errors: int
    no_io_per_s: float
    stored_incidents: int


def _describe(name: str, sample: Sample) -> None:
    print(
        f"  {name}: {sample.per_s():,.0f}/s, p50 {percentile_ms(sample.latencies_s, 50)} ms,"
        f" p90 {percentile_ms(sample.latencies_s, 90)} ms,"
        f" p99 {percentile_ms(sample.latencies_s, 99)} ms"
        f" ({sample.ok} ok, {sample.errors} errors in {sample.elapsed_s:.1f} s);"
        f" CPU ms per request: server {sample.cpu_ms(sample.server_cpu_s)},"
        f" PostgreSQL {sample.cpu_ms(sample.postgres_cpu_s)},"
        f" load generator {sample.cpu_ms(sample.client_cpu_s)},"
        f" rest of the machine {sample.cpu_ms(sample.other_cpu_s)},"
        f" stolen by the host {sample.cpu_ms(sample.stolen_cpu_s)}"
    )


async def _run(
    concurrency: int, duration_s: float, calls: int = 0
) -> tuple[Result, Sample, Sample]:
    positions = city_positions()
    print(f"{len(positions):,} distinct alarm positions inside the city's precincts")
    async with (
        cluster(1) as servers,
        _floor(servers.database_url, servers.redis_url) as (floor, floor_pid),
    ):
        (node,) = servers.urls
        postgres = (await service_pids(servers.pool, servers.redis_url)).get("postgres", [])
        # The load generator (this process) alone: the servers are its children.
        meters = {
            name: CpuMeter(
                {"server": [pid], "postgres": postgres, "client": [os.getpid()]}, flat={"client"}
            )
            for name, pid in (("micro110", servers.nodes[0].proc.pid), ("floor", floor_pid))
        }
        held = []
        if calls:  # live video calls on the node meanwhile (issue 15, item 8)
            from media_calls import MediaWindow, start_calls

            await servers.add_staff("bench-commander", Role.COMMANDER)
            async with aiohttp.ClientSession() as http:
                watcher = await login(http, node, "bench-commander")
            held = await start_calls(node, calls, watcher, 2 * WARMUP_S + duration_s + 90)
            print(f"{calls} live video calls, each watched")
            window = MediaWindow(node)
            await window.start()
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:
            tokens = [
                await new_citizen(http, node, f"bench-intake-{i:04d}") for i in range(CITIZENS)
            ]
            targets = {"micro110": f"{node}/api/alarms", "floor": f"{floor}/alarms"}
            # Each its own positions: the floor's alarms are not micro110's neighbours.
            alarms = {name: Alarms(tokens, positions[n::2]) for n, name in enumerate(targets)}
            samples = {name: Sample() for name in targets}
            micro_total = 0
            for name, url in targets.items():
                warm = await drive(http, url, alarms[name].next, concurrency, WARMUP_S)
                micro_total += warm.ok if name == "micro110" else 0
            print(f"concurrency {concurrency}, {ROUNDS} rounds of {duration_s / ROUNDS:g} s each")
            for round_no, (name, url) in itertools.product(range(ROUNDS), targets.items()):
                got = await drive(
                    http, url, alarms[name].next, concurrency, duration_s / ROUNDS, meters[name]
                )
                _describe(f"round {round_no + 1} {name}", got)
                samples[name].add(got)
                micro_total += got.ok if name == "micro110" else 0
            if held:
                print(f"  video calls: {await window.report()}")
            no_io = await drive(http, f"{floor}/no-io", alarms["floor"].next, concurrency, 3.0)
            print(f"  load generator against a no-I/O route: {no_io.per_s():,.0f}/s")
        if held:
            from media_calls import stop_calls

            await stop_calls(held)
        async with servers.pool.acquire() as conn:
            # The video calls' incidents (channel 'video') are not this benchmark's.
            stored = int(
                await conn.fetchval("SELECT count(*) FROM incidents WHERE channel <> 'video'")
            )
            events = int(
                await conn.fetchval(
                    "SELECT count(*) FROM incident_events e JOIN incidents i"
                    " ON i.id = e.incident_id"
                    " WHERE e.type = 'incident.created' AND i.channel <> 'video'"
                )
            )
    micro, base = samples["micro110"], samples["floor"]
    print("totals:")
    _describe("micro110", micro)
    _describe("floor", base)
    if micro.errors:
        print(f"  micro110 statuses: {micro.statuses}")
    print(
        f"  PostgreSQL: {stored} incidents and {events} incident.created events"
        f" for {micro_total} answers 201"
    )
    result = Result(
        alarms_per_s=micro.per_s(),
        p50_ms=percentile_ms(micro.latencies_s, 50),
        p99_ms=percentile_ms(micro.latencies_s, 99),
        floor_per_s=base.per_s(),
        floor_p50_ms=percentile_ms(base.latencies_s, 50),
        floor_p99_ms=percentile_ms(base.latencies_s, 99),
        errors=micro.errors,
        concurrency=concurrency,
        duration_s=duration_s,
        alarms=micro.ok,
        floor_errors=base.errors,
        no_io_per_s=no_io.per_s(),
        stored_incidents=stored,
    )
    if stored != micro_total or events != micro_total:
        print(f"  MISMATCH: {micro_total} answers 201 but {stored} incidents, {events} events")
    return result, micro, base


def _goals(r: Result) -> None:
    misses = []
    ratio = r.alarms_per_s / r.floor_per_s if r.floor_per_s else 0.0
    if ratio < GOALS["throughput_ratio"]:
        misses.append(f"throughput {ratio:.0%} of the floor < {GOALS['throughput_ratio']:.0%}")
    if r.p99_ms > GOALS["p99_ratio"] * r.floor_p99_ms:
        misses.append(f"p99 {r.p99_ms} ms > {GOALS['p99_ratio']:g} x floor p99 {r.floor_p99_ms} ms")
    if r.errors:
        misses.append(f"{r.errors} errors")
    detail = f" (throughput {ratio:.0%} of the floor, p99 {r.p99_ms / r.floor_p99_ms:.2f}x)"
    print(f"goals: {'met' if not misses else 'MISSED: ' + '; '.join(misses)}{detail}")


def _plot(result: Result, micro: Sample, base: Sample, path: Path) -> None:
    from _plot import grouped_bars, matplotlib_installed

    if not matplotlib_installed():
        return
    grouped_bars(
        path,
        title=f"Silent-alarm intake at {result.concurrency} in flight: latency (ms)",
        groups=["p50", "p90", "p99"],
        series={
            f"micro110 ({result.alarms_per_s:,.0f}/s)": [
                percentile_ms(micro.latencies_s, q) for q in (50, 90, 99)
            ],
            f"floor: INSERT + ZADD ({result.floor_per_s:,.0f}/s)": [
                percentile_ms(base.latencies_s, q) for q in (50, 90, 99)
            ],
        },
        ylabel="milliseconds, client side",
    )
    print(f"plot written to {path}")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--floor-server":
        _serve_floor(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="requests in flight")
    parser.add_argument(
        "--duration", type=float, default=DURATION_S, help="measured seconds per server"
    )
    parser.add_argument("--plot", type=Path, help="write a latency bar chart (PNG) here")
    parser.add_argument("--calls", type=int, default=0,
                        help="live video calls (each watched) on the node meanwhile")  # fmt: skip
    args = parser.parse_args()
    result, micro, base = asyncio.run(_run(args.concurrency, args.duration, args.calls))
    _goals(result)
    if args.plot is not None:
        _plot(result, micro, base, args.plot)
    print(json.dumps(
        {k: getattr(result, k) for k in Result.__dataclass_fields__}, ensure_ascii=False
    ))  # fmt: skip


if __name__ == "__main__":
    main()
