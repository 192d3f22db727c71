"""The officer page's datum conversions and distances (JavaScript, run by Node) agree
with geo/ (Python), so a navigation link lands where the incident is."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from geo.datum import Datum, from_wgs84
from geo.distance import haversine_m

NAVIGATION = Path(__file__).resolve().parents[2] / "console_web/src/pages/officer/navigation.js"
# Nanjing, the far corners of China, and outside China (no GCJ-02 offset there).
POINTS = [
    (118.7926, 32.0732), (118.7787, 32.0604), (87.6168, 43.8256), (126.6424, 45.7567),
    (109.5120, 18.2528), (121.4737, 31.2304), (2.3522, 48.8566), (-74.0060, 40.7128),
    (139.6917, 35.6895), (73.0, 39.0),
]  # fmt: skip


def run_node(script: str) -> object:
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def js() -> dict[str, list[list[float]]]:
    script = f"""
        import {{ fromWgs84, distanceM, navigationLinks }} from {json.dumps(NAVIGATION.as_uri())};
        const points = {json.dumps(POINTS)};
        const out = {{ gcj02: [], bd09: [], distance: [], links: navigationLinks(118.7926, 32.0732, "玄武 1") }};
        for (const [lon, lat] of points) {{
          out.gcj02.push(fromWgs84(lon, lat, "gcj02"));
          out.bd09.push(fromWgs84(lon, lat, "bd09"));
          out.distance.push(distanceM(118.7926, 32.0732, lon, lat));
        }}
        console.log(JSON.stringify(out));
    """
    result = run_node(script)
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize("datum", [Datum.GCJ02, Datum.BD09])
def test_conversions_match_python(js: dict[str, list[list[float]]], datum: Datum) -> None:
    for (lon, lat), got in zip(POINTS, js[datum.value], strict=True):
        want = from_wgs84(lon, lat, datum)
        # 1e-9 degrees is about 0.1 mm.
        assert got == pytest.approx(list(want), abs=1e-9), (lon, lat)


def test_distances_match_python(js: dict[str, list[float]]) -> None:
    for (lon, lat), got in zip(POINTS, js["distance"], strict=True):
        assert got == pytest.approx(haversine_m(118.7926, 32.0732, lon, lat), rel=1e-9)


def test_each_app_gets_its_datum(js: dict[str, list[dict[str, str]]]) -> None:
    links = {link["app"]: link for link in js["links"]}
    gcj = from_wgs84(118.7926, 32.0732, Datum.GCJ02)
    bd = from_wgs84(118.7926, 32.0732, Datum.BD09)
    assert links["geo"]["href"].startswith("geo:32.073200,118.792600?q=32.073200,118.792600(")
    assert f"to={gcj[0]:.6f},{gcj[1]:.6f}," in links["amap"]["href"]
    assert f"latlng:{bd[1]:.6f},{bd[0]:.6f}|" in links["baidu"]["href"]
    assert "coord_type=bd09ll" in links["baidu"]["href"]
    assert f"tocoord={gcj[1]:.6f},{gcj[0]:.6f}" in links["tencent"]["href"]
    assert "%E7%8E%84%E6%AD%A6%201" in links["amap"]["href"]  # the name, encoded
