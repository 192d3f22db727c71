"""A real python-socketio client that records what a namespace pushes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import socketio


@dataclass
class FeedClient:
    url: str
    namespace: str
    token: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # permessage-deflate window bits to offer, as a browser does (15); 0 offers none,
    # as python-socketio does by default.
    compress: int = 0
    # ("polling", "websocket"): long-polling first, then the upgrade, as a browser does.
    transports: tuple[str, ...] = ("websocket",)

    def __post_init__(self) -> None:
        self.sio = socketio.AsyncClient(
            reconnection=False, websocket_extra_options={"compress": self.compress}
        )
        self._changed = asyncio.Condition()
        self.refusal: Any = None
        self.sio.on("*", self._record, namespace=self.namespace)
        self.sio.on("connect_error", self._refused, namespace=self.namespace)

    async def _refused(self, data: Any) -> None:
        self.refusal = data

    async def _record(self, name: str, data: dict[str, Any]) -> None:
        async with self._changed:
            self.events.append((name, data))
            self._changed.notify_all()

    async def connect(self) -> None:
        await self.sio.connect(
            self.url, namespaces=[self.namespace], auth={"token": self.token},
            transports=list(self.transports), wait_timeout=10,
        )  # fmt: skip

    async def go_live(self) -> None:
        """Connect and resume from now on: live events only."""
        await self.connect()
        await self.resume(None)

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        answer: dict[str, Any] = await self.sio.call(
            event, data, namespace=self.namespace, timeout=15
        )
        return answer

    async def resume(self, last_seq: int | None) -> dict[str, Any]:
        answer = await self.call("resume", {"last_seq": last_seq})
        assert answer["ok"], answer
        return answer

    async def wait_for(
        self, predicate: Callable[[list[tuple[str, dict[str, Any]]]], bool], within: float = 10
    ) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: predicate(self.events))

    async def wait_for_seq(self, seq: int, within: float = 10) -> None:
        await self.wait_for(lambda events: any(d.get("seq", 0) >= seq for _, d in events), within)

    def seqs(self) -> list[int]:
        return [d["seq"] for _, d in self.events if "seq" in d]

    async def close(self) -> None:
        await self.sio.disconnect()
