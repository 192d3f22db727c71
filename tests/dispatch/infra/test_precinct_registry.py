"""The per-process index cache shares builds but does not keep every import forever."""

from shapely.geometry import box, mapping

from dispatch.infra.malloc import give_back_free_memory
from dispatch.infra.precinct_registry import IndexCache
from dispatch.store.precincts import StoredPrecinct


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
