"""Browser tests run against the wall clock: the page counts waiting time with the
browser's real clock (corrected to the server's at load), so the server's clock must
move too.  `advance()` still works, on top of real time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import FakeClock


@dataclass
class WallClock(FakeClock):
    ahead: timedelta = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead

    def advance(self, seconds: float) -> None:
        self.ahead += timedelta(seconds=seconds)


@pytest.fixture
def fake_clock() -> FakeClock:
    return WallClock()
