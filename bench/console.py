"""The dispatcher console under load, in headless Chromium (Playwright).

One `micro110 serve` node with the demo city; a commander's console (it sees every
precinct) opened through its login form with 1,000 open incidents; then silent alarms
arrive at 50/s and then at 200/s (each phase `--seconds` long).  Each alarm is retired
(marked invalid) `--retire` seconds after it was posted, so the open count stays near
1,000 plus what is in flight, as on a busy night where dispatchers keep up.

Measured, per phase:
* POST -> row rendered: from just before the alarm's POST is sent to the commit in
  which the console's queue first rendered it (the page stamps
  `performance.timeOrigin + performance.now()` in the queue's layout effect; the
  queue is virtualised, so "rendered" is the list the screen draws from);
* POST -> event arrived: to when the page applied its `incident.created` (the server's
  and the network's share of the above; the rest is the page's);
* main-thread long tasks (PerformanceObserver `longtask`): milliseconds per second;
  and the main thread's whole busy time, its script and its layout + style (CDP
  `Performance.getMetrics`), milliseconds per second;
* the console's open incidents, sampled each second (min and max: the retiring keeps up);
* the cores each process group kept busy (server, PostgreSQL, Redis, Chromium with
  Playwright's driver, this script, the rest of the machine): on a small machine the
  latency is often decided there, not in the page;
* JS heap after a forced GC (CDP `Runtime.getHeapUsage`), at the start and after each
  phase.  The page hands its stamps over each second (`stats.take()`) and forgets
  them, so the heap holds nothing of the bench's own.

Goal (issue 16): p99 < 250 ms at 200/s, long tasks < 100 ms/s, heap flat over 10
minutes (`--seconds 300` per phase).  The last line is one JSON object: open_incidents,
alarms_per_s, render_p50_ms, render_p99_ms, long_task_ms_per_s, heap_mb_start,
heap_mb_end (the 200/s phase), plus `phases` with both.

    .venv/bin/python bench/console.py [--seconds 30] [--open 1000] [--rates 50,200]
        [--profile /tmp/console]   # CPU profiles of the page, and its top functions
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from _harness import (
    PASSWORD,
    CpuMeter,
    cluster,
    login,
    new_citizen,
    percentile_ms,
    service_pids,
)
from intake import Alarms, city_positions
from playwright.async_api import async_playwright

from dispatch.domain.users import Role

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-renderer-backgrounding", "--disable-background-timer-throttling"]  # fmt: skip
CITIZENS = 40


@dataclass
class Phase:
    alarms_per_s: int
    sent: int
    rendered: int
    render_p50_ms: float
    render_p99_ms: float
    render_max_ms: float
    arrive_p50_ms: float  # POST sent -> its incident.created applied in the page
    arrive_p99_ms: float
    long_task_ms_per_s: float
    main_thread_ms_per_s: float  # CDP Performance metrics: all tasks, then script, layout+style
    script_ms_per_s: float
    layout_style_ms_per_s: float
    late_sends: int
    open_min: int  # the console's open incidents, sampled each second
    open_max: int
    heap_mb_end: float
    # Cores kept busy during the phase, by process group: the server, PostgreSQL, Redis,
    # Chromium (with Playwright's driver), this script (the poster), the rest.
    cores: dict[str, float]


async def busy_s(cdp: Any) -> dict[str, float]:
    """The renderer's main thread so far (seconds): all tasks, script, layout and style."""
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    return {m["name"]: m["value"] for m in metrics}


async def heap_mb(cdp: Any) -> float:
    await cdp.send("HeapProfiler.collectGarbage")
    usage = await cdp.send("Runtime.getHeapUsage")
    used: float = usage["usedSize"]
    return round(used / 2**20, 1)


async def post_alarms(
    http: aiohttp.ClientSession,
    url: str,
    alarms: Alarms,
    count: int,
    concurrency: int = 32,
) -> list[str]:
    """Post `count` alarms as fast as `concurrency` allows; their incident ids."""
    ids: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            body, headers = alarms.next()
            async with http.post(url, data=body, headers=headers) as response:
                if response.status in (200, 201):
                    ids.append((await response.json())["incident_id"])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


async def retire(http: aiohttp.ClientSession, base: str, token: str, incident_id: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base}/api/incidents/{incident_id}/invalid"
    async with http.post(url, json={"reason": "bench"}, headers=headers) as response:
        await response.read()


async def run_phase(
    page: Any,
    cdp: Any,
    http: aiohttp.ClientSession,
    base: str,
    alarms: Alarms,
    retirer: str,
    rate: int,
    seconds: float,
    retire_after_s: float,
    meter: CpuMeter,
) -> Phase:
    await page.evaluate("() => { window.__longTaskMs = 0; }")
    sent_at: dict[str, float] = {}
    seen: dict[str, list[float]] = {}  # id -> [arrived, rendered] (epoch ms), taken each second
    open_counts: list[int] = []
    tasks: set[asyncio.Task[None]] = set()
    late = 0

    async def take() -> None:
        # The page forgets what it hands over: its heap keeps none of the bench's figures.
        seen.update(await page.evaluate("() => __console.state.stats.take()"))
        open_counts.append(await page.evaluate("() => __console.state.incidents.size"))

    async def taker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1)
            await take()

    async def one() -> None:
        body, headers = alarms.next()
        started = time.time()
        async with http.post(f"{base}/api/alarms", data=body, headers=headers) as response:
            if response.status not in (200, 201):
                return
            incident_id = (await response.json())["incident_id"]
        sent_at[incident_id] = started
        await asyncio.sleep(retire_after_s)
        await retire(http, base, retirer, incident_id)

    stop = asyncio.Event()
    taking = asyncio.create_task(taker(stop))
    busy_before = await busy_s(cdp)
    cpu_before = meter.read()
    total = int(rate * seconds)
    begin = time.perf_counter()
    for n in range(total):
        due = begin + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            late += 1
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    elapsed = time.perf_counter() - begin
    long_ms = await page.evaluate("() => window.__longTaskMs")
    busy_after = await busy_s(cdp)
    spent = meter.spent(cpu_before, meter.read())
    cores = {name: round(spent.total(name) / spent.elapsed_s, 2) for name in spent.groups}
    cores["other"] = round(spent.other_s / spent.elapsed_s, 2)
    cores["machine"] = round(spent.machine_cores(), 2)

    def per_s(*names: str) -> float:
        spent = sum(busy_after[n] - busy_before[n] for n in names)
        return round(spent * 1000 / elapsed, 1)

    await asyncio.gather(*tasks)  # every POST answered (and retired)
    # The rows still on their way: wait while the page catches up (at most 60 s).
    waited, last = 0, -1
    while waited < 60:
        done = sum(1 for i in sent_at if i in seen)
        if done == len(sent_at) or done == last:
            break
        last = done
        await asyncio.sleep(2)
        waited += 2
    stop.set()
    await taking
    rendered = {i: seen[i] for i in sent_at if i in seen}
    latencies = [at[1] / 1000 - sent_at[i] for i, at in rendered.items()]
    arrivals = [at[0] / 1000 - sent_at[i] for i, at in rendered.items() if at[0] is not None]
    return Phase(
        alarms_per_s=rate,
        sent=len(sent_at),
        rendered=len(rendered),
        render_p50_ms=percentile_ms(latencies, 50),
        render_p99_ms=percentile_ms(latencies, 99),
        render_max_ms=percentile_ms(latencies, 100),
        arrive_p50_ms=percentile_ms(arrivals, 50),
        arrive_p99_ms=percentile_ms(arrivals, 99),
        long_task_ms_per_s=round(long_ms / elapsed, 1),
        main_thread_ms_per_s=per_s("TaskDuration"),
        script_ms_per_s=per_s("ScriptDuration"),
        layout_style_ms_per_s=per_s("LayoutDuration", "RecalcStyleDuration"),
        late_sends=late,
        open_min=min(open_counts, default=0),
        open_max=max(open_counts, default=0),
        heap_mb_end=await heap_mb(cdp),
        cores=cores,
    )


def playwright_pids() -> list[int]:
    """Playwright's driver processes (Node.js), children of this one: Chromium runs under
    them, so their trees are the browser's CPU."""
    return [
        child.pid
        for child in psutil.Process().children()
        if "node" in child.name() or "playwright" in " ".join(child.cmdline())
    ]


def top_functions(profile: dict[str, Any], count: int = 15) -> list[str]:
    """The functions with the most self time in a CDP CPU profile, as printable lines."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    ticks: dict[int, int] = {}
    for sample in profile["samples"]:
        ticks[sample] = ticks.get(sample, 0) + 1
    total_us = profile["endTime"] - profile["startTime"]
    interval_us = total_us / max(1, len(profile["samples"]))
    by_function: dict[str, float] = {}
    for node_id, n in ticks.items():
        frame = nodes[node_id]["callFrame"]
        where = frame["url"].rsplit("/", 1)[-1]
        name = f"{frame['functionName'] or '(anonymous)'} {where}:{frame['lineNumber'] + 1}"
        by_function[name] = by_function.get(name, 0.0) + n * interval_us
    ranked = sorted(by_function.items(), key=lambda kv: -kv[1])[:count]
    seconds = total_us / 1e6
    return [f"{us / 1000 / seconds:8.1f} ms/s  {name}" for name, us in ranked]


async def main_async(
    seconds: float,
    open_count: int,
    retire_after_s: float,
    rates: list[int],
    profile: str | None,
    detail: bool,
) -> dict[str, Any]:
    async with cluster(1, MICRO110_BACKGROUND_TASKS="false", MICRO110_DB_POOL_MAX="30") as c:
        base = c.urls[0]
        await c.add_staff("bench-commander", Role.COMMANDER)
        await c.add_staff("bench-retirer", Role.COMMANDER)
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as http:
            retirer = await login(http, base, "bench-retirer")
            tokens = [
                await new_citizen(http, base, f"bench-console-{n:04d}") for n in range(CITIZENS)
            ]
            alarms = Alarms(tokens, city_positions())
            seeded = await post_alarms(http, f"{base}/api/alarms", alarms, open_count)
            print(f"seeded {len(seeded)} open incidents")
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = await browser.new_page(viewport={"width": 1600, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.add_init_script(
                    "window.__longTaskMs = 0; new PerformanceObserver((list) => {"
                    " for (const e of list.getEntries()) window.__longTaskMs += e.duration;"
                    "}).observe({type: 'longtask', buffered: true});"
                )
                await page.goto(f"{base}/console?lang=zh-CN")
                await page.fill("input[name=username]", "bench-commander")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit]")
                await page.wait_for_selector(".conn[data-state=live]", timeout=60000)
                await page.wait_for_function(
                    f"() => __console.state.incidents.size >= {len(seeded)}", timeout=60000
                )
                await page.evaluate("() => { __console.state.stats.tracking = true; }")
                if detail:  # a dispatcher at work: the first incident open beside the queue
                    await page.keyboard.press("ArrowDown")
                    await page.keyboard.press("Enter")
                    await page.wait_for_selector(".detail[data-id] .timeline li", timeout=30000)
                cdp = await page.context.new_cdp_session(page)
                await cdp.send("Performance.enable")
                heap_start = await heap_mb(cdp)
                print(f"console loaded: {len(seeded)} open incidents, heap {heap_start} MB")
                meter = CpuMeter(
                    {"server": [c.nodes[0].proc.pid]}
                    | await service_pids(c.pool, c.redis_url)
                    | {"chromium": playwright_pids(), "bench": [os.getpid()]},
                    flat=["bench"],
                )
                phases = []
                for rate in rates:
                    if profile:
                        await cdp.send("Profiler.enable")
                        await cdp.send("Profiler.start")
                    phase = await run_phase(
                        page,
                        cdp,
                        http,
                        base,
                        alarms,
                        retirer,
                        rate,
                        seconds,
                        retire_after_s,
                        meter,
                    )
                    phases.append(phase)
                    print(f"{rate}/s: " + ", ".join(f"{k}={v}" for k, v in asdict(phase).items()))
                    if profile:
                        taken = (await cdp.send("Profiler.stop"))["profile"]
                        path = f"{profile}-{rate}.cpuprofile"
                        Path(path).write_text(json.dumps(taken))  # noqa: ASYNC240
                        print(f"CPU profile of the page at {rate}/s: {path}; self time:")
                        print("\n".join(top_functions(taken)))
                await asyncio.sleep(retire_after_s + 1)
                heap_end = await heap_mb(cdp)
                open_now = await page.evaluate("() => __console.state.incidents.size")
                print(f"heap {heap_start} MB -> {heap_end} MB; open incidents now {open_now}")
                if errors:
                    print(f"page errors: {errors[:5]}")
                with contextlib.suppress(Exception):
                    await browser.close()
            node = c.nodes[0]
            if node.proc.returncode is not None and node.stderr_path is not None:
                # The server went away mid-run: say why before the figures.
                tail = node.stderr_path.read_text(errors="replace")[-3000:]
                print(f"the server exited with {node.proc.returncode}:\n{tail}")
    last = phases[-1]
    return {
        "open_incidents": len(seeded),
        "alarms_per_s": last.alarms_per_s,
        "render_p50_ms": last.render_p50_ms,
        "render_p99_ms": last.render_p99_ms,
        "long_task_ms_per_s": last.long_task_ms_per_s,
        "heap_mb_start": heap_start,
        "heap_mb_end": heap_end,
        "seconds_per_phase": seconds,
        "phases": [asdict(p) for p in phases],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="seconds per phase")
    parser.add_argument("--open", type=int, default=1000, help="open incidents at the start")
    parser.add_argument(
        "--retire", type=float, default=5, help="seconds before an alarm is retired"
    )
    parser.add_argument(
        "--rates", default="50,200", help="alarms per second of each phase, in order"
    )
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="record the page's CPU profile of each phase to PREFIX-<rate>.cpuprofile "
        "(open in Chrome DevTools; `cd console_web && node build.mjs --dev` keeps names)",
    )
    parser.add_argument(
        "--detail", action="store_true", help="with the first incident open in the detail pane"
    )
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    result = asyncio.run(
        main_async(args.seconds, args.open, args.retire, rates, args.profile, args.detail)
    )
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
