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
        "channel": incident.channel.value,
        "tag": incident.tag,
        "severity": incident.severity,
        "verification": incident.verification.value,
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
        "disposition": incident.disposition.value if incident.disposition else None,
        "overdue": incident.overdue_at is not None,
        "cancelled": incident.cancelled_at is not None,
        "version": incident.version,
        "refused_attempts": incident.refused_attempts,
    }
