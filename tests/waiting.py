"""Waiting on a condition instead of sleeping: the one polling loop of the tests."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.005,
    what: str = "the condition",
) -> None:
    """Return as soon as `condition()` (sync or async) is true; fail after `timeout_s`.

    The bound is generous on purpose: it only decides how long a broken test hangs on a
    loaded machine, never what the test asserts."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never became true within {timeout_s} s")
        await asyncio.sleep(interval_s)
