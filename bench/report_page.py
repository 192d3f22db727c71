"""The citizen page on a weak phone: load times, alarm acknowledgement, script weight.

    .venv/bin/python bench/report_page.py [--rounds 3]

Starts PostgreSQL, Redis and one `micro110 serve` (the bundle must be built: `./dev`
builds it), then drives headless Chromium with Chrome DevTools' **Slow 4G** profile
(562.5 ms latency, 1.44 Mbit/s down, 675 kbit/s up) and a **4x CPU slowdown**:

* `cold_load_ms`: a fresh phone (empty cache, no service worker) opens /report; from
  navigation start until the page is usable (its screens rendered: the page's
  `m110:usable` mark).
* `warm_load_ms`: the same phone opens it again, now from its service worker.
* `alarm_ack_ms`: a kidnapping alarm held until it confirms; from the confirmation
  (`m110:confirmed:<key>`) until the server's 201 is in (`m110:acked:<key>`): the
  outbox write, the request over Slow 4G, the intake's commit, the answer.
* `js_gzip_kb`: the page's JavaScript (its entry and every chunk it imports) gzipped.

Each figure is the median of `--rounds` runs (a fresh browser profile per round).
Goals: cold <= 3000 ms, warm <= 1000 ms, alarm <= 1500 ms, JS <= 80 KB gzip.  The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import sys
import tempfile
from typing import Any

from _harness import cluster
from playwright.async_api import async_playwright

from console_web import dist_dir
from tests.browser import _ARGS, CHROMIUM

# Chrome DevTools' "Slow 4G" preset (bytes per second, milliseconds).
SLOW_4G = {
    "offline": False,
    "latency": 150 * 3.75,
    "downloadThroughput": 1.6 * 1000 * 1000 / 8 * 0.9,
    "uploadThroughput": 750 * 1000 / 8 * 0.9,
}
CPU_SLOWDOWN = 4
PHONE = {
    "viewport": {"width": 360, "height": 640},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
GOALS = {"cold_load_ms": 3000, "warm_load_ms": 1000, "alarm_ack_ms": 1500, "js_gzip_kb": 80}


def js_gzip_kb() -> float:
    manifest = json.loads((dist_dir() / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["pages"]["report"]
    files = [entry["js"], *entry.get("preload", [])]
    total = sum(len(gzip.compress((dist_dir() / name).read_bytes(), 9)) for name in files)
    return round(total / 1024, 1)


async def throttle(page: Any) -> None:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", SLOW_4G)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})


async def usable_ms(page: Any) -> float:
    await page.wait_for_function(
        "performance.getEntriesByName('m110:usable').length > 0", timeout=60_000
    )
    value: float = await page.evaluate("performance.getEntriesByName('m110:usable')[0].startTime")
    return value


async def one_round(pw: Any, base_url: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="m110-bench-phone-") as profile:
        context = await pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=_ARGS,
            permissions=["geolocation"], bypass_csp=True,  # lets the probes below evaluate
            geolocation={"longitude": 118.7926, "latitude": 32.0732, "accuracy": 20}, **PHONE,
        )  # fmt: skip
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await throttle(page)
            await page.goto(f"{base_url}/report?lang=zh-CN", wait_until="commit")
            cold = await usable_ms(page)
            # The service worker has cached the shell (installed and active).
            await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
            await page.goto(f"{base_url}/report?lang=zh-CN", wait_until="commit")
            warm = await usable_ms(page)
            await page.wait_for_function(
                "navigator.serviceWorker.controller !== null", timeout=60_000
            )
            # Wait until the device is registered (the first open does it).
            await page.wait_for_function(
                """async () => new Promise((ok) => {
                    const r = indexedDB.open("m110-report");
                    r.onsuccess = () => { const g = r.result.transaction("kv")
                        .objectStore("kv").get("account");
                      g.onsuccess = () => ok(!!g.result?.token); };
                    r.onerror = () => ok(false); })""",
                polling=250,
                timeout=120_000,
            )
            await page.click("a.tile-alarm")
            button = page.locator("button.tag-kidnapping")
            box = await button.bounding_box()
            await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            await page.mouse.down()
            await page.wait_for_function("location.hash.startsWith('#/alarm/')", timeout=30_000)
            await page.mouse.up()
            key = (await page.evaluate("location.hash")).split("/")[-1]
            await page.wait_for_function(
                f"performance.getEntriesByName('m110:acked:{key}').length > 0", timeout=60_000
            )
            ack: float = await page.evaluate(
                f"""performance.getEntriesByName('m110:acked:{key}')[0].startTime
                    - performance.getEntriesByName('m110:confirmed:{key}')[0].startTime"""
            )
            return {"cold_load_ms": cold, "warm_load_ms": warm, "alarm_ack_ms": ack}
        finally:
            await context.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not (dist_dir() / "manifest.json").exists():
        sys.exit("the bundle is not built: run ./dev check (or cd console_web && npm run build)")
    kb = js_gzip_kb()
    async with cluster(nodes=1) as running, async_playwright() as pw:
        base_url = running.urls[0]
        rounds = []
        for n in range(args.rounds):
            figures = await one_round(pw, base_url)
            print(f"round {n + 1}: " + ", ".join(f"{k} {v:.0f}" for k, v in figures.items()))
            rounds.append(figures)
    result: dict[str, float] = {
        name: round(statistics.median(r[name] for r in rounds), 1)
        for name in ("cold_load_ms", "warm_load_ms", "alarm_ack_ms")
    }
    result["js_gzip_kb"] = kb
    for name, goal in GOALS.items():
        verdict = "meets" if result[name] <= goal else "MISSES"
        print(f"{name}: {result[name]} (goal <= {goal}: {verdict})")
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
