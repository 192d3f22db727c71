"""Citizen use-cases: registration, tokens, and identity verification."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from dispatch.auth.identity_providers import AttestationVerifier, SmsSender
from dispatch.auth.tokens import TokenKind, TokenSigner
from dispatch.domain.errors import (
    BadRequest,
    Conflict,
    DispatchError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
)
from dispatch.domain.events import Actor, ActorKind, EventType, StoredEvent
from dispatch.domain.identity import (
    InvalidNationalId,
    InvalidPhoneNumber,
    VerificationLevel,
    hash_national_id,
    hash_phone,
    mask_phone,
    normalise_phone,
    parse_national_id,
)
from dispatch.domain.incidents import CitizenId
from dispatch.infra.batching import GroupRead
from dispatch.infra.clock import Clock
from dispatch.infra.connections import Keys
from dispatch.infra.publisher import Publisher
from dispatch.infra.throttle import WindowLimit, address_group
from dispatch.store import citizens as citizen_store
from dispatch.store import events as event_store

logger = logging.getLogger(__name__)

CODE_TTL = timedelta(minutes=5)
CODE_ATTEMPTS = 5
CODES_PER_HOUR = 5
REFRESH_TTL = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class CitizenTokens:
    citizen_id: CitizenId
    token: str
    token_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    verification: VerificationLevel


@dataclass(frozen=True, slots=True)
class CitizenServices:
    """What the citizen use-cases need, built once by the composition root."""

    pool: asyncpg.Pool
    signer: TokenSigner
    keys: Keys
    clock: Clock
    sms: SmsSender
    attestations: AttestationVerifier
    access_ttl: timedelta
    # Every event goes to the feed, even those no client is shown (their seqs must
    # not leave gaps that live events then wait on; see signaling/hub.py).
    publisher: Publisher
    # New accounts per client address (see Settings.registrations_per_minute).
    registrations: WindowLimit | None = None
    # Real-name attempts per citizen and per network: no trying ID numbers until one fits.
    real_name_per_citizen: WindowLimit | None = None
    real_name_per_network: WindowLimit | None = None
    # Codes sent to one phone number an hour (Settings.sms_codes_per_phone_hour).
    codes_per_phone_hour: int = 3
    # Every request reads the citizen's sign-in afresh; those that arrive together, in
    # one round trip (GroupRead).
    _sign_ins: GroupRead[uuid.UUID, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sign_ins", GroupRead(self._read_sign_ins))

    async def _read_sign_ins(self, citizen_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        async with self.pool.acquire() as conn:
            return await citizen_store.sign_in_generations(conn, citizen_ids)

    def _tokens(
        self, citizen_id: CitizenId, level: VerificationLevel, generation: int, sign_in: int
    ) -> CitizenTokens:
        now = self.clock.now()
        token, expires = self.signer.issue(
            TokenKind.CITIZEN, str(citizen_id), now=now, ttl=self.access_ttl, lvl=level.value,
            sg=sign_in,
        )  # fmt: skip
        refresh, refresh_expires = self.signer.issue(
            TokenKind.CITIZEN_REFRESH, str(citizen_id), now=now, ttl=REFRESH_TTL, gen=generation
        )
        return CitizenTokens(citizen_id, token, expires, refresh, refresh_expires, level)

    async def authenticate(self, token: str) -> CitizenId:
        """The citizen a valid, unexpired access token names, as long as its sign-in has
        not ended (a replayed refresh token, or "sign out everywhere")."""
        claims = self.signer.verify(token, TokenKind.CITIZEN, now=self.clock.now())
        try:
            citizen_id = CitizenId(uuid.UUID(claims.subject))
        except ValueError:
            raise Unauthorized("the token names no citizen", field="token") from None
        current = await self._sign_ins.get(citizen_id)
        if current is None:
            raise Unauthorized("unknown citizen", field="token")
        if claims.extra.get("sg", 0) != current:
            raise Unauthorized(
                "this sign-in has ended (signed out everywhere, or a reused refresh token "
                "was detected); register again",
                field="token",
            )
        return citizen_id

    async def register(self, device_id: str, client: str = "unknown") -> CitizenTokens:
        """A new anonymous account; `client` is the caller's address."""
        if self.registrations is not None:
            wait_s = await self.registrations.count(address_group(client))
            if wait_s is not None:
                raise RateLimited(
                    f"too many new accounts from this network; try again in {wait_s} s",
                    retry_after_s=wait_s,
                )
        citizen_id = CitizenId(uuid.uuid4())
        async with self.pool.acquire() as conn, conn.transaction():
            citizen = await citizen_store.insert_citizen(conn, citizen_id, device_id)
            event = await event_store.append_event(
                conn,
                EventType.CITIZEN_REGISTERED,
                Actor(ActorKind.CITIZEN, str(citizen_id)),
                {"citizen_id": str(citizen_id)},
                citizen_id=citizen_id,
            )
        await self.publisher.publish([event])
        return self._tokens(
            citizen.id, citizen.verification, citizen.token_generation, citizen.sign_in_generation
        )

    async def refresh(self, refresh_token: str) -> CitizenTokens:
        claims = self.signer.verify(refresh_token, TokenKind.CITIZEN_REFRESH, now=self.clock.now())
        try:
            citizen_id = CitizenId(uuid.UUID(claims.subject))
        except ValueError:
            raise Unauthorized("the token names no citizen", field="refresh_token") from None
        event: StoredEvent | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            citizen = await citizen_store.get_citizen(conn, citizen_id, for_update=True)
            if citizen is None:
                raise Unauthorized("unknown citizen", field="refresh_token")
            replayed = claims.extra.get("gen") != citizen.token_generation
            if replayed:
                # A refresh token used twice leaked: end every sign-in of the citizen, the
                # thief's and the owner's, access tokens included (checked per request).
                event = await self._end_sign_ins(conn, citizen_id, "refresh_token_reused")
            else:
                generation = await citizen_store.bump_token_generation(conn, citizen_id)
        if event is not None:
            await self.publisher.publish([event])
            logger.warning("replayed refresh token", extra={"citizen_id": str(citizen_id)})
            raise Unauthorized("this refresh token was already used", field="refresh_token")
        return self._tokens(
            citizen_id, citizen.verification, generation, citizen.sign_in_generation
        )

    async def sign_out_everywhere(self, citizen_id: CitizenId) -> None:
        """Revoke every token the citizen holds, on every device; audited."""
        async with self.pool.acquire() as conn, conn.transaction():
            event = await self._end_sign_ins(conn, citizen_id, "signed_out_everywhere")
        await self.publisher.publish([event])

    async def _end_sign_ins(
        self, conn: asyncpg.Connection, citizen_id: CitizenId, reason: str
    ) -> StoredEvent:
        await citizen_store.end_sign_ins(conn, citizen_id)
        return await event_store.append_event(
            conn,
            EventType.CITIZEN_SIGNED_OUT,
            Actor(ActorKind.CITIZEN, str(citizen_id)),
            {"citizen_id": str(citizen_id), "reason": reason},
            citizen_id=citizen_id,
        )

    async def start_phone(
        self, citizen_id: CitizenId, raw_phone: str
    ) -> tuple[uuid.UUID, datetime]:
        try:
            phone = normalise_phone(raw_phone)
        except InvalidPhoneNumber as exc:
            raise BadRequest(str(exc), field="phone") from exc
        now = self.clock.now()
        code = f"{secrets.randbelow(10**6):06d}"
        challenge_id = uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            if await citizen_store.get_citizen(conn, citizen_id, for_update=True) is None:
                raise Unauthorized("unknown citizen", field="token")
            if (
                await citizen_store.recent_challenges(conn, citizen_id, now - timedelta(hours=1))
                >= CODES_PER_HOUR
            ):
                raise RateLimited("too many codes requested; try again later", field="phone")
            # Per phone too, whichever accounts ask: nobody floods a number with codes.
            phone_hash = hash_phone(phone, self.keys.id_hash_key)
            sent = await citizen_store.recent_codes_to_phone(
                conn, phone_hash, now - timedelta(hours=1)
            )
            if sent >= self.codes_per_phone_hour:
                raise RateLimited(
                    "too many codes were sent to this number; try again in an hour",
                    field="phone",
                    retry_after_s=3600,
                )
            await citizen_store.insert_challenge(
                conn,
                challenge_id,
                citizen_id,
                phone_hash=phone_hash,
                phone_masked=mask_phone(phone),
                code_hash=self._code_hash(challenge_id, code),
                expires_at=now + CODE_TTL,
            )
        # After commit: a code is only ever sent for a challenge that exists.
        await self.sms.send_code(phone, code)
        return challenge_id, now + CODE_TTL

    def _code_hash(self, challenge_id: uuid.UUID, code: str) -> str:
        message = f"{challenge_id}:{code}".encode()
        return hmac.new(self.keys.secret_key, message, hashlib.sha256).hexdigest()

    async def verify_phone(
        self, citizen_id: CitizenId, challenge_id: uuid.UUID, code: str
    ) -> VerificationLevel:
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            challenge = await citizen_store.get_challenge_for_update(conn, challenge_id)
            if challenge is None or challenge.citizen_id != citizen_id:
                raise NotFound("no such verification code request", field="challenge_id")
            if challenge.consumed_at is not None:
                raise BadRequest("this code was already used", field="code")
            if challenge.expires_at < now:
                raise BadRequest("the code has expired; request a new one", field="code")
            if challenge.attempts >= CODE_ATTEMPTS:
                raise RateLimited("too many wrong codes; request a new one", field="code")
            if not hmac.compare_digest(challenge.code_hash, self._code_hash(challenge_id, code)):
                await citizen_store.count_attempt(conn, challenge_id)
                # Raised outside the block so the attempt counter commits.
                wrong = BadRequest("the code is not right", field="code")
            else:
                wrong = None
                await citizen_store.consume_challenge(conn, challenge_id)
                await citizen_store.set_phone(
                    conn, citizen_id, challenge.phone_hash, challenge.phone_masked
                )
                event = await event_store.append_event(
                    conn,
                    EventType.CITIZEN_VERIFIED,
                    Actor(ActorKind.CITIZEN, str(citizen_id)),
                    {"level": VerificationLevel.PHONE.value, "provider": "sms"},
                    citizen_id=citizen_id,
                )
                citizen = await citizen_store.get_citizen(conn, citizen_id)
                assert citizen is not None
                level = citizen.verification
        if wrong is not None:
            raise wrong
        await self.publisher.publish([event])
        return level

    async def verify_real_name(
        self, citizen_id: CitizenId, name: str, raw_id: str, client: str = "unknown"
    ) -> VerificationLevel:
        """Name + national ID number, matched against the registry.  Attempts are limited
        per citizen and per network (so the registry is no oracle for ID numbers); every
        failure is audited; one ID is bound to one account at a time."""
        for limit, who, scope in (
            (self.real_name_per_citizen, str(citizen_id), "account"),
            (self.real_name_per_network, address_group(client), "network"),
        ):
            wait_s = await limit.count(who) if limit is not None else None
            if wait_s is not None:
                raise RateLimited(
                    f"too many identity checks from this {scope}; try again in {wait_s} s",
                    field="national_id",
                    retry_after_s=wait_s,
                )
        try:
            national_id = parse_national_id(raw_id, today=self.clock.now().date())
        except InvalidNationalId as exc:
            await self._verification_failed(citizen_id, "registry", "invalid_number")
            raise BadRequest(str(exc), field="national_id") from exc
        id_hash = hash_national_id(national_id.number, self.keys.id_hash_key)
        name_hash = _name_hash(name, self.keys.id_hash_key)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await citizen_store.registry_match(conn, id_hash, name_hash):
                refused: DispatchError | None = Forbidden(
                    "the name and ID number were not confirmed by the identity registry",
                    field="national_id",
                )
                event = await self._failure_event(conn, citizen_id, "registry", "no_match")
            elif holder := await citizen_store.national_id_holder(conn, id_hash, citizen_id):
                refused = Conflict(
                    "this ID number is already bound to another account; one person, one "
                    "account (call 110 in an emergency: your report is taken anyway)",
                    field="national_id",
                )
                event = await self._failure_event(
                    conn, citizen_id, "registry", "id_bound_elsewhere", holder=str(holder)
                )
            else:
                refused = None
                level, event = await self._record_level(
                    conn,
                    citizen_id,
                    VerificationLevel.REAL_NAME,
                    provider="registry",
                    real_name=name.strip(),
                    id_hash=id_hash,
                    id_masked=national_id.masked,
                )
        await self.publisher.publish([event])
        if refused is not None:
            logger.warning(
                "real-name verification refused",
                extra={"citizen_id": str(citizen_id), "reason": refused.code},
            )
            raise refused
        return level

    async def _verification_failed(self, citizen_id: CitizenId, provider: str, reason: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            event = await self._failure_event(conn, citizen_id, provider, reason)
        await self.publisher.publish([event])

    @staticmethod
    async def _failure_event(
        conn: asyncpg.Connection, citizen_id: CitizenId, provider: str, reason: str, **extra: str
    ) -> StoredEvent:
        return await event_store.append_event(
            conn,
            EventType.CITIZEN_VERIFICATION_FAILED,
            Actor(ActorKind.CITIZEN, str(citizen_id)),
            {"provider": provider, "reason": reason, **extra},
            citizen_id=citizen_id,
        )

    async def verify_attestation(self, citizen_id: CitizenId, token: str) -> VerificationLevel:
        attestation = self.attestations.verify(token, now=self.clock.now())
        if attestation.subject != str(citizen_id):
            raise Forbidden("the attestation was issued for another citizen", field="token")
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await citizen_store.remember_nonce(
                conn, attestation.provider, attestation.nonce, attestation.expires_at
            )
            if not fresh:
                raise Unauthorized(
                    "this attestation was already used (replayed nonce)", field="token"
                )
            id_hash = id_masked = None
            if attestation.national_id is not None:
                id_hash = hash_national_id(attestation.national_id.number, self.keys.id_hash_key)
                id_masked = attestation.national_id.masked
            holder = (
                await citizen_store.national_id_holder(conn, id_hash, citizen_id)
                if id_hash is not None
                else None
            )
            if holder is not None:
                event = await self._failure_event(
                    conn, citizen_id, attestation.provider, "id_bound_elsewhere",
                    holder=str(holder),
                )  # fmt: skip
            else:
                level, event = await self._record_level(
                    conn,
                    citizen_id,
                    attestation.level,
                    provider=attestation.provider,
                    real_name=attestation.name,
                    id_hash=id_hash,
                    id_masked=id_masked,
                )
        await self.publisher.publish([event])
        if holder is not None:
            raise Conflict(
                "this ID number is already bound to another account; one person, one account",
                field="token",
            )
        return level

    async def _record_level(
        self,
        conn: asyncpg.Connection,
        citizen_id: CitizenId,
        level: VerificationLevel,
        *,
        provider: str,
        real_name: str | None,
        id_hash: str | None,
        id_masked: str | None,
    ) -> tuple[VerificationLevel, StoredEvent]:
        citizen = await citizen_store.get_citizen(conn, citizen_id, for_update=True)
        if citizen is None:
            raise Unauthorized("unknown citizen", field="token")
        level = max(level, citizen.verification, key=lambda v: v.rank)  # never downgrade
        await citizen_store.set_real_name(
            conn,
            citizen_id,
            level=level,
            real_name=real_name,
            national_id_hash=id_hash,
            national_id_masked=id_masked,
            provider=provider,
        )
        event = await event_store.append_event(
            conn,
            EventType.CITIZEN_VERIFIED,
            Actor(ActorKind.CITIZEN, str(citizen_id)),
            {"level": level.value, "provider": provider},
            citizen_id=citizen_id,
        )
        return level, event

    async def read_identity(
        self, citizen_id: CitizenId, *, actor: Actor, purpose: str
    ) -> dict[str, Any]:
        """A reporter's identity for staff; every read is audited in the same transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await citizen_store.read_identity(
                conn, citizen_id, actor_kind=actor.kind.value, actor_id=actor.id, purpose=purpose
            )
        if row is None:
            raise NotFound("no such citizen")
        return {
            "citizen_id": str(row.id),
            "verification": row.verification.value,
            "name": row.real_name,
            "national_id": row.national_id_masked,
            "phone": row.phone_masked,
            "verified_by": row.verified_by,
            "false_alarms": row.false_alarms,
            "valid_reports": row.valid_reports,
        }


def _name_hash(name: str, key: bytes) -> str:
    normalised = "".join(name.split()).casefold()
    return hmac.new(key, b"name:" + normalised.encode(), hashlib.sha256).hexdigest()


def registry_row(name: str, raw_id: str, key: bytes, *, today: Any) -> tuple[str, str]:
    """(id hash, name hash) for one registry CSV row; raises InvalidNationalId."""
    national_id = parse_national_id(raw_id, today=today)
    return hash_national_id(national_id.number, key), _name_hash(name, key)


@dataclass(frozen=True, slots=True)
class RegistryImport:
    imported: int
    rejected: list[str]  # "row N: reason" — never the number itself


async def import_registry(
    pool: asyncpg.Pool, keys: Keys, rows: list[dict[str, str]], *, today: Any, actor: Actor
) -> RegistryImport:
    """Load the real-name registry (name, national_id) as keyed hashes only."""
    hashed: dict[str, str] = {}
    rejected: list[str] = []
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        name, raw_id = (row.get("name") or "").strip(), row.get("national_id") or ""
        if not name:
            rejected.append(f"row {number}: no name")
            continue
        try:
            id_hash, name_hash = registry_row(name, raw_id, keys.id_hash_key, today=today)
        except InvalidNationalId as exc:
            rejected.append(f"row {number}: {exc.code}: {exc.message}")
            continue
        hashed[id_hash] = name_hash
    async with pool.acquire() as conn, conn.transaction():
        await citizen_store.upsert_registry(conn, list(hashed.items()))
        await event_store.append_event(
            conn,
            EventType.IDENTITY_REGISTRY_IMPORTED,
            actor,
            {"imported": len(hashed), "rejected": len(rejected)},
        )
    return RegistryImport(len(hashed), rejected)
