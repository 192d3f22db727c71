"""Two server processes on one PostgreSQL and one Redis: the feed crosses nodes."""

import re
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import Servers
from tests.dispatch.calls import alarm
from tests.serving import child_env, create_database, drop_database, start_server
from tests.signaling.feeds import FeedClient


def _login(stdout: list[str], role: str) -> tuple[str, str]:
    for line in stdout:
        match = re.match(rf"\s+{role}\s+(\S+) / (\S+)", line)
        if match:
            return match[1], match[2]
    raise AssertionError(f"no {role} login in the banner")


@pytest.mark.slow
async def test_console_on_node_a_sees_alarm_and_claim_made_on_node_b(
    tmp_path: Path, servers: Servers
) -> None:
    name = "micro110_test_multinode"
    await drop_database(servers.admin_database_url, name)
    database_url = await create_database(servers.admin_database_url, name)
    shared = {"DATABASE_URL": database_url, "REDIS_URL": servers.redis_url}
    node_a = await start_server(tmp_path / "a", env=child_env({**shared, "MICRO110_DEMO": "true",
                                                                "MICRO110_NODE_NAME": "node-a"}, external=True))  # fmt: skip
    node_b = await start_server(
        tmp_path / "b", env=child_env({**shared, "MICRO110_NODE_NAME": "node-b"}, external=True)
    )
    try:
        username, password = _login(node_a.stdout, "dispatcher")
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{node_b.base_url}/api/auth/login",
                json={"username": username, "password": password},
            ) as r:
                token = (await r.json())["token"]
            console = FeedClient(node_a.base_url, "/console", token)
            await console.go_live()

            async with http.post(
                f"{node_b.base_url}/api/citizens", json={"device_id": "multinode-phone"}
            ) as r:
                citizen = (await r.json())["token"]
            async with http.post(f"{node_b.base_url}/api/alarms", json=alarm(),
                                 headers={"Authorization": f"Bearer {citizen}"}) as r:  # fmt: skip
                assert r.status == 201
                incident = (await r.json())["incident_id"]
            await console.wait_for(
                lambda evs: any(n == "incident.created" for n, _ in evs), within=15
            )

            async with http.post(f"{node_b.base_url}/api/incidents/{incident}/claim",
                                 headers={"Authorization": f"Bearer {token}"}) as r:  # fmt: skip
                assert r.status == 200
            await console.wait_for(
                lambda evs: any(n == "incident.claimed" for n, _ in evs), within=15
            )
            names = [n for n, _ in console.events]
            assert names == ["incident.created", "incident.claimed"]
            assert all(d["incident"]["id"] == incident for _, d in console.events)
            await console.close()
    finally:
        assert await node_b.stop() == 0
        assert await node_a.stop() == 0
        await drop_database(servers.admin_database_url, name)
