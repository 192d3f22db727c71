"""Importing precinct boundaries."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from shapely.geometry import shape

from dispatch.domain.errors import BadRequest
from dispatch.domain.events import Actor, EventType
from dispatch.infra.loops import honour_cancellation
from dispatch.infra.precinct_registry import IndexCache
from dispatch.store import events as event_store
from dispatch.store import precincts as precinct_store
from dispatch.store.precincts import NodeServing
from geo.datum import Datum
from geo.index import PrecinctIndex
from geo.precincts import Precinct, geojson_texts, load_precincts

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ImportResult:
    import_id: int
    accepted: int
    rejected: int
    retired: list[str]
    report: list[str]
    # Wall seconds per step, in order (validate, build, store): where an import's time
    # went, for the operator and the benchmark.
    timings: dict[str, float]


async def import_precincts(
    pool: asyncpg.Pool,
    collection: Mapping[str, Any],
    *,
    name_property: str,
    code_property: str,
    datum: Datum,
    replace: bool,
    source: str,
    actor: Actor,
    progress: Callable[[int, int], None] | None = None,
    cache: IndexCache | None = None,
) -> ImportResult:
    """Validate, repair and store a GeoJSON boundary file; running servers reload it."""
    loop = asyncio.get_running_loop()
    # Every core for the CPU work: the importing process has nothing else to do meanwhile.
    workers = os.cpu_count() or 1
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        loaded = await loop.run_in_executor(
            None,
            functools.partial(
                load_precincts,
                collection,
                name_property=name_property,
                code_property=code_property,
                datum=datum,
                progress=progress,
                workers=workers,
            ),
        )
    except ValueError as exc:
        raise BadRequest(str(exc), field="file") from exc
    if not loaded.precincts:
        raise BadRequest(
            "no usable precinct in the file:\n" + "\n".join(loaded.report), field="file"
        )
    timings["validate"] = time.perf_counter() - started
    imported = {p.code: p for p in loaded.precincts}
    async with pool.acquire() as conn, conn.transaction():
        await precinct_store.lock_imports(conn)
        # The index every node will serve, built here once: nodes load it in a
        # fraction of a second instead of each spending seconds (or, for a national
        # layer, minutes and gigabytes) rebuilding it while serving. Its precincts are
        # known before the rows are written (the lock keeps them so), so it builds
        # while they are: PostgreSQL takes a second or two over a national layer's
        # rows, the build several.
        order = await precinct_store.active_codes_after(conn, list(imported), replace=replace)
        kept = await precinct_store.active_geometries(conn, [c for c in order if c not in imported])
        building_from = time.perf_counter()
        building = loop.run_in_executor(
            None, functools.partial(_packed_index, order, imported, kept, cache, workers)
        )
        try:
            # The rows' GeoJSON text (0.3 s for a national layer) beside the build too.
            texts = await loop.run_in_executor(
                None, geojson_texts, [p.geometry for p in loaded.precincts]
            )
            rows = [(p.code, p.name, text) for p, text in zip(loaded.precincts, texts, strict=True)]
            await precinct_store.upsert_precincts(conn, rows, source)
            retired = (
                await precinct_store.deactivate_others(conn, list(imported)) if replace else []
            )
            import_id = await precinct_store.record_import(
                conn,
                source=source,
                datum=datum.value,
                accepted=len(loaded.precincts),
                rejected=loaded.rejected,
                report=list(loaded.report),
            )
        finally:
            # Awaited even when a write failed, so no build outlives its import.
            packed = await building
        storing_from = time.perf_counter()
        timings["build"] = storing_from - building_from
        await precinct_store.store_index(conn, import_id, packed)
        await event_store.append_event(
            conn,
            EventType.PRECINCTS_IMPORTED,
            actor,
            {
                "import_id": import_id,
                "source": source,
                "accepted": len(loaded.precincts),
                "rejected": loaded.rejected,
                "retired": retired,
            },
        )
    timings["store"] = time.perf_counter() - storing_from
    logger.info(
        "precincts imported",
        extra={
            "import_id": import_id,
            "accepted": len(loaded.precincts),
            "rejected": loaded.rejected,
        },
    )
    return ImportResult(
        import_id, len(loaded.precincts), loaded.rejected, retired, list(loaded.report), timings
    )


def _packed_index(
    order: list[str],
    imported: Mapping[str, Precinct],
    kept: list[precinct_store.StoredPrecinct],
    cache: IndexCache | None,
    workers: int,
) -> bytes:
    others = {r.code: Precinct(r.code, r.name, shape(r.geometry)) for r in kept}
    precincts = [imported.get(code) or others[code] for code in order]
    if cache is None:
        return PrecinctIndex.build(precincts, workers=workers).to_bytes()
    return cache.packed(precincts, workers=workers)


async def wait_until_served(
    pool: asyncpg.Pool, import_id: int, *, timeout_s: float, live_within_s: float
) -> tuple[list[NodeServing], list[NodeServing]]:
    """(nodes serving `import_id` or later, live nodes that still did not after
    `timeout_s`). Nodes are those whose heartbeat was seen within `live_within_s` when
    the wait began."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with pool.acquire() as conn:
        waiting = {n.node for n in await precinct_store.live_nodes(conn, live_within_s)}
        while True:
            honour_cancellation()
            nodes = [
                n for n in await precinct_store.live_nodes(conn, live_within_s * 2)
                if n.node in waiting
            ]  # fmt: skip
            served = [n for n in nodes if n.import_id >= import_id]
            lagging = [n for n in nodes if n.import_id < import_id]
            gone = waiting - {n.node for n in nodes}
            if not lagging or loop.time() >= deadline:
                if gone:
                    logger.info("nodes stopped during the wait", extra={"nodes": sorted(gone)})
                return served, lagging
            await asyncio.sleep(0.1)
