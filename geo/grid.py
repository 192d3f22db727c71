"""A uniform lon/lat grid over the precincts, classified cell by cell.

Every cell is one of:

* **interior** of exactly one precinct: no precinct boundary comes within ``_EPS`` of
  it, so any point in it is answered by an array lookup, with no polygon test;
* **border**: some boundary touches it; points are tested exactly against a short,
  complete list of candidate precincts;
* **outside**: no precinct touches it.

Boundary cells come from rasterising every ring segment conservatively (each segment
is cut at the grid lines it crosses, and every piece marks the cells within ``_EPS`` of
it). Interior owners come from an even-odd scanline fill at cell centres, which is
numerically safe exactly for the cells that matter: those no boundary touches.
Everything is vectorised numpy; there is no per-cell Python.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# In cell units. Far above float64 noise in grid coordinates (~1e-12), far below any
# real geometry; a boundary lying exactly on a grid line marks the cells on both sides.
_EPS = 1e-6
# Segments rasterised at a time (bounds the build's peak memory).
_CHUNK = 1 << 18
# A uniform grid is sized so cells are roughly square on the ground.
_METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True, slots=True)
class Grid:
    x0: float
    y0: float
    dx: float
    dy: float
    nx: int
    ny: int

    @classmethod
    def covering(
        cls, bounds: tuple[float, float, float, float], *, cells: int, margin: float
    ) -> Grid:
        """About ``cells`` near-square cells over ``bounds`` grown by ``margin`` per side."""
        minx, miny, maxx, maxy = bounds
        width, height = max(maxx - minx, 1e-9), max(maxy - miny, 1e-9)
        minx, maxx = minx - margin * width, maxx + margin * width
        miny, maxy = miny - margin * height, maxy + margin * height
        width, height = maxx - minx, maxy - miny
        shrink = math.cos(math.radians((miny + maxy) / 2.0))
        aspect = (width * shrink) / height
        nx = max(1, round(math.sqrt(cells * aspect)))
        ny = max(1, round(cells / nx))
        return cls(minx, miny, width / nx, height / ny, nx, ny)

    @property
    def size(self) -> int:
        return self.nx * self.ny

    @property
    def cell_metres(self) -> tuple[float, float]:
        mid_lat = self.y0 + self.dy * self.ny / 2.0
        return (
            self.dx * _METRES_PER_DEGREE * math.cos(math.radians(mid_lat)),
            self.dy * _METRES_PER_DEGREE,
        )

    def cells_of(self, lons: FloatArray, lats: FloatArray) -> IntArray:
        """Flat cell index per point, -1 outside the grid.

        The same arithmetic as ``PrecinctIndex.locate``, to the bit, so the scalar and
        bulk paths put a point on a cell edge in the same cell.
        """
        fx = (lons - self.x0) * (1.0 / self.dx)
        fy = (lats - self.y0) * (1.0 / self.dy)
        inside = (fx >= 0.0) & (fx < self.nx) & (fy >= 0.0) & (fy < self.ny)
        ix = np.where(inside, fx, 0.0).astype(np.int64)
        iy = np.where(inside, fy, 0.0).astype(np.int64)
        return np.where(inside, iy * self.nx + ix, -1)


@dataclass(frozen=True, slots=True)
class Rasterised:
    """``owner[cell]`` is the interior precinct or -1; border cells list candidates;
    ``centre_covered[cell]``: some precinct holds the cell's centre (numerically safe
    where no boundary comes near the centre)."""

    owner: npt.NDArray[np.int32]
    border: npt.NDArray[np.bool_]
    candidate_cells: IntArray
    candidate_polygons: IntArray
    centre_covered: npt.NDArray[np.bool_]


def ring_segments(geometries: npt.NDArray[np.object_]) -> tuple[FloatArray, IntArray]:
    """All ring segments as ``(n, 4)`` rows ``ax, ay, bx, by`` and their polygon index."""
    parts, part_owner = shapely.get_parts(geometries, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = coord_ring[1:] == coord_ring[:-1]
    segments = np.column_stack((coords[:-1][same_ring], coords[1:][same_ring]))
    owners = part_owner[ring_part[coord_ring[:-1][same_ring]]]
    return segments, owners.astype(np.int64)


def _boundary_pairs(grid: Grid, segments: FloatArray, owners: IntArray, n_poly: int) -> IntArray:
    """Unique ``cell * n_poly + polygon`` keys for every cell a segment comes within _EPS
    of.

    Segments go through in chunks: a national layer has millions, and each needs a
    dozen temporaries the size of its pieces, which would set the build's peak memory.
    """
    chunks = [
        _chunk_pairs(grid, segments[start : start + _CHUNK], owners[start : start + _CHUNK], n_poly)
        for start in range(0, len(segments), _CHUNK)
    ]
    return unique_ints(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int64)


def _chunk_pairs(grid: Grid, segments: FloatArray, owners: IntArray, n_poly: int) -> IntArray:
    au = (segments[:, 0] - grid.x0) / grid.dx
    av = (segments[:, 1] - grid.y0) / grid.dy
    bu = (segments[:, 2] - grid.x0) / grid.dx
    bv = (segments[:, 3] - grid.y0) / grid.dy
    # Cut each segment where it crosses a grid line, so each piece lies in one cell.
    u_lo, u_hi = np.floor(np.minimum(au, bu)), np.floor(np.maximum(au, bu))
    v_lo, v_hi = np.floor(np.minimum(av, bv)), np.floor(np.maximum(av, bv))
    n_u = (u_hi - u_lo).astype(np.int64)
    n_v = (v_hi - v_lo).astype(np.int64)
    # Most segments of a densified layer cross no grid line: each is one piece, t from
    # 0 to 1. Only the others are cut and their pieces sorted (the keys are made
    # unique at the end, so the order of the pieces does not matter).
    crossing = (n_u > 0) | (n_v > 0)
    whole = np.flatnonzero(~crossing)
    seg_ids = np.flatnonzero(crossing)
    n_u, n_v = n_u[seg_ids], n_v[seg_ids]

    def crossings(counts: IntArray, lo: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
        ids = np.repeat(seg_ids, counts)
        starts = np.cumsum(counts) - counts
        k = np.arange(len(ids)) - np.repeat(starts, counts) + 1 + lo[ids]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray((k - a[ids]) / (b[ids] - a[ids]), dtype=np.float64)

    t_u = crossings(n_u, u_lo, au, bu)
    t_v = crossings(n_v, v_lo, av, bv)
    piece_seg = np.concatenate((seg_ids, seg_ids, np.repeat(seg_ids, n_u), np.repeat(seg_ids, n_v)))
    piece_t = np.concatenate(
        (np.zeros(len(seg_ids)), np.ones(len(seg_ids)), np.clip(t_u, 0, 1), np.clip(t_v, 0, 1))
    )
    order = np.lexsort((piece_t, piece_seg))
    piece_seg, piece_t = piece_seg[order], piece_t[order]
    keep = piece_seg[1:] == piece_seg[:-1]
    seg = np.concatenate((whole, piece_seg[:-1][keep]))
    t0 = np.concatenate((np.zeros(len(whole)), piece_t[:-1][keep]))
    t1 = np.concatenate((np.ones(len(whole)), piece_t[1:][keep]))
    du, dv = (bu - au)[seg], (bv - av)[seg]
    pu0, pu1 = au[seg] + t0 * du, au[seg] + t1 * du
    pv0, pv1 = av[seg] + t0 * dv, av[seg] + t1 * dv
    cu_lo = np.floor(np.minimum(pu0, pu1) - _EPS).astype(np.int64)
    cu_hi = np.floor(np.maximum(pu0, pu1) + _EPS).astype(np.int64)
    cv_lo = np.floor(np.minimum(pv0, pv1) - _EPS).astype(np.int64)
    cv_hi = np.floor(np.maximum(pv0, pv1) + _EPS).astype(np.int64)
    owner = owners[seg]
    keys = []
    # A piece inside one cell spans at most two cells per axis once grown by _EPS; most
    # span one, and only the pieces that do span two add their other cells (fewer keys
    # to make unique, the same set).
    wide_u, wide_v = cu_hi != cu_lo, cv_hi != cv_lo
    for cu, cv, which in (
        (cu_lo, cv_lo, None),
        (cu_hi, cv_lo, wide_u),
        (cu_lo, cv_hi, wide_v),
        (cu_hi, cv_hi, wide_u & wide_v),
    ):
        piece_owner = owner
        if which is not None:
            cu, cv, piece_owner = cu[which], cv[which], owner[which]
        on_grid = (cu >= 0) & (cu < grid.nx) & (cv >= 0) & (cv < grid.ny)
        cells = cv[on_grid] * grid.nx + cu[on_grid]
        keys.append(cells * n_poly + piece_owner[on_grid])
    return unique_ints(np.concatenate(keys))


def _centre_fill(grid: Grid, segments: FloatArray, owners: IntArray) -> tuple[IntArray, IntArray]:
    """Per cell centre: how many precincts contain it, and the sum of (index + 1).

    Whole precincts go through in chunks of about ``_CHUNK`` segments (a precinct's
    crossings pair up among its own), so the crossings' temporaries never exist for a
    national layer's million segments at once: they set the build's peak memory. The
    sums are of small integers, exact in any order, so chunking changes no value.
    """
    width = grid.nx + 1
    size = grid.ny * width
    count = np.zeros(size)
    total = np.zeros(size)
    for a, b in _whole_precincts(owners):
        flat, ids = _crossings(grid, segments[a:b], owners[a:b])
        count += np.bincount(flat, np.sign(ids), size)
        total += np.bincount(flat, ids, size)
    results = []
    for sums in (count, total):
        rows = sums.reshape(grid.ny, width)
        np.cumsum(rows, axis=1, out=rows)
        np.rint(rows, out=rows)
        results.append(rows[:, :-1].astype(np.int64).ravel())
    return results[0], results[1]


def _whole_precincts(owners: IntArray) -> list[tuple[int, int]]:
    """(start, end) spans of about ``_CHUNK`` segments that never split a precinct's
    segments (``owners`` is in precinct order)."""
    cuts = [0]
    for position in range(_CHUNK, len(owners), _CHUNK):
        cut = int(np.searchsorted(owners, owners[position], side="left"))
        if cut > cuts[-1]:
            cuts.append(cut)
    cuts.append(len(owners))
    return list(itertools.pairwise(cuts))


def _crossings(grid: Grid, segments: FloatArray, owners: IntArray) -> tuple[IntArray, FloatArray]:
    """Where each precinct's rings enter and leave it along every row of cell centres:
    flat positions in a (ny, nx + 1) table, with +(index + 1) where a precinct is
    entered and -(index + 1) where it is left."""
    au = (segments[:, 0] - grid.x0) / grid.dx
    av = (segments[:, 1] - grid.y0) / grid.dy
    bu = (segments[:, 2] - grid.x0) / grid.dx
    bv = (segments[:, 3] - grid.y0) / grid.dy
    # Half-open rule: a segment crosses row r when its centre line lies in [min, max).
    r_lo = np.ceil(np.minimum(av, bv) - 0.5).astype(np.int64)
    r_hi = np.ceil(np.maximum(av, bv) - 0.5).astype(np.int64)
    r_lo, r_hi = np.clip(r_lo, 0, grid.ny), np.clip(r_hi, 0, grid.ny)
    counts = np.maximum(r_hi - r_lo, 0)
    seg = np.repeat(np.arange(len(segments)), counts)
    starts = np.cumsum(counts) - counts
    row = np.arange(len(seg)) - np.repeat(starts, counts) + r_lo[seg]
    u = au[seg] + (row + 0.5 - av[seg]) * (bu[seg] - au[seg]) / (bv[seg] - av[seg])
    poly = owners[seg]
    # By polygon, row, then u: (polygon, row) as one key sorts the same, and faster.
    order = np.lexsort((u, poly * grid.ny + row))
    u, row, poly = u[order], row[order], poly[order]
    # Closed rings cross every scanline an even number of times, so after sorting each
    # (polygon, row) run pairs up into [enter, leave) intervals.
    group_start = np.ones(len(u), dtype=bool)
    group_start[1:] = (row[1:] != row[:-1]) | (poly[1:] != poly[:-1])
    first = np.maximum.accumulate(np.where(group_start, np.arange(len(u)), 0))
    enters = ((np.arange(len(u)) - first) % 2) == 0
    u_in, u_out = u[enters], u[np.flatnonzero(enters) + 1]
    r, p = row[enters], poly[enters]
    c_in = np.clip(np.ceil(u_in - 0.5), 0, grid.nx).astype(np.int64)
    c_out = np.clip(np.ceil(u_out - 0.5), 0, grid.nx).astype(np.int64)
    width = grid.nx + 1
    flat = np.concatenate((r * width + c_in, r * width + c_out))
    ids = np.concatenate((p + 1, -(p + 1))).astype(np.float64)
    return flat, ids


def rasterise_on(
    pool: Executor | None,
    grid: Grid,
    geometries: npt.NDArray[np.object_],
    rings: tuple[FloatArray, IntArray],
) -> Callable[[], Rasterised]:
    """Rasterise ``geometries`` (``rings``: their ``ring_segments``). With ``pool``, its
    two halves (boundary cells, centre fill) start there and the call returned waits for
    them: both are leaves (they submit nothing), so a thread of the pool never waits for
    the pool, and the caller's thread is free meanwhile (a region's build makes its
    segment table and plane tiles)."""
    segments, owners = rings
    n_poly = len(geometries)
    if pool is None:
        done = _combined(
            grid,
            geometries,
            _boundary_pairs(grid, segments, owners, n_poly),
            _centre_fill(grid, segments, owners),
        )
        return lambda: done
    keys = pool.submit(_boundary_pairs, grid, segments, owners, n_poly)
    fill = pool.submit(_centre_fill, grid, segments, owners)
    return lambda: _combined(grid, geometries, keys.result(), fill.result())


def _combined(
    grid: Grid,
    geometries: npt.NDArray[np.object_],
    keys: IntArray,
    fill: tuple[IntArray, IntArray],
) -> Rasterised:
    n_poly = len(geometries)
    pair_cells, pair_polys = keys // n_poly, keys % n_poly
    count, total = fill
    border = np.zeros(grid.size, dtype=bool)
    border[pair_cells] = True
    # Overlaps were resolved at import, so two owners at a centre means a sliver left by
    # floating point; such cells are tested exactly like any border cell.
    border |= count > 1
    owner = np.where(~border & (count == 1), total - 1, -1).astype(np.int32)
    # A border cell's candidates are the precincts whose boundary touches it, plus the
    # one containing its centre: a precinct that covers part of the cell either has
    # boundary in it or contains all of it.
    centre_cells = np.flatnonzero(border & (count == 1))
    cells = [pair_cells, centre_cells]
    polys = [pair_polys, total[centre_cells] - 1]
    crowded = np.flatnonzero(count > 1)
    if len(crowded):
        boxes = _cell_boxes(grid, crowded)
        box_idx, poly_idx = shapely.STRtree(geometries).query(boxes, predicate="intersects")
        cells.append(crowded[box_idx])
        polys.append(poly_idx)
    merged = unique_ints(np.concatenate(cells) * n_poly + np.concatenate(polys))
    return Rasterised(owner, border, merged // n_poly, merged % n_poly, count > 0)


def touched_cells(grid: Grid, segments: FloatArray) -> IntArray:
    """The cells that some segment (rows ``ax, ay, bx, by``) comes within _EPS of."""
    return _boundary_pairs(grid, segments, np.zeros(len(segments), dtype=np.int64), 1)


def _cell_boxes(grid: Grid, cells: IntArray) -> npt.NDArray[np.object_]:
    ix, iy = cells % grid.nx, cells // grid.nx
    x = grid.x0 + ix * grid.dx
    y = grid.y0 + iy * grid.dy
    boxes: npt.NDArray[np.object_] = shapely.box(x, y, x + grid.dx, y + grid.dy)
    return boxes


def unique_ints(values: IntArray) -> IntArray:
    """``np.unique`` of integers, sorted, by sorting: numpy 2's hash-based unique took
    seconds on the millions of (cell, polygon) keys of a national layer, where a sort
    and a comparison of neighbours takes a fraction of a second."""
    ordered = np.sort(values)
    if len(ordered) == 0:
        return ordered
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def unique_ints_inverse(values: IntArray) -> tuple[IntArray, IntArray]:
    """``np.unique(values, return_inverse=True)`` for integers, by sorting."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def unique_ints_counts(values: IntArray) -> tuple[IntArray, IntArray]:
    """``np.unique(values, return_counts=True)`` for integers, by sorting."""
    ordered = np.sort(values)
    first = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    counts = np.diff(np.concatenate((first, [len(ordered)])))
    return ordered[first], counts


def polygon_array(geometries: Sequence[BaseGeometry]) -> npt.NDArray[np.object_]:
    array = np.empty(len(geometries), dtype=object)
    array[:] = geometries
    return array
