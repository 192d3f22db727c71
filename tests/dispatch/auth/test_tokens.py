"""Our own HS256 tokens: standard JWTs, strictly checked."""

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from dispatch.auth.tokens import TokenKind, TokenSigner
from dispatch.domain.errors import Unauthorized

KEY = b"k" * 32
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_token_round_trips_and_is_a_standard_jwt() -> None:
    signer = TokenSigner(KEY)
    token, expires = signer.issue(
        TokenKind.TRACKING, "incident-1", now=NOW, ttl=timedelta(days=1), case="NJ-1"
    )
    claims = signer.verify(token, TokenKind.TRACKING, now=NOW)
    assert (claims.kind, claims.subject, claims.expires_at) == (
        TokenKind.TRACKING, "incident-1", expires,
    )  # fmt: skip
    assert claims.extra["case"] == "NJ-1" and claims.extra["jti"]
    # Any JWT library reads it, and a token such a library signs with our key passes.
    decoded = jwt.decode(token, KEY, algorithms=["HS256"], options={"verify_exp": False})
    assert decoded["sub"] == "incident-1" and decoded["iss"] == "micro110"
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    foreign = jwt.encode(
        {**decoded, "sub": "incident-2"}, KEY, algorithm="HS256", headers={"typ": "JWT"}
    )
    assert signer.verify(foreign, TokenKind.TRACKING, now=NOW).subject == "incident-2"


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("empty", lambda good: "", "malformed"),
        ("two parts", lambda good: good.rsplit(".", 1)[0], "malformed"),
        ("four parts", lambda good: good + ".x", "malformed"),
        ("not ascii", lambda good: good + "é", "malformed"),
        (
            "alg none",
            lambda good: _b64(b'{"alg":"none"}') + "." + good.split(".")[1] + ".",
            "malformed",
        ),
        (
            "another algorithm",
            lambda good: jwt.encode({"sub": "x"}, KEY * 2, algorithm="HS512"),
            "malformed",
        ),
        (
            "tampered claims",
            lambda good: ".".join(
                [
                    good.split(".")[0],
                    _b64(json.dumps({"sub": "someone-else"}).encode()),
                    good.split(".")[2],
                ]
            ),
            "signature",
        ),
        (
            "another key",
            lambda good: jwt.encode({"sub": "x"}, b"x" * 32, algorithm="HS256"),
            "signature",
        ),
        ("signature re-encoded", lambda good: good + "=", "signature"),
    ],
)
def test_bad_tokens_are_refused_naming_why(name: str, make: object, message: str) -> None:
    signer = TokenSigner(KEY)
    good, _ = signer.issue(TokenKind.CITIZEN, "c-1", now=NOW, ttl=timedelta(hours=1))
    assert callable(make)
    with pytest.raises(Unauthorized, match=message):
        signer.verify(make(good), TokenKind.CITIZEN, now=NOW)


def test_kind_and_expiry_are_checked() -> None:
    signer = TokenSigner(KEY)
    token, _ = signer.issue(TokenKind.CITIZEN, "c-1", now=NOW, ttl=timedelta(hours=1))
    with pytest.raises(Unauthorized, match="not a citizen_refresh token"):
        signer.verify(token, TokenKind.CITIZEN_REFRESH, now=NOW)
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(token, TokenKind.CITIZEN, now=NOW + timedelta(hours=2))
    with pytest.raises(ValueError, match="32 bytes"):
        TokenSigner(b"short")


def test_a_token_checked_before_is_still_checked_for_kind_and_expiry_and_copies_are_not_trusted() -> (
    None
):
    signer = TokenSigner(KEY)
    token, _ = signer.issue(TokenKind.STAFF, "7", now=NOW, ttl=timedelta(hours=1), sid="s-1")
    first = signer.verify(token, TokenKind.STAFF, now=NOW)
    first.extra["sid"] = "changed by a caller"
    assert signer.verify(token, TokenKind.STAFF, now=NOW).extra["sid"] == "s-1"
    with pytest.raises(Unauthorized, match="not a citizen token"):
        signer.verify(token, TokenKind.CITIZEN, now=NOW)
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(token, TokenKind.STAFF, now=NOW + timedelta(hours=2))
    header, body, signature = token.split(".")
    forged = _b64(json.dumps({"iss": "micro110", "typ": "staff", "sub": "1", "iat": 0,
                              "exp": 2**40, "sid": "s-1"}).encode())  # fmt: skip
    with pytest.raises(Unauthorized, match="signature"):
        signer.verify(f"{header}.{forged}.{signature}", TokenKind.STAFF, now=NOW)
    altered = ("B" if signature[0] == "A" else "A") + signature[1:]
    with pytest.raises(Unauthorized, match="signature"):
        signer.verify(f"{header}.{body}.{altered}", TokenKind.STAFF, now=NOW)
    assert signer.verify(token, TokenKind.STAFF, now=NOW).subject == "7"
