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


@dataclass(frozen=True, slots=True)
class LoginBackoff:
    """Failed logins slow down the network they come from, for that account only.

    Each (account, network) pair has `free` failures; after that every further failure
    doubles the wait before the next attempt from there (1 s, 2 s, 4 s, ... up to
    `max_s`).  Nothing is locked: the account's owner on a network that has not been
    failing gets in at once, so failing logins in someone's name is no way to lock them
    out.  A guesser spread over many networks is slowed too: once the account has seen
    `account_alarm` failures in the window, every network gets one free failure only.
    A success clears its network's count.  Networks: IPv4 addresses, IPv6 /64s.
    """

    redis: aioredis.Redis
    free: int = 5
    max_s: float = 900.0
    base_s: float = 1.0
    account_alarm: int = 20
    window_s: int = 3600
    now: Callable[[], float] = time.time
    timeout_s: float = 0.5

    @staticmethod
    def _keys(account: str, network: str) -> tuple[str, str]:
        name = account.lower()
        return f"{_PREFIX}login:{name}:{network}", f"{_PREFIX}login:{name}"

    async def wait_s(self, account: str, client: str) -> int | None:
        """Seconds before `client` may try `account` again; None: now."""
        here, _ = self._keys(account, address_group(client))
        try:
            async with asyncio.timeout(self.timeout_s):
                pipe = self.redis.pipeline(transaction=False)
                pipe.hget(here, "until")
                (until,) = await pipe.execute()
        except (OSError, redis.exceptions.RedisError):
            logger.exception("login back-off unavailable; not limiting")
            return None
        if until is None:
            return None
        left = float(until) - self.now()
        return math.ceil(left) if left > 0 else None

    async def failed(self, account: str, client: str) -> None:
        here, anywhere = self._keys(account, address_group(client))
        try:
            async with asyncio.timeout(self.timeout_s):
                pipe = self.redis.pipeline(transaction=True)
                pipe.hincrby(here, "failures", 1)
                pipe.expire(here, self.window_s)
                pipe.incr(anywhere)
                pipe.expire(anywhere, self.window_s)
                failures, _, total, _ = await pipe.execute()
                free = self.free if int(total) < self.account_alarm else 1
                if int(failures) >= free:
                    delay = min(self.max_s, self.base_s * 2 ** min(int(failures) - free, 30))
                    until = str(self.now() + delay)
                    pipe = self.redis.pipeline(transaction=False)
                    pipe.hset(here, "until", until)
                    await pipe.execute()
        except (OSError, redis.exceptions.RedisError):
            logger.exception("login back-off unavailable; not counting")

    async def succeeded(self, account: str, client: str) -> None:
        here, _ = self._keys(account, address_group(client))
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.redis.delete(here)
        except (OSError, redis.exceptions.RedisError):
            logger.exception("login back-off unavailable")


# One attempt against a budget of distinct keys per window: a retry of a key already
# counted passes (phones retry on bad networks; intake answers it with its first result).
# `force` counts it even over the limit (a reporter's first alarm).  Returns
# {allowed, keys counted in this window}.
_BUDGET_SCRIPT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return {1, redis.call('SCARD', KEYS[1])}
end
local n = redis.call('SCARD', KEYS[1])
if n >= tonumber(ARGV[2]) and ARGV[4] ~= '1' then
  return {0, n}
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, n + 1}
"""


@dataclass(frozen=True, slots=True)
class Spent:
    """One attempt against a budget: allowed or not, the attempts counted in the window
    so far (1: the first), and the seconds until the window ends."""

    allowed: bool
    count: int
    retry_after_s: int


@dataclass(frozen=True, slots=True)
class KeyedBudget:
    """At most `limit` distinct submissions (by idempotency key) per `window_s` by each
    client; 0: no limit.  Like `WindowLimit`, open when Redis cannot count."""

    redis: aioredis.Redis
    name: str
    limit: int
    window_s: int
    now: Callable[[], float] = time.time
    timeout_s: float = 0.5

    async def spend(self, who: str, key: str, *, force: bool = False) -> Spent:
        now = self.now()
        window = int(now // self.window_s)
        retry_after = max(1, math.ceil((window + 1) * self.window_s - now))
        if self.limit <= 0:
            return Spent(True, 1, retry_after)
        try:
            async with asyncio.timeout(self.timeout_s):
                allowed, count = await self.redis.eval(  # type: ignore[misc]
                    _BUDGET_SCRIPT, 1, f"{_PREFIX}{self.name}:{window}:{who}",
                    key, self.limit, self.window_s + 1, "1" if force else "0",
                )  # fmt: skip
        except (OSError, redis.exceptions.RedisError):
            logger.exception("intake budget unavailable; not limiting", extra={"limit": self.name})
            return Spent(True, 1, retry_after)
        if not allowed and int(count) == self.limit:
            logger.warning(
                "intake budget spent",
                extra={"limit": self.name, "client": who, "per_window": self.limit},
            )
        return Spent(bool(allowed), int(count), retry_after)


@dataclass(frozen=True, slots=True)
class RefusalCount:
    """How many attempts of one citizen were refused in the last `window_s` seconds."""

    redis: aioredis.Redis
    window_s: int = 24 * 3600
    timeout_s: float = 0.5

    async def add(self, citizen: str) -> int | None:
        key = f"{_PREFIX}refused:{citizen}"
        try:
            async with asyncio.timeout(self.timeout_s):
                pipe = self.redis.pipeline(transaction=True)
                pipe.incr(key)
                pipe.expire(key, self.window_s)
                count, _ = await pipe.execute()
        except (OSError, redis.exceptions.RedisError):
            logger.exception("refusal counter unavailable")
            return None
        return int(count)
