"""Officers' free/busy status as assignments and incidents move it.

Accepting an assignment makes an officer busy; clearing it, or its incident ending,
frees them.  Each change is an `officer.status` event, as going on or off duty is, so
every console's free/busy count follows the feed instead of guessing from assignments."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from dispatch.domain.events import Actor, EventType, StoredEvent
from dispatch.store import events as event_store
from dispatch.store import officers as officer_store


async def set_officers_status(
    conn: asyncpg.Connection, actor: Actor, officer_ids: Sequence[int], status: str
) -> list[StoredEvent]:
    """Inside the caller's transaction; the caller publishes the events after commit."""
    changes = await officer_store.set_officers_status(conn, officer_ids, status)
    return [
        await event_store.append_event(
            conn, EventType.OFFICER_STATUS, actor,
            {"officer_id": change.officer_id, "status": change.status},
            precinct_code=change.home_precinct, officer_id=change.officer_id,
        )
        for change in changes
    ]  # fmt: skip
