"""Staff read a report's photos on demand, within their precincts, every read audited."""

from __future__ import annotations

import hashlib

import asyncpg

from tests.conftest import CitizenSession, Client, Staff
from tests.dispatch.services.test_intake_reports import fields, form, jpeg


async def test_photos_are_listed_then_read_with_an_audit_row(
    app_client: Client, citizen: CitizenSession, staff: Staff, pg: asyncpg.Pool
) -> None:
    photo = jpeg()
    response = await app_client.post(
        "/api/reports", data=form(fields(), [photo]), headers=citizen.headers
    )
    assert response.status == 201, await response.text()
    incident_id = (await response.json())["incident_id"]
    base = f"/api/incidents/{incident_id}/evidence"

    listed = await app_client.get(base, headers=staff.dispatcher.headers)
    assert listed.status == 200
    (attachment,) = (await listed.json())["attachments"]
    assert attachment["kind"] == "image" and attachment["media_type"] == "image/jpeg"
    async with pg.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM evidence_reads") == 0
        )  # listing is not a read

    read = await app_client.get(
        f"{base}/{attachment['id']}?purpose=check weapon", headers=staff.dispatcher.headers
    )
    assert read.status == 200
    assert read.headers["Content-Type"] == "image/jpeg"
    assert read.headers["Cache-Control"] == "private, no-store"
    body = await read.read()
    async with pg.acquire() as conn:
        audit = await conn.fetch("SELECT * FROM evidence_reads")
        sha = await conn.fetchval("SELECT sha256 FROM attachments")
    assert hashlib.sha256(body).hexdigest() == sha
    assert [(r["actor_kind"], r["actor_id"], r["purpose"]) for r in audit] == [
        ("staff", str(staff.dispatcher.id), "check weapon")
    ]

    # Out of scope, wrong role, unknown attachment, no token: refused, and nothing audited.
    other = await app_client.get(
        f"{base}/{attachment['id']}", headers=staff.other_dispatcher.headers
    )
    assert other.status == 404
    officer = await app_client.get(f"{base}/{attachment['id']}", headers=staff.officer.headers)
    assert officer.status == 404  # not sent to it: beyond an officer's reach
    unknown = await app_client.get(
        f"{base}/00000000-0000-0000-0000-000000000000", headers=staff.dispatcher.headers
    )
    assert unknown.status == 404
    bad = await app_client.get(f"{base}/nope", headers=staff.dispatcher.headers)
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "attachment_id"
    assert (await app_client.get(f"{base}/{attachment['id']}")).status == 401
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM evidence_reads") == 1
