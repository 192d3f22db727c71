"""What the server sends for the citizen page: the HTML with its web app manifest, the
service worker (scope, freshness, the shell it caches) and the manifest itself."""

from __future__ import annotations

import json

from console_web import dist_dir
from tests.conftest import Client


def report_entry() -> dict[str, list[str] | str]:
    manifest = json.loads((dist_dir() / "manifest.json").read_text(encoding="utf-8"))
    entry: dict[str, list[str] | str] = manifest["pages"]["report"]
    return entry


async def test_report_page_is_installable_with_strict_csp(app_client: Client) -> None:
    response = await app_client.get("/report")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    text = await response.text()
    assert f'src="/{report_entry()["js"]}"' in text
    assert '<link rel="manifest" href="/report.webmanifest">' in text
    manifest = await app_client.get("/report.webmanifest")
    assert manifest.content_type == "application/manifest+json"
    body = await manifest.json(content_type=None)
    assert body["start_url"] == "/report" and body["scope"] == "/report"
    assert body["display"] == "standalone" and body["icons"]
    icon = await app_client.get(body["icons"][0]["src"])
    assert icon.status == 200 and icon.content_type == "image/svg+xml"


async def test_service_worker_controls_report_and_caches_its_current_shell(
    app_client: Client,
) -> None:
    response = await app_client.get("/report/sw.js")
    assert response.status == 200
    assert response.content_type == "text/javascript"
    # Its folder would limit it to /report/; the page itself is /report.
    assert response.headers["Service-Worker-Allowed"] == "/report"
    assert response.headers["Cache-Control"] == "no-cache"
    source = await response.text()
    first, second = source.splitlines()[:2]
    assert first.startswith("const VERSION = ")
    shell = json.loads(second.removeprefix("const SHELL = ").removesuffix(";"))
    assert shell[0] == "/report" and f"/{report_entry()['js']}" in shell
    for url in shell:  # everything it caches at install is there to be cached
        assert (await app_client.get(url)).status == 200, url
    # The same build is the same worker (no reinstall on every visit).
    assert await (await app_client.get("/report/sw.js")).text() == source
