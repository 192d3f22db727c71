"""The browser clients' pages and their hashed assets.

Each page's HTML is written here from `dist/manifest.json` (built by
`console_web/build.mjs`): the script and styles it names carry a content hash, so they
are served as immutable for a year, while the HTML itself is revalidated every time.
Every page goes out with a strict Content-Security-Policy: scripts and styles from this
origin only (no inline code), images also from the configured basemap's origin.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from console_web import BUILD_HINT
from dispatch.domain.errors import NotFound
from dispatch.http import report_page
from dispatch.http.keys import SETTINGS
from dispatch.settings import Settings

logger = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    entry: str  # the folder under console_web/src/pages/
    title: str
    head: str = ""  # more of <head> (a web app manifest, a theme colour)


# The pages served from the bundle.  A new client is a folder under
# console_web/src/pages/ plus one line here.
PAGES = (
    Page("/console", "console", "110 接警台 · Dispatch console"),
    Page("/report", "report", "110 报警 · Report to the police", report_page.HEAD),
    Page(
        "/officer",
        "officer",
        "110 出警 · Field officer",
        '<link rel="manifest" href="/static/officer.webmanifest">'
        '<meta name="theme-color" content="#14181f">',
    ),
)


@dataclass(frozen=True, slots=True)
class Manifest:
    pages: dict[str, dict[str, Any]]
    files: frozenset[str]
    mtime_ns: int


class Bundle:
    """The built bundle under `root`, re-read when its manifest changes (a rebuild
    while the server runs is picked up by the next request)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._manifest: Manifest | None = None

    def manifest(self) -> Manifest | None:
        path = self.root / "manifest.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        if self._manifest is None or self._manifest.mtime_ns != mtime:
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self._manifest = Manifest(raw["pages"], frozenset(raw["files"]), mtime)
            except (OSError, ValueError, KeyError, TypeError):
                logger.warning("unreadable bundle manifest %s", path, exc_info=True)
                return None
        return self._manifest


BUNDLE = web.AppKey("bundle", Bundle)


def content_security_policy(settings: Settings) -> str:
    images = ["'self'", "data:", "blob:"]
    if settings.basemap_url:
        parts = urlsplit(settings.basemap_url.replace("{s}", "a"))
        host = parts.netloc
        if "{s}" in settings.basemap_url:
            # Leaflet's subdomains: a.tiles.example, b.tiles.example, ...
            host = "*." + host.split(".", 1)[1] if "." in host else host
        images.append(f"{parts.scheme}://{host}")
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            "connect-src 'self'",
            "media-src 'self' blob:",
            "font-src 'self'",
            "worker-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _security_headers(response: web.StreamResponse, settings: Settings) -> None:
    response.headers["Content-Security-Policy"] = content_security_policy(settings)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"


def page_html(page: Page, entry: dict[str, Any]) -> str:
    styles = "".join(
        f'<link rel="stylesheet" href="/{html.escape(css)}">' for css in entry.get("css", [])
    )
    preload = "".join(
        f'<link rel="modulepreload" href="/{html.escape(js)}">' for js in entry.get("preload", [])
    )
    return (
        "<!doctype html>\n"
        '<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(page.title)}</title>{page.head}{styles}{preload}"
        f'<script type="module" src="/{html.escape(entry["js"])}"></script>'
        '</head><body><div id="app"></div>'
        "<noscript>需要启用 JavaScript · JavaScript is required</noscript>"
        "</body></html>\n"
    )


def _not_built(page: Page, settings: Settings) -> web.Response:
    text = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(page.title)}"
        f"</title></head><body><h1>{html.escape(page.title)}</h1>"
        f"<p>This server cannot show {html.escape(page.path)}: {html.escape(BUILD_HINT)}.</p>"
        "</body></html>\n"
    )
    response = web.Response(text=text, status=503, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Retry-After"] = "30"
    _security_headers(response, settings)
    return response


def _page_handler(page: Page) -> Any:
    async def handler(request: web.Request) -> web.Response:
        settings = request.app[SETTINGS]
        manifest = request.app[BUNDLE].manifest()
        entry = manifest.pages.get(page.entry) if manifest else None
        if entry is None:
            logger.warning("%s requested but %s", page.path, BUILD_HINT)
            return _not_built(page, settings)
        response = web.Response(text=page_html(page, entry), content_type="text/html")
        response.headers["Cache-Control"] = "no-cache"
        _security_headers(response, settings)
        return response

    return handler


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    bundle = request.app[BUNDLE]
    manifest = bundle.manifest()
    # Only files the build wrote (never a path the URL made up) are served.
    if manifest is None or f"assets/{name}" not in manifest.files | _maps(manifest.files):
        raise NotFound("no such asset", field="name")
    response = web.FileResponse(bundle.root / "assets" / name)
    response.headers["Cache-Control"] = IMMUTABLE
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _maps(files: frozenset[str]) -> frozenset[str]:
    return frozenset(f + ".map" for f in files if f.endswith((".js", ".css")))


def setup(app: web.Application, root: Path) -> None:
    app[BUNDLE] = Bundle(root)
    for page in PAGES:
        app.router.add_get(page.path, _page_handler(page))
    app.router.add_get("/assets/{name}", asset)
    report_page.setup(app, app[BUNDLE].manifest)
    app.router.add_get("/favicon.ico", no_icon)


async def no_icon(request: web.Request) -> web.Response:
    # Browsers ask for it on every page; an empty answer beats a 404 in every console.
    return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})
