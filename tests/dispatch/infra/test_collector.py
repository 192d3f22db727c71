"""Loading a precinct index while serving: no garbage collection meanwhile, then frozen."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from dispatch.infra.collector import made_to_last


@pytest.fixture
def frozen_start() -> Iterator[None]:
    """A process that froze its start-up objects, as `micro110 serve` does."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def test_no_collection_runs_while_long_lived_objects_are_made(frozen_start: None) -> None:
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with made_to_last():
            assert not gc.isenabled()
            made = [[n] for n in range(200_000)]  # thousands of collections' worth
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(count)
    assert collections == []
    # Frozen with the start-up's objects: no collection walks them any more.
    assert gc.get_freeze_count() >= len(made)


def test_only_the_last_of_overlapping_blocks_turns_collection_back_on(
    frozen_start: None,
) -> None:
    inner_done = threading.Event()
    outer_may_end = threading.Event()

    def other_thread() -> None:
        with made_to_last():
            outer_may_end.set()
            inner_done.wait(5)

    with made_to_last():
        thread = threading.Thread(target=other_thread)
        thread.start()
        assert outer_may_end.wait(5)
    assert not gc.isenabled()  # the other thread's block still runs
    inner_done.set()
    thread.join(5)
    assert gc.isenabled()


def test_a_failed_block_freezes_nothing_and_collection_comes_back(frozen_start: None) -> None:
    before = gc.get_freeze_count()
    with pytest.raises(ValueError), made_to_last():
        raise ValueError("a corrupt index")
    assert gc.isenabled()
    assert gc.get_freeze_count() == before


def test_a_process_that_never_froze_its_objects_freezes_nothing() -> None:
    """Tests and tools load indexes too: nothing of theirs is kept from the collector."""
    assert gc.get_freeze_count() == 0
    with made_to_last():
        made = [[n] for n in range(1000)]
    assert gc.get_freeze_count() == 0
    assert gc.isenabled() and len(made) == 1000


def test_collection_turned_off_before_stays_off() -> None:
    gc.disable()
    try:
        with made_to_last():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
