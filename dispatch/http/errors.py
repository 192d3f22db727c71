"""The one place where errors become HTTP responses: `{"error": {code, message, field}}`."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from dispatch.domain.errors import DispatchError, TryAgain
from dispatch.http.keys import METRICS
from dispatch.infra.connections import DATABASE_UNAVAILABLE

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "field": field}}, status=status
    )


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
    except DispatchError as exc:
        status = exc.status
        refused = error_response(exc.status, exc.code, exc.message, exc.field)
        if isinstance(exc, TryAgain) and exc.retry_after_s is not None:
            refused.headers["Retry-After"] = str(exc.retry_after_s)
        return refused
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
        # Text PostgreSQL cannot store (a NUL, say) that came some way the request
        # readers do not check, a URL path for one: the request's fault, not ours.
        status = 400
        return error_response(
            400, "bad_request", "the request holds a character that cannot be stored (NUL)"
        )
    except DATABASE_UNAVAILABLE:
        # PostgreSQL went away, restarts, or did not answer in time: whether this
        # request's change committed is unknown, so the client must send it again (the
        # writes that matter are idempotent: keys, states, versions).
        logger.warning(
            "database unavailable", exc_info=True,
            extra={"method": request.method, "path": request.path},
        )  # fmt: skip
        status = 503
        unavailable = error_response(
            503, "dependency_unavailable", "the database is not answering; try again shortly"
        )
        unavailable.headers["Retry-After"] = "2"
        return unavailable
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        return error_response(exc.status, code, message or exc.reason)
    except Exception:
        # The worker must survive anything a request does; log with the request line.
        logger.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return error_response(500, "internal", "internal server error")
    else:
        status = response.status
        return response
    finally:
        route = _route_name(request)
        metrics.http_requests.labels(request.method, route, str(status)).inc()
        metrics.http_latency.labels(request.method, route).observe(time.perf_counter() - started)
