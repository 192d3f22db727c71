"""Failed logins lock out an account from one client, not for everyone."""

import dataclasses

import pytest

from dispatch.settings import Settings
from tests.conftest import STAFF_PASSWORD, Client, Staff

PROXY = "127.0.0.1/32"  # the test client connects from here: it plays the proxy


@pytest.fixture
def app_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    proxies = getattr(request, "param", (PROXY,))
    return dataclasses.replace(settings, trusted_proxies=proxies)


async def _login(client: Client, password: str, address: str) -> int:
    response = await client.post(
        "/api/auth/login",
        json={"username": "disp-xw", "password": password},
        headers={"X-Real-IP": address},
    )
    return response.status


async def test_a_guesser_locks_out_only_their_own_address(app_client: Client, staff: Staff) -> None:
    attacker, dispatcher = "203.0.113.9", "10.1.2.3"
    assert [await _login(app_client, "wrong", attacker) for _ in range(10)] == [401] * 10
    assert await _login(app_client, STAFF_PASSWORD, attacker) == 429
    # The dispatcher at their own desk still gets in.
    assert await _login(app_client, STAFF_PASSWORD, dispatcher) == 200


@pytest.mark.parametrize("app_settings", [("192.0.2.0/24",)], indirect=True)
async def test_x_real_ip_from_an_untrusted_peer_is_ignored(
    app_client: Client, staff: Staff
) -> None:
    # Not through a trusted proxy: the header is the client's own word, so every request
    # counts against the peer's real address whatever it claims.
    for n in range(10):
        assert await _login(app_client, "wrong", f"198.51.100.{n}") == 401
    assert await _login(app_client, STAFF_PASSWORD, "198.51.100.200") == 429
