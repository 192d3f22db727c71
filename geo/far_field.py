"""A region's nearest boundary segment for points far outside its own grid.

An out-of-jurisdiction point of a national layer is sometimes nearer a second region
than the one whose grid holds it: south-east of Florida, Puerto Rico is the nearest
precinct for ~1% of the mainland's box. That region's answer was an exact STRtree
search of its whole boundary (tens of microseconds, the national p99). A far field is a
coarse lon/lat grid over the world cells where the region is so asked
(``PrecinctIndex._far_fields``), with the same quadtree candidate lists as a region's
own grid (``geo.quadtree``) and its own plane tiles (``geo.plane_tiles``), so the answer
is a scan of a few dozen segments at most, as for a point in the region's own grid. A
point outside the far field's cells still takes the exact search.

Each far cell also says whether one side is nearer everywhere in it (``settled``): the
region itself (``RIVAL_NEARER``) or the region owning the world cell (``OWNER_NEARER``),
from both distances at the cell's centre and the cell's reach in each plane. Away from
the thin band where the two are about equally far, a point then measures one region
instead of two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from geo.grid import Grid
from geo.nearest import SegmentRow, SegmentTable, nearest_on
from geo.plane_tiles import PlaneTiles
from geo.projection import LocalProjection
from geo.quadtree import candidate_blocks

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Far-field cells per world cell asked (a world cell is half a degree: ~7 km cells),
# and at most this many in all per far field.
_CELLS_PER_WORLD_CELL = 64
_MAX_CELLS = 1 << 18
# Plane tiles per far field: far from a plane's centre pyproj takes microseconds a
# point, and a tile's cubic still holds to a millimetre at 30-60 km (checked per tile).
_MAX_TILES = 1 << 10
UNSETTLED, RIVAL_NEARER, OWNER_NEARER = 0, 1, 2
# Metres kept between the two sides' bounds before a cell is settled (float noise and
# the plane tiles' millimetre).
_MARGIN_M = 1.0
# Metres per degree of latitude, above the most on WGS84 (111,694 m at the poles).
_METRES_PER_DEGREE = 111_700.0
# Below WGS84's smallest radius of curvature, so c / sin c errs large.
_EARTH_RADIUS_M = 6_300_000.0


@dataclass(frozen=True, slots=True)
class Side:
    """The region a point's world cell belongs to, for ``FarField.build``: its number,
    plane, boundary, and its grid's candidate lists (cells, entry block per cell code,
    block offsets and segments, as in ``geo.tables``)."""

    number: int
    projection: LocalProjection
    segments: SegmentTable
    grid: Grid
    cells: npt.NDArray[np.int32]
    entry_block: npt.NDArray[np.int32]
    block_offsets: npt.NDArray[np.int32]
    block_segments: npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class FarField:
    grid: Grid
    # (x0, y0, 1/dx, 1/dy, nx, ny), as PrecinctIndex._frame.
    frame: tuple[float, float, float, float, int, int]
    plane: PlaneTiles
    # The region ``settled`` is measured against; -1: no cell is settled.
    owner: int
    block_of_cell: memoryview
    offsets: memoryview
    segments: memoryview
    settled: memoryview
    arrays: dict[str, npt.NDArray[Any]]

    @classmethod
    def build(
        cls,
        world_cells: Sequence[int],
        per_degree: int,
        projection: LocalProjection,
        table: SegmentTable,
        owner: Side | None,
    ) -> FarField:
        """Candidate lists for every cell whose centre lies in one of ``world_cells``
        (cells of ``per_degree`` to the degree, numbered as ``geo.regions`` does);
        ``owner``: the one region owning all of those world cells, if there is one."""
        boxes = np.array([world_cell_box(c, per_degree) for c in world_cells]).reshape(-1, 4)
        bounds = (
            float(boxes[:, 0].min()), float(boxes[:, 1].min()),
            float(boxes[:, 2].max()), float(boxes[:, 3].max()),
        )  # fmt: skip
        target = min(_MAX_CELLS, _CELLS_PER_WORLD_CELL * len(boxes))
        grid = Grid.covering(bounds, cells=target, margin=0.0)
        lon = grid.x0 + (np.arange(grid.nx) + 0.5) * grid.dx
        lat = grid.y0 + (np.arange(grid.ny) + 0.5) * grid.dy
        lons, lats = (a.ravel() for a in np.meshgrid(lon, lat))
        column = np.floor((lons + 180.0) * per_degree).astype(np.int64)
        row = np.floor((lats + 90.0) * per_degree).astype(np.int64)
        needed = np.isin(row * 360 * per_degree + column, np.asarray(world_cells))
        plane = PlaneTiles.build(grid, projection, max_tiles=_MAX_TILES)
        blocks = candidate_blocks(grid, projection, table, needed, plane)
        settled = np.zeros(grid.size, dtype=np.int8)
        if owner is not None:
            cells = np.flatnonzero(needed)
            lists = blocks.block_of_cell[cells].astype(np.int64)
            ours = _bounds(grid, cells, projection, table, (lists, blocks.offsets, blocks.segments))
            theirs = _bounds(
                grid, cells, owner.projection, owner.segments, _lists_of(owner, grid, cells)
            )
            settled[cells[ours[1] + _MARGIN_M < theirs[0]]] = RIVAL_NEARER
            settled[cells[theirs[1] + _MARGIN_M < ours[0]]] = OWNER_NEARER
        arrays: dict[str, npt.NDArray[Any]] = {
            "block_of_cell": blocks.block_of_cell.astype(np.int32),
            "offsets": blocks.offsets.astype(np.int32),
            "segments": blocks.segments.astype(np.int32),
            "settled": settled,
            "plane_tiles": plane.table(),
        }
        meta = [grid.x0, grid.y0, grid.dx, grid.dy, grid.nx, grid.ny, plane.shift,
                plane.columns, -1 if owner is None else owner.number]  # fmt: skip
        return cls.from_arrays(meta, arrays, projection)

    def to_arrays(self) -> tuple[list[float], dict[str, npt.NDArray[Any]]]:
        g = self.grid
        meta = [g.x0, g.y0, g.dx, g.dy, g.nx, g.ny, self.plane.shift, self.plane.columns,
                self.owner]  # fmt: skip
        return meta, dict(self.arrays)

    @classmethod
    def from_arrays(
        cls,
        meta: Sequence[float],
        arrays: Mapping[str, npt.NDArray[Any]],
        projection: LocalProjection,
    ) -> FarField:
        x0, y0, dx, dy, nx, ny, shift, columns, owner = meta
        grid = Grid(float(x0), float(y0), float(dx), float(dy), int(nx), int(ny))
        kept: dict[str, npt.NDArray[Any]] = {
            name: np.ascontiguousarray(arrays[name], dtype=np.int32) for name in _INT32
        }
        kept["settled"] = np.ascontiguousarray(arrays["settled"], dtype=np.int8)
        tiles = np.asarray(arrays["plane_tiles"], dtype=np.float64)
        kept["plane_tiles"] = tiles
        plane = PlaneTiles.from_table(projection, int(shift), int(columns), tiles)
        frame = (grid.x0, grid.y0, 1.0 / grid.dx, 1.0 / grid.dy, grid.nx, grid.ny)
        return cls(
            grid, frame, plane, int(owner), _view(kept["block_of_cell"]),
            _view(kept["offsets"]), _view(kept["segments"]), _view(kept["settled"]), kept,
        )  # fmt: skip

    def cell(self, lon: float, lat: float) -> tuple[int, int]:
        """(ix, iy) of the far cell holding the point, (-1, -1) outside the far field."""
        x0, y0, inv_dx, inv_dy, nx, ny = self.frame
        fx = (lon - x0) * inv_dx
        fy = (lat - y0) * inv_dy
        if 0.0 <= fx < nx and 0.0 <= fy < ny:
            return int(fx), int(fy)
        return -1, -1

    def nearest(
        self, lon: float, lat: float, ix: int, iy: int, rows: tuple[SegmentRow, ...]
    ) -> tuple[int, float] | None:
        """The region's nearest polygon and its distance for the point (lon, lat) of far
        cell (ix, iy); None when the cell has no list."""
        block = self.block_of_cell[iy * self.frame[4] + ix]
        if block < 0:
            return None
        x, y = self.plane.to_local(lon, lat, ix, iy)
        offsets = self.offsets
        return nearest_on(x, y, rows, self.segments, offsets[block], offsets[block + 1])


_INT32 = ("block_of_cell", "offsets", "segments")


def _view(array: npt.NDArray[Any]) -> memoryview:
    """Items are Python ints on the scalar path (no numpy scalar)."""
    buffer: Any = array
    return memoryview(buffer).toreadonly()


# Per cell, its candidate list (a block, -1 for none), the blocks' offsets and segments.
Lists = tuple[IntArray, npt.NDArray[np.integer[Any]], npt.NDArray[np.integer[Any]]]


def _lists_of(side: Side, grid: Grid, cells: IntArray) -> Lists:
    """The owner's candidate list for each far cell's centre (-1 where its grid has none
    there: off its grid, or in a cell inside one of its precincts)."""
    ix, iy = cells % grid.nx, cells // grid.nx
    lon = np.asarray(grid.x0 + (ix + 0.5) * grid.dx, dtype=np.float64)
    lat = np.asarray(grid.y0 + (iy + 0.5) * grid.dy, dtype=np.float64)
    at = side.grid.cells_of(lon, lat)
    block = np.full(len(cells), -1, dtype=np.int64)
    on_grid = np.flatnonzero(at >= 0)
    code = side.cells[at[on_grid]].astype(np.int64)
    listed = code < 0
    block[on_grid[listed]] = side.entry_block[~code[listed]]
    return block, side.block_offsets, side.block_segments


def _bounds(
    grid: Grid,
    cells: IntArray,
    projection: LocalProjection,
    table: SegmentTable,
    lists: Lists,
) -> tuple[FloatArray, FloatArray]:
    """Per cell: no point of it is nearer than the first, or further than the second,
    from the boundary in ``table`` (measured in ``projection``'s plane): the exact
    distance at the cell's centre, less or plus its reach to the corners (grown by half
    for the cell's bend in the plane). The distance at the centre comes from the
    centre's candidate list in ``lists`` (the nearest segment is on it), or an exact
    search where there is none."""
    ix, iy = cells % grid.nx, cells // grid.nx
    lon, lat = grid.x0 + (ix + 0.5) * grid.dx, grid.y0 + (iy + 0.5) * grid.dy
    cx, cy = projection.to_local_many(lon, lat)
    # The cell's reach in the plane, without projecting its corners (pyproj's
    # ellipsoidal azimuthal equidistant costs microseconds a point): on the ground the
    # half diagonal, at most ``_METRES_PER_DEGREE`` a degree of latitude and its cosine
    # at the cell's equatorward edge a degree of longitude; in the plane scaled by at
    # most c / sin c across the radius (c the angle from the plane's centre, which the
    # projection keeps as the distance |(cx, cy)|), grown by half for the ellipsoid,
    # the bend and the spherical approximation.
    equatorward = np.maximum(np.abs(lat) - grid.dy / 2.0, 0.0)
    half_x = grid.dx / 2.0 * _METRES_PER_DEGREE * np.cos(np.radians(equatorward))
    half_y = grid.dy / 2.0 * _METRES_PER_DEGREE
    angle = np.minimum(np.hypot(cx, cy) / _EARTH_RADIUS_M, 3.0)
    scale = np.where(angle > 1e-9, angle / np.sin(np.maximum(angle, 1e-9)), 1.0)
    reach = np.hypot(np.maximum(half_x, 0.0), half_y) * scale * 1.5 + _MARGIN_M
    block, offsets, segments = lists
    at_centre = np.full(len(cells), math.inf)
    listed = np.flatnonzero(block >= 0)
    starts = offsets[block[listed]].astype(np.int64)
    counts = offsets[block[listed] + 1].astype(np.int64) - starts
    point = np.repeat(listed, counts)
    rank = np.arange(len(point)) - np.repeat(np.cumsum(counts) - counts, counts)
    segment = segments[np.repeat(starts, counts) + rank]
    wx, wy = cx[point] - table.ax[segment], cy[point] - table.ay[segment]
    ux, uy = table.ux[segment], table.uy[segment]
    t = np.clip((wx * ux + wy * uy) * table.inverse_length2[segment], 0.0, 1.0)
    np.minimum.at(at_centre, point, np.hypot(wx - t * ux, wy - t * uy))
    rest = np.flatnonzero(block < 0)
    if len(rest):
        which, distance = table.tree.query_nearest(
            shapely.points(cx[rest], cy[rest]), return_distance=True
        )
        np.minimum.at(at_centre, rest[which[0]], distance)
    return at_centre - reach, at_centre + reach


def world_cell_box(cell: int, per_degree: int) -> tuple[float, float, float, float]:
    columns = 360 * per_degree
    row, column = divmod(cell, columns)
    lon0 = -180.0 + column / per_degree
    lat0 = -90.0 + row / per_degree
    return lon0, lat0, lon0 + 1.0 / per_degree, lat0 + 1.0 / per_degree


def half_diagonal_m(projection: LocalProjection, boxes: npt.NDArray[np.float64]) -> FloatArray:
    """Per lon/lat box (rows x0, y0, x1, y1): the largest plane distance from its centre
    to a corner, grown by half for the box's bend in the plane (a world cell is half a
    degree: it hardly bends; the margin only makes the far field larger)."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0
    px, py = projection.to_local_many(cx, cy)
    reach = np.zeros(len(boxes))
    for u, v in ((0, 1), (2, 1), (0, 3), (2, 3)):
        qx, qy = projection.to_local_many(boxes[:, u], boxes[:, v])
        reach = np.maximum(reach, np.hypot(qx - px, qy - py))
    return np.asarray(reach * 1.5 + 1.0, dtype=np.float64)
