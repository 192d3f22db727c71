"""SMS codes: limited per phone number; a signed-JSON webhook sender with a timeout and
retries, tested against a local receiver; the log sender only in demo mode or by name."""

import asyncio
import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from dispatch.auth.identity_providers import DemoSmsSender
from dispatch.auth.sms import NoSmsSender, WebhookSmsSender, sms_sender_for
from dispatch.domain.errors import SmsUnavailable
from dispatch.settings import Settings, SettingsError
from tests.conftest import Client, register_citizen
from tests.fakes import RecordingSms

SECRET = "webhook-secret-0123456789"
PHONE = "13800138000"


class Receiver:
    """A local SMS gateway: checks each request's signature, answers as scripted."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.script: list[int | None] = []  # a status per request; None: never answers
        self.hold = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers["X-Micro110-Timestamp"]
        expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        assert request.headers["X-Micro110-Signature"] == f"sha256={expected.hexdigest()}"
        self.received.append(json.loads(body))
        status = self.script.pop(0) if self.script else 200
        if status is None:
            await self.hold.wait()
            status = 200
        return web.json_response({"ok": status < 300}, status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    gateway = Receiver()
    app = web.Application()
    app.router.add_post("/sms", gateway.handle)
    server = TestServer(app)
    await server.start_server()
    yield gateway, str(server.make_url("/sms"))
    gateway.hold.set()
    await server.close()


async def test_the_webhook_is_signed_and_retried_with_the_same_id(
    receiver: tuple[Receiver, str],
) -> None:
    gateway, url = receiver
    gateway.script = [503, 200]
    await WebhookSmsSender(url, SECRET, timeout_s=2, backoff_s=0.01).send_code(PHONE, "123456")
    assert len(gateway.received) == 2
    first, second = gateway.received
    assert first["id"] == second["id"] and first["to"] == PHONE and first["code"] == "123456"
    assert "123456" in first["text"]


async def test_a_gateway_that_does_not_answer_times_out_then_fails(
    receiver: tuple[Receiver, str],
) -> None:
    gateway, url = receiver
    gateway.script = [None, None]
    sender = WebhookSmsSender(url, SECRET, timeout_s=0.2, attempts=2, backoff_s=0.01)
    with pytest.raises(SmsUnavailable) as refused:
        await sender.send_code(PHONE, "123456")
    assert refused.value.status == 503 and refused.value.retry_after_s
    assert len(gateway.received) == 2


async def test_a_refusing_gateway_is_not_retried(receiver: tuple[Receiver, str]) -> None:
    gateway, url = receiver
    gateway.script = [400]
    with pytest.raises(SmsUnavailable, match="HTTP 400"):
        await WebhookSmsSender(url, SECRET, timeout_s=2, backoff_s=0.01).send_code(PHONE, "1")
    assert len(gateway.received) == 1


def test_the_log_sender_only_in_demo_mode_or_by_name(settings: Settings) -> None:
    production = dataclasses.replace(settings, demo=False)
    assert isinstance(sms_sender_for(production), NoSmsSender)
    assert isinstance(sms_sender_for(dataclasses.replace(production, demo=True)), DemoSmsSender)
    assert isinstance(
        sms_sender_for(dataclasses.replace(production, sms_sender="log")), DemoSmsSender
    )
    with pytest.raises(SettingsError, match="MICRO110_SMS_WEBHOOK_URL"):
        dataclasses.replace(production, sms_sender="webhook")
    with pytest.raises(SettingsError, match="MICRO110_SMS_WEBHOOK_SECRET"):
        dataclasses.replace(production, sms_sender="webhook", sms_webhook_url="https://gw/sms")


async def _ask_code(client: Client, token: str) -> int:
    response = await client.post(
        "/api/citizens/me/phone",
        json={"phone": PHONE},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status


async def test_codes_are_limited_per_phone_whichever_accounts_ask(
    app_client: Client, sms: RecordingSms
) -> None:
    accounts = [await register_citizen(app_client, f"fresh-account-{n}") for n in range(3)]
    answers = [await _ask_code(app_client, a.token) for a in accounts for _ in range(2)]
    assert answers == [202] * 3 + [429] * 3  # three an hour to one number
    assert len(sms.sent) == 3
    other = await app_client.post(
        "/api/citizens/me/phone", json={"phone": "13900139000"}, headers=accounts[0].headers
    )
    assert other.status == 202
