"""What only the console reads: the roster (officers in the dispatcher's precincts, all
of them for a commander, and the desk staff's names) and the queue's annotations (the
report's words, photo counts, possible duplicates) for the open incidents in scope."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from dispatch.domain.scope import scope_of
from dispatch.domain.users import Role
from dispatch.services.incidents import console_load_limit
from dispatch.services.staff_auth import StaffSession
from dispatch.store import console as store
from dispatch.store.console import Annotation, OfficerOnRoster, StaffName, TagLabel


@dataclass(frozen=True, slots=True)
class Roster:
    officers: list[OfficerOnRoster]
    staff: list[StaffName]


@dataclass(frozen=True, slots=True)
class ConsoleQueries:
    pool: asyncpg.Pool

    async def roster(self, session: StaffSession) -> Roster:
        session.require(Role.DISPATCHER, Role.COMMANDER)
        async with self.pool.acquire() as conn:
            return Roster(
                await store.officers(conn, scope_of(session.user)), await store.desk_staff(conn)
            )

    async def annotations(
        self, session: StaffSession, limit: int | None = None
    ) -> list[Annotation]:
        """For the incidents the snapshot with the same `limit` loads."""
        session.require(Role.DISPATCHER, Role.COMMANDER)
        async with self.pool.acquire() as conn:
            return await store.queue_annotations(
                conn, scope_of(session.user), limit=console_load_limit(limit)
            )

    async def tags(self) -> list[TagLabel]:
        """The report tags' names in both languages (public: the citizen page lists them)."""
        async with self.pool.acquire() as conn:
            return await store.tag_labels(conn)
