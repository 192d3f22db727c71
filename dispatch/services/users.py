"""Staff account use-cases."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from dispatch.auth.passwords import Passwords
from dispatch.domain.errors import BadRequest, Conflict
from dispatch.domain.events import Actor, EventType
from dispatch.domain.users import Role, User, UserId, validate_password, validate_username
from dispatch.store import events as event_store
from dispatch.store import users as user_store

logger = logging.getLogger(__name__)


async def create_user(
    pool: asyncpg.Pool,
    passwords: Passwords,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str | None = None,
    precincts: frozenset[str] = frozenset(),
    callsign: str | None = None,
    actor: Actor,
) -> User:
    """Create a staff account (and the officer record for an officer), audited."""
    try:
        username = validate_username(username)
    except ValueError as exc:
        raise BadRequest(str(exc), field="username") from exc
    try:
        validate_password(password)
    except ValueError as exc:
        raise BadRequest(str(exc), field="password") from exc
    if role in (Role.DISPATCHER, Role.OFFICER) and not precincts:
        raise BadRequest(f"a {role} needs at least one precinct", field="precincts")
    if role is Role.OFFICER and not callsign:
        callsign = username.upper()
    # Hash outside the transaction: argon2 is deliberately slow.
    password_hash = passwords.hash(password)
    async with pool.acquire() as conn, conn.transaction():
        if await user_store.username_taken(conn, username):
            raise Conflict(f"username {username!r} is taken", field="username")
        missing = await user_store.unknown_precincts(conn, precincts)
        if missing:
            raise BadRequest(f"unknown precinct(s): {', '.join(missing)}", field="precincts")
        try:
            user = await user_store.insert_user(
                conn,
                username=username,
                display_name=display_name or username,
                role=role,
                password_hash=password_hash,
                precincts=precincts,
            )
            if role is Role.OFFICER:
                assert callsign is not None
                await user_store.insert_officer(conn, user.id, callsign)
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"username or callsign already taken: {exc.detail}") from exc
        await event_store.append_event(
            conn,
            EventType.USER_CREATED,
            actor,
            {
                "user_id": user.id,
                "username": user.username,
                "role": role.value,
                "precincts": sorted(precincts),
            },
        )
    logger.info("user created", extra={"user_id": user.id, "role": role.value})
    return user


async def authenticate(
    pool: asyncpg.Pool, passwords: Passwords, username: str, password: str
) -> User | None:
    async with pool.acquire() as conn:
        found = await user_store.get_user_with_hash(conn, username)
    # One argon2 verification whatever the case: unknown, disabled and wrong look alike.
    # In a thread: argon2 is deliberately slow, and a guesser must not stall the loop.
    if found is None:
        await asyncio.to_thread(passwords.verify_nobody, password)
        return None
    user, password_hash = found
    if not await asyncio.to_thread(passwords.verify, password_hash, password) or not user.active:
        return None
    if passwords.needs_rehash(password_hash):
        async with pool.acquire() as conn:
            await user_store.set_password_hash(conn, UserId(user.id), passwords.hash(password))
    return user


async def list_users(pool: asyncpg.Pool) -> list[User]:
    """Every staff account, for the operator's `micro110 users list`."""
    async with pool.acquire() as conn:
        return await user_store.list_users(conn)
