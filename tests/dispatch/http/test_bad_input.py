"""Every kind of bad input: a clear 4xx naming the problem, nothing written, server fine."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import jwt
import pytest

from tests.conftest import CitizenSession, Client, Staff
from tests.dispatch.calls import act, alarm, counts, report
from tests.dispatch.services.test_intake_reports import fields, form, jpeg

# (case id, body bytes, content type, status, error code, field)
JSON_CASES: list[tuple[str, bytes, str, int, str, str | None]] = [
    ("malformed json", b'{"tag": "robbery",', "application/json", 400, "bad_request", None),
    ("empty body", b"", "application/json", 400, "bad_request", None),
    ("not an object", b"[1, 2]", "application/json", 400, "bad_request", None),
    ("NaN literal", b'{"lon": NaN}', "application/json", 400, "bad_request", None),
    ("Infinity literal", b'{"lon": Infinity}', "application/json", 400, "bad_request", None),
    ("wrong content type", b"tag=robbery", "application/x-www-form-urlencoded", 415,
     "unsupported_media_type", None),
    ("no content type", b"{}", "", 415, "unsupported_media_type", None),
    ("nested too deeply", b'{"tag": ' + b"[" * 20000 + b"]" * 20000 + b"}", "application/json",
     400, "bad_request", "tag"),
    ("NUL and nested too deeply", b'{"note": "\\u0000", "x": ' + b"[" * 20000 + b"]" * 20000 + b"}",
     "application/json", 400, "bad_request", None),
]  # fmt: skip

FIELD_CASES: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("unknown tag", {"tag": "jaywalking_dragon"}, 400, "bad_request", "tag"),
    ("tag not a word", {"tag": "Robbery!"}, 400, "bad_request", "tag"),
    ("missing lat", {"lat": None}, 400, "bad_request", "lat"),
    ("lon out of range", {"lon": 181.0}, 400, "bad_request", "lon"),
    ("lat out of range", {"lat": -90.5}, 400, "bad_request", "lat"),
    ("lon as string", {"lon": "118.79"}, 400, "bad_request", "lon"),
    ("unknown datum", {"datum": "osgb36"}, 400, "bad_request", "datum"),
    ("accuracy zero", {"accuracy_m": 0}, 400, "bad_request", "accuracy_m"),
    ("accuracy negative", {"accuracy_m": -5}, 400, "bad_request", "accuracy_m"),
    ("unknown field", {"priority": "high"}, 400, "bad_request", "priority"),
    ("short idempotency key", {"idempotency_key": "abc"}, 400, "bad_request", "idempotency_key"),
    (
        "naive client time",
        {"client_time": "2026-11-24T10:00:00"},
        400,
        "bad_request",
        "client_time",
    ),
    ("note too long", {"note": "x" * 2001}, 400, "bad_request", "note"),
    # PostgreSQL stores no NUL in text: refused at the door, naming the field.
    ("NUL in the note", {"note": "help\x00me"}, 400, "bad_request", "note"),
    ("NUL in the tag", {"tag": "robbery\x00"}, 400, "bad_request", "tag"),
    ("NUL in a key", {"\x00": 1}, 400, "bad_request", "\x00"),
]


def _body(overrides: dict[str, Any]) -> dict[str, Any]:
    body = alarm(**{k: v for k, v in overrides.items() if v is not None})
    for key, value in overrides.items():
        if value is None:
            body.pop(key)
    return body


async def _assert_nothing_written(pg: asyncpg.Pool, before: dict[str, int], client: Client) -> None:
    assert await counts(pg) == before
    assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize(("case", "raw", "content_type", "status", "code", "field"), JSON_CASES,
                         ids=[c[0] for c in JSON_CASES])  # fmt: skip
async def test_bad_json_bodies(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool,
    case: str, raw: bytes, content_type: str, status: int, code: str, field: str | None,
) -> None:  # fmt: skip
    before = await counts(pg)
    headers = dict(citizen.headers)
    if content_type:
        headers["Content-Type"] = content_type
    response = await app_client.post("/api/alarms", data=raw, headers=headers)
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == code
    assert error["field"] == field
    assert error["message"]
    await _assert_nothing_written(pg, before, app_client)


@pytest.mark.parametrize(("case", "overrides", "status", "code", "field"), FIELD_CASES,
                         ids=[c[0] for c in FIELD_CASES])  # fmt: skip
async def test_bad_alarm_fields_name_the_field(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool,
    case: str, overrides: dict[str, Any], status: int, code: str, field: str,
) -> None:  # fmt: skip
    before = await counts(pg)
    response = await app_client.post("/api/alarms", json=_body(overrides), headers=citizen.headers)
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    assert (error["code"], error["field"]) == (code, field), error
    await _assert_nothing_written(pg, before, app_client)


async def test_number_overflowing_to_infinity_names_the_field(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    before = await counts(pg)
    raw = json.dumps(alarm(lon=0.0)).replace('"lon": 0.0', '"lon": 1e999').encode()
    assert b"1e999" in raw
    response = await app_client.post(
        "/api/alarms", data=raw, headers={**citizen.headers, "Content-Type": "application/json"}
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["field"] == "lon" and "range" in error["message"]
    await _assert_nothing_written(pg, before, app_client)


async def test_body_over_the_limit_is_413(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    before = await counts(pg)
    huge = b'{"note": "' + b"x" * (200 * 1024) + b'"}'
    response = await app_client.post(
        "/api/alarms", data=huge, headers={**citizen.headers, "Content-Type": "application/json"}
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    await _assert_nothing_written(pg, before, app_client)


async def _raw_post(
    client: Client, path: str, token: str, pieces: list[bytes], *, chunked: bool = False
) -> tuple[int, dict[str, Any]]:
    """POST over a raw socket, the body sent in `pieces` with pauses between them."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    length = sum(map(len, pieces))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\n{framing}\r\nConnection: close\r\n\r\n".encode()
    )
    for piece in pieces:
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        await writer.drain()
        await asyncio.sleep(0.15)
    if chunked:
        writer.write(b"0\r\n\r\n")
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():  # the answer itself may be chunked: one chunk here
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return int(head.split()[1]), json.loads(body)


async def test_a_body_that_arrives_in_pieces_is_read_whole(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    """A phone on a bad network: the alarm's bytes come in several TCP segments."""
    token = citizen.headers["Authorization"].split()[1]
    body = json.dumps(alarm(note="x" * 1500)).encode()
    pieces = [body[:700], body[700:1400], body[1400:]]
    status, answer = await _raw_post(app_client, "/api/alarms", token, pieces)
    assert status == 201, answer
    status, answer = await _raw_post(
        app_client, "/api/alarms", token, [body[:500], body[500:]], chunked=True
    )
    assert status == 201, answer

    # Without a Content-Length the limit is still enforced as the body grows.
    before = await counts(pg)
    big = b'{"note": "' + b"x" * (40 * 1024) + b'"}'
    status, answer = await _raw_post(
        app_client, "/api/alarms", token, [big[i : i + 30_000] for i in range(0, len(big), 30_000)]
        + [b" " * 30_000], chunked=True,
    )  # fmt: skip
    assert status == 413 and answer["error"]["code"] == "payload_too_large"
    await _assert_nothing_written(pg, before, app_client)


async def _forged(secret: str = "not-the-server-key-but-long-enough-to-sign", **claims: Any) -> str:
    now = datetime.now(UTC)
    payload = {"iss": "micro110", "typ": "citizen", "sub": "00000000-0000-0000-0000-000000000000",
               "iat": int(now.timestamp()), "exp": int((now + timedelta(hours=1)).timestamp())}  # fmt: skip
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


async def test_bad_tokens_are_401(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, fake_clock: Any
) -> None:
    before = await counts(pg)
    tokens = {
        "missing": None,
        "garbage": "Bearer not.a.token",
        "forged": f"Bearer {await _forged()}",
        # {"alg": "none"}: an unsigned token must never pass.
        "alg none": "Bearer eyJhbGciOiJub25lIn0.eyJ0eXAiOiJjaXRpemVuIn0.",
        "refresh token as access": f"Bearer {citizen.refresh_token}",
        "tampered": f"Bearer {citizen.token[:-2]}{'AA' if not citizen.token.endswith('AA') else 'BB'}",
    }
    for name, header in tokens.items():
        headers = {"Authorization": header} if header else {}
        response = await app_client.post("/api/alarms", json=alarm(), headers=headers)
        assert response.status == 401, name
        assert (await response.json())["error"]["code"] == "unauthorized"
    # Expired: the clock moves past the token's lifetime.
    fake_clock.advance(8 * 24 * 3600)
    response = await app_client.post("/api/alarms", json=alarm(), headers=citizen.headers)
    assert response.status == 401
    assert "expired" in (await response.json())["error"]["message"]
    await _assert_nothing_written(pg, before, app_client)


async def test_nul_characters_anywhere_are_refused_with_a_4xx(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    before = await counts(pg)
    # "\\u0000" in JSON is a backslash and "u0000": text like any other.
    fine = await app_client.post(
        "/api/alarms", data=json.dumps(alarm(note="C:\\u0000")), headers=citizen.headers
        | {"Content-Type": "application/json"},
    )  # fmt: skip
    assert fine.status == 201
    before["incidents"] += 1
    before["reports"] += 1
    before["incident_events"] += 1
    device = await app_client.post("/api/citizens", json={"device_id": "phone\x00-0001"})
    assert device.status == 400 and (await device.json())["error"]["field"] == "device_id"
    urlencoded = aiohttp.FormData(fields(text="help\x00"))
    multipart = form(fields(tag="fire\x00"), [jpeg()])
    for body, field in ((urlencoded, "text"), (multipart, "tag")):
        report = await app_client.post("/api/reports", data=body, headers=citizen.headers)
        assert report.status == 400
        assert (await report.json())["error"]["field"] == field
    tracked = await app_client.get("/api/cases/NJ%00-1", headers=citizen.headers)
    assert tracked.status in (400, 404)
    await _assert_nothing_written(pg, before, app_client)


async def test_bad_incident_ids(app_client: Client, citizen: CitizenSession) -> None:
    response = await app_client.post(
        "/api/alarms/not-a-uuid/cancel", json={"reason": "x"}, headers=citizen.headers
    )
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "incident_id"
    missing = "00000000-0000-0000-0000-000000000000"
    response = await app_client.post(
        f"/api/alarms/{missing}/cancel", json={"reason": "x"}, headers=citizen.headers
    )
    assert response.status == 404


async def test_bd09_positions_at_the_edges_of_the_globe_are_taken(
    app_client: Client, citizen: CitizenSession
) -> None:
    """Valid input, however odd: BD-09 decoding stepped past the pole and the
    antimeridian, and the precinct lookup answered 500 (found by schemathesis)."""
    for lon, lat in ((0.0, -90.0), (-180.0, 0.0), (180.0, 90.0)):
        response = await app_client.post(
            "/api/alarms", json=_body({"lon": lon, "lat": lat, "datum": "bd09"}),
            headers=citizen.headers,
        )  # fmt: skip
        assert response.status in (201, 202), await response.text()


async def test_officer_ids_beyond_a_bigint_are_refused_by_name(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    incident = (await report(app_client, citizen))["incident_id"]
    status, _ = await act(app_client, staff.dispatcher, incident, "claim")
    assert status == 200
    for officer_ids in ([2**63], [-(2**63) - 1], [0], [2**64]):
        status, body = await act(
            app_client, staff.dispatcher, incident, "assign", {"officer_ids": officer_ids}
        )
        assert status == 400, body
        assert body["error"]["field"].startswith("officer_ids"), body
