"""An assignment offer waits MICRO110_ASSIGNMENT_REOFFER_S for an answer: the first
offer as every re-offer."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import asyncpg
import pytest

from dispatch.settings import Settings
from tests.conftest import CitizenSession, Client, Staff
from tests.dispatch.calls import act, report

REOFFER_S = 7


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, assignment_reoffer_s=REOFFER_S)


async def test_the_first_offer_waits_the_configured_time(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    on_duty = await app_client.post(
        "/api/officers/me/duty", json={"on_duty": True}, headers=staff.officer.headers
    )
    assert on_duty.status == 200, await on_duty.text()
    incident = (await report(app_client, citizen))["incident_id"]
    assert (await act(app_client, staff.dispatcher, incident, "claim"))[0] == 200
    assigned = await act(
        app_client, staff.dispatcher, incident, "assign", {"officer_ids": [staff.officer.id]}
    )
    assert assigned[0] == 200, assigned
    offer = await pg.fetchrow(
        "SELECT offered_at, next_offer_at FROM assignments WHERE incident_id = $1", incident
    )
    assert offer is not None
    assert offer["next_offer_at"] - offer["offered_at"] == timedelta(seconds=REOFFER_S)
