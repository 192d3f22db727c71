"""The intake budgets' refusals show on the reporter's incident in the console, live."""

from __future__ import annotations

import dataclasses

import pytest

from dispatch.settings import Settings
from tests.browser import chromium
from tests.conftest import CitizenSession, Client, Staff
from tests.console_web.pages import alarm_body, open_console, post_alarm, row

pytestmark = pytest.mark.browser


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, alarms_per_citizen=1)


async def test_a_reporters_refused_alarms_show_on_their_incident(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    async with chromium() as browser:
        page = await open_console(browser, app_client, staff.dispatcher.username, "en")
        incident_id = (await post_alarm(app_client, citizen))["incident_id"]
        await page.click(row(incident_id))
        await page.wait_for_selector("[data-action=reveal-reporter]")
        assert await page.locator("[data-refused]").count() == 0
        for _ in range(2):
            refused = await app_client.post(
                "/api/alarms", json=alarm_body(), headers=citizen.headers
            )
            assert refused.status == 429, await refused.text()
        await page.wait_for_selector("[data-refused]:has-text('2 more alarms')")
        assert page.js_errors == []
