"""Faults: under each one, nothing acknowledged is lost, nothing counted twice.

    .venv/bin/python bench/faults.py [--scenario NAME ...] [--rate 40] [--fault-s 10]

Starts its own PostgreSQL (embedded, driven with pg_ctl), its own redis-server (no
persistence) and two `micro110 serve` nodes on them, all under a temporary directory
(bench/_services.py): every fault below touches only those processes.  Then, for each
scenario, phone-like clients (bench/_phones.py) send silent alarms at `--rate` per
second, round robin over the nodes, each with its own idempotency key, sending it again
with the same key until a 201 (the other node after a refused connection or a timeout,
after `Retry-After` seconds when a 429/503 says so); four dispatcher consoles (two per
node) reconnect and resume after the last seq they have whenever their connection ends.
The consoles run in `--console-procs` processes of their own (bench/_console_pool.py),
so that a storm of them is not held back by the process that sends the alarms.
A few seconds into the load the fault strikes:

* `kill_node`: `kill -9` of node 2; it is started again 5 s later;
* `restart_node`: the reconnect storm: node 2 killed and started again at once (run it
  with `--consoles-per-node 100 --console-procs 4`): every console resumed, nothing
  missed or twice, within 10 s (`consoles_back_s`);
* `redis_restart_empty`: Redis killed and started again empty; two dispatchers take
  incidents with `next` on both nodes meanwhile (no incident may be taken twice), and
  the queue index must be rebuilt (every queued incident back in Redis);
* `postgres_stop`: PostgreSQL stopped (fast shutdown) for `--fault-s` seconds, then
  started: 503 with `Retry-After` meanwhile, serving within 5 s of its return;
* `postgres_restart`: PostgreSQL restarted: every pooled connection breaks;
* `redis_pause`: Redis stopped with SIGSTOP for `--fault-s` seconds, then SIGCONT;
* `evidence_full`: every node's evidence directory (a small tmpfs, mounted for the run
  when this runs as root) filled up for `--fault-s` seconds while phones also send
  photo reports: these are refused with a clear 5xx, nothing half-written (no row, no
  stray file), and alarms go on as before.

Once the load has stopped and every delivery has been acknowledged (or given up after
`--give-up` seconds: reported as `unacked`, never acknowledged, so not lost), every
console must have caught up with the feed.  Then PostgreSQL is asked:

* `acked`: deliveries answered 201;
* `lost`: acknowledged but not in PostgreSQL, or never shown to a console that was
  there throughout (each delivery counted once; `missing_in_db` and
  `missing_at_consoles` say which);
* `duplicated`: more than one incident for one idempotency key, or one event (seq)
  delivered twice to a console;
* `false_acks`: a 201 naming an incident that PostgreSQL does not hold for that key;
* `recovery_s`: from the end of the fault (for `kill_node`, the kill) until an alarm
  sent after it was acknowledged and every console was connected and resumed.

One JSON line per scenario; the last line is one JSON object with all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from _console_pool import ConsolePool
from _harness import PASSWORD, new_citizen
from _phones import Delivery, Phones
from _services import OwnCluster, own_cluster

from dispatch.auth.passwords import Passwords
from dispatch.domain.events import Actor
from dispatch.domain.users import Role
from dispatch.infra.queue_index import GLOBAL_KEY
from dispatch.services.users import create_user
from dispatch.store.database import create_pool

SCENARIOS = (
    "kill_node",
    "restart_node",
    "redis_restart_empty",
    "postgres_stop",
    "postgres_restart",
    "redis_pause",
    "evidence_full",
)
CITIZENS = 20
CONSOLES_PER_NODE = 2
STAFF_ACCOUNTS = 4  # consoles share these dispatchers' logins
EVIDENCE_TMPFS = "8m"
GOALS = {"lost": 0, "duplicated": 0, "false_acks": 0}
RECOVERY_GOAL_S = {"postgres_stop": 5.0, "restart_node": 10.0}


@dataclass
class Outcome:
    scenario: str
    acked: int
    lost: int
    duplicated: int
    false_acks: int
    recovery_s: float | None
    sent: int = 0
    unacked: int = 0
    refused: int = 0
    retries: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    retry_after_missing: int = 0
    ack_wait_p50_s: float | None = None
    ack_wait_max_s: float | None = None
    missing_in_db: int = 0
    missing_at_consoles: int = 0
    console_duplicates: int = 0
    console_reconnects: int = 0
    console_resyncs: int = 0
    console_refusals: int = 0
    first_ack_after_s: float | None = None
    consoles_back_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    cluster: OwnCluster
    phones: Phones
    consoles: ConsolePool
    staff_tokens: list[str]
    rate: float
    fault_s: float
    before_s: float = 4.0
    after_s: float = 8.0


# --- the faults -----------------------------------------------------------------------
# Each strikes, waits out its fault and returns (fault started, fault ended) on
# time.monotonic(), plus figures of its own.

Fault = Callable[[Run], Awaitable[tuple[float, float, dict[str, Any]]]]


async def _in_thread(fn: Callable[[], object]) -> None:
    await asyncio.get_running_loop().run_in_executor(None, fn)


async def kill_node(run: Run) -> tuple[float, float, dict[str, Any]]:
    node = run.cluster.nodes[-1]
    node.kill()
    killed = time.monotonic()
    await asyncio.sleep(5.0)
    await node.start()
    return killed, killed, {"node_back_after_s": round(time.monotonic() - killed, 2)}


async def restart_node(run: Run) -> tuple[float, float, dict[str, Any]]:
    """The reconnect storm: node 2 killed and started again at once; its consoles
    reconnect (to node 1 while it is down) and resume."""
    node = run.cluster.nodes[-1]
    node.kill()
    killed = time.monotonic()
    await node.start()
    return killed, killed, {"node_back_after_s": round(time.monotonic() - killed, 2)}


async def redis_restart_empty(run: Run) -> tuple[float, float, dict[str, Any]]:
    stop = asyncio.Event()
    claims = [asyncio.create_task(_claim_loop(run, n, stop)) for n in range(len(run.staff_tokens))]
    await asyncio.sleep(2.0)
    redis = run.cluster.redis
    start = time.monotonic()
    redis.kill()
    await asyncio.sleep(1.0)
    await _in_thread(redis.start)
    back = time.monotonic()
    rebuilt = await _index_agrees_after(run, back, timeout_s=60)
    await asyncio.sleep(2.0)
    stop.set()
    taken = await asyncio.gather(*claims)
    counts = Counter(incident for got in taken for incident in got)
    return (
        start,
        back,
        {
            "claims": sum(counts.values()),
            "double_claims": sum(n - 1 for n in counts.values() if n > 1),
            "index_rebuilt_s": rebuilt,
        },
    )


async def postgres_stop(run: Run) -> tuple[float, float, dict[str, Any]]:
    postgres = run.cluster.postgres
    start = time.monotonic()
    await _in_thread(postgres.stop)
    await asyncio.sleep(run.fault_s)
    await _in_thread(postgres.start_again)
    return start, time.monotonic(), {}


async def postgres_restart(run: Run) -> tuple[float, float, dict[str, Any]]:
    postgres = run.cluster.postgres
    start = time.monotonic()
    await _in_thread(postgres.stop)
    await _in_thread(postgres.start_again)
    return start, time.monotonic(), {"down_s": round(time.monotonic() - start, 2)}


async def redis_pause(run: Run) -> tuple[float, float, dict[str, Any]]:
    redis = run.cluster.redis
    start = time.monotonic()
    redis.pause()
    try:
        await asyncio.sleep(run.fault_s)
    finally:
        redis.resume()
    back = time.monotonic()
    return start, back, {"index_agrees_s": await _index_agrees_after(run, back, timeout_s=60)}


def _evidence_dirs(run: Run) -> list[Path]:
    return [node.data_dir / "evidence" for node in run.cluster.nodes]


def _fill(directory: Path) -> Path:
    """Fill the file system of `directory` to the last byte; the filler's path."""
    filler = directory / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):  # big writes, then what is left
            with contextlib.suppress(OSError):  # ENOSPC: on to smaller writes
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


async def evidence_full(run: Run) -> tuple[float, float, dict[str, Any]]:
    fillers = []
    start = time.monotonic()
    for directory in _evidence_dirs(run):
        directory.mkdir(exist_ok=True)
        fillers.append(_fill(directory))
    photos: list[Delivery] = []
    alarms_before = len(run.phones.deliveries)
    ticks = int(run.fault_s * 2)
    for _ in range(ticks):  # 2 photo reports a second while the disk is full
        photos.append(run.phones.send(photo=True, label="photo-"))
        await asyncio.sleep(0.5)
    for filler in fillers:
        filler.unlink()
    back = time.monotonic()
    during = [d for d in run.phones.deliveries[alarms_before:] if not d.photo]
    refusals = Counter(s for d in photos for s in d.statuses if s != "201")
    return (
        start,
        back,
        {
            "photo_reports": len(photos),
            "photo_refusals": dict(refusals),
            "photos_acked_while_full": sum(
                1 for d in photos if d.acked_at is not None and d.acked_at < back
            ),
            "alarms_during": len(during),
            "alarms_acked_during": sum(
                1 for d in during if d.acked_at is not None and d.acked_at < back
            ),
        },
    )


FAULTS: dict[str, Fault] = {
    "kill_node": kill_node,
    "restart_node": restart_node,
    "redis_restart_empty": redis_restart_empty,
    "postgres_stop": postgres_stop,
    "postgres_restart": postgres_restart,
    "redis_pause": redis_pause,
    "evidence_full": evidence_full,
}


async def _claim_loop(run: Run, n: int, stop: asyncio.Event) -> list[str]:
    """One dispatcher taking the next incident every 0.2 s on its node: what it got."""
    url = run.cluster.urls[n % len(run.cluster.urls)]
    headers = {"Authorization": f"Bearer {run.staff_tokens[n]}"}
    got: list[str] = []
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while not stop.is_set():
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.post(f"{url}/api/incidents/next", headers=headers) as response:
                    if response.status == 200:
                        incident = (await response.json()).get("incident")
                        if incident is not None:
                            got.append(str(incident["id"]))
            await asyncio.sleep(0.2)
    return got


async def _index_agrees_after(run: Run, since: float, timeout_s: float) -> float | None:
    """Seconds from `since` until every incident PostgreSQL has had queued for 2 s is in
    the Redis queue index; None if that did not happen within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    redis = run.cluster.redis_client()
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ConnectionError, TimeoutError):
                conn = await run.cluster.connect()
                try:
                    queued = {
                        str(r["id"])
                        for r in await conn.fetch(
                            """SELECT id FROM incidents WHERE state = 'queued'
                               AND received_at < now() - interval '2 seconds'"""
                        )
                    }
                finally:
                    await conn.close()
                indexed = {m.decode() for m in await redis.zrange(GLOBAL_KEY, 0, -1)}
                if queued <= indexed:
                    return round(time.monotonic() - since, 2)
            await asyncio.sleep(0.25)
    finally:
        await redis.aclose()
    return None


# --- one scenario ---------------------------------------------------------------------


async def _healthy(run: Run, timeout_s: float = 90) -> None:
    """Every node answers /readyz 200 and every console is connected."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while time.monotonic() < deadline:
            ready = 0
            for url in run.cluster.urls:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{url}/readyz") as response:
                        ready += response.status == 200
            if ready == len(run.cluster.urls) and await run.consoles.connected():
                return
            await asyncio.sleep(0.25)
    raise RuntimeError("the cluster did not become healthy")


async def _load(run: Run, label: str, stop: asyncio.Event) -> None:
    """Alarms at `run.rate` per second until `stop`, on a fixed schedule."""
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        run.phones.send(label=label)
        n += 1
        delay = start + n / run.rate - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()


async def _feed_head(run: Run) -> int:
    conn = await run.cluster.connect()
    try:
        return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM incident_events"))
    finally:
        await conn.close()


async def _stored(run: Run, keys: Sequence[str]) -> dict[str, list[str]]:
    """Idempotency key -> the incidents PostgreSQL holds for it."""
    conn = await run.cluster.connect()
    try:
        rows = await conn.fetch(
            """SELECT r.idempotency_key, r.incident_id FROM reports r
               JOIN incidents i ON i.id = r.incident_id
               WHERE r.idempotency_key = any($1::text[])""",
            list(keys),
        )
    finally:
        await conn.close()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["idempotency_key"], []).append(str(row["incident_id"]))
    return found


async def _stray_evidence(run: Run) -> int:
    """Files in the evidence directories that no attachment refers to."""
    conn = await run.cluster.connect()
    try:
        keys = {r["storage_key"] for r in await conn.fetch("SELECT storage_key FROM attachments")}
    finally:
        await conn.close()
    stray = 0
    for root in _evidence_dirs(run):
        for path in root.rglob("*"):
            if path.is_file() and str(path.relative_to(root)) not in keys:
                stray += 1
    return stray


def _seconds(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def scenario(run: Run, name: str, give_up_s: float) -> Outcome:
    await _healthy(run)
    first = len(run.phones.deliveries)
    # Figures taken now (a snapshot of the consoles in their processes, or the live ones).
    before = await run.consoles.snapshot()
    marks = [(len(c.received), c.connections) for c in before]
    failures_before = sum((c.failures for c in before), Counter[str]())
    reasons_before = sum((c.drop_reasons for c in before), Counter[str]())
    refusals_before = sum(len(c.refused) for c in before)
    resyncs_before = sum(c.resyncs for c in before)
    dropped_before = sum(len(c.disconnected_at) for c in before)
    stop = asyncio.Event()
    load = asyncio.create_task(_load(run, f"{name}-", stop))
    await asyncio.sleep(run.before_s)
    started, ended, extra = await FAULTS[name](run)
    await asyncio.sleep(run.after_s)
    stop.set()
    await load
    await run.phones.settle(give_up_s + 10)
    deliveries = run.phones.deliveries[first:]
    head = await _feed_head(run)
    await run.consoles.wait_for(head, 60)
    consoles = await run.consoles.snapshot()

    acked = [d for d in deliveries if d.acked_at is not None]
    stored = await _stored(run, [d.key for d in deliveries])
    missing_in_db = {d.key for d in acked if d.key not in stored}
    false_acks = sum(
        1 for d in acked for incident in d.ack_incidents if incident not in stored.get(d.key, [])
    )
    duplicated_keys = sum(len(v) - 1 for v in stored.values() if len(v) > 1)
    console_missing: set[str] = set()
    console_duplicates = 0
    for console, (mark, _) in zip(consoles, marks, strict=True):
        seqs = Counter(seq for _, seq, _, _ in console.received[mark:])
        console_duplicates += sum(n - 1 for n in seqs.values() if n > 1)
        shown = {i for _, _, ev, i in console.received[mark:] if ev == "incident.created"}
        console_missing |= {d.key for d in acked if d.incident_id not in shown}
    lost = missing_in_db | console_missing
    first_ack = min(
        (d.acked_at for d in acked if d.acked_at is not None and d.acked_at >= ended), default=None
    )
    back = []
    for console in consoles:
        # A console that lost its connection during the fault (or as it ended): when it
        # had resumed again.  Drops later on are reported (consoles_dropped_at_s), not
        # counted against this fault's recovery.
        dropped = [t for t in console.disconnected_at if started <= t <= ended + 2.0]
        if dropped:
            resumed = [t for t in console.resumed_at if t > max(dropped)]
            back.append((min(resumed) if resumed else time.monotonic()) - ended)
    waits = [d.acked_at - d.first_sent for d in acked if d.acked_at is not None]
    first_ack_after = None if first_ack is None else round(first_ack - ended, 2)
    consoles_back = round(max(back), 2) if back else None
    recovery = None if first_ack_after is None else max(first_ack_after, consoles_back or 0.0)
    failures = sum((c.failures for c in consoles), Counter[str]()) - failures_before
    if failures:
        extra["console_connect_failures"] = dict(failures.most_common(5))
    reasons = sum((c.drop_reasons for c in consoles), Counter[str]()) - reasons_before
    if reasons:
        extra["console_drop_reasons"] = dict(reasons)
    dropped = sorted(t for c in consoles for t in c.disconnected_at)[dropped_before:]
    if dropped:
        extra["consoles_dropped_at_s"] = [round(t - started, 2) for t in dropped]
    if name == "evidence_full":
        extra["stray_evidence_files"] = await _stray_evidence(run)
    answers: Counter[str] = Counter()
    for d in deliveries:
        answers.update(d.statuses)
    return Outcome(
        scenario=name,
        acked=len(acked),
        lost=len(lost),
        duplicated=duplicated_keys + console_duplicates,
        false_acks=false_acks,
        recovery_s=None if recovery is None else round(max(recovery, 0.0), 2),
        sent=len(deliveries),
        unacked=sum(1 for d in deliveries if d.acked_at is None and d.refusal is None),
        refused=sum(1 for d in deliveries if d.refusal is not None),
        retries=sum(d.attempts - 1 for d in deliveries),
        answers=dict(sorted(answers.items())),
        retry_after_missing=sum(d.retry_after_missing for d in deliveries),
        ack_wait_p50_s=_seconds(waits, 0.5),
        ack_wait_max_s=_seconds(waits, 1.0),
        missing_in_db=len(missing_in_db),
        missing_at_consoles=len(console_missing),
        console_duplicates=console_duplicates,
        console_reconnects=sum(
            c.connections - n for c, (_, n) in zip(consoles, marks, strict=True)
        ),
        console_resyncs=sum(c.resyncs for c in consoles) - resyncs_before,
        console_refusals=sum(len(c.refused) for c in consoles) - refusals_before,
        first_ack_after_s=first_ack_after,
        consoles_back_s=consoles_back,
        extra=extra | {"fault_s": round(ended - started, 2)},
    )


# --- the run --------------------------------------------------------------------------


@contextlib.contextmanager
def _evidence_tmpfs(dirs: Sequence[Path], wanted: bool) -> Any:
    """A small tmpfs on each evidence directory (root only); unmounted afterwards."""
    mounted: list[Path] = []
    try:
        if wanted:
            if os.geteuid() != 0 or shutil.which("mount") is None:
                raise SystemExit("evidence_full mounts a tmpfs: run it as root, or leave it out")
            for directory in dirs:
                directory.mkdir(parents=True, exist_ok=True)
                subprocess.run(
                    ["mount", "-t", "tmpfs", "-o", f"size={EVIDENCE_TMPFS},mode=0700",
                     "micro110-faults", str(directory)],
                    check=True,
                )  # fmt: skip
                mounted.append(directory)
        yield
    finally:
        for directory in mounted:
            result = subprocess.run(["umount", str(directory)], check=False)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", str(directory)], check=False)


async def _staff(cluster: OwnCluster, count: int) -> list[str]:
    pool = await create_pool(cluster.database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            precincts = frozenset(r["code"] for r in await conn.fetch("SELECT code FROM precincts"))
        for n in range(count):
            await create_user(
                pool, Passwords(), username=f"faults-dispatcher-{n}", password=PASSWORD,
                role=Role.DISPATCHER, precincts=precincts, actor=Actor.system("bench"),
            )  # fmt: skip
    finally:
        await pool.close()
    tokens = []
    async with aiohttp.ClientSession() as http:
        for n in range(count):
            url = cluster.urls[n % len(cluster.urls)]
            async with http.post(
                f"{url}/api/auth/login",
                json={"username": f"faults-dispatcher-{n}", "password": PASSWORD},
            ) as response:
                body = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"login: {response.status} {body}")
                tokens.append(body["token"])
    return tokens


def _copy_logs(workdir: Path, to: Path) -> None:
    to.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.stderr"):
        shutil.copy(log, to / log.name)


async def _main(args: argparse.Namespace) -> list[Outcome]:
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="m110f-") as tmp:
        workdir = Path(tmp)
        env = {"MICRO110_BACKGROUND_TASKS": "true"}
        async with own_cluster(workdir, nodes=2, env=env) as cluster:
            evidence = [node.data_dir / "evidence" for node in cluster.nodes]
            with _evidence_tmpfs(evidence, "evidence_full" in args.scenario):
                for node in cluster.nodes:
                    await node.start()
                consoles_n = args.consoles_per_node * len(cluster.nodes)
                tokens = await _staff(cluster, STAFF_ACCOUNTS + 2)
                async with aiohttp.ClientSession() as http:
                    citizens = [
                        await new_citizen(http, cluster.urls[0], f"faults-{i:03d}")
                        for i in range(CITIZENS)
                    ]
                specs = [
                    (tokens[k % STAFF_ACCOUNTS], k % len(cluster.urls)) for k in range(consoles_n)
                ]
                run_id = secrets.token_hex(3)
                try:
                    async with (
                        ConsolePool.start(cluster.urls, specs, args.console_procs) as consoles,
                        Phones(
                            cluster.urls, citizens, f"f{run_id}", give_up_s=args.give_up
                        ) as phones,
                    ):
                        run = Run(
                            cluster, phones, consoles, tokens[STAFF_ACCOUNTS:], args.rate,
                            args.fault_s,
                        )  # fmt: skip
                        print(
                            f"{len(cluster.nodes)} nodes, {consoles_n} consoles in "
                            f"{args.console_procs or 'this'} process(es), {CITIZENS} "
                            f"phones, {args.rate:g} alarms/s; data under {workdir}",
                            flush=True,
                        )
                        for name in args.scenario:
                            outcome = await scenario(run, name, args.give_up)
                            outcomes.append(outcome)
                            print(json.dumps(asdict(outcome)), flush=True)
                finally:
                    for node in cluster.nodes:
                        await node.stop()
                    if args.logs is not None:
                        _copy_logs(workdir, args.logs)
    return outcomes


def _goals(outcomes: Sequence[Outcome]) -> list[str]:
    misses = []
    for o in outcomes:
        for key, goal in GOALS.items():
            if getattr(o, key) > goal:
                misses.append(f"{o.scenario}: {key} {getattr(o, key)}")
        limit = RECOVERY_GOAL_S.get(o.scenario)
        if limit is not None and (o.recovery_s is None or o.recovery_s > limit):
            misses.append(f"{o.scenario}: recovery {o.recovery_s} s > {limit:g} s")
        if o.unacked:
            misses.append(f"{o.scenario}: {o.unacked} never acknowledged")
    return misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="(repeatable) default: all"
    )
    parser.add_argument("--rate", type=float, default=40.0, help="alarms per second (< 200)")
    parser.add_argument("--fault-s", type=float, default=10.0, help="how long a fault lasts")
    parser.add_argument("--give-up", type=float, default=120.0, help="a phone's patience, s")
    parser.add_argument(
        "--consoles-per-node", type=int, default=CONSOLES_PER_NODE,
        help="console feeds per node (the reconnect storm: 100)",
    )  # fmt: skip
    parser.add_argument(
        "--console-procs", type=int, default=2,
        help="processes the consoles run in (0: in this one, beside the phones)",
    )  # fmt: skip
    parser.add_argument("--logs", type=Path, help="copy the nodes' logs (stderr) here")
    args = parser.parse_args()
    args.scenario = args.scenario or list(SCENARIOS)
    if not 0 < args.rate < 200:
        parser.error("--rate must be between 0 and 200 alarms/s")
    outcomes = asyncio.run(_main(args))
    misses = _goals(outcomes)
    print(f"goals: {'met' if not misses else 'MISSED: ' + '; '.join(misses)}")
    print(json.dumps({"scenarios": [asdict(o) for o in outcomes], "goals_met": not misses}))
    sys.exit(0 if not misses else 1)


if __name__ == "__main__":
    main()
