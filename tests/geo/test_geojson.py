from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest
import shapely

from geo.datum import Datum
from geo.geojson import decode_feature_collection
from geo.precincts import PrecinctImport, load_precincts
from tests.geo.conftest import FIXTURES


def _collection(*geometries: str) -> bytes:
    features = ",".join(
        f'{{"type": "Feature", "properties": {{"code": {n}, "name": "p{n}"}}, "geometry": {g}}}'
        for n, g in enumerate(geometries)
    )
    return f'{{"type": "FeatureCollection", "features": [{features}]}}'.encode()


def _plain(value: Any) -> Any:
    """Arrays as the lists of floats ``msgspec.json.decode`` would have given."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _floats(value: Any) -> Any:
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return float(value) if isinstance(value, int) else value


def test_rings_of_number_pairs_become_float_arrays_of_the_same_doubles() -> None:
    data = _collection(
        '{"type": "Polygon", "coordinates": [[[0, 0], [1e2, 2E-3] ,\n [0.1, 1], [0, 0]],'
        " [[-0, 0.2], [-0.0, -0e5], [0.3, 0.3], [-0, 0.2]]]}",
        '{"type": "MultiPolygon", "coordinates": [[[[5, 6], [7, 8], [9, 9], [5, 6]]], [],'
        " [[[123456789012345678901234567890, 9007199254740993], [1, 2], [3, 4], [1, 2]]]]}",
    )
    decoded = decode_feature_collection(data)
    plain = msgspec.json.decode(data)
    rings = decoded["features"][0]["geometry"]["coordinates"]
    assert all(isinstance(r, np.ndarray) and r.dtype == np.float64 for r in rings)
    assert rings[0].shape == (4, 2)
    for ours, theirs in zip(decoded["features"], plain["features"], strict=True):
        assert ours["properties"] == theirs["properties"]
        # repr: -0.0 and 0.0 compare equal ("-0" is the integer 0, "-0.0" is -0.0).
        ring_lists = repr(_plain(ours["geometry"]["coordinates"]))
        assert ring_lists == repr(_floats(theirs["geometry"]["coordinates"]))


@pytest.mark.parametrize(
    "geometry",
    [
        '{"type": "Polygon", "coordinates": [[[1, 2, 3], [1, 0, 4], [1, 1, 5], [1, 2, 3]]]}',
        '{"type": "Polygon", "coordinates": [[[1, 2, 3, 4], [[5, 6]]]]}',
        '{"type": "Polygon", "coordinates": [[], [[1, 2], [3, 4]]]}',
        '{"type": "Polygon", "coordinates": [[[1, null], [3, 4]]]}',
        '{"type": "Polygon", "coordinates": [[[1, 2], [3, true]]]}',
        '{"type": "Polygon", "coordinates": [[[[1, 2]], [3, 4]]]}',
        '{"type": "Polygon", "coordinates": [[1, 2], [3, 4]]}',
        '{"type": "Polygon", "coordinates": "x"}',
        '{"type": "MultiPolygon", "coordinates": [[[1, 2], [3, 4]]]}',
        '{"type": "Point", "coordinates": [1, 2]}',
    ],
)
def test_anything_but_rings_of_number_pairs_is_decoded_as_usual(geometry: str) -> None:
    data = _collection(geometry)
    decoded = decode_feature_collection(data)["features"][0]["geometry"]
    assert decoded == msgspec.json.decode(data)["features"][0]["geometry"]


@pytest.mark.parametrize(
    "data",
    [
        b'{"type": "FeatureCollection", "features": [null]}',
        b'{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": [1]}]}',
        b'{"type": "Feature"}',
        b"[1, 2]",
    ],
)
def test_files_of_another_shape_are_decoded_as_usual(data: bytes) -> None:
    assert decode_feature_collection(data) == msgspec.json.decode(data)


@pytest.mark.parametrize(
    "data",
    [
        _collection('{"type": "Polygon", "coordinates": [[[1, 2], [3, 01]]]}'),
        _collection('{"type": "Polygon", "coordinates": [[[1, 2], [3, 4e999]]]}'),
        b'{"type": "FeatureCollection", "features": [{"type": "Feature"',
    ],
)
def test_invalid_json_raises_what_msgspec_raises(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError) as expected:
        msgspec.json.decode(data)
    with pytest.raises(msgspec.DecodeError) as raised:
        decode_feature_collection(data)
    assert str(raised.value) == str(expected.value)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("nyc_police_precincts_77.geojson", "Precinct"),
        ("london_wards_2014_654.geojson", "GSS_CODE"),
    ],
)
def test_precincts_load_the_same_from_either_decoding(name: str, code: str) -> None:
    data = (FIXTURES / name).read_bytes()

    def loaded(collection: Any) -> PrecinctImport:
        return load_precincts(collection, name_property=code, code_property=code, datum=Datum.WGS84)

    ours, theirs = loaded(decode_feature_collection(data)), loaded(msgspec.json.decode(data))
    assert ours.report == theirs.report
    assert [p.code for p in ours.precincts] == [p.code for p in theirs.precincts]
    assert shapely.to_wkb([p.geometry for p in ours.precincts]).tolist() == (
        shapely.to_wkb([p.geometry for p in theirs.precincts]).tolist()
    )


def test_a_byte_order_mark_is_skipped_and_deep_nesting_is_a_value_error() -> None:
    square = '{"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 1]]]}'
    data = _collection(square)
    assert _plain(decode_feature_collection(b"\xef\xbb\xbf" + data)) == _plain(
        decode_feature_collection(data)
    )
    deep = _collection('{"type": "Polygon", "coordinates": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(ValueError, match="nested too deeply"):
        decode_feature_collection(deep)


def test_a_number_too_large_for_a_float_rejects_its_feature_alone() -> None:
    """A 400-digit integer is valid JSON; the feature is reported, the import goes on."""
    huge = "1" + "0" * 400
    data = _collection(
        '{"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 1]]]}',
        f'{{"type": "Polygon", "coordinates": [[[{huge}, 1], [2, 1], [2, 2], [{huge}, 1]]]}}',
    )
    loaded = load_precincts(
        decode_feature_collection(data), name_property="name", code_property="code",
        datum=Datum.WGS84,
    )  # fmt: skip
    assert [p.code for p in loaded.precincts] == ["0"]
    assert loaded.rejected == 1
    assert any("not a list of [longitude, latitude] positions" in line for line in loaded.report)
