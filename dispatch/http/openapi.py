"""The OpenAPI 3.1 document, generated from the same models the handlers decode with.

OPERATIONS is the declarative list of every endpoint (the workflow verbs' come from
their table, `dispatch.services.verbs`); a test checks it against the router, so an
endpoint cannot be added without being documented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from dispatch.services.verbs import VERBS, Verb
from dispatch.wire import models as m

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    request: type[msgspec.Struct] | str | None = None  # a model, "multipart", "sdp", or nothing
    response: type[msgspec.Struct] | str | None = None  # a model, "sdp", "webm", or nothing
    status: int = 200
    auth: str | None = None  # citizen | tracking-or-citizen | None
    errors: tuple[int, ...] = ()


_BODY_ERRORS = (400, 413, 415)


def _verb_operation(verb: Verb) -> Operation:
    errors = {401} | {refusal.status for refusal in verb.refusals}
    if verb.body is not None:
        errors |= set(_BODY_ERRORS)
    if verb.targeted:
        errors.add(400)  # the incident id is not a UUID
    return Operation(
        "post", verb.http_path, verb.summary, "workflow", verb.body, verb.answer.model,
        201 if verb.creates else 200, "staff", tuple(sorted(errors)),
    )  # fmt: skip


OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/healthz", "Liveness", "operations"),
    Operation("get", "/readyz", "Readiness: PostgreSQL and Redis answer", "operations",
              errors=(503,)),
    Operation("get", "/metrics", "Prometheus metrics", "operations"),
    Operation("get", "/api/status", "Server status", "operations"),
    Operation("get", "/api/openapi.json", "This document", "operations"),
    Operation("post", "/api/citizens", "Register a device; returns citizen tokens", "citizens",
              m.RegisterCitizenIn, m.CitizenTokensOut, 201, errors=(*_BODY_ERRORS, 429)),
    Operation("post", "/api/citizens/refresh", "Exchange a refresh token (rotated) for new tokens",
              "citizens", m.RefreshIn, m.CitizenTokensOut, errors=(*_BODY_ERRORS, 401)),
    Operation("post", "/api/citizens/me/sign-out-everywhere",
              "End every token and feed of this citizen, on every device", "citizens",
              None, None, 200, "citizen", (401,)),
    Operation("post", "/api/citizens/me/phone", "Send a one-time code to a phone", "citizens",
              m.PhoneStartIn, None, 202, "citizen", (*_BODY_ERRORS, 401, 429, 503)),
    Operation("post", "/api/citizens/me/phone/verify", "Confirm the one-time code", "citizens",
              m.PhoneVerifyIn, None, 200, "citizen", (*_BODY_ERRORS, 401, 404, 429)),
    Operation("post", "/api/citizens/me/real-name", "Verify name and national ID number",
              "citizens", m.RealNameIn, None, 200, "citizen", (*_BODY_ERRORS, 401, 403, 409, 429)),
    Operation("post", "/api/citizens/me/attestation", "Present a signed identity attestation",
              "citizens", m.AttestationIn, None, 200, "citizen", (*_BODY_ERRORS, 401, 403, 409)),
    Operation("post", "/api/alarms", "One-tap silent alarm", "intake", m.AlarmIn, m.IntakeOut,
              201, "citizen", (*_BODY_ERRORS, 401, 429, 503)),
    Operation("post", "/api/alarms/{incident_id}/trail", "Add positions to an alarm's trail",
              "intake", m.TrailIn, None, 202, "citizen", (*_BODY_ERRORS, 401, 404, 429)),
    Operation("post", "/api/alarms/{incident_id}/cancel", "Withdraw a false trigger", "intake",
              m.CancelIn, None, 200, "citizen", (*_BODY_ERRORS, 401, 404)),
    Operation("post", "/api/reports", "Text report with up to 6 images", "intake", "multipart",
              m.IntakeOut, 201, "citizen", (*_BODY_ERRORS, 401, 429, 503, 507)),
    Operation("get", "/api/cases/{case_no}", "A case's status and timeline", "tracking", None,
              m.CaseOut, 200, "tracking-or-citizen", (404,)),
    Operation("post", "/api/cases/{case_no}/rating", "Rate how a resolved case was handled",
              "tracking", m.RatingIn, None, 201, "tracking-or-citizen", (*_BODY_ERRORS, 404, 409)),
    Operation("post", "/api/auth/login", "Staff login", "staff", m.LoginIn, m.LoginOut,
              errors=(*_BODY_ERRORS, 401, 429)),
    Operation("post", "/api/auth/logout", "End this staff session", "staff", auth="staff",
              errors=(401,)),
    Operation("get", "/api/auth/me", "Who this token belongs to", "staff", None, m.StaffUserOut,
              auth="staff", errors=(401,)),
    Operation("get", "/api/console/snapshot",
              "Open incidents in scope and the feed seq they are current as of: those in hand,"
              " then the most urgent queued, at most ?limit= (default 2,000; `more` when some"
              " are left out), with `totals` counting them all", "workflow",
              auth="staff", errors=(400, 401, 403)),
    Operation("get", "/api/incidents", "Open incidents in my scope, most urgent first",
              "workflow", auth="staff", errors=(401, 403)),
    Operation("get", "/api/incidents/{incident_id}", "One incident", "workflow", None,
              m.IncidentOut, auth="staff", errors=(400, 401, 404)),
    # The workflow verbs, from their table.
    *(_verb_operation(verb) for verb in VERBS),
    Operation("get", "/api/incidents/{incident_id}/history", "Every event, with actor and time",
              "workflow", auth="staff", errors=(401, 404)),
    Operation("get", "/api/incidents/{incident_id}/eido", "NENA EIDO-style export", "workflow",
              auth="staff", errors=(401, 404)),
    Operation("get", "/api/incidents/{incident_id}/reporter",
              "The reporter's identity (every read is audited)", "workflow", auth="staff",
              errors=(400, 401, 403, 404)),
    Operation("get", "/api/incidents/{incident_id}/recommendations",
              "Nearest available officers", "workflow", auth="staff", errors=(400, 401, 404)),
    Operation("post", "/api/officers/me/duty", "Go on or off duty", "officers", m.DutyIn,
              auth="staff", errors=(*_BODY_ERRORS, 401, 403)),
    Operation("get", "/api/officers/me/snapshot",
              "An officer's duty status, offers waiting and assignments, as of a feed seq",
              "officers", auth="staff", errors=(401, 403)),
    Operation("post", "/api/officers/me/position", "Report position (at most once a second)",
              "officers", m.PositionIn, None, 202, "staff", (*_BODY_ERRORS, 401, 403, 429)),
    # The browser clients (docs/clients.md) and what they load.
    Operation("get", "/console", "The dispatcher console (HTML; 503 when not built)", "clients",
              errors=(503,)),
    Operation("get", "/officer", "The field officer's page (HTML; 503 when not built)",
              "clients", errors=(503,)),
    Operation("get", "/assets/{name}", "A hashed file of the clients' bundle (immutable)",
              "clients", errors=(404,)),
    Operation("get", "/favicon.ico", "No icon (204)", "clients"),
    Operation("get", "/report", "The citizen's reporting page (HTML; 503 when not built)",
              "clients", errors=(503,)),
    Operation("get", "/report/sw.js", "The reporting page's service worker (no-cache)",
              "clients", errors=(503,)),
    Operation("get", "/report.webmanifest", "The reporting page's web app manifest",
              "clients"),
    Operation("get", "/report/icon.svg", "The reporting page's icon", "clients"),
    Operation("get", "/api/client/config", "Server time, time zone, thresholds, basemap",
              "clients"),
    Operation("get", "/api/precincts.geojson", "Precinct boundaries, simplified, with an ETag",
              "clients"),
    Operation("get", "/api/console/roster", "Officers in scope (duty, position) and desk staff",
              "workflow", auth="staff", errors=(401, 403)),
    Operation("get", "/api/console/annotations",
              "Open incidents' report text, photo counts and possible duplicates (for those"
              " the snapshot with the same ?limit= loads)", "workflow",
              auth="staff", errors=(400, 401, 403)),
    Operation("get", "/api/incidents/{incident_id}/evidence", "An incident's photos (metadata)",
              "workflow", auth="staff", errors=(400, 401, 403, 404)),
    Operation("get", "/api/incidents/{incident_id}/evidence/{attachment_id}",
              "One evidence file (every read is audited, ?purpose=)", "workflow", auth="staff",
              errors=(400, 401, 403, 404)),
    # Video calls (docs/calls.md): WHIP-shaped for the citizen, WHEP-shaped for staff.
    Operation("post", "/api/calls", "Start a video call: the incident, queued at once, and "
              "the session URL to POST the SDP offer to", "calls", m.CallIn, m.CallOut, 201,
              "citizen", (*_BODY_ERRORS, 401, 429, 503)),
    Operation("post", "/api/calls/{incident_id}/trail", "Add positions to a call's trail (a "
              "call started without a fix is routed by the first)", "calls", m.TrailIn, None,
              202, "citizen", (*_BODY_ERRORS, 401, 404, 429)),
    Operation("post", "/api/calls/{incident_id}/sessions", "The phone's SDP offer (WHIP): "
              "answered at once, recorded from the first packet; Location names the session",
              "calls", "sdp", "sdp", 201, "citizen", (*_BODY_ERRORS, 401, 404, 409, 503)),
    Operation("delete", "/api/calls/{incident_id}/sessions/{session_id}", "Hang up", "calls",
              auth="citizen", errors=(400, 401, 404)),
    Operation("post", "/api/incidents/{incident_id}/call/viewers", "Pick up (the claiming "
              "dispatcher, two-way audio) or listen in (a commander), WHEP-shaped", "calls",
              "sdp", "sdp", 201, "staff", (*_BODY_ERRORS, 401, 403, 404, 409, 503)),
    Operation("delete", "/api/incidents/{incident_id}/call", "End the call for everyone (the "
              "claiming dispatcher); the phone may not reconnect into it", "calls",
              auth="staff", errors=(400, 401, 403, 404)),
    Operation("delete", "/api/incidents/{incident_id}/call/viewers/{viewer_id}",
              "Leave the call", "calls", auth="staff", errors=(400, 401, 404)),
    Operation("get", "/api/rtc/config", "ICE servers, with time-limited TURN credentials",
              "calls", None, m.RtcConfigOut, auth="citizen-or-staff", errors=(401,)),
    Operation("get", "/api/incidents/{incident_id}/recordings/{recording_id}",
              "A call recording (WebM; HTTP Range; every fetch audited)", "calls", None, "webm",
              auth="staff", errors=(400, 401, 403, 404)),
)  # fmt: skip

_MULTIPART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["idempotency_key"],
    "properties": {
        "text": {"type": "string", "maxLength": 5000},
        "tag": {"type": "string", "default": "other"},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "datum": {"type": "string", "enum": ["wgs84", "gcj02", "bd09"]},
        "accuracy_m": {"type": "number", "exclusiveMinimum": 0},
        "idempotency_key": {"type": "string", "minLength": 8, "maxLength": 128},
        "client_time": {"type": "string", "format": "date-time"},
        "images": {
            "type": "array",
            "maxItems": 6,
            "items": {"type": "string", "contentMediaType": "image/jpeg, image/png, image/webp"},
        },
    },
}


def _schema_ref(model: type[msgspec.Struct]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_document() -> dict[str, Any]:
    models = {
        op_model
        for op in OPERATIONS
        for op_model in (op.request, op.response)
        if isinstance(op_model, type)
    } | {m.ErrorOut}
    _, components = msgspec.json.schema_components(
        sorted(models, key=lambda t: t.__name__), ref_template="#/components/schemas/{name}"
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        operation: dict[str, Any] = {"summary": op.summary, "tags": [op.tag]}
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{(\w+)\}", op.path)
        ]
        if parameters:
            operation["parameters"] = parameters
        if op.request == "multipart":
            operation["requestBody"] = {
                "required": True,
                "content": {"multipart/form-data": {"schema": _MULTIPART_SCHEMA}},
            }
        elif op.request == "sdp":
            operation["requestBody"] = {
                "required": True,
                "content": {"application/sdp": {"schema": {"type": "string", "maxLength": 32768}}},
            }
        elif isinstance(op.request, type):
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema_ref(op.request)}},
            }
        success: dict[str, Any] = {"description": "success"}
        if op.response == "sdp":
            success["content"] = {"application/sdp": {"schema": {"type": "string"}}}
            success["headers"] = {"Location": {"schema": {"type": "string"},
                                               "description": "DELETE it to end"}}  # fmt: skip
        elif op.response == "webm":
            webm = {"type": "string", "contentMediaType": "video/webm"}
            success["content"] = {"video/webm": {"schema": webm}}
        elif isinstance(op.response, type):
            success["content"] = {"application/json": {"schema": _schema_ref(op.response)}}
        responses: dict[str, Any] = {str(op.status): success}
        for status in op.errors:
            responses[str(status)] = {
                "description": "error",
                "content": {"application/json": {"schema": _schema_ref(m.ErrorOut)}},
            }
        operation["responses"] = responses
        if op.auth:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "micro-110 dispatch API", "version": "0.1.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_document())
