"""A bare python-socketio server for the fan-out benchmark's baseline.

POST /api/alarms answers 201 with a new incident id after one emit of an
`incident.created`-like event to one room; `resume` on /console joins that room.  No
database, no Redis, no authentication: what python-socketio and its clients cost by
themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import socketio
from _consoles import CONSOLE
from aiohttp import web


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(port: int) -> None:
    """POST /api/alarms -> one emit to one room: python-socketio with nothing around it."""
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)
    seq = itertools.count(1)
    last = [0]

    @sio.on("resume", namespace=CONSOLE)  # type: ignore[untyped-decorator]
    async def resume(sid: str, data: Any) -> dict[str, Any]:
        await sio.enter_room(sid, "all", namespace=CONSOLE)
        return {"ok": True, "seq": last[0]}

    async def alarm(request: web.Request) -> web.Response:
        body = await request.json()
        incident_id = str(uuid.uuid4())
        last[0] = next(seq)
        # About the size and shape of a real incident.created.
        data = {
            "seq": last[0], "type": "incident.created", "at": datetime.now(UTC).isoformat(),
            "actor": {"kind": "citizen", "id": str(uuid.uuid4())},
            "incident": {"id": incident_id, "case_no": f"110-20250101-{last[0]:06d}",
                         "state": "queued", "tag": body["tag"], "lon": body["lon"],
                         "lat": body["lat"], "accuracy_m": body["accuracy_m"],
                         "received_at": datetime.now(UTC).isoformat(), "padding": "x" * 400},
            "priority_credit_s": 600, "text": None, "images": 0, "possible_duplicates": [],
        }  # fmt: skip
        await sio.emit("incident.created", data, room="all", namespace=CONSOLE)
        return web.json_response({"incident_id": incident_id}, status=201)

    app.router.add_post("/api/alarms", alarm)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


@contextlib.asynccontextmanager
async def bare_server() -> AsyncIterator[tuple[str, int]]:
    """(base URL, pid) of a bare server running in its own process."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,))
    proc.start()
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/socket.io/?EIO=4&transport=polling"):
                        break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the bare python-socketio server did not start")
        assert proc.pid is not None
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.join(timeout=10)
