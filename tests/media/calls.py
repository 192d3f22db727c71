"""Driving a video call through the HTTP API with aiortc peers (tests and benchmarks)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import CitizenSession, Client
from tests.media.peers import Console, Phone, wait_for

XUANWU = (118.7926, 32.0732)


def call_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lon": XUANWU[0], "lat": XUANWU[1], "accuracy_m": 15.0, "datum": "wgs84",
        "tag": "robbery", "idempotency_key": f"call-{uuid.uuid4()}",
    }  # fmt: skip
    return body | overrides


async def start_call(client: Client, citizen: CitizenSession) -> dict[str, Any]:
    response = await client.post("/api/calls", json=call_body(), headers=citizen.headers)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def sdp_headers(headers: dict[str, str]) -> dict[str, str]:
    return headers | {"Content-Type": "application/sdp"}


async def connect_phone(
    client: Client, citizen: CitizenSession, session_url: str, phone: Phone
) -> str:
    response = await client.post(
        session_url, data=await phone.offer(), headers=sdp_headers(citizen.headers)
    )
    assert response.status == 201, await response.text()
    assert response.content_type == "application/sdp"
    await phone.accept(await response.text())
    return response.headers["Location"]


async def pick_up(
    client: Client, incident_id: str, headers: dict[str, str], console: Console
) -> str:
    response = await client.post(
        f"/api/incidents/{incident_id}/call/viewers",
        data=await console.offer(), headers=sdp_headers(headers),
    )  # fmt: skip
    assert response.status == 201, await response.text()
    await console.accept(await response.text())
    return response.headers["Location"]


async def one_whole_call(
    client: Client, citizen: CitizenSession, dispatcher: dict[str, str]
) -> str:
    """Start a call, connect the phone, claim, pick up, leave, hang up; the incident id."""
    call = await start_call(client, citizen)
    incident_id: str = call["incident_id"]
    phone, console = Phone(), Console(talk=True)
    try:
        location = await connect_phone(client, citizen, call["session_url"], phone)
        claimed = await client.post(f"/api/incidents/{incident_id}/claim", headers=dispatcher)
        assert claimed.status == 200, await claimed.text()
        viewer = await pick_up(client, incident_id, dispatcher, console)
        await wait_for(lambda: console.video.frames >= 5, what="video at the console")
        assert (await client.delete(viewer, headers=dispatcher)).status == 200
        assert (await client.delete(location, headers=citizen.headers)).status == 200
    finally:
        await phone.close()
        await console.close()
    return incident_id
