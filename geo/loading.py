"""Loading precinct boundaries from GeoJSON: validate, repair or reject, resolve overlaps.

Pure: the caller parses the file and stores the result.  Every problem becomes a
report line naming the feature (its index, code and name), so an administrator can fix
the source; nothing is silently dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from geo.datum import Datum, to_wgs84_many
from geo.precincts import Precinct

# Overlaps smaller than this are digitising noise between neighbours, not a conflict.
MIN_OVERLAP_M2 = 1.0
_M_PER_DEGREE = 111_320.0


@dataclass(frozen=True, slots=True)
class PrecinctImport:
    precincts: tuple[Precinct, ...]
    rejected: int
    report: tuple[str, ...]
    overlaps: tuple[tuple[str, str, float], ...] = field(default=())  # (winner, loser, m²)


def _label(index: int, code: str | None, name: str | None) -> str:
    parts = [f"feature {index}"]
    if code is not None:
        parts.append(f"code {code}")
    if name:
        parts.append(repr(name))
    return " ".join(parts)


def _polygonal(geometry: BaseGeometry) -> Polygon | MultiPolygon | None:
    """The polygonal part of a geometry (make_valid may return a collection)."""
    if isinstance(geometry, Polygon | MultiPolygon):
        return geometry if not geometry.is_empty else None
    parts = [g for g in getattr(geometry, "geoms", ()) if isinstance(g, Polygon | MultiPolygon)]
    polygons = [
        p for part in parts for p in (part.geoms if isinstance(part, MultiPolygon) else [part])
    ]
    polygons = [p for p in polygons if not p.is_empty and p.area > 0]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _to_wgs84(geometry: BaseGeometry, datum: Datum) -> BaseGeometry:
    if datum is Datum.WGS84:
        return geometry

    def convert(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lons, lats = to_wgs84_many(coords[:, 0], coords[:, 1], datum)
        return np.column_stack([lons, lats])

    return shapely.transform(geometry, convert)


def _square_metres(area_deg2: float, lat: float) -> float:
    return area_deg2 * _M_PER_DEGREE**2 * math.cos(math.radians(lat))


def _check_feature(
    index: int, feature: Any, name_property: str, code_property: str, datum: Datum
) -> tuple[Precinct | None, str | None]:
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        return None, f"{_label(index, None, None)}: rejected: not a GeoJSON Feature"
    properties = feature.get("properties") or {}
    if not isinstance(properties, Mapping):
        return None, f"{_label(index, None, None)}: rejected: properties is not an object"
    raw_code, raw_name = properties.get(code_property), properties.get(name_property)
    code = None if raw_code is None or str(raw_code).strip() == "" else str(raw_code).strip()
    name = None if raw_name is None else str(raw_name).strip()
    label = _label(index, code, name)
    if code is None:
        return None, f"{label}: rejected: no {code_property!r} property"
    if not name:
        return None, f"{label}: rejected: no {name_property!r} property"
    try:
        geometry = shape(feature.get("geometry"))
    except (AttributeError, TypeError, ValueError, KeyError, shapely.errors.ShapelyError) as exc:
        return None, f"{label}: rejected: unreadable geometry ({exc})"
    if not isinstance(geometry, Polygon | MultiPolygon):
        return None, f"{label}: rejected: a {geometry.geom_type}, not a Polygon or MultiPolygon"
    coords = shapely.get_coordinates(geometry)
    if coords.size == 0 or not np.isfinite(coords).all():
        return None, f"{label}: rejected: empty geometry or non-finite coordinates"
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        return None, f"{label}: rejected: coordinates out of range (is it in degrees?)"
    geometry = _to_wgs84(geometry, datum)
    note = None
    if not geometry.is_valid:
        problem = explain_validity(geometry)
        repaired = _polygonal(shapely.make_valid(geometry))
        if repaired is None:
            return None, f"{label}: rejected: invalid ({problem}) and nothing polygonal is left"
        geometry = repaired
        note = f"{label}: repaired: {problem}"
    return Precinct(code=code, name=name, geometry=geometry), note


def _resolve_overlaps(
    precincts: list[Precinct], report: list[str]
) -> tuple[list[Precinct], list[tuple[str, str, float]]]:
    """The overlapped area goes to the smaller precinct (the more specific one); equal
    areas go to the lower code.  Deterministic, whatever the order of the file."""
    geometries = np.array([p.geometry for p in precincts], dtype=object)
    tree = shapely.STRtree(geometries)
    left, right = tree.query(geometries, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if left.size == 0:
        return precincts, []
    shared = shapely.intersection(geometries[left], geometries[right])
    areas = shapely.area(shared)
    lats = shapely.get_y(shapely.centroid(shared))
    overlaps: list[tuple[str, str, float]] = []
    losers: dict[int, list[BaseGeometry]] = {}
    for a, b, area, lat in sorted(
        zip(left.tolist(), right.tolist(), areas.tolist(), lats.tolist(), strict=True),
        key=lambda t: (precincts[t[0]].code, precincts[t[1]].code),
    ):
        if area <= 0 or _square_metres(area, lat) < MIN_OVERLAP_M2:
            continue
        pa, pb = precincts[a], precincts[b]
        size_a, size_b = pa.geometry.area, pb.geometry.area
        winner, loser = (a, b) if (size_a, pa.code) < (size_b, pb.code) else (b, a)
        losers.setdefault(loser, []).append(precincts[winner].geometry)
        square_m = _square_metres(area, lat)
        overlaps.append((precincts[winner].code, precincts[loser].code, square_m))
        report.append(
            f"precincts {pa.code} and {pb.code} overlap by {square_m:,.0f} m²: "
            f"the overlap goes to {precincts[winner].code} (the smaller)"
        )
    resolved = list(precincts)
    for loser, winners in losers.items():
        trimmed = _polygonal(
            shapely.difference(precincts[loser].geometry, shapely.union_all(winners))
        )
        if trimmed is None:
            report.append(
                f"precinct {precincts[loser].code}: lies wholly inside others; kept as is"
            )
            continue
        resolved[loser] = Precinct(precincts[loser].code, precincts[loser].name, trimmed)
    return resolved, overlaps


def load_precincts(
    collection: Mapping[str, Any],
    *,
    name_property: str,
    code_property: str,
    datum: Datum,
    progress: Callable[[int, int], None] | None = None,
) -> PrecinctImport:
    if not isinstance(collection, Mapping) or collection.get("type") != "FeatureCollection":
        raise ValueError("expected a GeoJSON FeatureCollection")
    features: Sequence[Any] = collection.get("features") or []
    if not isinstance(features, Sequence):
        raise ValueError("the FeatureCollection's features is not a list")  # noqa: TRY004
    accepted: list[Precinct] = []
    report: list[str] = []
    seen: dict[str, int] = {}
    rejected = 0
    for index, feature in enumerate(features):
        precinct, note = _check_feature(index, feature, name_property, code_property, datum)
        if note:
            report.append(note)
        if precinct is None:
            rejected += 1
        elif precinct.code in seen:
            rejected += 1
            report.append(
                f"{_label(index, precinct.code, precinct.name)}: rejected: code {precinct.code} "
                f"already used by feature {seen[precinct.code]}"
            )
        else:
            seen[precinct.code] = index
            accepted.append(precinct)
        if progress is not None and (index % 100 == 0 or index == len(features) - 1):
            progress(index + 1, len(features))
    accepted.sort(key=lambda p: p.code)
    resolved, overlaps = _resolve_overlaps(accepted, report) if accepted else ([], [])
    return PrecinctImport(tuple(resolved), rejected, tuple(report), tuple(overlaps))


def geometry_to_geojson(geometry: BaseGeometry) -> dict[str, Any]:
    return dict(mapping(geometry))
