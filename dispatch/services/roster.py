"""Who is on the console's roster: officers in the dispatcher's precincts (all of them
for a commander) and the desk staff's names."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from dispatch.domain.users import Role
from dispatch.services.staff_auth import StaffSession
from dispatch.store import roster as store
from dispatch.store.roster import OfficerOnRoster, StaffName


@dataclass(frozen=True, slots=True)
class Roster:
    officers: list[OfficerOnRoster]
    staff: list[StaffName]


@dataclass(frozen=True, slots=True)
class RosterQueries:
    pool: asyncpg.Pool

    async def roster(self, session: StaffSession) -> Roster:
        session.require(Role.DISPATCHER, Role.COMMANDER)
        scope = None if session.user.role.sees_all_precincts else sorted(session.user.precincts)
        async with self.pool.acquire() as conn:
            return Roster(await store.officers(conn, scope), await store.desk_staff(conn))
