"""Incidents: states, the transition table, and case numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import NewType
from uuid import UUID

from dispatch.domain.errors import InvalidTransition
from dispatch.domain.identity import VerificationLevel
from dispatch.domain.priority import Channel

IncidentId = NewType("IncidentId", UUID)
CitizenId = NewType("CitizenId", UUID)


class IncidentState(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"
    MERGED = "merged"
    INVALID = "invalid"
    TRANSFERRED = "transferred"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in _OPEN


_OPEN = frozenset(
    {IncidentState.QUEUED, IncidentState.CLAIMED, IncidentState.ASSIGNED, IncidentState.ESCALATED}
)
OPEN_STATES = _OPEN


class Disposition(StrEnum):
    ARRESTED = "arrested"
    REPORT_TAKEN = "report_taken"
    ADVISED = "advised"
    ASSISTED = "assisted"
    NO_OFFENCE = "no_offence"
    GONE_ON_ARRIVAL = "gone_on_arrival"
    REFERRED = "referred"
    OTHER = "other"


class TransferTarget(StrEnum):
    AGENCY = "agency"  # another police force or jurisdiction (the reporter may be abroad)
    DEPARTMENT = "department"  # fire, ambulance, city services, ...


class Action(StrEnum):
    CLAIM = "claim"
    RELEASE = "release"
    ASSIGN = "assign"
    ESCALATE = "escalate"
    RESOLVE = "resolve"
    CLOSE = "close"
    MERGE = "merge"
    UNMERGE = "unmerge"
    MARK_INVALID = "mark_invalid"
    TRANSFER = "transfer"  # to an outside agency or another department: it leaves us
    REROUTE = "reroute"  # to another precinct: queued there
    CANCEL = "cancel"  # the reporter withdraws a false trigger before anyone took it


_S = IncidentState
# action -> (states it may start from, state it leads to)
TRANSITIONS: MappingProxyType[Action, tuple[frozenset[IncidentState], IncidentState]] = (
    MappingProxyType(
        {
            Action.CLAIM: (frozenset({_S.QUEUED, _S.ESCALATED}), _S.CLAIMED),
            Action.RELEASE: (frozenset({_S.CLAIMED}), _S.QUEUED),
            Action.ASSIGN: (frozenset({_S.CLAIMED, _S.ASSIGNED, _S.ESCALATED}), _S.ASSIGNED),
            Action.ESCALATE: (frozenset({_S.QUEUED, _S.CLAIMED, _S.ASSIGNED}), _S.ESCALATED),
            Action.RESOLVE: (frozenset({_S.CLAIMED, _S.ASSIGNED, _S.ESCALATED}), _S.RESOLVED),
            Action.CLOSE: (
                frozenset({_S.RESOLVED, _S.INVALID, _S.TRANSFERRED, _S.CANCELLED}),
                _S.CLOSED,
            ),
            Action.MERGE: (frozenset(_OPEN), _S.MERGED),
            Action.UNMERGE: (frozenset({_S.MERGED}), _S.QUEUED),
            Action.MARK_INVALID: (frozenset({_S.QUEUED, _S.CLAIMED, _S.ESCALATED}), _S.INVALID),
            Action.TRANSFER: (frozenset(_OPEN), _S.TRANSFERRED),
            Action.REROUTE: (frozenset({_S.QUEUED, _S.CLAIMED, _S.ESCALATED}), _S.QUEUED),
            Action.CANCEL: (frozenset({_S.QUEUED}), _S.CANCELLED),
        }
    )
)


def transition(current: IncidentState, action: Action) -> IncidentState:
    """The state `action` leads to from `current`; InvalidTransition names both if illegal."""
    allowed, target = TRANSITIONS[action]
    if current not in allowed:
        raise InvalidTransition(
            f"cannot {action.value.replace('_', ' ')} an incident that is {current.value} "
            f"(it would become {target.value})",
            field="state",
        )
    return target


_CASE_PREFIX = re.compile(r"^[A-Z0-9]{1,8}$")


def case_number(prefix: str, local_day: datetime, serial: int) -> str:
    """Human-readable and unique: `NJ-20261123-000042` (serial from a DB sequence)."""
    if not _CASE_PREFIX.match(prefix):
        raise ValueError("a case prefix is 1-8 upper-case letters or digits")
    day = local_day.date()  # strftime is slow for an aware datetime
    return f"{prefix}-{day.year:04d}{day.month:02d}{day.day:02d}-{serial:06d}"


@dataclass(frozen=True, slots=True)
class Incident:
    id: IncidentId
    case_no: str
    state: IncidentState
    channel: Channel
    tag: str
    severity: int
    citizen_id: CitizenId | None
    verification: VerificationLevel
    precinct_code: str | None
    jurisdiction: str
    nearest_precinct_code: str | None
    distance_m: float | None
    lon: float | None
    lat: float | None
    accuracy_m: float | None
    received_at: datetime
    priority_score: float
    claimed_by: int | None
    claimed_at: datetime | None
    merged_into: IncidentId | None
    escalated_at: datetime | None
    disposition: Disposition | None
    resolved_at: datetime | None
    closed_at: datetime | None
    overdue_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    invalid_reason: str | None
    transfer: dict[str, str] | None
    rating: int | None
    version: int
    # Alarms, reports and messages of the reporter refused by the intake budgets (the
    # last day's, kept on their latest open incident): a dispatcher sees who is trying.
    refused_attempts: int = 0

    @property
    def scope_precinct(self) -> str | None:
        """The precinct whose staff handle it: its own, else the nearest one."""
        return self.precinct_code or self.nearest_precinct_code


@dataclass(frozen=True, slots=True)
class Location:
    """Where an incident is, in WGS84, and what the geofence said of it."""

    lon: float | None
    lat: float | None
    accuracy_m: float | None
    precinct_code: str | None
    jurisdiction: str  # inside | out_of_jurisdiction | unknown (no position at all)
    nearest_code: str | None
    distance_m: float | None
