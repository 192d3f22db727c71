"""The landing page and the status it shows."""

from __future__ import annotations

from aiohttp import web

from console_web import static_dir
from dispatch.http.keys import INFRA, PRECINCTS, SETTINGS

routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static_dir() / "index.html")


@routes.get("/api/status")
async def api_status(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    schema_version = await request.app[INFRA].schema_version()
    # Read after the await: a request never holds a replaced index (see
    # client_config.precincts_geojson).
    snapshot = request.app[PRECINCTS].snapshot
    return web.json_response(
        {
            "service": "micro110",
            "node": settings.node_name,
            "schema_version": schema_version,
            "precincts": len(snapshot.index),
            "precinct_import": snapshot.import_id,
            "precinct_import_loaded_at": snapshot.loaded_at.isoformat(),
            "embedded": {
                "postgresql": settings.embedded_database,
                "redis": settings.embedded_redis,
            },
        }
    )
