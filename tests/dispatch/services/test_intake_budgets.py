"""Intake budgets: one citizen, or one network, cannot flood the queue; a reporter is
never turned away on a first alarm; refusals say to call 110 and show on the incident."""

import dataclasses
import uuid
from typing import Any

import asyncpg
import pytest

from dispatch.settings import Settings
from dispatch.store import workflow as workflow_store
from tests.conftest import CitizenSession, Client, Staff, register_citizen
from tests.dispatch.calls import alarm
from tests.dispatch.services.test_intake_reports import fields, form
from tests.fakes import FakeClock
from tests.media.calls import call_body
from tests.signaling.feeds import FeedClient

PROXY = "127.0.0.1/32"  # the test client connects from here: it plays the proxy


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, trusted_proxies=(PROXY,), alarms_per_citizen=5, intake_per_network=3,
        reports_per_citizen=1, messages_per_citizen=2,
    )  # fmt: skip


async def _alarm(
    client: Client, citizen: CitizenSession, address: str = "203.0.113.1", **overrides: Any
) -> tuple[int, dict[str, Any], str]:
    response = await client.post(
        "/api/alarms", json=alarm(**overrides),
        headers={**citizen.headers, "X-Real-IP": address},
    )  # fmt: skip
    return response.status, await response.json(), response.headers.get("Retry-After", "")


async def test_one_citizen_cannot_post_twenty_five_alarms(
    app_client: Client, citizen: CitizenSession, staff: Staff, fake_clock: FakeClock
) -> None:
    # From as many networks: this is the citizen's own budget.
    answers = [
        await _alarm(
            app_client, citizen, f"203.0.113.{n + 10}", idempotency_key=f"alarm-key-{n:03d}"
        )
        for n in range(25)
    ]
    assert [status for status, _, _ in answers] == [201] * 5 + [429] * 20
    _, refused, retry_after = answers[-1]
    assert 0 < int(retry_after) <= 600
    assert refused["error"]["code"] == "rate_limited" and "call 110" in refused["error"]["message"]
    # A retry of an accepted alarm is no new alarm: answered, never refused.
    status, replay, _ = await _alarm(
        app_client, citizen, "203.0.113.10", idempotency_key="alarm-key-000"
    )
    assert status == 201 and replay["incident_id"] == answers[0][1]["incident_id"]
    # The dispatcher sees the refusals on the reporter's latest incident.
    latest = answers[4][1]["incident_id"]
    shown = await (
        await app_client.get(f"/api/incidents/{latest}", headers=staff.dispatcher.headers)
    ).json()
    assert shown["refused_attempts"] == 20
    # The window passes: the citizen may report again.
    fake_clock.advance(int(retry_after))
    assert (await _alarm(app_client, citizen, "198.51.100.7", idempotency_key="alarm-key-nx"))[
        0
    ] == 201


async def test_a_network_budget_never_refuses_a_first_alarm(app_client: Client) -> None:
    citizens = [await register_citizen(app_client, f"shared-nat-phone-{n}") for n in range(5)]
    # Five first alarms from one network with a budget of three: all accepted.
    assert [(await _alarm(app_client, c))[0] for c in citizens] == [201] * 5
    # A second alarm from that network is over its budget ...
    status, refused, retry_after = await _alarm(app_client, citizens[0])
    assert status == 429 and "call 110" in refused["error"]["message"] and int(retry_after) > 0
    # ... but not from another network.
    assert (await _alarm(app_client, citizens[0], address="198.51.100.1"))[0] == 201


async def test_reports_and_messages_have_budgets_too(
    app_client: Client, citizen: CitizenSession, staff: Staff
) -> None:
    first = await app_client.post(
        "/api/reports", data=form(fields(idempotency_key="report-key-1")), headers=citizen.headers
    )
    assert first.status == 201, await first.text()
    second = await app_client.post(
        "/api/reports", data=form(fields(idempotency_key="report-key-2")), headers=citizen.headers
    )
    assert second.status == 429 and "call 110" in (await second.json())["error"]["message"]
    incident = (await first.json())["incident_id"]

    console = FeedClient(str(app_client.make_url("/")).rstrip("/"), "/console",
                         staff.dispatcher.token)  # fmt: skip
    await console.go_live()
    phone = FeedClient(str(app_client.make_url("/")).rstrip("/"), "/citizen", citizen.token)
    await phone.go_live()
    answers = [
        await phone.call("message", {"incident_id": incident, "body": f"hello {n}",
                                     "client_key": f"m{n}"})
        for n in range(3)
    ]  # fmt: skip
    assert [a["ok"] for a in answers] == [True, True, False]
    assert answers[2]["error"]["code"] == "rate_limited"
    # The console is told, as an update of the incident.
    await console.wait_for(
        lambda evs: any(
            d.get("refused_kind") == "message" for n, d in evs if n == "incident.updated"
        )
    )
    told = [d for n, d in console.events if d.get("refused_kind") == "message"][-1]
    assert told["refused_attempts"] == 2 and told["incident"]["refused_attempts"] == 2
    for client in (console, phone):
        await client.close()


async def test_video_calls_spend_the_alarm_budget(
    app_client: Client, citizen: CitizenSession
) -> None:
    for n in range(5):
        status, body, _ = await _alarm(
            app_client, citizen, f"203.0.113.{n + 20}", idempotency_key=f"alarm-key-c{n}"
        )
        assert status == 201, (n, body)
    call = await app_client.post(
        "/api/calls", json=call_body(), headers={**citizen.headers, "X-Real-IP": "203.0.113.1"}
    )
    assert call.status == 429, await call.text()
    assert "call 110" in (await call.json())["error"]["message"] and call.headers["Retry-After"]


async def test_refusals_stay_on_one_incident_when_several_were_received_at_once(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool, fake_clock: FakeClock
) -> None:
    """Alarms received in the same microsecond (here: the fake clock stands still):
    the refusals' count goes on one of them, always the same, not wherever the last
    update left the rows (seen as a flaky test_one_citizen_cannot_post_...)."""
    accepted = [
        (
            await _alarm(
                app_client, citizen, f"203.0.113.{n + 10}", idempotency_key=f"tie-key-{n:03d}"
            )
        )[1]
        for n in range(5)
    ]
    async with pg.acquire() as conn:
        received = await conn.fetchval("SELECT count(DISTINCT received_at) FROM incidents")
        assert received == 1
        # Whichever plan PostgreSQL takes: by the citizen's index, or (every other time
        # here) a scan and a sort, which meets the tied rows in the order they lie, and
        # an updated row moves.
        for refused in range(1, 21):
            async with conn.transaction():
                if refused % 2:
                    await conn.execute("SET LOCAL enable_indexscan = off")
                    await conn.execute("SET LOCAL enable_bitmapscan = off")
                await workflow_store.record_refusals(
                    conn, uuid.UUID(citizen.id), refused, fake_clock.now()
                )
        shown = await conn.fetch("SELECT case_no, refused_attempts FROM incidents ORDER BY case_no")
    assert [r["refused_attempts"] for r in shown] == [0, 0, 0, 0, 20]
    assert shown[-1]["case_no"] == max(a["case_no"] for a in accepted)
