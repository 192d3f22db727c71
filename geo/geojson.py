"""A GeoJSON FeatureCollection's bytes decoded with every ring as a float array.

Decoded the usual way, a national layer's million positions become three million Python
objects (a list and two floats each) that ``geo.validate`` then turns back into arrays:
0.6-0.9 s to decode and ~0.3 s to convert. Here each geometry's coordinates are kept
as raw JSON text while the file is decoded, and each ring's text becomes one array
straight away: its numbers read as one flat JSON list, once its brackets and commas
are checked to be exactly those of a list of [longitude, latitude] pairs.

What comes out is what ``msgspec.json.decode`` gives, except that a ring of such pairs
is an ``(n, 2)`` float64 array instead of a list of lists (the same doubles: both are
msgspec's, correctly rounded), and only the members that ``geo.precincts`` reads are
kept: ``type`` and ``features``; a feature's ``type``, ``properties`` and ``geometry``
(None when missing); a geometry's ``type`` and ``coordinates`` (None when missing).
Coordinates that are not all such rings (3-D positions, an empty ring, text where a
number should be, a Point's) are decoded the usual way, and so is the whole file when
it is not a FeatureCollection of Features with objects or null as properties. Invalid
JSON raises what ``msgspec.json.decode`` raises (a ``ValueError``), except in members
that are not read (invalid UTF-8 or a number out of range there passes); arrays nested
too deeply for the decoder raise ``ValueError`` too (msgspec raises RecursionError). A
UTF-8 byte order mark at the start is skipped (RFC 8259 allows it).
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class _Geometry(msgspec.Struct):
    type: str
    coordinates: msgspec.Raw = msgspec.Raw(b"null")


class _Feature(msgspec.Struct):
    type: str
    properties: dict[str, Any] | None = None
    geometry: _Geometry | None = None


class _Collection(msgspec.Struct):
    type: str
    features: list[_Feature]


_COLLECTION = msgspec.json.Decoder(_Collection)
_POLYGON = msgspec.json.Decoder(list[msgspec.Raw])
_MULTIPOLYGON = msgspec.json.Decoder(list[list[msgspec.Raw]])
_NUMBERS = msgspec.json.Decoder(list[float])
# Brackets become spaces: a ring's text is then its numbers, comma-separated.
_UNBRACKET = bytes.maketrans(b"[]", b"  ")
# What is deleted to leave a ring's brackets and commas (and anything unexpected).
_NUMBER_OR_SPACE = b"0123456789+-.eE \t\n\r"


def decode_feature_collection(data: bytes) -> Any:
    """``data`` decoded as ``msgspec.json.decode`` would, rings as arrays (see the
    module docstring)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return _decode(data)
    except RecursionError as exc:
        raise ValueError("arrays or objects nested too deeply") from exc


def _decode(data: bytes) -> Any:
    try:
        collection = _COLLECTION.decode(data)
    except msgspec.ValidationError:
        # Valid JSON, but not the common shape: decoded the usual way.
        return msgspec.json.decode(data)
    features: list[dict[str, Any]] = []
    try:
        for feature in collection.features:
            geometry = feature.geometry
            features.append(
                {
                    "type": feature.type,
                    "properties": feature.properties,
                    "geometry": None
                    if geometry is None
                    else {"type": geometry.type, "coordinates": _coordinates(geometry)},
                }
            )
    except msgspec.DecodeError:
        # A geometry's coordinates decoded the usual way failed (a number out of
        # range): the whole file's decoding raises the same error, with its position.
        return msgspec.json.decode(data)
    return {"type": collection.type, "features": features}


def _coordinates(geometry: _Geometry) -> Any:
    raw = geometry.coordinates
    try:
        if geometry.type == "Polygon":
            return [_ring(ring) for ring in _POLYGON.decode(raw)]
        if geometry.type == "MultiPolygon":
            return [[_ring(ring) for ring in polygon] for polygon in _MULTIPOLYGON.decode(raw)]
    except (msgspec.DecodeError, _NotPairs):
        pass
    return msgspec.json.decode(raw)


class _NotPairs(Exception):
    pass


def _ring(raw: msgspec.Raw) -> FloatArray:
    """A ring's text (``[[x, y], ...]``) as an (n, 2) array; _NotPairs if it is not
    exactly a non-empty list of pairs of numbers."""
    text = bytes(raw)
    try:
        numbers = _NUMBERS.decode(b"[" + text.translate(_UNBRACKET) + b"]")
    except msgspec.DecodeError as exc:
        # Not numbers (or an empty position, [], whose brackets leave a stray comma).
        raise _NotPairs from exc
    pairs = len(numbers) // 2
    # With the numbers and spaces gone, a list of n pairs is "[[" (",],[" n - 1 times)
    # ",]]": this rules out other nestings that hold the same numbers.
    if (
        pairs == 0
        or text.translate(None, _NUMBER_OR_SPACE) != b"[[" + b",],[" * (pairs - 1) + b",]]"
    ):
        raise _NotPairs
    return np.array(numbers, dtype=np.float64).reshape(pairs, 2)
