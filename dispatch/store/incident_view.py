"""`dispatch.wire.incident_view` as SQL, for statements that write an incident and its event
in one round trip."""

from __future__ import annotations

import functools

from dispatch.wire.incident_view import VIEW_FIELDS, Rendering


def _instant(column: str) -> str:
    """Python's `isoformat()` of a UTC moment: no fraction when it is whole seconds."""
    utc = f"{column} AT TIME ZONE 'UTC'"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN date_part('microseconds', {column})::bigint % 1000000 = 0"
        f" THEN '' ELSE to_char({utc}, '.US') END || '+00:00'"
    )


def _expression(column: str, rendering: Rendering) -> str:
    match rendering:
        case Rendering.TEXT:
            return f"{column}::text"
        case Rendering.INSTANT:
            return _instant(column)
        case Rendering.IS_SET:
            return f"{column} IS NOT NULL"
        case Rendering.AS_IS | Rendering.VALUE:  # enums are stored as their values
            return column


@functools.cache
def incident_view_sql(row: str) -> str:
    """`incident_view` as a PostgreSQL jsonb expression over the incidents row `row`.

    For statements that change an incident and write its event in one round trip (no
    Python between the two).  Built from the same field list as `incident_view`
    (`VIEW_FIELDS`), and a property test (tests/dispatch/store/test_incident_view.py)
    compares the two over arbitrary rows.
    Floats: jsonb keeps the shortest text that reads back as the same double (as long
    as `extra_float_digits` > 0, which the pool sets), as Python does; one difference
    on the wire: a whole-number double is written without ".0" (1 rather than 1.0),
    the same number to JSON readers and to typed ones (msgspec reads an int as float).
    """
    pairs = ", ".join(
        f"'{field.name}', {_expression(f'{row}.{field.source}', field.rendering)}"
        for field in VIEW_FIELDS
    )
    return f"jsonb_build_object({pairs})"
