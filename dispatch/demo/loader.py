"""The demo city: Nanjing's districts as precincts, a demo dispatcher and officer.

Passwords are random, generated once per data directory and kept (mode 0600) in
`demo-credentials.json` there, so a second start prints the same logins.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from dispatch.auth.passwords import Passwords, generate_password
from dispatch.domain.events import Actor
from dispatch.domain.users import Role
from dispatch.infra.precinct_registry import IndexCache
from dispatch.services.precincts import import_precincts
from dispatch.services.users import create_user
from dispatch.store import precincts as precinct_store
from dispatch.store import users as user_store
from geo.datum import Datum

logger = logging.getLogger(__name__)

DEMO_FILE = "nanjing_320100_districts_wgs84.geojson"
DEMO_SOURCE = f"demo:{DEMO_FILE}"
XUANWU = "320102"


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    role: Role
    precincts: tuple[str, ...]


def _credentials_path(data_dir: Path) -> Path:
    return data_dir / "demo-credentials.json"


def _read_credentials(path: Path) -> dict[str, str]:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in stored.items()} if isinstance(stored, dict) else {}


def _write_credentials(path: Path, credentials: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(credentials, handle, indent=2)


async def ensure_demo_city(
    pool: asyncpg.Pool, passwords: Passwords, data_dir: Path, *, cache: IndexCache | None = None
) -> list[DemoLogin]:
    """Load the demo city and accounts if missing; return the logins to print."""
    actor = Actor.system("demo")
    async with pool.acquire() as conn:
        has_precincts = await precinct_store.any_precinct(conn)
    if not has_precincts:
        collection = json.loads(
            resources.files("dispatch.demo").joinpath(DEMO_FILE).read_text(encoding="utf-8")
        )
        await import_precincts(
            pool,
            collection,
            name_property="name",
            code_property="adcode",
            datum=Datum.WGS84,
            replace=False,
            source=DEMO_SOURCE,
            actor=actor,
            cache=cache,
        )
    async with pool.acquire() as conn:
        all_codes = tuple(await precinct_store.active_codes(conn))
    wanted = [
        ("dispatcher", Role.DISPATCHER, all_codes, None),
        ("officer", Role.OFFICER, (XUANWU,) if XUANWU in all_codes else all_codes[:1], "XW-01"),
    ]
    path = _credentials_path(data_dir)
    credentials = _read_credentials(path)
    logins = []
    for username, role, precincts, callsign in wanted:
        async with pool.acquire() as conn:
            exists = await user_store.username_taken(conn, username)
        if not exists:
            credentials[username] = generate_password()
            _write_credentials(path, credentials)  # before the user exists: never lose it
            await create_user(
                pool,
                passwords,
                username=username,
                password=credentials[username],
                role=role,
                display_name=f"Demo {role.value}",
                precincts=frozenset(precincts),
                callsign=callsign,
                actor=actor,
            )
            logger.info("demo account created", extra={"username": username, "role": role.value})
        if username in credentials:
            logins.append(DemoLogin(username, credentials[username], role, precincts))
    return logins
