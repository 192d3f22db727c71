"""`dispatch.domain.scope.Scope` written for PostgreSQL: the filter every query of
incidents in a staff member's scope uses (tests/dispatch/domain/test_scope.py holds it
to `Scope.covers`)."""

from __future__ import annotations

from dispatch.domain.scope import Scope

# Their precincts, incidents out of jurisdiction nearest to them, and incidents with no
# position at all (someone must see those): `Scope.covers(incident.scope_precinct)`.
SCOPE_SQL = """(precinct_code = any($SCOPE::text[])
    OR (precinct_code IS NULL AND (nearest_precinct_code = any($SCOPE::text[])
                                   OR nearest_precinct_code IS NULL)))"""


def scope_clause(param: int, scope: Scope) -> str:
    """The filter, over `incidents` columns, with `scope.codes()` as parameter `param`."""
    if scope.all_precincts:
        # Still mention the parameter, so every caller passes the same arguments.
        return f"(${param}::text[] IS NULL OR true)"
    return SCOPE_SQL.replace("$SCOPE", f"${param}")
