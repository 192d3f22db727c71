"""Verification of photos uploaded by citizens: JPEG, PNG and WebP only.

`verify_image` takes untrusted bytes and either returns a `VerifiedImage` whose bytes
are safe to store and show, or raises `ImageRejected` with a stable code.  Nothing
else escapes, whatever the input.

* Size is refused from the header, before any pixel is decoded: a few kilobytes can
  declare gigabytes of pixels.  Pillow's own global limit (``Image.MAX_IMAGE_PIXELS``)
  still applies on top of ``max_pixels``; it is never changed here.
* The stored picture is re-encoded from its pixels, upright (EXIF orientation
  applied), with no EXIF, XMP, ICC profile, comments or text chunks: a citizen's GPS
  position and phone model must not travel with the evidence to every console.  The
  GPS position and capture time are read first and returned as hints.
* Animated PNG and WebP are refused: a photo of a scene is a still, and keeping only
  one frame of an animation would show the dispatcher something the sender never
  chose.  JPEGs with extra pictures (MPO: phone depth or gain maps) keep the primary.
* Truncated files are refused, never padded: ``ImageFile.LOAD_TRUNCATED_IMAGES`` is a
  process-wide switch this module neither relies on nor sets.

It is CPU work meant for an executor thread, and keeps no state between calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
import numbers
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from PIL import ExifTags, Image


class ImageFormat(StrEnum):
    # Member names are Pillow's format ids, values are what the API and media types use.
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"

    @property
    def media_type(self) -> str:
        return f"image/{self.value}"


class ImageProblem(StrEnum):
    TOO_LARGE = "too_large"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_MANY_PIXELS = "too_many_pixels"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"


class ImageRejected(ValueError):
    def __init__(self, code: ImageProblem, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class VerifiedImage:
    format: ImageFormat
    width: int
    height: int
    sha256: str
    """Hex SHA-256 of `data`, the bytes actually stored."""
    # Kept out of repr: data is large, and a citizen's position does not belong in logs.
    data: bytes = field(repr=False)
    gps: tuple[float, float] | None = field(repr=False)
    """(longitude, latitude) from EXIF; a hint only, as EXIF seldom says WGS84 or GCJ-02."""
    taken_at: dt.datetime | None
    """EXIF DateTimeOriginal: the camera's local wall-clock time, hence naive."""

    @property
    def media_type(self) -> str:
        return self.format.media_type


def verify_image(data: bytes, *, max_bytes: int, max_pixels: int) -> VerifiedImage:
    """Check an uploaded photo and return a clean copy; raises `ImageRejected`."""
    if len(data) > max_bytes:
        raise ImageRejected(
            ImageProblem.TOO_LARGE, f"the image has {len(data)} bytes, at most {max_bytes} allowed"
        )
    kind = _sniff(data)
    if kind is ImageFormat.WEBP:
        _check_webp_container(data, max_pixels=max_pixels)
    elif kind is ImageFormat.JPEG and data.count(b"\xff\xda") > _MAX_JPEG_SCANS:
        # Every progressive scan walks the whole image again, so thousands of tiny
        # scans cost CPU out of all proportion to the file's size and pixel count.
        raise ImageRejected(ImageProblem.CORRUPT, "the JPEG has an implausible number of scans")

    try:
        # Naming the one format keeps every other Pillow plugin away from the bytes.
        with Image.open(io.BytesIO(data), formats=[kind.name]) as image:
            _check_header(image, kind, max_pixels=max_pixels)
            image.load()
            hints = _read_hints(image)
            upright = _upright(image, hints.orientation)
            lossless = kind is ImageFormat.WEBP and _is_lossless_webp(data)
            clean = _encode(upright, kind, lossless=lossless)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own header check (the warning only arrives as an exception when the
        # process turns warnings into errors).
        raise ImageRejected(
            ImageProblem.TOO_MANY_PIXELS, "the image declares more pixels than allowed"
        ) from exc
    except Exception as exc:
        # Pillow's parsers are third-party C and Python whose exception types are not
        # part of its API (OSError, SyntaxError, struct.error, IndexError, ValueError
        # and more all occur on malformed input); the contract is that untrusted bytes
        # produce ImageRejected and nothing else.
        if _looks_truncated(exc, kind, data):
            raise ImageRejected(
                ImageProblem.TRUNCATED, "the image ends before its pixel data does"
            ) from exc
        # Pillow's wording stays in the chained exception for logs, not in the reply.
        raise ImageRejected(ImageProblem.CORRUPT, "the image cannot be decoded") from exc

    return VerifiedImage(
        format=kind,
        width=upright.width,
        height=upright.height,
        sha256=hashlib.sha256(clean).hexdigest(),
        data=clean,
        gps=hints.gps,
        taken_at=hints.taken_at,
    )


# --- recognising the format --------------------------------------------------------

# Pillow reports a JPEG carrying extra pictures (depth maps, gain maps) as MPO.
_ACCEPTED_PILLOW_FORMATS = types.MappingProxyType(
    {
        ImageFormat.JPEG: frozenset({"JPEG", "MPO"}),
        ImageFormat.PNG: frozenset({"PNG"}),
        ImageFormat.WEBP: frozenset({"WEBP"}),
    }
)
# Images we recognise but do not take, so the citizen is told to convert rather than
# that the file is not a picture.  Only signatures are read: no other Pillow plugin
# ever parses the bytes.
_OTHER_IMAGE_SIGNATURES = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"qoif", "QOI"),
)
_ISO_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)
_SVG_START = re.compile(
    rb"\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!doctype\s+svg|<svg)", re.I | re.S
)
_MAX_JPEG_SCANS = 256
# An extended WebP has a handful of chunks (ICCP, ANIM, EXIF, XMP, ALPH) before the image.
_MAX_WEBP_CHUNKS_BEFORE_IMAGE = 16


def _sniff(data: bytes) -> ImageFormat:
    if data.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageFormat.PNG
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if not data:
        raise ImageRejected(ImageProblem.NOT_AN_IMAGE, "the upload is empty")
    for signature, name in _OTHER_IMAGE_SIGNATURES:
        if data.startswith(signature):
            raise ImageRejected(ImageProblem.UNSUPPORTED_FORMAT, _unsupported_message(name))
    if data[4:8] == b"ftyp" and data[8:12] in _ISO_IMAGE_BRANDS:
        raise ImageRejected(ImageProblem.UNSUPPORTED_FORMAT, _unsupported_message("HEIF/AVIF"))
    if _SVG_START.match(data.removeprefix(b"\xef\xbb\xbf")[:4096]):
        raise ImageRejected(ImageProblem.UNSUPPORTED_FORMAT, _unsupported_message("SVG"))
    raise ImageRejected(ImageProblem.NOT_AN_IMAGE, "the upload is not a JPEG, PNG or WebP image")


def _unsupported_message(name: str) -> str:
    return f"{name} images are not accepted; send a JPEG, PNG or WebP photo"


# --- WebP container ----------------------------------------------------------------
# Pillow hands the whole file to libwebp's animation decoder when it opens a WebP,
# and that decoder allocates the full canvas straight away, so the canvas size is
# read here from the first chunk instead.


def _check_webp_container(data: bytes, *, max_pixels: int) -> None:
    declared_end = 8 + int.from_bytes(data[4:8], "little")
    if declared_end > len(data):
        raise ImageRejected(ImageProblem.TRUNCATED, "the WebP file ends before its last chunk")
    canvas = _webp_canvas(data)
    if canvas is None:
        raise ImageRejected(ImageProblem.CORRUPT, "the WebP header is malformed")
    _check_pixels(*canvas, max_pixels=max_pixels)


def _webp_canvas(data: bytes) -> tuple[int, int] | None:
    if len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return (
            1 + int.from_bytes(data[24:27], "little"),
            1 + int.from_bytes(data[27:30], "little"),
        )
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(data[26:28], "little") & 0x3FFF,
            int.from_bytes(data[28:30], "little") & 0x3FFF,
        )
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _is_lossless_webp(data: bytes) -> bool:
    """Whether the first image chunk is VP8L, so re-encoding keeps it lossless."""
    position = 12
    for _ in range(_MAX_WEBP_CHUNKS_BEFORE_IMAGE):
        if position + 8 > len(data):
            break
        chunk = data[position : position + 4]
        if chunk in (b"VP8L", b"VP8 "):
            return chunk == b"VP8L"
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        position += 8 + size + (size & 1)
    return False


# --- header checks and decoding ----------------------------------------------------


def _check_header(image: Image.Image, kind: ImageFormat, *, max_pixels: int) -> None:
    if image.format not in _ACCEPTED_PILLOW_FORMATS[kind]:
        raise ImageRejected(ImageProblem.CORRUPT, f"the file is not a valid {kind.name} image")
    _check_pixels(image.width, image.height, max_pixels=max_pixels)
    if kind is not ImageFormat.JPEG and getattr(image, "n_frames", 1) > 1:
        raise ImageRejected(
            ImageProblem.UNSUPPORTED_FORMAT, "animated images are not accepted; send a photo"
        )


def _check_pixels(width: int, height: int, *, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise ImageRejected(ImageProblem.CORRUPT, f"the image declares a size of {width}x{height}")
    if width * height > max_pixels:
        raise ImageRejected(
            ImageProblem.TOO_MANY_PIXELS,
            f"the image has {width}x{height} pixels, at most {max_pixels} allowed",
        )


def _looks_truncated(exc: Exception, kind: ImageFormat, data: bytes) -> bool:
    # Pillow has no exception type for this; its decoders say "truncated" when the
    # stream ends before the pixel data does.
    if isinstance(exc, EOFError) or "truncated" in str(exc):
        return True
    # A failure in a file missing its end marker is most likely a cut upload (WebP's
    # declared length was checked before decoding).
    end_marker = {ImageFormat.JPEG: b"\xff\xd9", ImageFormat.PNG: b"IEND"}.get(kind)
    return end_marker is not None and end_marker not in data


# --- metadata hints ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hints:
    orientation: int = 1
    gps: tuple[float, float] | None = None
    taken_at: dt.datetime | None = None


def _read_hints(image: Image.Image) -> _Hints:
    try:
        exif = image.getexif()
        orientation = exif.get(ExifTags.Base.Orientation)
        taken = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal)
        return _Hints(
            orientation=orientation
            if isinstance(orientation, int) and orientation in _ORIENTATION_FIXES
            else 1,
            gps=_gps_position(exif.get_ifd(ExifTags.IFD.GPSInfo)),
            taken_at=_exif_datetime(taken),
        )
    except Exception:  # noqa: BLE001
        # Malformed EXIF costs the hints, never the photo: the pixels decoded and the
        # metadata is discarded anyway.
        return _Hints()


def _gps_position(gps: Mapping[int, object]) -> tuple[float, float] | None:
    if _exif_text(gps.get(ExifTags.GPS.GPSStatus)) == "V":
        return None  # the receiver marked the fix void
    latitude = _signed_degrees(
        gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "N", "S"
    )
    longitude = _signed_degrees(
        gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "E", "W"
    )
    if latitude is None or longitude is None:
        return None
    if abs(latitude) > 90 or abs(longitude) > 180:
        return None
    if latitude == 0 and longitude == 0:
        return None  # what cameras write when they had no fix
    return longitude, latitude


def _signed_degrees(value: object, ref: object, positive: str, negative: str) -> float | None:
    sign = {positive: 1.0, negative: -1.0}.get(_exif_text(ref) or "")
    if sign is None or not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = []
    for part in value:
        if not isinstance(part, numbers.Real):
            return None
        number = float(part)  # a zero denominator gives NaN, refused below
        if not math.isfinite(number) or number < 0:
            return None
        parts.append(number)
    degrees, minutes, seconds = parts
    if minutes >= 60 or seconds >= 60:
        return None
    return sign * (degrees + minutes / 60 + seconds / 3600)


def _exif_text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 ").upper()


_EXIF_DATETIME = re.compile(
    r"([0-9]{4})[:-]([0-9]{2})[:-]([0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})"
)


def _exif_datetime(value: object) -> dt.datetime | None:
    text = _exif_text(value)
    match = _EXIF_DATETIME.match(text) if text else None
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(group) for group in match.groups())
        return dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None  # "0000:00:00 00:00:00" and other placeholders


# --- the clean copy ----------------------------------------------------------------

_ORIENTATION_FIXES = types.MappingProxyType(
    {
        1: None,
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }
)
_JPEG_QUALITY = 95
_WEBP_QUALITY = 95


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    fix = _ORIENTATION_FIXES[orientation]
    upright = image.transpose(fix) if fix is not None else image
    # Savers read ICC profiles, comments and transparency from `info`; only
    # transparency is part of the picture.
    transparency = image.info.get("transparency")
    upright.info = {} if transparency is None else {"transparency": transparency}
    return upright


def _encode(image: Image.Image, kind: ImageFormat, *, lossless: bool) -> bytes:
    out = io.BytesIO()
    if kind is ImageFormat.JPEG:
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=_JPEG_QUALITY, optimize=True)
    elif kind is ImageFormat.PNG:
        image.save(out, "PNG")
    elif lossless:
        image.save(out, "WEBP", lossless=True)
    else:
        image.save(out, "WEBP", quality=_WEBP_QUALITY)
    return out.getvalue()
