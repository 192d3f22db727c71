"""What a citizen is told about their case, in words they understand.

Declarative: an event type missing from EVENT_TEXT is internal and never shown.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from dispatch.domain.events import EventType
from dispatch.domain.field_reports import Thread, message_thread
from dispatch.domain.incidents import IncidentState

_S = IncidentState
_E = EventType

STATUS_TEXT = MappingProxyType(
    {
        _S.QUEUED: "Received. Waiting for the next free dispatcher.",
        _S.CLAIMED: "A dispatcher is handling your report.",
        _S.ASSIGNED: "Officers have been sent.",
        _S.ESCALATED: "Your report has been passed to a senior officer.",
        _S.RESOLVED: "The police have dealt with your report.",
        _S.CLOSED: "Your case is closed.",
        _S.MERGED: "Your report was joined with another report of the same incident.",
        _S.INVALID: "Your report was judged not to need police action.",
        _S.TRANSFERRED: "Your report was passed to the responsible authority.",
        _S.CANCELLED: "You cancelled this alarm.",
    }
)

EVENT_TEXT: MappingProxyType[str, str] = MappingProxyType(
    {
        _E.INCIDENT_CREATED: "We received your report.",
        _E.INCIDENT_CANCELLED: "You told us the alarm was a false trigger.",
        _E.INCIDENT_CLAIMED: "A dispatcher is now handling your report.",
        _E.INCIDENT_RELEASED: "Your report is back in the queue for the next free dispatcher.",
        _E.INCIDENT_ASSIGNED: "Officers have been sent.",
        _E.INCIDENT_ESCALATED: "Your report has been passed to a senior officer.",
        _E.INCIDENT_MERGED: "Your report was joined with another report of the same incident.",
        _E.INCIDENT_UNMERGED: "Your report is being handled on its own again.",
        _E.INCIDENT_TRANSFERRED: "Your report was passed to the responsible authority.",
        _E.INCIDENT_INVALID: "Your report was judged not to need police action.",
        _E.INCIDENT_RESOLVED: "The police have dealt with your report.",
        _E.INCIDENT_CLOSED: "Your case is closed.",
        _E.ASSIGNMENT_ACCEPTED: "An officer is on the way.",
        _E.ASSIGNMENT_ON_SCENE: "An officer has arrived.",
        _E.MESSAGE_CREATED: "New message from the dispatcher.",
        _E.INCIDENT_RATED: "Thank you for rating how we handled your report.",
        _E.CALL_ANSWERED: "A dispatcher joined your video call.",
        _E.CALL_LEFT: "The dispatcher left your video call.",
        _E.CALL_ENDED: "The dispatcher ended your video call.",
    }
)


def timeline_text(event_type: str, payload: dict[str, Any]) -> str | None:
    """The line for one event, or None when the citizen does not see this event."""
    text = EVENT_TEXT.get(event_type)
    if text is None:
        return None
    if event_type == EventType.MESSAGE_CREATED:
        if message_thread(payload) is not Thread.REPORTER:
            return None  # between the dispatcher and the officers
        if payload.get("sender_kind") == "citizen":
            return "You sent a message."
    if event_type == EventType.CALL_ENDED:
        # Only the dispatcher's hang-up is news: the page must stop at once, not take the
        # closed connection for a lost network.  The citizen's own hang-up is not, nor a
        # lost connection, after which the phone comes back into the same call.
        return text if payload.get("reason") == "ended" else None
    if event_type.startswith("call.") and not payload.get("talk"):
        return None  # a commander listening in silently is not announced
    if event_type == EventType.CALL_LEFT and payload.get("reason") == "call_ended":
        return None  # the citizen ended the call: nothing to tell them
    return text
