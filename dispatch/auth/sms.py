"""Phone-code senders: an HTTP webhook that any SMS gateway can sit behind, the log
(demo mode, or when chosen explicitly), or none.

The webhook POSTs one JSON object per code, signed with HMAC-SHA256 over
`<timestamp>.<body>` (headers `X-Micro110-Timestamp`, `X-Micro110-Signature:
sha256=<hex>`), with a timeout per attempt and retries on timeouts, connection
errors, 429 and 5xx (the same `id` each time, so the gateway can drop a repeat).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from dispatch.auth.identity_providers import DemoSmsSender, SmsSender
from dispatch.domain.errors import SmsUnavailable
from dispatch.domain.identity import mask_phone
from dispatch.settings import Settings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Micro110-Signature"
TIMESTAMP_HEADER = "X-Micro110-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What the gateway recomputes to know the request came from us, unaltered."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class NoSmsSender:
    """No gateway configured (and not in demo mode): phone verification is unavailable."""

    async def send_code(self, phone: str, code: str) -> None:
        raise SmsUnavailable(
            "phone verification is not available on this server (no SMS gateway configured)",
            field="phone",
        )


@dataclass(frozen=True, slots=True)
class WebhookSmsSender:
    url: str
    secret: str
    timeout_s: float = 5.0
    attempts: int = 3
    backoff_s: float = 0.5

    async def send_code(self, phone: str, code: str) -> None:
        message_id = str(uuid.uuid4())
        body = json.dumps(
            {"id": message_id, "to": phone, "code": code,
             "text": f"Your 110 verification code is {code}. It expires in 5 minutes.",
             "sent_at": datetime.now(UTC).isoformat()},
            ensure_ascii=False,
        ).encode()  # fmt: skip
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        problem = "no attempt made"
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for attempt in range(1, self.attempts + 1):
                timestamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    TIMESTAMP_HEADER: timestamp,
                    SIGNATURE_HEADER: signature(self.secret, timestamp, body),
                }
                try:
                    async with http.post(self.url, data=body, headers=headers) as response:
                        if response.status < 300:
                            return
                        problem = f"HTTP {response.status}"
                        if response.status != 429 and response.status < 500:
                            break  # the gateway refuses this message: trying again won't help
                except (TimeoutError, aiohttp.ClientError) as exc:
                    problem = type(exc).__name__
                logger.warning(
                    "SMS webhook attempt failed",
                    extra={"message_id": message_id, "attempt": attempt, "problem": problem,
                           "phone": mask_phone(phone)},
                )  # fmt: skip
                if attempt < self.attempts:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        raise SmsUnavailable(
            f"the text message could not be sent ({problem}); try again shortly",
            field="phone",
            retry_after_s=30,
        )


def sms_sender_for(settings: Settings) -> SmsSender:
    """The sender `settings` choose.  The log one writes live codes where operators and
    log shippers read them, so it is used only in demo mode or when chosen by name."""
    if settings.sms_sender == "webhook":
        assert settings.sms_webhook_url is not None
        assert settings.sms_webhook_secret is not None
        return WebhookSmsSender(
            settings.sms_webhook_url, settings.sms_webhook_secret, settings.sms_webhook_timeout_s
        )
    if settings.sms_sender == "log" or (settings.sms_sender == "demo" and settings.load_demo):
        return DemoSmsSender()
    logger.warning("no SMS sender: phone verification is unavailable (MICRO110_SMS_SENDER)")
    return NoSmsSender()
