"""`micro110 serve` end to end: a real process on embedded or external servers."""

import json
import signal
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from dispatch.infra.connections import ping
from tests.conftest import Servers
from tests.serving import (
    alive,
    child_env,
    create_database,
    drop_database,
    embedded_pids,
    free_port,
    processes_under,
    run_cli,
    start_server,
)


def _logins(stdout: list[str]) -> dict[str, str]:
    logins = {}
    for line in stdout:
        parts = line.split()
        if len(parts) >= 4 and parts[0] in {"dispatcher", "officer"} and parts[2] == "/":
            logins[parts[1]] = parts[3]
    return logins


async def _get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with session.get(url) as response:
        return response.status, await response.json()


@pytest.mark.slow
async def test_serve_embedded_first_start_restart_and_clean_shutdown(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = child_env()

    server = await start_server(data, env=env)
    pids = embedded_pids(data)
    assert len(pids) == 2 and all(alive(p) for p in pids)
    first_logins = _logins(server.stdout)
    assert set(first_logins) == {"dispatcher", "officer"}
    async with aiohttp.ClientSession() as http:
        assert (await _get_json(http, f"{server.base_url}/healthz"))[0] == 200
        status, ready = await _get_json(http, f"{server.base_url}/readyz")
        assert status == 200, ready
        status, info = await _get_json(http, f"{server.base_url}/api/status")
        assert info["precincts"] == 11  # Nanjing's districts
        async with http.get(f"{server.base_url}/") as page:
            assert page.status == 200 and "micro-110" in await page.text()
        async with http.get(f"{server.base_url}/metrics") as metrics:
            assert "micro110_http_requests_total" in await metrics.text()

    # Another command on the same data directory while serve runs.
    code, out, err = await run_cli(
        "users", "add", "alice", "--role", "dispatcher", "--precinct", "320102",
        "--data-dir", str(data), env=env,
    )  # fmt: skip
    assert code == 0, err
    assert "password:" in out
    code, out, err = await run_cli("migrate", "--data-dir", str(data), env=env)
    assert code == 0, err
    assert "micro110: database at schema version" in out
    assert all(alive(p) for p in pids), "a CLI command must not stop the server it shares"

    assert await server.stop(signal.SIGTERM) == 0
    assert not [p for p in pids if alive(p)]
    assert processes_under(data) == []
    # Logs are JSON lines.
    for line in server.stderr_lines():
        json.loads(line)

    # A second start reuses the data: same logins, the user added meanwhile still there.
    server = await start_server(data, env=env)
    assert _logins(server.stdout) == first_logins
    pids = embedded_pids(data)
    assert await server.stop(signal.SIGINT) == 0
    assert not [p for p in pids if alive(p)]
    assert processes_under(data) == []

    # And with serve stopped, a command starts what it needs and stops it again.
    code, out, err = await run_cli("users", "list", "--data-dir", str(data), env=env)
    assert code == 0, err
    assert "alice" in out and "dispatcher" in out
    assert processes_under(data) == []
    code, out, err = await run_cli("migrate", "--data-dir", str(data), env=env)
    assert code == 0, err
    assert "micro110: database at schema version" in out
    assert processes_under(data) == []


async def _machine_servers_reachable() -> bool:
    try:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/14", socket_connect_timeout=2)
    try:
        await ping(client)
    except (OSError, aioredis.RedisError):
        return False
    finally:
        await client.aclose()
    return True


@pytest.mark.slow
async def test_serve_on_external_servers_embeds_nothing(tmp_path: Path, servers: Servers) -> None:
    # This machine kind runs PostgreSQL and Redis on 127.0.0.1; elsewhere the session's
    # own servers stand in as the "external" ones.  Either way, nothing may be embedded.
    if await _machine_servers_reachable():
        admin, redis_url = (
            "postgresql://postgres@127.0.0.1:5432/postgres",
            "redis://127.0.0.1:6379/14",
        )
    else:
        admin, redis_url = servers.admin_database_url, servers.redis_url
    name = "micro110_test_external"
    await drop_database(admin, name)
    database_url = await create_database(admin, name)
    data = tmp_path / "var"
    env = child_env({"DATABASE_URL": database_url, "REDIS_URL": redis_url}, external=True)
    try:
        server = await start_server(data, env=env)
        try:
            assert any("external (DATABASE_URL)" in line for line in server.stdout)
            assert not _logins(server.stdout)  # no demo accounts in production mode
            async with aiohttp.ClientSession() as http:
                status, ready = await _get_json(http, f"{server.base_url}/readyz")
                assert status == 200, ready
            assert not (data / "postgres").exists() and not (data / "redis").exists()
        finally:
            assert await server.stop() == 0
        conn = await asyncpg.connect(database_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM schema_version") >= 1
        finally:
            await conn.close()
    finally:
        await drop_database(admin, name)


@pytest.mark.parametrize(
    ("env", "setting", "exit_code"),
    [
        ({"MICRO110_PORT": "abc"}, "MICRO110_PORT", 2),
        ({"MICRO110_LOG_LEVEL": "LOUD"}, "MICRO110_LOG_LEVEL", 2),
        (
            {
                "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing",
                "REDIS_URL": "redis://127.0.0.1:1",
            },
            "DATABASE_URL",
            1,
        ),
    ],
)
async def test_bad_setting_exits_with_one_line(
    tmp_path: Path, env: dict[str, str], setting: str, exit_code: int
) -> None:
    code, _out, err = await run_cli(
        "serve", "--data-dir", str(tmp_path / "var"), "--port", str(free_port()),
        env=child_env(env, external=True),
    )  # fmt: skip
    assert code == exit_code
    errors = [line for line in err.splitlines() if line.startswith("micro110: error")]
    assert len(errors) == 1 and setting in errors[0], err
    assert "Traceback" not in err
