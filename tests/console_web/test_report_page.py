"""The citizen's page (/report) on emulated phones in headless Chromium, against the real
app, PostgreSQL and Redis: hold to confirm, an alarm without a fix routed by its trail,
the outbox across a lost network (held exactly once), offline opening, photos, the live
timeline with chat and rating, accessibility and screenshots in both languages."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from tests.conftest import Client, Staff
from tests.console_web.pages import artifact, axe_violations
from tests.console_web.report_pages import (
    hold,
    open_report,
    phone,
    photo,
    tap,
)
from tests.waiting import eventually

pytestmark = pytest.mark.browser

XUANWU_LAKE = {"longitude": 118.7926, "latitude": 32.0732, "accuracy": 20}
KIDNAPPING = "button.tag-kidnapping"


async def count(pg: asyncpg.Pool, sql: str, *args: Any) -> int:
    async with pg.acquire() as conn:
        value: int = await conn.fetchval(sql, *args)
        return value


async def serious(page: Any) -> list[str]:
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in await axe_violations(page)]


@pytest.mark.parametrize("device", ["small-android", "iphone"])
async def test_first_open_registers_and_offers_four_ways_in_both_languages(
    app_client: Client, pg: asyncpg.Pool, device: str
) -> None:
    async with phone(device) as context:
        page = await open_report(context, app_client, "zh-CN")
        assert await count(pg, "SELECT count(*) FROM citizens") == 1
        tiles = await page.locator(".tiles a").all_inner_texts()
        assert len(tiles) == 4 and "无声报警" in tiles[0]
        assert await page.locator("a[href='tel:110']").count() == 1
        assert await page.locator("a[href='sms:12110']").count() == 1
        assert await serious(page) == []
        await page.screenshot(path=artifact(f"report-home-zh-CN-{device}.png"))
        await page.click("button.lang")
        await page.wait_for_selector("text=Silent alarm")
        assert await serious(page) == []
        await page.screenshot(path=artifact(f"report-home-en-{device}.png"))
        # Verification is offered and says what it changes.
        await page.click("a.verify-link")
        await page.wait_for_selector("text=Verified reporters are served sooner")
        assert await serious(page) == []
        # Opening it again is the same device, not a new registration.
        await page.goto(str(app_client.make_url("/report")))
        await page.wait_for_selector(".tiles")
        assert await count(pg, "SELECT count(*) FROM citizens") == 1
        assert page.js_errors == []


@pytest.mark.parametrize("device", ["small-android", "iphone"])
async def test_a_tap_sends_nothing_a_hold_sends_at_once_without_a_fix_then_the_trail_routes_it(
    app_client: Client, pg: asyncpg.Pool, device: str
) -> None:
    async with phone(device) as context:  # location allowed, but no fix yet
        page = await open_report(context, app_client, "en")
        await page.click("a.tile-alarm")
        await page.wait_for_selector(KIDNAPPING)
        assert await serious(page) == []
        await page.screenshot(path=artifact(f"report-alarm-grid-en-{device}.png"))
        # A short tap (touch) and a short press send nothing, and say so.
        await tap(page, KIDNAPPING)
        await page.wait_for_selector("text=Too short")
        await page.hover(KIDNAPPING)
        await page.mouse.down()
        await page.mouse.up()
        assert await count(pg, "SELECT count(*) FROM incidents") == 0
        assert await page.evaluate("location.hash") == "#/alarm"

        await hold(page, KIDNAPPING)
        await page.wait_for_selector(".delivery[data-state=received]")
        row = await _only_incident(pg)
        assert row["tag"] == "kidnapping" and row["lon"] is None
        assert row["jurisdiction"] == "unknown"
        assert await serious(page) == []
        await page.screenshot(path=artifact(f"report-alarm-sent-en-{device}.png"))

        # The phone finds itself: the fix goes to the trail and routes the alarm.
        await context.set_geolocation(XUANWU_LAKE)

        async def routed() -> bool:
            return bool((await _only_incident(pg))["precinct_code"] == "320102")

        await eventually(routed)
        assert await count(pg, "SELECT count(*) FROM alarm_trail") >= 1
        await page.wait_for_selector(".location.ok")

        # Cancelling needs a confirmation; "keep" keeps it.
        await page.click("button.cancel")
        await page.click("text=Keep the alarm")
        assert (await _only_incident(pg))["state"] == "queued"
        await page.click("button.cancel")
        await page.click("text=Yes, it was a mistake")

        async def cancelled() -> bool:
            return bool((await _only_incident(pg))["state"] == "cancelled")

        await eventually(cancelled)
        assert page.js_errors == []


async def _only_incident(pg: asyncpg.Pool) -> asyncpg.Record:
    async with pg.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM incidents")
    assert len(rows) == 1, rows
    return rows[0]


async def test_offline_the_page_opens_and_the_alarm_waits_then_is_held_exactly_once(
    app_client: Client, pg: asyncpg.Pool
) -> None:
    async with phone("small-android", geolocation=XUANWU_LAKE) as context:
        page = await open_report(context, app_client, "en")
        await context.set_offline(True)
        # Opened with no network: the service worker serves the shell.
        response = await page.reload()
        assert response is not None and response.from_service_worker
        await page.wait_for_selector(".offline")
        await page.screenshot(path=artifact("report-offline-en.png"))
        await page.click("a.tile-alarm")
        await hold(page, "button.tag-robbery")
        await page.wait_for_selector(".delivery[data-state=waiting]")
        assert await page.locator("text=sent by itself when the network returns").count() >= 1
        assert await count(pg, "SELECT count(*) FROM incidents") == 0

        await context.set_offline(False)
        await page.wait_for_selector(".delivery[data-state=received]", timeout=30_000)
        # Back and forth again, and a reload: the outbox never sends it twice.
        await page.reload()
        await page.wait_for_selector(".delivery[data-state=received]")
        assert await count(pg, "SELECT count(*) FROM incidents") == 1
        assert await count(pg, "SELECT count(*) FROM reports") == 1
        row = await _only_incident(pg)
        assert (row["tag"], row["precinct_code"]) == ("robbery", "320102")
        assert page.js_errors == []


async def test_a_photo_report_is_resized_on_the_phone_and_stored_with_its_position(
    app_client: Client, pg: asyncpg.Pool
) -> None:
    async with phone("iphone", geolocation=XUANWU_LAKE) as context:
        page = await open_report(context, app_client, "zh-CN")
        await page.click("a.tile-text")
        await page.wait_for_selector("textarea[name=text]")
        await page.wait_for_selector(".report-form .location >> text=精度")
        await page.fill("textarea[name=text]", "有人在砸车窗，我在对面楼里，不能说话。")
        await page.select_option("select[name=tag]", "robbery")
        big = [photo((200, 30, 30)), photo((30, 160, 40)), photo((20, 40, 200))]
        await page.set_input_files(
            "input[type=file]",
            [
                {"name": f"p{i}.jpg", "mimeType": "image/jpeg", "buffer": b}
                for i, b in enumerate(big)
            ],
        )
        await page.wait_for_selector(".thumbs li:nth-child(3)")
        assert await serious(page) == []
        await page.screenshot(path=artifact("report-text-zh-CN.png"))
        await page.click("button[type=submit]")
        await page.wait_for_selector(".delivery[data-state=received]")
        async with pg.acquire() as conn:
            report = await conn.fetchrow("SELECT * FROM reports")
            images = await conn.fetch("SELECT * FROM attachments ORDER BY bytes")
        assert report["text"].startswith("有人在砸车窗") and report["location_source"] == "device"
        assert len(images) == 3
        # Resized before upload: at most 1600 px on the long side, far smaller than sent.
        assert all(max(i["width"], i["height"]) <= 1600 for i in images)
        assert all(i["bytes"] < len(b) for i, b in zip(images, sorted(big, key=len), strict=True))
        assert page.js_errors == []


async def test_my_case_updates_live_with_chat_and_rating(
    app_client: Client, pg: asyncpg.Pool, staff: Staff
) -> None:
    async with phone("small-android", geolocation=XUANWU_LAKE) as context:
        page = await open_report(context, app_client, "en")
        await page.click("a.tile-alarm")
        await hold(page, "button.tag-assault")
        await page.wait_for_selector(".delivery[data-state=received]")
        incident_id = str((await _only_incident(pg))["id"])
        case_no = (await _only_incident(pg))["case_no"]
        await page.goto(str(app_client.make_url(f"/report?lang=en#/case/{case_no}")))
        await page.wait_for_selector(".status[data-status=queued]")
        await page.wait_for_selector(".live")

        headers = staff.dispatcher.headers
        claim = await app_client.post(f"/api/incidents/{incident_id}/claim", headers=headers)
        assert claim.status == 200, await claim.text()
        await page.wait_for_selector(".status[data-status=claimed]")
        await page.wait_for_selector(".timeline li[data-event='incident.claimed']")
        said = await app_client.post(
            f"/api/incidents/{incident_id}/messages", headers=headers,
            json={"body": "Are you safe? Write yes or no.", "client_key": f"k-{uuid.uuid4()}"},
        )  # fmt: skip
        assert said.status in (200, 201), await said.text()
        await page.wait_for_selector(".msg-staff >> text=Are you safe?")
        await page.fill("#chat-input", "yes, hiding upstairs")
        await page.click(".chat-form button[type=submit]")
        await page.wait_for_selector(".msg-citizen >> text=hiding upstairs")
        assert await count(
            pg, "SELECT count(*) FROM messages WHERE sender_kind = 'citizen' AND body LIKE 'yes%'"
        ) == 1  # fmt: skip
        assert await serious(page) == []
        await page.screenshot(path=artifact("report-case-en.png"))

        resolved = await app_client.post(
            f"/api/incidents/{incident_id}/resolve", headers=headers,
            json={"disposition": "assisted", "note": "reporter safe"},
        )  # fmt: skip
        assert resolved.status == 200, await resolved.text()
        await page.wait_for_selector(".status[data-status=resolved]")
        await page.click("button[aria-label='4 stars']")
        await page.wait_for_selector("text=Thank you for your rating")
        assert (await _only_incident(pg))["rating"] == 4
        assert page.js_errors == []
