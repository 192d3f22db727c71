import datetime as dt
import hashlib
import io
import math
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, ImageFile, PngImagePlugin, TiffImagePlugin

from dispatch.evidence.images import (
    ImageFormat,
    ImageProblem,
    ImageRejected,
    VerifiedImage,
    verify_image,
)

MAX_BYTES = 5_000_000
MAX_PIXELS = 4_000_000
RED = (255, 0, 0)
BLUE = (0, 0, 255)
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description GPSLatitude="SECRET"/></x:xmpmeta>'
Rational = TiffImagePlugin.IFDRational


def verify(data: bytes, **limits: int) -> VerifiedImage:
    return verify_image(
        data,
        max_bytes=limits.get("max_bytes", MAX_BYTES),
        max_pixels=limits.get("max_pixels", MAX_PIXELS),
    )


def rejection(data: bytes, **limits: int) -> ImageProblem:
    with pytest.raises(ImageRejected) as caught:
        verify(data, **limits)
    return caught.value.code


def two_tone(size: tuple[int, int] = (64, 32), mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: survives JPEG and shows which way is up."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1]))
    return image.convert(mode)


def encode(image: Image.Image, format: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **params)
    return out.getvalue()


def dms(degrees: float) -> tuple[Rational, Rational, Rational]:
    whole = int(degrees)
    minutes = int((degrees - whole) * 60)
    seconds = round(((degrees - whole) * 60 - minutes) * 60 * 1000)
    return Rational(whole, 1), Rational(minutes, 1), Rational(seconds, 1000)


def exif(
    *,
    orientation: int | None = None,
    gps: dict[int, object] | None = None,
    taken: str | None = None,
) -> Image.Exif:
    data = Image.Exif()
    data[ExifTags.Base.Make] = "PhoneMaker"
    data[ExifTags.Base.Model] = "SECRET-MODEL"
    if orientation is not None:
        data[ExifTags.Base.Orientation] = orientation
    if gps is not None:
        data[ExifTags.IFD.GPSInfo] = gps
    if taken is not None:
        data[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: taken}
    return data


def gps_tags(latitude: float, longitude: float) -> dict[int, object]:
    return {
        ExifTags.GPS.GPSLatitudeRef: "N" if latitude >= 0 else "S",
        ExifTags.GPS.GPSLatitude: dms(abs(latitude)),
        ExifTags.GPS.GPSLongitudeRef: "E" if longitude >= 0 else "W",
        ExifTags.GPS.GPSLongitude: dms(abs(longitude)),
    }


NANJING = (118.7966, 32.0584)  # (lon, lat)


def assert_clean(verified: VerifiedImage) -> Image.Image:
    """The stored bytes carry no metadata; returns them decoded."""
    assert verified.sha256 == hashlib.sha256(verified.data).hexdigest()
    reopened = Image.open(io.BytesIO(verified.data))
    assert reopened.format is not None
    assert reopened.format.lower() == verified.format
    assert len(reopened.getexif()) == 0
    for key in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "Comment"):
        assert key not in reopened.info
    if isinstance(reopened, PngImagePlugin.PngImageFile):
        assert not reopened.text
    for secret in (b"Exif", b"SECRET", b"PhoneMaker", b"http://ns.adobe.com/xap"):
        assert secret not in verified.data
    reopened.load()
    assert reopened.size == (verified.width, verified.height)
    return reopened


def near(pixel: object, colour: tuple[int, int, int]) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= 40 for a, b in zip(pixel[:3], colour, strict=True))


# --- accepted photos ---------------------------------------------------------------


def test_jpeg_is_stripped_made_upright_and_keeps_its_hints() -> None:
    source = two_tone((64, 32))
    data = encode(
        source,
        "JPEG",
        exif=exif(orientation=6, gps=gps_tags(NANJING[1], NANJING[0]), taken="2024:05:01 13:45:10"),
        icc_profile=SRGB_ICC,
        comment=b"SECRET comment",
        xmp=XMP,
    )
    assert b"SECRET" in data
    assert b"Exif" in data

    verified = verify(data)

    assert verified.format is ImageFormat.JPEG
    assert verified.media_type == "image/jpeg"
    # Orientation 6 means "rotate 90 degrees clockwise to view": the red left half
    # becomes the top half of a portrait picture.
    assert (verified.width, verified.height) == (32, 64)
    reopened = assert_clean(verified).convert("RGB")
    assert near(reopened.getpixel((16, 8)), RED)
    assert near(reopened.getpixel((16, 56)), BLUE)
    assert verified.gps is not None
    assert verified.gps == pytest.approx(NANJING, abs=1e-6)
    assert verified.taken_at == dt.datetime(2024, 5, 1, 13, 45, 10)


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [(-33.8568, 151.2153), (40.6892, -74.0445), (-22.9519, -43.2105), (89.9, 179.9)],
)
def test_gps_references_give_the_sign(latitude: float, longitude: float) -> None:
    data = encode(two_tone(), "JPEG", exif=exif(gps=gps_tags(latitude, longitude)))
    assert verify(data).gps == pytest.approx((longitude, latitude), abs=1e-6)


def malformed(**changes: object) -> dict[int, object]:
    tags = gps_tags(NANJING[1], NANJING[0])
    for name, value in changes.items():
        tag = ExifTags.GPS[name]
        if value is None:
            del tags[tag]
        else:
            tags[tag] = value
    return tags


@pytest.mark.parametrize(
    "gps",
    [
        malformed(GPSLatitude=(Rational(32, 1), Rational(3, 1), Rational(1, 0))),  # NaN
        malformed(GPSLatitude=(Rational(91, 1), Rational(0, 1), Rational(0, 1))),
        malformed(GPSLongitude=(Rational(180, 1), Rational(30, 1), Rational(0, 1))),
        malformed(GPSLatitude=(Rational(32, 1), Rational(75, 1), Rational(0, 1))),
        malformed(GPSLatitude=(Rational(32, 1), Rational(3, 1))),
        malformed(GPSLatitude=Rational(32, 1)),
        malformed(GPSLatitude=(Rational(32, 1),) * 4),
        malformed(GPSLatitudeRef=None),
        malformed(GPSLongitudeRef="X"),
        malformed(GPSLongitude=None),
        malformed(GPSStatus="V"),
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: dms(0),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: dms(0),
        },
        {},
    ],
)
def test_malformed_gps_is_no_hint_but_the_photo_is_kept(gps: dict[int, object]) -> None:
    verified = verify(encode(two_tone(), "JPEG", exif=exif(gps=gps)))
    assert verified.gps is None
    assert_clean(verified)


@pytest.mark.parametrize(
    ("taken", "expected"),
    [
        ("2023:12:31 23:59:59", dt.datetime(2023, 12, 31, 23, 59, 59)),
        ("2023-12-31 08:00:00", dt.datetime(2023, 12, 31, 8, 0, 0)),
        ("0000:00:00 00:00:00", None),
        ("2023:02:30 10:00:00", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_taken_at(taken: str | None, expected: dt.datetime | None) -> None:
    assert verify(encode(two_tone(), "JPEG", exif=exif(taken=taken))).taken_at == expected


def test_png_is_stripped_losslessly_and_rotated() -> None:
    source = two_tone((40, 20), "RGBA")
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "SECRET text chunk")
    text.add_text("XML:com.adobe.xmp", XMP.decode(), zip=True)
    data = encode(
        source,
        "PNG",
        pnginfo=text,
        icc_profile=SRGB_ICC,
        exif=exif(orientation=3, gps=gps_tags(NANJING[1], NANJING[0])),
    )

    verified = verify(data)

    assert verified.format is ImageFormat.PNG
    assert verified.media_type == "image/png"
    assert verified.gps == pytest.approx(NANJING, abs=1e-6)
    reopened = assert_clean(verified)
    assert reopened.tobytes() == source.rotate(180).tobytes()


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_png_modes_survive_pixel_for_pixel(mode: str) -> None:
    source = two_tone((30, 10), "RGB").convert(mode)
    params: dict[str, object] = {"transparency": 0} if mode == "P" else {}
    verified = verify(encode(source, "PNG", **params))
    reopened = assert_clean(verified)
    assert reopened.mode == source.mode
    assert reopened.tobytes() == source.tobytes()
    if mode == "P":
        assert reopened.info.get("transparency") == 0
        assert reopened.convert("RGBA").tobytes() == source.convert("RGBA").tobytes()


@pytest.mark.parametrize(("mode", "output_mode"), [("L", "L"), ("CMYK", "RGB"), ("RGB", "RGB")])
def test_jpeg_modes(mode: str, output_mode: str) -> None:
    verified = verify(encode(two_tone(mode=mode), "JPEG"))
    assert assert_clean(verified).mode == output_mode


def test_lossy_webp_stays_lossy_and_is_stripped() -> None:
    data = encode(
        two_tone(),
        "WEBP",
        quality=80,
        exif=exif(orientation=8, gps=gps_tags(NANJING[1], NANJING[0]), taken="2024:01:02 03:04:05"),
        icc_profile=SRGB_ICC,
        xmp=XMP,
    )
    verified = verify(data)
    assert verified.format is ImageFormat.WEBP
    assert verified.media_type == "image/webp"
    assert verified.gps == pytest.approx(NANJING, abs=1e-6)
    assert verified.taken_at == dt.datetime(2024, 1, 2, 3, 4, 5)
    # Orientation 8: rotate 90 degrees counter-clockwise, so red ends up at the bottom.
    reopened = assert_clean(verified).convert("RGB")
    assert (verified.width, verified.height) == (32, 64)
    assert near(reopened.getpixel((16, 56)), RED)
    assert verified.data[12:16] == b"VP8 "


def test_lossless_webp_stays_lossless() -> None:
    source = two_tone((20, 20), "RGBA")
    verified = verify(encode(source, "WEBP", lossless=True, exif=exif(taken="2024:01:02 03:04:05")))
    reopened = assert_clean(verified)
    assert verified.data[12:16] == b"VP8L"
    assert reopened.convert("RGBA").tobytes() == source.tobytes()


def test_multi_picture_jpeg_keeps_the_primary_picture() -> None:
    primary, depth_map = two_tone((48, 24)), Image.new("RGB", (12, 6), "white")
    data = encode(primary, "MPO", save_all=True, append_images=[depth_map])
    verified = verify(data)
    assert verified.format is ImageFormat.JPEG
    assert (verified.width, verified.height) == (48, 24)
    assert_clean(verified)


def test_repr_hides_the_position_and_the_bytes() -> None:
    verified = verify(encode(two_tone(), "JPEG", exif=exif(gps=gps_tags(NANJING[1], NANJING[0]))))
    shown = repr(verified)
    assert "118.79" not in shown
    assert "32.05" not in shown
    assert "\\x" not in shown
    assert verified.sha256 in shown


# --- refused uploads ---------------------------------------------------------------

HEIC_HEADER = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", ImageProblem.NOT_AN_IMAGE),
        (b"Help, there is a fire on the third floor", ImageProblem.NOT_AN_IMAGE),
        (b"%PDF-1.7\n", ImageProblem.NOT_AN_IMAGE),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", ImageProblem.NOT_AN_IMAGE),
        (b"<?xml version='1.0'?><note>hi</note>", ImageProblem.NOT_AN_IMAGE),
        (encode(two_tone(), "GIF"), ImageProblem.UNSUPPORTED_FORMAT),
        (encode(two_tone(), "BMP"), ImageProblem.UNSUPPORTED_FORMAT),
        (encode(two_tone(), "TIFF"), ImageProblem.UNSUPPORTED_FORMAT),
        (encode(two_tone((16, 16)), "ICO"), ImageProblem.UNSUPPORTED_FORMAT),
        (HEIC_HEADER, ImageProblem.UNSUPPORTED_FORMAT),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', ImageProblem.UNSUPPORTED_FORMAT),
        (
            b"\xef\xbb\xbf<?xml version='1.0'?>\n<!-- x -->\n<svg onload='alert(1)'/>",
            ImageProblem.UNSUPPORTED_FORMAT,
        ),
    ],
)
def test_refused_by_kind(data: bytes, code: ImageProblem) -> None:
    assert rejection(data) is code


def test_animated_png_and_webp_are_refused() -> None:
    frames = [two_tone(), two_tone().rotate(180)]
    apng = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    animated_webp = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    assert rejection(apng) is ImageProblem.UNSUPPORTED_FORMAT
    assert rejection(animated_webp) is ImageProblem.UNSUPPORTED_FORMAT


def test_size_limit_in_bytes() -> None:
    data = encode(two_tone(), "PNG")
    assert verify(data, max_bytes=len(data)).width == 64
    assert rejection(data, max_bytes=len(data) - 1) is ImageProblem.TOO_LARGE
    assert rejection(bytes(100), max_bytes=99) is ImageProblem.TOO_LARGE


@pytest.mark.parametrize(
    ("format", "params"),
    [
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("PNG", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
    ],
)
@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_cut_files_are_truncated(format: str, params: dict[str, object], fraction: float) -> None:
    source = Image.effect_mandelbrot((300, 200), (-2, -1.5, 1, 1.5), 100).convert("RGB")
    data = encode(source, format, **params)
    assert rejection(data[: int(len(data) * fraction)]) is ImageProblem.TRUNCATED


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_cut_inside_the_header_is_truncated(format: str) -> None:
    data = encode(two_tone(), format, exif=exif(taken="2024:05:01 13:45:10"))
    assert rejection(data[:40]) is ImageProblem.TRUNCATED


def test_data_hidden_after_the_image_is_not_stored() -> None:
    for format in ("JPEG", "PNG"):
        verified = verify(encode(two_tone(), format) + b"PK\x03\x04SECRET archive")
        assert_clean(verified)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)


def test_corrupt_pixel_data() -> None:
    data = bytearray(encode(two_tone(), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start + 2 : start + 12] = b"\xff" * 10  # checksum no longer matches either
    assert rejection(bytes(data)) is ImageProblem.CORRUPT


@pytest.mark.parametrize(
    "data",
    [
        png_header(0, 10) + png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b""),
        png_header(4, 4, colour_type=7) + png_chunk(b"IEND", b""),  # no such colour type
        b"RIFF\x20\x00\x00\x00WEBPVP8 " + bytes(24),  # lossy chunk without its start code
        b"\xff\xd8\xff\xe0" + bytes(200) + b"\xff\xd9",
    ],
)
def test_corrupt_headers(data: bytes) -> None:
    assert rejection(data) is ImageProblem.CORRUPT


def test_thousands_of_jpeg_scans_are_refused_before_decoding() -> None:
    data = encode(two_tone(), "JPEG", progressive=True)
    end = data.rindex(b"\xff\xd9")
    assert rejection(data[:end] + b"\xff\xda" * 300 + data[end:]) is ImageProblem.CORRUPT


# --- decompression bombs -----------------------------------------------------------


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    """30000 x 30000 one-bit pixels: ~110 kB on disk, 900 MB once decoded by Pillow."""
    width = height = 30_000
    row = bytes(1 + width // 8)
    compressor = zlib.compressobj(9)
    rows_per_block = 1000
    idat = b"".join(compressor.compress(row * rows_per_block) for _ in range(height // 1000))
    idat += compressor.flush()
    return (
        png_header(width, height, bit_depth=1, colour_type=0)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def test_png_bomb_is_refused_quickly(png_bomb: bytes) -> None:
    assert len(png_bomb) < 200_000
    started = time.perf_counter()
    assert rejection(png_bomb, max_pixels=50_000_000) is ImageProblem.TOO_MANY_PIXELS
    assert time.perf_counter() - started < 1.0


def test_pillow_global_limit_still_applies_above_max_pixels(png_bomb: bytes) -> None:
    assert rejection(png_bomb, max_pixels=10**12) is ImageProblem.TOO_MANY_PIXELS


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_warning_raised_as_an_error_is_a_rejection() -> None:
    # 100 million pixels is over Pillow's warning threshold but under its error one.
    data = png_header(10_000, 10_000) + png_chunk(b"IDAT", b"garbage") + png_chunk(b"IEND", b"")
    assert rejection(data, max_pixels=10**9) is ImageProblem.TOO_MANY_PIXELS


def test_limit_is_read_from_the_header_before_any_pixel_is_decoded() -> None:
    # The pixel data is garbage: decoding it would be `corrupt`, so `too_many_pixels`
    # proves the refusal came from the header alone.
    data = png_header(3000, 3000) + png_chunk(b"IDAT", b"garbage") + png_chunk(b"IEND", b"")
    assert rejection(data, max_pixels=1_000_000) is ImageProblem.TOO_MANY_PIXELS
    assert rejection(data, max_pixels=9_000_000) is ImageProblem.CORRUPT


@pytest.mark.parametrize(("width", "height"), [(3000, 3000), (40_000, 40_000)])
def test_jpeg_declaring_a_huge_frame_is_refused(width: int, height: int) -> None:
    data = bytearray(encode(two_tone(), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    assert rejection(bytes(data), max_pixels=1_000_000) is ImageProblem.TOO_MANY_PIXELS


def webp(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    "data",
    [
        webp(b"VP8L", b"\x2f" + struct.pack("<I", 16382 | 16382 << 14) + bytes(64)),
        webp(b"VP8X", bytes(4) + (9999).to_bytes(3, "little") * 2 + bytes(64)),
        webp(b"VP8 ", bytes(3) + b"\x9d\x01\x2a" + struct.pack("<HH", 9000, 9000) + bytes(64)),
    ],
)
def test_webp_canvas_is_checked_before_libwebp_sees_it(data: bytes) -> None:
    assert rejection(data, max_pixels=50_000_000) is ImageProblem.TOO_MANY_PIXELS


def test_pixel_limit_boundary() -> None:
    data = encode(two_tone((100, 50)), "PNG")
    assert verify(data, max_pixels=5000).width == 100
    assert rejection(data, max_pixels=4999) is ImageProblem.TOO_MANY_PIXELS


def test_process_wide_pillow_settings_are_untouched(png_bomb: bytes) -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    rejection(png_bomb)
    verify(encode(two_tone(), "JPEG", exif=exif(orientation=6)))
    rejection(encode(two_tone(), "JPEG")[:300])
    after = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    assert after == before


# --- threads and fuzzing -----------------------------------------------------------

SEEDS = (
    encode(two_tone(), "JPEG", exif=exif(orientation=6, gps=gps_tags(*NANJING[::-1]))),
    encode(two_tone(), "JPEG", progressive=True, exif=exif(taken="2024:05:01 13:45:10")),
    encode(two_tone(mode="P"), "PNG", transparency=0, exif=exif(orientation=2)),
    encode(two_tone(mode="RGBA"), "PNG", icc_profile=SRGB_ICC),
    encode(two_tone(), "WEBP", exif=exif(gps=gps_tags(*NANJING[::-1])), xmp=XMP),
    encode(two_tone(mode="RGBA"), "WEBP", lossless=True),
)


def test_concurrent_calls_give_the_same_results_as_sequential_ones() -> None:
    inputs = [*SEEDS, SEEDS[0][:200], b"not an image"] * 4

    def outcome(data: bytes) -> VerifiedImage | ImageProblem:
        try:
            return verify(data)
        except ImageRejected as rejected:
            return rejected.code

    sequential = [outcome(data) for data in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(outcome, inputs)) == sequential


def assert_verified_or_rejected(data: bytes) -> None:
    try:
        verified = verify(data, max_pixels=1_000_000)
    except ImageRejected:
        return
    assert verified.sha256 == hashlib.sha256(verified.data).hexdigest()
    if verified.gps is not None:
        longitude, latitude = verified.gps
        assert math.isfinite(longitude)
        assert math.isfinite(latitude)
        assert abs(longitude) <= 180
        assert abs(latitude) <= 90


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Pillow warns about the broken EXIF it skips; that is expected of fuzzed input.
QUIET = pytest.mark.filterwarnings("ignore::UserWarning")


@QUIET
@FUZZ
@given(data=st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    assert_verified_or_rejected(data)


@QUIET
@FUZZ
@given(
    prefix=st.sampled_from(
        [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x01\x00\x00WEBPVP8X", b"GIF89a"]
    ),
    rest=st.binary(max_size=2048),
)
def test_fuzz_random_bytes_behind_a_valid_signature(prefix: bytes, rest: bytes) -> None:
    assert_verified_or_rejected(prefix + rest)


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
)


def mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    buffer = bytearray(data)
    for kind, at, value in edits:
        if not buffer:
            break
        at %= len(buffer)
        if kind == "flip":
            buffer[at] ^= value
        elif kind == "cut":
            del buffer[at:]
        elif kind == "insert":
            buffer[at:at] = bytes([value]) * 4
        else:
            del buffer[at : at + value]
    return bytes(buffer)


@QUIET
@FUZZ
@given(seed=st.sampled_from(SEEDS), edits=st.lists(mutation, min_size=1, max_size=6))
def test_fuzz_mutated_valid_images(seed: bytes, edits: list[tuple[str, int, int]]) -> None:
    assert_verified_or_rejected(mutate(seed, edits))
