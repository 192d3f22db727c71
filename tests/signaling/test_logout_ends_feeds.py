"""Logout ends that session's feeds on every node at once, not at the next sweep."""

import asyncio

import aiohttp
import pytest

from dispatch.auth.passwords import Passwords
from dispatch.domain.events import Actor
from dispatch.domain.users import Role
from dispatch.services.users import create_user
from dispatch.store.database import create_pool
from tests.conftest import STAFF_PASSWORD
from tests.serving import ServerProcess
from tests.signaling.feeds import FeedClient


async def _login(http: aiohttp.ClientSession, node: str, username: str) -> str:
    async with http.post(
        f"{node}/api/auth/login", json={"username": username, "password": STAFF_PASSWORD}
    ) as response:
        assert response.status == 200, await response.text()
        token: str = (await response.json())["token"]
        return token


@pytest.mark.slow
async def test_logout_on_one_node_disconnects_the_sessions_feeds_on_both_at_once(
    cluster: tuple[ServerProcess, ServerProcess, str],
) -> None:
    node_1, node_2, database_url = cluster
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        for name, role in (("disp-a", Role.DISPATCHER), ("off-a", Role.OFFICER)):
            await create_user(
                pool, Passwords(), username=name, password=STAFF_PASSWORD, role=role,
                precincts=frozenset({"320102"}), actor=Actor.system("test"),
            )  # fmt: skip
    finally:
        await pool.close()
    async with aiohttp.ClientSession() as http:
        token = await _login(http, node_1.base_url, "disp-a")
        other_session = await _login(http, node_2.base_url, "disp-a")
        officer_token = await _login(http, node_2.base_url, "off-a")
        ended = [
            FeedClient(node_1.base_url, "/console", token),
            FeedClient(node_2.base_url, "/console", token),
        ]
        kept = [
            FeedClient(node_2.base_url, "/console", other_session),  # the same user elsewhere
            FeedClient(node_1.base_url, "/officer", officer_token),
        ]
        for client in ended + kept:
            await client.go_live()

        async with http.post(
            f"{node_2.base_url}/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200
        # Well within the 15 s sweep: the end travels through Redis, not a timer.
        async with asyncio.timeout(5):
            for client in ended:
                await client.wait_for(lambda evs: ("session.ended", {"reason": "you logged out; log in again"}) in evs)  # fmt: skip
                await client.sio.wait()
        assert not any(client.sio.connected for client in ended)
        assert all(client.sio.connected for client in kept)
        for client in kept:
            await client.close()
