"""A full evidence disk: photo reports refused with a clear 507, nothing half-written,
alarms unaffected, and the same report accepted once there is room again.

The disk is the seam faked here (os.fsync reports ENOSPC, as a full file system does
on the first write that needs a block); bench/faults.py `evidence_full` fills a real
tmpfs.
"""

import errno
import os
from pathlib import Path

import asyncpg
import pytest

from dispatch.http.keys import INTAKE
from tests.conftest import CitizenSession, Client, app_of
from tests.dispatch.calls import alarm, counts
from tests.dispatch.services.test_intake_reports import fields, form, jpeg


class FullDisk:
    """os.fsync that fails with ENOSPC after `room` successful calls."""

    def __init__(self, room: int = 0) -> None:
        self.room = room
        self.real = os.fsync

    def __call__(self, fd: int) -> None:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= 1
        self.real(fd)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("room", [0, 2], ids=["first image", "second image"])
async def test_photo_reports_are_refused_cleanly_while_the_disk_is_full(
    app_client: Client,
    citizen: CitizenSession,
    pg: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
    room: int,
) -> None:
    intake = app_of(app_client)[INTAKE]
    intake.evidence_grace_s = 0
    root = Path(intake.evidence.path("."))
    files_before = files_under(root)
    before = await counts(pg)
    report = fields()
    photos = [jpeg(size=(33 + room, 21)), jpeg(size=(35 + room, 23))]  # new to the store
    # room=2: the first image (its file and its directory) fits, the second does not.
    monkeypatch.setattr(os, "fsync", FullDisk(room))
    refused = await app_client.post(
        "/api/reports",
        data=form(report, photos),
        headers=citizen.headers,
    )
    assert refused.status == 507, await refused.text()
    assert (await refused.json())["error"]["code"] == "storage_full"
    assert refused.headers["Retry-After"] == "30"
    # Alarms need no evidence disk.
    alarmed = await app_client.post("/api/alarms", json=alarm(), headers=citizen.headers)
    assert alarmed.status == 201, await alarmed.text()
    await intake.discards_done()
    assert await counts(pg) == before | {
        "incidents": before["incidents"] + 1,
        "reports": before["reports"] + 1,
        "incident_events": before["incident_events"] + 1,
    }
    assert files_under(root) == files_before  # no file, no temporary file left
    monkeypatch.undo()
    # Room again: the phone sends the same report, with the same key, and it is kept.
    kept = await app_client.post(
        "/api/reports",
        data=form(report, photos),
        headers=citizen.headers,
    )
    assert kept.status == 201, await kept.text()
    async with pg.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM attachments a JOIN reports r ON r.id = a.report_id"
                " WHERE r.idempotency_key = $1",
                report["idempotency_key"],
            )
            == 2
        )
