"""HTTP routes only the dispatcher console uses: its roster, the queue's annotations,
and evidence on demand."""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from dispatch.domain.errors import BadRequest
from dispatch.http.staff_api import incident_id, load_limit, staff
from dispatch.services.console_queries import ConsoleQueries
from dispatch.services.evidence_access import EvidenceAccess

CONSOLE = web.AppKey("console_queries", ConsoleQueries)
EVIDENCE = web.AppKey("evidence_access", EvidenceAccess)

routes = web.RouteTableDef()


def _json(body: object) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), content_type="application/json")


@routes.get("/api/console/roster")
async def roster(request: web.Request) -> web.Response:
    found = await request.app[CONSOLE].roster(await staff(request))
    return _json({"officers": found.officers, "staff": found.staff})


@routes.get("/api/console/annotations")
async def queue_annotations(request: web.Request) -> web.Response:
    found = await request.app[CONSOLE].annotations(await staff(request), load_limit(request))
    return _json({"incidents": found})


@routes.get("/api/incidents/{incident_id}/evidence")
async def list_evidence(request: web.Request) -> web.Response:
    session = await staff(request)
    found = await request.app[EVIDENCE].list(session, incident_id(request))
    return _json({"attachments": found})


@routes.get("/api/incidents/{incident_id}/evidence/{attachment_id}")
async def read_evidence(request: web.Request) -> web.FileResponse:
    """One evidence file; the read is audited (who, when, why: `?purpose=`)."""
    session = await staff(request)
    try:
        attachment = uuid.UUID(request.match_info["attachment_id"])
    except ValueError:
        raise BadRequest("the attachment id is not a UUID", field="attachment_id") from None
    purpose = request.query.get("purpose", "dispatch").strip()[:100] or "dispatch"
    found = await request.app[EVIDENCE].read(session, incident_id(request), attachment, purpose)
    response = web.FileResponse(found.path)
    response.content_type = found.media_type
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    response.headers["Digest"] = f"sha-256={found.sha256}"
    return response
