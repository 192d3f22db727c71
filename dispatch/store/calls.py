"""SQL for video calls: sessions (recording segments), viewers, recordings and their reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class CallSession:
    id: UUID
    incident_id: UUID
    segment: int
    node: str
    node_url: str
    live: bool
    storage_key: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class CallViewer:
    id: UUID
    incident_id: UUID
    session_id: UUID
    user_id: int
    talk: bool
    node: str
    node_url: str
    left: bool


@dataclass(frozen=True, slots=True)
class StoredRecording:
    id: UUID
    incident_id: UUID
    sha256: str
    size: int
    duration_s: float | None
    codecs: tuple[str, ...]
    media_type: str
    storage_key: str


def _session(row: asyncpg.Record) -> CallSession:
    return CallSession(
        id=row["id"], incident_id=row["incident_id"], segment=row["segment"], node=row["node"],
        node_url=row["node_url"], live=row["state"] == "live", storage_key=row["storage_key"],
        started_at=row["started_at"],
    )  # fmt: skip


def _viewer(row: asyncpg.Record) -> CallViewer:
    return CallViewer(
        id=row["id"], incident_id=row["incident_id"], session_id=row["session_id"],
        user_id=row["user_id"], talk=row["talk"], node=row["node"], node_url=row["node_url"],
        left=row["left_at"] is not None,
    )  # fmt: skip


async def start_session(
    conn: asyncpg.Connection,
    *,
    session_id: UUID,
    incident_id: UUID,
    node: str,
    node_url: str,
    storage_key: str,
    now: datetime,
) -> CallSession:
    """A new live session of the incident's call; one live before it (on another node,
    not yet noticed gone) is marked replaced.  Call with the incident row locked."""
    await conn.execute(
        """UPDATE call_sessions SET state = 'ended', ended_at = $2, end_reason = 'replaced'
           WHERE incident_id = $1 AND state = 'live'""",
        incident_id,
        now,
    )
    row = await conn.fetchrow(
        """INSERT INTO call_sessions
               (id, incident_id, segment, node, node_url, state, storage_key, started_at)
           SELECT $1, $2, coalesce(max(segment), 0) + 1, $3, $4, 'live', $5, $6
           FROM call_sessions WHERE incident_id = $2
           RETURNING *""",
        session_id,
        incident_id,
        node,
        node_url,
        storage_key,
        now,
    )
    assert row is not None
    return _session(row)


async def get_session(conn: asyncpg.Connection, session_id: UUID) -> CallSession | None:
    row = await conn.fetchrow("SELECT * FROM call_sessions WHERE id = $1", session_id)
    return _session(row) if row else None


async def live_session(conn: asyncpg.Connection, incident_id: UUID) -> CallSession | None:
    row = await conn.fetchrow(
        "SELECT * FROM call_sessions WHERE incident_id = $1 AND state = 'live'", incident_id
    )
    return _session(row) if row else None


async def last_end_reason(conn: asyncpg.Connection, incident_id: UUID) -> str | None:
    """Why the incident's latest call connection ended (None: live, or none yet)."""
    reason: str | None = await conn.fetchval(
        "SELECT end_reason FROM call_sessions WHERE incident_id = $1 ORDER BY segment DESC LIMIT 1",
        incident_id,
    )
    return reason


async def live_sessions_on(conn: asyncpg.Connection, node: str) -> list[CallSession]:
    rows = await conn.fetch(
        "SELECT * FROM call_sessions WHERE node = $1 AND state = 'live' ORDER BY started_at", node
    )
    return [_session(r) for r in rows]


async def unrecorded_sessions_on(conn: asyncpg.Connection, node: str) -> list[CallSession]:
    """Sessions this node held whose end was never reported (the process was killed)."""
    rows = await conn.fetch(
        "SELECT * FROM call_sessions WHERE node = $1 AND NOT reported ORDER BY started_at",
        node,
    )
    return [_session(r) for r in rows]


async def end_session(
    conn: asyncpg.Connection,
    session_id: UUID,
    *,
    reason: str,
    now: datetime,
    attachment_id: UUID | None,
) -> CallSession | None:
    """Record the session's end (kept as first recorded if another node already marked
    it replaced) and its recording; None if that was done already."""
    row = await conn.fetchrow(
        """UPDATE call_sessions
           SET state = 'ended', ended_at = coalesce(ended_at, $3),
               end_reason = coalesce(end_reason, $2), attachment_id = $4, reported = true
           WHERE id = $1 AND NOT reported
           RETURNING *""",
        session_id,
        reason,
        now,
        attachment_id,
    )
    return _session(row) if row else None


async def insert_recording(
    conn: asyncpg.Connection,
    *,
    attachment_id: UUID,
    incident_id: UUID,
    media_type: str,
    sha256: str,
    size: int,
    width: int | None,
    height: int | None,
    storage_key: str,
    duration_s: float,
    codecs: Sequence[str],
    now: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO attachments
               (id, incident_id, kind, media_type, sha256, bytes, width, height, storage_key,
                duration_s, codecs, created_at)
           VALUES ($1, $2, 'video', $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        attachment_id, incident_id, media_type, sha256, size, width, height, storage_key,
        duration_s, list(codecs), now,
    )  # fmt: skip


async def add_viewer(
    conn: asyncpg.Connection,
    *,
    viewer_id: UUID,
    session: CallSession,
    user_id: int,
    talk: bool,
    node: str,
    node_url: str,
    now: datetime,
) -> CallViewer:
    row = await conn.fetchrow(
        """INSERT INTO call_viewers
               (id, incident_id, session_id, user_id, talk, node, node_url, joined_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *""",
        viewer_id, session.incident_id, session.id, user_id, talk, node, node_url, now,
    )  # fmt: skip
    assert row is not None
    return _viewer(row)


async def get_viewer(conn: asyncpg.Connection, viewer_id: UUID) -> CallViewer | None:
    row = await conn.fetchrow("SELECT * FROM call_viewers WHERE id = $1", viewer_id)
    return _viewer(row) if row else None


async def end_viewer(
    conn: asyncpg.Connection, viewer_id: UUID, *, reason: str, now: datetime
) -> CallViewer | None:
    """Mark the viewer gone; None if it was already (each leave is recorded once)."""
    row = await conn.fetchrow(
        """UPDATE call_viewers SET left_at = $2, leave_reason = $3
           WHERE id = $1 AND left_at IS NULL RETURNING *""",
        viewer_id,
        now,
        reason,
    )
    return _viewer(row) if row else None


async def open_viewers_on(conn: asyncpg.Connection, node: str) -> list[CallViewer]:
    rows = await conn.fetch("SELECT * FROM call_viewers WHERE node = $1 AND left_at IS NULL", node)
    return [_viewer(r) for r in rows]


def _recording(row: asyncpg.Record) -> StoredRecording:
    return StoredRecording(
        id=row["id"], incident_id=row["incident_id"], sha256=row["sha256"], size=row["bytes"],
        duration_s=row["duration_s"], codecs=tuple(row["codecs"] or ()),
        media_type=row["media_type"], storage_key=row["storage_key"],
    )  # fmt: skip


async def get_recording(
    conn: asyncpg.Connection, incident_id: UUID, attachment_id: UUID
) -> StoredRecording | None:
    row = await conn.fetchrow(
        """SELECT * FROM attachments
           WHERE id = $1 AND incident_id = $2 AND kind = 'video'""",
        attachment_id,
        incident_id,
    )
    return _recording(row) if row else None


async def recordings_of(conn: asyncpg.Connection, incident_id: UUID) -> list[StoredRecording]:
    rows = await conn.fetch(
        """SELECT * FROM attachments WHERE incident_id = $1 AND kind = 'video'
           ORDER BY created_at""",
        incident_id,
    )
    return [_recording(r) for r in rows]


async def log_recording_read(
    conn: asyncpg.Connection,
    recording: StoredRecording,
    user_id: int,
    byte_range: str | None,
) -> None:
    await conn.execute(
        """INSERT INTO recording_reads (attachment_id, incident_id, user_id, byte_range)
           VALUES ($1, $2, $3, $4)""",
        recording.id,
        recording.incident_id,
        user_id,
        byte_range,
    )
