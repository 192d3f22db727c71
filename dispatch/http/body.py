"""Reading request bodies: bounded, typed, and refused with a clear 4xx."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from dispatch.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

T = TypeVar("T")

_AT_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")
_MISSING = re.compile(r"missing required field `(?P<name>[^`]+)`")
# JSON's only way to write a NUL character: \u0000 after an even number of backslashes.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
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


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(
            f"the body is {request.content_length} bytes; the limit is {max_bytes}"
        )
    # `read(n)` returns what has arrived so far: a body split across packets (a phone
    # on a bad network) must be read to the end, and the limit checked as it grows.
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(max_bytes + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the body is over the limit of {max_bytes} bytes")
    return b"".join(chunks)


async def read_json(request: web.Request, model: type[T], *, max_bytes: int) -> T:
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"expected Content-Type application/json, got {request.content_type or 'none'}"
        )
    body = await read_body(request, max_bytes)
    if not body.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    if _NUL_ESCAPE.search(body):
        try:
            where = nul_path(msgspec.json.decode(body))
        except msgspec.DecodeError as exc:
            raise BadRequest(f"malformed JSON: {exc}") from None
        except RecursionError:
            raise BadRequest("malformed JSON: nested too deeply") from None
        if where is not None:
            raise BadRequest(NUL_MESSAGE, field=where)
    try:
        return msgspec.json.decode(body, type=model, strict=True)
    except msgspec.ValidationError as exc:
        field, message = field_of(exc)
        raise BadRequest(message, field=field) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
