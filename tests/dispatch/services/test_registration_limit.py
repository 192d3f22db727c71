"""New citizen accounts are limited per client address, never for everyone."""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest
import redis.asyncio as aioredis

from dispatch.infra.throttle import WindowLimit, address_group
from dispatch.settings import Settings, SettingsError
from tests.conftest import Client
from tests.fakes import FakeClock
from tests.serving import free_port

PROXY = "127.0.0.1/32"  # the test client connects from here: it plays the proxy
LIMIT = 3


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, trusted_proxies=(PROXY,), registrations_per_minute=LIMIT)


async def _register(
    client: Client, address: str, device: str
) -> tuple[int, dict[str, object], str]:
    response = await client.post(
        "/api/citizens", json={"device_id": device}, headers={"X-Real-IP": address}
    )
    return response.status, await response.json(), response.headers.get("Retry-After", "")


async def test_one_address_that_keeps_registering_is_refused_and_others_are_not(
    app_client: Client, pg: asyncpg.Pool, fake_clock: FakeClock
) -> None:
    flood = "203.0.113.50"
    statuses = [
        (await _register(app_client, flood, f"flood-device-{n:02d}"))[0] for n in range(LIMIT)
    ]
    assert statuses == [201] * LIMIT
    status, body, retry_after = await _register(app_client, flood, "flood-device-99")
    assert status == 429
    error = body["error"]
    assert isinstance(error, dict) and error["code"] == "rate_limited"
    assert "too many new accounts" in error["message"]
    assert 1 <= int(retry_after) <= 60  # the window is the app's clock minute (fixed here)
    # Nothing was written for the refused one.
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM citizens") == LIMIT
    # A phone on another network registers as ever.
    assert (await _register(app_client, "198.51.100.7", "someone-else-01"))[0] == 201
    # And the refused network's next minute is a new one.
    fake_clock.advance(int(retry_after))
    assert (await _register(app_client, flood, "flood-device-100"))[0] == 201


async def test_an_ipv6_subscriber_counts_as_one_whatever_address_of_its_64_it_uses(
    app_client: Client,
) -> None:
    statuses = [
        (await _register(app_client, f"2001:db8:1:2::{n:x}", f"v6-device-{n:02d}"))[0]
        for n in range(1, LIMIT + 2)
    ]
    assert statuses == [201] * LIMIT + [429]
    assert (await _register(app_client, "2001:db8:1:3::1", "v6-neighbour-1"))[0] == 201


async def test_when_redis_cannot_count_nobody_is_turned_away() -> None:
    """Counting needs Redis; a reporter must not be refused because it is down."""
    unreachable = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=2)
    try:
        limit = WindowLimit(unreachable, "registrations", 1, window_s=60)
        assert [await limit.count("203.0.113.1") for _ in range(3)] == [None, None, None]
    finally:
        await unreachable.aclose()


def test_addresses_are_grouped_as_subscribers_are() -> None:
    assert address_group("203.0.113.5") == "203.0.113.5"
    assert address_group("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_group("::ffff:203.0.113.5") == "203.0.113.5"
    assert address_group("unknown") == "unknown"


def test_the_limit_cannot_be_negative(settings: Settings) -> None:
    with pytest.raises(SettingsError, match="MICRO110_REGISTRATIONS_PER_MINUTE"):
        dataclasses.replace(settings, registrations_per_minute=-1)
