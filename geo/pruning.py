"""Which of its parent's boundary segments a quadtree block keeps (``geo.quadtree``).

A block is a quadrilateral of the local plane grown a little (``BlockGeometry``); a
segment survives for it only if, at some corner of the block, it is at least as close
as the boundary point nearest the block's centre (``prune``). Everything is vectorised
over (block, segment) pairs, in chunks on a pool's threads and in spans that stay in
the cache.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.grid import Grid, unique_ints_inverse
from geo.nearest import SegmentTable
from geo.plane_tiles import TileTable
from geo.projection import LocalProjection

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# (block, segment) pairs pruned at a time (a thread's share of a pass), and how many
# of them go through one round of arithmetic (``_cached_spans``).
_PRUNE_CHUNK = 1 << 19
_CACHED_PAIRS = 1 << 16
# Metres of slack in every comparison: float noise and points rounded across a cell edge.
SLACK_M = 0.01
# Blocks are grown by 1% about their centre; see BlockGeometry.
_GROWTH = 1.01


@dataclass(frozen=True, slots=True)
class BlockGeometry:
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
    ) -> BlockGeometry:
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
        dx = dx * growth + np.sign(dx) * SLACK_M
        dy = dy * growth + np.sign(dy) * SLACK_M
        radius = np.sqrt(dx * dx + dy * dy).max(axis=0)
        return cls(cx, cy, cx + dx, cy + dy, radius, bend)


def prune(
    blocks: BlockGeometry,
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
    reach = best + (2.0 * blocks.radius + SLACK_M)

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
    blocks: BlockGeometry, table: SegmentTable, pair_block: IntArray, pair_segment: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """From each segment's start to its block's centre, the foot of the perpendicular
    from the centre along the segment, and the segment's direction."""
    ux, uy = table.ux[pair_segment], table.uy[pair_segment]
    wx, wy = blocks.cx[pair_block], blocks.cy[pair_block]
    wx -= table.ax[pair_segment]
    wy -= table.ay[pair_segment]
    t = _projection_parameter(wx, wy, ux, uy, table.inverse_length2[pair_segment])
    return wx, wy, t, ux, uy


def _corner_limits(blocks: BlockGeometry, qx: FloatArray, qy: FloatArray) -> list[FloatArray]:
    """Per corner k and block: the square of (the corner's distance to q + slack). It is
    the same for every pair of a block, so it is computed once per block, not per pair."""
    limits = []
    for k in range(4):
        to_q = _norm(blocks.corner_x[k] - qx, blocks.corner_y[k] - qy)
        to_q += SLACK_M
        limits.append(to_q * to_q)
    return limits


def _corner_test(
    blocks: BlockGeometry,
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
