"""A national layer imported and swapped in while alarms keep coming: intake never
waits for it, and once the import command returns the node serves the new layer."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import time
from pathlib import Path

import pytest

from dispatch.http.keys import PRECINCTS
from geo.topojson import feature_collection
from tests.conftest import CitizenSession, Client, Servers, app_of
from tests.dispatch.calls import XUANWU_LAKE, alarm
from tests.serving import child_env, run_cli

US_COUNTIES = (
    Path(__file__).parents[2] / "fixtures" / "geo" / "us_atlas_3.0.1_counties_10m.topojson.gz"
)
CENTRAL_PARK = (-73.9654, 40.7829)  # New York County, FIPS 36061
# Far above what a free event loop shows (a few ms; bench/geofence.py measures the
# 100 ms goal as swap_worst_ms), far below the 8 s stalls a rebuild caused: a bound on
# behaviour, not a speed measurement. Generous because on a shared 2-core VM the
# whole test process is sometimes not scheduled for a second (seen once in a full run
# with the machine's load at 16).
LOOP_STALL_BOUND_S = 2.0


def us_counties_geojson(path: Path) -> Path:
    """The Census Bureau's 3,231 counties (us-atlas 3.0.1) as a GeoJSON file."""
    with gzip.open(US_COUNTIES, "rt", encoding="utf-8") as stream:
        collection = feature_collection(json.load(stream), "counties")
    path.write_text(json.dumps(collection), encoding="utf-8")
    return path


@pytest.mark.slow
async def test_alarms_are_answered_while_a_national_layer_is_imported_and_swapped_in(
    app_client: Client, citizen: CitizenSession, servers: Servers, tmp_path: Path
) -> None:
    registry = app_of(app_client)[PRECINCTS]
    before = registry.snapshot.import_id
    geojson = us_counties_geojson(tmp_path / "us_counties.geojson")
    env = child_env({"DATABASE_URL": servers.database_url}, external=True)
    importing = asyncio.create_task(
        run_cli(
            "precincts",
            "import",
            str(geojson),
            "--name-property",
            "name",
            "--code-property",
            "id",
            "--replace",
            "--wait-s",
            "120",
            env=env,
        )
    )
    stalls: list[float] = []
    answers: list[tuple[float, int, int]] = []  # (seconds, status, import served)

    async def ticker() -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            stalls.append(time.perf_counter() - start - 0.01)

    async def alarms() -> None:
        while True:
            start = time.perf_counter()
            response = await app_client.post(
                "/api/alarms", json=alarm(lon=CENTRAL_PARK[0], lat=CENTRAL_PARK[1]),
                headers=citizen.headers,
            )  # fmt: skip
            answers.append(
                (time.perf_counter() - start, response.status, registry.snapshot.import_id)
            )
            await asyncio.sleep(0.2)

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(alarms())]
    try:
        code, out, err = await importing
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert code == 0, err
    # One county (Hoonah-Angoon) has nothing polygonal left at this resolution.
    assert "micro110: imported 3230 precinct(s), rejected 1" in out
    print(
        f"worst loop stall {max(stalls) * 1000:.1f} ms, worst alarm "
        f"{max(s for s, _, _ in answers) * 1000:.1f} ms over {len(answers)} alarms"
    )
    assert "served by node-1 (since " in out
    # Batch work, below the node's priority (MICRO110_IMPORT_NICENESS: 10 more than ours).
    niceness = min(19, os.nice(0) + 10)
    assert f"micro110: importing at niceness {niceness}, below the nodes" in out
    # The swap happened while alarms were being answered, and none was refused.
    assert registry.snapshot.import_id > before
    assert {status for _, status, _ in answers} == {201}
    assert max(stalls) < LOOP_STALL_BOUND_S, f"event loop blocked {max(stalls):.3f} s"
    assert max(seconds for seconds, _, _ in answers) < LOOP_STALL_BOUND_S * 2
    # Once the command has returned: the new layer, and nothing routed by the old one.
    response = await app_client.post(
        "/api/alarms", json=alarm(lon=CENTRAL_PARK[0], lat=CENTRAL_PARK[1]),
        headers=citizen.headers,
    )  # fmt: skip
    assert (await response.json())["precinct"] == {"code": "36061", "name": "New York"}
    response = await app_client.post(
        "/api/alarms", json=alarm(lon=XUANWU_LAKE[0], lat=XUANWU_LAKE[1]), headers=citizen.headers
    )
    assert (await response.json())["precinct"] is None
