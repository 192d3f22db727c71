"""Who is calling: the client's address, as far as we can trust what we are told."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from dispatch.http.keys import SETTINGS


def client_address(request: web.Request) -> str:
    """The caller's address: X-Real-IP when a trusted proxy sent the request."""
    remote = request.remote or "unknown"
    forwarded = request.headers.get("X-Real-IP", "").strip()
    if forwarded:
        try:
            peer = ipaddress.ip_address(remote)
            ipaddress.ip_address(forwarded)
        except ValueError:
            return remote
        if any(peer in network for network in request.app[SETTINGS].trusted_networks):
            return forwarded
    return remote
