"""ICE servers, TURN credentials and the interfaces media is offered on.

* ICE servers are always explicit: with none configured aiortc would try a public STUN
  server and wait up to 5 s for it on every connection (aiortc #1183).
* TURN credentials follow the TURN REST scheme coturn implements with
  `use-auth-secret`: username `<expiry unix time>:<user>`, password
  base64(HMAC-SHA1(secret, username)); they expire on their own.
* Receive buffers: aioice asks 256 KB per UDP socket; a server carrying tens of calls
  on one event loop can fall behind for a moment (a burst of set-ups, a garbage
  collection), and a full buffer drops packets, which aiortc's jitter buffer then waits
  seconds for.  `enlarge_receive_buffers` asks for more (the kernel caps it at
  net.core.rmem_max, and nothing needs changing there for it to work).
* Host candidates: aioice gathers every interface but loopback (Docker bridges and
  VPNs add candidates no phone can reach).  `limit_host_interfaces` keeps the named
  ones only (process-wide, as aioice's gathering is).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ifaddr

if TYPE_CHECKING:  # imported where used: a server that starts need not wait for aiortc
    from aiortc import RTCConfiguration, RTCPeerConnection


@dataclass(frozen=True, slots=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"urls": list(self.urls)}
        if self.username is not None:
            body["username"] = self.username
            body["credential"] = self.credential
        return body


def turn_rest_credentials(secret: str, user: str, expires_at: int) -> tuple[str, str]:
    """(username, password) valid until `expires_at` for coturn's `use-auth-secret`."""
    username = f"{expires_at}:{user}"
    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(mac).decode()


def ice_servers(
    urls: Sequence[str],
    *,
    user: str,
    now: float,
    turn_secret: str | None = None,
    turn_ttl_s: int = 3600,
    turn_username: str | None = None,
    turn_password: str | None = None,
) -> list[IceServer]:
    """STUN URLs as they are; TURN URLs with time-limited credentials from the shared
    secret (or the static ones when no secret is set)."""
    stun = tuple(u for u in urls if u.startswith(("stun:", "stuns:")))
    turn = tuple(u for u in urls if u.startswith(("turn:", "turns:")))
    servers = [IceServer(stun)] if stun else []
    if turn:
        if turn_secret:
            username, password = turn_rest_credentials(turn_secret, user, int(now) + turn_ttl_s)
            servers.append(IceServer(turn, username, password))
        else:
            servers.append(IceServer(turn, turn_username, turn_password))
    return servers


def rtc_configuration(servers: Sequence[IceServer]) -> RTCConfiguration:
    from aiortc import RTCConfiguration, RTCIceServer

    # An empty list, not None: None makes aiortc fall back to Google's STUN server.
    return RTCConfiguration(
        iceServers=[RTCIceServer(list(s.urls), s.username, s.credential) for s in servers]
    )


def interface_addresses(names: Sequence[str]) -> list[str]:
    """The addresses of the named network interfaces (IPv4, and global IPv6)."""
    wanted = set(names)
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        if adapter.nice_name not in wanted and adapter.name not in wanted:
            continue
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                found.append(ip.ip)
            elif ip.ip[2] == 0 and not ipaddress.ip_address(ip.ip[0]).is_link_local:
                found.append(ip.ip[0])
    return found


def limit_host_interfaces(names: Sequence[str]) -> None:
    """Gather host candidates only on the named interfaces (all but loopback if none)."""
    if not names:
        return
    chosen = tuple(names)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            address for address in interface_addresses(chosen)
            if (":" in address and use_ipv6) or (":" not in address and use_ipv4)
        ]  # fmt: skip

    import aioice.ice

    aioice.ice.get_host_addresses = host_addresses


RECEIVE_BUFFER_BYTES = 1 << 20


def enlarge_receive_buffers(pc: RTCPeerConnection, size: int = RECEIVE_BUFFER_BYTES) -> None:
    """Ask for `size` bytes of receive buffer on the UDP sockets `pc` gathered (call
    after setLocalDescription; aioice's private `_connection._protocols`)."""
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        connection = getattr(getattr(dtls, "transport", None), "_connection", None)
        for protocol in getattr(connection, "_protocols", ()):
            sock = protocol.transport.get_extra_info("socket")
            if sock is not None and sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < size:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


_BURST = 64  # datagrams read at most per readiness of a socket


def _datagram_transport_class() -> Any:
    from asyncio import selector_events

    return getattr(selector_events, "_SelectorDatagramTransport")  # noqa: B009


# asyncio's own, for the tests that check it still does what the burst reader repeats.
ORIGINAL_READ_READY = _datagram_transport_class()._read_ready


def read_datagrams_in_bursts() -> None:
    """Make asyncio's datagram transports (this process's, created from now on) read
    every datagram waiting on a socket when it is ready, up to `_BURST`, instead of
    one per event-loop iteration: a video frame arrives as a burst of packets, and each
    packet otherwise costs a turn of the loop (an epoll_wait and its callbacks).
    Process-wide, on asyncio's private `_SelectorDatagramTransport`: for processes that
    carry media only (the media processes, the benchmark's peers)."""
    transport_class = _datagram_transport_class()

    def _read_ready(self: Any) -> None:
        sock, protocol = self._sock, self._protocol
        for _ in range(_BURST):
            if self._conn_lost:
                return
            try:
                data, addr = sock.recvfrom(self.max_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001 - as asyncio's own
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            protocol.datagram_received(data, addr)

    transport_class._read_ready = _read_ready
