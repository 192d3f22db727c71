"""The live precinct index of one server process.

Loaded from PostgreSQL at start and again when an import commits anywhere: we LISTEN
on the precincts channel, and check the import counter at every heartbeat as a
fallback for a dropped listener connection.  The importing process stored the index
it built with the import, so loading is unpacking arrays (a fraction of a second, off
the event loop); imports from before that are rebuilt from the boundaries.  Readers
take `registry.snapshot`; a load swaps in a new immutable index, so a lookup never
sees half an import.  Each load and heartbeat is reported (`precinct_nodes`), which is
how an import knows when every node serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from shapely.geometry import shape

from dispatch.infra.collector import made_to_last
from dispatch.infra.loops import honour_cancellation, wait_at_most
from dispatch.infra.malloc import give_back_free_memory
from dispatch.store import precincts as precinct_store
from geo.index import PrecinctIndex
from geo.precincts import Precinct

logger = logging.getLogger(__name__)

# How often a node reports that it is alive (and checks for a missed import); an
# import waits for the nodes seen within three heartbeats.
HEARTBEAT_S = 5.0
LIVE_WITHIN_S = 3 * HEARTBEAT_S


@dataclass(frozen=True, slots=True)
class PrecinctSnapshot:
    import_id: int
    index: PrecinctIndex
    names: Mapping[str, str]  # every precinct ever known, retired ones too
    loaded_at: datetime


class IndexCache:
    """Built indexes by content: the same boundaries are indexed once per process.

    A build takes about a second for a city; a process that opens the same data more
    than once (tests, several apps in one process) shares the result.
    """

    # Indexes kept by default: the current one, and a few recent ones a test run reuses.
    KEEP = 4

    def __init__(self, keep: int = KEEP) -> None:
        self._built: dict[str, tuple[PrecinctIndex, bytes]] = {}
        self._keep_at_most = keep

    def build(self, records: Sequence[precinct_store.StoredPrecinct]) -> PrecinctIndex:
        precincts = [
            Precinct(code=r.code, name=r.name, geometry=shape(r.geometry)) for r in records
        ]
        return self._built_index(precincts)[0]

    def packed(self, precincts: Sequence[Precinct], *, workers: int = 1) -> bytes:
        """The index of `precincts`, packed (`PrecinctIndex.to_bytes`); built on
        `workers` threads when it is not here yet."""
        return self._built_index(precincts, workers)[1]

    def loaded(self, pieces: Sequence[bytes]) -> PrecinctIndex:
        """The index packed in `pieces` (`precinct_store.stored_index`), joined here:
        off the event loop."""
        blob = b"".join(pieces)
        key = "packed:" + hashlib.sha256(blob).hexdigest()
        entry = self._built.pop(key, None)
        if entry is None:
            with made_to_last():
                entry = (PrecinctIndex.from_bytes(blob), b"")
        return self._keep(key, entry)[0]

    def _built_index(
        self, precincts: Sequence[Precinct], workers: int = 1
    ) -> tuple[PrecinctIndex, bytes]:
        digest = hashlib.sha256()
        for precinct in precincts:
            digest.update(f"{precinct.code}\0{precinct.name}\0".encode())
            digest.update(precinct.geometry.wkb)
        key = digest.hexdigest()
        entry = self._built.pop(key, None)
        if entry is None:
            index = PrecinctIndex.build(precincts, workers=workers)
            entry = (index, index.to_bytes())
        return self._keep(key, entry)

    def _keep(self, key: str, entry: tuple[PrecinctIndex, bytes]) -> tuple[PrecinctIndex, bytes]:
        self._built[key] = entry  # most recently used last
        while len(self._built) > self._keep_at_most:  # every import would otherwise stay in memory
            del self._built[next(iter(self._built))]
        return entry


def _free_in_pieces(parts: list[object]) -> None:
    """Drop `parts` (a replaced snapshot, then its index's `large_parts()`) one at a time,
    letting other threads take the GIL in between, then give the memory back."""
    while parts:
        parts.pop(0)
        time.sleep(0)  # the event loop's turn, if it waits for the GIL
    give_back_free_memory()


class PrecinctRegistry:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        node: str = "node-1",
        cache: IndexCache | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._node = node
        self._cache = cache or IndexCache()
        self._heartbeat_s = heartbeat_s
        self._now = now
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
                    await precinct_store.report_serving(
                        conn, self._node, import_id, self._snapshot.loaded_at
                    )
                    return self._snapshot
                pieces = await precinct_store.stored_index(conn, import_id)
                records = (
                    None if pieces is not None else await precinct_store.active_precincts(conn)
                )
                names = await precinct_store.precinct_names(conn)
            loop = asyncio.get_running_loop()
            # Off the event loop: unpacking (or, for an old import, building) must never
            # hold up an alarm.
            if pieces is not None:
                index = await loop.run_in_executor(None, self._cache.loaded, pieces)
            else:
                assert records is not None
                index = await loop.run_in_executor(None, self._cache.build, records)
            old, self._snapshot = (
                self._snapshot,
                PrecinctSnapshot(import_id, index, names, self._now()),
            )
            replaced = [] if old is None else [old, *old.index.large_parts()]
            del old
            async with self._pool.acquire() as conn:
                await precinct_store.report_serving(
                    conn, self._node, import_id, self._snapshot.loaded_at
                )
            logger.info(
                "precinct index loaded",
                extra={
                    "import_id": import_id,
                    "precincts": len(index),
                    "stored": pieces is not None,
                },
            )
        async with self.reloaded:
            self.reloaded.notify_all()
        if replaced:  # once served: freed off the event loop, a piece at a time
            await loop.run_in_executor(None, _free_in_pieces, replaced)
        return self._snapshot

    async def forget(self) -> None:
        """This node stops: no import should wait for it."""
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            async with self._pool.acquire() as conn:
                await precinct_store.forget_node(conn, self._node)

    def _on_notify(self, *_: object) -> None:
        self._changed.set()

    async def watch(self) -> None:
        """Reload on every committed import until cancelled; report a heartbeat."""
        while True:
            honour_cancellation()
            try:
                async with self._pool.acquire() as conn:
                    await conn.add_listener(precinct_store.PRECINCTS_CHANNEL, self._on_notify)
                    try:
                        await self.load()  # catch up with anything missed while not listening
                        while True:
                            honour_cancellation()
                            await wait_at_most(self._changed, self._heartbeat_s)
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
