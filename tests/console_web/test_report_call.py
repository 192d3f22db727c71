"""The citizen page's video call with Chromium's fake camera, picked up by a dispatcher
client (an aiortc peer through the WHEP-shaped viewer endpoint)."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import Client, Staff
from tests.console_web.pages import artifact, axe_violations
from tests.console_web.report_pages import open_report, phone
from tests.media.calls import pick_up
from tests.media.peers import Console, wait_for

pytestmark = pytest.mark.browser

XUANWU_LAKE = {"longitude": 118.7926, "latitude": 32.0732, "accuracy": 20}


async def test_a_video_call_waits_recording_then_a_dispatcher_picks_it_up(
    app_client: Client, pg: asyncpg.Pool, staff: Staff
) -> None:
    async with phone("small-android", geolocation=XUANWU_LAKE) as context:
        page = await open_report(context, app_client, "en")
        await page.click("a.tile-call")
        await page.click("text=Start the video call")
        await page.wait_for_selector(".call-state[data-state=waiting]", timeout=30_000)
        assert await page.locator("text=Recording — waiting for a dispatcher").count() == 1
        async with pg.acquire() as conn:
            incident = await conn.fetchrow("SELECT * FROM incidents")
        assert incident["channel"] == "video" and incident["precinct_code"] == "320102"
        assert [v["id"] for v in await axe_violations(page)] == []
        await page.screenshot(path=artifact("report-call-waiting-en.png"))

        incident_id = str(incident["id"])
        headers = staff.dispatcher.headers
        claimed = await app_client.post(f"/api/incidents/{incident_id}/claim", headers=headers)
        assert claimed.status == 200, await claimed.text()
        console = Console(talk=True)
        try:
            viewer = await pick_up(app_client, incident_id, headers, console)
            await wait_for(lambda: console.video.frames >= 5, what="the phone's video")
            await page.wait_for_selector(".call-state[data-state=connected]", timeout=30_000)
            await page.click("text=Mute")
            await page.wait_for_selector("button[aria-pressed=true]")
            assert (await app_client.delete(viewer, headers=headers)).status == 200
            await page.wait_for_selector(".call-state[data-state=waiting]", timeout=30_000)
        finally:
            await console.close()
        await page.click("text=Hang up")
        await page.wait_for_selector(".call-state[data-state=ended]")
        assert page.js_errors == []
