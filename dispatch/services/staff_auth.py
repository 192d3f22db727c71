"""Staff login, logout and per-request authentication.

A staff token is a signed, expiring JWT naming a session row; logout revokes the
session, so a token stops working at once even before it expires.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import redis.asyncio as aioredis
import redis.exceptions

from dispatch.auth.passwords import Passwords
from dispatch.auth.tokens import TokenKind, TokenSigner
from dispatch.domain.errors import Forbidden, RateLimited, Unauthorized
from dispatch.domain.events import Actor, EventType
from dispatch.domain.users import Role, User, UserId
from dispatch.infra.clock import Clock
from dispatch.infra.publisher import Publisher
from dispatch.services.users import authenticate
from dispatch.store import events as event_store
from dispatch.store import users as user_store

logger = logging.getLogger(__name__)

# Wrong passwords allowed per account and client address in the window.  Keyed on the
# client too, so nobody can lock a dispatcher out by failing logins in their name from
# elsewhere; the per-account ceiling still stops a guesser spread over many addresses.
FAILED_LOGINS_ALLOWED = 10
FAILED_LOGINS_PER_ACCOUNT = 100
FAILED_LOGIN_WINDOW_S = 15 * 60


@dataclass(frozen=True, slots=True)
class StaffSession:
    user: User
    session_id: uuid.UUID
    expires_at: datetime

    @property
    def actor(self) -> Actor:
        return Actor.staff(self.user.id)

    def require(self, *roles: Role) -> None:
        if self.user.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this needs the role {allowed}; you are {self.user.role.value}")


@dataclass(frozen=True, slots=True)
class StaffAuth:
    pool: asyncpg.Pool
    redis: aioredis.Redis
    passwords: Passwords
    signer: TokenSigner
    clock: Clock
    ttl: timedelta
    # Logins and logouts go to the feed too: no client is shown them, but their seqs
    # must not leave gaps that live events wait on (signaling/hub.py).
    publisher: Publisher

    @staticmethod
    def _failure_keys(username: str, client: str) -> list[str]:
        name = username.lower()
        return [f"m110:login-failures:{name}:{client}", f"m110:login-failures:{name}"]

    async def _count_failure(self, username: str, client: str) -> None:
        try:
            # SET NX EX starts the window once (EXPIRE NX needs Redis 7; embedded is 6.2).
            pipe = self.redis.pipeline(transaction=True)
            for key in self._failure_keys(username, client):
                pipe.set(key, 0, ex=FAILED_LOGIN_WINDOW_S, nx=True)
                pipe.incr(key)
            await pipe.execute()
        except (OSError, redis.exceptions.RedisError):
            logger.exception("login failure counter unavailable")

    async def _locked_out(self, username: str, client: str) -> bool:
        try:
            here, anywhere = await self.redis.mget(self._failure_keys(username, client))
        except (OSError, redis.exceptions.RedisError):
            return False
        return (
            int(here or 0) >= FAILED_LOGINS_ALLOWED
            or int(anywhere or 0) >= FAILED_LOGINS_PER_ACCOUNT
        )

    async def login(
        self, username: str, password: str, client: str = "unknown"
    ) -> tuple[str, StaffSession]:
        """A session for the right password; `client` is the caller's address."""
        if await self._locked_out(username, client):
            raise RateLimited("too many failed logins for this account; wait 15 minutes")
        user = await authenticate(self.pool, self.passwords, username, password)
        if user is None:
            await self._count_failure(username, client)
            raise Unauthorized("wrong username or password")
        now = self.clock.now()
        session_id = uuid.uuid4()
        token, expires = self.signer.issue(
            TokenKind.STAFF,
            str(user.id),
            now=now,
            ttl=self.ttl,
            sid=str(session_id),
            role=user.role.value,
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO staff_sessions (id, user_id, created_at, expires_at)
                   VALUES ($1, $2, $3, $4)""",
                session_id,
                user.id,
                now,
                expires,
            )
            event = await event_store.append_event(
                conn,
                EventType.STAFF_LOGIN,
                Actor.staff(user.id),
                {"user_id": user.id, "session_id": str(session_id)},
            )
        await self.publisher.publish([event])
        return token, StaffSession(user, session_id, expires)

    async def authenticate(self, token: str) -> StaffSession:
        now = self.clock.now()
        claims = self.signer.verify(token, TokenKind.STAFF, now=now)
        try:
            session_id = uuid.UUID(str(claims.extra.get("sid")))
            user_id = UserId(int(claims.subject))
        except ValueError:
            raise Unauthorized("the token names no session", field="token") from None
        async with self.pool.acquire() as conn:
            found = await user_store.get_session_user(conn, session_id)
        if found is None or found.user.id != user_id or found.revoked_at is not None:
            raise Unauthorized("this session has ended; log in again", field="token")
        if not found.user.active:
            raise Unauthorized("this account is disabled", field="token")
        return StaffSession(found.user, session_id, found.expires_at)

    async def logout(self, session: StaffSession) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE staff_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                session.session_id,
                self.clock.now(),
            )
            event = await event_store.append_event(
                conn,
                EventType.STAFF_LOGOUT,
                session.actor,
                {"user_id": session.user.id, "session_id": str(session.session_id)},
            )
        await self.publisher.publish([event])
