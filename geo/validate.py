"""Turn one GeoJSON geometry into a valid WGS84 (Multi)Polygon, or say why not.

Boundary files in the wild carry rings of fewer than four positions, self-intersections
and zero-area slivers. Small defects are repaired (``shapely.make_valid``, keeping only
the polygonal parts) and reported; a feature is rejected only when nothing polygonal
remains. Coordinates are converted to WGS84 before validation, because validity is
judged on the geometry the index will actually use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geo.datum import Datum, to_wgs84_many
from geo.issues import IssueKind
from geo.slices import in_slices

Polygonal: TypeAlias = Polygon | MultiPolygon
Progress: TypeAlias = Callable[[int, int], None]
FloatArray = npt.NDArray[np.float64]

_POLYGONAL_TYPES = ("Polygon", "MultiPolygon")
# Report progress about a hundred times however large the file.
_PROGRESS_STEPS = 100
# Geometries below which one thread judges them all (a city's dozens take milliseconds).
_LEAST_PER_THREAD = 64


@dataclass(frozen=True, slots=True)
class GeometryFinding:
    """``geometry`` is None when the feature must be rejected; ``kind`` says why, or
    ``REPAIRED`` when the geometry was changed to make it valid."""

    geometry: Polygonal | None
    kind: IssueKind | None
    detail: str


class _Malformed(ValueError):
    pass


def polygonal_geometries(
    geometries: Sequence[object],
    datum: Datum,
    *,
    workers: int = 1,
    progress: Progress | None = None,
) -> list[GeometryFinding]:
    """Each GeoJSON geometry (in ``datum``) as a valid WGS84 (Multi)Polygon, repaired
    and reported, or rejected with the reason, in order. The rings are read one by one
    (Python), then validity is judged and repairs made on ``workers`` threads: GEOS
    releases the GIL, and on a national layer the validity test and the repairs are
    about half of the loading's time. ``progress(done, total)`` is called about a
    hundred times while the rings are read."""
    parsed: list[_Parsed | GeometryFinding] = []
    step = max(1, len(geometries) // _PROGRESS_STEPS)
    for count, geometry in enumerate(geometries, start=1):
        parsed.append(_parsed(geometry, datum))
        if progress is not None and (count % step == 0 or count == len(geometries)):
            progress(count, len(geometries))
    shapes = [p for p in parsed if isinstance(p, _Parsed)]
    array = np.empty(len(shapes), dtype=object)
    array[:] = [p.shape for p in shapes]

    def judged(start: int, end: int) -> list[GeometryFinding]:
        valid = np.asarray(shapely.is_valid(array[start:end]), dtype=bool).tolist()
        return [_finished(p, ok) for p, ok in zip(shapes[start:end], valid, strict=True)]

    done = iter(in_slices(judged, len(shapes), workers, least=_LEAST_PER_THREAD))
    return [next(done) if isinstance(p, _Parsed) else p for p in parsed]


@dataclass(frozen=True, slots=True)
class _Parsed:
    shape: BaseGeometry
    notes: list[str]


def _parsed(geometry: object, datum: Datum) -> _Parsed | GeometryFinding:
    if not isinstance(geometry, Mapping):
        return GeometryFinding(None, IssueKind.NOT_POLYGONAL, "has no geometry")
    kind = geometry.get("type")
    if kind not in _POLYGONAL_TYPES:
        return GeometryFinding(
            None, IssueKind.NOT_POLYGONAL, f"geometry type {kind!r} is not Polygon or MultiPolygon"
        )
    coordinates = geometry.get("coordinates")
    try:
        polygons = [coordinates] if kind == "Polygon" else _sequence(coordinates, "coordinates")
        parts, dropped = _parts(polygons, datum)
    except _Malformed as exc:
        return GeometryFinding(None, IssueKind.MALFORMED_GEOMETRY, str(exc))
    if not parts:
        return GeometryFinding(
            None, IssueKind.NOTHING_POLYGONAL_LEFT, "no ring has the four positions a polygon needs"
        )
    shape: BaseGeometry = parts[0] if len(parts) == 1 else MultiPolygon(parts)
    notes = [f"dropped {dropped} ring(s) with fewer than four positions"] if dropped else []
    return _Parsed(shape, notes)


def _finished(parsed: _Parsed, valid: bool) -> GeometryFinding:
    shape, notes = parsed.shape, list(parsed.notes)
    if not valid:
        notes.insert(0, f"invalid geometry ({shapely.is_valid_reason(shape)})")
        try:
            shape = polygonal_part(shapely.make_valid(shape))
        except shapely.errors.GEOSException:
            # GEOS's default repair fails on some inputs ("Overlay input is
            # mixed-dimension"); rebuilding from the rings' structure does not.
            shape = polygonal_part(shapely.make_valid(shape, method="structure"))
    if shape.is_empty or shape.area == 0.0:
        return GeometryFinding(
            None,
            IssueKind.NOTHING_POLYGONAL_LEFT,
            "; ".join([*notes, "nothing polygonal remains after repair"]),
        )
    assert isinstance(shape, Polygon | MultiPolygon)
    if notes:
        return GeometryFinding(shape, IssueKind.REPAIRED, "; ".join(notes))
    return GeometryFinding(shape, None, "")


def polygonal_part(geometry: BaseGeometry) -> Polygonal:
    """The polygons in any geometry (dropping points and lines), as one valid shape."""
    polygons = _as_polygons(geometry)
    if not polygons:
        return MultiPolygon()
    if len(polygons) == 1:
        return polygons[0]
    # Parts may share edges, which a MultiPolygon may not: union them.
    merged = shapely.union_all(polygons)
    return merged if isinstance(merged, Polygon | MultiPolygon) else polygonal_part(merged)


def _as_polygons(geometry: BaseGeometry) -> list[Polygon]:
    found: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if isinstance(part, Polygon):
            if not part.is_empty:
                found.append(part)
        elif isinstance(part, MultiPolygon | shapely.GeometryCollection):
            found.extend(_as_polygons(part))
    return found


def _parts(polygons: Sequence[object], datum: Datum) -> tuple[list[Polygon], int]:
    parts: list[Polygon] = []
    dropped = 0
    for polygon in polygons:
        rings = _sequence(polygon, "polygon")
        kept = []
        for position, ring in enumerate(rings):
            coords = _ring(ring, datum)
            if coords is None:
                dropped += 1
                if position == 0:
                    # Without its shell a polygon's holes mean nothing.
                    dropped += len(rings) - 1
                    break
            else:
                kept.append(coords)
        if kept:
            parts.append(Polygon(kept[0], kept[1:]))
    return parts, dropped


def _ring(ring: object, datum: Datum) -> FloatArray | None:
    try:
        coords = np.asarray(ring, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:  # (an integer of 400 digits)
        raise _Malformed(
            f"a ring is not a list of [longitude, latitude] positions ({exc})"
        ) from exc
    if coords.ndim != 2 or coords.shape[1] < 2:
        if coords.size == 0:
            return None
        raise _Malformed("a ring is not a list of [longitude, latitude] positions")
    coords = coords[:, :2]
    if not np.isfinite(coords).all():
        raise _Malformed("a ring has a coordinate that is not a finite number")
    outside = (np.abs(coords[:, 0]) > 180.0) | (np.abs(coords[:, 1]) > 90.0)
    if outside.any():
        lon, lat = coords[np.argmax(outside)]
        raise _Malformed(
            f"position ({lon}, {lat}) is not a longitude/latitude (is the file projected?)"
        )
    if len(coords) and not np.array_equal(coords[0], coords[-1]):
        coords = np.vstack((coords, coords[:1]))
    if len(coords) < 4:
        return None
    lon, lat = to_wgs84_many(coords[:, 0], coords[:, 1], datum)
    return np.column_stack((lon, lat))


def _sequence(value: object, what: str) -> Sequence[object]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    raise _Malformed(f"{what} is not a list")
