"""Events: who did something (the actor recorded on every incident_events row), and an
event as it was committed (`StoredEvent`: one row of the audit trail and the feed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class ActorKind(StrEnum):
    CITIZEN = "citizen"
    STAFF = "staff"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: str

    @classmethod
    def system(cls, what: str = "server") -> Actor:
        return cls(ActorKind.SYSTEM, what)

    @classmethod
    def staff(cls, user_id: int) -> Actor:
        return cls(ActorKind.STAFF, str(user_id))


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    type: str
    incident_id: UUID | None
    precinct_code: str | None
    citizen_id: UUID | None
    officer_id: int | None
    actor: Actor
    payload: dict[str, Any]
    created_at: datetime
