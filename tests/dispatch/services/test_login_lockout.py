"""Failed logins slow down the network they come from, for that account: never a lockout
that a guesser can turn against the account's owner.  And one argon2 run per login,
whether the username exists or not."""

import dataclasses
from typing import Literal

import asyncpg
import pytest
from aiohttp import web
from argon2 import PasswordHasher

from dispatch.app import create_app
from dispatch.auth.passwords import Passwords
from dispatch.domain.events import Actor
from dispatch.domain.users import Role
from dispatch.infra.connections import Infrastructure
from dispatch.infra.precinct_registry import IndexCache
from dispatch.services.users import authenticate, create_user
from dispatch.settings import Settings
from tests.conftest import STAFF_PASSWORD, Client, Staff
from tests.fakes import FakeClock, RecordingSms

PROXY = "127.0.0.1/32"  # the test client connects from here: it plays the proxy


@pytest.fixture
async def app(
    infra: Infrastructure,
    app_settings: Settings,
    fake_clock: FakeClock,
    sms: RecordingSms,
    nanjing: list[str],
    index_cache: IndexCache,
) -> web.Application:
    """The app with cheap argon2 parameters: these tests log in a hundred times, and what
    they check is how often a password is verified, not how long it takes."""
    return create_app(
        app_settings, infrastructure=infra, clock=fake_clock, sms_sender=sms,
        index_cache=index_cache,
        passwords=Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)),
    )  # fmt: skip


@pytest.fixture
def app_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    proxies = getattr(request, "param", (PROXY,))
    return dataclasses.replace(settings, trusted_proxies=proxies)


async def _login(client: Client, password: str, address: str) -> tuple[int, str]:
    response = await client.post(
        "/api/auth/login",
        json={"username": "disp-xw", "password": password},
        headers={"X-Real-IP": address},
    )
    return response.status, response.headers.get("Retry-After", "")


async def test_a_hundred_failures_from_ten_addresses_do_not_keep_the_owner_out(
    app_client: Client, staff: Staff
) -> None:
    answers = [
        (await _login(app_client, f"wrong-{n}", f"203.0.113.{address}"))[0]
        for address in range(10)
        for n in range(10)
    ]
    assert len(answers) == 100 and set(answers) == {401, 429}
    assert answers[:6] == [401] * 5 + [429]  # five free failures per network, then a wait
    # After 20 failures of the account, every network has one free failure only.
    assert answers.count(401) == 4 * 5 + 6 * 1
    # The owner, from a network that has not been failing, gets in at once.
    assert (await _login(app_client, STAFF_PASSWORD, "10.1.2.3"))[0] == 200


async def test_the_wait_doubles_and_a_correct_password_then_clears_it(
    app_client: Client, staff: Staff, fake_clock: FakeClock
) -> None:
    guesser = "198.51.100.7"
    assert [(await _login(app_client, "wrong", guesser))[0] for _ in range(5)] == [401] * 5
    waits = []
    for _ in range(4):
        status, retry_after = await _login(app_client, "wrong", guesser)
        assert status == 429  # not even checked: the network must wait
        waits.append(int(retry_after))
        fake_clock.advance(int(retry_after))
        assert (await _login(app_client, "wrong", guesser))[0] == 401
    assert waits == [1, 2, 4, 8]
    # While waiting even the right password is refused from there; after, it passes ...
    status, retry_after = await _login(app_client, STAFF_PASSWORD, guesser)
    assert (status, retry_after) == (429, "16")
    fake_clock.advance(16)
    assert (await _login(app_client, STAFF_PASSWORD, guesser))[0] == 200
    # ... and clears the network's record.
    assert [(await _login(app_client, "wrong", guesser))[0] for _ in range(5)] == [401] * 5


async def test_ipv6_counts_per_64(app_client: Client, staff: Staff) -> None:
    # Five addresses of one /64 are one network: the sixth address waits.
    for n in range(1, 6):
        assert (await _login(app_client, "wrong", f"2001:db8:1:2::{n:x}"))[0] == 401
    assert (await _login(app_client, STAFF_PASSWORD, "2001:db8:1:2::99"))[0] == 429
    assert (await _login(app_client, STAFF_PASSWORD, "2001:db8:1:3::1"))[0] == 200


@pytest.mark.parametrize("app_settings", [("192.0.2.0/24",)], indirect=True)
async def test_x_real_ip_from_an_untrusted_peer_is_ignored(
    app_client: Client, staff: Staff
) -> None:
    # Not through a trusted proxy: the header is the client's own word, so every request
    # counts against the peer's real address whatever it claims.
    for n in range(5):
        assert (await _login(app_client, "wrong", f"198.51.100.{n}"))[0] == 401
    assert (await _login(app_client, STAFF_PASSWORD, "198.51.100.200"))[0] == 429


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__()
        self.hashes = self.verifications = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.hashes += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


async def test_every_login_costs_one_argon2_verification_and_no_hash(pg: asyncpg.Pool) -> None:
    hasher = CountingHasher()  # default parameters: what production runs
    passwords = Passwords(hasher)
    for name, active in (("known", True), ("disabled", False)):
        user = await create_user(
            pg, passwords, username=name, password=STAFF_PASSWORD, role=Role.COMMANDER,
            actor=Actor.system("test"),
        )  # fmt: skip
        if not active:
            async with pg.acquire() as conn:
                await conn.execute("UPDATE users SET active = false WHERE id = $1", user.id)
    cases = {
        ("known", STAFF_PASSWORD): True,
        ("known", "wrong password"): False,
        ("nobody", "wrong password"): False,
        ("disabled", STAFF_PASSWORD): False,
    }
    for (username, password), succeeds in cases.items():
        hasher.hashes = hasher.verifications = 0
        found = await authenticate(pg, passwords, username, password)
        assert (found is not None) == succeeds
        assert (hasher.verifications, hasher.hashes) == (1, 0), (username, password)
