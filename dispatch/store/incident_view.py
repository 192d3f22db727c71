"""`dispatch.wire.incident_view` as SQL, for statements that write an incident and its event
in one round trip."""

from __future__ import annotations


def incident_view_sql(row: str) -> str:
    """`incident_view` as a PostgreSQL jsonb expression over the incidents row `row`.

    For statements that change an incident and write its event in one round trip (no
    Python between the two).  It must stay `incident_view` to the letter: a property
    test (tests/dispatch/store/test_incident_view.py) compares the two over arbitrary rows.
    Floats: jsonb keeps the shortest text that reads back as the same double (as long
    as `extra_float_digits` > 0, which the pool sets), as Python does; one difference
    on the wire: a whole-number double is written without ".0" (1 rather than 1.0),
    the same number to JSON readers and to typed ones (msgspec reads an int as float).
    """
    r = row
    return f"""jsonb_build_object(
        'id', {r}.id::text, 'case_no', {r}.case_no, 'state', {r}.state,
        'channel', {r}.channel, 'tag', {r}.tag, 'severity', {r}.severity,
        'verification', {r}.verification, 'precinct_code', {r}.precinct_code,
        'jurisdiction', {r}.jurisdiction, 'nearest_precinct_code', {r}.nearest_precinct_code,
        'distance_m', {r}.distance_m, 'lon', {r}.lon, 'lat', {r}.lat,
        'accuracy_m', {r}.accuracy_m,
        'received_at', to_char({r}.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
            || CASE WHEN date_part('microseconds', {r}.received_at)::bigint % 1000000 = 0
                    THEN '' ELSE to_char({r}.received_at AT TIME ZONE 'UTC', '.US') END
            || '+00:00',
        'priority_score', {r}.priority_score, 'claimed_by', {r}.claimed_by,
        'merged_into', {r}.merged_into::text, 'disposition', {r}.disposition,
        'overdue', {r}.overdue_at IS NOT NULL, 'cancelled', {r}.cancelled_at IS NOT NULL,
        'version', {r}.version, 'refused_attempts', {r}.refused_attempts)"""
