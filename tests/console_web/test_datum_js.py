"""The clients' WGS-84 -> GCJ-02 (drawing on Chinese basemaps) agrees with geo/datum.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from geo.datum import wgs84_to_gcj02

DATUM_JS = Path(__file__).resolve().parents[2] / "console_web/src/shared/datum.js"
POINTS = [(118.7926, 32.0732), (121.4737, 31.2304), (87.6, 43.8), (2.35, 48.85), (113.26, 23.13)]


def test_js_conversion_matches_python_to_a_millimetre() -> None:
    script = (
        f"import {{ wgs84ToGcj02 }} from {json.dumps(DATUM_JS.as_uri())};"
        f"console.log(JSON.stringify({json.dumps(POINTS)}.map(([x, y]) => wgs84ToGcj02(x, y))));"
    )
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    ).stdout
    for (lon, lat), (jlon, jlat) in zip(POINTS, json.loads(out), strict=True):
        plon, plat = wgs84_to_gcj02(lon, lat)
        assert abs(plon - jlon) < 1e-8 and abs(plat - jlat) < 1e-8
