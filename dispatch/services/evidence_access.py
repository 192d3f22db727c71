"""Evidence for staff, on demand: what an incident carries, and each file read audited.

Graphic media harms call-takers, so the console never loads a photo until asked; and
photos of people are personal data, so every read names who, when and why
(`evidence_reads`), in the same statement that finds the file.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from dispatch.domain.errors import Forbidden, NotFound
from dispatch.domain.users import Role
from dispatch.evidence.files import EvidenceStore
from dispatch.services.incidents import IncidentQueries
from dispatch.services.staff_auth import StaffSession
from dispatch.store import assignments as assignment_store
from dispatch.store import evidence_reads as store
from dispatch.store.evidence_reads import AttachmentInfo


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    path: Path
    media_type: str
    sha256: str


@dataclass(frozen=True, slots=True)
class EvidenceAccess:
    pool: asyncpg.Pool
    incidents: IncidentQueries
    files: EvidenceStore

    async def _may_see(self, session: StaffSession, incident_id: uuid.UUID) -> None:
        """Dispatchers and commanders in scope; an officer while working the incident
        (accepted, en route, on scene): the scene's photos help them there."""
        session.require(Role.DISPATCHER, Role.COMMANDER, Role.OFFICER)
        await self.incidents.get(session, incident_id)  # in scope, or not found
        if session.user.role is Role.OFFICER:
            async with self.pool.acquire() as conn:
                working = await assignment_store.is_working(conn, incident_id, session.user.id)
            if not working:
                raise Forbidden("officers see the photos of the incidents they are working")

    async def list(self, session: StaffSession, incident_id: uuid.UUID) -> list[AttachmentInfo]:
        await self._may_see(session, incident_id)
        async with self.pool.acquire() as conn:
            return await store.attachments_of(conn, incident_id)

    async def read(
        self,
        session: StaffSession,
        incident_id: uuid.UUID,
        attachment_id: uuid.UUID,
        purpose: str,
    ) -> EvidenceFile:
        await self._may_see(session, incident_id)
        async with self.pool.acquire() as conn, conn.transaction():
            found = await store.read_attachment(
                conn, incident_id, attachment_id,
                actor_kind=session.actor.kind.value, actor_id=session.actor.id, purpose=purpose,
            )  # fmt: skip
        if found is None:
            raise NotFound("no such attachment on this incident", field="attachment_id")
        path = self.files.path(found.storage_key)
        if not await asyncio.to_thread(path.is_file):
            raise NotFound("the evidence file is missing from the store", field="attachment_id")
        return EvidenceFile(path, found.media_type, found.sha256)
