"""Who may read an incident, and in which view: one declarative table per role.

Dispatchers read the incidents of their precincts; commanders read every precinct;
officers read an incident only while they hold an assignment on it, or for a while
after it ended (to write it up), and then in an officer's view (no chat with the
reporter, nobody's citizen id, no EIDO export); administrators manage accounts,
boundaries and the registry and read no incidents at all (least privilege: an
administrator who needs to see incidents is given a commander's account, which is
created on the record).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from dispatch.domain.events import EventType
from dispatch.domain.field_reports import Thread, message_thread
from dispatch.domain.users import Role


class IncidentReach(StrEnum):
    """Which incidents a role reaches."""

    PRECINCTS = "precincts"  # the incidents of the staff member's own precincts
    ALL = "all"  # every precinct
    ASSIGNED = "assigned"  # only those the staff member is (or was lately) sent to
    NONE = "none"


class IncidentView(StrEnum):
    FULL = "full"  # everything a console shows, chat and reporter's actor ids included
    OFFICER = "officer"  # what an officer sent to the scene needs


INCIDENT_REACH = MappingProxyType(
    {
        Role.DISPATCHER: IncidentReach.PRECINCTS,
        Role.COMMANDER: IncidentReach.ALL,
        Role.OFFICER: IncidentReach.ASSIGNED,
        Role.ADMIN: IncidentReach.NONE,
    }
)

INCIDENT_VIEW = MappingProxyType(
    {
        Role.DISPATCHER: IncidentView.FULL,
        Role.COMMANDER: IncidentView.FULL,
        Role.OFFICER: IncidentView.OFFICER,
        Role.ADMIN: IncidentView.OFFICER,  # never used: an admin reaches no incident
    }
)

# An assignment's steps: sent live to officers (signaling/audiences.py) and kept in
# their history.
ASSIGNMENT_STEPS = frozenset(
    {
        EventType.ASSIGNMENT_OFFERED,
        EventType.ASSIGNMENT_ACCEPTED,
        EventType.ASSIGNMENT_DECLINED,
        EventType.ASSIGNMENT_CANCELLED,
        EventType.ASSIGNMENT_CLEARED,
        EventType.ASSIGNMENT_UNACKNOWLEDGED,
        EventType.ASSIGNMENT_EN_ROUTE,
        EventType.ASSIGNMENT_ON_SCENE,
    }
)

# The incident history events an officer's view keeps: what officers are sent live
# (signaling/audiences.py) plus the report itself.  Claims, reporter identity reads
# and priority bookkeeping stay with the consoles; of the chat, only the officers'
# thread (OFFICER_MESSAGE_THREADS).
OFFICER_HISTORY_TYPES = (
    frozenset(
        {
            EventType.INCIDENT_CREATED,
            EventType.INCIDENT_ASSIGNED,
            EventType.INCIDENT_TRAIL,
            EventType.INCIDENT_CANCELLED,
            EventType.INCIDENT_NOTE,
            EventType.INCIDENT_MERGED,
            EventType.INCIDENT_TRANSFERRED,
            EventType.INCIDENT_RESOLVED,
            EventType.INCIDENT_CLOSED,
            EventType.INCIDENT_INVALID,
        }
    )
    | ASSIGNMENT_STEPS
)


# The chat threads an officer's view keeps: their own chat with the dispatcher and the
# other officers on the incident, never the dispatcher's chat with the reporter.
OFFICER_MESSAGE_THREADS = frozenset({Thread.OFFICERS})


def in_officer_history(event_type: str, payload: dict[str, Any]) -> bool:
    """Does an officer's view of an incident's history keep this event?"""
    if event_type == EventType.MESSAGE_CREATED:
        return message_thread(payload) in OFFICER_MESSAGE_THREADS
    return event_type in OFFICER_HISTORY_TYPES


@dataclass(frozen=True, slots=True)
class AssignmentHold:
    """An officer's assignments on one incident: is one live, and when did the last
    one end."""

    live: bool
    last_ended_at: datetime | None


def officer_may_read(hold: AssignmentHold | None, now: datetime, read_after: timedelta) -> bool:
    if hold is None:
        return False
    if hold.live:
        return True
    return hold.last_ended_at is not None and now - hold.last_ended_at <= read_after
