"""Console fan-out: from an alarm's POST to its receipt at every console, at a fixed rate.

    .venv/bin/python bench/fanout.py [--consoles 50] [--rate 200] [--seconds 20]
                                     [--nodes 1] [--baseline] [--plot out.png]

Starts PostgreSQL, Redis and `micro110 serve` (bench/_harness.py) and opens N console
feeds: python-socketio clients in their own processes (--console-procs), half logged in
as a commander and half as a dispatcher for every precinct, so every console should see
every alarm.  This process then posts silent alarms on a fixed schedule (open loop: a
slow answer never delays the next alarm; how late the schedule ran is reported too).

Latency is, for each (alarm, console), the console's receipt of `incident.created`
minus the moment its POST was sent, on CLOCK_MONOTONIC, which all processes share.  An
event may reach the consoles before the POST is answered, so sends are kept by
idempotency key and joined with the answer's incident id at the end.  Missing: an alarm
a console had not received once the grace period ran out; duplicated: an event (seq) a
console got twice; out of order: a seq lower than one the console already had.  A
console that loses its connection reconnects and resumes after its last seq, as the
console app does; reconnections are counted (and fail the goals).

CPU is reported per alarm for the server, PostgreSQL, Redis, the console processes and
this one, from the first alarm until the last console had the last one, with what the
rest of the machine used meanwhile: a busy machine slows everything measured here.

--nodes 2 spreads the consoles over two nodes and posts round robin.  --baseline puts
a bare python-socketio server in place of micro110 (POST -> one room emit, no database,
no Redis) to show what the library and the clients cost by themselves.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from _bare_socketio import bare_server
from _consoles import ConsoleLog, ConsoleSpec, Receipt, collect, console_processes
from _harness import (
    CpuMeter,
    CpuSpent,
    cluster,
    grid_position,
    login,
    new_citizen,
    percentile_ms,
    service_pids,
)

from dispatch.domain.users import Role

GOALS = {"p99_ms": 25.0, "missing": 0, "duplicated": 0}
# Alarm i goes to grid point i % GRID with a tag from group i // GRID: the grid spaces
# points beyond the duplicate radius and the groups never match each other, so no alarm
# is a possible duplicate of another (which would make later alarms dearer).
GRID = 1600
TAGS = ("kidnapping", "fire", "medical")


@dataclass(slots=True)
class Alarm:
    key: str
    scheduled: float
    sent: float = math.nan
    answered: float = math.nan
    status: int = 0
    incident_id: str | None = None
    warmup: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    consoles: int
    alarms_per_s: float
    p50_ms: float
    p99_ms: float
    missing: int
    duplicated: int
    server: str
    nodes: int
    alarms: int
    measured_alarms: int
    out_of_order: int
    reconnects: int
    refused_resumes: int
    post_errors: int
    post_p50_ms: float
    post_p99_ms: float
    schedule_late_p99_ms: float
    p999_ms: float
    max_ms: float
    cpu_ms_per_alarm: dict[str, Any] = field(default_factory=dict)
    p99_ms_by_node: list[float] = field(default_factory=list)
    # --calls: live video calls meanwhile, and whether all ran at full rate throughout.
    calls: int = 0
    calls_full_rate: bool | None = None


# --- the poster ----------------------------------------------------------------------


def _alarm_body(index: int, key: str) -> bytes:
    lon, lat = grid_position(index % GRID)
    return msgspec.json.encode(
        {"tag": TAGS[index // GRID % len(TAGS)], "lon": lon, "lat": lat, "accuracy_m": 10.0,
         "datum": "wgs84", "client_time": datetime.now(UTC).isoformat(), "idempotency_key": key}
    )  # fmt: skip


async def _post(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], alarm: Alarm, body: bytes
) -> None:
    alarm.sent = time.monotonic()
    try:
        async with http.post(f"{url}/api/alarms", data=body, headers=headers) as response:
            alarm.status = response.status
            answer = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        alarm.error = repr(exc)
        return
    finally:
        alarm.answered = time.monotonic()
    if alarm.status == 201:
        alarm.incident_id = msgspec.json.decode(answer)["incident_id"]
    else:
        alarm.error = answer.decode(errors="replace")[:300]


async def _post_alarms(
    urls: Sequence[str], citizens: Sequence[str], rate: float, count: int, warmup: int
) -> list[Alarm]:
    """`count` alarms at `rate` per second on a fixed schedule, round robin over nodes."""
    run = secrets.token_hex(3)
    alarms = []
    tasks = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.monotonic() + 0.05
        for i in range(count):
            alarm = Alarm(f"fanout-{run}-{i:06d}", start + i / rate, warmup=i < warmup)
            alarms.append(alarm)
            delay = alarm.scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body = _alarm_body(i, alarm.key)
            headers = {"Authorization": f"Bearer {citizens[i % len(citizens)]}",
                       "Content-Type": "application/json"}  # fmt: skip
            tasks.append(
                asyncio.create_task(_post(http, urls[i % len(urls)], headers, alarm, body))
            )
        await asyncio.gather(*tasks)
    return alarms


# --- the figures ---------------------------------------------------------------------


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    missing: int = 0
    duplicated: int = 0
    out_of_order: int = 0


def _tally(alarms: Sequence[Alarm], received: Sequence[Receipt]) -> _Tally:
    """What one console got, against what it should have got."""
    sent = {a.incident_id: a for a in alarms if a.incident_id is not None}
    tally = _Tally()
    seen_seqs: set[int] = set()
    got: set[str] = set()
    highest = 0
    for at, seq, name, incident_id in received:
        if seq in seen_seqs:
            tally.duplicated += 1
            continue
        seen_seqs.add(seq)
        if seq < highest:
            tally.out_of_order += 1
        highest = max(highest, seq)
        if name != "incident.created" or incident_id is None:
            continue
        got.add(incident_id)
        alarm = sent.get(incident_id)
        if alarm is not None and not alarm.warmup:
            tally.latencies.append(at - alarm.sent)
    tally.missing = len(sent.keys() - got)
    return tally


def _report(
    args: argparse.Namespace,
    server: str,
    alarms: Sequence[Alarm],
    logs: Sequence[ConsoleLog],
    cpu: dict[str, Any],
) -> Report:
    tallies = [_tally(alarms, log.received) for log in logs]
    latencies = [x for t in tallies for x in t.latencies]
    measured = [a for a in alarms if not a.warmup]
    by_node = [
        percentile_ms([x for t in tallies[n :: args.nodes] for x in t.latencies], 99)
        for n in range(args.nodes)
    ]
    span = measured[-1].sent - measured[0].sent if len(measured) > 1 else math.nan
    return Report(
        consoles=len(logs),
        alarms_per_s=round((len(measured) - 1) / span, 1) if span > 0 else math.nan,
        p50_ms=percentile_ms(latencies, 50),
        p99_ms=percentile_ms(latencies, 99),
        missing=sum(t.missing for t in tallies),
        duplicated=sum(t.duplicated for t in tallies),
        server=server,
        nodes=args.nodes,
        alarms=len(alarms),
        measured_alarms=len(measured),
        out_of_order=sum(t.out_of_order for t in tallies),
        reconnects=sum(log.reconnects for log in logs),
        refused_resumes=sum(len(log.refused_resumes) for log in logs),
        post_errors=sum(a.status != 201 for a in alarms),
        post_p50_ms=percentile_ms([a.answered - a.sent for a in measured], 50),
        post_p99_ms=percentile_ms([a.answered - a.sent for a in measured], 99),
        schedule_late_p99_ms=percentile_ms([a.sent - a.scheduled for a in measured], 99),
        p999_ms=percentile_ms(latencies, 99.9),
        max_ms=percentile_ms(latencies, 100),
        cpu_ms_per_alarm=cpu,
        p99_ms_by_node=by_node if args.nodes > 1 else [],
    )


# --- one measurement, against micro110 or the bare baseline ----------------------------


def _alarm_counts(args: argparse.Namespace) -> tuple[int, int]:
    """(warm-up alarms, all alarms)."""
    warmup = int(args.rate * args.warmup)
    return warmup, warmup + int(args.rate * args.seconds)


def _cpu_per_alarm(spent: CpuSpent, alarms: int) -> dict[str, Any]:
    """Milliseconds of CPU per alarm for each process; cores busy on the whole machine."""
    cpu: dict[str, Any] = {
        name: [round(seconds * 1000 / max(alarms, 1), 2) for seconds in per_process]
        for name, per_process in spent.groups.items()
    }
    cpu["machine_cores"] = round(spent.machine_cores(), 2)
    # Anything else running on this machine competes for the same cores.
    cpu["other_cores"] = round(spent.other_s / max(spent.elapsed_s, 1e-9), 2)
    # And the host may run another tenant on them: the figures are then not this code's.
    cpu["stolen_cores"] = round(spent.stolen_s / max(spent.elapsed_s, 1e-9), 2)
    return cpu


async def _measure(
    args: argparse.Namespace,
    server: str,
    urls: Sequence[str],
    consoles: Sequence[ConsoleSpec],
    citizens: Sequence[str],
    server_pids: Mapping[str, Sequence[int]],
    last_seq: Callable[[], Awaitable[int]],
) -> Report:
    warmup, count = _alarm_counts(args)
    async with console_processes(consoles, args.console_procs) as (pipes, client_pids):
        print(
            f"{len(consoles)} consoles on {len(urls)} node(s) in {len(pipes)} processes; "
            f"posting {count} alarms at {args.rate:g}/s ({warmup} warm-up)"
        )
        # The poster alone: the consoles and servers are its children, counted apart.
        meter = CpuMeter(
            {**server_pids, "consoles": client_pids, "poster": [os.getpid()]},
            # With calls, the nodes alone: their media processes are a group of their own.
            flat={"poster", "server"} if "media" in server_pids else {"poster"},
        )
        before = meter.read()
        alarms = await _post_alarms(urls, citizens, args.rate, count, warmup)
        for alarm in [a for a in alarms if a.error is not None][:3]:
            print(f"alarm {alarm.key} failed: {alarm.status or ''} {alarm.error}")
        logs = await collect(pipes, await last_seq(), args.grace)
        cpu = _cpu_per_alarm(meter.spent(before, meter.read()), len(alarms))
    return _report(args, server, alarms, logs, cpu)


async def _run_micro110(args: argparse.Namespace) -> Report:
    async with cluster(args.nodes) as c:
        await c.add_staff("bench-commander", Role.COMMANDER)
        await c.add_staff("bench-dispatcher", Role.DISPATCHER)  # every precinct
        async with aiohttp.ClientSession() as http:
            tokens = {
                (url, name): await login(http, url, name)
                for url in c.urls
                for name in ("bench-commander", "bench-dispatcher")
            }
            citizens = [
                await new_citizen(http, c.urls[n % len(c.urls)], f"fanout-phone-{n:04d}")
                for n in range(args.citizens)
            ]
        roles = itertools.cycle(("bench-commander", "bench-dispatcher"))
        consoles = [
            ConsoleSpec(url, tokens[url, next(roles)])
            for url in itertools.islice(itertools.cycle(c.urls), args.consoles)
        ]

        async def last_seq() -> int:
            async with c.pool.acquire() as conn:
                return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM incident_events"))

        pids = {"server": [node.proc.pid for node in c.nodes]}
        pids |= await service_pids(c.pool, c.redis_url)
        calls = []
        if args.calls:  # live video calls on the first node meanwhile (issue 15, item 8)
            from media_calls import MediaWindow, media_pids, start_calls, stop_calls

            hold = args.warmup + args.seconds + args.grace + 60
            calls = await start_calls(c.urls[0], args.calls, tokens[c.urls[0], "bench-commander"],
                                      hold)  # fmt: skip
            pids["calls"] = [p.pid for p in calls]
            pids["media"] = media_pids(c.nodes[0].proc.pid)
            window = MediaWindow(c.urls[0])
            await window.start()
        try:
            report = await _measure(args, "micro110", c.urls, consoles, citizens, pids, last_seq)
        finally:
            if calls:
                try:
                    print(f"  video calls: {await window.report()}")
                finally:
                    await stop_calls(calls)
        if calls:
            report = replace(report, calls=args.calls, calls_full_rate=window.full_rate)
        return report


async def _run_baseline(args: argparse.Namespace) -> Report:
    async with bare_server() as (url, pid):
        consoles = [ConsoleSpec(url, "bare") for _ in range(args.consoles)]
        _, posted = _alarm_counts(args)

        async def last_seq() -> int:
            return posted  # the bare server numbers its events 1, 2, ...

        return await _measure(
            args, "bare-socketio", [url], consoles, ["bare"], {"server": [pid]}, last_seq
        )


# --- output --------------------------------------------------------------------------


def _print(report: Report) -> None:
    print(
        f"{report.server}: {report.consoles} consoles, {report.measured_alarms} alarms at "
        f"{report.alarms_per_s}/s (+{report.alarms - report.measured_alarms} warm-up)"
    )
    print(
        f"  POST -> console: p50 {report.p50_ms} ms, p99 {report.p99_ms} ms, "
        f"p99.9 {report.p999_ms} ms, max {report.max_ms} ms"
    )
    print(f"  CPU ms per alarm, until the last console had it: {report.cpu_ms_per_alarm}")
    if (other := report.cpu_ms_per_alarm.get("other_cores", 0.0)) > 0.25:
        print(f"  note: other processes kept {other} cores of this machine busy meanwhile")
    for n, p99 in enumerate(report.p99_ms_by_node):
        print(f"    consoles on node-{n + 1}: p99 {p99} ms")
    print(
        f"  POST answered: p50 {report.post_p50_ms} ms, p99 {report.post_p99_ms} ms; "
        f"schedule late p99 {report.schedule_late_p99_ms} ms; errors {report.post_errors}"
    )
    print(
        f"  missing {report.missing}, duplicated {report.duplicated}, "
        f"out of order {report.out_of_order}; consoles reconnected {report.reconnects} times"
        f" ({report.refused_resumes} resumes refused)"
    )


def _goals(report: Report) -> None:
    misses = []
    if not report.p99_ms < GOALS["p99_ms"]:
        misses.append(f"p99 {report.p99_ms} ms >= {GOALS['p99_ms']}")
    if report.missing > GOALS["missing"]:
        misses.append(f"{report.missing} missing")
    if report.duplicated > GOALS["duplicated"]:
        misses.append(f"{report.duplicated} duplicated")
    if report.out_of_order:
        misses.append(f"{report.out_of_order} out of order")
    if report.post_errors:
        misses.append(f"{report.post_errors} POST errors")
    if report.reconnects:
        misses.append(f"consoles lost their connection {report.reconnects} times")
    print(f"goals: {'met' if not misses else 'MISSED: ' + '; '.join(misses)}")


def _plot(report: Report, path: Path) -> None:
    from _plot import grouped_bars, matplotlib_installed

    if not matplotlib_installed():
        return
    grouped_bars(
        path,
        title=(
            f"{report.server}: {report.consoles} consoles, {report.alarms_per_s:g} alarms/s (ms)"
        ),
        groups=["POST -> every console", "POST answered", "schedule late"],
        series={
            "p50": [report.p50_ms, report.post_p50_ms, None],
            "p99": [report.p99_ms, report.post_p99_ms, report.schedule_late_p99_ms],
        },
        ylabel="milliseconds",
        goal=GOALS["p99_ms"],
    )
    print(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consoles", type=int, default=50, help="console feeds (default 50)")
    parser.add_argument("--rate", type=float, default=200.0, help="alarms per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to wait for stragglers")
    parser.add_argument("--nodes", type=int, default=1, help="micro110 server processes")
    parser.add_argument("--console-procs", type=int, default=2, help="client processes")
    parser.add_argument("--citizens", type=int, default=100, help="citizens posting alarms")
    parser.add_argument("--calls", type=int, default=0,
                        help="live video calls (each watched) on the node meanwhile")  # fmt: skip
    parser.add_argument(
        "--baseline", action="store_true", help="a bare python-socketio server instead"
    )
    parser.add_argument("--plot", type=Path, help="write a bar chart (PNG) here")
    args = parser.parse_args()
    if args.baseline:
        args.nodes = 1
    report = asyncio.run(_run_baseline(args) if args.baseline else _run_micro110(args))
    _print(report)
    _goals(report)
    if args.plot is not None:
        _plot(report, args.plot)
    print(json.dumps(asdict(report)))


if __name__ == "__main__":
    main()
