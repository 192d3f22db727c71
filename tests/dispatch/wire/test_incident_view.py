"""One incident shape: `IncidentView` is what the staff API answers with, what every
incident event carries and what the SQL twin writes; the transports' models derive from
it and add nothing, and the rendering is pinned to the byte where clients see it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from dispatch.domain.identity import VerificationLevel
from dispatch.domain.incidents import (
    CitizenId,
    Disposition,
    Incident,
    IncidentId,
    IncidentState,
)
from dispatch.domain.priority import Channel
from dispatch.wire.incident_view import VIEW_FIELDS, IncidentView, Rendering, incident_view
from dispatch.wire.models import IncidentOut
from signaling.events.shapes import IncidentSnapshot
from tests.conftest import CitizenSession, Client, Staff
from tests.dispatch.calls import act, report

RECEIVED = datetime(2026, 12, 7, 3, 4, 5, 120000, tzinfo=UTC)


def _incident(**changes: Any) -> Incident:
    incident = Incident(
        id=IncidentId(uuid.UUID("00000000-0000-4000-8000-000000000001")),
        case_no="110-20261207-000001", state=IncidentState.CLAIMED, channel=Channel.ALARM,
        tag="kidnapping", severity=1, citizen_id=CitizenId(uuid.uuid4()),
        verification=VerificationLevel.PHONE, precinct_code="320102", jurisdiction="inside",
        nearest_precinct_code=None, distance_m=None, lon=118.7926, lat=32.0732,
        accuracy_m=12.5, received_at=RECEIVED, priority_score=1796612345.5, claimed_by=7,
        claimed_at=RECEIVED, merged_into=None, escalated_at=None, disposition=None,
        resolved_at=None, closed_at=None, overdue_at=None, cancelled_at=None,
        cancel_reason=None, invalid_reason=None, transfer=None, rating=None, version=3,
    )  # fmt: skip
    return dataclasses.replace(incident, **changes)


def test_the_transports_models_are_the_one_shape() -> None:
    for model in (IncidentOut, IncidentSnapshot):
        assert issubclass(model, IncidentView)
        assert model.__struct_fields__ == IncidentView.__struct_fields__
        assert (vars(model).get("__doc__") or "").strip(), model  # each says what it is


def test_the_view_writes_the_shapes_fields_in_order() -> None:
    view = incident_view(_incident())
    assert tuple(view) == IncidentView.__struct_fields__
    assert tuple(field.name for field in VIEW_FIELDS) == IncidentView.__struct_fields__


def test_the_view_as_clients_see_it() -> None:
    assert incident_view(_incident()) == {
        "id": "00000000-0000-4000-8000-000000000001", "case_no": "110-20261207-000001",
        "state": "claimed", "channel": "alarm", "tag": "kidnapping", "severity": 1,
        "verification": "phone", "precinct_code": "320102", "jurisdiction": "inside",
        "nearest_precinct_code": None, "distance_m": None, "lon": 118.7926, "lat": 32.0732,
        "accuracy_m": 12.5, "received_at": "2026-12-07T03:04:05.120000+00:00",
        "priority_score": 1796612345.5, "claimed_by": 7, "merged_into": None,
        "disposition": None, "overdue": False, "cancelled": False, "version": 3,
        "refused_attempts": 0,
    }  # fmt: skip
    target = IncidentId(uuid.uuid4())
    view = incident_view(
        _incident(
            merged_into=target, disposition=Disposition.ADVISED, overdue_at=RECEIVED,
            cancelled_at=RECEIVED, received_at=RECEIVED.replace(microsecond=0),
        )
    )  # fmt: skip
    assert (view["merged_into"], view["disposition"], view["overdue"], view["cancelled"]) == (
        str(target), "advised", True, True,
    )  # fmt: skip
    # Whole seconds: no fraction, as Python's isoformat and the SQL twin write it.
    assert view["received_at"] == "2026-12-07T03:04:05+00:00"
    # Plain values: JSON encoders and jsonb take them as they are.
    assert all(type(value) in (str, int, float, bool, type(None)) for value in view.values())


def test_the_view_decodes_as_the_shape() -> None:
    incident = _incident(merged_into=IncidentId(uuid.uuid4()), disposition=Disposition.OTHER)
    for model in (IncidentView, IncidentOut, IncidentSnapshot):
        decoded = msgspec.json.decode(msgspec.json.encode(incident_view(incident)), type=model)
        assert decoded.id == incident.id and decoded.merged_into == incident.merged_into
        assert decoded.state is incident.state and decoded.disposition is incident.disposition
        assert decoded.received_at == incident.received_at


def test_each_field_is_rendered_by_its_type() -> None:
    renderings = {field.name: field.rendering for field in VIEW_FIELDS}
    assert renderings["id"] is renderings["merged_into"] is Rendering.TEXT
    assert renderings["state"] is renderings["disposition"] is Rendering.VALUE
    assert renderings["received_at"] is Rendering.INSTANT
    assert renderings["overdue"] is renderings["cancelled"] is Rendering.IS_SET
    assert {field.source for field in VIEW_FIELDS} <= set(Incident.__dataclass_fields__)


async def test_the_staff_api_answers_with_the_events_incident(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    incident = (await report(app_client, citizen))["incident_id"]
    status, claimed = await act(app_client, staff.dispatcher, incident, "claim")
    assert status == 200
    async with pg.acquire() as conn:
        event = await conn.fetchval(
            "SELECT payload FROM incident_events WHERE incident_id = $1 AND type = $2",
            uuid.UUID(incident), "incident.claimed",
        )  # fmt: skip
    assert claimed == event["incident"]
    assert claimed["received_at"].endswith("+00:00")
    fetched = await app_client.get(f"/api/incidents/{incident}", headers=staff.dispatcher.headers)
    raw = await fetched.read()
    assert msgspec.json.decode(raw) == claimed
    assert msgspec.json.decode(raw, type=IncidentOut).id == uuid.UUID(incident)
