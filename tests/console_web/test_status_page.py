from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.browser import chromium


@pytest.mark.browser
async def test_status_page_shows_ready(
    app_client: TestClient[web.Request, web.Application], tmp_path: Path
) -> None:
    base = str(app_client.make_url("/"))
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(base)
        await page.wait_for_function("document.getElementById('ready').textContent === 'ready'")
        assert await page.text_content("#schema") not in {None, "–"}
        await page.screenshot(path=str(tmp_path / "status.png"))
    assert (tmp_path / "status.png").stat().st_size > 1000
