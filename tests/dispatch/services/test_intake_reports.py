"""Text and image reports (multipart) through the real app."""

import hashlib
import io
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from PIL import Image

from dispatch.http.keys import INTAKE
from tests.conftest import CitizenSession, Client, app_of, register_citizen
from tests.dispatch.calls import counts
from tests.dispatch.evidence.test_images import exif, gps_tags


def jpeg(*, gps: tuple[float, float] | None = None, size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    tags = exif(gps=gps_tags(gps[1], gps[0]) if gps else None)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=tags)
    return out.getvalue()


def png_bomb(side: int = 30_000) -> bytes:
    """A PNG whose header claims side x side pixels: tiny on disk, huge when decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))  # fmt: skip

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    row = b"\x00" * (side + 1)
    data = zlib.compress(row * 64, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def form(
    fields: dict[str, str], images: Sequence[bytes] = (), image_field: str = "images"
) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    for index, image in enumerate(images):
        data.add_field(image_field, image, filename=f"p{index}.jpg", content_type="image/jpeg")
    return data


def fields(**overrides: str) -> dict[str, str]:
    base = {"text": "两名男子在超市门口打架，其中一人持刀", "tag": "assault", "lon": "118.7926",
            "lat": "32.0732", "datum": "wgs84", "idempotency_key": f"r-{uuid.uuid4()}"}  # fmt: skip
    base.update(overrides)
    return {k: v for k, v in base.items() if v != "<omit>"}


async def test_text_report_with_images_is_stored_clean(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    photo = jpeg(gps=(118.7926, 32.0732))
    response = await app_client.post(
        "/api/reports", data=form(fields(), [photo, jpeg()]), headers=citizen.headers
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["precinct"]["code"] == "320102"
    async with pg.acquire() as conn:
        attachments = await conn.fetch("SELECT * FROM attachments ORDER BY created_at")
        report = await conn.fetchrow("SELECT text, location_source FROM reports")
    assert len(attachments) == 2
    assert report["location_source"] == "device"
    assert "持刀" in report["text"]
    evidence = app_of(app_client)[INTAKE].evidence
    for row in attachments:
        stored = evidence.path(row["storage_key"]).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == row["sha256"]
        assert row["storage_key"].endswith(f"{row['sha256']}.jpeg")
        reopened = Image.open(io.BytesIO(stored))
        assert not reopened.getexif()  # no EXIF, so no GPS, left in the evidence file
    hints = sorted((r["exif_lat"] is not None, r["exif_lat"] or 0) for r in attachments)
    assert hints[1][1] == pytest.approx(32.0732, abs=1e-4)  # kept as a hint
    assert not hints[0][0]


async def test_exif_gps_locates_a_report_without_position(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    data = form(fields(lon="<omit>", lat="<omit>", datum="<omit>"), [jpeg(gps=(118.7926, 32.0732))])
    response = await app_client.post("/api/reports", data=data, headers=citizen.headers)
    assert response.status == 201
    assert (await response.json())["precinct"]["code"] == "320102"
    async with pg.acquire() as conn:
        assert await conn.fetchval("SELECT location_source FROM reports") == "exif"


async def test_text_only_report_without_position_is_still_queued(
    app_client: Client, citizen: CitizenSession
) -> None:
    data = form(fields(lon="<omit>", lat="<omit>", datum="<omit>"))
    response = await app_client.post("/api/reports", data=data, headers=citizen.headers)
    assert response.status == 201
    body = await response.json()
    assert body["jurisdiction"] == {"status": "unknown"} and body["status"] == "queued"


BAD_REPORTS: list[tuple[str, dict[str, Any], list[bytes], int, str | None]] = [
    ("not an image", {}, [b"this is plain text, not a photo"], 400, "images[0]"),
    ("truncated jpeg", {}, [jpeg(size=(640, 480))[:1500]], 400, "images[0]"),
    ("gif", {}, [b"GIF89a" + b"\x00" * 100], 400, "images[0]"),
    ("decompression bomb", {}, [png_bomb()], 400, "images[0]"),
    ("too many images", {}, [jpeg()] * 7, 400, "images"),
    ("unknown tag", {"tag": "ufo"}, [], 400, "tag"),
    ("lat without lon", {"lon": "<omit>"}, [], 400, "lon"),
    ("nan coordinate", {"lat": "nan"}, [], 400, "lat"),
    ("infinite coordinate", {"lon": "inf"}, [], 400, "lon"),
    ("out of range", {"lat": "95"}, [], 400, "lat"),
    ("position without datum", {"datum": "<omit>"}, [], 400, "datum"),
    ("unknown datum", {"datum": "mars"}, [], 400, "datum"),
    ("no text, no image", {"text": "<omit>"}, [], 400, "text"),
    ("no idempotency key", {"idempotency_key": "<omit>"}, [], 400, "idempotency_key"),
    ("unknown field", {"severity": "1"}, [], 400, "severity"),
    ("zero accuracy", {"accuracy_m": "0"}, [], 400, "accuracy_m"),
]


@pytest.mark.parametrize(("case", "overrides", "images", "status", "field"), BAD_REPORTS,
                         ids=[c[0] for c in BAD_REPORTS])  # fmt: skip
async def test_bad_reports_write_nothing(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool,
    case: str, overrides: dict[str, str], images: list[bytes], status: int, field: str | None,
) -> None:  # fmt: skip
    before = await counts(pg)
    intake = app_of(app_client)[INTAKE]
    intake.evidence_grace_s = 0
    evidence_root = intake.evidence.path(".")
    files_before = sorted(p for p in Path(evidence_root).rglob("*") if p.is_file())
    response = await app_client.post(
        "/api/reports", data=form(fields(**overrides), images), headers=citizen.headers
    )
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    assert error["field"] == field, error
    assert await counts(pg) == before
    await intake.discards_done()
    assert sorted(p for p in Path(evidence_root).rglob("*") if p.is_file()) == files_before
    assert (await app_client.get("/healthz")).status == 200


async def test_a_valid_image_next_to_a_bad_one_leaves_no_file(
    app_client: Client, citizen: CitizenSession
) -> None:
    intake = app_of(app_client)[INTAKE]
    intake.evidence_grace_s = 0
    evidence_root = Path(intake.evidence.path("."))
    before = sorted(p for p in evidence_root.rglob("*") if p.is_file())
    unique = jpeg(size=(77, 55))
    # The bad image fails verification before anything is stored.
    response = await app_client.post(
        "/api/reports", data=form(fields(), [unique, b"junk"]), headers=citizen.headers
    )
    assert response.status == 400
    # An unknown tag fails inside the transaction, after the files were written: they
    # go once no report refers to them (at once here; 10 minutes in service).
    response = await app_client.post(
        "/api/reports", data=form(fields(tag="ufo"), [unique]), headers=citizen.headers
    )
    assert response.status == 400
    await intake.discards_done()
    assert sorted(p for p in evidence_root.rglob("*") if p.is_file()) == before


async def test_a_failed_report_never_takes_a_photo_another_report_shares(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    """Files are stored by content: a forwarded photo is one file for every report that
    carries it.  A report that fails must not remove the file from under another that
    stored the same bytes meanwhile, whether that one has committed yet or not."""
    intake = app_of(app_client)[INTAKE]
    intake.evidence_grace_s = 0.3
    other = await register_citizen(app_client, "device-forwarded-photo")
    photo = jpeg(size=(91, 37))
    failed = await app_client.post(
        "/api/reports", data=form(fields(tag="ufo"), [photo]), headers=citizen.headers
    )
    assert failed.status == 400
    # Within the grace period, another citizen reports with the same photo.
    kept = await app_client.post(
        "/api/reports", data=form(fields(), [photo]), headers=other.headers
    )
    assert kept.status == 201, await kept.text()
    await intake.discards_done()
    async with pg.acquire() as conn:
        key = await conn.fetchval(
            "SELECT storage_key FROM attachments WHERE incident_id = $1",
            uuid.UUID((await kept.json())["incident_id"]),
        )
    with Image.open(intake.evidence.path(key)) as stored:
        assert stored.size == (91, 37)

    # A photo that only a failed report carried is removed after the grace period.
    root = Path(intake.evidence.path("."))
    before = {p for p in root.rglob("*") if p.is_file()}
    failed = await app_client.post(
        "/api/reports", data=form(fields(tag="ufo"), [jpeg(size=(13, 71))]),
        headers=citizen.headers,
    )  # fmt: skip
    assert failed.status == 400
    assert len({p for p in root.rglob("*") if p.is_file()} - before) == 1  # not at once
    await intake.discards_done()
    assert {p for p in root.rglob("*") if p.is_file()} == before


async def test_limits_and_content_types(app_client: Client, citizen: CitizenSession) -> None:
    wrong_type = await app_client.post("/api/reports", json={"text": "hi"}, headers=citizen.headers)
    assert wrong_type.status == 415
    big = form(fields(), [b"\xff\xd8" + b"\x00" * (9 * 1024 * 1024)])
    too_big = await app_client.post("/api/reports", data=big, headers=citizen.headers)
    assert too_big.status == 413
    assert (await too_big.json())["error"]["field"] == "images[0]"
    garbage = await app_client.post(
        "/api/reports", data=b"--x\r\nnot really multipart",
        headers={**citizen.headers, "Content-Type": "multipart/form-data; boundary=x"},
    )  # fmt: skip
    assert garbage.status == 400
