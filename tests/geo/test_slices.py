"""Work in slices on threads: the results in order, one call when there is little."""

from __future__ import annotations

import threading

from geo.slices import in_slices


def test_slices_cover_the_range_in_order_on_threads() -> None:
    calls: list[tuple[int, int, str]] = []

    def work(start: int, end: int) -> list[int]:
        calls.append((start, end, threading.current_thread().name))
        return list(range(start, end))

    assert in_slices(work, 1_000, 3, least=100) == list(range(1_000))
    assert sorted((a, b) for a, b, _ in calls) == [(0, 333), (333, 666), (666, 1_000)]
    assert threading.main_thread().name not in {name for *_, name in calls}


def test_too_little_for_two_slices_is_one_call_on_this_thread() -> None:
    calls: list[tuple[int, int, str]] = []

    def work(start: int, end: int) -> list[int]:
        calls.append((start, end, threading.current_thread().name))
        return [end - start]

    assert in_slices(work, 150, 4, least=100) == [150]
    assert in_slices(work, 0, 4, least=100) == [0]
    assert calls == [(0, 150, "MainThread"), (0, 0, "MainThread")]
