"""Operations endpoints: liveness, readiness, metrics."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging

import asyncpg
import redis.exceptions
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dispatch.domain.errors import Forbidden, Unauthorized
from dispatch.http.citizen_api import bearer_token
from dispatch.http.keys import CALLS, INFRA, METRICS, PRECINCTS, SETTINGS
from dispatch.infra.connections import ping, postgres_problem

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

# A readiness probe must answer quickly even when a dependency hangs.
_PROBE_TIMEOUT_S = 2.0


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive", "node": request.app[SETTINGS].node_name})


async def _check_postgres(pool: asyncpg.Pool) -> str | None:
    return await postgres_problem(pool, _PROBE_TIMEOUT_S)


async def _check_redis(request: web.Request) -> str | None:
    client = request.app[INFRA].redis
    if client is None:
        return "not configured"
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            await ping(client)
    except (OSError, TimeoutError, redis.exceptions.RedisError) as exc:
        return str(exc) or type(exc).__name__
    return None


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    infra = request.app[INFRA]
    pg_problem, redis_problem = await asyncio.gather(
        _check_postgres(infra.pool), _check_redis(request)
    )
    checks = {"postgresql": pg_problem, "redis": redis_problem}
    gauge = request.app[METRICS].ready
    for name, problem in checks.items():
        gauge.labels(name).set(0 if problem else 1)
    failed = {name: problem for name, problem in checks.items() if problem}
    if failed:
        logger.warning("not ready", extra={"failed": failed})
        return web.json_response(
            {
                "status": "unavailable",
                "failed": sorted(failed),
                "error": {
                    "code": "dependency_unavailable",
                    "message": "; ".join(f"{k}: {v}" for k, v in sorted(failed.items())),
                    "field": None,
                },
            },
            status=503,
        )
    return web.json_response({"status": "ready", "checks": {k: "ok" for k in checks}})


def _local_and_direct(request: web.Request) -> bool:
    """A scraper on this host, not a request a reverse proxy on this host passed on."""
    try:
        local = ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False
    proxied = any(h in request.headers for h in ("X-Real-IP", "X-Forwarded-For", "Forwarded"))
    return local and not proxied


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    # Counters tell an attacker what the service is doing and where it hurts: with
    # MICRO110_METRICS_TOKEN set, only to whoever sends it; without, only to this host.
    token = request.app[SETTINGS].metrics_token
    if token is not None:
        given = bearer_token(request) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized(
                "send MICRO110_METRICS_TOKEN as 'Authorization: Bearer <token>'", field="token"
            )
    elif not _local_and_direct(request):
        raise Forbidden(
            "metrics are served only to this host; set MICRO110_METRICS_TOKEN to scrape "
            "them from elsewhere"
        )
    registry = request.app[METRICS]
    # Read at scrape time: which precinct import this node serves, and since when.
    snapshot = request.app[PRECINCTS].snapshot
    node = request.app[SETTINGS].node_name
    registry.precinct_import.labels(node).set(snapshot.import_id)
    registry.precinct_import_loaded.labels(node).set(snapshot.loaded_at.timestamp())
    del snapshot  # not held across the await (see client_config.precincts_geojson)
    media = await request.app[CALLS].media_stats()
    for name, gauge in registry.media.items():
        gauge.set(getattr(media, name))
    body = generate_latest(registry.registry)
    response = web.Response(body=body)
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response
