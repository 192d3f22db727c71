"""Group commit: what arrives while a batch is written is written together."""

import asyncio
from collections.abc import Callable, Sequence

import pytest

from dispatch.infra.batching import GroupCommit, GroupRead
from tests.waiting import eventually


class Writer:
    """A flush that waits for the test's word, and records its batches."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.go = asyncio.Event()

    async def flush(
        self, items: Sequence[int], written: Callable[[], None]
    ) -> list[str | Exception]:
        self.batches.append(list(items))
        await self.go.wait()
        if 99 in items:  # written; the rest (publishing, say) may overlap the next batch
            written()
            self.published = asyncio.Event()
            await self.published.wait()
        if 666 in items:
            raise RuntimeError("the statement failed")
        return [ValueError(f"bad {i}") if i < 0 else f"ok {i}" for i in items]


async def test_a_lone_item_is_written_at_once() -> None:
    writer = Writer()
    writer.go.set()
    group: GroupCommit[int, str] = GroupCommit(writer.flush)
    assert await group.submit(1) == "ok 1"
    assert writer.batches == [[1]]


async def test_items_arriving_during_a_write_are_written_together_in_order() -> None:
    writer = Writer()
    group: GroupCommit[int, str] = GroupCommit(writer.flush, max_batch=3, max_running=1)
    first = asyncio.create_task(group.submit(0))
    await eventually(lambda: group.running == 1, interval_s=0.001)
    rest = [asyncio.create_task(group.submit(i)) for i in range(1, 6)]
    await eventually(lambda: group.waiting == 5, interval_s=0.001)
    writer.go.set()
    assert await asyncio.gather(first, *rest) == [f"ok {i}" for i in range(6)]
    assert writer.batches == [[0], [1, 2, 3], [4, 5]]  # at most max_batch each
    assert (group.batches, group.items) == (3, 6)


async def test_each_item_gets_its_own_error_and_a_failed_flush_fails_its_batch_only() -> None:
    writer = Writer()
    group: GroupCommit[int, str] = GroupCommit(writer.flush, max_batch=2, max_running=1)
    tasks = [asyncio.create_task(group.submit(i)) for i in (1, -2, 3, 666, 5, 6)]
    writer.go.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    # Handed over in one loop turn: the first batch takes as many as it may.
    assert writer.batches == [[1, -2], [3, 666], [5, 6]]
    assert results[0] == "ok 1"
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad -2"
    assert all(isinstance(r, RuntimeError) for r in results[2:4])  # 666's batch
    assert results[4:] == ["ok 5", "ok 6"]


async def test_what_is_handed_over_before_the_write_starts_goes_with_it() -> None:
    writer = Writer()
    writer.go.set()
    group: GroupCommit[int, str] = GroupCommit(writer.flush, max_running=1)
    futures = [group.post(i) for i in range(3)]  # one loop turn: say, one request's writes
    assert await asyncio.gather(*futures) == ["ok 0", "ok 1", "ok 2"]
    assert writer.batches == [[0, 1, 2]]


async def test_a_caller_that_goes_away_does_not_stop_the_write() -> None:
    writer = Writer()
    group: GroupCommit[int, str] = GroupCommit(writer.flush)
    caller = asyncio.create_task(group.submit(7))
    await eventually(lambda: group.running == 1, interval_s=0.001)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    writer.go.set()
    await group.drain()
    assert writer.batches == [[7]] and group.running == 0


async def test_the_next_batch_starts_once_the_last_is_written() -> None:
    writer = Writer()
    writer.go.set()
    group: GroupCommit[int, str] = GroupCommit(writer.flush, max_running=1)
    publishing = asyncio.create_task(group.submit(99))
    await eventually(lambda: writer.batches == [[99]] and group.running == 0, interval_s=0.001)
    assert await group.submit(1) == "ok 1"  # while 99 is still publishing
    assert not publishing.done()
    writer.published.set()
    assert await publishing == "ok 99"
    await group.drain()


async def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Writer().flush, max_running=0)


async def test_look_ups_asked_for_during_a_read_are_read_together_and_each_after_it_was_asked() -> (
    None
):
    table = {1: "one", 2: "two", 3: "three"}
    reads: list[list[int]] = []
    go = asyncio.Event()

    async def read(keys: Sequence[int]) -> dict[int, str]:
        reads.append(list(keys))
        seen = {k: table[k] for k in keys if k in table}  # as the statement's snapshot
        await go.wait()
        return seen

    group: GroupRead[int, str] = GroupRead(read)
    first = asyncio.create_task(group.get(1))
    await eventually(lambda: len(reads) == 1, interval_s=0.001)
    table[1] = "changed"  # committed while the first read runs: the later look-ups see it
    rest = [asyncio.create_task(group.get(k)) for k in (1, 2, 4, 2)]
    go.set()
    assert await first == "one"
    assert await asyncio.gather(*rest) == ["changed", "two", None, "two"]
    assert reads == [[1], [1, 2, 4]]  # one round trip for the four, each key once
    assert group.batches == 2


async def test_a_failed_read_fails_only_the_look_ups_it_was_making() -> None:
    calls = 0

    async def read(keys: Sequence[int]) -> dict[int, str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the database went away")
        return {k: str(k) for k in keys}

    group: GroupRead[int, str] = GroupRead(read)
    with pytest.raises(ConnectionError):
        await group.get(1)
    assert await group.get(2) == "2"


async def test_a_look_up_whose_caller_went_away_does_not_strand_the_ones_waiting() -> None:
    go = asyncio.Event()

    async def read(keys: Sequence[int]) -> dict[int, str]:
        await go.wait()
        return {k: str(k) for k in keys}

    group: GroupRead[int, str] = GroupRead(read)
    lone = asyncio.create_task(group.get(1))  # read at once, in its caller's task
    await asyncio.sleep(0)
    waiting = asyncio.create_task(group.get(2))
    await asyncio.sleep(0)
    lone.cancel()  # the phone hung up
    with pytest.raises(asyncio.CancelledError):
        await lone
    go.set()
    assert await waiting == "2"
