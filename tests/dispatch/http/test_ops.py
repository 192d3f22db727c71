"""Operations endpoints through the real app on the session's servers."""

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dispatch.app import create_app
from dispatch.infra.connections import Infrastructure
from dispatch.infra.embedded import EmbeddedRedis
from dispatch.settings import Settings
from dispatch.store.database import create_pool

Client = TestClient[web.Request, web.Application]


async def test_healthz_and_readyz(app_client: Client) -> None:
    response = await app_client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["status"] == "alive"
    response = await app_client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {
        "status": "ready",
        "checks": {"postgresql": "ok", "redis": "ok"},
    }


async def test_metrics_are_prometheus_text(app_client: Client) -> None:
    await app_client.get("/healthz")
    response = await app_client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert 'micro110_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "micro110_http_request_seconds_bucket" in text
    # Which precinct import the node serves, and since when (as /api/status says).
    status = await (await app_client.get("/api/status")).json()
    node = status["node"]
    assert f'micro110_precinct_import{{node="{node}"}} {float(status["precinct_import"])}' in text
    assert f'micro110_precinct_import_loaded_timestamp_seconds{{node="{node}"}}' in text


async def test_unknown_route_is_a_json_404(app_client: Client) -> None:
    response = await app_client.get("/no/such/thing")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    response = await app_client.delete("/healthz")
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"


@pytest.fixture
async def broken_client(
    infra: Infrastructure, settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Client]:
    """An app whose Redis or PostgreSQL stops answering after start-up."""
    own_pool = await create_pool(infra.database_url, min_size=1, max_size=2)
    own_redis_server = EmbeddedRedis(tmp_path / "redis")
    own_redis = aioredis.Redis.from_url(own_redis_server.start(), socket_connect_timeout=0.5)
    if request.param == "redis":
        broken = dataclasses.replace(infra, redis=own_redis)
    else:
        broken = dataclasses.replace(infra, pool=own_pool)
    client = TestClient(TestServer(create_app(settings, infrastructure=broken)))
    await client.start_server()
    if request.param == "postgresql":
        own_pool.terminate()
    else:
        own_redis_server.stop()
    yield client
    await client.close()
    own_pool.terminate()
    own_redis_server.stop()
    await own_redis.aclose()


@pytest.mark.parametrize("broken_client", ["redis", "postgresql"], indirect=True)
async def test_readyz_names_the_dependency_that_failed(
    broken_client: Client, request: pytest.FixtureRequest
) -> None:
    which = request.node.callspec.params["broken_client"]
    response = await broken_client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["failed"] == [which]
    assert which in body["error"]["message"]
    assert (await broken_client.get("/healthz")).status == 200  # alive, just not ready
