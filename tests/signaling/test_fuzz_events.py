"""Fuzzing every Socket.IO event handler: arbitrary JSON payloads get an answer (an
error ack naming the problem, or ok), never a failure of the server's own ("internal"),
and the connection stays usable.

Payloads are drawn by Hypothesis: any JSON value, and objects whose keys are the field
names the handlers read (with values of any type, UUIDs among them).  One connection
per namespace takes every example, so a handler that broke the connection would fail
the next call.  Bounded for CI and derandomised so a failure reproduces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.namespaces import CitizenNamespace, ConsoleNamespace, OfficerNamespace
from tests.conftest import CitizenSession, Staff
from tests.signaling.feeds import FeedClient

EXAMPLES = 120
# Codes a request may be refused with; "internal" (the server's own failure) is not one.
REFUSALS = {
    "bad_request", "unauthorized", "forbidden", "not_found", "conflict",
    "invalid_transition", "payload_too_large", "rate_limited",
}  # fmt: skip
FIELDS = (
    "incident_id", "last_seq", "officer_id", "assignment_id", "status", "reason", "text",
    "note", "disposition", "target", "precinct", "department", "lon", "lat", "datum",
    "accuracy_m", "on_duty", "into", "duplicate_of", "level", "callsign", "message",
)  # fmt: skip

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.uuids().map(str),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
PAYLOADS = JSON | st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS, JSON))


def events_of(namespace: type) -> list[str]:
    """The events a namespace class handles (its `on_*` methods), connect aside."""
    return sorted(
        name[3:]
        for name in dir(namespace)
        if name.startswith("on_") and name not in ("on_connect", "on_disconnect")
    )


@pytest.fixture
async def clients(
    feed: Callable[[str, str], FeedClient], staff: Staff, citizen: CitizenSession
) -> AsyncIterator[dict[str, FeedClient]]:
    opened = {
        "/console": feed("/console", staff.commander.token),
        "/officer": feed("/officer", staff.officer.token),
        "/citizen": feed("/citizen", citizen.token),
    }
    for client in opened.values():
        await client.connect()
    yield opened
    for client in opened.values():
        await client.close()


HANDLED = [
    (namespace, event)
    for namespace, cls in (
        ("/console", ConsoleNamespace),
        ("/officer", OfficerNamespace),
        ("/citizen", CitizenNamespace),
    )
    for event in events_of(cls)
]


@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(target=st.sampled_from(HANDLED), data=PAYLOADS)
async def test_every_handler_answers_any_payload_with_an_ack(
    clients: dict[str, FeedClient], target: tuple[str, str], data: Any
) -> None:
    namespace, event = target
    client = clients[namespace]
    answer = await client.call(event, data)
    assert isinstance(answer, dict), answer
    if not answer.get("ok"):
        assert answer["error"]["code"] in REFUSALS, (event, data, answer)
        assert answer["error"]["message"]
    assert client.sio.connected
