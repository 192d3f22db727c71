"""What a citizen is told about their case, in words they understand.

Declarative: an event type missing from EVENT_TEXT is internal and never shown.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from dispatch.domain.field_reports import Thread, message_thread
from dispatch.domain.incidents import IncidentState

_S = IncidentState

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

EVENT_TEXT = MappingProxyType(
    {
        "incident.created": "We received your report.",
        "incident.cancelled": "You told us the alarm was a false trigger.",
        "incident.claimed": "A dispatcher is now handling your report.",
        "incident.released": "Your report is back in the queue for the next free dispatcher.",
        "incident.assigned": "Officers have been sent.",
        "incident.escalated": "Your report has been passed to a senior officer.",
        "incident.merged": "Your report was joined with another report of the same incident.",
        "incident.unmerged": "Your report is being handled on its own again.",
        "incident.transferred": "Your report was passed to the responsible authority.",
        "incident.invalid": "Your report was judged not to need police action.",
        "incident.resolved": "The police have dealt with your report.",
        "incident.closed": "Your case is closed.",
        "assignment.accepted": "An officer is on the way.",
        "assignment.on_scene": "An officer has arrived.",
        "message.created": "New message from the dispatcher.",
        "incident.rated": "Thank you for rating how we handled your report.",
        "call.answered": "A dispatcher joined your video call.",
        "call.left": "The dispatcher left your video call.",
    }
)


def timeline_text(event_type: str, payload: dict[str, Any]) -> str | None:
    """The line for one event, or None when the citizen does not see this event."""
    text = EVENT_TEXT.get(event_type)
    if text is None:
        return None
    if event_type == "message.created":
        if message_thread(payload) is not Thread.REPORTER:
            return None  # between the dispatcher and the officers
        if payload.get("sender_kind") == "citizen":
            return "You sent a message."
    if event_type.startswith("call.") and not payload.get("talk"):
        return None  # a commander listening in silently is not announced
    if event_type == "call.left" and payload.get("reason") == "call_ended":
        return None  # the citizen ended the call: nothing to tell them
    return text
