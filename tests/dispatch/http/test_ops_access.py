"""/metrics is not for the public, and the default Socket.IO namespace refuses."""

import dataclasses

import pytest
import socketio

from dispatch.settings import Settings
from tests.conftest import Client

TOKEN = "metrics-token-0123456789"


@pytest.fixture
def app_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    return dataclasses.replace(settings, metrics_token=getattr(request, "param", None))


async def test_without_a_token_metrics_are_for_this_host_only(app_client: Client) -> None:
    assert (await app_client.get("/metrics")).status == 200  # a scraper on this host
    # The same request passed on by a reverse proxy on this host comes from the world.
    for header in ("X-Real-IP", "X-Forwarded-For"):
        response = await app_client.get("/metrics", headers={header: "198.51.100.1"})
        assert response.status == 403
        assert "MICRO110_METRICS_TOKEN" in (await response.json())["error"]["message"]


@pytest.mark.parametrize("app_settings", [TOKEN], indirect=True)
async def test_with_a_token_metrics_need_it(app_client: Client) -> None:
    assert (await app_client.get("/metrics")).status == 401
    wrong = await app_client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    right = await app_client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status == 200 and "micro110_http_requests_total" in await right.text()


async def test_the_default_socketio_namespace_refuses(app_client: Client) -> None:
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            str(app_client.make_url("/")), namespaces=["/"], transports=["websocket"],
            wait_timeout=10,
        )  # fmt: skip
    assert not client.connected
    await client.disconnect()
