"""Phone-like clients and consoles that ride out faults, for bench/faults.py and soak.py.

A phone sends each alarm (or photo report) with its own idempotency key and sends the
same body again, with the same key, until it gets a 201: after a refused connection or
a timeout at once to the other node, after a 429/5xx with `Retry-After` after that many
seconds, otherwise with a short back-off.  It gives up on an alarm after `give_up_s`
(reported apart: never acknowledged is not lost).  Every answer is recorded.

A console is a python-socketio client on `/console` that, whenever its connection
ends, connects again (to its own node first, then to the others, backing off with
jitter as the Socket.IO JavaScript client does) and resumes after the last seq it has,
as the console app does; it records every event it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
import socketio

CONSOLE = "/console"
TAGS = ("kidnapping", "fire", "medical", "robbery")


@dataclass(slots=True)
class Delivery:
    """One alarm or report a phone wants acknowledged, and everything it was answered."""

    key: str
    citizen: int
    photo: bool
    first_sent: float = 0.0
    acked_at: float | None = None
    incident_id: str | None = None
    case_no: str | None = None
    acks: int = 0  # 201 answers (a retry after an answer lost on the way gets one too)
    ack_incidents: set[str] = field(default_factory=set)  # every incident a 201 named
    attempts: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    retry_after_missing: int = 0  # 503/429 answers without Retry-After
    refusal: str | None = None  # a 4xx other than 429: not retried
    sent_after: list[float] = field(default_factory=list)  # when each attempt was sent


def grid_position(n: int) -> tuple[float, float]:
    """Points about 400 m apart across Nanjing: no alarm is another's possible duplicate."""
    return 118.70 + (n % 40) * 0.0045, 31.95 + (n // 40 % 40) * 0.0045


def noise_jpeg(seed: int, side: int = 96) -> bytes:
    """A small JPEG no other report carries (evidence files are shared by content)."""
    from PIL import Image

    rng = random.Random(seed)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@dataclass
class Phones:
    """Citizens on `urls`; `send()` starts one delivery and returns it."""

    urls: Sequence[str]
    tokens: Sequence[str]
    run: str
    give_up_s: float = 120.0
    timeout_s: float = 10.0
    deliveries: list[Delivery] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _http: aiohttp.ClientSession | None = None
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    async def __aenter__(self) -> Phones:
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        while self._tasks:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    def send(self, *, photo: bool = False, label: str = "") -> Delivery:
        n = next(self._counter)
        delivery = Delivery(f"{self.run}-{label}{n:06d}", n % len(self.tokens), photo)
        self.deliveries.append(delivery)
        task = asyncio.create_task(self._deliver(delivery, n))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def settle(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until every delivery is acknowledged or given up."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def _request(self, delivery: Delivery, n: int) -> tuple[str, Any]:
        lon, lat = grid_position(n % 1600)
        tag = TAGS[n // 1600 % len(TAGS)]
        if not delivery.photo:
            body = msgspec.json.encode(
                {"tag": tag, "lon": lon, "lat": lat, "accuracy_m": 10.0, "datum": "wgs84",
                 "client_time": datetime.now(UTC).isoformat(), "idempotency_key": delivery.key}
            )  # fmt: skip
            return "/api/alarms", body
        form = aiohttp.FormData()
        form.add_field("idempotency_key", delivery.key)
        form.add_field("tag", tag)
        form.add_field("text", f"photo report {delivery.key}")
        form.add_field("lon", str(lon))
        form.add_field("lat", str(lat))
        form.add_field("datum", "wgs84")
        form.add_field("images", noise_jpeg(n), filename="p.jpg", content_type="image/jpeg")
        return "/api/reports", form

    async def _deliver(self, delivery: Delivery, n: int) -> None:
        assert self._http is not None
        node = n % len(self.urls)
        headers = {"Authorization": f"Bearer {self.tokens[delivery.citizen]}"}
        delivery.first_sent = time.monotonic()
        deadline = delivery.first_sent + self.give_up_s
        backoff = 0.25
        while time.monotonic() < deadline:
            path, body = self._request(delivery, n)
            if not delivery.photo:
                headers["Content-Type"] = "application/json"
            delivery.attempts += 1
            delivery.sent_after.append(time.monotonic())
            wait: float
            try:
                async with self._http.post(
                    self.urls[node] + path, data=body, headers=headers
                ) as response:
                    status = response.status
                    answer = await response.read()
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                delivery.statuses[type(exc).__name__] += 1
                node = (node + 1) % len(self.urls)  # that node is down: the other one
                wait = backoff
            else:
                delivery.statuses[str(status)] += 1
                if status == 201:
                    decoded = msgspec.json.decode(answer)
                    delivery.acks += 1
                    delivery.ack_incidents.add(str(decoded["incident_id"]))
                    if delivery.acked_at is None:
                        delivery.acked_at = time.monotonic()
                        delivery.incident_id = str(decoded["incident_id"])
                        delivery.case_no = decoded.get("case_no")
                    return
                if status < 500 and status != 429:
                    delivery.refusal = f"{status} {answer[:200].decode(errors='replace')}"
                    return
                if retry_after is not None and retry_after.isdigit():
                    wait = float(retry_after)
                else:
                    delivery.retry_after_missing += status in (429, 503)
                    wait = backoff
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
            backoff = min(backoff * 2, 4.0)


def _on_disconnect(event: asyncio.Event, reasons: Counter[str]) -> Callable[..., None]:
    """A disconnect handler: counts the reason python-socketio gives, sets `event`."""

    def handler(*args: Any) -> None:
        reasons[str(args[0]) if args else "unknown"] += 1
        event.set()

    return handler


class _Json:
    """msgspec for the console clients: they decode every event."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return msgspec.json.encode(obj).decode()

    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        return msgspec.json.decode(text)


@dataclass
class Console:
    """A dispatcher's console feed that always comes back and resumes where it was."""

    urls: Sequence[str]
    token: str
    home: int
    received: list[tuple[float, int, str, str | None]] = field(default_factory=list)
    last_seq: int | None = None
    connections: int = 0
    resumed_at: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    resyncs: int = 0
    connected: bool = False
    failures: Counter[str] = field(default_factory=Counter)  # why connecting failed
    disconnected_at: list[float] = field(default_factory=list)
    drop_reasons: Counter[str] = field(default_factory=Counter)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _record(self, name: str, data: Any) -> None:
        seq = int(data["seq"])
        incident = data.get("incident")
        self.received.append((time.monotonic(), seq, name, incident["id"] if incident else None))
        self.last_seq = seq if self.last_seq is None else max(self.last_seq, seq)
        self._changed.set()

    async def wait_for(self, seq: int, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.last_seq is None or self.last_seq < seq or not self.connected:
                    self._changed.clear()
                    await self._changed.wait()
        return self.last_seq is not None and self.last_seq >= seq

    async def _live(
        self, answer: dict[str, Any], stop: asyncio.Event, ended: asyncio.Event
    ) -> None:
        """Resumed: count it, then wait until the connection ends or the run stops."""
        if answer.get("resync"):
            self.resyncs += 1
        seq = int(answer["seq"])
        self.last_seq = seq if self.last_seq is None else max(self.last_seq, seq)
        self.connections += 1
        self.resumed_at.append(time.monotonic())
        self.connected = True
        self._changed.set()
        stopping = asyncio.create_task(stop.wait())
        ending = asyncio.create_task(ended.wait())
        await asyncio.wait({stopping, ending}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        ending.cancel()

    async def run(self, stop: asyncio.Event) -> None:
        order = [self.home, *(i for i in range(len(self.urls)) if i != self.home)]
        attempt = 0
        while not stop.is_set():
            url = self.urls[order[attempt % len(order)]]
            sio = socketio.AsyncClient(reconnection=False, json=_Json)
            ended = asyncio.Event()
            sio.on("*", self._record, namespace=CONSOLE)
            sio.on("disconnect", _on_disconnect(ended, self.drop_reasons), namespace=CONSOLE)
            try:
                await sio.connect(
                    url, namespaces=[CONSOLE], auth={"token": self.token},
                    transports=["websocket"], wait_timeout=20,
                )  # fmt: skip
                answer = await sio.call(
                    "resume", {"last_seq": self.last_seq}, namespace=CONSOLE, timeout=15
                )
                if isinstance(answer, dict) and answer.get("ok"):
                    await self._live(answer, stop, ended)
                    attempt = 0
                else:
                    self.refused.append(repr(answer)[:200])
                    self.failures[f"resume refused: {str(answer)[:80]}"] += 1
                    attempt += 1
            except (
                socketio.exceptions.SocketIOError,
                ConnectionError,
                TimeoutError,
                OSError,
            ) as exc:
                self.failures[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                attempt += 1
            finally:
                if self.connected:
                    self.disconnected_at.append(time.monotonic())
                self.connected = False
                with contextlib.suppress(Exception):
                    await sio.disconnect()
            if not stop.is_set():
                # As the Socket.IO JavaScript client does: exponential back-off with
                # jitter, so that a node's consoles do not all come back at once.
                delay = min(5.0, 0.5 * 2 ** min(attempt, 4)) * random.uniform(0.5, 1.5)
                await asyncio.sleep(delay)
