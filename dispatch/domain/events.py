"""Who did something: the actor recorded on every incident_events row."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
