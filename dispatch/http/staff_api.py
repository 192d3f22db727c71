"""Staff HTTP API: login, the queue, and the dispatch workflow (its verbs are routed from
the table in `dispatch.services.verbs`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from dispatch.domain.errors import BadRequest, Unauthorized
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
from dispatch.services.verbs import VERBS, Desk, Verb
from dispatch.wire.incident_view import incident_view
from dispatch.wire.models import (
    DutyIn,
    LoginIn,
    LoginOut,
    PositionIn,
    RecommendationOut,
    StaffUserOut,
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


def load_limit(request: web.Request) -> int | None:
    """The console's `?limit=`: how many open incidents to load (None: the default)."""
    raw = request.query.get("limit")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest("limit must be a whole number", field="limit") from None


@routes.get("/api/console/snapshot")
async def console_snapshot(request: web.Request) -> web.Response:
    session = await staff(request)
    session.require(Role.DISPATCHER, Role.COMMANDER)
    seq, rendered = await request.app[INCIDENTS].snapshot(session, load_limit(request))
    # Rendered by PostgreSQL (JSON text): only joined here, never parsed.  `totals`
    # counts every open incident in scope; `more`: some of them are not in `incidents`.
    more = "true" if rendered.more else "false"
    body = (
        f'{{"seq":{int(seq)},"queue":[{rendered.queue}],"incidents":[{rendered.incidents}],'
        f'"totals":{rendered.totals},"more":{more}}}'
    ).encode()
    return web.Response(body=body, content_type="application/json")


@routes.get("/api/incidents/{incident_id}")
async def get_incident(request: web.Request) -> web.Response:
    session = await staff(request)
    return _json(incident_view(await request.app[INCIDENTS].get(session, incident_id(request))))


def _verb_route(verb: Verb) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`verb` over HTTP: the staff token, then the body, then the incident id."""

    async def handle(request: web.Request) -> web.Response:
        session = await staff(request)
        body = (
            None
            if verb.body is None
            else await read_json(request, verb.body, max_bytes=_max_json(request))
        )
        target = incident_id(request) if verb.targeted else None
        desk = Desk(request.app[WORKFLOW], request.app[MESSAGES])
        answer = verb.answer.render(await verb.call(desk, session, target, body))
        return _json(
            answer if verb.answer.bare else {verb.answer.key: answer},
            status=201 if verb.creates else 200,
        )

    handle.__name__ = handle.__qualname__ = verb.name
    return handle


for _verb in VERBS:
    routes.post(_verb.http_path)(_verb_route(_verb))


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
