"""Reading a text/image report (multipart/form-data) within hard limits.

Streaming: no part is read past its limit, the whole body is bounded, and an unknown
or repeated field is refused by name before anything is stored.
"""

from __future__ import annotations

import math
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from dispatch.domain.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from dispatch.http.body import read_body
from dispatch.wire.validation import NUL_MESSAGE

MAX_IMAGES = 6
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_TEXT_CHARS = 5000
_MAX_FIELD_BYTES = 4 * MAX_TEXT_CHARS  # UTF-8: at most 4 bytes a character
_TEXT_FIELDS = frozenset(
    {"text", "tag", "lon", "lat", "datum", "accuracy_m", "idempotency_key", "client_time"}
)
_DATUMS = frozenset({"wgs84", "gcj02", "bd09"})


@dataclass(slots=True)
class ReportForm:
    text: str = ""
    tag: str = "other"
    lon: float | None = None
    lat: float | None = None
    datum: str | None = None
    accuracy_m: float | None = None
    idempotency_key: str = ""
    client_time: datetime | None = None
    images: list[bytes] = field(default_factory=list)


async def _read_limited(part: BodyPartReader, limit: int, name: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"{name} is over the limit of {limit} bytes", field=name)
        chunks.append(chunk)
    return b"".join(chunks)


def _number(raw: str, name: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {raw[:40]!r}", field=name) from None
    if not math.isfinite(value):
        raise BadRequest(f"{name} must be a finite number", field=name)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low:g} and {high:g}", field=name)
    return value


def _set_text_field(form: ReportForm, name: str, value: str) -> None:
    if "\x00" in value:  # whether the form came as multipart or urlencoded
        raise BadRequest(NUL_MESSAGE, field=name)
    if name == "text":
        if len(value) > MAX_TEXT_CHARS:
            raise BadRequest(f"text may have at most {MAX_TEXT_CHARS} characters", field="text")
        form.text = value
    elif name == "tag":
        form.tag = value.strip()
    elif name == "lon":
        form.lon = _number(value, "lon", -180, 180)
    elif name == "lat":
        form.lat = _number(value, "lat", -90, 90)
    elif name == "accuracy_m":
        form.accuracy_m = _number(value, "accuracy_m", 0, 100_000)
        if form.accuracy_m <= 0:
            raise BadRequest("accuracy_m must be greater than 0", field="accuracy_m")
    elif name == "datum":
        if value not in _DATUMS:
            raise BadRequest(
                f"unknown datum {value[:20]!r}; use wgs84, gcj02 or bd09", field="datum"
            )
        form.datum = value
    elif name == "idempotency_key":
        form.idempotency_key = value
    elif name == "client_time":
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise BadRequest("client_time must be an ISO 8601 time", field="client_time") from None
        if parsed.tzinfo is None:
            raise BadRequest("client_time needs a time zone offset", field="client_time")
        form.client_time = parsed


async def _read_urlencoded(request: web.Request) -> ReportForm:
    """A plain HTML form without photos: text fields only."""
    body = await read_body(request, _MAX_FIELD_BYTES * 2)
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=20,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"malformed form body: {exc}") from None
    form = ReportForm()
    seen: set[str] = set()
    for name, value in pairs:
        if name not in _TEXT_FIELDS:
            raise BadRequest(f"unknown field {name[:40]!r}", field=name[:40] or None)
        if name in seen:
            raise BadRequest(f"field {name} was sent twice", field=name)
        seen.add(name)
        _set_text_field(form, name, value)
    return form


def _check(form: ReportForm) -> ReportForm:
    if not form.text.strip() and not form.images:
        raise BadRequest("a report needs text or at least one image", field="text")
    if (form.lon is None) != (form.lat is None):
        raise BadRequest(
            "send both lon and lat, or neither", field="lat" if form.lat is None else "lon"
        )
    if form.lon is not None and form.datum is None:
        raise BadRequest("declare the datum of lon/lat: wgs84, gcj02 or bd09", field="datum")
    if not 8 <= len(form.idempotency_key) <= 128 or not all(
        c.isascii() and (c.isalnum() or c in "._:-") for c in form.idempotency_key
    ):
        raise BadRequest(
            "idempotency_key must be 8-128 characters of letters, digits, '.', '_', ':' or '-'",
            field="idempotency_key",
        )
    return form


async def read_report_form(request: web.Request, max_bytes: int) -> ReportForm:
    if request.content_type == "application/x-www-form-urlencoded":
        return _check(await _read_urlencoded(request))
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            "expected Content-Type multipart/form-data (or application/x-www-form-urlencoded "
            f"without images), got {request.content_type or 'none'}"
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(
            f"the body is {request.content_length} bytes; the limit is {max_bytes}"
        )
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, HttpProcessingError) as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    form = ReportForm()
    seen: set[str] = set()
    total = 0
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not accepted")
            name = part.name or ""
            if name == "images":
                if len(form.images) >= MAX_IMAGES:
                    raise BadRequest(f"at most {MAX_IMAGES} images per report", field="images")
                data = await _read_limited(part, MAX_IMAGE_BYTES, f"images[{len(form.images)}]")
                form.images.append(data)
                total += len(data)
            elif name in _TEXT_FIELDS:
                if name in seen:
                    raise BadRequest(f"field {name} was sent twice", field=name)
                seen.add(name)
                raw = await _read_limited(part, _MAX_FIELD_BYTES, name)
                try:
                    value = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise BadRequest(f"{name} is not UTF-8 text", field=name) from None
                _set_text_field(form, name, value)
                total += len(raw)
            else:
                raise BadRequest(f"unknown field {name[:40]!r}", field=name[:40] or None)
            if total > max_bytes:
                raise PayloadTooLarge(f"the body is over the limit of {max_bytes} bytes")
    except (ValueError, AssertionError, HttpProcessingError) as exc:
        # aiohttp raises these for a broken boundary, bad part headers or a cut body.
        raise BadRequest(f"malformed multipart body: {exc}") from None
    return _check(form)
