"""The field officer's page (/officer) on an emulated phone in headless Chromium,
against the real app, with python-socketio clients playing the dispatcher's console."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dispatch.http.keys import ASSIGNMENTS
from tests.browser import PHONE, chromium_browser
from tests.conftest import STAFF_PASSWORD, CitizenSession, Client, Staff, app_of
from tests.console_web.pages import XUANWU_LAKE, artifact, axe_violations, post_alarm
from tests.dispatch.calls import act
from tests.dispatch.services.test_intake_reports import fields, form, jpeg
from tests.fakes import FakeClock
from tests.signaling.feeds import FeedClient
from tests.waiting import eventually

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
LON, LAT = XUANWU_LAKE
# Records the page's notifications and lets a test say the page is hidden (headless
# Chromium has no notification centre, and its page is always visible).
NOTIFICATION_SPY = """
window.__notifications = [];
window.__hidden = false;
Object.defineProperty(Document.prototype, "visibilityState", {
  configurable: true, get() { return window.__hidden ? "hidden" : "visible"; } });
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__notifications.push({ title, ...options }); }
  close() {}
};
"""
STEPS = ["assignment.accepted", "assignment.en_route", "assignment.on_scene", "assignment.cleared"]


def feed_client(app_client: Client, namespace: str, token: str) -> FeedClient:
    return FeedClient(str(app_client.make_url("/")).rstrip("/"), namespace, token)


async def phone(browser: Any, lang: str, lon: float = LON + 0.01, lat: float = LAT) -> Any:
    return await browser.new_context(
        **PHONE, locale=lang, geolocation={"longitude": lon, "latitude": lat, "accuracy": 8},
        permissions=["geolocation", "notifications"],
    )  # fmt: skip


async def open_officer(context: Any, client: Client, username: str, lang: str) -> Any:
    """The officer page, signed in through its login form and live."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    await page.goto(str(client.make_url(f"/officer?lang={lang}")))
    await page.wait_for_selector("input[name=username]", timeout=15000)
    assert await axe_violations(page) == [], "the login form"
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("[data-net=live]", timeout=15000)
    return page


async def offer(
    client: Client, staff: Staff, citizen: CitizenSession, photo: bool = False
) -> tuple[str, float]:
    """A silent alarm (or a text report with a photo), claimed, with the officer sent
    through the API: (incident, when the assignment was answered, monotonic)."""
    if photo:
        response = await client.post(
            "/api/reports", data=form(fields(), [jpeg()]), headers=citizen.headers
        )
        assert response.status == 201, await response.text()
        incident: str = (await response.json())["incident_id"]
    else:
        incident = (await post_alarm(client, citizen))["incident_id"]
    status, answer = await act(client, staff.dispatcher, incident, "claim")
    assert status == 200, answer
    status, answer = await act(
        client, staff.dispatcher, incident, "assign", {"officer_ids": [staff.officer.id]}
    )
    assert status == 200, answer
    return incident, time.monotonic()


def names(client: FeedClient, prefix: str = "assignment.") -> list[str]:
    return [n for n, _ in client.events if n.startswith(prefix) and n != "assignment.offered"]


async def no_serious_violations(page: Any, what: str) -> None:
    found = await axe_violations(page)
    assert found == [], f"{what}: {found}"


async def test_an_offer_cannot_be_missed_and_each_step_reaches_the_console(
    app_client: Client, staff: Staff, citizen: CitizenSession, fake_clock: FakeClock
) -> None:
    console = feed_client(app_client, "/console", staff.dispatcher.token)
    await console.go_live()
    async with chromium_browser() as browser:
        context = await phone(browser, "zh-CN")
        page = await open_officer(context, app_client, staff.officer.username, "zh-CN")
        await page.click(".duty-panel button.on")  # also unlocks the tone
        await page.wait_for_selector("[data-duty=available]")

        # Position: reported at once, then again once the phone moves.
        def reported(lon: float) -> Any:
            return lambda evs: any(
                n == "officer.position" and abs(d["lon"] - lon) < 1e-6 for n, d in evs
            )

        await console.wait_for(reported(LON + 0.01), within=20)
        await context.set_geolocation({"longitude": LON + 0.005, "latitude": LAT, "accuracy": 8})
        await console.wait_for(reported(LON + 0.005), within=20)
        await no_serious_violations(page, "on duty, waiting")
        await page.screenshot(path=artifact("officer-idle-zh-CN.png"))

        # The offer fills the screen within a second of the API's answer.
        incident, assigned_at = await offer(app_client, staff, citizen)
        alert = page.locator("[role=alertdialog]")
        await alert.wait_for(state="visible", timeout=1000)
        assert time.monotonic() - assigned_at < 2  # (the wait above is the 1 s bound)
        await no_serious_violations(page, "the offer")
        await page.screenshot(path=DOCS / "officer-offer-zh-CN.png")

        # A re-offer updates the one alert instead of stacking another.
        fake_clock.advance(31)
        assert await app_of(app_client)[ASSIGNMENTS].sweep() == 1
        await page.wait_for_selector(".offer .again")
        assert await alert.count() == 1

        await page.click(".offer button.accept")
        await alert.wait_for(state="detached")
        await page.wait_for_selector("button[data-step=en_route]:not([disabled])")
        await page.click("button[data-step=en_route]")
        await page.wait_for_selector("button[data-step=on_scene].primary")
        await page.click("button[data-step=on_scene]")
        await page.wait_for_selector("button[data-step=cleared].primary")

        # Chat both ways, in the officers' thread.
        response = await app_client.post(
            f"/api/incidents/{incident}/messages",
            json={"body": "嫌疑人穿红色上衣", "thread": "officers"},
            headers=staff.dispatcher.headers,
        )
        assert response.status == 201, await response.text()
        await page.wait_for_selector(".chat li.theirs:has-text('嫌疑人穿红色上衣')")
        await page.fill("#chat-input", "两分钟后到达")
        await page.click(".chat-form button[type=submit]")
        await console.wait_for(
            lambda evs: any(
                n == "message.created" and d["message"]["body"] == "两分钟后到达"
                and d["message"]["thread"] == "officers" and d["actor"]["id"] == str(staff.officer.id)
                for n, d in evs
            )
        )  # fmt: skip
        await page.wait_for_selector(".chat li.mine .when:not(:has-text('等待发送'))")
        await page.wait_for_selector(".distance")
        await no_serious_violations(page, "the assignment")
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=DOCS / "officer-assignment-zh-CN.png", full_page=True)

        await page.click("button[data-step=cleared]")
        await console.wait_for(lambda evs: names(console)[-1:] == ["assignment.cleared"])
        assert names(console) == STEPS
        stamped = [d for n, d in console.events if n in STEPS[1:]]
        assert all("captured_at" in d and "place" in d for d in stamped), stamped
        assert page.js_errors == []
        await context.close()
    await console.close()


async def test_a_tap_made_offline_waits_and_is_recorded_once(
    app_client: Client, staff: Staff, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    async with chromium_browser() as browser:
        context = await phone(browser, "en")
        await context.add_init_script(NOTIFICATION_SPY)
        page = await open_officer(context, app_client, staff.officer.username, "en")
        await page.click(".duty-panel button.on")
        await page.wait_for_selector("[data-duty=available]")

        # A hidden page also raises a local notification, tagged with the assignment.
        await page.evaluate("window.__hidden = true")
        incident, _ = await offer(app_client, staff, citizen, photo=True)
        await page.wait_for_selector("[role=alertdialog]")
        await eventually(
            lambda: page.evaluate("window.__notifications.length > 0"), interval_s=0.1,
            what="a notification",
        )  # fmt: skip
        shown = await page.evaluate("window.__notifications[0]")
        assert shown["title"] == "New assignment" and shown["tag"] == await page.get_attribute(
            "[role=alertdialog]", "data-assignment"
        )
        await page.evaluate("window.__hidden = false")

        # Offers pending at reconnect are shown at once.
        await page.reload()
        await page.wait_for_selector("[role=alertdialog]", timeout=10000)

        # Declining asks for a reason first.
        await page.click(".offer button.decline")
        submit = page.locator(".decline-form button[type=submit]")
        assert await submit.is_disabled()
        await no_serious_violations(page, "the decline form")
        await page.screenshot(path=artifact("officer-decline-en.png"))
        await page.click(".decline-form button[type=button]")  # back: accept after all
        await page.click(".offer button.accept")
        await page.wait_for_selector("button[data-step=en_route]:not([disabled])")
        await page.wait_for_selector(".what:has-text('超市')")  # the report's text

        # The report's photo, on request (the read is audited for the officer).
        await page.click("button.show-photos")
        await eventually(
            lambda: page.evaluate("document.querySelector('.photos img')?.naturalWidth > 0"),
            interval_s=0.1, what="the photo shown",
        )  # fmt: skip
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=DOCS / "officer-assignment-en.png", full_page=True)

        await context.set_offline(True)
        await page.click("button[data-step=en_route]")
        await page.wait_for_selector(".outbox li[data-state=waiting]")
        tapped = await page.get_attribute(".outbox li", "data-key")
        assert tapped
        await page.screenshot(path=artifact("officer-outbox-en.png"))

        async def recorded() -> list[dict[str, Any]]:
            async with pg.acquire() as conn:
                rows = await conn.fetch(
                    """SELECT payload FROM incident_events
                       WHERE incident_id = $1 AND type = 'assignment.en_route'""",
                    uuid.UUID(incident),
                )
            return [dict(r["payload"]) for r in rows]

        assert await recorded() == []
        came_back = time.time()
        await context.set_offline(False)
        await page.wait_for_selector(".outbox", state="detached", timeout=30000)
        events = await recorded()
        assert len(events) == 1, events
        captured = events[0]["captured_at"]
        assert datetime.fromisoformat(captured).timestamp() <= came_back
        async with pg.acquire() as conn:
            kept = await conn.fetchval(
                "SELECT count(*) FROM officer_actions WHERE client_key = $1", tapped
            )
        assert kept == 1
        assert page.js_errors == []
        await context.close()
