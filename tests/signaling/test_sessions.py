"""A staff feed lives only as long as its session: logout or a disabled account ends it."""

import asyncio
from collections.abc import Callable

import asyncpg

from dispatch.app import SIGNALING
from tests.conftest import Client, Staff, app_of
from tests.signaling.feeds import FeedClient


async def test_logged_out_and_disabled_staff_are_disconnected(
    app_client: Client, staff: Staff, pg: asyncpg.Pool, feed: Callable[[str, str], FeedClient]
) -> None:
    dispatcher = feed("/console", staff.dispatcher.token)
    officer = feed("/officer", staff.officer.token)
    commander = feed("/console", staff.commander.token)
    for client in (dispatcher, officer, commander):
        await client.go_live()
    signaling = app_of(app_client)[SIGNALING]
    assert await signaling.sweep_sessions() == 0

    response = await app_client.post("/api/auth/logout", headers=staff.dispatcher.headers)
    assert response.status in (200, 204)
    async with pg.acquire() as conn:
        await conn.execute("UPDATE users SET active = false WHERE id = $1", staff.officer.id)
    # The logout ended the dispatcher's feed already; the sweep finds the disabled officer.
    assert await signaling.sweep_sessions() == 1

    for client in (dispatcher, officer):
        await client.wait_for(lambda events: any(n == "session.ended" for n, _ in events))
        async with asyncio.timeout(10):
            await client.sio.wait()  # returns once the server has disconnected it
        assert not client.sio.connected
    reasons = [
        d["reason"] for c in (dispatcher, officer) for n, d in c.events if n == "session.ended"
    ]
    assert any("log in again" in r for r in reasons) and any("disabled" in r for r in reasons)
    # The commander's session is untouched.
    assert commander.sio.connected
    assert await signaling.sweep_sessions() == 0
    await commander.close()
