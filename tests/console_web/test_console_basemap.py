"""A basemap from settings: its URL template and datum reach the console through the
config endpoint, its tiles are requested from that template, and what is drawn over
GCJ-02 tiles is shifted to match them (state stays WGS-84)."""

from __future__ import annotations

import dataclasses
import io
import re
from typing import Any

import pytest
from PIL import Image

from dispatch.settings import Settings
from geo.datum import Datum, from_wgs84
from tests.browser import chromium
from tests.conftest import CitizenSession, Client, Staff
from tests.console_web.pages import XUANWU_LAKE, open_console, post_alarm, row
from tests.console_web.test_console_keys_and_confirms import FIRST_VERTICES, first_vertex

pytestmark = pytest.mark.browser

TILES = "https://tiles.example.test/amap/{z}/{x}/{y}.png"


def png() -> bytes:
    """The fake tile server's every answer: one plain 256 px tile."""
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (230, 230, 220)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, basemap_url=TILES, basemap_datum="gcj02", basemap_attribution="© test tiles"
    )


async def test_a_gcj02_basemap_is_requested_and_overlays_are_shifted_onto_it(
    app_client: Client, staff: Staff, citizen: CitizenSession
) -> None:
    config = await (await app_client.get("/api/client/config")).json()
    assert config["basemap"]["url"] == TILES and config["basemap"]["datum"] == "gcj02"
    precincts = await (await app_client.get("/api/precincts.geojson")).json()
    incident_id = (await post_alarm(app_client, citizen))["incident_id"]

    tiles: list[str] = []

    async def serve_tile(route: Any) -> None:
        tiles.append(route.request.url)
        await route.fulfill(status=200, content_type="image/png", body=png())

    async with chromium() as browser:
        page = await browser.new_page()
        await page.route("https://tiles.example.test/**", serve_tile)
        page = await open_console(browser, app_client, staff.dispatcher.username, "en", page=page)
        await page.wait_for_selector(row(incident_id))
        await page.wait_for_selector(".leaflet-tile-loaded")
        assert tiles and all(
            re.fullmatch(r"https://tiles\.example\.test/amap/\d+/\d+/\d+\.png", url)
            for url in tiles
        ), tiles
        assert "© test tiles" in (await page.text_content(".leaflet-control-attribution") or "")

        # The precinct boundaries, drawn over GCJ-02 tiles, are shifted to GCJ-02.
        await page.wait_for_function(
            "n => __console.map && (() => { let k = 0;"
            " __console.map.leaflet.eachLayer(l => { if (l.feature) k++; }); return k === n; })()",
            arg=len(precincts["features"]),
        )
        drawn = await page.evaluate(FIRST_VERTICES)
        ordered = sorted(precincts["features"], key=lambda f: str(f["properties"]["code"]))
        for feature, (lon, lat) in zip(ordered, drawn, strict=True):
            wgs = first_vertex(feature["geometry"])
            expected = from_wgs84(wgs[0], wgs[1], Datum.GCJ02)
            assert (lon, lat) == pytest.approx(expected, abs=1e-7)
            assert abs(lon - wgs[0]) > 1e-3  # in Nanjing GCJ-02 is ~500 m off WGS-84

        # So is the incident's marker; the console's state keeps the WGS-84 position.
        await page.wait_for_function(
            """id => { let found = null;
              __console.map.leaflet.eachLayer(l => { if (l.getTooltip && l.getRadius
                && l.getTooltip()?.getContent()?.startsWith?.(__console.state.incidents.get(id)?.case_no))
                found = l; });
              return found !== null; }""",
            arg=incident_id,
        )
        marker = await page.evaluate(
            """id => { let at = null; const caseNo = __console.state.incidents.get(id).case_no;
              __console.map.leaflet.eachLayer(l => { if (l.getTooltip && l.getRadius
                && l.getTooltip()?.getContent()?.startsWith?.(caseNo)) at = l.getLatLng(); });
              return [at.lng, at.lat]; }""",
            incident_id,
        )
        assert tuple(marker) == pytest.approx(from_wgs84(*XUANWU_LAKE, Datum.GCJ02), abs=1e-7)
        held = await page.evaluate("id => __console.state.incidents.get(id)", incident_id)
        assert (held["lon"], held["lat"]) == pytest.approx(XUANWU_LAKE)
        assert page.js_errors == []
