"""SQL for citizens (reporters) and their identity verification."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from dispatch.domain.identity import VerificationLevel
from dispatch.domain.incidents import CitizenId


@dataclass(frozen=True, slots=True)
class Citizen:
    id: CitizenId
    verification: VerificationLevel
    token_generation: int
    sign_in_generation: int
    false_alarms: int
    phone_masked: str | None
    national_id_masked: str | None


@dataclass(frozen=True, slots=True)
class Challenge:
    id: UUID
    citizen_id: CitizenId
    phone_hash: str
    phone_masked: str
    code_hash: str
    attempts: int
    expires_at: datetime
    consumed_at: datetime | None


def _citizen(row: asyncpg.Record) -> Citizen:
    return Citizen(
        id=CitizenId(row["id"]),
        verification=VerificationLevel(row["verification"]),
        token_generation=row["token_generation"],
        sign_in_generation=row["sign_in_generation"],
        false_alarms=row["false_alarms"],
        phone_masked=row["phone_masked"],
        national_id_masked=row["national_id_masked"],
    )


async def insert_citizen(conn: asyncpg.Connection, citizen_id: UUID, device_id: str) -> Citizen:
    row = await conn.fetchrow(
        "INSERT INTO citizens (id, device_id) VALUES ($1, $2) RETURNING *", citizen_id, device_id
    )
    assert row is not None
    return _citizen(row)


async def get_citizen(
    conn: asyncpg.Connection, citizen_id: UUID, *, for_update: bool = False
) -> Citizen | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow("SELECT * FROM citizens WHERE id = $1" + lock, citizen_id)
    return _citizen(row) if row else None


async def bump_token_generation(conn: asyncpg.Connection, citizen_id: UUID) -> int:
    value: int = await conn.fetchval(
        """UPDATE citizens SET token_generation = token_generation + 1
           WHERE id = $1 RETURNING token_generation""",
        citizen_id,
    )
    return value


async def sign_in_generation(conn: asyncpg.Connection, citizen_id: UUID) -> int | None:
    value: int | None = await conn.fetchval(
        "SELECT sign_in_generation FROM citizens WHERE id = $1", citizen_id
    )
    return value


async def sign_in_generations(
    conn: asyncpg.Connection, citizen_ids: Sequence[UUID]
) -> dict[UUID, int]:
    """`sign_in_generation` of several citizens in one round trip (those that exist)."""
    rows = await conn.fetch(
        "SELECT id, sign_in_generation FROM citizens WHERE id = any($1::uuid[])", citizen_ids
    )
    return {row["id"]: row["sign_in_generation"] for row in rows}


async def end_sign_ins(conn: asyncpg.Connection, citizen_id: UUID) -> None:
    """Revoke every access and refresh token issued to the citizen so far."""
    await conn.execute(
        """UPDATE citizens SET sign_in_generation = sign_in_generation + 1,
               token_generation = token_generation + 1
           WHERE id = $1""",
        citizen_id,
    )


async def set_phone(
    conn: asyncpg.Connection, citizen_id: UUID, phone_hash: str, phone_masked: str
) -> None:
    # Phone verification never lowers a level a citizen already has.
    await conn.execute(
        """UPDATE citizens SET phone_hash = $2, phone_masked = $3,
               verification = CASE WHEN verification = 'anonymous' THEN 'phone'
                                   ELSE verification END,
               verified_at = now(), verified_by = coalesce(verified_by, 'sms')
           WHERE id = $1""",
        citizen_id,
        phone_hash,
        phone_masked,
    )


async def national_id_holder(
    conn: asyncpg.Connection, national_id_hash: str, citizen_id: UUID
) -> CitizenId | None:
    """Another citizen the national ID is bound to, if any.  Takes a transaction lock
    on the ID first, so two accounts claiming one ID at once cannot both get it."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 110))", national_id_hash)
    holder: UUID | None = await conn.fetchval(
        "SELECT id FROM citizens WHERE national_id_hash = $1 AND id <> $2 LIMIT 1",
        national_id_hash,
        citizen_id,
    )
    return CitizenId(holder) if holder is not None else None


async def set_real_name(
    conn: asyncpg.Connection,
    citizen_id: UUID,
    *,
    level: VerificationLevel,
    real_name: str | None,
    national_id_hash: str | None,
    national_id_masked: str | None,
    provider: str,
) -> None:
    await conn.execute(
        """UPDATE citizens SET verification = $2,
               real_name = coalesce($3, real_name),
               national_id_hash = coalesce($4, national_id_hash),
               national_id_masked = coalesce($5, national_id_masked),
               verified_by = $6, verified_at = now()
           WHERE id = $1""",
        citizen_id,
        level.value,
        real_name,
        national_id_hash,
        national_id_masked,
        provider,
    )


async def insert_challenge(
    conn: asyncpg.Connection,
    challenge_id: UUID,
    citizen_id: UUID,
    *,
    phone_hash: str,
    phone_masked: str,
    code_hash: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO phone_challenges
               (id, citizen_id, phone_hash, phone_masked, code_hash, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        challenge_id,
        citizen_id,
        phone_hash,
        phone_masked,
        code_hash,
        expires_at,
    )


async def recent_challenges(conn: asyncpg.Connection, citizen_id: UUID, since: datetime) -> int:
    value: int = await conn.fetchval(
        "SELECT count(*) FROM phone_challenges WHERE citizen_id = $1 AND created_at >= $2",
        citizen_id,
        since,
    )
    return value


async def recent_codes_to_phone(conn: asyncpg.Connection, phone_hash: str, since: datetime) -> int:
    """Codes sent to one number since `since`, whichever citizens asked.  Takes a
    transaction lock on the number first, so racing requests count each other."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 111))", phone_hash)
    value: int = await conn.fetchval(
        "SELECT count(*) FROM phone_challenges WHERE phone_hash = $1 AND created_at >= $2",
        phone_hash,
        since,
    )
    return value


async def get_challenge_for_update(
    conn: asyncpg.Connection, challenge_id: UUID
) -> Challenge | None:
    row = await conn.fetchrow(
        "SELECT * FROM phone_challenges WHERE id = $1 FOR UPDATE", challenge_id
    )
    if row is None:
        return None
    return Challenge(
        id=row["id"],
        citizen_id=CitizenId(row["citizen_id"]),
        phone_hash=row["phone_hash"],
        phone_masked=row["phone_masked"],
        code_hash=row["code_hash"],
        attempts=row["attempts"],
        expires_at=row["expires_at"],
        consumed_at=row["consumed_at"],
    )


async def count_attempt(conn: asyncpg.Connection, challenge_id: UUID) -> None:
    await conn.execute(
        "UPDATE phone_challenges SET attempts = attempts + 1 WHERE id = $1", challenge_id
    )


async def consume_challenge(conn: asyncpg.Connection, challenge_id: UUID) -> None:
    await conn.execute(
        "UPDATE phone_challenges SET consumed_at = now(), attempts = attempts + 1 WHERE id = $1",
        challenge_id,
    )


async def registry_match(conn: asyncpg.Connection, national_id_hash: str, name_hash: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM identity_registry WHERE national_id_hash = $1 AND name_hash = $2",
            national_id_hash,
            name_hash,
        )
    )


async def upsert_registry(conn: asyncpg.Connection, rows: list[tuple[str, str]]) -> None:
    await conn.executemany(
        """INSERT INTO identity_registry (national_id_hash, name_hash) VALUES ($1, $2)
           ON CONFLICT (national_id_hash) DO UPDATE
             SET name_hash = excluded.name_hash, imported_at = now()""",
        rows,
    )


async def remember_nonce(
    conn: asyncpg.Connection, provider: str, nonce: str, expires_at: datetime
) -> bool:
    """False when the nonce was seen before (a replay)."""
    inserted = await conn.fetchval(
        """INSERT INTO attestation_nonces (provider, nonce, expires_at) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING RETURNING 1""",
        provider,
        nonce,
        expires_at,
    )
    return bool(inserted)


@dataclass(frozen=True, slots=True)
class ReporterIdentity:
    """What staff see of a reporter: masked, and only through an audited read."""

    id: UUID
    verification: VerificationLevel
    real_name: str | None
    national_id_masked: str | None
    phone_masked: str | None
    verified_by: str | None
    false_alarms: int
    valid_reports: int


async def read_identity(
    conn: asyncpg.Connection, citizen_id: UUID, *, actor_kind: str, actor_id: str, purpose: str
) -> ReporterIdentity | None:
    """A reporter's identity, with the audit row written in the same transaction."""
    row = await conn.fetchrow(
        """SELECT id, verification, real_name, national_id_masked, phone_masked, verified_by,
                  verified_at, false_alarms, valid_reports
           FROM citizens WHERE id = $1""",
        citizen_id,
    )
    if row is not None:
        await conn.execute(
            """INSERT INTO identity_reads (citizen_id, actor_kind, actor_id, purpose)
               VALUES ($1, $2, $3, $4)""",
            citizen_id,
            actor_kind,
            actor_id,
            purpose,
        )
    if row is None:
        return None
    return ReporterIdentity(
        row["id"], VerificationLevel(row["verification"]), row["real_name"],
        row["national_id_masked"], row["phone_masked"], row["verified_by"], row["false_alarms"],
        row["valid_reports"],
    )  # fmt: skip


async def add_false_alarm(conn: asyncpg.Connection, citizen_id: UUID) -> None:
    await conn.execute(
        "UPDATE citizens SET false_alarms = false_alarms + 1 WHERE id = $1", citizen_id
    )


async def add_valid_report(conn: asyncpg.Connection, citizen_id: UUID) -> None:
    await conn.execute(
        "UPDATE citizens SET valid_reports = valid_reports + 1 WHERE id = $1", citizen_id
    )
