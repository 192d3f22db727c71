"""PostgreSQL not running at all: every way of noticing it is `DATABASE_UNAVAILABLE`
(answered 503 with Retry-After), never an error of the request's own (500)."""

from pathlib import Path

import pytest

from dispatch.infra.connections import DATABASE_UNAVAILABLE
from dispatch.store.database import create_pool


async def test_a_stopped_server_on_a_unix_socket_is_unavailable(tmp_path: Path) -> None:
    # A stopped PostgreSQL leaves no socket file: connecting fails with ENOENT, which
    # must not read as a file of the request's own that is missing.
    pool = await create_pool(
        f"postgresql://postgres@/micro110?host={tmp_path}", min_size=0, max_size=1
    )
    try:
        with pytest.raises(DATABASE_UNAVAILABLE) as raised:
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        assert isinstance(raised.value, ConnectionRefusedError)
        assert "not running" in str(raised.value)
    finally:
        await pool.close()
