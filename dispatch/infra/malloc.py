"""The C allocator of a process that builds or swaps large precinct indexes.

glibc gives each thread that allocates while another holds the lock an arena of its
own, and memory freed in one arena is reused only by it: the index build's threads
each leave hundreds of megabytes of freed numpy temporaries in theirs, so a national
layer's build peaked at +550 MB of RSS with two threads against +440 MB with one arena
(+300 MB single-threaded). The build's large allocations are few (the small ones go to
Python's own allocator), so sharing one arena costs no measurable time.
"""

from __future__ import annotations

import ctypes
import logging

logger = logging.getLogger(__name__)

# mallopt's parameter number for the arena limit (glibc's malloc.h).
_M_ARENA_MAX = -8


def one_arena() -> None:
    """Limit the process to one malloc arena; call before starting threads. Nothing
    happens where the C library is not glibc."""
    try:
        # The symbols the interpreter is linked with: the C library's, on Linux.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return
    if mallopt(_M_ARENA_MAX, 1) != 1:
        logger.info("mallopt(M_ARENA_MAX) refused; the build may use more memory")


def give_back_free_memory() -> None:
    """Return the C allocator's free memory to the system (glibc's malloc_trim): a node
    that swapped one national index for another freed the old one's geometries, trees
    and arrays, but glibc kept most of the pages (RSS 377 -> 564 -> 566 -> 644 MB over
    four loads of a national index; trimmed after each, 372 -> 385 -> 388 -> 396 MB).
    Blocking (it walks the heap, the GIL released): call it off the event loop. glibc
    holds each arena's lock while it trims it, so another thread's malloc may wait for
    part of those milliseconds. Nothing happens where the C library is not glibc."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim(0)
