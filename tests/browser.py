"""Headless Debian Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from playwright.async_api import async_playwright

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium keeps trying to reach Google's hosts from a closed network.
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


@contextlib.asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Any]:
    """A browser; tests fail (never skip) when Chromium is missing: `./dev test` installs it."""
    with tempfile.TemporaryDirectory(prefix="m110-chromium-") as profile:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=[*_ARGS, *extra_args]
            )
            try:
                yield context
            finally:
                await context.close()


# A mid-range Android phone (Pixel 7's screen) in Chrome.
PHONE: dict[str, Any] = {
    "viewport": {"width": 412, "height": 915},
    "device_scale_factor": 2.625,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36"
    ),
}


@contextlib.asynccontextmanager
async def chromium_browser() -> AsyncIterator[Any]:
    """A browser for several contexts (phones, a console) side by side."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
