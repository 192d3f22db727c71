"""Soak: hours of ordinary work, sampled each minute, to show nothing creeps up.

    .venv/bin/python bench/soak.py --minutes 30 [--rate 50] [--consoles 20] [--plot soak.png]

Starts its own PostgreSQL, Redis and two `micro110 serve` nodes (bench/_services.py),
then for `--minutes`: silent alarms at `--rate` per second and a photo report every two
seconds from phone-like clients (bench/_phones.py, retrying with their keys), `--consoles`
dispatcher consoles on the feed (half per node), and two dispatchers who take the next
incident, chat with its reporter, add a note and resolve it, every second.

Each minute it samples, per node: resident memory (RSS), open file descriptors, and the
PostgreSQL connections of the whole cluster; and the p99 of the alarms' time to their
201 in that minute.  Goal over 30 minutes: after the first (warm-up) minutes, RSS and
descriptors flat (growth < 10%) and p99 flat.  `--plot` draws the four series.

Every acknowledged alarm must be in PostgreSQL and at every console at the end (as in
bench/faults.py).  The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from _harness import PASSWORD, percentile_ms, post_json
from _phones import Console, Phones
from _services import OwnCluster, own_cluster

from dispatch.auth.passwords import Passwords
from dispatch.domain.events import Actor
from dispatch.domain.users import Role
from dispatch.services.users import create_user
from dispatch.store.database import create_pool

WARMUP_MINUTES = 2
GROWTH_GOAL = 0.10
REFRESH_EVERY_S = 5 * 60


@dataclass
class Minute:
    minute: int
    rss_mib: list[float]
    fds: list[int]
    pg_connections: int
    alarms: int
    p99_ms: float
    workflow_errors: int


@dataclass
class Dispatcher:
    url: str
    token: str
    done: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


async def _work(dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    """Take the next incident, message its reporter, note, resolve; once a second."""
    headers = {"Authorization": f"Bearer {dispatcher.token}"}
    base = dispatcher.url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        while not stop.is_set():
            try:
                async with http.post(f"{base}/api/incidents/next", headers=headers) as answer:
                    incident = (await answer.json()).get("incident") if answer.ok else None
                if incident is not None:
                    path = f"{base}/api/incidents/{incident['id']}"
                    for url, body in (
                        (f"{path}/messages", {"body": "help is on the way", "client_key":
                                              secrets.token_hex(8)}),
                        (f"{path}/notes", {"text": "soak: handled"}),
                        (f"{path}/resolve", {"disposition": "assisted", "note": "soak"}),
                    ):  # fmt: skip
                        async with http.post(url, json=body, headers=headers) as answer:
                            key = str(answer.status)
                            dispatcher.statuses[key] = dispatcher.statuses.get(key, 0) + 1
                            dispatcher.errors += answer.status >= 400
                    dispatcher.done += 1
            except (aiohttp.ClientError, TimeoutError):
                dispatcher.errors += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop.wait()


async def _load(phones: Phones, rate: float, stop: asyncio.Event) -> None:
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        phones.send(photo=n % int(rate * 2) == 0 and n > 0, label="soak-")
        n += 1
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()


@dataclass
class Citizen:
    token: str
    refresh_token: str


async def _register(http: aiohttp.ClientSession, base_url: str, device_id: str) -> Citizen:
    status, body = await post_json(http, f"{base_url}/api/citizens", {"device_id": device_id})
    if status not in (200, 201):
        raise RuntimeError(f"citizen {device_id}: {status} {body}")
    return Citizen(body["token"], body["refresh_token"])


async def _keep_signed_in(
    urls: list[str], citizens: list[Citizen], tokens_now: list[str], stop: asyncio.Event
) -> None:
    """Phones refresh their (15-minute) citizen tokens as the real app does, every
    `REFRESH_EVERY_S`, so a soak longer than a token's life keeps reporting."""
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REFRESH_EVERY_S):
                    await stop.wait()
            if stop.is_set():
                return
            for n, citizen in enumerate(citizens):
                status, body = await post_json(
                    http, f"{urls[n % len(urls)]}/api/citizens/refresh",
                    {"refresh_token": citizen.refresh_token},
                )  # fmt: skip
                if status != 200:
                    raise RuntimeError(f"refresh of citizen {n}: {status} {body}")
                citizen.token, citizen.refresh_token = body["token"], body["refresh_token"]
                tokens_now[n] = citizen.token


async def _pg_connections(cluster: OwnCluster) -> int:
    conn = await cluster.connect()
    try:
        return int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid <> 0"))
    finally:
        await conn.close()


async def _staff(cluster: OwnCluster, count: int) -> list[str]:
    pool = await create_pool(cluster.database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            codes = frozenset(r["code"] for r in await conn.fetch("SELECT code FROM precincts"))
        for n in range(count):
            await create_user(
                pool, Passwords(), username=f"soak-{n}", password=PASSWORD,
                role=Role.DISPATCHER, precincts=codes, actor=Actor.system("bench"),
            )  # fmt: skip
    finally:
        await pool.close()
    tokens = []
    async with aiohttp.ClientSession() as http:
        for n in range(count):
            async with http.post(
                f"{cluster.urls[n % 2]}/api/auth/login",
                json={"username": f"soak-{n}", "password": PASSWORD},
            ) as answer:
                tokens.append((await answer.json())["token"])
    return tokens


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    minutes: list[Minute] = []
    with tempfile.TemporaryDirectory(prefix="m110s-") as tmp:
        async with own_cluster(Path(tmp), nodes=2) as cluster:
            for node in cluster.nodes:
                await node.start()
            tokens = await _staff(cluster, 4)
            async with aiohttp.ClientSession() as http:
                citizens = [
                    await _register(http, cluster.urls[0], f"soak-{i:03d}") for i in range(20)
                ]
            consoles = [
                Console(cluster.urls, tokens[k % 2], home=k % 2) for k in range(args.consoles)
            ]
            dispatchers = [
                Dispatcher(cluster.urls[k], tokens[2 + k]) for k in range(args.dispatchers)
            ]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(c.run(stop)) for c in consoles]
            procs = [psutil.Process(node.pid) for node in cluster.nodes if node.pid is not None]
            tokens_now = [c.token for c in citizens]  # Phones reads them at each send
            async with Phones(cluster.urls, tokens_now, f"s{secrets.token_hex(3)}") as phones:
                tasks.append(asyncio.create_task(_load(phones, args.rate, stop)))
                tasks.append(
                    asyncio.create_task(_keep_signed_in(cluster.urls, citizens, tokens_now, stop))
                )
                tasks += [asyncio.create_task(_work(d, stop)) for d in dispatchers]
                began = time.monotonic()
                for minute in range(1, args.minutes + 1):
                    await asyncio.sleep(max(0.0, began + 60 * minute - time.monotonic()))
                    window = [
                        d for d in phones.deliveries
                        if not d.photo and d.acked_at is not None
                        and began + 60 * (minute - 1) <= d.first_sent < began + 60 * minute
                    ]  # fmt: skip
                    sample = Minute(
                        minute=minute,
                        rss_mib=[round(p.memory_info().rss / 2**20, 1) for p in procs],
                        fds=[p.num_fds() for p in procs],
                        pg_connections=await _pg_connections(cluster),
                        alarms=len(window),
                        p99_ms=percentile_ms(
                            [d.acked_at - d.first_sent for d in window if d.acked_at], 99
                        ),
                        workflow_errors=sum(d.errors for d in dispatchers),
                    )
                    minutes.append(sample)
                    print(json.dumps(sample.__dict__), flush=True)
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                await phones.settle(60)
                acked = [d for d in phones.deliveries if d.acked_at is not None]
                conn = await cluster.connect()
                try:
                    stored = {
                        r["idempotency_key"]
                        for r in await conn.fetch(
                            "SELECT idempotency_key FROM reports WHERE idempotency_key = any($1)",
                            [d.key for d in acked],
                        )
                    }
                finally:
                    await conn.close()
    return {
        "minutes": [m.__dict__ for m in minutes],
        "acked": len(acked),
        "lost_in_db": sum(1 for d in acked if d.key not in stored),
        "unacked": sum(1 for d in phones.deliveries if d.acked_at is None),
        "handled_by_dispatchers": sum(d.done for d in dispatchers),
        "workflow_answers": [d.statuses for d in dispatchers],
        "console_reconnects": sum(c.connections - 1 for c in consoles),
    }


def _growth(values: list[float]) -> float | None:
    """Growth from the first minute after warm-up to the last."""
    if len(values) <= WARMUP_MINUTES + 1:
        return None
    first = values[WARMUP_MINUTES]
    return round((values[-1] - first) / first, 3) if first else None


def _plot(result: dict[str, Any], path: Path) -> None:
    from _plot import matplotlib_installed

    if not matplotlib_installed():
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = result["minutes"]
    xs = [m["minute"] for m in minutes]
    figure, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    for node in range(len(minutes[0]["rss_mib"])):
        axes[0][0].plot(xs, [m["rss_mib"][node] for m in minutes], label=f"node {node + 1}")
        axes[0][1].plot(xs, [m["fds"][node] for m in minutes], label=f"node {node + 1}")
    axes[1][0].plot(xs, [m["pg_connections"] for m in minutes])
    axes[1][1].plot(xs, [m["p99_ms"] for m in minutes])
    for ax, title in zip(
        [a for row in axes for a in row],
        ["RSS (MiB)", "open file descriptors", "PostgreSQL connections", "alarm p99 (ms)"],
        strict=True,
    ):
        ax.set_title(title)
        ax.set_ylim(bottom=0)
    axes[0][0].legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("minute")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--rate", type=float, default=50.0, help="alarms per second")
    parser.add_argument("--consoles", type=int, default=20)
    parser.add_argument("--dispatchers", type=int, default=2, help="0, 1 or 2")
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    rss = [max(m["rss_mib"]) for m in result["minutes"]]
    fds = [max(m["fds"]) for m in result["minutes"]]
    p99 = [m["p99_ms"] for m in result["minutes"]]
    result["growth_after_warmup"] = {"rss": _growth(rss), "fds": _growth(fds), "p99": _growth(p99)}
    grown = {k: v for k, v in result["growth_after_warmup"].items() if v is not None}
    misses = [f"{k} +{v:.0%}" for k, v in grown.items() if v > GROWTH_GOAL]
    if result["lost_in_db"]:
        misses.append(f"{result['lost_in_db']} acknowledged alarms not in PostgreSQL")
    verdict = "too short to judge" if not grown else "met" if not misses else "MISSED: "
    print(f"goals (after {WARMUP_MINUTES} warm-up minutes, growth < {GROWTH_GOAL:.0%}): "
          f"{verdict}{'; '.join(misses)}")  # fmt: skip
    if args.plot is not None:
        _plot(result, args.plot)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
