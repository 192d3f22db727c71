"""The one scope rule: `Scope.covers` in Python, and `scope_clause`, the same rule in
PostgreSQL, agree on every kind of incident."""

from __future__ import annotations

import itertools

import asyncpg
import pytest

from dispatch.domain.scope import Scope
from dispatch.store.scope import scope_clause

CODES = ("320102", "320104", "320105")
# (precinct_code, nearest_precinct_code): inside one precinct, outside every one
# (nearest given), no position at all.
PLACES = [(code, None) for code in CODES] + [(None, code) for code in CODES] + [(None, None)]
SCOPES = [
    Scope(False, frozenset(chosen)) for n in range(3) for chosen in itertools.combinations(CODES, n)
]
SCOPES.append(Scope(True, frozenset()))


def test_an_incident_with_no_position_is_everyones() -> None:
    assert Scope(False, frozenset()).covers(None)
    assert not Scope(False, frozenset()).covers("320102")
    assert Scope(True, frozenset()).covers("320102")


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: ",".join(s.codes()) or str(s.all_precincts))
async def test_the_sql_filter_is_the_domain_rule(pg: asyncpg.Pool, scope: Scope) -> None:
    def text(value: str | None) -> str:  # the constants above, as SQL literals
        return "NULL::text" if value is None else f"'{value}'::text"

    values = ", ".join(f"({n}, {text(own)}, {text(near)})" for n, (own, near) in enumerate(PLACES))
    async with pg.acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT n FROM (VALUES {values}) AS incidents(n, precinct_code, nearest_precinct_code)
                WHERE {scope_clause(1, scope)} ORDER BY n""",
            scope.codes(),
        )
    in_sql = [row["n"] for row in rows]
    in_python = [n for n, (own, nearest) in enumerate(PLACES) if scope.covers(own or nearest)]
    assert in_sql == in_python
