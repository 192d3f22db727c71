"""Citizen access tokens are short-lived and revocable: a reused refresh token and
"sign out everywhere" end every token the citizen holds, at once."""

import dataclasses

import pytest
import socketio

from dispatch.settings import Settings
from tests.conftest import CitizenSession, Client
from tests.dispatch.calls import alarm
from tests.fakes import FakeClock
from tests.signaling.feeds import FeedClient


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, citizen_token_ttl_s=Settings().citizen_token_ttl_s)


async def _alarm_status(client: Client, token: str) -> int:
    response = await client.post(
        "/api/alarms", json=alarm(), headers={"Authorization": f"Bearer {token}"}
    )
    return response.status


async def _refresh(client: Client, refresh_token: str) -> tuple[int, dict[str, str]]:
    response = await client.post("/api/citizens/refresh", json={"refresh_token": refresh_token})
    return response.status, await response.json()


async def test_an_access_token_lives_fifteen_minutes_and_the_refresh_token_renews_it(
    app_client: Client, citizen: CitizenSession, fake_clock: FakeClock
) -> None:
    fake_clock.advance(14 * 60)
    assert await _alarm_status(app_client, citizen.token) == 201
    fake_clock.advance(2 * 60)
    assert await _alarm_status(app_client, citizen.token) == 401
    status, renewed = await _refresh(app_client, citizen.refresh_token)
    assert status == 200
    assert await _alarm_status(app_client, renewed["token"]) == 201


async def test_a_reused_refresh_token_ends_the_access_tokens_too(
    app_client: Client, citizen: CitizenSession
) -> None:
    status, owner = await _refresh(app_client, citizen.refresh_token)
    assert status == 200
    case_no = (
        await (
            await app_client.post(
                "/api/alarms", json=alarm(), headers={"Authorization": f"Bearer {owner['token']}"}
            )
        ).json()
    )["case_no"]
    # Someone replays the first refresh token (it leaked): refused, and every token of the
    # citizen ends with it, the access tokens included, not in 15 minutes but now.
    assert (await _refresh(app_client, citizen.refresh_token))[0] == 401
    for token in (citizen.token, owner["token"]):
        assert await _alarm_status(app_client, token) == 401
        case = await app_client.get(
            f"/api/cases/{case_no}", headers={"Authorization": f"Bearer {token}"}
        )
        assert case.status == 404
    assert (await _refresh(app_client, owner["refresh_token"]))[0] == 401


async def test_sign_out_everywhere_ends_tokens_and_feeds(
    app_client: Client, citizen: CitizenSession
) -> None:
    base = str(app_client.make_url("/")).rstrip("/")

    def feed(namespace: str, token: str) -> FeedClient:
        return FeedClient(base, namespace, token)

    phone = feed("/citizen", citizen.token)
    await phone.go_live()
    response = await app_client.post(
        "/api/citizens/me/sign-out-everywhere", headers=citizen.headers
    )
    assert response.status == 200
    await phone.wait_for(lambda events: any(n == "session.ended" for n, _ in events), within=5)
    await phone.sio.wait()
    assert not phone.sio.connected
    assert await _alarm_status(app_client, citizen.token) == 401
    assert (await _refresh(app_client, citizen.refresh_token))[0] == 401
    # A citizen whose sign-in ended cannot connect again with the old token either.
    again = feed("/citizen", citizen.token)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await again.connect()
    assert again.refusal["data"]["code"] == "unauthorized"
