"""SQL for what officers report from the field: keyed answers (each step recorded once
per idempotency key) and the officer's duty status."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg


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


async def officer_status(conn: asyncpg.Connection, officer_id: int) -> str | None:
    """available, busy or off_duty (None: the account has no officer record)."""
    status: str | None = await conn.fetchval(
        "SELECT status FROM officers WHERE user_id = $1", officer_id
    )
    return status
