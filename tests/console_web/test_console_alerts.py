"""New-alarm and overdue alerts: the icon goes amber then red and flashes (the text does
not); the tone repeats while an alarm is unclaimed, only once sound is switched on."""

from __future__ import annotations

import dataclasses

import pytest

from dispatch.settings import Settings
from tests.browser import chromium
from tests.conftest import CitizenSession, Client, Staff
from tests.console_web.pages import open_console, post_alarm, row

pytestmark = pytest.mark.browser


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    # Three seconds for every severity: amber after 1.5, red after 3.
    return dataclasses.replace(settings, overdue_s=("3", "3", "3", "3"))


async def test_alarm_alerts_go_amber_then_red_and_sound_until_claimed(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    async with chromium() as browser:
        page = await open_console(browser, app_client, staff.dispatcher.username, "zh-CN")
        sound = page.locator("button.sound")
        assert await sound.get_attribute("aria-pressed") == "false"
        # Every alert class a row's icon takes, in order.
        await page.evaluate(
            """() => { window.__alerts = [];
              new MutationObserver(() => {
                for (const el of document.querySelectorAll('li.row .alert')) {
                  const level = el.className.replace('alert ', '');
                  if (window.__alerts.at(-1) !== level) window.__alerts.push(level);
                }
              }).observe(document.body, {subtree: true, childList: true, attributes: true}); }"""
        )
        incident_id = (await post_alarm(app_client, citizen))["incident_id"]
        await page.wait_for_selector(row(incident_id))
        # Sound is off: no tone, however urgent.
        assert await page.evaluate("() => __console.beeps()") == 0

        await sound.click()
        assert await sound.get_attribute("aria-pressed") == "true"
        await page.wait_for_selector(f"{row(incident_id)} .alert-red")
        seen = await page.evaluate("() => window.__alerts")
        assert "alert-amber" in seen and seen.index("alert-amber") < seen.index("alert-red"), seen
        flashing = await page.evaluate(
            """(sel) => [getComputedStyle(document.querySelector(sel + ' .alert')).animationName,
                         getComputedStyle(document.querySelector(sel + ' .case')).animationName]""",
            row(incident_id),
        )
        assert flashing == ["blink", "none"]
        await page.wait_for_function("() => __console.beeps() > 0")
        assert await page.evaluate("() => __console.toneLevel()") == "red"
        assert (await page.text_content("[data-count=overdue]")) == "1"

        await page.click(row(incident_id))
        await page.keyboard.press("c")
        await page.wait_for_selector(f"{row(incident_id)}[data-state=claimed]")
        assert await page.evaluate("() => __console.toneLevel()") is None
        assert await page.locator(f"{row(incident_id)} .alert-red").count() == 0
