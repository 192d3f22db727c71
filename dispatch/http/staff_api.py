"""Staff HTTP API: login, the queue, and the dispatch workflow."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from aiohttp import web

from dispatch.domain.errors import BadRequest, Unauthorized
from dispatch.domain.field_reports import Thread
from dispatch.domain.incidents import Disposition, TransferTarget
from dispatch.domain.users import Role
from dispatch.http.body import read_json
from dispatch.http.citizen_api import bearer_token
from dispatch.http.keys import (
    ASSIGNMENTS,
    CITIZENS,
    INCIDENTS,
    MESSAGES,
    OFFICERS,
    SETTINGS,
    STAFF_AUTH,
    WORKFLOW,
)
from dispatch.http.remote import client_address
from dispatch.services.staff_auth import StaffSession
from dispatch.wire.incident_view import incident_view
from dispatch.wire.models import (
    AssignIn,
    DutyIn,
    EscalateIn,
    InvalidIn,
    LoginIn,
    LoginOut,
    MergeIn,
    MessageIn,
    NoteIn,
    PositionIn,
    RecommendationOut,
    ResolveIn,
    StaffUserOut,
    TransferIn,
)
from geo.datum import Datum

routes = web.RouteTableDef()


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body), status=status, content_type="application/json"
    )


async def staff(request: web.Request) -> StaffSession:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("send the staff token as 'Authorization: Bearer <token>'", field="token")
    return await request.app[STAFF_AUTH].authenticate(token)


def incident_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["incident_id"])
    except ValueError:
        raise BadRequest("the incident id is not a UUID", field="incident_id") from None


def _max_json(request: web.Request) -> int:
    return request.app[SETTINGS].max_json_bytes


@routes.post("/api/auth/login")
async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginIn, max_bytes=_max_json(request))
    token, session = await request.app[STAFF_AUTH].login(
        body.username, body.password, client_address(request)
    )
    user = session.user
    return _json(
        LoginOut(
            token=token,
            expires_at=session.expires_at,
            user=StaffUserOut(
                user.id, user.username, user.display_name, user.role.value, sorted(user.precincts)
            ),
        )
    )


@routes.post("/api/auth/logout")
async def logout(request: web.Request) -> web.Response:
    session = await staff(request)
    await request.app[STAFF_AUTH].logout(session)
    return _json({"status": "logged_out"})


@routes.get("/api/auth/me")
async def me(request: web.Request) -> web.Response:
    user = (await staff(request)).user
    return _json(
        StaffUserOut(
            user.id, user.username, user.display_name, user.role.value, sorted(user.precincts)
        )
    )


@routes.get("/api/incidents")
async def list_incidents(request: web.Request) -> web.Response:
    session = await staff(request)
    session.require(Role.DISPATCHER, Role.COMMANDER)
    incidents = await request.app[INCIDENTS].open_incidents(session)
    return _json({"incidents": [incident_view(i) for i in incidents]})


@routes.get("/api/console/snapshot")
async def console_snapshot(request: web.Request) -> web.Response:
    session = await staff(request)
    session.require(Role.DISPATCHER, Role.COMMANDER)
    seq, rendered = await request.app[INCIDENTS].snapshot(session)
    # Rendered by PostgreSQL (JSON text): only joined here, never parsed.
    body = (
        f'{{"seq":{int(seq)},"queue":[{rendered.queue}],"incidents":[{rendered.incidents}]}}'
    ).encode()
    return web.Response(body=body, content_type="application/json")


@routes.post("/api/incidents/{incident_id}/messages")
async def post_message(request: web.Request) -> web.Response:
    session = await staff(request)
    body = await read_json(request, MessageIn, max_bytes=_max_json(request))
    message = await request.app[MESSAGES].from_staff(
        session, incident_id(request), body.body, body.client_key, Thread(body.thread)
    )
    return _json(message, status=201)


@routes.get("/api/incidents/{incident_id}")
async def get_incident(request: web.Request) -> web.Response:
    session = await staff(request)
    return _json(incident_view(await request.app[INCIDENTS].get(session, incident_id(request))))


@routes.post("/api/incidents/next")
async def next_incident(request: web.Request) -> web.Response:
    session = await staff(request)
    incident = await request.app[WORKFLOW].next(session)
    if incident is None:
        return _json({"incident": None})
    return _json({"incident": incident_view(incident)})


@routes.post("/api/incidents/{incident_id}/claim")
async def claim(request: web.Request) -> web.Response:
    session = await staff(request)
    return _json(incident_view(await request.app[WORKFLOW].claim(session, incident_id(request))))


@routes.post("/api/incidents/{incident_id}/release")
async def release(request: web.Request) -> web.Response:
    session = await staff(request)
    return _json(incident_view(await request.app[WORKFLOW].release(session, incident_id(request))))


@routes.post("/api/incidents/{incident_id}/assign")
async def assign(request: web.Request) -> web.Response:
    session = await staff(request)
    body = await read_json(request, AssignIn, max_bytes=_max_json(request))
    incident = await request.app[WORKFLOW].assign(
        session, incident_id(request), body.officer_ids, body.mutual_aid_reason
    )
    return _json(incident_view(incident))


@routes.post("/api/incidents/{incident_id}/merge")
async def merge(request: web.Request) -> web.Response:
    session = await staff(request)
    body = await read_json(request, MergeIn, max_bytes=_max_json(request))
    return _json(
        incident_view(await request.app[WORKFLOW].merge(session, incident_id(request), body.into))
    )


@routes.post("/api/incidents/{incident_id}/unmerge")
async def unmerge(request: web.Request) -> web.Response:
    session = await staff(request)
    return _json(incident_view(await request.app[WORKFLOW].unmerge(session, incident_id(request))))


@routes.post("/api/incidents/{incident_id}/invalid")
async def mark_invalid(request: web.Request) -> web.Response:
    session = await staff(request)
    body = await read_json(request, InvalidIn, max_bytes=_max_json(request))
    return _json(
        incident_view(
            await request.app[WORKFLOW].mark_invalid(session, incident_id(request), body.reason)
        )
    )


@routes.post("/api/incidents/{incident_id}/transfer")
async def transfer(request: web.Request) -> web.Response:
    session = await staff(request)
    body = await read_json(request, TransferIn, max_bytes=_max_json(request))
    workflow = request.app[WORKFLOW]
    if body.to == "precinct":
        incident = await workflow.reroute(session, incident_id(request), body.name, body.note)
    else:
        incident = await workflow.transfer(
            session, incident_id(request), TransferTarget(body.to), body.name, body.note
        )
    return _json(incident_view(incident))


@routes.post("/api/incidents/{incident_id}/escalate")
async def escalate(request: web.Request) -> web.Response:
    session = await staff(request)
    body = await read_json(request, EscalateIn, max_bytes=_max_json(request))
    return _json(
        incident_view(
            await request.app[WORKFLOW].escalate(session, incident_id(request), body.note)
        )
    )


@routes.post("/api/incidents/{incident_id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    session = await staff(request)
    body = await read_json(request, ResolveIn, max_bytes=_max_json(request))
    incident = await request.app[WORKFLOW].resolve(
        session, incident_id(request), Disposition(body.disposition), body.note
    )
    return _json(incident_view(incident))


@routes.post("/api/incidents/{incident_id}/close")
async def close(request: web.Request) -> web.Response:
    session = await staff(request)
    return _json(incident_view(await request.app[WORKFLOW].close(session, incident_id(request))))


@routes.post("/api/incidents/{incident_id}/notes")
async def add_note(request: web.Request) -> web.Response:
    session = await staff(request)
    body = await read_json(request, NoteIn, max_bytes=_max_json(request))
    event = await request.app[WORKFLOW].note(session, incident_id(request), body.text, body.kind)
    return _json({"seq": event.seq}, status=201)


@routes.get("/api/incidents/{incident_id}/history")
async def history(request: web.Request) -> web.Response:
    session = await staff(request)
    return _json({"events": await request.app[INCIDENTS].history(session, incident_id(request))})


@routes.get("/api/incidents/{incident_id}/eido")
async def eido(request: web.Request) -> web.Response:
    session = await staff(request)
    return _json(await request.app[INCIDENTS].eido(session, incident_id(request)))


@routes.get("/api/incidents/{incident_id}/reporter")
async def reporter(request: web.Request) -> web.Response:
    session = await staff(request)
    session.require(Role.DISPATCHER, Role.COMMANDER)
    incident = await request.app[INCIDENTS].get(session, incident_id(request))
    if incident.citizen_id is None:
        raise BadRequest("this incident has no reporter on record")
    purpose = request.query.get("purpose", "dispatch")[:100]
    identity = await request.app[CITIZENS].read_identity(
        incident.citizen_id, actor=session.actor, purpose=purpose
    )
    return _json(identity)


@routes.get("/api/incidents/{incident_id}/recommendations")
async def recommendations(request: web.Request) -> web.Response:
    session = await staff(request)
    session.require(Role.DISPATCHER, Role.COMMANDER)
    found = await request.app[OFFICERS].recommendations(session, incident_id(request))
    return _json(
        {
            "officers": [
                RecommendationOut(r.officer_id, r.callsign, r.distance_m, r.position_at, r.stale)
                for r in found
            ]
        }
    )


@routes.post("/api/officers/me/duty")
async def officer_duty(request: web.Request) -> web.Response:
    session = await staff(request)
    body = await read_json(request, DutyIn, max_bytes=_max_json(request))
    return _json({"status": await request.app[OFFICERS].set_duty(session, body.on_duty)})


@routes.get("/api/officers/me/snapshot")
async def officer_snapshot(request: web.Request) -> web.Response:
    """What the officer's phone starts from: duty status, offers waiting, assignments
    being worked, and the feed seq to resume /officer after."""
    session = await staff(request)
    return _json(await request.app[ASSIGNMENTS].snapshot(session))


@routes.post("/api/officers/me/position")
async def officer_position(request: web.Request) -> web.Response:
    session = await staff(request)
    body = await read_json(request, PositionIn, max_bytes=_max_json(request))
    event = await request.app[OFFICERS].report_position(
        session, body.lon, body.lat, body.accuracy_m, Datum(body.datum)
    )
    return _json({"precinct_code": event.payload["precinct_code"] if event else None}, status=202)
