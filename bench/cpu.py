"""Server CPU per alarm and per retire on the hot path, without a browser.

    .venv/bin/python bench/cpu.py [--rate 200] [--seconds 10] [--consoles 2] [--open 1000]
                                  [--mixed] [--code DIR] [--profile PREFIX]

One `micro110 serve` node with the demo city (bench/_harness.py `cluster`, as
bench/console.py starts it), `--open` open incidents seeded first, and `--consoles`
python-socketio consoles (half commander, half dispatcher for every precinct; in one
process of their own) taking the live feed.  Then two measured phases:

* alarms: silent alarms posted at `--rate` per second for `--seconds`;
* retires: each of those alarms marked invalid (`POST /api/incidents/{id}/invalid`, a
  commander's token) at the same rate.

Each phase's CPU is read (user + system, /proc via psutil) from its first request until
half a second after its last answer (the fan-out of the last events), and divided by
the phase's requests: the server process, PostgreSQL (the postmaster and its
backends), Redis, the consoles, and the rest of the machine.  CPU per item is comparable
on a shared machine; latency is not, so none is reported.  Also per item: PostgreSQL
transactions (its pg_stat_database; approximate, as backends report them lazily).

`--mixed` adds bench/console.py's pattern: alarms at the rate, each
retired `--retire` seconds later, CPU per (alarm + retire).

`--code DIR` runs the server on another checkout's Python code (PYTHONPATH=DIR), for an
A/B of two versions in the same minutes.  `--strace` counts the server's socket system
calls per item (strace -c; round trips to PostgreSQL and Redis, answers, packets to
consoles).  `--profile PREFIX` records the server with py-spy during each phase
(PREFIX-alarms.json, ... in speedscope format; needs py-spy in the virtual environment,
and ptrace permission).

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from _consoles import ConsoleSpec, collect, console_processes
from _harness import CpuMeter, cluster, grid_position, login, new_citizen, service_pids

from dispatch.domain.users import Role

GRID = 1600
TAGS = ("kidnapping", "fire", "medical", "robbery", "suspicious")


def _alarm_body(index: int, run: str) -> bytes:
    # Grid points beyond the duplicate radius, a tag group per pass: no possible duplicates.
    lon, lat = grid_position(index % GRID)
    return msgspec.json.encode(
        {"tag": TAGS[index // GRID % len(TAGS)], "lon": lon, "lat": lat, "accuracy_m": 10.0,
         "datum": "wgs84", "client_time": datetime.now(UTC).isoformat(),
         "idempotency_key": f"cpu-{run}-{index:07d}"}
    )  # fmt: skip


class Poster:
    def __init__(self, http: aiohttp.ClientSession, base: str, citizens: Sequence[str]) -> None:
        self.http, self.base, self.citizens = http, base, citizens
        self.run = secrets.token_hex(3)
        self.index = 0
        self.errors: list[str] = []

    async def alarm(self) -> str | None:
        n = self.index
        self.index += 1
        headers = {"Authorization": f"Bearer {self.citizens[n % len(self.citizens)]}",
                   "Content-Type": "application/json"}  # fmt: skip
        body = _alarm_body(n, self.run)
        async with self.http.post(f"{self.base}/api/alarms", data=body, headers=headers) as r:
            answer = await r.read()
            if r.status != 201:
                self.errors.append(f"alarm {r.status} {answer[:200]!r}")
                return None
        incident_id: str = msgspec.json.decode(answer)["incident_id"]
        return incident_id

    async def retire(self, token: str, incident_id: str) -> None:
        url = f"{self.base}/api/incidents/{incident_id}/invalid"
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.post(url, json={"reason": "bench"}, headers=headers) as r:
            answer = await r.read()
            if r.status not in (200, 201):
                self.errors.append(f"retire {r.status} {answer[:200]!r}")


async def at_rate(
    rate: float, count: int, make: Callable[[int], Coroutine[Any, Any, Any]]
) -> list[Any]:
    """`count` calls of `make(i)` on a fixed schedule (open loop); their results."""
    tasks: list[asyncio.Task[Any]] = []
    start = time.monotonic() + 0.02
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(make(i)))
    return list(await asyncio.gather(*tasks))


async def seed(poster: Poster, count: int, concurrency: int = 16) -> None:
    left = iter(range(count))

    async def worker() -> None:
        for _ in left:
            await poster.alarm()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


@contextlib.asynccontextmanager
async def profiled(pid: int, path: str | None, seconds: float) -> AsyncIterator[None]:
    """py-spy on the server for about `seconds`, to `path` (speedscope), if asked."""
    if path is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    proc = await asyncio.create_subprocess_exec(
        py_spy, "record", "--pid", str(pid), "-d", str(max(1, int(seconds))), "-r", "200",
        "-o", path, "--format", "speedscope", "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), seconds + 30)
        print(f"  py-spy profile: {path}")


@contextlib.asynccontextmanager
async def syscalls_counted(pid: int, enabled: bool, into: dict[str, int]) -> AsyncIterator[None]:
    """With `enabled`, the server's socket system calls meanwhile, by name, into `into`
    (strace -c: a count that a busy machine does not blur, though strace slows the
    server, so CPU figures of such a run mean nothing)."""
    if not enabled:
        yield
        return
    out = Path(tempfile.mkdtemp(prefix="m110-strace-")) / "counts"
    proc = await asyncio.create_subprocess_exec(
        "strace", "-c", "-f", "-o", str(out), "-p", str(pid),
        "-e", "trace=sendto,sendmsg,recvfrom,recvmsg,write,writev,read,epoll_wait",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(1)  # attached
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        await proc.wait()
        for line in out.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit():
                into[parts[-1]] = int(parts[3])


async def pg_transactions(conn: Any) -> int:
    value = await conn.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database"
        " WHERE datname = current_database()"
    )
    return int(value)


def per_item(spent: Any, items: int) -> dict[str, float]:
    cpu = {name: round(1000 * sum(v) / max(items, 1), 3) for name, v in spent.groups.items()}
    cpu["other"] = round(1000 * spent.other_s / max(items, 1), 3)
    cpu["machine_cores"] = round(spent.machine_cores(), 2)
    return cpu


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    env = {"MICRO110_BACKGROUND_TASKS": "false", "MICRO110_DB_POOL_MAX": "30"}
    if args.code:
        env["PYTHONPATH"] = args.code
    result: dict[str, Any] = {"code": args.code or "this checkout", "rate": args.rate}
    async with cluster(1, **env) as c:
        base = c.urls[0]
        await c.add_staff("bench-commander", Role.COMMANDER)
        await c.add_staff("bench-dispatcher", Role.DISPATCHER)
        await c.add_staff("bench-retirer", Role.COMMANDER)
        server_pid = c.nodes[0].proc.pid
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            retirer = await login(http, base, "bench-retirer")
            tokens = [await login(http, base, n) for n in ("bench-commander", "bench-dispatcher")]
            citizens = [await new_citizen(http, base, f"cpu-phone-{n:03d}") for n in range(40)]
            poster = Poster(http, base, citizens)
            await seed(poster, args.open)
            consoles = [ConsoleSpec(base, tokens[k % 2]) for k in range(args.consoles)]

            async def last_seq() -> int:
                async with c.pool.acquire() as conn:
                    seq = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM incident_events")
                    return int(seq)

            pids = {"server": [server_pid]} | await service_pids(c.pool, c.redis_url)
            async with console_processes(consoles, 1) as (pipes, client_pids):
                meter = CpuMeter(pids | {"consoles": client_pids})
                count = int(args.rate * args.seconds)
                # Warm up (not measured): the first requests pay for imports and caches.
                warm = await at_rate(args.rate, int(args.rate), lambda _: poster.alarm())
                await at_rate(args.rate, len(warm), lambda i: poster.retire(retirer, warm[i]))
                print(f"seeded {args.open} open incidents; {len(consoles)} consoles live")

                async def phase(
                    name: str, make: Callable[[int], Coroutine[Any, Any, Any]]
                ) -> list[Any]:
                    before = meter.read()
                    async with c.pool.acquire() as conn:
                        xacts_before = await pg_transactions(conn)
                    calls: dict[str, int] = {}
                    async with profiled(server_pid, args.profile and f"{args.profile}-{name}.json",
                                        args.seconds), \
                            syscalls_counted(server_pid, args.strace, calls):  # fmt: skip
                        out = await at_rate(args.rate, count, make)
                        seq = await last_seq()
                        # Every request is answered; the fan-out of the last events follows.
                        await asyncio.sleep(0.5)
                    cpu = per_item(meter.spent(before, meter.read()), count)
                    async with c.pool.acquire() as conn:
                        # pg_stat_database lags by up to a second (stats_fetch_consistency).
                        await asyncio.sleep(1.1)
                        xacts = await pg_transactions(conn) - xacts_before
                    cpu["pg_transactions"] = round(xacts / count, 2)
                    for call, n in sorted(calls.items()):
                        cpu[f"server_{call}"] = round(n / count, 2)
                    result[f"{name}_cpu_ms"] = cpu
                    result[f"{name}_last_seq"] = seq
                    print(f"{name}: {count} at {args.rate:g}/s; CPU ms per item: {cpu}")
                    return out

                ids = await phase("alarms", lambda _: poster.alarm())
                await phase("retires", lambda i: poster.retire(retirer, ids[i]))
                if args.mixed:

                    async def alarm_then_retire(_: int) -> None:
                        incident_id = await poster.alarm()
                        if incident_id is not None:
                            await asyncio.sleep(args.retire)
                            await poster.retire(retirer, incident_id)

                    await phase("mixed", alarm_then_retire)
                logs = await collect(pipes, await last_seq(), 30)
            got = [len(log.received) for log in logs]
            result["events_per_console"] = got
            result["errors"] = len(poster.errors)
            for error in poster.errors[:3]:
                print(f"  {error}")
    result["load_avg"] = os.getloadavg()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="alarms (retires) per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--consoles", type=int, default=2, help="live console feeds")
    parser.add_argument("--open", type=int, default=1000, help="open incidents seeded first")
    parser.add_argument("--mixed", action="store_true", help="also alarms retired later")
    parser.add_argument("--retire", type=float, default=5.0, help="--mixed: retire after (s)")
    parser.add_argument("--code", help="run the server on this checkout's code (PYTHONPATH)")
    parser.add_argument("--profile", metavar="PREFIX", help="py-spy the server in each phase")
    parser.add_argument(
        "--strace", action="store_true", help="count the server's socket system calls per item"
    )
    args = parser.parse_args()
    if args.code:
        # `python -m` puts the working directory first on the server's path, before
        # PYTHONPATH: the server runs from the other checkout.
        args.code = str(Path(args.code).resolve())
        os.chdir(args.code)
    result = asyncio.run(main_async(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
