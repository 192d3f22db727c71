"""Precomputed lookup tables behind ``PrecinctIndex``, and the bulk (numpy) query.

``cells[c]`` is the precinct index for a cell wholly inside one precinct, else
``~entry``: ``entries[entry]`` holds the candidate precincts to test exactly (empty for
cells no precinct touches) and the segment rows for the nearest-precinct fallback.
Cells that share both share one entry, so the entry table stays about as long as the
list of border cells.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from geo.grid import Grid, Rasterised, polygon_array, rasterise
from geo.nearest import SegmentRow, SegmentTable
from geo.plane_tiles import PlaneTiles
from geo.projection import LocalProjection
from geo.quadtree import CandidateBlocks, candidate_blocks

IntArray = npt.NDArray[np.int64]
Entry = tuple[tuple[int, ...], tuple[SegmentRow, ...]]

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
    cells: array[int]
    cells_view: npt.NDArray[np.int32]
    entries: tuple[Entry, ...]
    # CSR form of each entry's candidates, for the vectorised query.
    entry_offsets: IntArray
    entry_polygons: IntArray

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


def build_tables(geometries_list: Sequence[BaseGeometry]) -> IndexTables:
    geometries = polygon_array(geometries_list)
    shapely.prepare(geometries)
    # GEOS builds a prepared polygon's point locator lazily, on first use; do it now so
    # concurrent readers of a published index never race to build it.
    shapely.intersects_xy(geometries, 0.0, 0.0)
    bounds = tuple(float(v) for v in shapely.total_bounds(geometries))
    assert len(bounds) == 4
    n_vertices = int(shapely.get_num_coordinates(geometries).sum())
    target = min(_MAX_CELLS, max(_MIN_CELLS, _CELLS_PER_VERTEX * n_vertices))
    grid = Grid.covering(bounds, cells=target, margin=_MARGIN)
    projection = LocalProjection.for_bounds(bounds)
    raster = rasterise(grid, geometries)
    segments = SegmentTable.build(geometries, projection)
    needed = raster.owner < 0
    blocks = candidate_blocks(grid, projection, segments, needed)
    cells, entries, offsets, polygons = _entries(raster, blocks, segments)
    cells_array = array("i", cells.astype(np.int32).tobytes())
    view = np.frombuffer(cells_array, dtype=np.int32)
    view.flags.writeable = False
    plane = PlaneTiles.build(grid, projection)
    return IndexTables(
        grid, projection, plane, geometries, segments, cells_array, view, entries, offsets, polygons
    )


def _entries(
    raster: Rasterised,
    blocks: CandidateBlocks,
    segments: SegmentTable,
) -> tuple[IntArray, tuple[Entry, ...], IntArray, IntArray]:
    """Cell codes, the entry table, and its candidates in CSR form."""
    rows = segments.rows
    offsets = blocks.offsets.tolist()
    ordered = [rows[s] for s in blocks.segments.tolist()]
    # Entry b (for b < number of blocks) serves the cells of block b that no precinct
    # touches: nothing to test, only the block's segments.
    entries: list[Entry] = [
        ((), tuple(ordered[start:end])) for start, end in itertools.pairwise(offsets)
    ]
    cells = raster.owner.astype(np.int64)
    outside = np.flatnonzero(raster.owner < 0)
    cells[outside] = ~blocks.block_of_cell[outside].astype(np.int64)
    interned: dict[tuple[tuple[int, ...], int], int] = {}
    border_cells: list[int] = []
    border_entries: list[int] = []
    block_of_cell = blocks.block_of_cell
    pair_cells = raster.candidate_cells.tolist()
    pair_polygons = raster.candidate_polygons.tolist()
    start = 0
    # Pairs are sorted by cell then polygon, so each run is one cell's candidate list.
    for end in range(1, len(pair_cells) + 1):
        if end < len(pair_cells) and pair_cells[end] == pair_cells[start]:
            continue
        cell = pair_cells[start]
        block = int(block_of_cell[cell])
        key = (tuple(pair_polygons[start:end]), block)
        entry = interned.get(key)
        if entry is None:
            entry = len(entries)
            interned[key] = entry
            entries.append((key[0], entries[block][1]))
        border_cells.append(cell)
        border_entries.append(entry)
        start = end
    cells[np.asarray(border_cells, dtype=np.int64)] = ~np.asarray(border_entries, dtype=np.int64)
    counts = np.fromiter((len(e[0]) for e in entries), dtype=np.int64, count=len(entries))
    entry_offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    entry_polygons = np.fromiter(
        (p for e in entries for p in e[0]), dtype=np.int64, count=int(counts.sum())
    )
    return cells, tuple(entries), entry_offsets, entry_polygons
