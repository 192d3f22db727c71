"""The dispatch queue under load: claims per second and claim latency across a cluster.

    .venv/bin/python bench/queue_claims.py [--incidents 3000] [--dispatchers 20] [--plot out.png]

Starts PostgreSQL and Redis (embedded, or DATABASE_URL / REDIS_URL) and two `micro110
serve` processes, files `--incidents` silent alarms through both nodes (real intakes:
50 citizens, 32 in flight, positions spread over the city's precincts, a mix of tags and
so of priorities), then lets `--dispatchers` dispatchers, half logged in on each node,
take incidents with `POST /api/incidents/next` as fast as they can until the queue is
empty.  Every claim is timed by the client, from sending the request to reading the
whole answer; the last, empty answer of each dispatcher is not a claim.  Before the
claims start, `ANALYZE incidents` gives the planner what autovacuum would have given it
a minute after the filing.

Then the books are checked: `double_claims` counts incidents handed out more than once,
`lost` counts filed incidents never handed out, and PostgreSQL must agree (every incident
claimed by the dispatcher it was handed to, with exactly one `incident.claimed` event)
as must the Redis queue index (empty).

Goal: claim p99 < 20 ms.  The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
from _harness import Cluster, cluster, login, new_citizen, percentile_ms, post_json
from intake import Alarms, city_positions

from dispatch.domain.users import Role
from dispatch.queue import GLOBAL_KEY

INCIDENTS = 3000
DISPATCHERS = 20
NODES = 2
CITIZENS = 50
FILING_CONCURRENCY = 32
GOALS = {"claim_p99_ms": 20.0}


@dataclass
class Dispatcher:
    name: str
    user_id: int
    node: int
    claimed: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0


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
    claim_p90_ms: float
    claim_max_ms: float
    errors: int
    postgres_agrees: bool
    redis_queue_left: int
    filed_per_s: float


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


async def _dispatch_until_empty(
    base_url: str, dispatcher: Dispatcher, ready: asyncio.Barrier
) -> None:
    async with aiohttp.ClientSession() as http:
        token = await login(http, base_url, dispatcher.name)
        await ready.wait()  # every dispatcher logged in: all start claiming together
        clock = time.perf_counter
        while True:
            sent = clock()
            status, answer = await post_json(http, f"{base_url}/api/incidents/next", {}, token)
            spent = clock() - sent
            if status != 200:
                dispatcher.errors += 1
                if dispatcher.errors > 10:
                    raise RuntimeError(f"{dispatcher.name}: {status} {answer}")
                continue
            incident = answer["incident"]
            if incident is None:
                return
            dispatcher.latencies_s.append(spent)
            dispatcher.claimed.append(incident["id"])


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


async def _run(incidents: int, dispatcher_count: int) -> tuple[Result, list[Dispatcher]]:
    async with cluster(NODES) as servers:
        created, filed_per_s = await _file_incidents(servers, incidents)
        print(f"filed {len(created):,} incidents through {NODES} nodes ({filed_per_s:,.0f}/s)")
        async with servers.pool.acquire() as conn:
            # As autovacuum would within a minute: a freshly filled table has no
            # statistics, and "next" is then planned as a scan and sort of the whole queue.
            await conn.execute("ANALYZE incidents")
        dispatchers = [
            Dispatcher(
                name := f"bench-dispatcher-{i:02d}",
                await servers.add_staff(name, Role.DISPATCHER),
                node=i % NODES,
            )
            for i in range(dispatcher_count)
        ]
        ready = asyncio.Barrier(len(dispatchers) + 1)
        work = [
            asyncio.create_task(_dispatch_until_empty(servers.urls[d.node], d, ready))
            for d in dispatchers
        ]
        await ready.wait()
        began = time.perf_counter()
        await asyncio.gather(*work)
        elapsed = time.perf_counter() - began
        agrees = await _postgres_agrees(servers, dispatchers)
        client = aioredis.Redis.from_url(servers.redis_url)
        try:
            queue_left = int(await client.zcard(GLOBAL_KEY))
        finally:
            await client.aclose()

    handed_out = Counter(i for d in dispatchers for i in d.claimed)
    latencies = [s for d in dispatchers for s in d.latencies_s]
    claims = sum(handed_out.values())
    result = Result(
        claims_per_s=round(claims / elapsed, 1),
        claim_p50_ms=percentile_ms(latencies, 50),
        claim_p99_ms=percentile_ms(latencies, 99),
        double_claims=sum(1 for n in handed_out.values() if n > 1),
        lost=len(created - set(handed_out)),
        incidents=len(created),
        claims=claims,
        dispatchers=dispatcher_count,
        claim_p90_ms=percentile_ms(latencies, 90),
        claim_max_ms=percentile_ms(latencies, 100),
        errors=sum(d.errors for d in dispatchers),
        postgres_agrees=agrees,
        redis_queue_left=queue_left,
        filed_per_s=round(filed_per_s, 1),
    )
    print(
        f"{claims:,} claims by {dispatcher_count} dispatchers in {elapsed:.1f} s:"
        f" {result.claims_per_s:,.0f}/s; p50 {result.claim_p50_ms} ms,"
        f" p90 {result.claim_p90_ms} ms, p99 {result.claim_p99_ms} ms,"
        f" max {result.claim_max_ms} ms"
    )
    for node in range(NODES):
        mine = [s for d in dispatchers if d.node == node for s in d.latencies_s]
        print(
            f"  node-{node + 1}: {len(mine):,} claims, p50 {percentile_ms(mine, 50)} ms,"
            f" p99 {percentile_ms(mine, 99)} ms"
        )
    print(
        f"  double claims {result.double_claims}, lost {result.lost}, errors {result.errors},"
        f" Redis queue left {queue_left}, PostgreSQL agrees: {agrees}"
    )
    return result, dispatchers


def _goals(r: Result) -> None:
    misses = []
    if r.claim_p99_ms >= GOALS["claim_p99_ms"]:
        misses.append(f"claim p99 {r.claim_p99_ms} ms >= {GOALS['claim_p99_ms']:g} ms")
    if r.double_claims or r.lost or not r.postgres_agrees or r.redis_queue_left:
        misses.append("the books do not balance")
    print(f"goals: {'met' if not misses else 'MISSED: ' + '; '.join(misses)}")


def _plot(result: Result, dispatchers: Sequence[Dispatcher], path: Path) -> None:
    from _plot import grouped_bars, matplotlib_installed

    if not matplotlib_installed():
        return
    quantiles = (50, 90, 99, 100)
    by_node = {
        f"node-{n + 1}": [s for d in dispatchers if d.node == n for s in d.latencies_s]
        for n in range(NODES)
    }
    grouped_bars(
        path,
        title=(
            f"Claims: {result.dispatchers} dispatchers on {NODES} nodes,"
            f" {result.claims_per_s:,.0f} claims/s"
        ),
        groups=["p50", "p90", "p99", "max"],
        series={
            name: [percentile_ms(samples, q) for q in quantiles]
            for name, samples in by_node.items()
        },
        ylabel="claim latency, ms (client side)",
        goal=GOALS["claim_p99_ms"],
    )
    print(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=INCIDENTS, help="incidents to file")
    parser.add_argument("--dispatchers", type=int, default=DISPATCHERS, help="on 2 nodes")
    parser.add_argument("--plot", type=Path, help="write a latency bar chart (PNG) here")
    args = parser.parse_args()
    result, dispatchers = asyncio.run(_run(args.incidents, args.dispatchers))
    _goals(result)
    if args.plot is not None:
        _plot(result, dispatchers, args.plot)
    print(json.dumps(asdict(result), ensure_ascii=False))


if __name__ == "__main__":
    main()
