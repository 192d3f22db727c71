"""SQL for what officers report from the field: keyed answers and status steps, and
the assignments an officer holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

# Assignment states in which the officer works the incident (and follows its room).
WORKING_STATES = ("accepted", "en_route", "on_scene")
WAITING_STATES = ("offered", "unacknowledged")


@dataclass(frozen=True, slots=True)
class RecordedAction:
    assignment_id: UUID
    action: str
    result: str


async def recorded_action(
    conn: asyncpg.Connection, officer_id: int, client_key: str
) -> RecordedAction | None:
    row = await conn.fetchrow(
        """SELECT assignment_id, action, result FROM officer_actions
           WHERE officer_id = $1 AND client_key = $2""",
        officer_id,
        client_key,
    )
    if row is None:
        return None
    return RecordedAction(row["assignment_id"], row["action"], row["result"])


async def record_action(
    conn: asyncpg.Connection,
    officer_id: int,
    client_key: str,
    assignment_id: UUID,
    action: str,
    result: str,
) -> None:
    """Inside the step's transaction (the assignment row is locked, so two sends of one
    key cannot both get here)."""
    await conn.execute(
        """INSERT INTO officer_actions (officer_id, client_key, assignment_id, action, result)
           VALUES ($1, $2, $3, $4, $5)""",
        officer_id, client_key, assignment_id, action, result,
    )  # fmt: skip


async def is_working(conn: asyncpg.Connection, incident_id: UUID, officer_id: int) -> bool:
    found: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM assignments WHERE incident_id = $1
               AND officer_id = $2 AND state = any($3::text[]))""",
        incident_id,
        officer_id,
        list(WORKING_STATES),
    )
    return found


@dataclass(frozen=True, slots=True)
class HeldAssignment:
    """An assignment as the officer's phone and the workflow's events see it."""

    id: UUID
    incident_id: UUID
    officer_id: int
    callsign: str
    state: str
    offers: int
    offered_at: datetime


_HELD = """SELECT a.id, a.incident_id, a.officer_id, o.callsign, a.state, a.offers, a.offered_at
           FROM assignments a JOIN officers o ON o.user_id = a.officer_id"""
_RETURNING = (
    "RETURNING a.id, a.incident_id, a.officer_id, o.callsign, a.state, a.offers, a.offered_at"
)


def _held(row: asyncpg.Record) -> HeldAssignment:
    return HeldAssignment(
        row["id"], row["incident_id"], row["officer_id"], row["callsign"], row["state"],
        row["offers"], row["offered_at"],
    )  # fmt: skip


async def assignments_of(
    conn: asyncpg.Connection, officer_id: int, states: tuple[str, ...]
) -> list[HeldAssignment]:
    """The officer's assignments in `states`, oldest offer first."""
    rows = await conn.fetch(
        _HELD
        + " WHERE a.officer_id = $1 AND a.state = any($2::text[]) ORDER BY a.offered_at, a.id",
        officer_id,
        list(states),
    )
    return [_held(r) for r in rows]


async def assignment_for_update(
    conn: asyncpg.Connection, assignment_id: UUID, officer_id: int
) -> HeldAssignment | None:
    """The officer's own assignment, locked (None: no such assignment of theirs)."""
    row = await conn.fetchrow(
        _HELD + " WHERE a.id = $1 AND a.officer_id = $2 FOR UPDATE OF a", assignment_id, officer_id
    )
    return _held(row) if row else None


async def answer_assignment(
    conn: asyncpg.Connection, assignment_id: UUID, state: str, at: datetime
) -> None:
    """Accepted or declined: no more offers."""
    await conn.execute(
        """UPDATE assignments SET state = $2, acked_at = $3, next_offer_at = NULL,
               updated_at = $3 WHERE id = $1""",
        assignment_id, state, at,
    )  # fmt: skip


async def set_assignment_state(
    conn: asyncpg.Connection, assignment_id: UUID, state: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE assignments SET state = $2, updated_at = $3 WHERE id = $1", assignment_id, state, at
    )


async def give_up_unanswered(
    conn: asyncpg.Connection, now: datetime, offered_before: datetime
) -> list[HeldAssignment]:
    """Offers unanswered since `offered_before` become unacknowledged; those changed."""
    rows = await conn.fetch(
        """UPDATE assignments a
           SET state = 'unacknowledged', next_offer_at = NULL, updated_at = $1
           FROM officers o WHERE o.user_id = a.officer_id
             AND a.state = 'offered' AND a.offered_at <= $2 """ + _RETURNING,
        now, offered_before,
    )  # fmt: skip
    return [_held(r) for r in rows]


async def offer_again(
    conn: asyncpg.Connection, now: datetime, next_after: timedelta
) -> list[HeldAssignment]:
    """Offers due again are counted and rescheduled; those changed."""
    rows = await conn.fetch(
        """UPDATE assignments a SET offers = offers + 1, next_offer_at = $2, updated_at = $1
           FROM officers o WHERE o.user_id = a.officer_id
             AND a.state = 'offered' AND a.next_offer_at <= $1 """ + _RETURNING,
        now, now + next_after,
    )  # fmt: skip
    return [_held(r) for r in rows]


async def officer_status(conn: asyncpg.Connection, officer_id: int) -> str | None:
    """available, busy or off_duty (None: the account has no officer record)."""
    status: str | None = await conn.fetchval(
        "SELECT status FROM officers WHERE user_id = $1", officer_id
    )
    return status
