"""Staff login, logout and per-request authentication.

A staff token is a signed, expiring JWT naming a session row; logout revokes the
session, so a token stops working at once even before it expires.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from dispatch.auth.passwords import Passwords
from dispatch.auth.tokens import TokenKind, TokenSigner
from dispatch.domain.errors import Forbidden, RateLimited, Unauthorized
from dispatch.domain.events import Actor, EventType
from dispatch.domain.users import Role, User, UserId
from dispatch.infra.batching import GroupRead
from dispatch.infra.clock import Clock
from dispatch.infra.publisher import Publisher
from dispatch.infra.throttle import LoginBackoff
from dispatch.services.users import authenticate
from dispatch.store import events as event_store
from dispatch.store import users as user_store

logger = logging.getLogger(__name__)


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
    passwords: Passwords
    signer: TokenSigner
    clock: Clock
    ttl: timedelta
    # Logins and logouts go to the feed too: no client is shown them, but their seqs
    # must not leave gaps that live events wait on (signaling/hub.py).
    publisher: Publisher
    # Failed logins slow down their network for that account (never a lockout).
    backoff: LoginBackoff
    # Every request reads its session afresh; those that arrive together, in one round
    # trip (GroupRead).
    _sessions: GroupRead[uuid.UUID, user_store.SessionUser] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sessions", GroupRead(self._read_sessions))

    async def _read_sessions(
        self, session_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, user_store.SessionUser]:
        async with self.pool.acquire() as conn:
            return await user_store.get_session_users(conn, session_ids)

    async def login(
        self, username: str, password: str, client: str = "unknown"
    ) -> tuple[str, StaffSession]:
        """A session for the right password; `client` is the caller's address."""
        wait_s = await self.backoff.wait_s(username, client)
        if wait_s is not None:
            raise RateLimited(
                f"too many failed logins for this account from your network; try again in "
                f"{wait_s} s",
                retry_after_s=wait_s,
            )
        user = await authenticate(self.pool, self.passwords, username, password)
        if user is None:
            await self.backoff.failed(username, client)
            raise Unauthorized("wrong username or password")
        await self.backoff.succeeded(username, client)
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
            await user_store.insert_staff_session(conn, session_id, user.id, now, expires)
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
        found = await self._sessions.get(session_id)
        if found is None or found.user.id != user_id or found.revoked_at is not None:
            raise Unauthorized("this session has ended; log in again", field="token")
        if not found.user.active:
            raise Unauthorized("this account is disabled", field="token")
        return StaffSession(found.user, session_id, found.expires_at)

    async def logout(self, session: StaffSession) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await user_store.revoke_staff_session(conn, session.session_id, self.clock.now())
            event = await event_store.append_event(
                conn,
                EventType.STAFF_LOGOUT,
                session.actor,
                {"user_id": session.user.id, "session_id": str(session.session_id)},
            )
        await self.publisher.publish([event])
