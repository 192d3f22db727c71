"""Each workflow verb is declared once, in `dispatch.services.verbs.VERBS`: its HTTP
route, its /console handler and its OpenAPI operation are generated from that row (what
each does, both ways, is tests/signaling/test_console_verbs.py)."""

from __future__ import annotations

import inspect

from dispatch.http.openapi import OPERATIONS
from dispatch.services.verbs import INCIDENT, VERBS
from dispatch.wire.models import IncidentOut
from signaling.namespaces import ConsoleNamespace
from tests.conftest import Client, app_of

I = "/api/incidents/{incident_id}"  # noqa: E741


def test_the_verbs_clients_call_keep_their_urls_and_event_names() -> None:
    assert {verb.name: verb.http_path for verb in VERBS} == {
        "next": "/api/incidents/next", "claim": f"{I}/claim", "release": f"{I}/release",
        "assign": f"{I}/assign", "merge": f"{I}/merge", "unmerge": f"{I}/unmerge",
        "invalid": f"{I}/invalid", "transfer": f"{I}/transfer", "escalate": f"{I}/escalate",
        "resolve": f"{I}/resolve", "close": f"{I}/close", "note": f"{I}/notes",
        "message": f"{I}/messages",
    }  # fmt: skip


async def test_every_verb_is_an_http_route(app_client: Client) -> None:
    served = {
        (route.method, route.resource.canonical)
        for route in app_of(app_client).router.routes()
        if route.resource is not None
    }
    assert {("POST", verb.http_path) for verb in VERBS} <= served


def test_every_verb_is_a_console_event() -> None:
    for verb in VERBS:
        handler = getattr(ConsoleNamespace, f"on_{verb.name}")
        assert inspect.iscoroutinefunction(handler), verb.name
        assert handler.__name__ == f"on_{verb.name}"  # as the handler's failures are logged


def test_every_verb_is_an_openapi_operation() -> None:
    documented = {(op.method, op.path): op for op in OPERATIONS}
    for verb in VERBS:
        operation = documented[("post", verb.http_path)]
        assert (operation.summary, operation.request, operation.tag, operation.auth) == (
            verb.summary, verb.body, "workflow", "staff",
        )  # fmt: skip
        assert operation.status == (201 if verb.creates else 200)
        assert operation.response is (IncidentOut if verb.answer is INCIDENT else None)
        assert {401, 403} <= set(operation.errors)
        assert (404 in operation.errors) is verb.targeted
