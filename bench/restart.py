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

* `ready_s`: the server prints that it is running (it accepts requests); `startup` is
  the banner's account of it (seconds per phase: `python` is the interpreter with the
  command's imports, `modules` the application's, then each context of dispatch/app.py,
  `memory` the garbage collector's settling) and `startup_cpu_s` the process's CPU
  seconds by then, comparable between runs on a busy machine where wall times are not;
* `first_alarm_s`: a phone registered and its alarm acknowledged (201), right after;
  `first_alarm.before_index_complete` says whether the index was still being rebuilt;
* `rebuild_s`: the Redis queue index holds every queued incident (and that alarm);
* `first_snapshot_dispatcher_s` / `first_snapshot_commander_s`: the first
  `/api/console/snapshot` answered in full for a one-precinct dispatcher and then for a
  commander (every precinct), with the tokens they had before the restart, as the
  console asks for it (the default limit: those in hand and the top of the queue, with
  `totals` of all), each with its own latency, size, incidents loaded and counted, and
  how long the console's next request, `/api/console/annotations`, took after it.

The copies are dated in the past, 10 ms apart, and those past their severity's overdue
threshold are marked overdue, as the running server would have marked them before it
stopped; `--unmarked-overdue` leaves them to the restarted node (as after an outage
longer than the thresholds).

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
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
# The server's default overdue thresholds by severity (MICRO110_OVERDUE_S).
OVERDUE_S = [60, 300, 900, 1800]


async def _copy_incidents(
    database_url: str, template: str, count: int, *, unmarked_overdue: bool
) -> dict[str, int]:
    """`count` queued copies of incident `template`, spread over the precincts."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:

            async def columns_of(table: str) -> list[str]:
                return [
                    r["column_name"]
                    for r in await conn.fetch(
                        """SELECT column_name FROM information_schema.columns
                           WHERE table_name = $1 ORDER BY ordinal_position""",
                        table,
                    )
                ]

            columns = await columns_of("incidents")
            report_columns = await columns_of("reports")
            precincts = [r["code"] for r in await conn.fetch("SELECT code FROM precincts")]
            overrides = {
                "id": "gen_random_uuid()",
                "case_no": "'BENCH-' || g",
                "precinct_code": "($2::text[])[1 + g % array_length($2::text[], 1)]",
                "priority_score": "t.priority_score + g * 0.01",
                # In the past, 10 ms apart (the oldest ~17 minutes before the template),
                # and marked overdue where a running server would have marked them: the
                # copies of an earlier run of this bench were dated in the future and
                # crossed their threshold at 100 a second during the measurement, so
                # the overdue sweep was what it measured (`--unmarked-overdue` keeps
                # that load: every due incident marked at start, as after a long outage).
                "received_at": "t.received_at - g * interval '10 ms'",
                "overdue_at": "NULL"
                if unmarked_overdue
                else (
                    "CASE WHEN t.received_at - g * interval '10 ms' <= now() - due.wait"
                    " THEN t.received_at - g * interval '10 ms' + due.wait END"
                ),
                "state": "'queued'",
                # Spread over the city ~100 m apart (a 300 x 300 grid): at one point, each
                # alarm would be every other's possible duplicate, 100,000 links apiece.
                "lon": "118.65 + (g % 300) * 0.001",
                "lat": "31.90 + (g / 300 % 300) * 0.001",
            }
            select = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
            # Each with its report, as intake writes them (the console's annotations
            # read the reports' words).
            report_overrides = {
                "id": "gen_random_uuid()",
                "incident_id": "made.id",
                "idempotency_key": "made.case_no",
                "received_at": "made.received_at",
            }
            report_select = ", ".join(report_overrides.get(c, f"r.{c}") for c in report_columns)
            await conn.execute(
                f"""WITH made AS (
                        INSERT INTO incidents ({", ".join(columns)})
                        SELECT {select}
                        FROM incidents t, generate_series(1, {int(count)}) g,
                             LATERAL (SELECT make_interval(secs => ($3::int[])[t.severity])
                                      AS wait) due
                        WHERE t.id = $1::uuid
                        RETURNING id, case_no, received_at)
                    INSERT INTO reports ({", ".join(report_columns)})
                    SELECT {report_select} FROM reports r, made WHERE r.incident_id = $1::uuid""",
                template,
                precincts,
                OVERDUE_S,
            )
            await conn.execute("ANALYZE incidents")
            await conn.execute("ANALYZE reports")
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


async def _snapshot(http: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    """Take the console snapshot; how long it took and its size."""
    began = time.monotonic()
    async with http.get(
        f"{url}/api/console/snapshot", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        body = await response.read()
        status = response.status
    took = time.monotonic() - began
    parsed = json.loads(body) if status == 200 else {}
    incidents = len(parsed.get("incidents", ()))
    done = time.monotonic()
    # What the console asks next: the queue's annotations (the reports' words, photos).
    async with http.get(
        f"{url}/api/console/annotations", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        await response.read()
        annotated = {"status": response.status,
                     "latency_s": round(time.monotonic() - done, 2)}  # fmt: skip
    return {"status": status, "latency_s": round(took, 2), "incidents": incidents,
            "open_total": parsed.get("totals", {}).get("open"), "more": parsed.get("more"),
            "bytes": len(body), "done": done, "annotations": annotated}  # fmt: skip


async def _run(count: int, *, unmarked_overdue: bool, bytecode_cache: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="m110r-") as tmp:
        # Compiled bytecode, as an installed server has it (pip compiles what it
        # installs): an editable checkout under PYTHONDONTWRITEBYTECODE=1 compiles the
        # project's ~200 modules at every start (~0.15 s of CPU).  Kept under the run's
        # directory, written by the first start (not measured); `--no-bytecode-cache`:
        # as the environment has it.
        env = (
            {}
            if not bytecode_cache
            else {"PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"), "PYTHONDONTWRITEBYTECODE": ""}
        )
        async with own_cluster(Path(tmp), nodes=1, env=env) as cluster:
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
                # The consoles were open before the restart: they keep their tokens (a
                # login costs an Argon2 hash, ~0.7 s on a busy machine, not measured).
                tokens = {
                    who: await _login(http, node.url, f"restart-{who}")
                    for who in ("dispatcher", "commander")
                }
            await node.stop()
            baseline = await _restart(cluster, 1, tokens)
            print(f"baseline, 1 queued incident: {json.dumps(baseline)}", flush=True)
            began = time.monotonic()
            by_precinct = await _copy_incidents(
                cluster.database_url, template, count, unmarked_overdue=unmarked_overdue
            )
            print(f"{sum(by_precinct.values()):,} queued incidents written in "
                  f"{time.monotonic() - began:.1f} s; {len(by_precinct)} precincts, "
                  f"{by_precinct.get('320102', 0):,} in the dispatcher's", flush=True)  # fmt: skip
            result = await _restart(cluster, sum(by_precinct.values()), tokens)
    return result | {"baseline": baseline}


async def _index_complete(cluster: OwnCluster, target: int) -> float | None:
    """When the Redis queue index first held `target` incidents (None: not in 10 min)."""
    redis = cluster.redis_client()
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, redis_errors.RedisError):
                if await redis.zcard(GLOBAL_KEY) >= target:
                    return time.monotonic()
            await asyncio.sleep(0.05)
        return None
    finally:
        await redis.aclose()


async def _alarm(http: aiohttp.ClientSession, url: str, n: int) -> dict[str, Any]:
    """A phone registers and raises an alarm as soon as the node serves."""
    token = await new_citizen(http, url, f"restart-phone-{n}")
    began = time.monotonic()
    async with http.post(
        f"{url}/api/alarms",
        headers={"Authorization": f"Bearer {token}"},
        json={"tag": "robbery", "lon": 118.7926, "lat": 32.0732, "accuracy_m": 10,
              "datum": "wgs84", "client_time": "2026-12-06T20:00:00+08:00",
              "idempotency_key": f"restart-phone-{n}"},
    ) as response:  # fmt: skip
        await response.read()
        status = response.status
    done = time.monotonic()
    return {"status": status, "latency_s": round(done - began, 3), "done": done}


# The banner's "  start-up  1.95 s, 1.62 s CPU: python 0.45, modules 0.70, ..." line.
_STARTUP = re.compile(r"start-up\s+([\d.]+) s, ([\d.]+) s CPU: (.*)")


def _startup(lines: list[str]) -> tuple[dict[str, float], float | None]:
    for line in lines:
        if match := _STARTUP.search(line):
            phases = dict(part.rsplit(" ", 1) for part in match[3].split(", "))
            return {name: float(s) for name, s in phases.items()}, float(match[2])
    return {}, None


async def _restart(cluster: OwnCluster, queued: int, tokens: dict[str, str]) -> dict[str, Any]:
    """Empty Redis, start the node and time it; stops it again."""
    (node,) = cluster.nodes
    redis = cluster.redis_client()
    await redis.flushall()
    await redis.aclose()
    started = time.monotonic()
    # The incidents copied, and the alarm posted below.
    index = asyncio.create_task(_index_complete(cluster, queued + 1))
    await node.start()
    ready_at = time.monotonic()  # the banner: it accepts requests
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        alarm = await _alarm(http, node.url, queued)
        if alarm["status"] != 201:
            index.cancel()
            raise RuntimeError(f"the alarm after the restart was answered {alarm['status']}")
        alarm["before_index_complete"] = not index.done()
        dispatcher = await _snapshot(http, node.url, tokens["dispatcher"])
        commander = await _snapshot(http, node.url, tokens["commander"])
    indexed_at = await index
    assert node.server is not None
    phases, cpu_s = _startup(node.server.stdout)
    await node.stop()
    return {
        "incidents": queued,
        "ready_s": round(ready_at - started, 2),
        "rebuild_s": None if indexed_at is None else round(indexed_at - started, 2),
        "first_alarm_s": round(alarm.pop("done") - started, 2),
        "first_snapshot_dispatcher_s": round(dispatcher.pop("done") - started, 2),
        "first_snapshot_commander_s": round(commander.pop("done") - started, 2),
        "startup_cpu_s": cpu_s,
        "startup": phases,
        "first_alarm": alarm,
        "snapshot_dispatcher": dispatcher,
        "snapshot_commander": commander,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument(
        "--unmarked-overdue",
        action="store_true",
        help="leave the copies' overdue marks to the restarted node (as after a long outage)",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="let the server compile its modules as the environment says (see _run)",
    )
    args = parser.parse_args()
    result = asyncio.run(
        _run(
            args.incidents,
            unmarked_overdue=args.unmarked_overdue,
            bytecode_cache=not args.no_bytecode_cache,
        )
    )
    result["bytecode_cache"] = not args.no_bytecode_cache
    worst = max(
        result["ready_s"], result["rebuild_s"] or float("inf"),
        result["first_snapshot_dispatcher_s"], result["first_snapshot_commander_s"],
    )  # fmt: skip
    dispatcher, commander = result["snapshot_dispatcher"], result["snapshot_commander"]
    print(
        f"ready {result['ready_s']} s ({result['startup_cpu_s']} s CPU), first alarm "
        f"acknowledged {result['first_alarm_s']} s, index rebuilt {result['rebuild_s']} s, "
        f"first dispatcher snapshot at {result['first_snapshot_dispatcher_s']} s "
        f"({dispatcher['incidents']:,} of {dispatcher['open_total'] or 0:,} incidents, "
        f"{dispatcher['latency_s']} s), commander's at "
        f"{result['first_snapshot_commander_s']} s ({commander['incidents']:,} of "
        f"{commander['open_total'] or 0:,}, {commander['latency_s']} s)"
    )
    print("start-up phases (s): " + ", ".join(f"{k} {v}" for k, v in result["startup"].items()))
    print(f"goal (ready, index and both first snapshots within {GOAL_S:g} s): "
          f"{'met' if worst <= GOAL_S else 'MISSED'}")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
