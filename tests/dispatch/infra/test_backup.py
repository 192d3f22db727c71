"""Backup and restore, as the README's Operations section says to do them: a running
node's PostgreSQL and evidence files backed up together (`micro110 backup`), restored
into a fresh data directory (`micro110 restore`, embedded PostgreSQL there), and a node
started on it serves the same cases, timelines and evidence files (hashes checked), and
the same logins (the server secrets travel in the dump)."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.conftest import Servers
from tests.dispatch.services.test_intake_reports import jpeg
from tests.serving import child_env, create_database, drop_database, run_cli, start_server


async def _json(answer: aiohttp.ClientResponse, status: int) -> Any:
    assert answer.status == status, await answer.text()
    return await answer.json()


async def _cases(http: aiohttp.ClientSession, base: str, demo: dict[str, str]) -> dict[str, Any]:
    """A photo report and an alarm, the alarm claimed with a note: case -> its data."""
    citizen = await _json(
        await http.post(f"{base}/api/citizens", json={"device_id": "backup-device-01"}), 201
    )
    auth = {"Authorization": f"Bearer {citizen['token']}"}
    form = aiohttp.FormData()
    for name, value in {"text": "backup: photo report", "tag": "robbery", "lon": "118.7926",
                        "lat": "32.0732", "datum": "wgs84",
                        "idempotency_key": f"bk-{uuid.uuid4()}"}.items():  # fmt: skip
        form.add_field(name, value)
    for size in ((61, 43), (62, 44)):
        form.add_field("images", jpeg(size=size), filename="p.jpg", content_type="image/jpeg")
    report = await _json(await http.post(f"{base}/api/reports", data=form, headers=auth), 201)
    alarm = await _json(
        await http.post(
            f"{base}/api/alarms", headers=auth,
            json={"tag": "kidnapping", "lon": 118.7926, "lat": 32.0732, "accuracy_m": 10,
                  "datum": "wgs84", "client_time": "2026-12-06T20:00:00+08:00",
                  "idempotency_key": f"bk-{uuid.uuid4()}"},
        ),
        201,
    )  # fmt: skip
    (username, password), *_ = ((u, p) for u, p in demo.items() if "dispatch" in u)
    login = await _json(
        await http.post(f"{base}/api/auth/login", json={"username": username, "password": password}),
        200,
    )  # fmt: skip
    staff = {"Authorization": f"Bearer {login['token']}"}
    incident = alarm["incident_id"]
    await _json(await http.post(f"{base}/api/incidents/{incident}/claim", headers=staff), 200)
    await _json(
        await http.post(
            f"{base}/api/incidents/{incident}/notes", headers=staff,
            json={"text": "caller heard, unit on the way"},
        ),
        201,
    )  # fmt: skip
    cases = {}
    for answer in (report, alarm):
        seen = await http.get(
            f"{base}/api/cases/{answer['case_no']}",
            headers={"Authorization": f"Bearer {answer['tracking_token']}"},
        )
        cases[answer["case_no"]] = (answer["tracking_token"], await _json(seen, 200))
    return {"cases": cases, "login": (username, password), "history": incident}


async def _history(
    http: aiohttp.ClientSession, base: str, login: tuple[str, str], incident: str
) -> Any:
    answer = await _json(
        await http.post(
            f"{base}/api/auth/login", json={"username": login[0], "password": login[1]}
        ),
        200,
    )
    staff = {"Authorization": f"Bearer {answer['token']}"}
    return await _json(
        await http.get(f"{base}/api/incidents/{incident}/history", headers=staff), 200
    )


@pytest.mark.timeout(400)  # three server starts and an initdb; slow on a shared machine
async def test_a_backup_restored_into_a_fresh_data_directory_has_everything(
    servers: Servers, tmp_path: Path
) -> None:
    name = f"micro110_test_backup_{secrets.token_hex(3)}"
    database_url = await create_database(servers.admin_database_url, name)
    original, fresh, backup = tmp_path / "original", tmp_path / "fresh", tmp_path / "backup"
    env = child_env(
        {"DATABASE_URL": database_url, "REDIS_URL": servers.redis_url,
         "MICRO110_DEMO": "true", "MICRO110_LOG_LEVEL": "WARNING"},
        external=True,
    )  # fmt: skip
    try:
        node = await start_server(original, env=env)
        async with aiohttp.ClientSession() as http:
            demo = json.loads((original / "demo-credentials.json").read_text())
            made = await _cases(http, node.base_url, demo)
            history = await _history(http, node.base_url, made["login"], made["history"])
        # Backed up while the node runs, as in service.
        code, out, err = await run_cli("backup", str(backup), "--data-dir", str(original), env=env)
        assert code == 0, err
        assert "backed up" in out and "2 evidence files" in out, out
        await node.stop()
        conn = await asyncpg.connect(database_url)
        try:
            hashes = {
                r["storage_key"]: r["sha256"]
                for r in await conn.fetch("SELECT storage_key, sha256 FROM attachments")
            }
        finally:
            await conn.close()
    finally:
        await drop_database(servers.admin_database_url, name)
    assert len(hashes) == 2

    # The original database is gone; a fresh data directory with embedded PostgreSQL.
    fresh_env = child_env({"REDIS_URL": servers.redis_url, "MICRO110_LOG_LEVEL": "WARNING"},
                          external=True)  # fmt: skip
    fresh_env.pop("DATABASE_URL", None)
    code, out, err = await run_cli("restore", str(backup), "--data-dir", str(fresh), env=fresh_env)
    assert code == 0, err
    assert "restored" in out, out
    for key, sha256 in hashes.items():
        stored = (fresh / "evidence" / key).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == sha256
    restored = await start_server(fresh, env=fresh_env | {"MICRO110_DEMO": "false"})
    try:
        async with aiohttp.ClientSession() as http:
            for case_no, (token, before) in made["cases"].items():
                seen = await http.get(
                    f"{restored.base_url}/api/cases/{case_no}",
                    headers={"Authorization": f"Bearer {token}"},  # tokens still valid
                )
                assert await _json(seen, 200) == before
            # The staff login and the incident's whole history came back too.
            again = await _history(http, restored.base_url, made["login"], made["history"])
            assert again == history
    finally:
        await restored.stop()
    # A second restore into the same directory is refused, not merged.
    code, _, err = await run_cli("restore", str(backup), "--data-dir", str(fresh), env=fresh_env)
    assert code != 0 and "fresh" in err, err
