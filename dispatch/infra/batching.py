"""Group commit: submissions that arrive while earlier ones are being written are
written together, in one statement and one transaction.

Under light load every submission is written at once, alone, as it would be without
this.  Under heavy load (a disaster: thousands report at once) the per-transaction
costs - round trips, commit, the wake-ups of every process on the way - are paid once
per batch instead of once per report, so the service keeps up instead of queueing.
Nothing is answered before its batch has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Flush = Callable[[Sequence[T], Callable[[], None]], Awaitable[Sequence[R | Exception]]]


class GroupCommit(Generic[T, R]):
    """Hands items to `flush` in batches: at most `max_running` batches at a time, each
    of at most `max_batch` items, in arrival order.  `flush` returns one result or
    exception per item; an exception it raises goes to every item of its batch.

    `flush(items, written)` may call `written()` once its transaction has committed:
    the next batch then starts while it finishes (indexing, publishing) - the part
    that must not overlap is the writing."""

    def __init__(self, flush: Flush[T, R], *, max_batch: int = 64, max_running: int = 4) -> None:
        if max_batch < 1 or max_running < 1:
            raise ValueError("max_batch and max_running must be at least 1")
        self._flush = flush
        self._max_batch = max_batch
        self._max_running = max_running
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writing = 0  # batches started and not yet written
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # how many flushes ran (for tests and benchmarks)
        self.items = 0

    @property
    def waiting(self) -> int:
        """Items not yet handed to a flush."""
        return len(self._waiting)

    @property
    def running(self) -> int:
        """Batches being written."""
        return self._writing

    async def submit(self, item: T) -> R:
        # A caller that goes away (the phone hung up) cancels only its wait: the write
        # runs in its own task, and a retry with the same idempotency key then gets the
        # stored answer.  (No shield: it would cost the answer one more loop turn.)
        return await self.post(item)

    def post(self, item: T) -> asyncio.Future[R]:
        """Hand `item` over now, in order; its result comes in the future returned."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # nobody need wait for it
        self._waiting.append((item, future))
        if self._writing < self._max_running:
            self._start()
        return future

    def _start(self) -> None:
        # The batch is taken when the task first runs, one loop turn from now: what is
        # submitted in the meantime (say, by the same request) goes along.
        self._writing += 1
        task = asyncio.create_task(self._run(), name="group-commit")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        batch = self._waiting[: self._max_batch]
        del self._waiting[: self._max_batch]
        released = False

        def written() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._writing -= 1
            if self._waiting and self._writing < self._max_running:
                self._start()

        if not batch:  # an earlier batch took them
            written()
            return
        self.batches += 1
        self.items += len(batch)
        try:
            try:
                results = await self._flush([item for item, _ in batch], written)
            except Exception as exc:  # noqa: BLE001 - it is every item's answer
                results = [exc] * len(batch)
            except BaseException:
                for _, future in batch:
                    future.cancel()
                raise
            if len(results) != len(batch):
                lost = RuntimeError(f"flush answered {len(results)} of {len(batch)} items")
                results = [lost] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            written()

    async def drain(self) -> None:
        """Wait until everything submitted so far is written (at shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class GroupRead(Generic[K, V]):
    """Look-ups that arrive while one is running are made together, in one query.

    For what every request reads afresh (a token's session, a citizen's sign-in): each
    look-up still starts after it was asked for, so it sees every change committed
    before, but under load one round trip answers many requests instead of one each.
    A lone look-up runs at once, in its caller's task (no task, no future).  `read(keys)`
    maps the keys it found to their values; a key it did not find is None."""

    def __init__(
        self, read: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]], *, max_batch: int = 256
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._read = read
        self._max_batch = max_batch
        self._busy = False  # a read is running: new look-ups wait for the next one
        self._waiting: list[tuple[K, asyncio.Future[V | None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # reads made (for tests and benchmarks)

    async def get(self, key: K) -> V | None:
        if self._busy:
            future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
            self._waiting.append((key, future))
            return await future
        self._busy = True
        self.batches += 1
        try:
            found = await self._read([key])
        finally:
            self._next()
        return found.get(key)

    def _next(self) -> None:
        """The look-ups that waited, together, now; or idle."""
        if not self._waiting:
            self._busy = False
            return
        batch = self._waiting[: self._max_batch]
        del self._waiting[: self._max_batch]
        task = asyncio.create_task(self._run(batch), name="group-read")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[K, asyncio.Future[V | None]]]) -> None:
        self.batches += 1
        try:
            found = await self._read(list(dict.fromkeys(key for key, _ in batch)))
        except Exception as exc:  # noqa: BLE001 - it is every look-up's answer
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        else:
            for key, future in batch:
                if not future.done():
                    future.set_result(found.get(key))
        finally:
            self._next()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
