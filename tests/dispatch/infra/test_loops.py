"""Background loops stop when told to, whatever swallowed the request below them."""

from __future__ import annotations

import asyncio
import contextlib

from dispatch.infra.loops import honour_cancellation, wait_at_most
from tests.waiting import eventually


async def test_a_loop_stops_even_when_something_below_swallowed_its_cancellation() -> None:
    turns = 0

    async def swallowing_call() -> None:  # what a client library was seen to do
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()  # until cancelled

    async def loop() -> None:
        nonlocal turns
        while True:
            honour_cancellation()
            turns += 1
            await swallowing_call()

    task = asyncio.create_task(loop())
    await eventually(lambda: turns == 1)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=30)
    assert task in done and task.cancelled()
    assert turns == 1  # the turn after the swallowed cancellation never started


async def test_wait_at_most_says_whether_the_event_came_and_passes_cancellation_on() -> None:
    event = asyncio.Event()
    assert await wait_at_most(event, 0.001) is False
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_at_most(event, 30) is True

    event.clear()
    task = asyncio.create_task(wait_at_most(event, 3600))
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=30)
    assert task in done and task.cancelled()
