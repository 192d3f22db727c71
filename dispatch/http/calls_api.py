"""Video calls over HTTP, WHIP- and WHEP-shaped (RFC 9725 is the model).

* `POST /api/calls` (citizen): the incident, queued at once; answer + `session_url`.
* `POST {session_url}` (application/sdp): the phone's offer -> 201, the SDP answer,
  `Location` of the session; `DELETE` there hangs up.  A new offer after a lost
  network is a new POST to `session_url` (a new recording segment, same incident).
* `POST /api/incidents/{id}/call/viewers` (staff, application/sdp): pick up (the
  dispatcher who claimed it) or listen in (a commander) -> 201, answer, `Location`;
  `DELETE` there leaves.  409 when no call is live.
* `DELETE /api/incidents/{id}/call` (the claiming dispatcher): end the call for
  everyone; the phone may not reconnect into it.
* `GET /api/rtc/config`: ICE servers with time-limited TURN credentials.
* `GET /api/incidents/{id}/recordings/{recording_id}`: a recording (Range), audited.

A request for a call whose media another node holds is forwarded to that node.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import aiohttp
import msgspec
from aiohttp import web

from dispatch.domain.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    ServiceBusy,
    Unauthorized,
    UnsupportedMediaType,
)
from dispatch.domain.priority import Channel
from dispatch.http.body import read_json
from dispatch.http.citizen_api import bearer_token, citizen_id, optional_position
from dispatch.http.keys import CALLS, CITIZENS, INTAKE_BUDGETS, NODE_CLIENT, SETTINGS, STAFF_AUTH
from dispatch.http.remote import client_address
from dispatch.http.staff_api import incident_id, staff
from dispatch.services.calls import CallElsewhere
from dispatch.services.intake import Submission
from dispatch.services.intake_budgets import Submitted
from dispatch.wire.models import CallIn, CallOut, IceServerOut, RtcConfigOut
from media.network import ice_servers
from media.offers import MAX_OFFER_BYTES

routes = web.RouteTableDef()

SDP = "application/sdp"
FORWARDED = "X-Micro110-Forwarded"


def _uuid(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise BadRequest(f"the {name.replace('_', ' ')} is not a UUID", field=name) from None


async def _read_sdp(request: web.Request) -> str:
    if request.content_type != SDP:
        raise UnsupportedMediaType(
            f"send the SDP offer as Content-Type: {SDP} (got {request.content_type or 'none'})",
            field="sdp",
        )
    data = await request.content.read(MAX_OFFER_BYTES + 1)
    if len(data) > MAX_OFFER_BYTES:
        raise PayloadTooLarge(f"the offer is larger than {MAX_OFFER_BYTES} bytes", field="sdp")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise BadRequest("the offer is not UTF-8 text", field="sdp") from None


def _sdp_answer(sdp: str, location: str) -> web.Response:
    return web.Response(text=sdp, status=201, content_type=SDP, headers={"Location": location})


async def _forward(request: web.Request, elsewhere: CallElsewhere, body: bytes) -> web.Response:
    """Hand the request to the node holding the call and relay its answer."""
    if request.headers.get(FORWARDED):
        # Forwarded once already and still elsewhere: the nodes disagree for a moment.
        raise ServiceBusy("the call is moving between servers; try again", retry_after_s=1)
    headers = {FORWARDED: "1"}
    for name in ("Authorization", "Content-Type"):
        if name in request.headers:
            headers[name] = request.headers[name]
    url = elsewhere.node_url.rstrip("/") + request.rel_url.path_qs
    try:
        async with request.app[NODE_CLIENT].request(
            request.method, url, data=body or None, headers=headers,
            timeout=aiohttp.ClientTimeout(total=20),
        ) as answer:  # fmt: skip
            payload = await answer.read()
            relayed = {
                k: v for k, v in answer.headers.items()
                if k in ("Location", "Content-Type", "Retry-After")
            }  # fmt: skip
            return web.Response(body=payload, status=answer.status, headers=relayed)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ServiceBusy(
            "the server holding this call does not answer; try again", retry_after_s=2
        ) from exc


@routes.post("/api/calls")
async def start_call(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    body = await read_json(request, CallIn, max_bytes=request.app[SETTINGS].max_json_bytes)
    # A video call is an alarm by another channel: the same budgets.
    await request.app[INTAKE_BUDGETS].admit(
        who, Submitted.ALARM, body.idempotency_key, client_address(request)
    )
    position = optional_position(body)
    submission = Submission(
        channel=Channel.VIDEO,
        tag=body.tag,
        idempotency_key=body.idempotency_key,
        position=position,
        location_source="device" if position else "none",
        text=body.note,
        client_time=body.client_time,
    )
    result = await request.app[CALLS].start(who, submission)
    answer = result.answer
    out = CallOut(
        case_no=answer.case_no, incident_id=answer.incident_id,
        tracking_token=answer.tracking_token, precinct=answer.precinct,
        jurisdiction=answer.jurisdiction, status=answer.status,
        session_url=f"/api/calls/{answer.incident_id}/sessions",
    )  # fmt: skip
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return web.Response(
        body=msgspec.json.encode(out), status=201, content_type="application/json",
        headers=headers,
    )  # fmt: skip


@routes.post("/api/calls/{incident_id}/sessions")
async def offer_call(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    call = _uuid(request, "incident_id")
    sdp = await _read_sdp(request)
    started = await request.app[CALLS].offer(who, call, sdp)
    return _sdp_answer(started.answer_sdp, f"/api/calls/{call}/sessions/{started.session.id}")


@routes.delete("/api/calls/{incident_id}/sessions/{session_id}")
async def hang_up(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    call, session = _uuid(request, "incident_id"), _uuid(request, "session_id")
    try:
        await request.app[CALLS].hang_up(who, call, session)
    except CallElsewhere as elsewhere:
        return await _forward(request, elsewhere, b"")
    return web.Response(status=200)


@routes.post("/api/incidents/{incident_id}/call/viewers")
async def pick_up(request: web.Request) -> web.Response:
    session = await staff(request)
    incident = incident_id(request)
    sdp = await _read_sdp(request)
    try:
        watching = await request.app[CALLS].watch(session, incident, sdp)
    except CallElsewhere as elsewhere:
        return await _forward(request, elsewhere, sdp.encode())
    return _sdp_answer(
        watching.answer_sdp, f"/api/incidents/{incident}/call/viewers/{watching.viewer.id}"
    )


@routes.delete("/api/incidents/{incident_id}/call")
async def end_call(request: web.Request) -> web.Response:
    session = await staff(request)
    try:
        await request.app[CALLS].end(session, incident_id(request))
    except CallElsewhere as elsewhere:
        return await _forward(request, elsewhere, b"")
    return web.Response(status=200)


@routes.delete("/api/incidents/{incident_id}/call/viewers/{viewer_id}")
async def leave_call(request: web.Request) -> web.Response:
    session = await staff(request)
    try:
        await request.app[CALLS].leave(session, incident_id(request), _uuid(request, "viewer_id"))
    except CallElsewhere as elsewhere:
        return await _forward(request, elsewhere, b"")
    return web.Response(status=200)


@routes.get("/api/rtc/config")
async def rtc_config(request: web.Request) -> web.Response:
    """ICE servers for a citizen's phone or a staff console (either token)."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("send a citizen or staff token as 'Authorization: Bearer <token>'",
                           field="token")  # fmt: skip
    user: str
    try:
        user = str(await request.app[CITIZENS].authenticate(token))
    except Unauthorized:
        user = f"staff-{(await request.app[STAFF_AUTH].authenticate(token)).user.id}"
    settings = request.app[SETTINGS]
    now = time.time()
    servers = ice_servers(
        settings.ice_servers, user=user, now=now, turn_secret=settings.turn_secret,
        turn_ttl_s=settings.turn_ttl_s, turn_username=settings.turn_username,
        turn_password=settings.turn_password,
    )  # fmt: skip
    expires = (
        datetime.fromtimestamp(int(now) + settings.turn_ttl_s, UTC)
        if settings.turn_secret and any(s.username for s in servers) else None
    )  # fmt: skip
    out = RtcConfigOut(
        ice_servers=[IceServerOut(list(s.urls), s.username, s.credential) for s in servers],
        expires_at=expires,
    )
    return web.Response(
        body=msgspec.json.encode(out), content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )  # fmt: skip


@routes.get("/api/incidents/{incident_id}/recordings/{recording_id}")
async def get_recording(request: web.Request) -> web.StreamResponse:
    session = await staff(request)
    recording, path = await request.app[CALLS].recording(
        session, incident_id(request), _uuid(request, "recording_id"),
        request.headers.get("Range"),
    )  # fmt: skip
    if not path.exists():
        # Evidence files live under each node's data directory: share it between nodes.
        raise NotFound("the recording's file is not on this server", field="recording_id")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": recording.media_type,
            "Cache-Control": "private, no-store",
            "Digest": f"sha-256={recording.sha256}",
            "Content-Disposition": f'attachment; filename="{recording.id}.webm"',
        },
    )
