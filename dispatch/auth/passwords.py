"""argon2id password hashing."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """Owns one PasswordHasher (the parameters are this server's choice)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # What an unknown username's password is checked against: the same one argon2
        # verification as a known one's, so the time taken says nothing about usernames.
        self._nobody = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def verify_nobody(self, password: str) -> bool:
        """Spend exactly what `verify` spends, for a username that does not exist (or an
        account that is disabled); always False."""
        self.verify(self._nobody, password)
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A random password a person can still type from a printed banner."""
    return secrets.token_urlsafe(12)
