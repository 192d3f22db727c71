"""Restart with many open incidents: ready, queue index rebuilt, first snapshot served.

    .venv/bin/python bench/restart.py [--incidents 100000]

Starts its own PostgreSQL and Redis and one `micro110 serve` (bench/_services.py) with
the demo city, posts one silent alarm through the API and copies it in SQL into
`--incidents` open (queued) incidents spread over the demo's precincts, each with its
own id, case number and priority.  Then the node is stopped, Redis is emptied (so the
queue index must be rebuilt from PostgreSQL, as after a Redis loss) and the node is
started again: once with the one incident (the baseline: what a start costs on this
machine whatever the data), then with them all.  Measured from the moment the process
is started:

* `ready_s`: the server prints that it is running (it accepts requests);
* `index_rebuilt_s`: the Redis queue index holds every queued incident;
* `snapshot_dispatcher_s` / `snapshot_commander_s`: the first `/api/console/snapshot`
  answered in full for a one-precinct dispatcher and for a commander (every open
  incident), each with its own latency and size.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.exceptions as redis_errors
from _harness import PASSWORD, new_citizen
from _services import OwnCluster, own_cluster

from dispatch.auth.passwords import Passwords
from dispatch.domain.events import Actor
from dispatch.domain.users import Role
from dispatch.infra.queue_index import GLOBAL_KEY
from dispatch.services.users import create_user
from dispatch.store.database import create_pool

GOAL_S = 5.0


async def _copy_incidents(database_url: str, template: str, count: int) -> dict[str, int]:
    """`count` queued copies of incident `template`, spread over the precincts."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            columns = [
                r["column_name"]
                for r in await conn.fetch(
                    """SELECT column_name FROM information_schema.columns
                       WHERE table_name = 'incidents' ORDER BY ordinal_position"""
                )
            ]
            precincts = [r["code"] for r in await conn.fetch("SELECT code FROM precincts")]
            overrides = {
                "id": "gen_random_uuid()",
                "case_no": "'BENCH-' || g",
                "precinct_code": "($2::text[])[1 + g % array_length($2::text[], 1)]",
                "priority_score": "t.priority_score + g * 0.01",
                "received_at": "t.received_at + g * interval '10 ms'",
                "state": "'queued'",
            }
            select = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
            await conn.execute(
                f"""INSERT INTO incidents ({", ".join(columns)})
                    SELECT {select} FROM incidents t, generate_series(1, {int(count)}) g
                    WHERE t.id = $1::uuid""",
                template,
                precincts,
            )
            await conn.execute("ANALYZE incidents")
            by_precinct = {
                r["precinct_code"]: int(r["n"])
                for r in await conn.fetch(
                    """SELECT precinct_code, count(*) AS n FROM incidents
                       WHERE state = 'queued' GROUP BY precinct_code"""
                )
            }
    finally:
        await pool.close()
    return by_precinct


async def _login(http: aiohttp.ClientSession, url: str, username: str) -> str:
    async with http.post(
        f"{url}/api/auth/login", json={"username": username, "password": PASSWORD}
    ) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"login {username}: {response.status} {body}")
        token: str = body["token"]
        return token


async def _snapshot(http: aiohttp.ClientSession, url: str, username: str) -> dict[str, Any]:
    """Log in and take the console snapshot; how long the snapshot took and its size."""
    token = await _login(http, url, username)
    began = time.monotonic()
    async with http.get(
        f"{url}/api/console/snapshot", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        body = await response.read()
        status = response.status
    took = time.monotonic() - began
    incidents = len(json.loads(body)["incidents"]) if status == 200 else 0
    return {"status": status, "latency_s": round(took, 2), "incidents": incidents,
            "bytes": len(body), "done": time.monotonic()}  # fmt: skip


async def _run(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="m110r-") as tmp:
        async with own_cluster(Path(tmp), nodes=1) as cluster:
            (node,) = cluster.nodes
            await node.start()
            pool = await create_pool(cluster.database_url, min_size=1, max_size=1)
            try:
                for username, role, scope in (
                    ("restart-dispatcher", Role.DISPATCHER, frozenset({"320102"})),
                    ("restart-commander", Role.COMMANDER, None),
                ):
                    async with pool.acquire() as conn:
                        codes = frozenset(
                            r["code"] for r in await conn.fetch("SELECT code FROM precincts")
                        )
                    await create_user(
                        pool, Passwords(), username=username, password=PASSWORD, role=role,
                        precincts=scope or codes, actor=Actor.system("bench"),
                    )  # fmt: skip
            finally:
                await pool.close()
            async with aiohttp.ClientSession() as http:
                token = await new_citizen(http, node.url, "restart-template")
                async with http.post(
                    f"{node.url}/api/alarms",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"tag": "robbery", "lon": 118.7926, "lat": 32.0732, "accuracy_m": 10,
                          "datum": "wgs84", "client_time": "2026-12-06T20:00:00+08:00",
                          "idempotency_key": "restart-template-0001"},
                ) as response:  # fmt: skip
                    template = (await response.json())["incident_id"]
            await node.stop()
            baseline = await _restart(cluster, 1)
            print(f"baseline, 1 queued incident: {json.dumps(baseline)}", flush=True)
            began = time.monotonic()
            by_precinct = await _copy_incidents(cluster.database_url, template, count)
            print(f"{sum(by_precinct.values()):,} queued incidents written in "
                  f"{time.monotonic() - began:.1f} s; {len(by_precinct)} precincts, "
                  f"{by_precinct.get('320102', 0):,} in the dispatcher's", flush=True)  # fmt: skip
            result = await _restart(cluster, sum(by_precinct.values()))
    return result | {"baseline": baseline}


async def _restart(cluster: OwnCluster, queued: int) -> dict[str, Any]:
    """Empty Redis, start the node and time it; stops it again."""
    (node,) = cluster.nodes
    redis = cluster.redis_client()
    await redis.flushall()
    started = time.monotonic()
    start = asyncio.create_task(node.start())
    indexed_at = None
    while indexed_at is None and time.monotonic() - started < 600:
        with contextlib.suppress(OSError, redis_errors.RedisError):
            if await redis.zcard(GLOBAL_KEY) >= queued:
                indexed_at = time.monotonic()
        if start.done() and start.exception() is not None:
            raise RuntimeError("the node did not start") from start.exception()
        await asyncio.sleep(0.05)
    await start
    ready_at = time.monotonic()
    await redis.aclose()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        dispatcher = await _snapshot(http, node.url, "restart-dispatcher")
        commander = await _snapshot(http, node.url, "restart-commander")
    await node.stop()
    # "ready" is the banner, printed once start-up (with its index rebuild) is done.
    return {
        "incidents": queued,
        "ready_s": round(ready_at - started, 2),
        "index_rebuilt_s": None if indexed_at is None else round(indexed_at - started, 2),
        "snapshot_dispatcher_s": round(dispatcher.pop("done") - started, 2),
        "snapshot_dispatcher": dispatcher,
        "snapshot_commander_s": round(commander.pop("done") - started, 2),
        "snapshot_commander": commander,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    args = parser.parse_args()
    result = asyncio.run(_run(args.incidents))
    worst = max(result["index_rebuilt_s"] or float("inf"), result["snapshot_dispatcher_s"])
    print(
        f"ready {result['ready_s']} s, index rebuilt {result['index_rebuilt_s']} s, first "
        f"dispatcher snapshot at {result['snapshot_dispatcher_s']} s "
        f"({result['snapshot_dispatcher']['incidents']:,} incidents, "
        f"{result['snapshot_dispatcher']['latency_s']} s), commander's at "
        f"{result['snapshot_commander_s']} s ({result['snapshot_commander']['incidents']:,})"
    )
    print(f"goal (ready, index and first snapshot within {GOAL_S:g} s): "
          f"{'met' if worst <= GOAL_S else 'MISSED'}")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
