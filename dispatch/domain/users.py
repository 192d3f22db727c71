"""Staff accounts: dispatchers, commanders, officers, administrators."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

UserId = NewType("UserId", int)

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")


class Role(StrEnum):
    DISPATCHER = "dispatcher"
    COMMANDER = "commander"
    OFFICER = "officer"
    ADMIN = "admin"

    @property
    def sees_all_precincts(self) -> bool:
        """Commanders and administrators are not limited to assigned precincts."""
        return self in (Role.COMMANDER, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    username: str
    display_name: str
    role: Role
    precincts: frozenset[str]
    active: bool


def validate_username(raw: str) -> str:
    name = raw.strip().lower()
    if not _USERNAME.match(name):
        raise ValueError(
            "a username is 3-32 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_password(raw: str) -> str:
    if len(raw) < 10:
        raise ValueError("a password needs at least 10 characters")
    if len(raw) > 1024:
        raise ValueError("a password may have at most 1024 characters")
    return raw
