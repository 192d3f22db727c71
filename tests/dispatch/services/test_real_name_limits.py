"""Real-name verification is no oracle for national ID numbers: attempts are limited
per citizen and per network, failures are audited, one ID is bound to one account."""

import dataclasses
from datetime import UTC, datetime

import asyncpg
import pytest

from dispatch.domain.events import Actor
from dispatch.domain.identity import _check_character
from dispatch.infra.connections import Infrastructure
from dispatch.services.citizens import import_registry
from dispatch.settings import Settings
from tests.conftest import CitizenSession, Client, register_citizen

NAME = "王小明"
VALID_ID = "11010519491231002X"
PROXY = "127.0.0.1/32"  # the test client connects from here: it plays the proxy


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, trusted_proxies=(PROXY,))


@pytest.fixture
async def registry(infra: Infrastructure) -> None:
    await import_registry(
        infra.pool, infra.keys, [{"name": NAME, "national_id": VALID_ID}],
        today=datetime.now(UTC).date(), actor=Actor.system("test"),
    )  # fmt: skip


def guessed_id(serial: int) -> str:
    """A checksum-valid ID number of the same birth date: what a guesser would try."""
    body = f"11010519491231{100 + serial:03d}"
    return body + _check_character(body)


async def _verify(
    client: Client, citizen: CitizenSession, national_id: str, address: str = "203.0.113.5"
) -> tuple[int, str]:
    response = await client.post(
        "/api/citizens/me/real-name",
        json={"name": NAME, "national_id": national_id},
        headers={**citizen.headers, "X-Real-IP": address},
    )
    return response.status, response.headers.get("Retry-After", "")


async def _audited(pg: asyncpg.Pool, reason: str) -> int:
    async with pg.acquire() as conn:
        count: int = await conn.fetchval(
            """SELECT count(*) FROM incident_events
               WHERE type = 'citizen.verification_failed' AND payload->>'reason' = $1""",
            reason,
        )
    return count


async def test_wrong_numbers_then_the_right_one_are_stopped_after_five(
    app_client: Client, citizen: CitizenSession, registry: None, pg: asyncpg.Pool
) -> None:
    answers = [(await _verify(app_client, citizen, guessed_id(n)))[0] for n in range(23)]
    assert answers == [403] * 5 + [429] * 18
    status, retry_after = await _verify(app_client, citizen, VALID_ID)
    assert status == 429 and int(retry_after) > 0  # the right one no longer tells anything
    assert await _audited(pg, "no_match") == 5


async def test_a_network_trying_many_accounts_is_stopped_too(
    app_client: Client, registry: None, pg: asyncpg.Pool
) -> None:
    guess = 0
    for account in range(4):
        citizen = await register_citizen(app_client, f"guesser-device-{account:02d}")
        for _ in range(5):
            assert (await _verify(app_client, citizen, guessed_id(guess)))[0] == 403
            guess += 1
    fresh = await register_citizen(app_client, "guesser-device-99")
    assert (await _verify(app_client, fresh, VALID_ID))[0] == 429  # 20 an hour per network
    # Another network is not held up.
    assert (await _verify(app_client, fresh, VALID_ID, address="198.51.100.9"))[0] == 200


async def test_one_national_id_is_bound_to_one_account(
    app_client: Client, citizen: CitizenSession, registry: None, pg: asyncpg.Pool
) -> None:
    assert (await _verify(app_client, citizen, VALID_ID))[0] == 200
    second = await register_citizen(app_client, "second-phone-0001")
    response = await app_client.post(
        "/api/citizens/me/real-name",
        json={"name": NAME, "national_id": VALID_ID},
        headers=second.headers,
    )
    assert response.status == 409
    assert (await response.json())["error"]["field"] == "national_id"
    async with pg.acquire() as conn:
        levels = dict(await conn.fetch("SELECT id::text, verification FROM citizens"))
        holder = await conn.fetchval(
            """SELECT payload->>'holder' FROM incident_events
               WHERE type = 'citizen.verification_failed' AND citizen_id = $1""",
            second.id,
        )
    assert levels == {citizen.id: "real_name", second.id: "anonymous"}
    assert holder == citizen.id  # audited: who holds the ID
    # The holder may verify again (a new phone of the same account): not a second claim.
    assert (await _verify(app_client, citizen, VALID_ID))[0] == 200
