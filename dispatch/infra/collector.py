"""Python's cyclic garbage collector in a server that holds large long-lived data.

A full collection walks every object the collector tracks, with the GIL held, so it
stops the event loop for as long as it runs, whichever thread started it: with a
national precinct index made (hundreds of thousands of geometries, rows and tuples),
each one took 12-21 ms, and making the index triggered several.  Objects that live as
long as the process are frozen instead (`gc.freeze`): the collector never walks them
again.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

# Module state, as the collector it guards is process-wide: blocks of made_to_last()
# running now, on any thread, and whether collection was on before the first began.
_lock = threading.Lock()
_making = 0
_was_enabled = True


def settle_memory() -> None:
    """Once started: the start-up's objects (precinct index, codecs, modules) will live
    as long as the process, so the collector stops walking them, and it runs less often.
    Its full collections over them were the slowest requests (p99 of intake 49 -> 29 ms
    in bench/intake.py).  A full collection still comes every 20 million allocations or
    so (minutes under load): cyclic garbage of a server that runs for months must not
    pile up."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


@contextlib.contextmanager
def made_to_last() -> Iterator[None]:
    """A block that makes objects meant to live long (a precinct index loaded while the
    node serves): no collection runs while it does, and, in a process that settled its
    memory at start (`settle_memory`), what it made is then frozen with the rest.  So is
    every other object alive then, on any thread: a request's or a feed's objects that
    later become cyclic garbage are never collected.  A little, once per import."""
    global _making, _was_enabled
    with _lock:
        if _making == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _making += 1
    made = False
    try:
        yield
        made = True
    finally:
        with _lock:
            _making -= 1
            if made and gc.get_freeze_count() > 0:
                gc.freeze()
            if _making == 0 and _was_enabled:
                gc.enable()
