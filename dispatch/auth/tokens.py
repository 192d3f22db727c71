"""Signed, expiring tokens (HS256 JWTs with the server's secret key).

Kinds: `citizen` (access), `citizen_refresh` (rotated: it carries the citizen's token
generation, and a refresh bumps it, so a replayed refresh token is refused),
`tracking` (lets whoever holds it follow one case), and `staff` (carries a session id
that logout revokes).  A token of one kind is never accepted as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec

from dispatch.domain.errors import Unauthorized

_ISSUER = "micro110"
# Leeway for clock skew between app nodes.
_LEEWAY_S = 5


class TokenKind(StrEnum):
    CITIZEN = "citizen"
    CITIZEN_REFRESH = "citizen_refresh"
    TRACKING = "tracking"
    STAFF = "staff"


@dataclass(frozen=True, slots=True)
class Claims:
    kind: TokenKind
    subject: str
    expires_at: datetime
    extra: dict[str, Any]


# The JOSE header of every token we issue: {"alg":"HS256","typ":"JWT"}, as a standard
# JWT library writes it (compact, sorted keys).  A token with any other header was not
# issued here - "alg": "none" included - and is refused before anything else is read.
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
_encode_json = msgspec.json.Encoder().encode
_decode_json = msgspec.json.Decoder().decode


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


_REQUIRED = ("exp", "iat", "sub", "typ")
# Tokens whose signature was checked lately, with their payloads: a phone or a console
# sends the same token with every request, so its HMAC and decoding are done once.
# Only what was signed here gets in (failures are never kept); everything else about a
# token (issuer, kind, expiry; and the caller's revocation checks) is checked each time.
_VERIFIED_MAX = 4096


class TokenSigner:
    def __init__(self, secret_key: bytes) -> None:
        if len(secret_key) < 32:
            raise ValueError("the token signing key needs at least 32 bytes")
        self._key = secret_key
        self._verified: dict[str, dict[str, Any]] = {}

    def _sign(self, signing_input: bytes) -> bytes:
        return _b64(hmac.digest(self._key, signing_input, "sha256"))

    def issue(
        self, kind: TokenKind, subject: str, *, now: datetime, ttl: timedelta, **extra: Any
    ) -> tuple[str, datetime]:
        expires = now + ttl
        payload = {
            "iss": _ISSUER,
            "typ": kind.value,
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": secrets.token_urlsafe(9),
            **extra,
        }
        # A compact JWS (RFC 7515), written here rather than by a JWT library: this runs
        # twice per alarm (the citizen's token checked, a tracking token issued) and the
        # library took 3x as long.  Any HS256 JWT library reads these tokens.
        signing_input = _HEADER + b"." + _b64(_encode_json(payload))
        return (signing_input + b"." + self._sign(signing_input)).decode(), expires

    def _verify_signature(self, token: str) -> dict[str, Any]:
        """The payload of a token signed with our key; Unauthorized naming why otherwise."""
        try:
            header, body, signature = token.encode("ascii").split(b".")
        except (UnicodeEncodeError, ValueError):
            raise Unauthorized(
                "the token is malformed: not three base64url parts", field="token"
            ) from None
        if header != _HEADER:
            raise Unauthorized(
                "the token is malformed: not an HS256 token of this server", field="token"
            )
        if not hmac.compare_digest(self._sign(header + b"." + body), signature):
            raise Unauthorized("the token's signature is not valid", field="token")
        # Signed by us: the payload is an object we wrote, unless the key leaked.
        payload: dict[str, Any] = _decode_json(_unb64(body))
        return payload

    def verify(self, token: str, kind: TokenKind, *, now: datetime) -> Claims:
        """The claims of a valid token of `kind`; Unauthorized naming why otherwise."""
        payload = self._verified.get(token)
        if payload is None:
            payload = self._verify_signature(token)
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.clear()  # cheaper than ordering them: refilled as they come
            self._verified[token] = payload
        if missing := [claim for claim in _REQUIRED if claim not in payload]:
            raise Unauthorized(f"the token has no {missing[0]!r} claim", field="token")
        if payload.get("iss") != _ISSUER:
            raise Unauthorized("the token is malformed: it was not issued here", field="token")
        if payload.get("typ") != kind.value:
            raise Unauthorized(f"this is not a {kind.value} token", field="token")
        # Expiry is checked against our clock (an input), not the wall clock.
        if int(payload["exp"]) + _LEEWAY_S < now.timestamp():
            raise Unauthorized("the token has expired", field="token")
        extra = {k: v for k, v in payload.items() if k not in {"iss", "typ", "sub", "iat", "exp"}}
        expires = datetime.fromtimestamp(int(payload["exp"]), tz=now.tzinfo)
        return Claims(TokenKind(payload["typ"]), str(payload["sub"]), expires, extra)


def token_digest(token: str) -> str:
    """What we store of a token we may need to recognise again (never the token)."""
    return hashlib.sha256(token.encode()).hexdigest()
