"""Which incidents a staff member may see: the one rule.

Every check calls `Scope.sees`; every query filters with `dispatch.store.scope.
scope_clause`, the same rule written for PostgreSQL (tests/dispatch/domain/
test_scope.py holds the two together).  Out of scope looks like missing to the
caller: a dispatcher learns nothing of other precincts.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.domain.incidents import Incident
from dispatch.domain.users import User


@dataclass(frozen=True, slots=True)
class Scope:
    all_precincts: bool
    precincts: frozenset[str]

    def covers(self, scope_precinct: str | None) -> bool:
        """An incident belongs to the precinct whose staff handle it (its own, else the
        nearest: `Incident.scope_precinct`); one with neither (no position at all) is
        everyone's, since someone must see it."""
        return self.all_precincts or scope_precinct is None or scope_precinct in self.precincts

    def sees(self, incident: Incident) -> bool:
        return self.covers(incident.scope_precinct)

    def codes(self) -> list[str]:
        """The precinct codes, sorted: the argument of `scope_clause`."""
        return sorted(self.precincts)


def scope_of(user: User) -> Scope:
    """Commanders and administrators see every precinct; others their own."""
    return Scope(user.role.sees_all_precincts, user.precincts)
