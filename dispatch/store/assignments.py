"""SQL for assignments: an officer sent to an incident, offered, answered, worked, ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg

from dispatch.domain.access import AssignmentHold

# Assignment states in which the officer works the incident (and follows its room).
WORKING_STATES = ("accepted", "en_route", "on_scene")
WAITING_STATES = ("offered", "unacknowledged")


async def insert_assignment(
    conn: asyncpg.Connection,
    assignment_id: UUID,
    incident_id: UUID,
    officer_id: int,
    assigned_by: int,
    now: datetime,
    next_offer_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO assignments
               (id, incident_id, officer_id, assigned_by, state, offered_at, next_offer_at)
           VALUES ($1, $2, $3, $4, 'offered', $5, $6)""",
        assignment_id,
        incident_id,
        officer_id,
        assigned_by,
        now,
        next_offer_at,
    )


async def active_assignment_officers(conn: asyncpg.Connection, incident_id: UUID) -> set[int]:
    rows = await conn.fetch(
        """SELECT officer_id FROM assignments WHERE incident_id = $1
           AND state IN ('offered', 'accepted', 'en_route', 'on_scene')""",
        incident_id,
    )
    return {r["officer_id"] for r in rows}


async def officer_hold(
    conn: asyncpg.Connection, incident_id: UUID, officer_id: int
) -> AssignmentHold | None:
    """The officer's assignments on the incident (None: never sent to it)."""
    row = await conn.fetchrow(
        """SELECT bool_or(state IN ('offered', 'unacknowledged', 'accepted', 'en_route',
                                    'on_scene')) AS live,
                  max(updated_at) FILTER (WHERE state IN ('declined', 'cleared', 'cancelled'))
                      AS last_ended_at
           FROM assignments WHERE incident_id = $1 AND officer_id = $2""",
        incident_id,
        officer_id,
    )
    if row is None or row["live"] is None:
        return None
    return AssignmentHold(live=row["live"], last_ended_at=row["last_ended_at"])


@dataclass(frozen=True, slots=True)
class EndedAssignment:
    id: UUID
    officer_id: int
    callsign: str
    was_working: bool  # accepted, en route or on scene: the officer was busy with it


# What a closed incident adds to its reporter's record (citizens' columns).
_TALLIES = {"false_alarm": "false_alarms", "valid_report": "valid_reports"}


async def end_assignments(
    conn: asyncpg.Connection,
    incident_id: UUID,
    state: str,
    now: datetime,
    *,
    tally: tuple[UUID, Literal["false_alarm", "valid_report"]] | None = None,
) -> list[EndedAssignment]:
    """End every assignment of an incident that is still live, unanswered ones included
    (an unacknowledged offer may still be accepted late, so it must end too).  With
    `tally` (citizen, outcome), the reporter's record counts the outcome in the same
    statement (as citizens.add_false_alarm / add_valid_report)."""
    # One round trip: the live ones are locked (in a fixed order), ended, and returned
    # as they were; and the reporter's record counted.
    args: list[Any] = [incident_id, state, now]
    counted = ""
    if tally is not None:
        column = _TALLIES[tally[1]]
        counted = f""",
           counted AS (
               UPDATE citizens SET {column} = {column} + 1 WHERE id = $4)"""
        args.append(tally[0])
    rows = await conn.fetch(
        """WITH live AS (
               SELECT a.id, a.officer_id, a.state, o.callsign
               FROM assignments a JOIN officers o ON o.user_id = a.officer_id
               WHERE a.incident_id = $1
                 AND a.state IN ('offered', 'unacknowledged', 'accepted', 'en_route',
                                 'on_scene')
               ORDER BY a.officer_id, a.id
               FOR UPDATE OF a),
           ended AS (
               UPDATE assignments SET state = $2, updated_at = $3
               WHERE id IN (SELECT id FROM live))"""
        + counted
        + """
           SELECT id, officer_id, state, callsign FROM live ORDER BY officer_id, id""",
        *args,
    )
    working = ("accepted", "en_route", "on_scene")
    return [
        EndedAssignment(r["id"], r["officer_id"], r["callsign"], r["state"] in working)
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class AssignedUnit:
    """An officer's assignment to an incident, for exchange documents."""

    id: UUID
    state: str
    offered_at: datetime
    acked_at: datetime | None
    callsign: str


async def assigned_units(conn: asyncpg.Connection, incident_id: UUID) -> list[AssignedUnit]:
    rows = await conn.fetch(
        """SELECT a.id, a.state, a.offered_at, a.acked_at, o.callsign
           FROM assignments a JOIN officers o ON o.user_id = a.officer_id
           WHERE a.incident_id = $1 ORDER BY a.offered_at""",
        incident_id,
    )
    return [
        AssignedUnit(r["id"], r["state"], r["offered_at"], r["acked_at"], r["callsign"])
        for r in rows
    ]


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


async def is_working(conn: asyncpg.Connection, incident_id: UUID, officer_id: int) -> bool:
    found: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM assignments WHERE incident_id = $1
               AND officer_id = $2 AND state = any($3::text[]))""",
        incident_id,
        officer_id,
        list(WORKING_STATES),
    )
    return found
