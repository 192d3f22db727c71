"""Citizen HTTP API: registration, verification, alarms, reports, case tracking."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
from aiohttp import web

from dispatch.domain.errors import BadRequest, PayloadTooLarge, Unauthorized
from dispatch.domain.incidents import CitizenId
from dispatch.domain.priority import Channel
from dispatch.evidence.images import ImageProblem, ImageRejected, VerifiedImage, verify_image
from dispatch.http.body import read_json
from dispatch.http.keys import CITIZENS, FOLLOW_UP, INTAKE, INTAKE_BUDGETS, SETTINGS, TRACKING
from dispatch.http.remote import client_address
from dispatch.http.report_form import MAX_IMAGE_BYTES, read_report_form
from dispatch.services.citizens import CitizenTokens
from dispatch.services.intake import Position, Submission
from dispatch.services.intake_budgets import Submitted
from dispatch.wire.models import (
    AlarmIn,
    AttestationIn,
    CallIn,
    CancelIn,
    CitizenTokensOut,
    PhoneStartIn,
    PhoneVerifyIn,
    RatingIn,
    RealNameIn,
    RefreshIn,
    RegisterCitizenIn,
    TrailIn,
)
from geo.datum import Datum

routes = web.RouteTableDef()

# Refuse images with more pixels than a 48-megapixel phone camera takes, before decoding.
MAX_IMAGE_PIXELS = 50_000_000


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def citizen_id(request: web.Request) -> CitizenId:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized(
            "send the citizen token as 'Authorization: Bearer <token>'", field="token"
        )
    return await request.app[CITIZENS].authenticate(token)


def _incident_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["incident_id"])
    except ValueError:
        raise BadRequest("the incident id is not a UUID", field="incident_id") from None


def _tokens_out(tokens: CitizenTokens) -> CitizenTokensOut:
    return CitizenTokensOut(
        citizen_id=tokens.citizen_id,
        token=tokens.token,
        token_expires_at=tokens.token_expires_at,
        refresh_token=tokens.refresh_token,
        refresh_expires_at=tokens.refresh_expires_at,
        verification=tokens.verification.value,
    )


def _max_json(request: web.Request) -> int:
    return request.app[SETTINGS].max_json_bytes


@routes.post("/api/citizens")
async def register_citizen(request: web.Request) -> web.Response:
    body = await read_json(request, RegisterCitizenIn, max_bytes=_max_json(request))
    tokens = await request.app[CITIZENS].register(body.device_id, client_address(request))
    return _json(_tokens_out(tokens), status=201)


@routes.post("/api/citizens/refresh")
async def refresh_citizen(request: web.Request) -> web.Response:
    body = await read_json(request, RefreshIn, max_bytes=_max_json(request))
    return _json(_tokens_out(await request.app[CITIZENS].refresh(body.refresh_token)))


@routes.post("/api/citizens/me/sign-out-everywhere")
async def sign_out_everywhere(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    await request.app[CITIZENS].sign_out_everywhere(who)
    return _json({"status": "signed_out"})


@routes.post("/api/citizens/me/phone")
async def start_phone(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    body = await read_json(request, PhoneStartIn, max_bytes=_max_json(request))
    challenge_id, expires = await request.app[CITIZENS].start_phone(who, body.phone)
    return _json({"challenge_id": challenge_id, "expires_at": expires}, status=202)


@routes.post("/api/citizens/me/phone/verify")
async def verify_phone(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    body = await read_json(request, PhoneVerifyIn, max_bytes=_max_json(request))
    level = await request.app[CITIZENS].verify_phone(who, body.challenge_id, body.code)
    return _json({"verification": level.value})


@routes.post("/api/citizens/me/real-name")
async def verify_real_name(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    body = await read_json(request, RealNameIn, max_bytes=_max_json(request))
    level = await request.app[CITIZENS].verify_real_name(
        who, body.name, body.national_id, client_address(request)
    )
    return _json({"verification": level.value})


@routes.post("/api/citizens/me/attestation")
async def verify_attestation(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    body = await read_json(request, AttestationIn, max_bytes=_max_json(request))
    level = await request.app[CITIZENS].verify_attestation(who, body.token)
    return _json({"verification": level.value})


def _intake_response(result: Any) -> web.Response:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return _json(result.answer, status=201, headers=headers)


def optional_position(body: AlarmIn | CallIn) -> Position | None:
    """An alarm's or a call's position: all four fields, or none (no fix yet: accepted,
    routed when the trail brings one)."""
    given = {"lon": body.lon, "lat": body.lat, "accuracy_m": body.accuracy_m,
             "datum": body.datum}  # fmt: skip
    if all(value is None for value in given.values()):
        return None
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise BadRequest(
            f"a position needs lon, lat, accuracy_m and datum together; {missing[0]} is missing",
            field=missing[0],
        )
    assert body.lon is not None
    assert body.lat is not None
    assert body.datum is not None
    return Position(body.lon, body.lat, Datum(body.datum), body.accuracy_m)


@routes.post("/api/alarms")
async def create_alarm(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    alarm = await read_json(request, AlarmIn, max_bytes=_max_json(request))
    await request.app[INTAKE_BUDGETS].admit(
        who, Submitted.ALARM, alarm.idempotency_key, client_address(request)
    )
    position = optional_position(alarm)
    submission = Submission(
        channel=Channel.ALARM,
        tag=alarm.tag,
        idempotency_key=alarm.idempotency_key,
        position=position,
        location_source="device" if position else "none",
        text=alarm.note,
        client_time=alarm.client_time,
    )
    return _intake_response(await request.app[INTAKE].submit(who, submission))


@routes.post("/api/alarms/{incident_id}/trail")
@routes.post("/api/calls/{incident_id}/trail")
async def add_trail(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    incident_id = _incident_id(request)
    trail = await read_json(request, TrailIn, max_bytes=_max_json(request))
    points = [(Position(p.lon, p.lat, Datum(p.datum), p.accuracy_m), p.time) for p in trail.points]
    accepted = await request.app[FOLLOW_UP].add_trail(who, incident_id, points)
    return _json({"accepted": accepted}, status=202)


@routes.post("/api/alarms/{incident_id}/cancel")
async def cancel_alarm(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    incident_id = _incident_id(request)
    body = await read_json(request, CancelIn, max_bytes=_max_json(request))
    state = await request.app[FOLLOW_UP].cancel(who, incident_id, body.reason)
    return _json({"incident_id": incident_id, "status": state})


def _verify_all(images: list[bytes]) -> list[VerifiedImage]:
    verified = []
    for index, data in enumerate(images):
        try:
            verified.append(
                verify_image(data, max_bytes=MAX_IMAGE_BYTES, max_pixels=MAX_IMAGE_PIXELS)
            )
        except ImageRejected as exc:
            error_type = PayloadTooLarge if exc.code is ImageProblem.TOO_LARGE else BadRequest
            raise error_type(f"image {index + 1}: {exc.message}", field=f"images[{index}]") from exc
    return verified


@routes.post("/api/reports")
async def create_report(request: web.Request) -> web.Response:
    who = await citizen_id(request)
    form = await read_report_form(request, request.app[SETTINGS].max_upload_bytes)
    await request.app[INTAKE_BUDGETS].admit(
        who, Submitted.REPORT, form.idempotency_key, client_address(request)
    )
    loop = asyncio.get_running_loop()
    # Decoding and re-encoding images is CPU work: off the event loop.
    images = await loop.run_in_executor(None, _verify_all, form.images)
    position: Position | None = None
    source = "none"
    if form.lon is not None and form.lat is not None and form.datum is not None:
        position = Position(form.lon, form.lat, Datum(form.datum), form.accuracy_m)
        source = "device"
    else:
        gps = next((image.gps for image in images if image.gps is not None), None)
        if gps is not None:  # EXIF GPS is WGS84; used only when the phone sent no position
            position, source = Position(gps[0], gps[1], Datum.WGS84, None), "exif"
    submission = Submission(
        channel=Channel.TEXT,
        tag=form.tag or "other",
        idempotency_key=form.idempotency_key,
        position=position,
        location_source=source,
        text=form.text or None,
        client_time=form.client_time,
    )
    result = await request.app[INTAKE].submit_report(who, submission, images)
    return _intake_response(result)


@routes.get("/api/cases/{case_no}")
async def track_case(request: web.Request) -> web.Response:
    case = await request.app[TRACKING].case(request.match_info["case_no"], bearer_token(request))
    return _json(case)


@routes.post("/api/cases/{case_no}/rating")
async def rate_case(request: web.Request) -> web.Response:
    body = await read_json(request, RatingIn, max_bytes=_max_json(request))
    await request.app[TRACKING].rate(
        request.match_info["case_no"], bearer_token(request), body.rating, body.comment
    )
    return _json({"rating": body.rating}, status=201)
