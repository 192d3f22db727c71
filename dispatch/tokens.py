"""Signed, expiring tokens (HS256 JWTs with the server's secret key).

Kinds: `citizen` (access), `citizen_refresh` (rotated: it carries the citizen's token
generation, and a refresh bumps it, so a replayed refresh token is refused),
`tracking` (lets whoever holds it follow one case), and `staff` (carries a session id
that logout revokes).  A token of one kind is never accepted as another.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt

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


class TokenSigner:
    def __init__(self, secret_key: bytes) -> None:
        if len(secret_key) < 32:
            raise ValueError("the token signing key needs at least 32 bytes")
        self._key = secret_key

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
        return jwt.encode(payload, self._key, algorithm=_ALGORITHM), expires

    def verify(self, token: str, kind: TokenKind, *, now: datetime) -> Claims:
        """The claims of a valid token of `kind`; Unauthorized naming why otherwise."""
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                leeway=_LEEWAY_S,
                options={
                    "require": ["exp", "iat", "sub", "typ"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature is not valid", field="token") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is malformed: {exc}", field="token") from None
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
