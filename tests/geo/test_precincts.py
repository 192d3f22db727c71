from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from geo.datum import Datum
from geo.issues import IssueKind
from geo.precincts import PrecinctImport, geojson_texts, load_precincts
from tests.geo.conftest import load, read_collection

_SQUARE = [[[0.0, 0.0], [0.01, 0.0], [0.01, 0.01], [0.0, 0.01], [0.0, 0.0]]]


def _feature(properties: dict[str, Any], geometry: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def _square(x: float, y: float, size: float = 0.01) -> dict[str, Any]:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def _collection(*features: object) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def _load(collection: dict[str, Any]) -> PrecinctImport:
    return load_precincts(collection, name_property="name", code_property="code", datum=Datum.WGS84)


def test_nyc_precincts_load_with_integer_codes_as_text(nyc_precincts: PrecinctImport) -> None:
    codes = [p.code for p in nyc_precincts.precincts]
    assert len(codes) == 77
    assert codes[:4] == ["1", "5", "6", "7"]  # numeric order, not "1", "10", "100"
    assert codes[-1] == "123"
    assert nyc_precincts.rejected == 0
    assert all(p.geometry.is_valid for p in nyc_precincts.precincts)


def test_raw_file_reports_the_two_degenerate_features_by_name(
    nyc_precincts: PrecinctImport,
) -> None:
    loaded = load(
        "nyc_police_precincts_77_raw_with_invalid_rings.geojson",
        code="precinct",
        name_property="precinct",
        datum=Datum.WGS84,
    )
    assert len(loaded.precincts) == 77
    repaired = loaded.repairs
    assert [(i.feature_index, i.code) for i in repaired] == [(41, "61"), (70, "113")]
    report = "\n".join(loaded.report)
    assert "feature #41 (code '61'): repaired, invalid geometry (Too few points" in report
    assert "feature #70 (code '113'): repaired" in report
    assert loaded.report[0].startswith("imported 77 of 77 features: 2 repaired, 0 rejected")
    fixed = {p.code: p.geometry for p in loaded.precincts}
    clean = {p.code: p.geometry for p in nyc_precincts.precincts}
    for code in ("61", "113"):
        # The whole precinct survives the repair, not just the degenerate bits: it
        # matches the clean export of the same layer (which differs by ~1% anyway).
        assert fixed[code].is_valid
        assert fixed[code].area == pytest.approx(clean[code].area, rel=0.02)


def test_gcj02_file_is_converted_and_its_self_intersections_repaired() -> None:
    gcj = load(
        "nanjing_320100_districts_gcj02.geojson",
        code="adcode",
        name_property="name",
        datum=Datum.GCJ02,
    )
    wgs = load(
        "nanjing_320100_districts_wgs84.geojson",
        code="adcode",
        name_property="name",
        datum=Datum.WGS84,
    )
    assert [p.code for p in gcj.precincts] == [p.code for p in wgs.precincts]
    assert {i.code for i in gcj.repairs} == {"320114", "320118"}
    assert "name '雨花台区'" in gcj.repairs[0].message
    for ours, theirs in zip(gcj.precincts, wgs.precincts, strict=True):
        # The WGS84 file is the same data converted (and rounded) elsewhere: our
        # conversion lands within a few centimetres of it.
        assert shapely.hausdorff_distance(ours.geometry, theirs.geometry) < 1e-6


def test_election_districts_overlaps_are_reported_and_resolved(
    election_districts: PrecinctImport,
) -> None:
    overlaps = election_districts.overlaps
    assert len(overlaps) == 196
    assert all(o.area_m2 is not None and o.area_m2 >= 1.0 for o in overlaps)
    assert len(election_districts.repairs) == 34
    first = overlaps[0]
    assert first.other_code is not None
    assert f"the overlap stays with the smaller, {first.other_code!r}" in first.message
    assert "m²" in first.message
    geometries = np.array([p.geometry for p in election_districts.precincts], dtype=object)
    left, right = shapely.STRtree(geometries).query(geometries, predicate="intersects")
    pairs = left < right
    shared = shapely.area(shapely.intersection(geometries[left[pairs]], geometries[right[pairs]]))
    # No interior overlap survives: at most float dust (1e-16 deg² is ~1e-6 m²).
    assert float(shared.max()) < 1e-14


def test_overlap_resolution_is_deterministic(election_districts: PrecinctImport) -> None:
    """Whatever the file's order, and however many threads test the ~15,000 pairs of
    neighbours."""
    collection = read_collection("nyc_election_districts_5199.geojson")
    collection["features"] = list(reversed(collection["features"]))
    again = load_precincts(
        collection, name_property="ElectDist", code_property="ElectDist", datum=Datum.WGS84,
        workers=3,
    )  # fmt: skip
    assert [p.code for p in again.precincts] == [p.code for p in election_districts.precincts]
    for ours, theirs in zip(again.precincts, election_districts.precincts, strict=True):
        assert shapely.equals_exact(ours.geometry, theirs.geometry, 0.0)
    assert sorted((o.code, o.other_code) for o in again.overlaps) == sorted(
        (o.code, o.other_code) for o in election_districts.overlaps
    )


def test_smaller_precinct_keeps_the_overlap_and_an_inner_one_makes_an_enclave() -> None:
    loaded = _load(
        _collection(
            _feature({"code": "big", "name": "Big"}, _square(0.0, 0.0, 0.04)),
            _feature({"code": "inner", "name": "Inner"}, _square(0.01, 0.01, 0.01)),
            _feature({"code": "side", "name": "Side"}, _square(0.035, 0.0, 0.02)),
        )
    )
    geometry = {p.code: p.geometry for p in loaded.precincts}
    assert geometry["inner"].area == pytest.approx(0.0001)
    assert len(geometry["big"].interiors) == 1  # the enclave
    assert geometry["side"].area == pytest.approx(0.0004)
    assert geometry["big"].area == pytest.approx(0.0016 - 0.0001 - 0.005 * 0.02)
    assert {(o.code, o.other_code) for o in loaded.overlaps} == {
        ("big", "inner"),
        ("big", "side"),
    }


def test_equal_areas_go_to_the_lower_code_and_a_covered_duplicate_is_rejected() -> None:
    loaded = _load(
        _collection(
            _feature({"code": "20", "name": "Twenty"}, _square(0.0, 0.0)),
            _feature({"code": "3", "name": "Three"}, _square(0.0, 0.0)),
        )
    )
    assert [p.code for p in loaded.precincts] == ["3"]
    assert [i.kind for i in loaded.rejections] == [IssueKind.COVERED_BY_OTHERS]
    assert "feature #0 (code '20', name 'Twenty'): rejected" in loaded.rejections[0].message


def test_bad_features_are_rejected_with_messages_that_name_them() -> None:
    progress: list[tuple[int, int]] = []
    loaded = load_precincts(
        _collection(
            _feature({"code": 1, "name": "One"}, _square(0.0, 0.0)),
            _feature({"name": "No code"}, _square(1.0, 0.0)),
            _feature({"code": 1, "name": "Again"}, _square(2.0, 0.0)),
            _feature({"code": 4, "name": "Line"}, {"type": "LineString", "coordinates": []}),
            _feature({"code": 5, "name": "Bad"}, {"type": "Polygon", "coordinates": [["x"]]}),
            _feature({"code": 6, "name": "Flat"}, _square(3.0, 0.0, 0.0)),
            _feature({"code": 7, "name": "Projected"}, _square(529000.0, 181000.0)),
            _feature({"code": 8, "name": None}, _square(4.0, 0.0)),
            "not a feature",
            _feature({"code": 10, "name": "Nothing"}, None),
            _feature({"code": 11.0, "name": "Float code"}, _square(5.0, 0.0)),
        ),
        name_property="name",
        code_property="code",
        datum=Datum.WGS84,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert [p.code for p in loaded.precincts] == ["1", "11"]
    assert loaded.rejected == 9
    messages = {i.feature_index: i.message for i in loaded.rejections}
    assert messages[1] == (
        "feature #1 (no code, name 'No code'): rejected, property 'code' is missing "
        "or not text or a number"
    )
    assert "code '1' is already used by feature #0" in messages[2]
    assert "geometry type 'LineString' is not Polygon or MultiPolygon" in messages[3]
    assert "feature #4 (code '5', name 'Bad'): rejected, a ring is not" in messages[4]
    assert "nothing polygonal remains" in messages[5]
    assert "is the file projected?" in messages[6]
    assert "property 'name' is missing" in messages[7]
    assert "not a Feature" in messages[8]
    assert "has no geometry" in messages[9]
    assert progress[-1] == (11, 11)
    assert loaded.report[0] == (
        "imported 2 of 11 features: 0 repaired, 9 rejected, 0 overlaps of 1 m² or more resolved"
    )


def test_short_rings_are_dropped_and_reported() -> None:
    polygon = {
        "type": "MultiPolygon",
        "coordinates": [_SQUARE, [[[5.0, 5.0], [5.1, 5.0], [5.0, 5.0]]]],
    }
    loaded = _load(_collection(_feature({"code": "a", "name": "A"}, polygon)))
    assert len(loaded.precincts) == 1
    assert "dropped 1 ring(s) with fewer than four positions" in loaded.repairs[0].message


def test_not_a_feature_collection_is_an_error() -> None:
    with pytest.raises(ValueError, match="FeatureCollection"):
        _load({"type": "Feature"})
    with pytest.raises(ValueError, match="FeatureCollection"):
        load_precincts(
            [],  # type: ignore[arg-type]
            name_property="name",
            code_property="code",
            datum=Datum.WGS84,
        )


def test_geojson_texts_round_trip_exactly(nyc_precincts: PrecinctImport) -> None:
    geometries = [p.geometry for p in nyc_precincts.precincts]
    for geometry, text in zip(geometries, geojson_texts(geometries), strict=True):
        stored = json.loads(text)
        assert stored["type"] == geometry.geom_type
        assert shapely.equals_exact(shape(stored), geometry, 0.0)
