"""How the server hands out the browser clients: pages from the bundle's manifest, hashed
assets cached for good, a strict CSP, a clear answer when nothing is built, and what
every client loads first (config, precinct map, roster)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from console_web import dist_dir
from dispatch.app import create_app
from dispatch.http.pages import content_security_policy
from dispatch.infra.connections import Infrastructure
from dispatch.settings import Settings, SettingsError
from tests.conftest import CitizenSession, Client, Staff, register_citizen
from tests.console_web.pages import post_alarm


async def test_console_page_names_hashed_assets_with_strict_csp(app_client: Client) -> None:
    response = await app_client.get("/console")
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["Cache-Control"] == "no-cache"
    manifest = json.loads((dist_dir() / "manifest.json").read_text())
    entry = manifest["pages"]["console"]
    text = await response.text()
    assert f'src="/{entry["js"]}"' in text
    asset = await app_client.get("/" + entry["js"])
    assert asset.status == 200
    assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert asset.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    # Nothing outside what the build wrote is served from /assets/.
    assert (await app_client.get("/assets/manifest.json")).status == 404
    assert (await app_client.get("/assets/..%2Fmanifest.json")).status == 404


async def test_without_a_bundle_the_page_says_how_to_build_it(
    settings: Settings, infra: Infrastructure, nanjing: list[str], tmp_path: Path
) -> None:
    app = create_app(
        dataclasses.replace(settings, web_dist=tmp_path / "nothing"), infrastructure=infra
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        response = await client.get("/console")
        assert response.status == 503
        assert "npm run build" in await response.text()
    finally:
        await client.close()


async def test_precinct_map_is_simplified_with_an_etag(app_client: Client) -> None:
    response = await app_client.get("/api/precincts.geojson")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/geo+json")
    body = await response.json()
    assert len(body["features"]) == 11
    assert {"code", "name"} <= body["features"][0]["properties"].keys()
    etag = response.headers["ETag"]
    again = await app_client.get("/api/precincts.geojson", headers={"If-None-Match": etag})
    assert again.status == 304
    source = (
        Path(__file__).resolve().parents[2] / "dispatch/demo/nanjing_320100_districts_wgs84.geojson"
    )
    assert int(response.headers["Content-Length"]) < source.stat().st_size


async def test_client_config_gives_time_zone_thresholds_and_no_basemap(app_client: Client) -> None:
    body = await (await app_client.get("/api/client/config")).json()
    assert body["timezone"] == "Asia/Shanghai"
    assert body["overdue_s"] == {"1": 60, "2": 300, "3": 900, "4": 1800}
    assert body["basemap"] is None
    assert isinstance(body["now_ms"], int)
    kidnapping = next(t for t in body["tags"] if t["code"] == "kidnapping")
    assert kidnapping == {
        "code": "kidnapping",
        "label": "Kidnapping",
        "label_zh": "绑架",
        "severity": 1,
    }


async def test_roster_lists_officers_in_scope_and_desk_staff(
    app_client: Client, staff: Staff
) -> None:
    mine = await (
        await app_client.get("/api/console/roster", headers=staff.dispatcher.headers)
    ).json()
    assert [o["callsign"] for o in mine["officers"]] == ["XW-07"]
    assert mine["officers"][0]["status"] == "off_duty"
    assert {s["id"] for s in mine["staff"]} >= {staff.dispatcher.id, staff.commander.id}
    other = await (
        await app_client.get("/api/console/roster", headers=staff.other_dispatcher.headers)
    ).json()
    assert other["officers"] == []
    refused = await app_client.get("/api/console/roster", headers=staff.officer.headers)
    assert refused.status == 403


def test_basemap_settings_are_checked_and_widen_img_src() -> None:
    with pytest.raises(SettingsError, match="MICRO110_BASEMAP_DATUM"):
        Settings(basemap_datum="bd09")
    with pytest.raises(SettingsError, match="MICRO110_BASEMAP_URL"):
        Settings(basemap_url="ftp://tiles/{z}/{x}/{y}.png")
    settings = Settings(
        basemap_url="https://webrd0{s}.is.autonavi.com/{z}/{x}/{y}", basemap_datum="gcj02"
    )
    assert "img-src 'self' data: blob: https://*.is.autonavi.com" in content_security_policy(
        settings
    )
    plain = Settings(basemap_url="https://tiles.police.local/{z}/{x}/{y}.png")
    assert "https://tiles.police.local" in content_security_policy(plain)


async def test_annotations_give_text_photos_and_duplicates_in_scope(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    first = await post_alarm(app_client, citizen, tag="robbery")
    other = await register_citizen(app_client, "test-device-0002")
    second = await post_alarm(app_client, other, tag="robbery", note="两个人，一辆摩托车")
    body = await (
        await app_client.get("/api/console/annotations", headers=staff.dispatcher.headers)
    ).json()
    found = {a["id"]: a for a in body["incidents"]}
    assert set(found) == {first["incident_id"], second["incident_id"]}
    dup = found[second["incident_id"]]["possible_duplicates"]
    assert [d["incident_id"] for d in dup] == [first["incident_id"]]
    assert found[first["incident_id"]]["images"] == 0
    assert found[first["incident_id"]]["live_call"] is False
    gulou = await (
        await app_client.get("/api/console/annotations", headers=staff.other_dispatcher.headers)
    ).json()
    assert gulou["incidents"] == []
