"""Which boundary segments can be nearest to some point of each grid cell.

A quadtree over the grid starts from one block holding every segment of the outer
boundary and splits blocks in four; each child keeps the subset of its parent's segments
that pass its own test (``_prune``). A block stops splitting once its list is short:
far from the boundary that happens at coarse levels, so only cells along the coast reach
the finest level. Everything is vectorised over (block, segment) pairs.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.grid import Grid, unique_ints_inverse
from geo.nearest import SegmentTable
from geo.plane_tiles import PlaneTiles, TileTable
from geo.projection import LocalProjection

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Segments per list before a block splits; each costs ~0.2 us per query in Python,
# and a lower limit makes more blocks split (build time: 8 made the national layer's
# build 25% slower for lists of 4.3 segments per cell on average instead of 6.7).
_MAX_CANDIDATES = 16
# Segments per run at the coarse levels, and how many (block, segment) pairs the runs
# may stand for before they are expanded into their segments.
_RUN = 16
_EXPAND_PAIRS = 2_000_000
# (block, segment) pairs pruned at a time (a thread's share of a pass), and how many
# of them go through one round of arithmetic (``_cached_spans``).
_PRUNE_CHUNK = 1 << 19
_CACHED_PAIRS = 1 << 16
# Metres of slack in every comparison: float noise and points rounded across a cell edge.
_SLACK_M = 0.01
# Blocks of this side or more are painted a slice each (_paint).
_SLICED_SIDE = 64
# Blocks are grown by 1% about their centre; see _BlockGeometry.
_GROWTH = 1.01
# A block's bend (how far its edges' midpoints stray from the chords, over their
# distance from the centre) below which it is not measured at the next, finer level.
_NEGLIGIBLE_BEND = 1e-3


@dataclass(frozen=True, slots=True)
class CandidateBlocks:
    """``block_of_cell[cell]`` indexes ``segments[offsets[b]:offsets[b + 1]]``; -1: none."""

    block_of_cell: npt.NDArray[np.int32]
    offsets: IntArray
    segments: IntArray


def candidate_blocks(
    grid: Grid,
    projection: LocalProjection,
    table: SegmentTable,
    needed: npt.NDArray[np.bool_],
    plane: PlaneTiles | None = None,
    pool: Executor | None = None,
) -> CandidateBlocks:
    """Segment lists for every cell where ``needed`` (cells that are not interior).

    ``plane``: the grid's plane tiles, which project the blocks' corners (to a
    millimetre, far inside the blocks' growth) without a pyproj call per corner.
    ``pool``: threads for the pruning (``_prune``); the lists come out the same.

    Starts from one block holding every segment and splits blocks in four, each child
    keeping the subset of its parent's segments that survive the child's own test.
    """
    top = max(0, math.ceil(math.log2(max(grid.nx, grid.ny))))
    pyramid = _any_pyramid(needed.reshape(grid.ny, grid.nx), top)
    block_of_cell = np.full(grid.size, -1, dtype=np.int32)
    segment_chunks: list[IntArray] = []
    count_chunks: list[IntArray] = []
    n_blocks = 0
    bx = by = np.zeros(1 if pyramid[top].any() else 0, dtype=np.int64)
    # Coarse levels work on runs of consecutive segments (a ring's next few edges lie
    # close together): a national boundary has tens of thousands of segments, and
    # every coarse block keeps most of them, so pairs of (block, segment) ran into the
    # hundreds of millions.
    runs = _Runs.of(table)
    pair_block = np.zeros(len(runs.first) * len(bx), dtype=np.int64)
    pair_run = np.arange(len(pair_block), dtype=np.int64)
    pair_segment = np.zeros(0, dtype=np.int64)
    by_runs = len(runs.first) > 0
    # Large blocks of a country-sized grid bend more than the 1% growth covers (see
    # _BlockGeometry); the bend shrinks fourfold per level, so once it is negligible
    # the finer levels skip measuring it.
    bent = True
    tiles = None if plane is None else TileTable.of(plane)
    for level in range(top, -1, -1):
        side = 1 << level
        geometry = _BlockGeometry.of(grid, projection, bx, by, side, bent=bent, tiles=tiles)
        bent = geometry.bend > _NEGLIGIBLE_BEND
        if by_runs:
            pair_block, pair_run = runs.prune(geometry, pair_block, pair_run)
            expanded = int(runs.size[pair_run].sum())
            if level > 0 and expanded > _EXPAND_PAIRS:
                bx, by, pair_block, pair_run = _split(
                    pyramid[level - 1], bx, by, np.ones(len(bx), dtype=bool), pair_block, pair_run
                )
                continue
            pair_block, pair_segment = runs.expand(pair_block, pair_run)
            by_runs = False
        pair_block, pair_segment = _prune(geometry, table, pair_block, pair_segment, pool)
        counts = np.bincount(pair_block, minlength=len(bx))
        resolved = (counts <= _MAX_CANDIDATES) | (level == 0)
        ids = np.full(len(bx), -1, dtype=np.int64)
        ids[resolved] = n_blocks + np.arange(int(resolved.sum()))
        n_blocks += int(resolved.sum())
        keep = resolved[pair_block]
        # Pairs are grouped by block in the blocks' order (``_split``), so the resolved
        # blocks' lists are already one after another.
        segment_chunks.append(pair_segment[keep])
        count_chunks.append(counts[resolved])
        _paint(block_of_cell, grid, bx[resolved], by[resolved], ids[resolved], side)
        if level == 0 or resolved.all():
            break
        bx, by, pair_block, pair_segment = _split(
            pyramid[level - 1], bx, by, ~resolved, pair_block[~keep], pair_segment[~keep]
        )
    counts_all = np.concatenate(count_chunks) if count_chunks else np.zeros(0, np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts_all))).astype(np.int64)
    segments = np.concatenate(segment_chunks) if segment_chunks else np.zeros(0, np.int64)
    return CandidateBlocks(block_of_cell, offsets, segments.astype(np.int64))


@dataclass(frozen=True, slots=True)
class _Runs:
    """The segment table cut into runs of ``_RUN`` consecutive segments, with each run's
    bounding box and one boundary point on it."""

    first: IntArray
    size: IntArray
    px: FloatArray
    py: FloatArray
    x0: FloatArray
    y0: FloatArray
    x1: FloatArray
    y1: FloatArray

    @classmethod
    def of(cls, table: SegmentTable) -> _Runs:
        n = len(table.ax)
        first = np.arange(0, n, _RUN, dtype=np.int64)
        size = np.minimum(first + _RUN, n) - first
        bx, by = table.ax + table.ux, table.ay + table.uy
        lo_x, hi_x = np.minimum(table.ax, bx), np.maximum(table.ax, bx)
        lo_y, hi_y = np.minimum(table.ay, by), np.maximum(table.ay, by)
        if n == 0:
            empty = np.zeros(0)
            return cls(first, size, empty, empty, empty, empty, empty, empty)
        return cls(
            first,
            size,
            table.ax[first],
            table.ay[first],
            np.minimum.reduceat(lo_x, first),
            np.minimum.reduceat(lo_y, first),
            np.maximum.reduceat(hi_x, first),
            np.maximum.reduceat(hi_y, first),
        )

    def prune(
        self, blocks: _BlockGeometry, pair_block: IntArray, pair_run: IntArray
    ) -> tuple[IntArray, IntArray]:
        """``_prune`` for whole runs: q is the nearest run's first point (any boundary
        point will do), and a run goes only if its bounding box, which is no further
        than any of its segments, fails the tests at every corner."""
        if len(pair_block) == 0:
            return pair_block, pair_run
        cx, cy = blocks.cx[pair_block], blocks.cy[pair_block]
        to_point = np.hypot(cx - self.px[pair_run], cy - self.py[pair_run])
        best = np.full(len(blocks.cx), np.inf)
        np.minimum.at(best, pair_block, to_point)
        winner = np.flatnonzero(to_point == best[pair_block])
        qx, qy = np.zeros_like(blocks.cx), np.zeros_like(blocks.cy)
        qx[pair_block[winner]] = self.px[pair_run[winner]]
        qy[pair_block[winner]] = self.py[pair_run[winner]]
        to_box = self._distance(cx, cy, pair_run)
        near = np.flatnonzero(to_box <= (best + 2.0 * blocks.radius + _SLACK_M)[pair_block])
        pair_block, pair_run = pair_block[near], pair_run[near]
        keep = np.zeros(len(pair_block), dtype=bool)
        undecided = np.arange(len(pair_block))
        for k in range(4):
            block = pair_block[undecided]
            px, py = blocks.corner_x[k][block], blocks.corner_y[k][block]
            # Per block, then per pair: the same values, one gather instead of a dozen.
            to_q = (np.hypot(blocks.corner_x[k] - qx, blocks.corner_y[k] - qy) + _SLACK_M)[block]
            passed = self._distance(px, py, pair_run[undecided]) <= to_q
            keep[undecided[passed]] = True
            undecided = undecided[~passed]
        return pair_block[keep], pair_run[keep]

    def _distance(self, px: FloatArray, py: FloatArray, run: IntArray) -> FloatArray:
        """From each point to its run's bounding box (0 inside it)."""
        dx = np.maximum(np.maximum(self.x0[run] - px, px - self.x1[run]), 0.0)
        dy = np.maximum(np.maximum(self.y0[run] - py, py - self.y1[run]), 0.0)
        return np.hypot(dx, dy)

    def expand(self, pair_block: IntArray, pair_run: IntArray) -> tuple[IntArray, IntArray]:
        sizes = self.size[pair_run]
        block = np.repeat(pair_block, sizes)
        starts = np.repeat(self.first[pair_run], sizes)
        rank = np.arange(len(block)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return block, starts + rank


def _split(
    child_needed: npt.NDArray[np.bool_],
    bx: IntArray,
    by: IntArray,
    splitting: npt.NDArray[np.bool_],
    pair_block: IntArray,
    pair_segment: IntArray,
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Children of the splitting blocks that hold needed cells, inheriting the pairs.

    ``pair_block`` must be grouped by block, in the blocks' order (as the single top
    block's pairs are, and every level's pruning keeps them), and the child pairs come
    out so too: a block's pairs are then contiguous, and its resolved list needs no
    sorting (``candidate_blocks``).
    """
    parents = np.flatnonzero(splitting)
    renumber = np.full(len(bx), -1, dtype=np.int64)
    renumber[parents] = np.arange(len(parents))
    cbx = (bx[parents, None] * 2 + np.array([0, 1, 0, 1])).ravel()
    cby = (by[parents, None] * 2 + np.array([0, 0, 1, 1])).ravel()
    on_grid = (cbx < child_needed.shape[1]) & (cby < child_needed.shape[0])
    wanted = np.zeros(len(cbx), dtype=bool)
    wanted[on_grid] = child_needed[cby[on_grid], cbx[on_grid]]
    # Pairs come grouped by block, in the blocks' order (every split below keeps them
    # so): each wanted child gets its parent's pairs, in their order, and the children
    # (numbered one after another) follow each other, so the pairs stay grouped by block.
    children = wanted.reshape(-1, 4).sum(axis=1)
    per_parent = np.bincount(renumber[pair_block], minlength=len(parents))
    # One run of pairs per child: its parent's, starting where the parent's start.
    child_parent = np.repeat(np.arange(len(parents)), children)
    length = per_parent[child_parent]
    source = (np.cumsum(per_parent) - per_parent)[child_parent]
    block = np.repeat(np.arange(len(child_parent)), length)
    at = np.repeat(source - (np.cumsum(length) - length), length)
    at += np.arange(len(at))
    segment = pair_segment[at]
    return cbx[wanted], cby[wanted], block, segment


@dataclass(frozen=True, slots=True)
class _BlockGeometry:
    """Blocks in the local plane: centres and corners pushed outwards by 1%.

    A lon/lat block is a slightly curved quadrilateral in the plane; growing it by 1%
    about its centre covers that bulge (a sagitta of ~1e-3 of the side at 50 km) and
    points that round into a neighbouring cell, so the convex hull of the four corners
    contains every point the block can answer for. Blocks of a country-sized grid bend
    far more (a 4,000 km block's edges stray 500 km from their chords, 15 times the 1%):
    with ``bent``, each block's edge midpoints are projected too and the block grows by
    twice its measured sagitta on top of the 1%. ``bend`` is the largest sagitta over
    distance from the centre.
    """

    cx: FloatArray
    cy: FloatArray
    # corner_x[k], corner_y[k]: corner k of every block (contiguous per corner).
    corner_x: FloatArray
    corner_y: FloatArray
    radius: FloatArray
    bend: float

    @classmethod
    def of(
        cls,
        grid: Grid,
        projection: LocalProjection,
        bx: IntArray,
        by: IntArray,
        side: int,
        *,
        bent: bool = False,
        tiles: TileTable | None = None,
    ) -> _BlockGeometry:
        # Corners are grid lattice points shared by neighbouring blocks: project each
        # once. Lattice coordinates are in half cells so centres fit in too.
        nx2 = 2 * grid.nx + 1
        ix_lo, ix_hi = 2 * bx * side, 2 * np.minimum((bx + 1) * side, grid.nx)
        iy_lo, iy_hi = 2 * by * side, 2 * np.minimum((by + 1) * side, grid.ny)
        # Lattice coordinates of sides are even, so midpoints are lattice points too.
        mx, my = (ix_lo + ix_hi) // 2, (iy_lo + iy_hi) // 2
        lattice = [
            mx + my * nx2,
            ix_lo + iy_lo * nx2,
            ix_hi + iy_lo * nx2,
            ix_lo + iy_hi * nx2,
            ix_hi + iy_hi * nx2,
        ]
        if bent:
            # Midpoints of the edges (corners 1-2, 3-4, 1-3 and 2-4).
            lattice += [mx + iy_lo * nx2, mx + iy_hi * nx2, ix_lo + my * nx2, ix_hi + my * nx2]
        points = np.stack(lattice, axis=1)
        unique, inverse = unique_ints_inverse(points.ravel())
        half_x, half_y = unique % nx2, unique // nx2
        lon = grid.x0 + half_x * (grid.dx / 2.0)
        lat = grid.y0 + half_y * (grid.dy / 2.0)
        if tiles is None:
            px, py = projection.to_local_many(lon, lat)
        else:
            ix = np.minimum(half_x // 2, grid.nx - 1)
            iy = np.minimum(half_y // 2, grid.ny - 1)
            px, py = tiles.to_local_many(
                np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), ix, iy
            )
        at = inverse.reshape(points.shape).T
        cx, cy = px[at[0]], py[at[0]]
        dx, dy = px[at[1:5]] - cx, py[at[1:5]] - cy
        growth: FloatArray | float = _GROWTH
        bend = 0.0
        if bent:
            ends = np.array([[0, 1], [2, 3], [0, 2], [1, 3]])
            sagitta = np.hypot(
                px[at[5:]] - cx - (dx[ends[:, 0]] + dx[ends[:, 1]]) / 2.0,
                py[at[5:]] - cy - (dy[ends[:, 0]] + dy[ends[:, 1]]) / 2.0,
            )
            reach = np.hypot(px[at[5:]] - cx, py[at[5:]] - cy)
            ratio = sagitta / np.maximum(reach - sagitta, 1e-9)
            # Scaled about the centre, a chord moves out by (growth - 1) times its
            # distance from the centre: twice the sagitta on top of the 1%.
            growth = _GROWTH + 2.0 * ratio.max(axis=0)
            bend = float(ratio.max()) if ratio.size else 0.0
        dx = dx * growth + np.sign(dx) * _SLACK_M
        dy = dy * growth + np.sign(dy) * _SLACK_M
        radius = np.sqrt(dx * dx + dy * dy).max(axis=0)
        return cls(cx, cy, cx + dx, cy + dy, radius, bend)


def _prune(
    blocks: _BlockGeometry,
    table: SegmentTable,
    pair_block: IntArray,
    pair_segment: IntArray,
    pool: Executor | None = None,
) -> tuple[IntArray, IntArray]:
    """Drop (block, segment) pairs where the segment is never nearest within the block.

    Take any boundary point q (here: the one nearest the block centre). For a fixed
    segment point s, |p - s|^2 - |p - q|^2 is linear in p, so if it is positive at all
    four corners it is positive on the whole (convex) block, and then q beats every
    point of the segment everywhere in the block. So a segment survives only if some
    corner is at least as close to it as to q. Unlike a distance annulus this stays
    tight far from the coast, where neighbouring segments subtend a tiny angle.

    Pairs go through in chunks (three passes: nearest distance per block, q, then the
    tests), so a level's dozen temporaries never exist for all its millions of pairs at
    once: they set the build's peak memory on a national layer. With ``pool``, each
    pass runs its chunks on the pool's threads (numpy releases the GIL over arrays);
    their results are combined in chunk order, so the pairs kept are the same. Within
    a chunk the arithmetic goes ``_CACHED_PAIRS`` at a time (``_cached_spans``).
    """
    n = len(pair_block)
    if n == 0:
        return pair_block, pair_segment
    spans = [(a, min(a + _PRUNE_CHUNK, n)) for a in range(0, n, _PRUNE_CHUNK)]
    run = map if pool is None or len(spans) == 1 else pool.map
    to_centre = np.empty(n)

    def nearest(span: tuple[int, int]) -> FloatArray:
        best = np.full(len(blocks.cx), np.inf)
        for a, b in _cached_spans(*span):
            block = pair_block[a:b]
            _distances(blocks.cx, blocks.cy, table, block, pair_segment[a:b], to_centre[a:b])
            np.minimum.at(best, block, to_centre[a:b])
        return best

    best = np.minimum.reduce(list(run(nearest, spans)))

    def winners(span: tuple[int, int]) -> tuple[IntArray, FloatArray, FloatArray]:
        a, b = span
        block = pair_block[a:b]
        winner = np.flatnonzero(to_centre[a:b] == best[block])
        segment = pair_segment[a:b][winner]
        _, _, t, ux, uy = _to_centre(blocks, table, block[winner], segment)
        return block[winner], table.ax[segment] + t * ux, table.ay[segment] + t * uy

    qx, qy = np.zeros_like(blocks.cx), np.zeros_like(blocks.cy)
    # In chunk order: where several segments are equally near, the last one is q.
    for block, x, y in run(winners, spans):
        qx[block], qy[block] = x, y
    limits = _corner_limits(blocks, qx, qy)

    # Cheap first cut, implied by the corner test: a segment more than 2 radii further
    # from the centre than q cannot be nearest anywhere in the block.
    reach = best + (2.0 * blocks.radius + _SLACK_M)

    def survivors(span: tuple[int, int]) -> tuple[IntArray, IntArray]:
        start, end = span
        keep = np.zeros(end - start, dtype=bool)
        for a, b in _cached_spans(start, end):
            block = pair_block[a:b]
            near = np.flatnonzero(to_centre[a:b] <= reach[block])
            passed = _corner_test(blocks, table, limits, block[near], pair_segment[a:b][near])
            keep[near[passed] + (a - start)] = True
        return pair_block[start:end][keep], pair_segment[start:end][keep]

    kept = list(run(survivors, spans))
    return np.concatenate([k[0] for k in kept]), np.concatenate([k[1] for k in kept])


def _cached_spans(start: int, end: int) -> list[tuple[int, int]]:
    """``range(start, end)`` in spans of ``_CACHED_PAIRS``: a span's temporaries (512 KB
    each) stay in the cache between numpy calls instead of streaming whole chunks
    through memory (the pruning took 2.2x as long on whole chunks of 524,288 pairs).
    Smaller spans are a little faster on one thread (16,384: 15% less corner-test
    time) but not in a build on two: every numpy call holds the GIL for its Python
    overhead, and with 4x as many calls the national build took 4.0-4.4 s instead of
    3.65-3.85 s (larger spans, up to 262,144, were no faster)."""
    return [(a, min(a + _CACHED_PAIRS, end)) for a in range(start, end, _CACHED_PAIRS)]


def _distances(
    px: FloatArray,
    py: FloatArray,
    table: SegmentTable,
    pair_block: IntArray,
    pair_segment: IntArray,
    out: FloatArray,
) -> None:
    """From each pair's point (``px[block]``, ``py[block]``) to its segment, into ``out``:
    the arithmetic of ``_to_centre`` and ``_norm``, bit for bit."""
    ux, uy = table.ux[pair_segment], table.uy[pair_segment]
    wx, wy = px[pair_block], py[pair_block]
    wx -= table.ax[pair_segment]
    wy -= table.ay[pair_segment]
    t = _projection_parameter(wx, wy, ux, uy, table.inverse_length2[pair_segment])
    ux *= t
    uy *= t
    wx -= ux
    wy -= uy
    wx *= wx
    wy *= wy
    wx += wy
    np.sqrt(wx, out=out)


def _to_centre(
    blocks: _BlockGeometry, table: SegmentTable, pair_block: IntArray, pair_segment: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """From each segment's start to its block's centre, the foot of the perpendicular
    from the centre along the segment, and the segment's direction."""
    ux, uy = table.ux[pair_segment], table.uy[pair_segment]
    wx, wy = blocks.cx[pair_block], blocks.cy[pair_block]
    wx -= table.ax[pair_segment]
    wy -= table.ay[pair_segment]
    t = _projection_parameter(wx, wy, ux, uy, table.inverse_length2[pair_segment])
    return wx, wy, t, ux, uy


def _corner_limits(blocks: _BlockGeometry, qx: FloatArray, qy: FloatArray) -> list[FloatArray]:
    """Per corner k and block: the square of (the corner's distance to q + slack). It is
    the same for every pair of a block, so it is computed once per block, not per pair."""
    limits = []
    for k in range(4):
        to_q = _norm(blocks.corner_x[k] - qx, blocks.corner_y[k] - qy)
        to_q += _SLACK_M
        limits.append(to_q * to_q)
    return limits


def _corner_test(
    blocks: _BlockGeometry,
    table: SegmentTable,
    limits: list[FloatArray],
    pair_block: IntArray,
    pair_segment: IntArray,
) -> npt.NDArray[np.bool_]:
    """Per pair: is its segment at least as close as q at some corner of the block
    (``limits``: ``_corner_limits``)? For up to ``_CACHED_PAIRS`` pairs: every corner
    for every pair, since on arrays in the cache that beats gathering the undecided."""
    ax, ay = table.ax[pair_segment], table.ay[pair_segment]
    ux, uy = table.ux[pair_segment], table.uy[pair_segment]
    inverse = table.inverse_length2[pair_segment]
    keep = np.zeros(len(pair_block), dtype=bool)
    for k in range(4):
        wx, wy = blocks.corner_x[k][pair_block], blocks.corner_y[k][pair_block]
        wx -= ax
        wy -= ay
        t = _projection_parameter(wx, wy, ux, uy, inverse)
        wx -= t * ux
        wy -= t * uy
        wx *= wx
        wy *= wy
        wx += wy
        keep |= wx <= limits[k][pair_block]
    return keep


def _norm(x: FloatArray, y: FloatArray) -> FloatArray:
    """sqrt(x^2 + y^2) in place of x (several times faster than np.hypot)."""
    x *= x
    y *= y
    x += y
    return np.sqrt(x, out=x)


def _projection_parameter(
    wx: FloatArray, wy: FloatArray, ux: FloatArray, uy: FloatArray, inverse: FloatArray
) -> FloatArray:
    """Where the foot of the perpendicular falls along each segment, clamped to it."""
    t = (wx * ux + wy * uy) * inverse
    np.maximum(t, 0.0, out=t)
    return np.minimum(t, 1.0, out=t)


def _any_pyramid(mask: npt.NDArray[np.bool_], top: int) -> list[npt.NDArray[np.bool_]]:
    """``pyramid[level][by, bx]``: does block (bx, by) of side 2**level hold a True?"""
    levels = [mask]
    for _ in range(top):
        finer = levels[-1]
        ny, nx = finer.shape
        padded = np.zeros((ny + ny % 2, nx + nx % 2), dtype=bool)
        padded[:ny, :nx] = finer
        coarse = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2)
        levels.append(np.asarray(coarse.any(axis=(1, 3)), dtype=bool))
    return levels


def _paint(
    block_of_cell: npt.NDArray[np.int32],
    grid: Grid,
    bx: IntArray,
    by: IntArray,
    ids: IntArray,
    side: int,
) -> None:
    """Write each block's id into its cells (blocks painted earlier are never revisited).

    Only the blocks' own cells are written: a level's blocks cover a shrinking share of
    the grid, and painting the whole grid from a per-level map took a full grid's worth
    of temporaries at every level (0.28 s of the mainland's quadtree)."""
    cells = block_of_cell.reshape(grid.ny, grid.nx)
    if side >= _SLICED_SIDE:
        # Few blocks (a level has a grid's worth of cells over side**2 at most): a slice
        # each.
        for x, y, number in zip(bx.tolist(), by.tolist(), ids.tolist(), strict=True):
            cells[y * side : (y + 1) * side, x * side : (x + 1) * side] = number
        return
    # Every cell of every block, by its row and column, in batches of about a million
    # cells. Blocks past the grid's last row or column repeat its cells (the same id).
    offsets = np.arange(side)
    batch = max(1, (1 << 20) // (side * side))
    for start in range(0, len(bx), batch):
        end = start + batch
        rows = np.minimum(by[start:end, None] * side + offsets, grid.ny - 1)
        columns = np.minimum(bx[start:end, None] * side + offsets, grid.nx - 1)
        cells[rows[:, :, None], columns[:, None, :]] = ids[start:end, None, None]
