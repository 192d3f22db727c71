"""A region's nearest boundary segment for points far outside its own grid.

An out-of-jurisdiction point of a national layer is sometimes nearer a second region
than the one whose grid holds it: south-east of Florida, Puerto Rico is the nearest
precinct for ~1% of the mainland's box. That region's answer was an exact STRtree
search of its whole boundary (tens of microseconds, the national p99). A far field is a
coarse lon/lat grid over the world cells where the region is so asked
(``PrecinctIndex._far_fields``), with the same quadtree candidate lists as a region's
own grid (``geo.quadtree``), so the answer is a scan of a few dozen segments at most,
as for a point in the region's own grid. A point outside the far field's cells still
takes the exact search: the far field only makes the answer cheaper, never different.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from geo.grid import Grid
from geo.nearest import SegmentRow, SegmentTable, nearest_on
from geo.projection import LocalProjection
from geo.quadtree import candidate_blocks

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Far-field cells per world cell asked (a world cell is half a degree: ~3.5 km cells),
# and at most this many in all per far field.
_CELLS_PER_WORLD_CELL = 256
_MAX_CELLS = 1 << 18


@dataclass(frozen=True, slots=True)
class FarField:
    grid: Grid
    # (x0, y0, 1/dx, 1/dy, nx, ny), as PrecinctIndex._frame.
    frame: tuple[float, float, float, float, int, int]
    block_of_cell: memoryview
    offsets: memoryview
    segments: memoryview
    arrays: dict[str, npt.NDArray[np.int32]]

    @classmethod
    def build(
        cls,
        world_cells: Sequence[int],
        per_degree: int,
        projection: LocalProjection,
        table: SegmentTable,
    ) -> FarField:
        """Candidate lists for every cell whose centre lies in one of ``world_cells``
        (cells of ``per_degree`` to the degree, numbered as ``geo.regions`` does)."""
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
        blocks = candidate_blocks(grid, projection, table, needed)
        return cls.of(
            grid,
            {
                "block_of_cell": blocks.block_of_cell.astype(np.int32),
                "offsets": blocks.offsets.astype(np.int32),
                "segments": blocks.segments.astype(np.int32),
            },
        )

    @classmethod
    def of(cls, grid: Grid, arrays: Mapping[str, npt.NDArray[Any]]) -> FarField:
        kept = {name: np.ascontiguousarray(arrays[name], dtype=np.int32) for name in _ARRAYS}
        frame = (grid.x0, grid.y0, 1.0 / grid.dx, 1.0 / grid.dy, grid.nx, grid.ny)
        return cls(
            grid, frame, _view(kept["block_of_cell"]), _view(kept["offsets"]),
            _view(kept["segments"]), kept,
        )  # fmt: skip

    def to_arrays(self) -> tuple[list[float], dict[str, npt.NDArray[np.int32]]]:
        g = self.grid
        return [g.x0, g.y0, g.dx, g.dy, g.nx, g.ny], dict(self.arrays)

    @classmethod
    def from_arrays(cls, grid: Sequence[float], arrays: Mapping[str, npt.NDArray[Any]]) -> FarField:
        x0, y0, dx, dy, nx, ny = grid
        return cls.of(Grid(float(x0), float(y0), float(dx), float(dy), int(nx), int(ny)), arrays)

    def nearest(
        self, lon: float, lat: float, x: float, y: float, rows: tuple[SegmentRow, ...]
    ) -> tuple[int, float] | None:
        """The region's nearest polygon and its distance for the point (lon, lat), at
        (x, y) in the region's plane; None when the point is not in a far-field cell."""
        x0, y0, inv_dx, inv_dy, nx, ny = self.frame
        fx = (lon - x0) * inv_dx
        fy = (lat - y0) * inv_dy
        if 0.0 <= fx < nx and 0.0 <= fy < ny:
            block = self.block_of_cell[int(fy) * nx + int(fx)]
            if block >= 0:
                offsets = self.offsets
                return nearest_on(x, y, rows, self.segments, offsets[block], offsets[block + 1])
        return None


_ARRAYS = ("block_of_cell", "offsets", "segments")


def _view(array: npt.NDArray[np.int32]) -> memoryview:
    """Items are Python ints on the scalar path (no numpy scalar)."""
    buffer: Any = array
    return memoryview(buffer).toreadonly()


def world_cell_box(cell: int, per_degree: int) -> tuple[float, float, float, float]:
    columns = 360 * per_degree
    row, column = divmod(cell, columns)
    lon0 = -180.0 + column / per_degree
    lat0 = -90.0 + row / per_degree
    return lon0, lat0, lon0 + 1.0 / per_degree, lat0 + 1.0 / per_degree


def half_diagonal_m(projection: LocalProjection, boxes: npt.NDArray[np.float64]) -> FloatArray:
    """Per lon/lat box (rows x0, y0, x1, y1): the largest plane distance from its centre
    to a corner, grown by half for the box's bend in the plane (a world cell is
    half a degree: it hardly bends; the margin only makes the far field larger)."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0
    px, py = projection.to_local_many(cx, cy)
    reach = np.zeros(len(boxes))
    for u, v in ((0, 1), (2, 1), (0, 3), (2, 3)):
        qx, qy = projection.to_local_many(boxes[:, u], boxes[:, v])
        reach = np.maximum(reach, np.hypot(qx - px, qy - py))
    return np.asarray(reach * 1.5 + 1.0, dtype=np.float64)
