"""The dispatch queue under load: claims per second and claim latency across a cluster.

    .venv/bin/python bench/queue_claims.py [--incidents 8000] [--dispatchers 20]
        [--rates 100 200 400] [--per-rate 2000] [--plot out.png]

Starts PostgreSQL and Redis (embedded, or DATABASE_URL / REDIS_URL) and two `micro110
serve` processes, files `--incidents` silent alarms through both nodes (real intakes:
50 citizens, 32 in flight, positions spread over the city's precincts, a mix of tags and
so of priorities), then lets `--dispatchers` dispatchers, half logged in on each node,
take incidents with `POST /api/incidents/next`:

* a warm-up, not counted: five times, every dispatcher at once (each server's first
  claims open its connections and prepare its statements, once in its life);
* paced, for each of `--rates`: the dispatchers together offer that many claims per
  second, each on its own schedule (open loop), `--per-rate` claims in all.  Latency
  counts from the planned start of the request, so a server that falls behind is
  charged for the wait it causes (no coordinated omission);
* then flat out: every dispatcher clicks again the instant an answer arrives, until
  the queue is empty.  That is saturation: the latency is then the 20 requests in
  flight divided by the throughput (Little's law), a measure of throughput, not of
  the wait a dispatcher sees.

Every claim is timed by the client up to reading the whole answer; the last, empty
answer of each dispatcher is not a claim.  Before the claims start, `VACUUM (ANALYZE)`
of the tables just filled does what autovacuum would have done a minute after the
filing.

Then the books are checked: `double_claims` counts incidents handed out more than once,
`lost` counts filed incidents never handed out, and PostgreSQL must agree (every incident
claimed by the dispatcher it was handed to, with exactly one `incident.claimed` event)
as must the Redis queue index (empty).

Goal: claim p99 < 20 ms, taken at 200 claims/s offered (`claim_p99_ms`, with
`claim_rate_per_s`); `claims_per_s` and `saturated_p99_ms` are the flat-out run.  The
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
from _harness import (
    Cluster,
    CpuMeter,
    cluster,
    login,
    new_citizen,
    percentile_ms,
    post_json,
    service_pids,
)
from intake import Alarms, city_positions

from dispatch.domain.users import Role
from dispatch.infra.queue_index import GLOBAL_KEY

INCIDENTS = 8000
DISPATCHERS = 20
NODES = 2
CITIZENS = 50
FILING_CONCURRENCY = 32
# Paced phases first: 20 dispatchers together offering this many claims per second
# (200/s is ten a second at every desk, far beyond what people click), then flat out.
RATES = (100, 200, 400)
PER_RATE = 2000
GOALS = {"claim_p99_ms": 20.0, "at_rate": 200}
# Warm-up: every dispatcher claims at once, this many times (not counted; its
# latencies are kept under WARMUP_KEY).
WARMUP_ROUNDS = 5
WARMUP_KEY = -1


@dataclass
class Dispatcher:
    name: str
    user_id: int
    node: int
    claimed: list[str] = field(default_factory=list)
    # Claim latencies by phase: the offered rate (claims/s, all dispatchers), 0 = flat out.
    latencies_s: dict[int, list[float]] = field(default_factory=dict)
    # How late this client woke for each paced request it was ready to send (its own
    # loop was busy): part of the latency above, though not the servers' doing.
    late_s: dict[int, list[float]] = field(default_factory=dict)
    errors: int = 0


@dataclass(frozen=True, slots=True)
class Phase:
    offered_per_s: int  # 0: as fast as the dispatchers can
    achieved_per_s: float
    claims: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True, slots=True)
class Result:
    claims_per_s: float
    claim_p50_ms: float
    claim_p99_ms: float
    double_claims: int
    lost: int
    incidents: int
    claims: int
    dispatchers: int
    claim_rate_per_s: int
    saturated_p50_ms: float
    saturated_p99_ms: float
    errors: int
    postgres_agrees: bool
    redis_queue_left: int
    filed_per_s: float
    phases: list[Phase]


async def _file_incidents(servers: Cluster, count: int) -> tuple[set[str], float]:
    """File `count` alarms through every node at once; their incident ids, and alarms/s."""
    positions = city_positions()
    per_node = [count // len(servers.urls) + (n < count % len(servers.urls)) for n in range(NODES)]
    created: set[str] = set()
    start = time.perf_counter()

    async def through(node: int, url: str, how_many: int) -> None:
        connector = aiohttp.TCPConnector(limit=FILING_CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as http:
            tokens = [
                await new_citizen(http, url, f"bench-queue-{node}-{i:03d}")
                for i in range(CITIZENS // len(servers.urls))
            ]
            alarms = Alarms(tokens, positions[node::NODES])
            left = how_many

            async def one() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    data, headers = alarms.next()
                    async with http.post(f"{url}/api/alarms", data=data, headers=headers) as r:
                        answer = await r.json()
                        if r.status != 201:
                            raise RuntimeError(f"filing an alarm: {r.status} {answer}")
                        created.add(answer["incident_id"])

            await asyncio.gather(*(one() for _ in range(FILING_CONCURRENCY // NODES)))

    await asyncio.gather(*(through(n, url, per_node[n]) for n, url in enumerate(servers.urls)))
    return created, len(created) / (time.perf_counter() - start)


class _Desk:
    """One dispatcher's logged-in HTTP session."""

    def __init__(self, base_url: str, dispatcher: Dispatcher) -> None:
        self.base_url = base_url
        self.dispatcher = dispatcher
        self.http = aiohttp.ClientSession()
        self.token = ""

    async def login(self) -> None:
        self.token = await login(self.http, self.base_url, self.dispatcher.name)

    async def next(self, rate: int, since: float) -> bool:
        """One `next`; its latency counts from `since`.  False when the queue is empty."""
        d = self.dispatcher
        status, answer = await post_json(
            self.http, f"{self.base_url}/api/incidents/next", {}, self.token
        )
        spent = time.perf_counter() - since
        if status != 200:
            d.errors += 1
            if d.errors > 10:
                raise RuntimeError(f"{d.name}: {status} {answer}")
            return True
        incident = answer["incident"]
        if incident is None:
            return False
        d.latencies_s.setdefault(rate, []).append(spent)
        d.claimed.append(incident["id"])
        return True

    async def paced(self, rate: int, count: int, desks: int, began: float) -> None:
        """`count` claims at `rate / desks` per second, on a schedule (open loop): a
        late answer delays nothing, and latency counts from the planned start, so a
        slow server cannot hide behind the requests it held back."""
        interval = desks / rate
        offset = interval * (hash(self.dispatcher.name) % 1000) / 1000  # desks interleave
        for k in range(count):
            planned = began + offset + k * interval
            ahead = planned - time.perf_counter()
            await asyncio.sleep(max(0.0, ahead))
            if ahead > 0:  # else this desk's previous answer came late: the servers' doing
                late = time.perf_counter() - planned
                self.dispatcher.late_s.setdefault(rate, []).append(late)
            if not await self.next(rate, planned):
                return

    async def flat_out(self) -> None:
        while await self.next(0, time.perf_counter()):
            pass


async def _postgres_agrees(servers: Cluster, dispatchers: Sequence[Dispatcher]) -> bool:
    holder = {uuid.UUID(i): d.user_id for d in dispatchers for i in d.claimed}
    async with servers.pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, state, claimed_by FROM incidents")
        events = await conn.fetch(
            """SELECT incident_id, count(*) AS n FROM incident_events
               WHERE type = 'incident.claimed' GROUP BY incident_id"""
        )
    problems = []
    if {r["state"] for r in rows} != {"claimed"}:
        problems.append(f"states {Counter(r['state'] for r in rows)}")
    if {r["id"]: r["claimed_by"] for r in rows} != holder:
        problems.append("claimed_by differs from who was handed the incident")
    if {r["incident_id"]: r["n"] for r in events} != dict.fromkeys(holder, 1):
        problems.append("not exactly one incident.claimed event per incident")
    for problem in problems:
        print(f"  PostgreSQL disagrees: {problem}")
    return not problems


async def _phase(desks: Sequence[_Desk], meter: CpuMeter, rate: int, per_desk: int) -> Phase:
    cpu_before = meter.read()
    began = time.perf_counter()
    if rate:
        await asyncio.gather(*(d.paced(rate, per_desk, len(desks), began) for d in desks))
    else:
        await asyncio.gather(*(d.flat_out() for d in desks))
    elapsed = time.perf_counter() - began
    cpu = meter.spent(cpu_before, meter.read())
    latencies = [s for d in desks for s in d.dispatcher.latencies_s.get(rate, [])]
    phase = Phase(
        offered_per_s=rate,
        achieved_per_s=round(len(latencies) / elapsed, 1),
        claims=len(latencies),
        p50_ms=percentile_ms(latencies, 50),
        p99_ms=percentile_ms(latencies, 99),
    )
    late = [x for d in desks for x in d.dispatcher.late_s.get(rate, [])]
    sent_late = f"; sent late p99 {percentile_ms(late, 99)} ms" if late else ""
    print(
        f"{'flat out' if not rate else f'{rate}/s offered':>14}: {phase.claims:,} claims,"
        f" {phase.achieved_per_s:,.0f}/s; p50 {phase.p50_ms} ms,"
        f" p90 {percentile_ms(latencies, 90)} ms, p99 {phase.p99_ms} ms,"
        f" max {percentile_ms(latencies, 100)} ms{sent_late}"
    )
    per_claim = ", ".join(f"{k} {v:.2f}" for k, v in cpu.per_op_ms(phase.claims).items())
    print(f"{'':>16}CPU ms per claim: {per_claim}")
    return phase


async def _run(
    incidents: int, dispatcher_count: int, rates: Sequence[int], per_rate: int
) -> tuple[Result, list[Dispatcher]]:
    async with cluster(NODES) as servers:
        created, filed_per_s = await _file_incidents(servers, incidents)
        print(f"filed {len(created):,} incidents through {NODES} nodes ({filed_per_s:,.0f}/s)")
        async with servers.pool.acquire() as conn:
            # What autovacuum does within a minute of the filing, done before the clock
            # starts rather than during the first phase: statistics (a freshly filled
            # table has none, and "next" is then planned as a scan and sort of the whole
            # queue) and the visibility map of the tables just filled.
            await conn.execute("VACUUM (ANALYZE) incidents, incident_events, reports")
        dispatchers = [
            Dispatcher(
                name := f"bench-dispatcher-{i:02d}",
                await servers.add_staff(name, Role.DISPATCHER),
                node=i % NODES,
            )
            for i in range(dispatcher_count)
        ]
        desks = [_Desk(servers.urls[d.node], d) for d in dispatchers]
        try:
            await asyncio.gather(*(desk.login() for desk in desks))
            print(f"{dispatcher_count} dispatchers logged in on {NODES} nodes; claiming")
            meter = CpuMeter(
                {
                    "servers": [node.proc.pid for node in servers.nodes],
                    **await service_pids(servers.pool, servers.redis_url),
                    "client": [os.getpid()],
                },
                flat={"client"},  # the servers are its children, counted apart
            )
            # Warm-up, not counted: each server's first claims prepare statements and
            # open connections, as a server does once in its life, not under load.
            for _ in range(WARMUP_ROUNDS):
                await asyncio.gather(*(d.next(WARMUP_KEY, time.perf_counter()) for d in desks))
            phases = [await _phase(desks, meter, rate, per_rate // len(desks)) for rate in rates]
            phases.append(await _phase(desks, meter, 0, 0))
        finally:
            for desk in desks:
                await desk.http.close()
        agrees = await _postgres_agrees(servers, dispatchers)
        client = aioredis.Redis.from_url(servers.redis_url)
        try:
            queue_left = int(await client.zcard(GLOBAL_KEY))
        finally:
            await client.aclose()

    handed_out = Counter(i for d in dispatchers for i in d.claimed)
    reference = next((p for p in phases if p.offered_per_s == GOALS["at_rate"]), phases[-1])
    result = Result(
        claims_per_s=phases[-1].achieved_per_s,
        claim_p50_ms=reference.p50_ms,
        claim_p99_ms=reference.p99_ms,
        double_claims=sum(1 for n in handed_out.values() if n > 1),
        lost=len(created - set(handed_out)),
        incidents=len(created),
        claims=sum(handed_out.values()),
        dispatchers=dispatcher_count,
        claim_rate_per_s=reference.offered_per_s,
        saturated_p50_ms=phases[-1].p50_ms,
        saturated_p99_ms=phases[-1].p99_ms,
        errors=sum(d.errors for d in dispatchers),
        postgres_agrees=agrees,
        redis_queue_left=queue_left,
        filed_per_s=round(filed_per_s, 1),
        phases=phases,
    )
    print(
        f"  double claims {result.double_claims}, lost {result.lost}, errors {result.errors},"
        f" Redis queue left {queue_left}, PostgreSQL agrees: {agrees}"
    )
    return result, dispatchers


def _goals(r: Result) -> None:
    misses = []
    if r.claim_p99_ms >= GOALS["claim_p99_ms"]:
        misses.append(
            f"claim p99 {r.claim_p99_ms} ms >= {GOALS['claim_p99_ms']:g} ms"
            f" at {r.claim_rate_per_s or 'flat out'} claims/s"
        )
    if r.double_claims or r.lost or not r.postgres_agrees or r.redis_queue_left:
        misses.append("the books do not balance")
    print(f"goals: {'met' if not misses else 'MISSED: ' + '; '.join(misses)}")
    print(
        f"  flat out (every dispatcher clicking 'next' the instant the last answer"
        f" arrives): {r.claims_per_s:,.0f} claims/s, p99 {r.saturated_p99_ms} ms"
    )


def _plot(result: Result, path: Path) -> None:
    from _plot import grouped_bars, matplotlib_installed

    if not matplotlib_installed():
        return
    grouped_bars(
        path,
        title=f"Claims: {result.dispatchers} dispatchers on {NODES} nodes",
        groups=[
            f"{p.offered_per_s}/s offered"
            if p.offered_per_s
            else f"flat out\n{p.achieved_per_s:,.0f}/s"
            for p in result.phases
        ],
        series={
            "p50": [p.p50_ms for p in result.phases],
            "p99": [p.p99_ms for p in result.phases],
        },
        ylabel="claim latency, ms (client side)",
        log=True,
        goal=GOALS["claim_p99_ms"],
    )
    print(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=INCIDENTS, help="incidents to file")
    parser.add_argument("--dispatchers", type=int, default=DISPATCHERS, help="on 2 nodes")
    parser.add_argument(
        "--rates", type=int, nargs="*", default=list(RATES),
        help="offered claims/s (all dispatchers together) to measure, before flat out",
    )  # fmt: skip
    parser.add_argument("--per-rate", type=int, default=PER_RATE, help="claims at each rate")
    parser.add_argument("--plot", type=Path, help="write a latency bar chart (PNG) here")
    args = parser.parse_args()
    if args.incidents < len(args.rates) * args.per_rate:
        parser.error("--incidents must cover --per-rate claims at each of --rates")
    result, _ = asyncio.run(_run(args.incidents, args.dispatchers, args.rates, args.per_rate))
    _goals(result)
    if args.plot is not None:
        _plot(result, args.plot)
    print(json.dumps(asdict(result), ensure_ascii=False))


if __name__ == "__main__":
    main()
