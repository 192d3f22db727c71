"""What every browser client loads first: its configuration and the precinct map.

`GET /api/client/config`: the server's time and time zone (waiting times are counted
from the server's clock), the overdue thresholds, the report tags' names (zh-CN and
en), and the optional basemap.
`GET /api/precincts.geojson`: the precinct boundaries, simplified for drawing (about
20 m), with an ETag that changes with every import, so a client revalidates cheaply.
Neither needs a login: boundaries are public and the citizen page draws them too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass

import msgspec
from aiohttp import web
from shapely.geometry import mapping

from dispatch.http.console_api import CONSOLE
from dispatch.http.keys import CLOCK, PRECINCTS, SETTINGS
from geo.precincts import Precinct

routes = web.RouteTableDef()

# Degrees; about 20 m at Nanjing's latitude: invisible at city zoom, a tenth the bytes.
SIMPLIFY_TOLERANCE_DEG = 0.0002


@dataclass(frozen=True, slots=True)
class DrawnPrecincts:
    import_id: int
    body: bytes
    etag: str


class PrecinctDrawings:
    """The simplified GeoJSON of the current import, built once per import."""

    def __init__(self) -> None:
        self._current: DrawnPrecincts | None = None
        self._lock = asyncio.Lock()

    async def get(self, import_id: int, precincts: tuple[Precinct, ...]) -> DrawnPrecincts:
        async with self._lock:
            if self._current is None or self._current.import_id != import_id:
                body = await asyncio.to_thread(_geojson, precincts)
                etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
                self._current = DrawnPrecincts(import_id, body, etag)
            return self._current


DRAWINGS = web.AppKey("precinct_drawings", PrecinctDrawings)


def _rounded(coords: object) -> object:
    if isinstance(coords, tuple | list):
        if coords and isinstance(coords[0], float | int):
            return [round(float(c), 6) for c in coords]
        return [_rounded(c) for c in coords]
    return coords


def _geojson(precincts: tuple[Precinct, ...]) -> bytes:
    features = []
    for precinct in precincts:
        simple = precinct.geometry.simplify(SIMPLIFY_TOLERANCE_DEG, preserve_topology=True)
        geometry = mapping(simple)
        features.append(
            {
                "type": "Feature",
                "properties": {"code": precinct.code, "name": precinct.name},
                "geometry": {
                    "type": geometry["type"],
                    "coordinates": _rounded(geometry["coordinates"]),
                },
            }
        )
    return json.dumps(
        {"type": "FeatureCollection", "features": features},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


@routes.get("/api/precincts.geojson")
async def precincts_geojson(request: web.Request) -> web.Response:
    # Not the snapshot across the await: a replaced index is freed off the event loop
    # (dispatch/infra/precinct_registry.py) only if no request still holds it.
    snapshot = request.app[PRECINCTS].snapshot
    import_id, precincts = snapshot.import_id, snapshot.index.precincts
    del snapshot
    drawn = await request.app[DRAWINGS].get(import_id, precincts)
    headers = {"ETag": drawn.etag, "Cache-Control": "no-cache"}
    if drawn.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=drawn.body, content_type="application/geo+json", headers=headers)


@routes.get("/api/client/config")
async def client_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    basemap = None
    if settings.basemap_url:
        basemap = {
            "url": settings.basemap_url,
            "datum": settings.basemap_datum,
            "attribution": settings.basemap_attribution,
        }
    tags = await request.app[CONSOLE].tags()
    return web.Response(
        body=msgspec.json.encode(
            {
                "now_ms": round(request.app[CLOCK].now().timestamp() * 1000),
                "timezone": settings.timezone,
                "overdue_s": {str(k): v for k, v in settings.overdue_thresholds.items()},
                "basemap": basemap,
                "tags": tags,
            }
        ),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def setup(app: web.Application) -> None:
    app[DRAWINGS] = PrecinctDrawings()
    app.add_routes(routes)
