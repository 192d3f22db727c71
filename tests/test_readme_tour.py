"""The README's five-minute tour runs as written, against a fresh server with the demo
city: a newcomer who pastes it sees what it promises."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import Servers
from tests.serving import child_env, create_database, drop_database, start_server

README = Path(__file__).resolve().parents[1] / "README.md"
_TOUR = re.compile(r"<!-- tour:begin -->\n```sh\n(?P<script>.*?)```\n<!-- tour:end -->", re.S)


def tour_script() -> str:
    found = _TOUR.search(README.read_text("utf-8"))
    assert found, "README.md has no tour block between <!-- tour:begin --> and <!-- tour:end -->"
    return found["script"]


@pytest.mark.slow
async def test_the_readme_tour_runs_as_written(tmp_path: Path, servers: Servers) -> None:
    assert shutil.which("curl"), "the tour uses curl"
    name = "micro110_test_tour"
    await drop_database(servers.admin_database_url, name)
    database_url = await create_database(servers.admin_database_url, name)
    data = tmp_path / "var"
    env = child_env(
        {"DATABASE_URL": database_url, "REDIS_URL": servers.redis_url, "MICRO110_DEMO": "true"},
        external=True,
    )
    try:
        server = await start_server(data, env=env)
        try:
            shell = await asyncio.create_subprocess_exec(
                "bash", "-euo", "pipefail", "-c", tour_script(),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**env, "BASE": server.base_url, "DATA": str(data)},
            )  # fmt: skip
            out, err = await asyncio.wait_for(shell.communicate(), 120)
        finally:
            await server.stop()
    finally:
        await drop_database(servers.admin_database_url, name)
    output = out.decode()
    assert shell.returncode == 0, output + err.decode()
    lines = output.splitlines()
    assert re.fullmatch(r"alarm: case 110-\d{8}-\d{6}, precinct 玄武区", lines[0]), lines[0]
    assert lines[1] == "resolved"
    case = json.loads("\n".join(lines[2:]))
    assert case["case_no"] == lines[0].split()[2].rstrip(",")
    assert case["status"] == "resolved"
    assert case["timeline"][0]["event"] == "incident.created"
    assert case["timeline"][-1]["event"] == "incident.resolved"
