"""The project's smoke test: one browser, three people, a server started the README's
way (`micro110 serve`: embedded PostgreSQL and Redis, the demo city and its logins).

A citizen's silent alarm -> a dispatcher claims it on the console and assigns the
recommended officer -> the officer accepts on the phone page, goes, arrives and clears
-> the dispatcher resolves it -> the citizen's case timeline shows each step, and the
citizen rates the case.  Screenshots of each screen go to docs/smoke-*.png.

The citizen's side goes through the citizen API from the citizen's browser context
(`context.request`) until the reporting page (/report) is on the shared stack.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.browser import PHONE, chromium_browser
from tests.serving import child_env, start_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS = Path(__file__).resolve().parents[1] / "docs"
XUANWU_LAKE = (118.7926, 32.0732)


def demo_logins(stdout: list[str]) -> dict[str, str]:
    """`dispatcher` and `officer` -> password, from the banner `micro110 serve` prints."""
    logins = {}
    for line in stdout:
        parts = line.split()
        if len(parts) >= 4 and parts[0] in {"dispatcher", "officer"} and parts[2] == "/":
            logins[parts[1]] = parts[3]
    return logins


async def sign_in(page: Any, url: str, username: str, password: str) -> None:
    await page.goto(url)
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


async def api(context: Any, method: str, url: str, token: str, body: Any = None) -> Any:
    response = await context.request.fetch(
        url, method=method, headers={"Authorization": f"Bearer {token}"}, data=body
    )
    assert response.ok, f"{method} {url}: {response.status} {await response.text()}"
    return await response.json()


@pytest.mark.timeout(900)
async def test_a_silent_alarm_from_the_phone_to_the_rating(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "var", env=child_env())
    base = server.base_url
    logins = demo_logins(server.stdout)
    assert set(logins) == {"dispatcher", "officer"}, server.stdout
    try:
        async with chromium_browser() as browser:
            lon, lat = XUANWU_LAKE
            officer_ctx = await browser.new_context(
                **PHONE, locale="zh-CN", permissions=["geolocation", "notifications"],
                geolocation={"longitude": lon + 0.004, "latitude": lat + 0.002, "accuracy": 10},
            )  # fmt: skip
            console_ctx = await browser.new_context(
                viewport={"width": 1600, "height": 900}, locale="zh-CN"
            )
            citizen_ctx = await browser.new_context(**PHONE, locale="zh-CN")

            # The officer goes on duty; the phone reports where it is.
            officer = await officer_ctx.new_page()
            await sign_in(officer, f"{base}/officer?lang=zh-CN", "officer", logins["officer"])
            await officer.wait_for_selector("[data-net=live]")
            await officer.click(".duty-panel button.on")
            await officer.wait_for_selector("[data-duty=available]")

            # The dispatcher's console.
            console = await console_ctx.new_page()
            await sign_in(console, f"{base}/console?lang=zh-CN", "dispatcher", logins["dispatcher"])
            await console.wait_for_selector(".conn[data-state=live]")

            # A citizen's silent alarm.
            registered = await citizen_ctx.request.post(
                f"{base}/api/citizens", data={"device_id": f"smoke-{uuid.uuid4().hex[:12]}"}
            )
            assert registered.ok, await registered.text()
            citizen_token = (await registered.json())["token"]
            alarm = await api(citizen_ctx, "POST", f"{base}/api/alarms", citizen_token, {
                "tag": "robbery", "lon": lon, "lat": lat, "accuracy_m": 15, "datum": "wgs84",
                "client_time": datetime.now(UTC).isoformat(),
                "idempotency_key": f"smoke-{uuid.uuid4()}",
            })  # fmt: skip
            incident, case_no = alarm["incident_id"], alarm["case_no"]
            tracking = alarm["tracking_token"]

            # Claimed on the console, then the recommended officer assigned in one click.
            row = f"li.row[data-id='{incident}']"
            await console.wait_for_selector(row)
            await console.click(row)
            await console.keyboard.press("c")
            await console.wait_for_selector(f"{row}[data-state=claimed]")
            assign = ".recs button[data-action=assign]"
            await console.wait_for_selector(assign)
            await console.screenshot(path=DOCS / "smoke-1-console-claimed.png")
            await console.click(assign)

            # The officer's phone rings; accept, go, arrive, clear.
            await officer.wait_for_selector("[role=alertdialog]")
            await officer.screenshot(path=DOCS / "smoke-2-officer-offer.png")
            await officer.click(".offer button.accept")
            for step, after in (("en_route", "on_scene"), ("on_scene", "cleared")):
                await officer.wait_for_selector(f"button[data-step={step}]:not([disabled])")
                await officer.click(f"button[data-step={step}]")
                await officer.wait_for_selector(f"button[data-step={after}].primary")
            await officer.evaluate("window.scrollTo(0, 0)")
            await officer.screenshot(path=DOCS / "smoke-3-officer-on-scene.png", full_page=True)
            await officer.click("button[data-step=cleared]")
            await officer.wait_for_selector(".idle")

            # The dispatcher records the outcome.
            await console.click(row)
            await console.click("[data-verb=resolve]")
            await console.click("[data-confirm]")
            await console.wait_for_selector(
                ".timeline [data-type='incident.resolved']", timeout=15000
            )
            await console.screenshot(path=DOCS / "smoke-4-console-resolved.png")

            # The citizen's timeline shows each step, and the citizen rates the case.
            case = await api(citizen_ctx, "GET", f"{base}/api/cases/{case_no}", tracking)
            told = [entry["text"] for entry in case["timeline"]]
            for step in (
                "We received your report.",
                "A dispatcher is now handling your report.",
                "Officers have been sent.",
                "An officer is on the way.",
                "An officer has arrived.",
                "The police have dealt with your report.",
            ):
                assert step in told, told  # fmt: skip
            await api(citizen_ctx, "POST", f"{base}/api/cases/{case_no}/rating", tracking,
                      {"rating": 5, "comment": "来得很快"})  # fmt: skip
            rated = await api(citizen_ctx, "GET", f"{base}/api/cases/{case_no}", tracking)
            assert "Thank you for rating how we handled your report." in [
                entry["text"] for entry in rated["timeline"]
            ]
            for context in (officer_ctx, console_ctx, citizen_ctx):
                await context.close()
    finally:
        assert await server.stop() == 0
