"""How often a client may do something: fixed-window counters in Redis, shared by
every node.

For what costs the service and is open to anyone, such as creating a citizen account.
When Redis cannot count, nothing is limited (logged): a reporter must never be turned
away because an index is down.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
import redis.exceptions

logger = logging.getLogger(__name__)

_PREFIX = "m110:limit:"


def address_group(address: str) -> str:
    """Whom a limit counts: an IPv4 address, or an IPv6 /64 (one phone, one household
    or one subscriber gets a whole /64, so counting addresses would count nothing)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """At most `limit` attempts per `window_s` seconds by each client; 0: no limit."""

    redis: aioredis.Redis
    name: str
    limit: int
    window_s: int
    now: Callable[[], float] = time.time
    # A counter that does not answer at once is no counter: let the attempt through.
    timeout_s: float = 0.5

    async def count(self, who: str) -> int | None:
        """Count one attempt by `who`.  None when it is allowed, else the seconds until
        the window ends (for Retry-After)."""
        if self.limit <= 0:
            return None
        now = self.now()
        window = int(now // self.window_s)
        key = f"{_PREFIX}{self.name}:{window}:{who}"
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, self.window_s + 1)
            async with asyncio.timeout(self.timeout_s):
                attempts, _ = await pipe.execute()
        except (OSError, redis.exceptions.RedisError):
            logger.exception(
                "rate limit counter unavailable; not limiting", extra={"limit": self.name}
            )
            return None
        if int(attempts) <= self.limit:
            return None
        if int(attempts) == self.limit + 1:  # once per window and client: who, and how often
            logger.warning(
                "rate limit reached",
                extra={"limit": self.name, "client": who, "per_window": self.limit},
            )
        return max(1, math.ceil((window + 1) * self.window_s - now))
