"""A reporter rates how their case was handled: once, after it is resolved."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from dispatch.domain.events import StoredEvent
from dispatch.http.keys import TRACKING
from dispatch.infra.publisher import Publisher
from tests.conftest import (
    CitizenSession,
    Client,
    StaffLogin,
    app_of,
    make_staff,
    register_citizen,
)
from tests.dispatch.calls import SHANGHAI, act, report

THANKS = "Thank you for rating how we handled your report."


@pytest.fixture
async def dispatcher(app_client: Client, nanjing: list[str]) -> StaffLogin:
    """One dispatcher for the whole city (the `staff` set costs four password hashes)."""
    return await make_staff(app_client, "disp-all", "dispatcher", tuple(nanjing))


async def resolved_case(
    client: Client, citizen: CitizenSession, dispatcher: StaffLogin, **where: Any
) -> dict[str, Any]:
    case = await report(client, citizen, **where)
    assert (await act(client, dispatcher, case["incident_id"], "claim"))[0] == 200
    status, body = await act(
        client, dispatcher, case["incident_id"], "resolve", {"disposition": "arrested"}
    )
    assert status == 200 and body["state"] == "resolved", body
    return case


async def rate(
    client: Client, case_no: str, token: str | None, body: Any
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(f"/api/cases/{case_no}/rating", json=body, headers=headers)
    return response.status, await response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_resolved_case_is_rated_once_and_the_rating_is_on_the_record(
    app_client: Client, citizen: CitizenSession, dispatcher: StaffLogin, pg: asyncpg.Pool
) -> None:
    case = await resolved_case(app_client, citizen, dispatcher)
    token = case["tracking_token"]

    status, body = await rate(
        app_client, case["case_no"], token, {"rating": 4, "comment": "came in 6 minutes"}
    )
    assert (status, body) == (201, {"rating": 4})
    async with pg.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT rating, rating_comment, state FROM incidents WHERE case_no = $1",
            case["case_no"],
        )
    assert dict(row) == {"rating": 4, "rating_comment": "came in 6 minutes", "state": "resolved"}

    # Once only: not again with the tracking token, nor with the owner's own token.
    for again in (token, citizen.token):
        status, error = await rate(app_client, case["case_no"], again, {"rating": 1})
        assert status == 409 and error["error"]["code"] == "conflict"
        assert error["error"]["field"] == "rating"
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT rating FROM incidents") == 4

    history = await (
        await app_client.get(
            f"/api/incidents/{case['incident_id']}/history", headers=dispatcher.headers
        )
    ).json()
    rated = [e for e in history["events"] if e["type"] == "incident.rated"]
    assert len(rated) == 1
    assert rated[0]["actor"] == {"kind": "citizen", "id": citizen.id}
    assert rated[0]["payload"]["rating"] == 4
    assert rated[0]["payload"]["comment"] == "came in 6 minutes"
    assert rated[0]["payload"]["incident"]["case_no"] == case["case_no"]

    tracked = await (
        await app_client.get(f"/api/cases/{case['case_no']}", headers=bearer(token))
    ).json()
    assert tracked["timeline"][-1] == {
        "at": tracked["timeline"][-1]["at"],
        "event": "incident.rated",
        "text": THANKS,
    }
    assert "came in 6 minutes" not in str(tracked)  # the comment is for the police
    assert tracked["rating"] == 4  # so any of the reporter's phones shows it, not the form


async def test_an_open_case_cannot_be_rated_yet_a_closed_one_can(
    app_client: Client, citizen: CitizenSession, dispatcher: StaffLogin, pg: asyncpg.Pool
) -> None:
    case = await report(app_client, citizen)
    status, error = await rate(app_client, case["case_no"], case["tracking_token"], {"rating": 5})
    assert status == 409 and error["error"]["field"] == "state"
    assert "queued" in error["error"]["message"]
    assert (await act(app_client, dispatcher, case["incident_id"], "claim"))[0] == 200
    status, error = await rate(app_client, case["case_no"], citizen.token, {"rating": 5})
    assert status == 409 and "claimed" in error["error"]["message"]
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT rating FROM incidents") is None
        rated = "SELECT count(*) FROM incident_events WHERE type = 'incident.rated'"
        assert await conn.fetchval(rated) == 0

    # Resolved and closed: the owner rates it with their own token.
    status, _ = await act(
        app_client, dispatcher, case["incident_id"], "resolve", {"disposition": "advised"}
    )
    assert status == 200
    assert (await act(app_client, dispatcher, case["incident_id"], "close"))[0] == 200
    status, _ = await rate(app_client, case["case_no"], citizen.token, {"rating": 5})
    assert status == 201
    tracked = await (
        await app_client.get(f"/api/cases/{case['case_no']}", headers=citizen.headers)
    ).json()
    assert THANKS in [entry["text"] for entry in tracked["timeline"]]


async def test_someone_elses_token_finds_no_such_case(
    app_client: Client, citizen: CitizenSession, dispatcher: StaffLogin
) -> None:
    case = await resolved_case(app_client, citizen, dispatcher)
    stranger = await register_citizen(app_client, "stranger-device-1")
    own = await resolved_case(app_client, stranger, dispatcher)
    for token in (stranger.token, own["tracking_token"], "not-a-token", None):
        status, error = await rate(app_client, case["case_no"], token, {"rating": 1})
        assert status == 404 and error["error"]["code"] == "not_found", token
    # A staff token is no citizen's token either.
    status, _ = await rate(app_client, case["case_no"], dispatcher.token, {"rating": 1})
    assert status == 404
    # Nor is a missing case any different.
    status, error = await rate(app_client, "110-20000101-999999", citizen.token, {"rating": 1})
    assert status == 404
    # And the case is still unrated, for its owner to rate.
    status, _ = await rate(app_client, case["case_no"], case["tracking_token"], {"rating": 2})
    assert status == 201


BAD_RATINGS: list[tuple[dict[str, Any], str]] = [
    ({"rating": 0}, "rating"),
    ({"rating": 6}, "rating"),
    ({"rating": -3}, "rating"),
    ({"rating": "5"}, "rating"),
    ({"rating": 4.5}, "rating"),
    ({"comment": "no number"}, "rating"),
    ({"rating": 3, "comment": "x" * 1001}, "comment"),
    ({"rating": 3, "stars": 3}, "stars"),
]


async def test_a_bad_rating_is_refused_naming_the_field(
    app_client: Client, citizen: CitizenSession, dispatcher: StaffLogin
) -> None:
    case = await resolved_case(app_client, citizen, dispatcher)
    for body, field in BAD_RATINGS:
        status, error = await rate(app_client, case["case_no"], case["tracking_token"], body)
        assert status == 400 and error["error"]["code"] == "bad_request", body
        assert error["error"]["field"] == field, (body, error)
    status, _ = await rate(app_client, case["case_no"], case["tracking_token"], {"rating": 3})
    assert status == 201  # the refused attempts used nothing up


async def test_the_rating_event_is_published_after_commit_in_the_case_scope(
    app_client: Client, citizen: CitizenSession, dispatcher: StaffLogin, pg: asyncpg.Pool
) -> None:
    # Out of jurisdiction: staff of the nearest precinct handle it, and see its events.
    case = await resolved_case(app_client, citizen, dispatcher, lon=SHANGHAI[0], lat=SHANGHAI[1])
    published: list[StoredEvent] = []

    async def listener(events: Sequence[StoredEvent]) -> None:
        async with pg.acquire() as conn:  # published only once it is committed
            for event in events:
                assert await conn.fetchval(
                    "SELECT 1 FROM incident_events WHERE seq = $1", event.seq
                )
        published.extend(events)

    publisher = Publisher()
    publisher.subscribe(listener)
    tracking = dataclasses.replace(app_of(app_client)[TRACKING], publisher=publisher)
    await tracking.rate(case["case_no"], case["tracking_token"], 5, "")

    assert [e.type for e in published] == ["incident.rated"]
    async with pg.acquire() as conn:
        scopes = {
            r["type"]: r["precinct_code"]
            for r in await conn.fetch(
                "SELECT type, precinct_code FROM incident_events WHERE incident_id = $1",
                uuid.UUID(case["incident_id"]),
            )
        }
        nearest = await conn.fetchval("SELECT nearest_precinct_code FROM incidents")
    assert nearest is not None
    assert scopes == dict.fromkeys(
        ["incident.created", "incident.claimed", "incident.resolved", "incident.rated"], nearest
    )
