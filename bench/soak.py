"""Soak: hours of ordinary work, sampled each minute, to show nothing creeps up.

    .venv/bin/python bench/soak.py --minutes 30 [--rate 50] [--consoles 20] [--plot soak.png]

Starts its own PostgreSQL, Redis and two `micro110 serve` nodes (bench/_services.py),
then for `--minutes`: silent alarms at `--rate` per second and a photo report every two
seconds from phone-like clients (bench/_phones.py, retrying with their keys), `--consoles`
dispatcher consoles on the feed (half per node), and two dispatchers who take the next
incident, chat with its reporter, add a note, send it an officer (each dispatcher has
one, on duty) and resolve it, every second.  As in a real
centre, the open set stays steady: `--retire-after` seconds after its 201 each alarm's
incident is marked invalid through the workflow API by retiring dispatchers (one
account per node; 409 when a dispatcher has taken it meanwhile), so incidents leave at
the rate they arrive (`--retire-after 0`: never, only the two dispatchers' 2/s).

Each minute it samples, per node: resident memory (RSS), open file descriptors (and
those by kind: bench/_fds.py), and the PostgreSQL connections of the whole cluster; the
open incidents; and the p99 of the alarms' time to their 201 in that minute.  Goal over
30 minutes: after the `--warmup` minutes (2: the hub's replay memory fills in ~100 s at
100 events/s), RSS and descriptors flat (growth < 10%) and p99 flat.  The summary's
`growth` compares the first minute after the warm-up with the last, per node for RSS and
descriptors (the goal is judged on the node that grew most), and for p99 the median of
the last 5 minutes with that of the first 5 after the warm-up.  Descriptors
are judged without the connections this script's clients hold open to the node
(`bench_connections`, counted from this side): how many those are is the clients'
choice (the phones' HTTP client keeps one per request it once had in flight, reusing
them first-in first-out so that none ever idles out), and a socket the node failed to
close would still count, as it is not one the clients hold.  Both figures are printed.
`--plot` draws the series.

Every acknowledged alarm must be in PostgreSQL and at every console at the end (as in
bench/faults.py).  The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from _fds import fd_kinds
from _harness import PASSWORD, percentile_ms, post_json
from _phones import Console, Phones
from _services import Node, OwnCluster, own_cluster

from dispatch.auth.passwords import Passwords
from dispatch.domain.events import Actor
from dispatch.domain.incidents import OPEN_STATES
from dispatch.domain.users import Role
from dispatch.services.users import create_user
from dispatch.store.database import create_pool

WARMUP_MINUTES = 2
GROWTH_GOAL = 0.10
REFRESH_EVERY_S = 5 * 60
RETIRERS = 2  # accounts, one per node
RETIRE_CONCURRENCY = 16


@dataclass
class Minute:
    minute: int
    rss_mib: list[float]
    fds: list[int]
    fd_kinds: list[dict[str, int]]
    bench_connections: list[int]  # this process's TCP connections to each node
    pg_connections: int
    open_incidents: int
    alarms: int
    p99_ms: float
    retired: int
    workflow_errors: int


@dataclass
class Dispatcher:
    url: str
    token: str
    officer_id: int
    done: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


async def _work(dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    """Take the next incident, message its reporter, note, assign the dispatcher's
    officer, resolve; once a second."""
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
                        (f"{path}/assign", {"officer_ids": [dispatcher.officer_id]}),
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


@dataclass
class Retirer:
    """Marks each acknowledged alarm's incident invalid `after_s` seconds after its 201."""

    urls: list[str]
    tokens: list[str]
    after_s: float
    retired: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    _done: set[str] = field(default_factory=set)

    async def _one(
        self, http: aiohttp.ClientSession, incident_id: str, n: int, gate: asyncio.Semaphore
    ) -> None:
        url = f"{self.urls[n % len(self.urls)]}/api/incidents/{incident_id}/invalid"
        headers = {"Authorization": f"Bearer {self.tokens[n % len(self.tokens)]}"}
        async with gate:
            try:
                async with http.post(url, json={"reason": "soak"}, headers=headers) as answer:
                    await answer.read()
                    key = str(answer.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                key = type(exc).__name__
        self.statuses[key] = self.statuses.get(key, 0) + 1
        self.retired += key == "200"

    async def run(self, phones: Phones, stop: asyncio.Event) -> None:
        gate = asyncio.Semaphore(RETIRE_CONCURRENCY)
        tasks: set[asyncio.Task[None]] = set()
        waiting: list[int] = []  # deliveries not yet acknowledged, or not yet due
        cursor = 0
        n = 0
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=10)
        ) as http:
            while not stop.is_set():
                now = time.monotonic()
                waiting.extend(range(cursor, len(phones.deliveries)))
                cursor = len(phones.deliveries)
                still = []
                for k in waiting:
                    d = phones.deliveries[k]
                    if d.acked_at is None:
                        if d.refusal is None and now - d.first_sent < phones.give_up_s + 5:
                            still.append(k)
                    elif d.acked_at + self.after_s > now:
                        still.append(k)
                    elif d.incident_id is not None and d.incident_id not in self._done:
                        self._done.add(d.incident_id)  # a duplicate alarm shares one
                        task = asyncio.create_task(self._one(http, d.incident_id, n, gate))
                        n += 1
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                waiting = still
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await stop.wait()
            await asyncio.gather(*tasks, return_exceptions=True)


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


def _connections_to(nodes: list[Node]) -> list[int]:
    """This process's open TCP connections to each node (phones, consoles, dispatchers):
    a node's `http in` descriptors beyond these are connections its clients have left."""
    conns = psutil.Process().net_connections(kind="tcp")
    return [
        sum(1 for c in conns if getattr(c.raddr, "port", None) == node.port
            and c.status == psutil.CONN_ESTABLISHED)
        for node in nodes
    ]  # fmt: skip


async def _pg_counts(cluster: OwnCluster) -> tuple[int, int]:
    """PostgreSQL's connections (this one included) and the open incidents."""
    conn = await cluster.connect()
    try:
        connections = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid <> 0")
        open_incidents = await conn.fetchval(
            "SELECT count(*) FROM incidents WHERE state = any($1::text[])",
            [str(s) for s in OPEN_STATES],
        )
        return int(connections), int(open_incidents)
    finally:
        await conn.close()


async def _staff(cluster: OwnCluster, count: int, officers: int) -> tuple[list[str], list[int]]:
    """`count` dispatchers' tokens; the ids of `officers` officers (every precinct), on duty."""
    pool = await create_pool(cluster.database_url, min_size=1, max_size=2)
    officer_ids = []
    try:
        async with pool.acquire() as conn:
            codes = frozenset(r["code"] for r in await conn.fetch("SELECT code FROM precincts"))
        for n in range(count):
            await create_user(
                pool, Passwords(), username=f"soak-{n}", password=PASSWORD,
                role=Role.DISPATCHER, precincts=codes, actor=Actor.system("bench"),
            )  # fmt: skip
        for n in range(officers):
            officer = await create_user(
                pool, Passwords(), username=f"soak-officer-{n}", password=PASSWORD,
                role=Role.OFFICER, precincts=codes, callsign=f"SOAK-{n}",
                actor=Actor.system("bench"),
            )  # fmt: skip
            officer_ids.append(int(officer.id))
    finally:
        await pool.close()

    async def login(http: aiohttp.ClientSession, url: str, username: str) -> str:
        body = {"username": username, "password": PASSWORD}
        async with http.post(f"{url}/api/auth/login", json=body) as answer:
            if answer.status != 200:
                raise RuntimeError(f"login {username}: {answer.status} {await answer.text()}")
            return str((await answer.json())["token"])

    async with aiohttp.ClientSession() as http:
        tokens = [await login(http, cluster.urls[n % 2], f"soak-{n}") for n in range(count)]
        for n in range(officers):
            token = await login(http, cluster.urls[n % 2], f"soak-officer-{n}")
            async with http.post(
                f"{cluster.urls[n % 2]}/api/officers/me/duty", json={"on_duty": True},
                headers={"Authorization": f"Bearer {token}"},
            ) as answer:  # fmt: skip
                if answer.status != 200:
                    raise RuntimeError(f"on duty: {answer.status} {await answer.text()}")
    return tokens, officer_ids


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    minutes: list[Minute] = []
    with tempfile.TemporaryDirectory(prefix="m110s-") as tmp:
        async with own_cluster(Path(tmp), nodes=2) as cluster:
            for node in cluster.nodes:
                await node.start()
            tokens, officer_ids = await _staff(cluster, 4 + RETIRERS, officers=2)
            async with aiohttp.ClientSession() as http:
                citizens = [
                    await _register(http, cluster.urls[0], f"soak-{i:03d}") for i in range(20)
                ]
            consoles = [
                Console(cluster.urls, tokens[k % 2], home=k % 2) for k in range(args.consoles)
            ]
            dispatchers = [
                Dispatcher(cluster.urls[k], tokens[2 + k], officer_ids[k])
                for k in range(args.dispatchers)
            ]
            retirer = Retirer(cluster.urls, tokens[4:], args.retire_after)
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
                if args.retire_after > 0:
                    tasks.append(asyncio.create_task(retirer.run(phones, stop)))
                began = time.monotonic()
                for minute in range(1, args.minutes + 1):
                    await asyncio.sleep(max(0.0, began + 60 * minute - time.monotonic()))
                    window = [
                        d for d in phones.deliveries
                        if not d.photo and d.acked_at is not None
                        and began + 60 * (minute - 1) <= d.first_sent < began + 60 * minute
                    ]  # fmt: skip
                    pg_connections, open_incidents = await _pg_counts(cluster)
                    sample = Minute(
                        minute=minute,
                        rss_mib=[round(p.memory_info().rss / 2**20, 1) for p in procs],
                        fds=[p.num_fds() for p in procs],
                        fd_kinds=[
                            fd_kinds(p.pid, port=node.port, evidence=node.data_dir / "evidence")
                            for p, node in zip(procs, cluster.nodes, strict=True)
                        ],
                        bench_connections=_connections_to(cluster.nodes),
                        pg_connections=pg_connections,
                        open_incidents=open_incidents,
                        alarms=len(window),
                        p99_ms=percentile_ms(
                            [d.acked_at - d.first_sent for d in window if d.acked_at], 99
                        ),
                        retired=retirer.retired,
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
        "retired": retirer.retired,
        "retire_answers": retirer.statuses,
        "console_reconnects": sum(c.connections - 1 for c in consoles),
    }


def _growth_pct(values: list[float], warmup: int) -> float | None:
    """Growth in percent from the first minute after the warm-up to the last; None if
    the run is too short (no minute after the first one after the warm-up)."""
    if len(values) <= warmup + 1:
        return None
    first = values[warmup]
    return round(100 * (values[-1] - first) / first, 1) if first else None


def _window_growth_pct(values: list[float], warmup: int, window: int = 5) -> float | None:
    """Growth in percent of the median of the last `window` minutes over the median of
    the first `window` after the warm-up (fewer when the run is short): a minute's p99
    is a few dozen of its slowest answers, and moves by a fifth from one steady minute
    to the next, so two single minutes say little about a trend."""
    judged = values[warmup:]
    if len(judged) < 2:
        return None
    width = max(1, min(window, len(judged) // 2))
    first = statistics.median(judged[:width])
    last = statistics.median(judged[-width:])
    return round(100 * (last - first) / first, 1) if first else None


def growth(minutes: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    """The figures the goal is judged on: RSS and descriptors per node (and the node
    that grew most), p99, and the open incidents at both ends.  `fds_less_clients_pct`
    (what the descriptors are judged on) leaves out the connections the bench's clients
    hold open to the node, counted from the clients' side (`bench_connections`; where a
    sample lacks it, the node's `http in` descriptors): as many as they once had
    requests in flight, which a node holds exactly as long as its clients do."""
    nodes = len(minutes[0]["rss_mib"]) if minutes else 0
    rss = [_growth_pct([m["rss_mib"][k] for m in minutes], warmup) for k in range(nodes)]
    fds = [_growth_pct([m["fds"][k] for m in minutes], warmup) for k in range(nodes)]

    def clients(m: dict[str, Any], k: int) -> int:
        held = m.get("bench_connections")
        return int(held[k]) if held else int(m["fd_kinds"][k].get("http in", 0))

    own = [
        _growth_pct([m["fds"][k] - clients(m, k) for m in minutes], warmup) for k in range(nodes)
    ]
    judged = len(minutes) > warmup + 1

    def most(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return max(known) if known else None

    return {
        "warmup_minutes": warmup,
        "from_minute": minutes[warmup]["minute"] if judged else None,
        "to_minute": minutes[-1]["minute"] if judged else None,
        "rss_pct": most(rss),
        "fds_pct": most(fds),
        "p99_pct": _window_growth_pct([m["p99_ms"] for m in minutes], warmup),
        "fds_less_clients_pct": most(own),
        "rss_pct_per_node": rss,
        "fds_pct_per_node": fds,
        "open_incidents": [minutes[warmup]["open_incidents"], minutes[-1]["open_incidents"]]
        if judged
        else None,
    }


def _plot(result: dict[str, Any], path: Path) -> None:
    from _plot import matplotlib_installed

    if not matplotlib_installed():
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = result["minutes"]
    warmup = result["growth"]["warmup_minutes"]
    xs = [m["minute"] for m in minutes]
    figure, axes = plt.subplots(2, 3, figsize=(14, 6), sharex=True)
    for node in range(len(minutes[0]["rss_mib"])):
        axes[0][0].plot(xs, [m["rss_mib"][node] for m in minutes], label=f"node {node + 1}")
        axes[0][1].plot(xs, [m["fds"][node] for m in minutes], label=f"node {node + 1}")
    kinds = sorted({k for m in minutes for node in m["fd_kinds"] for k in node})
    for kind in kinds:
        axes[0][2].plot(xs, [sum(n.get(kind, 0) for n in m["fd_kinds"]) for m in minutes],
                        label=kind)  # fmt: skip
    axes[1][0].plot(xs, [m["pg_connections"] for m in minutes])
    axes[1][1].plot(xs, [m["p99_ms"] for m in minutes])
    axes[1][2].plot(xs, [m["open_incidents"] for m in minutes])
    for ax, title in zip(
        [a for row in axes for a in row],
        ["RSS (MiB)", "open file descriptors", "descriptors by kind (both nodes)",
         "PostgreSQL connections", "alarm p99 (ms)", "open incidents"],
        strict=True,
    ):  # fmt: skip
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.axvline(warmup + 0.5, color="grey", linestyle=":", linewidth=1)  # warm-up's end
    axes[0][0].legend(fontsize=8)
    axes[0][2].legend(fontsize=6)
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
    parser.add_argument(
        "--retire-after", type=float, default=30.0,
        help="seconds after its 201 an alarm's incident is marked invalid (0: never)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=int, default=WARMUP_MINUTES, help="minutes left out of the goal"
    )
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    result["growth"] = grown = growth(result["minutes"], args.warmup)
    judged = grown["from_minute"] is not None
    judged_on = (("rss", "rss_pct"), ("fds less the clients' connections",
                  "fds_less_clients_pct"), ("p99", "p99_pct"))  # fmt: skip
    misses = [
        f"{name} +{grown[key]:g}%"
        for name, key in judged_on
        if grown[key] is not None and grown[key] > 100 * GROWTH_GOAL
    ]
    if result["lost_in_db"]:
        misses.append(f"{result['lost_in_db']} acknowledged alarms not in PostgreSQL")
    verdict = "too short to judge" if not judged else "met" if not misses else "MISSED: "
    span = f"minute {grown['from_minute']} -> {grown['to_minute']}" if judged else "no minutes"
    print(f"goals ({span}, after {args.warmup} warm-up minutes, growth < {GROWTH_GOAL:.0%}): "
          f"{verdict}{'; '.join(misses)}")  # fmt: skip
    if judged:
        every = f"all descriptors, the clients' connections included, {grown['fds_pct']:+g}%"
        print(", ".join(f"{name} {grown[key]:+g}%" for name, key in judged_on) + f"; {every}")
    if args.plot is not None:
        _plot(result, args.plot)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
