"""Importing precinct boundaries."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from dispatch.domain.errors import BadRequest
from dispatch.domain.events import Actor, EventType
from dispatch.store import events as event_store
from dispatch.store import precincts as precinct_store
from geo.datum import Datum
from geo.precincts import geometry_to_geojson, load_precincts

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ImportResult:
    import_id: int
    accepted: int
    rejected: int
    retired: list[str]
    report: list[str]


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
) -> ImportResult:
    """Validate, repair and store a GeoJSON boundary file; running servers reload it."""
    loop = asyncio.get_running_loop()
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
            ),
        )
    except ValueError as exc:
        raise BadRequest(str(exc), field="file") from exc
    if not loaded.precincts:
        raise BadRequest(
            "no usable precinct in the file:\n" + "\n".join(loaded.report), field="file"
        )
    rows = [(p.code, p.name, geometry_to_geojson(p.geometry)) for p in loaded.precincts]
    async with pool.acquire() as conn, conn.transaction():
        await precinct_store.upsert_precincts(conn, rows, source)
        retired = (
            await precinct_store.deactivate_others(conn, [p.code for p in loaded.precincts])
            if replace
            else []
        )
        import_id = await precinct_store.record_import(
            conn,
            source=source,
            datum=datum.value,
            accepted=len(loaded.precincts),
            rejected=loaded.rejected,
            report=list(loaded.report),
        )
        await event_store.append_event(
            conn,
            EventType.PRECINCTS_IMPORTED,
            actor,
            {
                "import_id": import_id,
                "source": source,
                "accepted": len(rows),
                "rejected": loaded.rejected,
                "retired": retired,
            },
        )
    logger.info(
        "precincts imported",
        extra={"import_id": import_id, "accepted": len(rows), "rejected": loaded.rejected},
    )
    return ImportResult(import_id, len(rows), loaded.rejected, retired, list(loaded.report))
