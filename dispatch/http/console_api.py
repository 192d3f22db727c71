"""HTTP routes only the dispatcher console uses: its roster, and evidence on demand."""

from __future__ import annotations

import msgspec
from aiohttp import web

from dispatch.http.staff_api import staff
from dispatch.services.roster import RosterQueries

ROSTER = web.AppKey("roster", RosterQueries)

routes = web.RouteTableDef()


@routes.get("/api/console/roster")
async def roster(request: web.Request) -> web.Response:
    found = await request.app[ROSTER].roster(await staff(request))
    return web.Response(
        body=msgspec.json.encode({"officers": found.officers, "staff": found.staff}),
        content_type="application/json",
    )
