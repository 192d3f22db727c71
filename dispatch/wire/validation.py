"""Checks on decoded wire payloads that HTTP and Socket.IO share: NUL characters
(PostgreSQL stores none in text) and which field a msgspec error is about."""

from __future__ import annotations

import re
from typing import Any

import msgspec

_AT_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")
_MISSING = re.compile(r"missing required field `(?P<name>[^`]+)`")
NUL_MESSAGE = "text must not contain NUL characters (\\u0000)"


def nul_path(value: Any) -> str | None:
    """Where in decoded JSON a string (value or key) holds a NUL character, if anywhere:
    PostgreSQL stores no NUL in text, so such input is refused, naming the field.
    (A loop, not recursion: the nesting is the sender's to choose.)"""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path or "body"
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in str(key):
                    return where
                stack.append((where, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", inner) for i, inner in reversed(list(enumerate(item))))
    return None


def field_of(error: msgspec.ValidationError) -> tuple[str | None, str]:
    """The field a msgspec error is about (`points[2].lat`), and the message without it."""
    message = str(error)
    path: str | None = None
    if match := _AT_PATH.search(message):
        path = match["path"].lstrip(".") or None
        message = message[: match.start()]
    for pattern in (_UNKNOWN, _MISSING):
        if found := pattern.search(message):
            name = found["name"]
            path = f"{path}.{name}" if path else name
    return path, message
