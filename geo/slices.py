"""Work over equal slices of a range on a few threads, results in order.

For GEOS and numpy calls over arrays, which release the GIL: the import's validity
test, repairs and overlap test each take a second or so of a national layer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def in_slices(
    work: Callable[[int, int], Sequence[T]], n: int, workers: int, *, least: int
) -> list[T]:
    """``work(start, end)`` over up to ``workers`` equal slices of ``range(n)``, each of
    at least ``least`` items, on as many threads; the slices' results concatenated in
    order. One call on this thread when there is too little for two slices."""
    workers = max(1, min(workers, n // max(least, 1)))
    if workers == 1:
        return list(work(0, n))
    cuts = np.linspace(0, n, workers + 1).astype(int).tolist()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda span: work(*span), itertools.pairwise(cuts)))
    return [item for part in parts for item in part]
