"""Citizen identity: tokens, phone codes, real-name registry, attestations, audit."""

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dispatch.domain.events import Actor
from dispatch.domain.identity import VerificationLevel
from dispatch.domain.incidents import CitizenId
from dispatch.http.keys import CITIZENS
from dispatch.infra.connections import Infrastructure
from dispatch.services.citizens import import_registry
from dispatch.settings import Settings
from tests.conftest import CitizenSession, Client, Staff, app_of, register_citizen
from tests.dispatch.calls import report
from tests.fakes import FakeClock, RecordingSms

# A valid GB 11643 number (check digit computed) and a registry entry for it.
VALID_ID = "11010519491231002X"
NAME = "王小明"


def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


_PROVIDER_KEY = _ec_key()
_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: Any) -> str:
    return str(
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def app_settings(settings: Settings, tmp_path: Path) -> Settings:
    keys = tmp_path / "attestation-keys.json"
    keys.write_text(json.dumps({"gov-idp": _pem(_PROVIDER_KEY), "bank-idp": _pem(_RSA_KEY)}))
    return dataclasses.replace(settings, attestation_keys_file=keys)


def attestation(citizen_id: str, now: datetime, **claims: Any) -> str:
    key = claims.pop("_key", _PROVIDER_KEY)
    algorithm = claims.pop("_alg", "ES256")
    payload = {
        "iss": "gov-idp", "sub": citizen_id, "level": "face", "nonce": uuid.uuid4().hex,
        "iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=5)).timestamp()),
        "name": NAME, "national_id": VALID_ID,
    }  # fmt: skip
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=algorithm)


async def _level(pg: asyncpg.Pool, citizen: CitizenSession) -> str:
    async with pg.acquire() as conn:
        value = await conn.fetchval(
            "SELECT verification FROM citizens WHERE id = $1", uuid.UUID(citizen.id)
        )
    return str(value)


async def test_refresh_rotates_and_a_replay_revokes(
    app_client: Client, citizen: CitizenSession
) -> None:
    first = await app_client.post(
        "/api/citizens/refresh", json={"refresh_token": citizen.refresh_token}
    )
    assert first.status == 200
    rotated = await first.json()
    assert rotated["citizen_id"] == citizen.id and rotated["refresh_token"] != citizen.refresh_token
    replay = await app_client.post(
        "/api/citizens/refresh", json={"refresh_token": citizen.refresh_token}
    )
    assert replay.status == 401
    # The replay revoked the family: the rotated token no longer works either.
    after = await app_client.post(
        "/api/citizens/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert after.status == 401


async def test_phone_code_flow(
    app_client: Client, citizen: CitizenSession, sms: RecordingSms, pg: asyncpg.Pool
) -> None:
    start = await app_client.post(
        "/api/citizens/me/phone", json={"phone": "138 0013 8000"}, headers=citizen.headers
    )
    assert start.status == 202
    challenge = (await start.json())["challenge_id"]
    assert sms.sent[-1][0] == "+8613800138000"
    code = sms.sent[-1][1]
    wrong = "000000" if code != "000000" else "111111"
    bad = await app_client.post("/api/citizens/me/phone/verify", json={"challenge_id": challenge, "code": wrong},
                                headers=citizen.headers)  # fmt: skip
    assert bad.status == 400
    good = await app_client.post("/api/citizens/me/phone/verify", json={"challenge_id": challenge, "code": code},
                                 headers=citizen.headers)  # fmt: skip
    assert good.status == 200
    assert (await good.json())["verification"] == "phone"
    async with pg.acquire() as conn:
        row = await conn.fetchrow("SELECT phone_masked, phone_hash FROM citizens")
        stored_codes = await conn.fetch("SELECT code_hash FROM phone_challenges")
    assert row["phone_masked"] == "+86 138****8000"
    assert "13800138000" not in row["phone_hash"]
    assert all(code not in r["code_hash"] for r in stored_codes)
    reuse = await app_client.post("/api/citizens/me/phone/verify", json={"challenge_id": challenge, "code": code},
                                  headers=citizen.headers)  # fmt: skip
    assert reuse.status == 400


async def test_phone_codes_expire_and_attempts_are_limited(
    app_client: Client, citizen: CitizenSession, sms: RecordingSms, fake_clock: FakeClock
) -> None:
    start = await app_client.post(
        "/api/citizens/me/phone", json={"phone": "13900139000"}, headers=citizen.headers
    )
    challenge = (await start.json())["challenge_id"]
    code = sms.sent[-1][1]
    wrong = "000000" if code != "000000" else "111111"
    statuses = []
    for _ in range(6):
        response = await app_client.post("/api/citizens/me/phone/verify",
                                         json={"challenge_id": challenge, "code": wrong}, headers=citizen.headers)  # fmt: skip
        statuses.append(response.status)
    assert statuses == [400] * 5 + [429]
    right = await app_client.post("/api/citizens/me/phone/verify", json={"challenge_id": challenge, "code": code},
                                  headers=citizen.headers)  # fmt: skip
    assert right.status == 429  # locked even with the right code now
    start = await app_client.post(
        "/api/citizens/me/phone", json={"phone": "13900139000"}, headers=citizen.headers
    )
    challenge = (await start.json())["challenge_id"]
    fake_clock.advance(301)
    late = await app_client.post("/api/citizens/me/phone/verify",
                                 json={"challenge_id": challenge, "code": sms.sent[-1][1]}, headers=citizen.headers)  # fmt: skip
    assert late.status == 400
    assert "expired" in (await late.json())["error"]["message"]


async def test_bad_phone_and_code_requests(app_client: Client, citizen: CitizenSession) -> None:
    response = await app_client.post(
        "/api/citizens/me/phone", json={"phone": "call me maybe"}, headers=citizen.headers
    )
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "phone"
    for _ in range(5):
        await app_client.post(
            "/api/citizens/me/phone", json={"phone": "13700137000"}, headers=citizen.headers
        )
    limited = await app_client.post(
        "/api/citizens/me/phone", json={"phone": "13700137000"}, headers=citizen.headers
    )
    assert limited.status == 429


async def test_real_name_through_the_registry(
    app_client: Client, citizen: CitizenSession, infra: Infrastructure, pg: asyncpg.Pool
) -> None:
    result = await import_registry(
        infra.pool, infra.keys,
        [{"name": NAME, "national_id": VALID_ID}, {"name": "李四", "national_id": "110105194912310021"}],
        today=datetime.now(UTC).date(), actor=Actor.system("test"),
    )  # fmt: skip
    assert result.imported == 1
    assert len(result.rejected) == 1
    assert result.rejected[0].startswith("row 3: check_digit")
    assert "110105194912310021" not in result.rejected[0]
    mismatch = await app_client.post("/api/citizens/me/real-name", json={"name": "张三", "national_id": VALID_ID},
                                     headers=citizen.headers)  # fmt: skip
    assert mismatch.status == 403
    invalid = await app_client.post("/api/citizens/me/real-name", json={"name": NAME, "national_id": "11010519491231002Y"},
                                    headers=citizen.headers)  # fmt: skip
    assert invalid.status == 400
    assert (await invalid.json())["error"]["field"] == "national_id"
    ok = await app_client.post("/api/citizens/me/real-name", json={"name": NAME, "national_id": VALID_ID.lower()},
                               headers=citizen.headers)  # fmt: skip
    assert ok.status == 200
    assert await _level(pg, citizen) == "real_name"
    async with pg.acquire() as conn:
        row = await conn.fetchrow("SELECT national_id_hash, national_id_masked FROM citizens")
        dump = json.dumps(
            [dict(r) for r in await conn.fetch("SELECT * FROM identity_registry")], default=str
        )
    assert row["national_id_masked"] == "1101**********002X"
    assert VALID_ID not in row["national_id_hash"] and VALID_ID not in dump


async def test_attestation_levels_and_replay(app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool,
                                             fake_clock: FakeClock) -> None:  # fmt: skip
    now = fake_clock.now()
    token = attestation(citizen.id, now)
    first = await app_client.post(
        "/api/citizens/me/attestation", json={"token": token}, headers=citizen.headers
    )
    assert first.status == 200
    assert (await first.json())["verification"] == "face"
    replay = await app_client.post(
        "/api/citizens/me/attestation", json={"token": token}, headers=citizen.headers
    )
    assert replay.status == 401
    assert "replayed" in (await replay.json())["error"]["message"]
    # RS256 provider, lower level: never downgrades.
    rs = attestation(
        citizen.id, now, iss="bank-idp", level="real_name", _key=_RSA_KEY, _alg="RS256"
    )
    response = await app_client.post(
        "/api/citizens/me/attestation", json={"token": rs}, headers=citizen.headers
    )
    assert response.status == 200
    assert await _level(pg, citizen) == VerificationLevel.FACE.value


@pytest.mark.parametrize(
    ("case", "claims", "status"),
    [
        ("unknown provider", {"iss": "someone"}, 401),
        ("forged signature", {"_key": _ec_key()}, 401),
        ("wrong algorithm for provider", {"_key": _RSA_KEY, "_alg": "RS256"}, 401),
        ("expired", {"exp": 1_000_000_000, "iat": 999_999_900}, 401),
        ("lives too long", {"exp_offset": 86_400}, 401),
        ("another citizen", {"sub": str(uuid.uuid4())}, 403),
        ("level too low", {"level": "phone"}, 400),
        ("unknown level", {"level": "royal"}, 400),
        ("invalid attested id", {"national_id": "110105194912310021"}, 400),
    ],
)
async def test_bad_attestations(
    app_client: Client, citizen: CitizenSession, fake_clock: FakeClock, pg: asyncpg.Pool,
    case: str, claims: dict[str, Any], status: int,
) -> None:  # fmt: skip
    now = fake_clock.now()
    if claims.pop("exp_offset", None):
        claims["exp"] = int((now + timedelta(days=1)).timestamp())
    token = attestation(citizen.id, now, **claims)
    response = await app_client.post(
        "/api/citizens/me/attestation", json={"token": token}, headers=citizen.headers
    )
    assert response.status == status, await response.text()
    assert await _level(pg, citizen) == "anonymous"
    garbage = await app_client.post(
        "/api/citizens/me/attestation", json={"token": "x.y.z"}, headers=citizen.headers
    )
    assert garbage.status == 400


async def test_identity_reads_are_audited(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    token = attestation(citizen.id, datetime.now(UTC))
    await app_client.post(
        "/api/citizens/me/attestation", json={"token": token}, headers=citizen.headers
    )
    services = app_of(app_client)[CITIZENS]
    identity = await services.read_identity(
        CitizenId(uuid.UUID(citizen.id)),
        actor=Actor.staff(7),
        purpose="callback",
    )
    assert identity["name"] == NAME
    assert identity["national_id"] == "1101**********002X"
    async with pg.acquire() as conn:
        reads = await conn.fetch("SELECT actor_kind, actor_id, purpose FROM identity_reads")
    assert [tuple(r) for r in reads] == [("staff", "7", "callback")]


async def test_registration_bad_input(app_client: Client) -> None:
    response = await app_client.post("/api/citizens", json={"device_id": "short"})
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "device_id"
    second = await register_citizen(app_client, "another-device")
    assert second.token


async def test_staff_read_a_reporters_identity_masked_scoped_and_audited(
    app_client: Client,
    citizen: CitizenSession,
    infra: Infrastructure,
    pg: asyncpg.Pool,
    staff: Staff,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    await import_registry(
        infra.pool, infra.keys, [{"name": NAME, "national_id": VALID_ID}],
        today=datetime.now(UTC).date(), actor=Actor.system("test"),
    )  # fmt: skip
    verified = await app_client.post(
        "/api/citizens/me/real-name",
        json={"name": NAME, "national_id": VALID_ID},
        headers=citizen.headers,
    )
    assert verified.status == 200
    incident = (await report(app_client, citizen))["incident_id"]
    url = f"/api/incidents/{incident}/reporter"

    response = await app_client.get(url + "?purpose=callback", headers=staff.dispatcher.headers)
    assert response.status == 200
    identity = await response.json()
    assert identity["name"] == NAME and identity["verification"] == "real_name"
    assert identity["national_id"] == "1101**********002X"
    async with pg.acquire() as conn:
        reads = await conn.fetch("SELECT actor_kind, actor_id, purpose FROM identity_reads")
    assert [tuple(r) for r in reads] == [("staff", str(staff.dispatcher.id), "callback")]

    # Out of scope (Gulou's dispatcher), the wrong role (an officer): refused, not audited.
    assert (await app_client.get(url, headers=staff.other_dispatcher.headers)).status == 404
    assert (await app_client.get(url, headers=staff.officer.headers)).status == 403
    assert (await app_client.get(url)).status == 401
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM identity_reads") == 1
    # The full number never reaches a log line, whatever the level.
    assert VALID_ID not in caplog.text and VALID_ID.lower() not in caplog.text
