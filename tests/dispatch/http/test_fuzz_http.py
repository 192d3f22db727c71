"""Fuzzing the HTTP API from its own OpenAPI document: no input is answered 5xx.

Schemathesis draws requests for every operation of `/api/openapi.json` (bodies, path
and query parameters, headers, valid and not), each sent with every kind of token:
none, garbage, a citizen's, and a dispatcher's, an officer's, a commander's and an
administrator's.  The server is a real `micro110 serve` process on the test session's
PostgreSQL (a database of its own) and Redis.  Bounded for CI: a dozen examples per
operation, derandomised so a failure reproduces.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.auth.passwords import Passwords
from dispatch.domain.events import Actor
from dispatch.domain.users import Role
from dispatch.services.users import create_user
from dispatch.store.database import create_pool
from tests.conftest import Servers
from tests.serving import child_env, create_database, drop_database, start_server


@schemathesis.serializer("application/sdp")
def _sdp(ctx: Any, value: Any) -> bytes:
    """The video-call endpoints take an SDP offer as text: what was drawn, as it is."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


# A deeper search off CI: MICRO110_FUZZ_EXAMPLES=300 MICRO110_FUZZ_RANDOM=1 ./dev test
# tests/dispatch/http/test_fuzz_http.py (new draws each run instead of the same ones).
EXAMPLES_PER_OPERATION = int(os.environ.get("MICRO110_FUZZ_EXAMPLES", "12"))
RANDOM = os.environ.get("MICRO110_FUZZ_RANDOM") == "1"
# A login hashes the password (deliberately slow): fewer of those.
EXAMPLES = {"POST /api/auth/login": min(4, EXAMPLES_PER_OPERATION)}
PASSWORD = "fuzz-password-1"


@dataclass(frozen=True)
class Served:
    base_url: str
    tokens: dict[str, str | None]
    stderr: Path


async def _post(base: str, path: str, body: dict[str, str]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.post(f"{base}{path}", json=body) as answer:
        assert answer.status in (200, 201), await answer.text()
        decoded: dict[str, Any] = await answer.json()
        return decoded


async def _login(base: str, username: str, password: str) -> str:
    answer = await _post(base, "/api/auth/login", {"username": username, "password": password})
    token: str = answer["token"]
    return token


@pytest.fixture(scope="module")
async def served(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    """One `micro110 serve` with the demo city on a fresh database of the session's
    PostgreSQL and the session's Redis, with accounts of every role."""
    name = f"micro110_test_fuzz_{secrets.token_hex(3)}"
    database_url = await create_database(servers.admin_database_url, name)
    data_dir = tmp_path_factory.mktemp("fuzz") / "var"
    env = child_env(
        {"DATABASE_URL": database_url, "REDIS_URL": servers.redis_url,
         "MICRO110_LOG_LEVEL": "WARNING", "MICRO110_DEMO": "true",
         "MICRO110_BACKGROUND_TASKS": "false", "MICRO110_REGISTRATIONS_PER_MINUTE": "0"},
        external=True,
    )  # fmt: skip
    server = await start_server(data_dir, env=env)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        base = server.base_url
        demo = json.loads((data_dir / "demo-credentials.json").read_text())
        tokens: dict[str, str | None] = {"none": None, "garbage": "not.a.token"}
        for username, password in demo.items():
            role = "dispatcher" if "dispatch" in username else "officer"
            tokens[role] = await _login(base, username, password)
        for role in (Role.COMMANDER, Role.ADMIN):
            await create_user(
                pool, Passwords(), username=f"fuzz-{role.value}", password=PASSWORD,
                role=role, precincts=frozenset({"320102"}), actor=Actor.system("test"),
            )  # fmt: skip
            tokens[role.value] = await _login(base, f"fuzz-{role.value}", PASSWORD)
        citizen = await _post(base, "/api/citizens", {"device_id": "fuzz-device-0001"})
        tokens["citizen"] = citizen["token"]
        assert server.stderr_path is not None
        yield Served(base, tokens, server.stderr_path)
    finally:
        await pool.close()
        await server.stop()
        await drop_database(servers.admin_database_url, name)


@pytest.mark.timeout(max(300, 25 * EXAMPLES_PER_OPERATION))  # ~40 s on an idle machine at 12
def test_no_request_is_answered_5xx_whatever_the_token(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.base_url}/api/openapi.json")
    kinds = sorted(served.tokens)
    failures: list[str] = []
    operations = 0
    spent: dict[str, float] = {}  # seconds per operation, shown when the test fails
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises here
        operations += 1

        @settings(
            max_examples=EXAMPLES.get(operation.label, EXAMPLES_PER_OPERATION), deadline=None, derandomize=not RANDOM,
            database=None, suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(case=operation.as_strategy(), kind=st.sampled_from(kinds))
        def probe(case: schemathesis.Case[Any], kind: str) -> None:
            token = served.tokens[kind]
            if case.headers is not None:
                case.headers.pop("Authorization", None)
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            response = case.call(base_url=served.base_url, headers=headers, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} ({kind} token) -> "
                    f"{response.status_code} {response.text[:200]}"
                )

        began = time.monotonic()
        probe()
        spent[operation.label] = round(time.monotonic() - began, 1)
    assert operations >= 40  # every documented endpoint was tried
    assert not failures, "\n".join(failures[:20]) + f"\n{spent}"
    unhandled = [line for line in served.stderr.read_text().splitlines() if "unhandled" in line]
    assert not unhandled, unhandled[:3]
