"""A PostGIS scratch database for the geo benchmarks, and the ``ST_Covers`` comparison.

PostGIS is optional for the benchmarks and not needed anywhere else: without it the
comparison is reported as null. PostgreSQL: DATABASE_URL if set, else
postgresql://postgres@127.0.0.1:5432/postgres (on Debian, PostGIS for that server is the
``postgresql-NN-postgis-3`` package). A scratch database (``micro110_bench_geo``) is
created and dropped again.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import urllib.parse
from collections.abc import AsyncIterator, Sequence

import asyncpg
import shapely

from geo.precincts import Precinct

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SCRATCH_DATABASE = "micro110_bench_geo"


def _with_database(url: str, database: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{database}"))


@contextlib.asynccontextmanager
async def postgis() -> AsyncIterator[asyncpg.Connection | None]:
    """A connection to a fresh PostGIS-enabled scratch database, or None (says why)."""
    urls = [u for u in (os.environ.get("DATABASE_URL"), DEFAULT_DATABASE_URL) if u]
    for url in urls:
        try:
            admin = await asyncpg.connect(url, timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            print(f"postgis: cannot connect to {url.rsplit('@', 1)[-1]}: {exc}")
            continue
        break
    else:
        yield None
        return
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}"')
        await admin.execute(f'CREATE DATABASE "{SCRATCH_DATABASE}"')
        conn = await asyncpg.connect(_with_database(url, SCRATCH_DATABASE), timeout=5)
        try:
            try:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except asyncpg.PostgresError as exc:
                print(f"postgis: extension unavailable ({exc})")
                yield None
                return
            print(f"postgis: {await conn.fetchval('SELECT postgis_full_version()')}"[:100])
            yield conn
        finally:
            await conn.close()
    finally:
        with contextlib.suppress(asyncpg.PostgresError):
            await admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}"')
        await admin.close()


async def compare(
    conn: asyncpg.Connection,
    table: str,
    precincts: Sequence[Precinct],
    lons: Sequence[float],
    lats: Sequence[float],
    expected: Sequence[int],
) -> tuple[float, float]:
    """Median microseconds per ST_Covers query (client round trip), and the share of
    points where PostGIS names the same precinct as ``expected`` (index positions, -1
    for none)."""
    await conn.execute(
        f"CREATE TABLE {table} (idx integer PRIMARY KEY, code text NOT NULL,"
        " geom geometry(MultiPolygon, 4326) NOT NULL)"
    )
    await conn.executemany(
        f"INSERT INTO {table} VALUES ($1, $2, ST_Multi(ST_GeomFromWKB($3, 4326)))",
        [(i, p.code, shapely.to_wkb(p.geometry)) for i, p in enumerate(precincts)],
    )
    await conn.execute(f"CREATE INDEX ON {table} USING gist (geom)")
    await conn.execute(f"ANALYZE {table}")
    # Ties on a shared border go to the lowest index, as in the geo/ index.
    query = await conn.prepare(
        f"SELECT idx FROM {table} WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326))"
        " ORDER BY idx LIMIT 1"
    )
    for lon, lat in zip(lons[:200], lats[:200], strict=True):
        await query.fetchval(lon, lat)
    clock = time.perf_counter_ns
    spent, same = [], 0
    for lon, lat, want in zip(lons, lats, expected, strict=True):
        start = clock()
        found = await query.fetchval(lon, lat)
        spent.append(clock() - start)
        same += (found if found is not None else -1) == want
    return statistics.median(spent) / 1000.0, same / len(expected)
