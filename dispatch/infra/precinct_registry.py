"""The live precinct index of one server process.

Built from PostgreSQL at start, rebuilt when an import commits anywhere: we LISTEN on
the precincts channel, and poll the import counter as a fallback for a dropped
listener connection.  Readers take `registry.index`; a rebuild swaps in a new
immutable index, so a lookup never sees half an import.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from shapely.geometry import shape

from dispatch.store import precincts as precinct_store
from geo.index import PrecinctIndex
from geo.precincts import Precinct

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PrecinctSnapshot:
    import_id: int
    index: PrecinctIndex
    names: Mapping[str, str]  # every precinct ever known, retired ones too


class IndexCache:
    """Built indexes by content: the same boundaries are indexed once per process.

    A build takes about a second for a city; a process that opens the same data more
    than once (tests, several apps in one process) shares the result.
    """

    # Indexes kept: the current one, and a few recent ones a test run reuses.
    KEEP = 4

    def __init__(self) -> None:
        self._built: dict[str, PrecinctIndex] = {}

    def build(self, records: list[asyncpg.Record]) -> PrecinctIndex:
        precincts = [
            Precinct(code=r["code"], name=r["name"], geometry=shape(r["geometry"])) for r in records
        ]
        digest = hashlib.sha256()
        for precinct in precincts:
            digest.update(f"{precinct.code}\0{precinct.name}\0".encode())
            digest.update(precinct.geometry.wkb)
        key = digest.hexdigest()
        index = self._built.pop(key, None)
        if index is None:
            index = PrecinctIndex.build(precincts)
        self._built[key] = index  # most recently used last
        while len(self._built) > self.KEEP:  # every import would otherwise stay in memory
            del self._built[next(iter(self._built))]
        return index


class PrecinctRegistry:
    def __init__(
        self, pool: asyncpg.Pool, *, cache: IndexCache | None = None, poll_interval_s: float = 30.0
    ) -> None:
        self._pool = pool
        self._cache = cache or IndexCache()
        self._poll_interval_s = poll_interval_s
        self._snapshot: PrecinctSnapshot | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self.reloaded = asyncio.Condition()

    @property
    def snapshot(self) -> PrecinctSnapshot:
        if self._snapshot is None:
            raise RuntimeError("precinct registry used before load()")
        return self._snapshot

    async def load(self) -> PrecinctSnapshot:
        async with self._lock:
            async with self._pool.acquire() as conn:
                import_id = await precinct_store.latest_import_id(conn)
                if self._snapshot is not None and self._snapshot.import_id == import_id:
                    return self._snapshot
                records = await precinct_store.active_precincts(conn)
                names = await precinct_store.precinct_names(conn)
            index = await asyncio.get_running_loop().run_in_executor(
                None, self._cache.build, records
            )
            self._snapshot = PrecinctSnapshot(import_id, index, names)
            logger.info(
                "precinct index loaded", extra={"import_id": import_id, "precincts": len(records)}
            )
        async with self.reloaded:
            self.reloaded.notify_all()
        return self._snapshot

    def _on_notify(self, *_: object) -> None:
        self._changed.set()

    async def watch(self) -> None:
        """Reload on every committed import until cancelled."""
        while True:
            try:
                async with self._pool.acquire() as conn:
                    await conn.add_listener(precinct_store.PRECINCTS_CHANNEL, self._on_notify)
                    try:
                        await self.load()  # catch up with anything missed while not listening
                        while True:
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(self._changed.wait(), self._poll_interval_s)
                            self._changed.clear()
                            await self.load()
                    finally:
                        # On cancellation the pool may already be closing: a failure
                        # to unlisten must not swallow the CancelledError.
                        with contextlib.suppress(
                            OSError, asyncpg.PostgresError, asyncpg.InterfaceError
                        ):
                            await conn.remove_listener(
                                precinct_store.PRECINCTS_CHANNEL, self._on_notify
                            )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                logger.warning("precinct listener lost its connection; retrying", exc_info=True)
                await asyncio.sleep(1.0)
