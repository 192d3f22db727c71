"""Precomputed lookup tables behind ``PrecinctIndex``, and the bulk (numpy) query.

``cells[c]`` is the precinct index for a cell wholly inside one precinct, else
``~entry``. Entry ``e`` lists the candidate precincts to test exactly,
``entry_polygons[entry_offsets[e]:entry_offsets[e + 1]]`` (none for cells no precinct
touches), and the block ``entry_block[e]`` whose segment list
(``block_segments[block_offsets[b]:block_offsets[b + 1]]``) answers the nearest-precinct
fallback. Entry ``b`` < number of blocks is block ``b`` itself with no candidates; then
one entry per border cell.

Everything is flat numpy arrays, so a built index packs into bytes (``to_arrays``) and
loads back as views of them (``from_arrays``) without a per-cell Python object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from geo.grid import (
    Grid,
    Rasterised,
    polygon_array,
    rasterise_on,
    ring_segments,
    touched_cells,
    unique_ints_counts,
)
from geo.nearest import SegmentTable, outer_segments
from geo.plane_tiles import PlaneTiles
from geo.projection import LocalProjection
from geo.quadtree import CandidateBlocks, candidate_blocks

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]

# Cells per index: ~4 M int32 cells is 16 MB and keeps border cells to a few percent of
# a city's area; small datasets need far fewer.
_MAX_CELLS = 1 << 22
_MIN_CELLS = 1 << 16
_CELLS_PER_VERTEX = 64
# Points a little outside the precincts' bounding box still get the fast path.
_MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class IndexTables:
    grid: Grid
    projection: LocalProjection
    plane: PlaneTiles
    geometries: npt.NDArray[np.object_]
    segments: SegmentTable
    # Read-only memoryviews for the scalar path (an item is a Python int, no numpy
    # scalar), over the same memory as the numpy arrays the bulk path uses.
    cells: memoryview
    cells_view: npt.NDArray[np.int32]
    entry_offsets: Int32Array
    entry_polygons: Int32Array
    entry_block: Int32Array
    block_offsets: Int32Array
    block_segments: Int32Array
    geometry_list: tuple[BaseGeometry, ...]
    entry_offsets_mv: memoryview
    entry_polygons_mv: memoryview
    entry_block_mv: memoryview
    block_offsets_mv: memoryview
    block_segments_mv: memoryview

    @classmethod
    def of(
        cls,
        grid: Grid,
        projection: LocalProjection,
        plane: PlaneTiles,
        geometries: npt.NDArray[np.object_],
        segments: SegmentTable,
        arrays: Mapping[str, npt.NDArray[Any]],
    ) -> IndexTables:
        shapely.prepare(geometries)
        _build_point_locators(geometries)
        views = {name: _read_only(arrays[name]) for name in _ARRAYS}
        return cls(
            grid, projection, plane, geometries, segments,
            _memoryview(views["cells"]), views["cells"],
            views["entry_offsets"], views["entry_polygons"], views["entry_block"],
            views["block_offsets"], views["block_segments"],
            tuple(geometries.tolist()),
            *(_memoryview(views[name]) for name in _ARRAYS[1:]),
        )  # fmt: skip

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """What ``from_arrays`` needs: JSON-able values and flat arrays."""
        g = self.grid
        meta = {
            "grid": [g.x0, g.y0, g.dx, g.dy, g.nx, g.ny],
            "centre": [self.projection.lon_0, self.projection.lat_0],
            "plane": [self.plane.shift, self.plane.columns],
        }
        wkb = shapely.to_wkb(self.geometries)
        sizes = np.fromiter((len(w) for w in wkb), dtype=np.int64, count=len(wkb))
        arrays: dict[str, npt.NDArray[Any]] = {
            "cells": self.cells_view,
            "entry_offsets": self.entry_offsets,
            "entry_polygons": self.entry_polygons,
            "entry_block": self.entry_block,
            "block_offsets": self.block_offsets,
            "block_segments": self.block_segments,
            "wkb": np.frombuffer(b"".join(wkb), dtype=np.uint8),
            "wkb_sizes": sizes,
            "plane_tiles": self.plane.table(),
            **self.segments.to_arrays(),
        }
        return meta, arrays

    @classmethod
    def from_arrays(
        cls, meta: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]
    ) -> IndexTables:
        x0, y0, dx, dy, nx, ny = meta["grid"]
        grid = Grid(float(x0), float(y0), float(dx), float(dy), int(nx), int(ny))
        projection = LocalProjection.centred_on(*meta["centre"])
        shift, columns = meta["plane"]
        plane = PlaneTiles.from_table(projection, int(shift), int(columns), arrays["plane_tiles"])
        geometries = polygon_array(_geometries_of(arrays["wkb"], arrays["wkb_sizes"]))
        segments = SegmentTable.from_arrays(arrays)
        return cls.of(grid, projection, plane, geometries, segments, arrays)

    def locate_many(
        self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.int32]:
        result = np.full(lon.shape, -1, dtype=np.int32)
        cell = self.grid.cells_of(lon, lat)
        on_grid = np.flatnonzero(cell >= 0)
        code = self.cells_view[cell[on_grid]]
        interior = code >= 0
        result[on_grid[interior]] = code[interior]
        points = on_grid[~interior]
        entry = ~code[~interior].astype(np.int64)
        starts, ends = self.entry_offsets[entry], self.entry_offsets[entry + 1]
        counts = ends - starts
        has = counts > 0
        points, starts, counts = points[has], starts[has], counts[has]
        if len(points) == 0:
            return result
        pair_point = np.repeat(np.arange(len(points)), counts)
        pair_rank = np.arange(len(pair_point)) - np.repeat(np.cumsum(counts) - counts, counts)
        polygon = self.entry_polygons[np.repeat(starts, counts) + pair_rank]
        hit = shapely.intersects_xy(
            self.geometries[polygon], lon[points[pair_point]], lat[points[pair_point]]
        )
        # Candidates are in index order, so the first hit per point is the lowest index,
        # the same tie-break as the scalar path.
        first = np.full(len(points), np.iinfo(np.int64).max)
        np.minimum.at(first, pair_point[hit], polygon[hit])
        found = first != np.iinfo(np.int64).max
        result[points[found]] = first[found].astype(np.int32)
        return result


def build_tables(
    geometries_list: Sequence[BaseGeometry], cell_share: float = 1.0, pool: Executor | None = None
) -> IndexTables:
    """``pool``: threads for the quadtree's pruning, most of a large layer's build."""
    geometries = polygon_array(geometries_list)
    shapely.prepare(geometries)
    bounds = tuple(float(v) for v in shapely.total_bounds(geometries))
    assert len(bounds) == 4
    n_vertices = int(shapely.get_num_coordinates(geometries).sum())
    target = max(_MIN_CELLS, min(int(_MAX_CELLS * cell_share), _CELLS_PER_VERTEX * n_vertices))
    grid = Grid.covering(bounds, cells=target, margin=_MARGIN)
    projection = LocalProjection.for_bounds(bounds)
    rings = ring_segments(geometries)
    # The raster's halves on the pool while this thread makes the segment table and
    # plane tiles: a national layer's largest region is otherwise the build's critical
    # path, one thread long, while the other cores wait for its quadtree.
    rasterised = rasterise_on(pool, grid, geometries, rings)
    outer = outer_segments(geometries, rings)
    segments = SegmentTable.build(geometries, projection, outer)
    plane = PlaneTiles.build(grid, projection)
    raster = rasterised()
    # Nearest-precinct lists are for points in no precinct. A border cell that the
    # union's outer boundary does not touch, with its centre in some precinct, lies
    # wholly inside the union (every point of it is in a candidate precinct): inland
    # borders, most border cells of a national layer, need no list.
    needed = raster.owner < 0
    inland = raster.border & raster.centre_covered
    inland[touched_cells(grid, outer[0])] = False
    needed &= ~inland
    blocks = candidate_blocks(grid, projection, segments, needed, plane, pool)
    return IndexTables.of(grid, projection, plane, geometries, segments, _entries(raster, blocks))


_ARRAYS = (
    "cells", "entry_offsets", "entry_polygons", "entry_block", "block_offsets", "block_segments",
)  # fmt: skip


def _entries(raster: Rasterised, blocks: CandidateBlocks) -> dict[str, npt.NDArray[Any]]:
    """Cell codes and the entry table (see the module docstring), all vectorised."""
    n_blocks = len(blocks.offsets) - 1
    border, counts = unique_ints_counts(raster.candidate_cells)
    cells = raster.owner.astype(np.int32)
    outside = np.flatnonzero(raster.owner < 0)
    cells[outside] = ~blocks.block_of_cell[outside]
    cells[border] = ~(n_blocks + np.arange(len(border), dtype=np.int32))
    # Pairs are sorted by cell then polygon: each run is one cell's candidates in order.
    entry_offsets = np.concatenate((np.zeros(n_blocks + 1, np.int64), np.cumsum(counts)))
    entry_block = np.concatenate(
        (np.arange(n_blocks, dtype=np.int64), blocks.block_of_cell[border].astype(np.int64))
    )
    # 32-bit throughout: half the memory of every node, and of the stored index.
    return {
        "cells": cells,
        "entry_offsets": entry_offsets.astype(np.int32),
        "entry_polygons": raster.candidate_polygons.astype(np.int32),
        "entry_block": entry_block.astype(np.int32),
        "block_offsets": blocks.offsets.astype(np.int32),
        "block_segments": blocks.segments.astype(np.int32),
    }


def _read_only(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    view = array.view()
    view.flags.writeable = False
    return view


def _memoryview(array: npt.NDArray[Any]) -> memoryview:
    contiguous: Any = np.ascontiguousarray(array)
    return memoryview(contiguous).toreadonly()


# WKB read per `shapely.from_wkb` call: it holds the GIL throughout, and a node reads a
# national layer in an executor thread while its event loop answers alarms; the largest
# region's 15 MB in one call held the loop for 20-30 ms, 1 MB holds it ~2 ms.
_WKB_BYTES_PER_CALL = 1 << 20


def _geometries_of(wkb: npt.NDArray[np.uint8], sizes: npt.NDArray[np.int64]) -> list[Any]:
    """The geometries packed back to back in `wkb`, `sizes` bytes each."""
    raw = wkb.tobytes()
    geometries: list[Any] = []
    batch: list[bytes] = []
    start = batched = 0
    for size in sizes.tolist():
        batch.append(raw[start : start + size])
        start += size
        batched += size
        if batched >= _WKB_BYTES_PER_CALL:
            geometries.extend(shapely.from_wkb(batch).tolist())
            batch, batched = [], 0
    geometries.extend(shapely.from_wkb(batch).tolist())
    return geometries


def _build_point_locators(geometries: npt.NDArray[np.object_]) -> None:
    """GEOS answers the first point tested inside a prepared polygon's bounding box
    without an index and builds the polygon's point locator on the second: build them
    all now, so that concurrent readers of a published index never race to build one,
    and no alarm pays for it (5-90 us for a county the first times, 1.6-2 us after; a
    point outside the box, as (0, 0) was here before, is answered without either)."""
    if len(geometries) == 0:
        return
    bounds = shapely.bounds(geometries)
    x, y = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
    for _ in range(2):
        shapely.intersects_xy(geometries, x, y)
