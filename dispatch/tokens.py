"""Signed, expiring tokens (HS256 JWTs with the server's secret key).

Kinds: `citizen` (access), `citizen_refresh` (rotated: it carries the citizen's token
generation, and a refresh bumps it, so a replayed refresh token is refused),
`tracking` (lets whoever holds it follow one case), and `staff` (carries a session id
that logout revokes).  A token of one kind is never accepted as another.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from dispatch.errors import Unauthorized

_ALGORITHM = "HS256"
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


class _ServerKeyHS256(HMACAlgorithm):
    """HS256 with the server's own secret, which TokenSigner checks once.

    PyJWT checks on every call that an HMAC key is not really a PEM, SSH, DER or JWK key
    (a guard for keys of unknown origin); that costs several times the HMAC itself, on
    every authenticated request."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)

    def prepare_key(self, key: str | bytes) -> bytes:
        return key if isinstance(key, bytes) else key.encode()


_REQUIRED = ("exp", "iat", "sub", "typ")


class TokenSigner:
    def __init__(self, secret_key: bytes) -> None:
        if len(secret_key) < 32:
            raise ValueError("the token signing key needs at least 32 bytes")
        self._key = secret_key
        self._jws = jwt.PyJWS(algorithms=[_ALGORITHM])
        self._jws.unregister_algorithm(_ALGORITHM)
        self._jws.register_algorithm(_ALGORITHM, _ServerKeyHS256())

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
        body = json.dumps(payload, separators=(",", ":")).encode()
        return self._jws.encode(body, self._key, algorithm=_ALGORITHM), expires

    def verify(self, token: str, kind: TokenKind, *, now: datetime) -> Claims:
        """The claims of a valid token of `kind`; Unauthorized naming why otherwise."""
        try:
            signed = self._jws.decode_complete(token, self._key, algorithms=[_ALGORITHM])
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature is not valid", field="token") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is malformed: {exc}", field="token") from None
        # Signed by us: the payload is an object we wrote, unless the key leaked.
        payload = json.loads(signed["payload"])
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
