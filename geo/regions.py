"""Precincts far apart as separate regions, and which region answers a point.

``group_regions`` splits a layer into regions (``PrecinctIndex`` builds one grid per
region). ``RegionRouter`` then sends each point to the one region that can hold it,
from a one-degree world table, instead of asking every region in turn: a national layer
has a dozen regions (the mainland, Alaska, Hawaii, the islands), and asking each cost
tens of microseconds per point, milliseconds when each measured its distance.

For an out-of-jurisdiction point the nearest precinct is the nearest over all regions,
each measuring in its own azimuthal equidistant plane. The distance from a point p to a
region's boundary in that plane is at least |p| - reach, where reach is the largest
distance of any boundary segment end from the plane's centre, and |p| is exactly the
geodesic distance from the centre (that is what the projection keeps). The geodesic
distance on WGS84 is at least ``_MIN_RADIUS_M`` times the angle between the points on
the sphere (the ellipsoid's smallest radius of curvature is 6,335,439 m). So a region
whose lower bound exceeds the best distance found so far cannot be nearest and is never
asked; per table cell, ``others_m`` holds that bound for every region but the cell's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon

from geo.validate import Polygonal

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# (position in the layer, the precinct's parts in the region), in layer order.
Region = list[tuple[int, Polygonal]]
# Precincts whose bounding boxes are further apart than this (degrees, both axes) are
# indexed as separate regions.
REGION_GAP_DEG = 1.0
# Metres per radian of arc, below WGS84's smallest radius of curvature (6,335,439 m).
_MIN_RADIUS_M = 6_300_000.0
# Metres: the plane tiles' approximation of the projection, and float noise.
_SLACK_M = 1.0
# World table cells per degree; from a cell's centre, any point of the cell is at most
# half a cell along a meridian plus half a cell along a parallel away.
PER_DEGREE = 2
_HALF_DIAGONAL = math.radians(1.0 / PER_DEGREE)
# Degrees a frame is grown by for the table, so a point on its edge is never missed.
_FRAME_EPS = 1e-9
NONE = -1
SEVERAL = -2


@dataclass(frozen=True, slots=True)
class Frame:
    """A region's grid extent in degrees, its plane's centre, the bounding box of its
    boundary in that plane (metres), and its reach: the largest distance of any boundary
    point from the centre."""

    x0: float
    y0: float
    x1: float
    y1: float
    lon_0: float
    lat_0: float
    plane_box: tuple[float, float, float, float]
    reach_m: float


@dataclass(frozen=True, slots=True)
class RegionRouter:
    """``owner[cell]``: the only region whose frame meets the world cell, else ``NONE``
    or ``SEVERAL``. For an owned cell, ``rival[cell]`` is the other region that may come
    nearest to its points: no other region is nearer than ``others_m[cell]`` to any point
    of the cell, and none but the rival nearer than ``beyond_rival_m[cell]``."""

    frames: tuple[Frame, ...]
    owner: memoryview
    owner_view: npt.NDArray[np.int16]
    rival: memoryview
    others_m: memoryview
    beyond_rival_m: memoryview
    # Per region: its plane's centre as a unit vector, and its reach.
    centres: FloatArray
    reach_m: FloatArray

    @classmethod
    def of(cls, frames: Sequence[Frame]) -> RegionRouter:
        columns, rows = 360 * PER_DEGREE, 180 * PER_DEGREE
        lon = -180.0 + (np.arange(columns) + 0.5) / PER_DEGREE
        lat = -90.0 + (np.arange(rows) + 0.5) / PER_DEGREE
        mesh_lons, mesh_lats = np.meshgrid(lon, lat)
        lons, lats = mesh_lons.ravel(), mesh_lats.ravel()
        half = 0.5 / PER_DEGREE
        owner = np.full(lons.size, NONE, dtype=np.int16)
        for number, frame in enumerate(frames):
            meets = (
                (lons + half >= frame.x0 - _FRAME_EPS) & (lons - half <= frame.x1 + _FRAME_EPS)
                & (lats + half >= frame.y0 - _FRAME_EPS) & (lats - half <= frame.y1 + _FRAME_EPS)
            )  # fmt: skip
            owner[meets] = np.where(owner[meets] == NONE, number, SEVERAL)
        # The two smallest bounds over the regions other than the owner, per owned cell.
        owned = np.flatnonzero(owner >= 0)
        first = np.full(len(owned), np.inf)
        second = np.full(len(owned), np.inf)
        first_region = np.full(len(owned), NONE, dtype=np.int16)
        for number, frame in enumerate(frames):
            angle = _angles(lons[owned], lats[owned], frame.lon_0, frame.lat_0)
            bound = _lower_bound(np.maximum(angle - _HALF_DIAGONAL, 0.0), frame)
            bound[owner[owned] == number] = np.inf
            better = bound < first
            second = np.where(better, first, np.minimum(second, bound))
            first = np.where(better, bound, first)
            first_region = np.where(better, number, first_region).astype(np.int16)
        others = np.full(lons.size, -np.inf)
        beyond = np.full(lons.size, -np.inf)
        rival = np.full(lons.size, NONE, dtype=np.int16)
        others[owned], beyond[owned], rival[owned] = first, second, first_region
        owner.flags.writeable = False
        centres = np.array([_unit(f.lon_0, f.lat_0) for f in frames]).reshape(-1, 3)
        reach = np.array([f.reach_m for f in frames], dtype=np.float64)
        return cls(
            tuple(frames), _memoryview(owner), owner, _memoryview(rival), _memoryview(others),
            _memoryview(beyond), centres, reach,
        )  # fmt: skip

    def cell(self, lon: float, lat: float) -> int:
        """The world cell of a valid coordinate pair."""
        column = min(int((lon + 180.0) * PER_DEGREE), 360 * PER_DEGREE - 1)
        row = min(int((lat + 90.0) * PER_DEGREE), 180 * PER_DEGREE - 1)
        return row * 360 * PER_DEGREE + column

    def cells_of(self, lons: FloatArray, lats: FloatArray) -> IntArray:
        column = np.minimum(((lons + 180.0) * PER_DEGREE).astype(np.int64), 360 * PER_DEGREE - 1)
        row = np.minimum(((lats + 90.0) * PER_DEGREE).astype(np.int64), 180 * PER_DEGREE - 1)
        return np.asarray(row * 360 * PER_DEGREE + column, dtype=np.int64)

    def lower_bounds(self, lon: float, lat: float) -> FloatArray:
        """Per region: no point of its boundary is nearer than this, in its plane."""
        # arccos near 1 is off by ~1e-8 rad (0.1 m), well inside the slack.
        cosine = np.clip(self.centres @ np.array(_unit(lon, lat)), -1.0, 1.0)
        bounds = _MIN_RADIUS_M * np.arccos(cosine) - self.reach_m - _SLACK_M
        return np.asarray(bounds, dtype=np.float64)

    def plane_bound(self, number: int, x: float, y: float) -> float:
        """No boundary point of region ``number`` is nearer than this to the point
        (x, y) of its plane: a tighter bound than ``lower_bounds``, for one pyproj call."""
        x0, y0, x1, y1 = self.frames[number].plane_box
        dx = max(x0 - x, x - x1, 0.0)
        dy = max(y0 - y, y - y1, 0.0)
        return math.hypot(dx, dy) - _SLACK_M


def _memoryview(array: npt.NDArray[Any]) -> memoryview:
    buffer: Any = array
    return memoryview(buffer).toreadonly()


def _unit(lon: float, lat: float) -> tuple[float, float, float]:
    """The point on the unit sphere (geodetic latitude taken as spherical)."""
    phi, lam = math.radians(lat), math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def _angles(lons: FloatArray, lats: FloatArray, lon_0: float, lat_0: float) -> FloatArray:
    p1, p2 = np.radians(lats), math.radians(lat_0)
    h = (
        np.sin((p2 - p1) / 2.0) ** 2
        + np.cos(p1) * math.cos(p2) * np.sin(np.radians(lon_0 - lons) / 2.0) ** 2
    )
    return np.asarray(2.0 * np.arcsin(np.sqrt(np.minimum(h, 1.0))), dtype=np.float64)


def _lower_bound(angle: FloatArray, frame: Frame) -> FloatArray:
    return np.asarray(_MIN_RADIUS_M * angle - frame.reach_m - _SLACK_M, dtype=np.float64)


def group_regions(geometries: Sequence[Polygonal]) -> list[Region]:
    """The precincts grouped into regions, each as (position, the precinct's parts in
    the region) in index order.

    Grouped by polygon part, not by precinct: one county with islands on both sides of
    the antimeridian (Alaska's Aleutians West) would otherwise make one region, and one
    grid, as wide as the globe.
    """
    parts, owners = shapely.get_parts(list(geometries), return_index=True)
    boxes = shapely.box(*shapely.bounds(parts).T)
    grown = shapely.buffer(boxes, REGION_GAP_DEG / 2.0, cap_style="square", join_style="mitre")
    parent = list(range(len(parts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    left, right = shapely.STRtree(grown).query(grown, predicate="intersects")
    # Each pair once, and no part with itself: the same groups, less than half the loop.
    once = left < right
    for a, b in zip(left[once].tolist(), right[once].tolist(), strict=True):
        parent[root(a)] = root(b)
    groups: dict[int, dict[int, list[Polygon]]] = {}
    for part, owner in enumerate(owners.tolist()):
        groups.setdefault(root(part), {}).setdefault(owner, []).append(parts[part])
    regions = []
    for group in groups.values():
        region: Region = []
        for position, pieces in sorted(group.items()):
            whole = geometries[position]
            if len(pieces) == len(shapely.get_parts(whole)):
                region.append((position, whole))
            else:
                region.append((position, pieces[0] if len(pieces) == 1 else MultiPolygon(pieces)))
        regions.append(region)
    return sorted(regions, key=lambda region: region[0][0])
