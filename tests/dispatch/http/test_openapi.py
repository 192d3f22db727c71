"""The OpenAPI document covers every route, and is valid OpenAPI 3.1."""

from aiohttp import web

from dispatch.http.openapi import OPERATIONS, build_document
from tests.conftest import Client, app_of


def _routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if (
            path is None
            or route.method in {"HEAD", "OPTIONS"}
            or path.startswith(("/static", "/socket.io"))
        ):
            continue
        found.add((route.method.lower(), path))
    return found


async def test_document_matches_the_routes(app_client: Client) -> None:
    app = app_of(app_client)
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert _routes(app) - {("get", "/")} == documented
    served = await (await app_client.get("/api/openapi.json")).json()
    assert served["openapi"] == "3.1.0"
    assert {(method, path) for path, ops in served["paths"].items() for method in ops} == documented


def test_document_is_valid_openapi_31() -> None:
    from openapi_spec_validator import OpenAPIV31SpecValidator

    errors = list(OpenAPIV31SpecValidator(build_document()).iter_errors())
    assert errors == []
