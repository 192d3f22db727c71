"""The dispatcher console in headless Chromium against the real app, in zh-CN and en.

Each test drives the page the way a dispatcher would (keyboard first) while real
python-socketio clients play the officer and the citizen.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from dispatch.app import SIGNALING
from tests.browser import chromium
from tests.conftest import CitizenSession, Client, Staff, app_of, register_citizen
from tests.console_web.pages import (
    XUANWU_LAKE,
    artifact,
    axe_violations,
    open_console,
    post_alarm,
    row,
)
from tests.signaling.feeds import FeedClient

pytestmark = pytest.mark.browser

README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "console-zh-CN.png"


def feed_client(app_client: Client, namespace: str, token: str) -> FeedClient:
    return FeedClient(str(app_client.make_url("/")).rstrip("/"), namespace, token)


async def on_duty_nearby(app_client: Client, staff: Staff) -> None:
    headers = staff.officer.headers
    duty = await app_client.post("/api/officers/me/duty", json={"on_duty": True}, headers=headers)
    assert duty.status == 200, await duty.text()
    lon, lat = XUANWU_LAKE
    moved = await app_client.post(
        "/api/officers/me/position",
        json={"lon": lon + 0.004, "lat": lat + 0.002, "accuracy_m": 8},
        headers=headers,
    )
    assert moved.status == 202, await moved.text()


async def api_incident(app_client: Client, staff: Staff, incident_id: str) -> dict[str, Any]:
    response = await app_client.get(
        f"/api/incidents/{incident_id}", headers=staff.commander.headers
    )
    body: dict[str, Any] = await response.json()
    return body


async def test_claim_by_keyboard_then_assign_the_recommended_officer(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    await on_duty_nearby(app_client, staff)
    officer = feed_client(app_client, "/officer", staff.officer.token)
    await officer.go_live()
    try:
        async with chromium() as browser:
            page = await open_console(browser, app_client, staff.dispatcher.username, "en")
            await page.wait_for_selector(".officers[data-free='1']")
            incident_id = (await post_alarm(app_client, citizen))["incident_id"]
            await page.wait_for_selector(f"{row(incident_id)} .alert-new")  # a new alarm flashes

            # Keys typed into a text field are text, not commands.
            await page.keyboard.press("/")
            await page.keyboard.type("c")
            assert await page.input_value("#search") == "c"
            assert (await api_incident(app_client, staff, incident_id))["state"] == "queued"
            await page.fill("#search", "")
            await page.keyboard.press("Escape")  # leaves the search field

            await page.keyboard.press("ArrowDown")
            await page.keyboard.press("c")
            await page.wait_for_selector(f"{row(incident_id)}[data-state=claimed]")
            claimed = await api_incident(app_client, staff, incident_id)
            assert claimed["claimed_by"] == staff.dispatcher.id

            # One click on the recommended officer (with the distance shown) assigns them.
            button = f".recs button[data-action=assign][data-officer='{staff.officer.id}']"
            await page.wait_for_selector(button)
            assert "m" in (
                await page.text_content(f".recs li[data-officer='{staff.officer.id}']") or ""
            )
            await page.click(button)
            await page.wait_for_selector(
                f"[data-assignment=offered][data-officer='{staff.officer.id}'] .timer"
            )
            await officer.wait_for(lambda evs: any(n == "assignment.offered" for n, _ in evs))
            offer = next(d for n, d in officer.events if n == "assignment.offered")
            answer = await officer.call(
                "ack", {"assignment_id": offer["assignment_id"], "accept": True}
            )
            assert answer["ok"], answer
            await page.wait_for_selector(
                f"[data-assignment=accepted][data-officer='{staff.officer.id}']"
            )
            await page.wait_for_selector(".officers[data-busy='1']")

            assert await axe_violations(page) == []
            await page.screenshot(path=str(artifact("console-en.png")))
            assert page.js_errors == []
    finally:
        await officer.close()


async def test_merge_with_confirmation_and_chat_with_the_reporter_in_chinese(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    other = await register_citizen(app_client, "test-device-0002")
    reporter = feed_client(app_client, "/citizen", citizen.token)
    await reporter.go_live()
    try:
        async with chromium() as browser:
            page = await open_console(browser, app_client, staff.dispatcher.username, "zh-CN")
            first = (await post_alarm(app_client, citizen, tag="robbery"))["incident_id"]
            second = (await post_alarm(app_client, other, tag="robbery"))["incident_id"]
            await page.wait_for_selector(row(second))
            assert "疑似重复" in (await page.text_content(row(second)) or "")

            # Chat: the console writes, the reporter's phone reads and answers.
            await page.click(row(first))
            await page.keyboard.press("c")
            await page.wait_for_selector(f"{row(first)}[data-state=claimed]")
            await page.fill("#chat-input", "请问您现在安全吗？")
            await page.press("#chat-input", "Enter")
            await reporter.wait_for(lambda evs: any(n == "message.created" for n, _ in evs))
            said = await reporter.call(
                "message", {"incident_id": first, "body": "安全，我在便利店里", "client_key": "m-1"}
            )
            assert said["ok"], said
            await page.wait_for_selector(".chat [data-chat=citizen]:has-text('便利店')")
            await page.wait_for_selector(".chat [data-chat=staff]:has-text('安全吗')")

            # Merge the duplicate into the first: asked first, cancelled, asked again, done.
            await page.click(row(second))
            await page.click("[data-verb=merge]")
            await page.wait_for_selector("[role=alertdialog]")
            await page.keyboard.press("Escape")
            await page.wait_for_selector("[role=alertdialog]", state="detached")
            assert (await api_incident(app_client, staff, second))["state"] == "queued"
            await page.click("[data-verb=merge]")
            await page.select_option("select[name=into]", first)
            await page.click("[data-confirm]")
            await page.wait_for_selector(row(second), state="detached")
            merged = await api_incident(app_client, staff, second)
            assert merged["state"] == "merged" and merged["merged_into"] == first

            await page.click(row(first))
            await page.wait_for_selector(".timeline [data-type='incident.claimed']")
            assert await axe_violations(page) == []
            shot = artifact("console-zh-CN.png")
            await page.screenshot(path=str(shot))
            if not README_SHOT.exists():
                shutil.copyfile(shot, README_SHOT)
            assert page.js_errors == []
    finally:
        await reporter.close()


async def test_alarms_sent_while_the_websocket_is_down_show_once_after_resume(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    offline = asyncio.Event()
    routes: list[Any] = []

    async def route(ws: Any) -> None:
        if offline.is_set():
            await ws.close(code=1001, reason="test: network down")
            return
        ws.connect_to_server()
        routes.append(ws)

    async with chromium() as browser:
        page = await browser.new_page()
        await page.route_web_socket("**/socket.io/**", route)
        browser_page = await open_console(
            browser, app_client, staff.commander.username, "en", page=page
        )
        await browser_page.evaluate("() => { __console.state.stats.tracking = true; }")
        before = (await post_alarm(app_client, citizen))["incident_id"]
        await browser_page.wait_for_selector(row(before))

        offline.set()
        for ws in routes:
            await ws.close()
        await browser_page.wait_for_selector(".banner[data-banner=reconnecting]")
        missed = [
            (await post_alarm(app_client, citizen, tag=t))["incident_id"]
            for t in ("fire", "robbery", "medical")
        ]
        offline.clear()

        await browser_page.wait_for_selector(".conn[data-state=live]")
        for incident_id in missed:
            await browser_page.wait_for_selector(row(incident_id))
        await browser_page.wait_for_selector(".banner", state="detached")
        stats = await browser_page.evaluate(
            "() => ({regressions: __console.state.stats.regressions,"
            " created: [...__console.state.stats.created.values()]})"
        )
        assert stats["regressions"] == 0
        assert stats["created"] == [1, 1, 1, 1]  # each alarm applied exactly once
        for incident_id in [before, *missed]:
            assert await browser_page.locator(row(incident_id)).count() == 1
        assert browser_page.js_errors == []


async def test_an_ended_session_returns_to_login_keeping_what_was_typed(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    async with chromium() as browser:
        page = await open_console(browser, app_client, staff.dispatcher.username, "en")
        incident_id = (await post_alarm(app_client, citizen))["incident_id"]
        await page.wait_for_selector(row(incident_id))
        await page.keyboard.press("?")
        await page.wait_for_selector("[role=dialog]:has-text('Keyboard shortcuts')")
        await page.keyboard.press("Escape")
        await page.wait_for_selector("[role=dialog]", state="detached")
        await page.keyboard.press("x")  # take the next: the only one, opened
        await page.wait_for_selector(f"{row(incident_id)}[data-state=claimed]")
        await page.wait_for_selector(f".detail[data-id='{incident_id}']")
        await page.fill("#note-text", "caller heard shouting next door, callback at 23:00")
        token = await page.evaluate(
            "() => JSON.parse(sessionStorage.getItem('m110.console')).token"
        )
        ended = await app_client.post(
            "/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
        )
        assert ended.status == 200

        # The logout ends the console's feed at once (session.ended, on every node); the
        # sweep finds nothing left.  It signs in again over the page, nothing underneath
        # touched.
        assert await app_of(app_client)[SIGNALING].sweep_sessions() == 0
        await page.wait_for_selector(".login-backdrop .notice")
        assert (
            await page.input_value("#note-text")
            == "caller heard shouting next door, callback at 23:00"
        )
        await page.fill("input[name=password]", "correct horse battery staple")
        await page.click(".login-backdrop button[type=submit]")
        await page.wait_for_selector(".login-backdrop", state="detached")
        await page.click(".notes button[type=submit]")
        await page.wait_for_selector(
            ".timeline [data-type='incident.updated']:has-text('callback at 23:00')"
        )
        assert await page.input_value("#note-text") == ""
        await page.wait_for_selector(".conn[data-state=live]")
