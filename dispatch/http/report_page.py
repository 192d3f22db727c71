"""What the citizen page (`/report`) needs beyond its HTML: its service worker, its web
app manifest and icon.

The service worker lives at `/report/sw.js` (a fixed URL, so the browser can check it
for updates) and controls `/report` (`Service-Worker-Allowed`, since its own folder
would limit it to `/report/`).  It is written from `console_web/static/report-sw.js`
with the page's current files in front, so every build is a new worker version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from console_web import static_dir


class BuiltPages(Protocol):
    """What the bundle's manifest says of its pages (dispatch/http/pages.Manifest)."""

    @property
    def pages(self) -> Mapping[str, Mapping[str, Any]]: ...


ManifestReader = Callable[[], BuiltPages | None]

PAGE = "/report"
SW_PATH = "/report/sw.js"
MANIFEST_PATH = "/report.webmanifest"
ICON_PATH = "/report/icon.svg"
THEME = "#1d2a3a"

# A plain shield with "110": no image file to build, crisp at every size.
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512">'
    f'<rect width="512" height="512" rx="96" fill="{THEME}"/>'
    '<path d="M256 72 408 128v118c0 96-64 168-152 194-88-26-152-98-152-194V128z" fill="#0b57d0"/>'
    '<text x="256" y="300" font-family="sans-serif" font-size="132" font-weight="700" '
    'fill="#fff" text-anchor="middle">110</text></svg>'
)

WEB_MANIFEST: dict[str, Any] = {
    "name": "110 报警 · Report to the police",
    "short_name": "110",
    "lang": "zh-CN",
    "start_url": PAGE,
    "scope": PAGE,
    "display": "standalone",
    "orientation": "portrait",
    "background_color": "#f4f5f7",
    "theme_color": THEME,
    "icons": [{"src": ICON_PATH, "sizes": "any", "type": "image/svg+xml", "purpose": "any"}],
}

# What /report's HTML carries besides its script and styles.
HEAD = (
    f'<link rel="manifest" href="{MANIFEST_PATH}">'
    f'<meta name="theme-color" content="{THEME}">'
    f'<link rel="icon" href="{ICON_PATH}" type="image/svg+xml">'
    f'<link rel="apple-touch-icon" href="{ICON_PATH}">'
    '<meta name="mobile-web-app-capable" content="yes">'
)


def shell_files(manifest: BuiltPages | None) -> list[str] | None:
    """The URLs the page needs to open offline, or None while it is not built."""
    entry = manifest.pages.get("report") if manifest else None
    if entry is None:
        return None
    assets = [entry["js"], *entry.get("css", []), *entry.get("preload", [])]
    return [PAGE, MANIFEST_PATH, ICON_PATH, *(f"/{name}" for name in assets)]


def service_worker_source(shell: list[str]) -> str:
    template = (static_dir() / "report-sw.js").read_text(encoding="utf-8")
    version = hashlib.sha256(json.dumps([shell, template]).encode()).hexdigest()[:16]
    return f"const VERSION = {json.dumps(version)};\nconst SHELL = {json.dumps(shell)};\n{template}"


def _service_worker(manifest: ManifestReader) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        shell = shell_files(manifest())
        if shell is None:
            # No worker until the page exists: a 404 makes the browser drop an old one.
            return web.Response(status=404, text="// not built\n", content_type="text/javascript")
        response = web.Response(text=service_worker_source(shell), content_type="text/javascript")
        # Browsers check the worker on every navigation; it must never be stale.
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Service-Worker-Allowed"] = PAGE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return handler


async def web_manifest(request: web.Request) -> web.Response:
    response = web.Response(
        text=json.dumps(WEB_MANIFEST, ensure_ascii=False), content_type="application/manifest+json"
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


async def icon(request: web.Request) -> web.Response:
    response = web.Response(text=ICON, content_type="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def setup(app: web.Application, manifest: ManifestReader) -> None:
    app.router.add_get(SW_PATH, _service_worker(manifest))
    app.router.add_get(MANIFEST_PATH, web_manifest)
    app.router.add_get(ICON_PATH, icon)
