"""The per-process index cache shares builds but does not keep every import forever."""

import weakref
from typing import Any

import asyncpg
from shapely.geometry import box, mapping

from dispatch.domain.events import Actor
from dispatch.infra.malloc import give_back_free_memory
from dispatch.infra.precinct_registry import IndexCache, PrecinctRegistry
from dispatch.services.precincts import import_precincts
from dispatch.store.precincts import StoredPrecinct
from geo.datum import Datum


def _squares(codes: list[str]) -> dict[str, Any]:
    """One 0.01-degree square per code, east of Shanghai (away from Nanjing)."""
    features = []
    for n, code in enumerate(codes):
        x, y = 121.0 + 0.02 * n, 31.0
        ring = [[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]
        features.append({"type": "Feature", "properties": {"code": code, "name": code},
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


def _records(n: int) -> list[StoredPrecinct]:
    return [StoredPrecinct(f"P{n}", f"precinct {n}", dict(mapping(box(n, 0, n + 1, 1))))]


def test_the_same_boundaries_are_built_once_and_old_ones_are_forgotten() -> None:
    cache = IndexCache()
    first = cache.build(_records(0))
    assert cache.build(_records(0)) is first
    for n in range(1, IndexCache.KEEP + 1):
        cache.build(_records(n))
    assert cache.build(_records(IndexCache.KEEP)) is cache.build(_records(IndexCache.KEEP))
    assert cache.build(_records(0)) is not first  # evicted, rebuilt


def test_a_serving_nodes_cache_keeps_only_the_index_it_serves() -> None:
    """`micro110 serve` keeps one (dispatch/app.py): a national index it served before
    would otherwise stay in memory."""
    cache = IndexCache(keep=1)
    first = cache.build(_records(0))
    assert cache.build(_records(0)) is first
    cache.build(_records(1))
    assert cache.build(_records(0)) is not first  # forgotten as soon as another came


def test_giving_free_memory_back_is_safe_to_call_at_any_time() -> None:
    give_back_free_memory()
    give_back_free_memory()


async def test_a_node_lets_go_of_the_index_an_import_replaced(
    pg: asyncpg.Pool, nanjing: list[str]
) -> None:
    """Nothing of the old index stays once the new one is served (freed off the event
    loop, a piece at a time: a national index freed at once held the loop ~40 ms)."""
    registry = PrecinctRegistry(pg, cache=IndexCache(keep=1))
    old = (await registry.load()).index
    polygon = weakref.ref(old.precincts[0].geometry)
    del old
    await import_precincts(
        pg, _squares(["Q1", "Q2"]), name_property="name", code_property="code",
        datum=Datum.WGS84, replace=False, source="test", actor=Actor.system("test"),
    )  # fmt: skip
    new = await registry.load()
    assert "Q1" in new.index.codes
    assert polygon() is None
