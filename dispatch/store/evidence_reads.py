"""SQL for staff reading evidence: the attachments of an incident, and an audited read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    id: uuid.UUID
    kind: str
    media_type: str
    bytes: int
    width: int | None
    height: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttachmentFile:
    media_type: str
    storage_key: str
    sha256: str


async def attachments_of(conn: asyncpg.Connection, incident_id: uuid.UUID) -> list[AttachmentInfo]:
    """An incident's evidence, and that of the reports merged into it."""
    rows = await conn.fetch(
        """SELECT a.id, a.kind, a.media_type, a.bytes, a.width, a.height, a.created_at
           FROM attachments a
           WHERE a.incident_id = $1
              OR a.incident_id IN (SELECT id FROM incidents WHERE merged_into = $1)
           ORDER BY a.created_at, a.id""",
        incident_id,
    )
    return [
        AttachmentInfo(
            r["id"],
            r["kind"],
            r["media_type"],
            r["bytes"],
            r["width"],
            r["height"],
            r["created_at"],
        )
        for r in rows
    ]


async def read_attachment(
    conn: asyncpg.Connection,
    incident_id: uuid.UUID,
    attachment_id: uuid.UUID,
    *,
    actor_kind: str,
    actor_id: str,
    purpose: str,
) -> AttachmentFile | None:
    """The attachment's file, with its audit row written in the same statement; None
    (and nothing written) when the attachment is not this incident's."""
    row = await conn.fetchrow(
        """WITH found AS (
               SELECT a.id, a.incident_id, a.media_type, a.storage_key, a.sha256
               FROM attachments a
               WHERE a.id = $2 AND (a.incident_id = $1 OR a.incident_id IN
                     (SELECT id FROM incidents WHERE merged_into = $1))
           ), audit AS (
               INSERT INTO evidence_reads
                   (attachment_id, incident_id, actor_kind, actor_id, purpose)
               SELECT id, incident_id, $3, $4, $5 FROM found
           )
           SELECT media_type, storage_key, sha256 FROM found""",
        incident_id,
        attachment_id,
        actor_kind,
        actor_id,
        purpose,
    )
    if row is None:
        return None
    return AttachmentFile(row["media_type"], row["storage_key"], row["sha256"])
