"""The project's smoke test: one browser, three people, a server started the README's
way (`micro110 serve`: embedded PostgreSQL and Redis, the demo city and its logins).

A citizen holds the silent alarm on the real reporting page (/report, a phone with a
position) and opens the case -> a dispatcher claims it on the console and assigns the
recommended officer -> the officer accepts on the phone page, goes, arrives and clears
-> the dispatcher resolves it.  The citizen's case page stays open throughout and shows
each step live as it happens (claimed, officers sent, on the way, arrived, dealt with);
the citizen then rates the case with the page's stars, and the server holds the rating.

Screenshots of each screen, in the order of the story, go to docs/smoke-*.png (the
citizen's at the phone's CSS size, to keep them small).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser import PHONE, chromium_browser
from tests.console_web.report_pages import hold
from tests.serving import child_env, start_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS = Path(__file__).resolve().parents[1] / "docs"
XUANWU_LAKE = (118.7926, 32.0732)

# What the citizen's case page reads from the phone's own memory (IndexedDB): the token
# that lets this phone follow the case, as the page itself uses it.
TRACKING_TOKEN = """async (caseNo) => {
    const db = await new Promise((ok, ko) => {
        const r = indexedDB.open("m110-report"); r.onsuccess = () => ok(r.result);
        r.onerror = ko; });
    const get = db.transaction("cases").objectStore("cases").get(caseNo);
    return await new Promise((ok) => { get.onsuccess = () => ok(get.result?.tracking_token); });
}"""


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


async def told(citizen: Any, event: str) -> None:
    """The citizen's open case page shows `event` in its timeline (pushed, no reload)."""
    await citizen.wait_for_selector(f".timeline li[data-event='{event}']")


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
            citizen_ctx = await browser.new_context(
                **PHONE, locale="zh-CN", permissions=["geolocation"],
                geolocation={"longitude": lon, "latitude": lat, "accuracy": 15},
            )  # fmt: skip
            errors: list[str] = []

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

            # A citizen holds the silent alarm on the reporting page.
            citizen = await citizen_ctx.new_page()
            citizen.on("pageerror", lambda exc: errors.append(str(exc)))
            await citizen.goto(f"{base}/report?lang=zh-CN")
            await citizen.click("a.tile-alarm")
            await citizen.wait_for_selector("button.tag-robbery")
            await hold(citizen, "button.tag-robbery")
            await citizen.wait_for_selector(".delivery[data-state=received]")
            await citizen.wait_for_selector(".location.ok")
            await citizen.screenshot(path=DOCS / "smoke-1-citizen-alarm-sent.png", scale="css")

            # ... and opens the case from "my cases": it follows the case live from here on.
            await citizen.click("button.back")
            await citizen.wait_for_selector("button.tag-robbery")
            await citizen.click("button.back")
            await citizen.click("a.tile-cases")
            case_link = citizen.locator("a.case-link")
            case_no = (await case_link.locator("strong").inner_text()).strip()
            await case_link.click()
            await citizen.wait_for_selector(".status[data-status=queued]")
            await citizen.wait_for_selector(".live")
            assert await citizen.evaluate("location.hash") == f"#/case/{case_no}"
            await told(citizen, "incident.created")

            # Claimed on the console, then the recommended officer assigned in one click.
            row = f"li.row[data-case='{case_no}']"
            await console.wait_for_selector(row)
            await console.click(row)
            await console.keyboard.press("c")
            await console.wait_for_selector(f"{row}[data-state=claimed]")
            await told(citizen, "incident.claimed")
            await citizen.wait_for_selector(".status[data-status=claimed]")
            assign = ".recs button[data-action=assign]"
            await console.wait_for_selector(assign)
            await console.screenshot(path=DOCS / "smoke-2-console-claimed.png")
            await console.click(assign)
            await told(citizen, "incident.assigned")

            # The officer's phone rings; accept, go, arrive, clear.
            await officer.wait_for_selector("[role=alertdialog]")
            await officer.screenshot(path=DOCS / "smoke-3-officer-offer.png")
            await officer.click(".offer button.accept")
            await told(citizen, "assignment.accepted")
            for step, after in (("en_route", "on_scene"), ("on_scene", "cleared")):
                await officer.wait_for_selector(f"button[data-step={step}]:not([disabled])")
                await officer.click(f"button[data-step={step}]")
                await officer.wait_for_selector(f"button[data-step={after}].primary")
            await told(citizen, "assignment.on_scene")
            await officer.evaluate("window.scrollTo(0, 0)")
            await officer.screenshot(path=DOCS / "smoke-4-officer-on-scene.png", full_page=True)
            await officer.click("button[data-step=cleared]")
            await officer.wait_for_selector(".idle")

            # The dispatcher records the outcome.
            await console.click(row)
            await console.click("[data-verb=resolve]")
            await console.click("[data-confirm]")
            await console.wait_for_selector(
                ".timeline [data-type='incident.resolved']", timeout=15000
            )
            await console.screenshot(path=DOCS / "smoke-5-console-resolved.png")

            # The citizen's page has followed every step, in order, and offers the rating.
            await told(citizen, "incident.resolved")
            await citizen.wait_for_selector(".status[data-status=resolved]")
            steps = await citizen.locator(".timeline li").evaluate_all(
                "items => items.map((li) => li.dataset.event)"
            )
            story = [
                "incident.created",
                "incident.claimed",
                "incident.assigned",
                "assignment.accepted",
                "assignment.on_scene",
                "incident.resolved",
            ]
            assert [s for s in steps if s in story] == story, steps
            await citizen.click("button[aria-label='4 星']")
            await citizen.wait_for_selector("text=谢谢你的评价")
            await citizen.screenshot(
                path=DOCS / "smoke-6-citizen-case-resolved.png", scale="css", full_page=True
            )

            # The server holds the rating (the case as the citizen's phone reads it), and
            # the dispatcher sees it on the incident.
            token = await citizen.evaluate(TRACKING_TOKEN, case_no)
            response = await citizen_ctx.request.get(
                f"{base}/api/cases/{case_no}", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.ok, await response.text()
            case = await response.json()
            assert (case["status"], case["rating"]) == ("resolved", 4), case
            await console.wait_for_selector(".timeline [data-type='incident.rated']:has-text('★4')")
            assert errors == []
            for context in (officer_ctx, console_ctx, citizen_ctx):
                await context.close()
    finally:
        assert await server.stop() == 0
