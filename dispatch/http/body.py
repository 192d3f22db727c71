"""Reading request bodies: bounded, typed, and refused with a clear 4xx."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec
from aiohttp import web

from dispatch.domain.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from dispatch.wire.validation import NUL_MESSAGE, field_of, nul_path

T = TypeVar("T")

# JSON's only way to write a NUL character: \u0000 after an even number of backslashes.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


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
