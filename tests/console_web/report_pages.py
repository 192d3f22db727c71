"""Helpers for the citizen page's browser tests: phones, the page, waiting on PostgreSQL."""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from PIL import Image
from playwright.async_api import async_playwright

from tests.browser import _ARGS, CHROMIUM
from tests.conftest import Client

# Two phones: a small Android and an iPhone-sized one (viewport, pixel ratio, touch).
PHONES: dict[str, dict[str, Any]] = {
    "small-android": {
        "viewport": {"width": 360, "height": 640},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
        "user_agent": (
            "Mozilla/5.0 (Linux; Android 11; SM-A125F) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
        ),
    },
    "iphone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
        "user_agent": (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
        ),
    },
}


@contextlib.asynccontextmanager
async def phone(name: str = "small-android", **options: Any) -> AsyncIterator[Any]:
    """A phone-shaped Chromium context (fake camera and microphone, location allowed)."""
    with tempfile.TemporaryDirectory(prefix="m110-phone-") as profile:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=_ARGS,
                permissions=["geolocation", "camera", "microphone"], bypass_csp=True,  # axe-core
                **PHONES[name], **options,
            )  # fmt: skip
            try:
                yield context
            finally:
                await context.close()


async def open_report(context: Any, client: Client, lang: str = "zh-CN") -> Any:
    """The report page, registered and ready (its service worker controlling it)."""
    page = context.pages[0] if context.pages else await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    await page.goto(str(client.make_url(f"/report?lang={lang}")))
    await page.wait_for_selector(".tiles")
    # Registered: the account is in IndexedDB.
    await page.wait_for_function(
        """async () => {
            const db = await new Promise((ok, ko) => {
                const r = indexedDB.open("m110-report"); r.onsuccess = () => ok(r.result);
                r.onerror = ko; });
            const tx = db.transaction("kv").objectStore("kv").get("account");
            return await new Promise((ok) => { tx.onsuccess = () => ok(!!tx.result?.token); });
        }""",
        polling=200,
    )
    await page.evaluate("navigator.serviceWorker.ready")
    return page


async def hold(page: Any, selector: str) -> None:
    """Press and hold until the page has moved on from the grid (the hold confirmed).

    Waits on the calm screen, not with `wait_for_function`: that evaluates a string in
    the page, which the page's own CSP forbids when it is not bypassed."""
    box = await page.locator(selector).bounding_box()
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    try:
        await page.wait_for_selector("section.calm", timeout=10_000)
    finally:
        await page.mouse.up()


async def tap(page: Any, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    await page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def photo(color: tuple[int, int, int], size: tuple[int, int] = (2400, 1800)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", quality=90)
    return out.getvalue()
