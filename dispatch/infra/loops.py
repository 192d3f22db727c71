"""Background loops that stop when told to.

A node stops its background work (queue keeper, feed settler, sweepers) by cancelling
its task.  Two things have been seen to keep such a task running after `cancel()` on
Python 3.11: `asyncio.wait_for`, which can swallow a cancellation that arrives as its
timeout expires, and a client library below that swallows one (redis-py 7.4 during a
`ZRANGE`, in `tests/dispatch/infra/test_queue_index.py`).  A loop then never ends and
its node never shuts down.  Each loop waits with `wait_at_most` and starts every turn
with `honour_cancellation()`.
"""

from __future__ import annotations

import asyncio


async def wait_at_most(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass, whichever is first; True if it was set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


def honour_cancellation() -> None:
    """Raise `CancelledError` if this task was asked to stop, even when something below
    swallowed the request (`Task.cancelling()` still counts it)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
