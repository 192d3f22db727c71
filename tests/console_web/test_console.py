"""The dispatcher console in headless Chromium against the real app."""

from __future__ import annotations

import pytest

from tests.browser import chromium
from tests.conftest import CitizenSession, Client, Staff
from tests.console_web.pages import open_console, post_alarm, row

pytestmark = pytest.mark.browser


async def test_alarm_appears_and_is_claimed_by_keyboard(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    async with chromium() as browser:
        page = await open_console(browser, app_client, staff.dispatcher.username)
        created = await post_alarm(app_client, citizen)
        incident_id = created["incident_id"]
        await page.wait_for_selector(row(incident_id))
        await page.keyboard.press("ArrowDown")
        await page.keyboard.press("c")
        await page.wait_for_selector(f"{row(incident_id)}[data-state=claimed]")
        response = await app_client.get(
            f"/api/incidents/{incident_id}", headers=staff.dispatcher.headers
        )
        assert (await response.json())["claimed_by"] == staff.dispatcher.id
        assert page.js_errors == []
