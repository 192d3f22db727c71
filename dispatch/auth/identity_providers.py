"""Pluggable outside parties of identity verification: SMS senders and attestation
providers.  These are the true seams that tests may replace."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dispatch.domain.errors import BadRequest, Unauthorized
from dispatch.domain.identity import (
    InvalidNationalId,
    NationalId,
    VerificationLevel,
    mask_phone,
    parse_national_id,
)

# PyJWT and cryptography are imported where they are used: a server that starts with no
# attestation provider (most) need not load them before it serves.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

logger = logging.getLogger(__name__)

# Attestations must be short-lived: a provider signs one per verification.
MAX_ATTESTATION_LIFETIME_S = 15 * 60


class SmsSender(Protocol):
    async def send_code(self, phone: str, code: str) -> None: ...


class DemoSmsSender:
    """Sends nothing: writes the code to the log, and says so loudly."""

    async def send_code(self, phone: str, code: str) -> None:
        logger.warning(
            "DEMO SMS SENDER - no text message was sent; the verification code is in this log line",
            extra={"phone": mask_phone(phone), "demo_code": code},
        )


@dataclass(frozen=True, slots=True)
class Attestation:
    provider: str
    subject: str  # the citizen id the provider verified
    level: VerificationLevel
    nonce: str
    expires_at: datetime
    name: str | None
    national_id: NationalId | None


class AttestationVerifier:
    """Verifies provider-signed attestation tokens (ES256 or RS256)."""

    def __init__(self, keys: Mapping[str, EllipticCurvePublicKey | RSAPublicKey]) -> None:
        self._keys = dict(keys)

    @classmethod
    def from_file(cls, path: Path | None) -> AttestationVerifier:
        if path is None:
            return cls({})
        from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read attestation keys from {path}: {exc}") from exc
        if not isinstance(raw, dict):
            message = f"{path}: expected an object of provider name to PEM public key"
            raise ValueError(message)  # noqa: TRY004 - a bad file, not a programming error
        keys: dict[str, EllipticCurvePublicKey | RSAPublicKey] = {}
        for provider, pem in raw.items():
            key = load_pem_public_key(str(pem).encode())
            if not isinstance(key, EllipticCurvePublicKey | RSAPublicKey):
                message = f"{path}: provider {provider!r} key is neither EC nor RSA"
                raise ValueError(message)  # noqa: TRY004
            keys[str(provider)] = key
        return cls(keys)

    @property
    def providers(self) -> frozenset[str]:
        return frozenset(self._keys)

    def verify(self, token: str, *, now: datetime) -> Attestation:
        import jwt
        from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            raise BadRequest(
                f"the attestation is not a valid token: {exc}", field="token"
            ) from None
        provider = unverified.get("iss")
        key = self._keys.get(provider) if isinstance(provider, str) else None
        if key is None:
            raise Unauthorized("the attestation comes from no configured provider", field="token")
        assert isinstance(provider, str)
        algorithm = "ES256" if isinstance(key, EllipticCurvePublicKey) else "RS256"
        if header.get("alg") != algorithm:
            raise Unauthorized(f"provider {provider} signs with {algorithm}", field="token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=provider,
                options={
                    "require": ["exp", "iat", "sub", "nonce", "level"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the attestation was refused: {exc}", field="token") from None
        exp, iat = int(claims["exp"]), int(claims["iat"])
        if exp < now.timestamp():
            raise Unauthorized("the attestation has expired", field="token")
        if exp - iat > MAX_ATTESTATION_LIFETIME_S:
            raise Unauthorized("the attestation lives too long to be accepted", field="token")
        try:
            level = VerificationLevel(claims["level"])
        except ValueError:
            raise BadRequest(
                f"unknown verification level {claims['level']!r}", field="token"
            ) from None
        if level < VerificationLevel.REAL_NAME:
            raise BadRequest("an attestation must attest real_name or face", field="token")
        national_id = None
        if claims.get("national_id") is not None:
            try:
                national_id = parse_national_id(str(claims["national_id"]), today=now.date())
            except InvalidNationalId as exc:
                raise BadRequest(
                    f"the attested ID number is invalid: {exc}", field="token"
                ) from exc
        nonce = str(claims["nonce"])
        if not 8 <= len(nonce) <= 200:
            raise BadRequest("the attestation nonce must be 8-200 characters", field="token")
        return Attestation(
            provider=provider,
            subject=str(claims["sub"]),
            level=level,
            nonce=nonce,
            expires_at=datetime.fromtimestamp(exp, UTC),
            name=str(claims["name"]) if claims.get("name") else None,
            national_id=national_id,
        )
