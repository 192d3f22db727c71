"""Importing boundaries: the index an import stores is the one its rows would build.

The importer builds the index while it writes the rows, from the precincts it reads
before writing them; these tests check that what it read was what the rows say after.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from shapely.geometry import shape

from dispatch.domain.events import Actor
from dispatch.infra.precinct_registry import IndexCache
from dispatch.services.precincts import import_precincts
from dispatch.store import precincts as precinct_store
from geo.datum import Datum
from geo.index import PrecinctIndex
from geo.precincts import Precinct


def _squares(codes: list[str], *, lon: float = 121.0) -> dict[str, Any]:
    """One 0.01-degree square per code, side by side east of ``lon`` (away from Nanjing)."""
    features = []
    for n, code in enumerate(codes):
        x, y = lon + 0.02 * n, 31.0
        ring = [[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": f"square {code}"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


async def _stored_and_rebuilt(pg: asyncpg.Pool, import_id: int) -> tuple[bytes, bytes]:
    """The index the import stored, and the one a node would build from the rows."""
    async with pg.acquire() as conn:
        pieces = await precinct_store.stored_index(conn, import_id)
        records = await precinct_store.active_precincts(conn)
    assert pieces is not None
    precincts = [Precinct(r.code, r.name, shape(r.geometry)) for r in records]
    return b"".join(pieces), PrecinctIndex.build(precincts).to_bytes()


@pytest.mark.parametrize("replace", [False, True])
async def test_the_stored_index_is_the_one_the_rows_build(
    pg: asyncpg.Pool, nanjing: list[str], index_cache: IndexCache, replace: bool
) -> None:
    # New codes sorting before, among and after the demo city's (320102 ... 320118),
    # and one of its districts imported again with another boundary.
    codes = ["0", "320105", "320110a", "9", "Zz", "a1"]
    result = await import_precincts(
        pg, _squares(codes), name_property="name", code_property="code",
        datum=Datum.WGS84, replace=replace, source="test", actor=Actor.system("test"),
        cache=index_cache,
    )  # fmt: skip
    stored, rebuilt = await _stored_and_rebuilt(pg, result.import_id)
    assert stored == rebuilt
    index = PrecinctIndex.from_bytes(stored)
    expected = set(codes) if replace else set(codes) | set(nanjing)
    assert set(index.codes) == expected
    assert result.retired == (sorted(set(nanjing) - set(codes)) if replace else [])
    assert index.locate(121.005, 31.005).precinct == "0"
    assert index.locate(121.025, 31.005).precinct == "320105"


async def test_a_stored_index_is_read_in_pieces_that_join_to_it(pg: asyncpg.Pool) -> None:
    # A national index is tens of megabytes: read in pieces, so no one row holds a
    # serving node's event loop; the pieces join to the bytes stored.
    blob = bytes(range(256)) * ((2 * precinct_store.INDEX_PIECE + 12_345) // 256 + 1)
    async with pg.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            import_id = await precinct_store.record_import(
                conn, source="pieces", datum="wgs84", accepted=0, rejected=0, report=[]
            )
            await precinct_store.store_index(conn, import_id, blob)
            pieces = await precinct_store.stored_index(conn, import_id)
            assert pieces is not None and len(pieces) == 3
            assert all(len(p) == precinct_store.INDEX_PIECE for p in pieces[:2])
            assert b"".join(pieces) == blob
            assert await precinct_store.stored_index(conn, import_id + 1) is None
        finally:
            await transaction.rollback()
