"""Helpers for the browser clients' tests: a signed-in console page, alarms, axe."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import STAFF_PASSWORD, CitizenSession

Client = TestClient[web.Request, web.Application]

AXE = (
    Path(__file__).resolve().parents[2] / "console_web" / "node_modules" / "axe-core" / "axe.min.js"
)
# Screenshots are kept for people to look at (and one is in the README).
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"

XUANWU_LAKE = (118.7926, 32.0732)  # WGS84, in 玄武区 (320102)


def alarm_body(tag: str = "kidnapping", **overrides: Any) -> dict[str, Any]:
    body = {
        "tag": tag,
        "lon": XUANWU_LAKE[0],
        "lat": XUANWU_LAKE[1],
        "accuracy_m": 12.5,
        "datum": "wgs84",
        "client_time": datetime.now(UTC).isoformat(),
        "idempotency_key": f"key-{uuid.uuid4()}",
    }
    body.update(overrides)
    return body


async def post_alarm(client: Client, citizen: CitizenSession, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/alarms", json=alarm_body(**overrides), headers=citizen.headers
    )
    assert response.status in (200, 201, 202), await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def open_console(
    context: Any, client: Client, username: str, lang: str = "en", page: Any = None
) -> Any:
    """A console page signed in through its login form."""
    page = page or await context.new_page()
    await page.set_viewport_size({"width": 1600, "height": 900})
    errors: list[str] = []
    logs: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: logs.append(f"{msg.type}: {msg.text}"))
    page.js_errors = errors
    page.js_logs = logs
    await page.goto(str(client.make_url(f"/console?lang={lang}")))
    try:
        await page.wait_for_selector("input[name=username]", timeout=15000)
    except Exception as exc:
        raise AssertionError(f"no login form; errors {errors}, console {logs}") from exc
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector(".conn[data-state=live]")
    return page


def row(incident_id: str) -> str:
    return f"li.row[data-id='{incident_id}']"


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    # Through the DevTools protocol: the page's strict CSP (rightly) refuses inline scripts.
    cdp = await page.context.new_cdp_session(page)
    try:
        await cdp.send("Runtime.evaluate", {"expression": AXE.read_text(encoding="utf-8")})
    finally:
        await cdp.detach()
    result: dict[str, Any] = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "impact": v["impact"],
         "nodes": [(n["target"], n.get("failureSummary", "")[:200]) for n in v["nodes"][:5]]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]  # fmt: skip


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
