"""How an incident looks on the wire: carried by every incident event and snapshot."""

from __future__ import annotations

from typing import Any

from dispatch.domain.incidents import Incident


def incident_view(incident: Incident) -> dict[str, Any]:
    """The incident as consoles see it; carried by every incident event."""
    return {
        "id": str(incident.id),
        "case_no": incident.case_no,
        "state": incident.state.value,
        "channel": incident.channel,
        "tag": incident.tag,
        "severity": incident.severity,
        "verification": incident.verification,
        "precinct_code": incident.precinct_code,
        "jurisdiction": incident.jurisdiction,
        "nearest_precinct_code": incident.nearest_precinct_code,
        "distance_m": incident.distance_m,
        "lon": incident.lon,
        "lat": incident.lat,
        "accuracy_m": incident.accuracy_m,
        "received_at": incident.received_at.isoformat(),
        "priority_score": incident.priority_score,
        "claimed_by": incident.claimed_by,
        "merged_into": str(incident.merged_into) if incident.merged_into else None,
        "disposition": incident.disposition,
        "overdue": incident.overdue_at is not None,
        "cancelled": incident.cancelled_at is not None,
        "version": incident.version,
    }


def incident_view_sql(row: str) -> str:
    """`incident_view` as a PostgreSQL jsonb expression over the incidents row `row`.

    For statements that change an incident and write its event in one round trip (no
    Python between the two).  It must stay `incident_view` to the letter: a property
    test (tests/dispatch/test_incident_view_sql.py) compares the two over arbitrary rows.
    Floats: jsonb keeps the shortest text that reads back as the same double (as long
    as `extra_float_digits` > 0, which the pool sets), as Python does; one difference
    on the wire: a whole-number double is written without ".0" (1 rather than 1.0),
    the same number to JSON readers and to typed ones (msgspec reads an int as float).
    """
    r = row
    return f"""jsonb_build_object(
        'id', {r}.id::text, 'case_no', {r}.case_no, 'state', {r}.state,
        'channel', {r}.channel, 'tag', {r}.tag, 'severity', {r}.severity,
        'verification', {r}.verification, 'precinct_code', {r}.precinct_code,
        'jurisdiction', {r}.jurisdiction, 'nearest_precinct_code', {r}.nearest_precinct_code,
        'distance_m', {r}.distance_m, 'lon', {r}.lon, 'lat', {r}.lat,
        'accuracy_m', {r}.accuracy_m,
        'received_at', to_char({r}.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
            || CASE WHEN date_part('microseconds', {r}.received_at)::bigint % 1000000 = 0
                    THEN '' ELSE to_char({r}.received_at AT TIME ZONE 'UTC', '.US') END
            || '+00:00',
        'priority_score', {r}.priority_score, 'claimed_by', {r}.claimed_by,
        'merged_into', {r}.merged_into::text, 'disposition', {r}.disposition,
        'overdue', {r}.overdue_at IS NOT NULL, 'cancelled', {r}.cancelled_at IS NOT NULL,
        'version', {r}.version)"""
