"""`micro110 precincts import` and `micro110 identity import`, run as real commands."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.conftest import CitizenSession, Client, Servers
from tests.dispatch.calls import alarm
from tests.serving import ServerProcess, child_env, run_cli

FIXTURES = Path(__file__).parents[1] / "fixtures" / "geo"
RAW_NYC = FIXTURES / "nyc_police_precincts_77_raw_with_invalid_rings.geojson"
SHENZHEN_GCJ02 = FIXTURES / "shenzhen_440300_districts_gcj02.geojson"
VALID_ID = "11010519491231002X"  # GB 11643 check digit computed


async def _alarm_at(
    http: aiohttp.ClientSession, node: ServerProcess, lon: float, lat: float
) -> dict[str, Any]:
    async with http.post(
        f"{node.base_url}/api/citizens", json={"device_id": "cli-import-test"}
    ) as r:
        token = (await r.json())["token"]
    async with http.post(
        f"{node.base_url}/api/alarms",
        json=alarm(lon=lon, lat=lat),
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 201, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


@pytest.mark.slow
async def test_an_import_while_two_nodes_run_takes_effect_on_both_without_restart(
    cluster: tuple[ServerProcess, ServerProcess, str],
) -> None:
    node_1, node_2, database_url = cluster
    env = child_env({"DATABASE_URL": database_url}, external=True)
    ping_an = (114.0549, 22.5367)  # Ping An Finance Centre, WGS84: 福田区
    xuanwu_lake = (118.7926, 32.0732)
    async with aiohttp.ClientSession() as http:
        before = await _alarm_at(http, node_2, *ping_an)
        assert before["precinct"] is None
        assert before["jurisdiction"]["status"] == "out_of_jurisdiction"
        assert before["jurisdiction"]["distance_m"] > 900_000  # Nanjing is far away

        # A GCJ-02 file, converted on import; both nodes reload without a restart.
        code, out, err = await run_cli(
            "precincts", "import", str(SHENZHEN_GCJ02),
            "--name-property", "name", "--code-property", "adcode", "--datum", "gcj02",
            env=env,
        )  # fmt: skip
        assert code == 0, err
        assert "micro110: imported 9 precinct(s), rejected 0" in out
        # Where its time went, step by step.
        assert re.search(
            r"micro110: seconds read [\d.]+, validate [\d.]+, build [\d.]+, store [\d.]+, "
            r"served [\d.]+\n",
            out,
        ), out
        # The command returns once both nodes serve the import: no waiting after it.
        assert "served by node-1 (since " in out and ", node-2 (since " in out
        for node in (node_1, node_2):
            answer = await _alarm_at(http, node, *ping_an)
            assert answer["precinct"]["code"] == "440304"
            assert answer["precinct"]["name"] == "福田区"
            assert answer["jurisdiction"] == {"status": "inside"}
            # Nanjing is still there: the import added a city.
            assert (await _alarm_at(http, node, *xuanwu_lake))["precinct"]["code"] == "320102"

        # --replace: the file becomes the whole jurisdiction, on both nodes.
        code, out, err = await run_cli(
            "precincts", "import", str(SHENZHEN_GCJ02),
            "--name-property", "name", "--code-property", "adcode", "--datum", "gcj02",
            "--replace",
            env=env,
        )  # fmt: skip
        assert code == 0, err
        assert "retired 320102" in out
        assert "served by node-1 (since " in out and ", node-2 (since " in out
        # Once the command has returned no node routes to a retired precinct.
        for node in (node_1, node_2):
            assert (await _alarm_at(http, node, *xuanwu_lake))["precinct"] is None
            assert (await _alarm_at(http, node, *ping_an))["precinct"]["code"] == "440304"
            async with http.get(f"{node.base_url}/api/status") as response:
                status = await response.json()
            assert status["precinct_import"] >= 2
            assert status["precinct_import_loaded_at"].endswith("+00:00")

        # A node that is stopped is no longer waited for; one that hangs is named.
        node_2.proc.send_signal(signal.SIGSTOP)
        try:
            code, out, err = await run_cli(
                "precincts", "import", str(SHENZHEN_GCJ02),
                "--name-property", "name", "--code-property", "adcode", "--datum", "gcj02",
                "--wait-s", "2",
                env=env,
            )  # fmt: skip
        finally:
            node_2.proc.send_signal(signal.SIGCONT)
        assert code == 1
        assert "served by node-1 (since " in out
        assert "not serving import #" in err and "node-2 (still on import #" in err


async def test_the_raw_file_with_invalid_rings_imports_with_a_report(servers: Servers) -> None:
    env = child_env({"DATABASE_URL": servers.database_url}, external=True)
    code, out, err = await run_cli(
        "precincts", "import", str(RAW_NYC),
        "--name-property", "precinct", "--code-property", "precinct",
        env=env,
    )  # fmt: skip
    assert code == 0, err
    assert "feature #41 (code '61'): repaired, invalid geometry" in out
    assert "feature #70 (code '113'): repaired" in out
    assert "micro110: imported 77 precinct(s), rejected 0" in out
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"type": "Feature"}', "FeatureCollection"),
    ],
)
async def test_precincts_import_refuses_a_bad_file_with_one_line(
    tmp_path: Path, servers: Servers, content: str, message: str
) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text(content)
    env = child_env({"DATABASE_URL": servers.database_url}, external=True)
    code, _out, err = await run_cli(
        "precincts", "import", str(bad), "--name-property", "n", "--code-property", "c", env=env
    )
    assert code != 0
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code, _out, err = await run_cli(
        "precincts", "import", str(tmp_path / "missing.geojson"),
        "--name-property", "n", "--code-property", "c", env=env,
    )  # fmt: skip
    assert code != 0 and "cannot read" in err and "Traceback" not in err


async def test_identity_import_stores_only_hashes_and_the_registry_verifies(
    tmp_path: Path,
    servers: Servers,
    app_client: Client,
    citizen: CitizenSession,
    pg: asyncpg.Pool,
) -> None:
    csv_file = tmp_path / "registry.csv"
    csv_file.write_text(
        "name,national_id\n"
        f"王小明,{VALID_ID}\n"
        "李四,110105194912310021\n"  # wrong check digit
        ",110105194912310038\n",  # no name
        encoding="utf-8",
    )
    env = child_env({"DATABASE_URL": servers.database_url}, external=True)
    code, out, err = await run_cli("identity", "import", str(csv_file), env=env)
    assert code == 0, err
    assert "micro110: imported 1 identities, rejected 2" in out
    assert "row 3:" in out and "row 4: no name" in out
    # The numbers never appear in the output or in the database, only keyed hashes.
    assert "110105194912310021" not in out + err and VALID_ID not in out + err
    async with pg.acquire() as conn:
        dump = json.dumps(
            [dict(r) for r in await conn.fetch("SELECT * FROM identity_registry")], default=str
        )
    assert VALID_ID not in dump and "王小明" not in dump

    # The server process (sharing the database's keys) verifies against the import.
    ok = await app_client.post(
        "/api/citizens/me/real-name",
        json={"name": "王小明", "national_id": VALID_ID},
        headers=citizen.headers,
    )
    assert ok.status == 200, await ok.text()

    no_header = tmp_path / "bad.csv"
    no_header.write_text("who,id\nx,y\n")
    code, _out, err = await run_cli("identity", "import", str(no_header), env=env)
    assert code != 0 and "name,national_id" in err and "Traceback" not in err
