"""Nearest precinct and distance, answered from short precomputed segment lists.

The distance from an outside point to the nearest precinct is its distance to the
outer boundary of all precincts, measured in the dataset's local metric plane
(``geo.projection``). Scanning ~100k segments per query is hopeless and a shapely call
costs ~10 us, so at build time a quadtree over the grid gives every non-interior cell
the few segments that can be nearest to *some* point of it (see ``_prune`` for the
test). Blocks split until their list is short: far from the boundary that happens at
coarse levels, so only cells along the coast reach the finest level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from geo.grid import Grid, ring_segments
from geo.projection import LocalProjection

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# ax, ay, ux, uy, 1/|u|^2 (0 for a degenerate segment), polygon index
SegmentRow = tuple[float, float, float, float, float, int]

# Segments per list before a block splits; each costs ~0.2 us per query in Python,
# and a lower limit makes more blocks split (build time).
_MAX_CANDIDATES = 12
# Metres of slack in every comparison: float noise and points rounded across a cell edge.
_SLACK_M = 0.01
# Blocks are grown by 1% about their centre; see _BlockGeometry.
_GROWTH = 1.01


@dataclass(frozen=True, slots=True)
class SegmentTable:
    """The outer boundary of all precincts, as segments in the local plane.

    Only the boundary of the union matters for an outside point (internal borders are
    never closer), and dropping the shared borders shrinks the table by 2-15x.
    """

    start: FloatArray
    direction: FloatArray
    inverse_length2: FloatArray
    owners: IntArray
    rows: tuple[SegmentRow, ...]
    tree: shapely.STRtree

    @classmethod
    def build(
        cls, geometries: npt.NDArray[np.object_], projection: LocalProjection
    ) -> SegmentTable:
        union = shapely.union_all(geometries)
        segments, _ = ring_segments(np.array([union], dtype=object))
        # Each boundary segment belongs to the precinct it lies on: the owner of the
        # precinct ring segment nearest its midpoint (at distance ~0), the lowest index
        # where two meet. Segments, not polygons, keep each distance O(1).
        ring, ring_owner = ring_segments(geometries)
        ring_lines = shapely.linestrings(ring.reshape(-1, 2, 2))
        midpoints = shapely.points((segments[:, :2] + segments[:, 2:]) / 2.0)
        hits = shapely.STRtree(ring_lines).query_nearest(midpoints, all_matches=True)
        owners = np.full(len(segments), len(geometries), dtype=np.int64)
        np.minimum.at(owners, hits[0], ring_owner[hits[1]])
        ax, ay = projection.to_local_many(segments[:, 0], segments[:, 1])
        bx, by = projection.to_local_many(segments[:, 2], segments[:, 3])
        start = np.column_stack((ax, ay))
        direction = np.column_stack((bx - ax, by - ay))
        length2 = np.einsum("ij,ij->i", direction, direction)
        inverse = np.divide(1.0, length2, out=np.zeros_like(length2), where=length2 > 0)
        rows = tuple(
            zip(
                ax.tolist(),
                ay.tolist(),
                direction[:, 0].tolist(),
                direction[:, 1].tolist(),
                inverse.tolist(),
                owners.tolist(),
                strict=True,
            )
        )
        lines = shapely.linestrings(np.stack((start, start + direction), axis=1))
        return cls(start, direction, inverse, owners, rows, shapely.STRtree(lines))

    def nearest_anywhere(self, x: float, y: float) -> tuple[int, float]:
        """Exact nearest precinct for any point; the slow path for points off the grid."""
        hits, distances = self.tree.query_nearest(
            shapely.points(x, y), return_distance=True, all_matches=True
        )
        return int(self.owners[hits[1]].min()), float(distances.min())


def nearest_on(x: float, y: float, rows: tuple[SegmentRow, ...]) -> tuple[int, float]:
    """Closest polygon among ``rows``; ties go to the lower polygon index."""
    best = math.inf
    best_polygon = -1
    for ax, ay, ux, uy, inverse, polygon in rows:
        wx, wy = x - ax, y - ay
        t = (wx * ux + wy * uy) * inverse
        if t < 0.0:
            t = 0.0
        elif t > 1.0:
            t = 1.0
        ex, ey = wx - t * ux, wy - t * uy
        d2 = ex * ex + ey * ey
        if d2 < best or (d2 == best and polygon < best_polygon):
            best, best_polygon = d2, polygon
    return best_polygon, math.sqrt(best)


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
) -> CandidateBlocks:
    """Segment lists for every cell where ``needed`` (cells that are not interior).

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
    pair_block = np.zeros(len(table.rows) * len(bx), dtype=np.int64)
    pair_segment = np.arange(len(pair_block), dtype=np.int64)
    for level in range(top, -1, -1):
        side = 1 << level
        pair_block, pair_segment = _prune(
            _BlockGeometry.of(grid, projection, bx, by, side), table, pair_block, pair_segment
        )
        counts = np.bincount(pair_block, minlength=len(bx))
        resolved = (counts <= _MAX_CANDIDATES) | (level == 0)
        ids = np.full(len(bx), -1, dtype=np.int64)
        ids[resolved] = n_blocks + np.arange(int(resolved.sum()))
        n_blocks += int(resolved.sum())
        keep = resolved[pair_block]
        order = np.argsort(ids[pair_block[keep]], kind="stable")
        segment_chunks.append(pair_segment[keep][order])
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


def _split(
    child_needed: npt.NDArray[np.bool_],
    bx: IntArray,
    by: IntArray,
    splitting: npt.NDArray[np.bool_],
    pair_block: IntArray,
    pair_segment: IntArray,
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Children of the splitting blocks that hold needed cells, inheriting the pairs."""
    parents = np.flatnonzero(splitting)
    renumber = np.full(len(bx), -1, dtype=np.int64)
    renumber[parents] = np.arange(len(parents))
    cbx = (bx[parents, None] * 2 + np.array([0, 1, 0, 1])).ravel()
    cby = (by[parents, None] * 2 + np.array([0, 0, 1, 1])).ravel()
    on_grid = (cbx < child_needed.shape[1]) & (cby < child_needed.shape[0])
    wanted = np.zeros(len(cbx), dtype=bool)
    wanted[on_grid] = child_needed[cby[on_grid], cbx[on_grid]]
    child_id = np.where(wanted, np.cumsum(wanted) - 1, -1)
    # Each parent pair becomes up to four child pairs (one per wanted child).
    parent_of_pair = renumber[pair_block]
    child_slots = child_id.reshape(-1, 4)[parent_of_pair]
    segment = np.repeat(pair_segment, 4)
    block = child_slots.ravel()
    present = block >= 0
    return cbx[wanted], cby[wanted], block[present], segment[present]


@dataclass(frozen=True, slots=True)
class _BlockGeometry:
    """Blocks in the local plane: centres and corners pushed outwards by 1%.

    A lon/lat block is a slightly curved quadrilateral in the plane; growing it by 1%
    about its centre covers that bulge (a sagitta of ~1e-3 of the side at 50 km) and
    points that round into a neighbouring cell, so the convex hull of the four corners
    contains every point the block can answer for.
    """

    centre: FloatArray
    corners: FloatArray
    radius: FloatArray

    @classmethod
    def of(
        cls, grid: Grid, projection: LocalProjection, bx: IntArray, by: IntArray, side: int
    ) -> _BlockGeometry:
        # Corners are grid lattice points shared by neighbouring blocks: project each
        # once. Lattice coordinates are in half cells so centres fit in too.
        nx2 = 2 * grid.nx + 1
        ix_lo, ix_hi = 2 * bx * side, 2 * np.minimum((bx + 1) * side, grid.nx)
        iy_lo, iy_hi = 2 * by * side, 2 * np.minimum((by + 1) * side, grid.ny)
        points = np.stack(
            (
                (ix_lo + ix_hi) // 2 + ((iy_lo + iy_hi) // 2) * nx2,
                ix_lo + iy_lo * nx2,
                ix_hi + iy_lo * nx2,
                ix_lo + iy_hi * nx2,
                ix_hi + iy_hi * nx2,
            ),
            axis=1,
        )
        unique, inverse = np.unique(points, return_inverse=True)
        lon = grid.x0 + (unique % nx2) * (grid.dx / 2.0)
        lat = grid.y0 + (unique // nx2) * (grid.dy / 2.0)
        px, py = projection.to_local_many(lon, lat)
        xy = np.column_stack((px, py))[inverse.reshape(points.shape)]
        centre = xy[:, 0]
        offset = xy[:, 1:] - centre[:, None, :]
        corners = centre[:, None, :] + offset * _GROWTH + np.sign(offset) * _SLACK_M
        radius = np.hypot(*(corners - centre[:, None, :]).transpose(2, 0, 1)).max(axis=1)
        return cls(centre, corners, radius)


def _prune(
    blocks: _BlockGeometry, table: SegmentTable, pair_block: IntArray, pair_segment: IntArray
) -> tuple[IntArray, IntArray]:
    """Drop (block, segment) pairs where the segment is never nearest within the block.

    Take any boundary point q (here: the one nearest the block centre). For a fixed
    segment point s, |p - s|^2 - |p - q|^2 is linear in p, so if it is positive at all
    four corners it is positive on the whole (convex) block, and then q beats every
    point of the segment everywhere in the block. So a segment survives only if some
    corner is at least as close to it as to q. Unlike a distance annulus this stays
    tight far from the coast, where neighbouring segments subtend a tiny angle.
    """
    if len(pair_block) == 0:
        return pair_block, pair_segment
    ax, ay = table.start[pair_segment, 0], table.start[pair_segment, 1]
    ux, uy = table.direction[pair_segment, 0], table.direction[pair_segment, 1]
    inverse = table.inverse_length2[pair_segment]
    cx, cy = blocks.centre[pair_block, 0], blocks.centre[pair_block, 1]
    t = _projection_parameter(cx - ax, cy - ay, ux, uy, inverse)
    fx, fy = ax + t * ux, ay + t * uy
    to_centre = np.hypot(cx - fx, cy - fy)
    best = np.full(len(blocks.centre), np.inf)
    np.minimum.at(best, pair_block, to_centre)
    winner = np.flatnonzero(to_centre == best[pair_block])
    q = np.empty_like(blocks.centre)
    q[pair_block[winner], 0] = fx[winner]
    q[pair_block[winner], 1] = fy[winner]
    # Cheap first cut, implied by the corner test: a segment more than 2 radii further
    # from the centre than q cannot be nearest anywhere in the block.
    near = to_centre <= best[pair_block] + 2.0 * blocks.radius[pair_block] + _SLACK_M
    pair_block, pair_segment = pair_block[near], pair_segment[near]
    ax, ay, ux, uy, inverse = ax[near], ay[near], ux[near], uy[near], inverse[near]
    qx, qy = q[pair_block, 0], q[pair_block, 1]
    keep = np.zeros(len(pair_block), dtype=bool)
    # Most survivors pass at the first or second corner: test only the undecided.
    undecided = np.arange(len(pair_block))
    for k in range(4):
        block = pair_block[undecided]
        px, py = blocks.corners[block, k, 0], blocks.corners[block, k, 1]
        wx, wy = px - ax[undecided], py - ay[undecided]
        sx, sy = ux[undecided], uy[undecided]
        t = _projection_parameter(wx, wy, sx, sy, inverse[undecided])
        to_segment2 = (wx - t * sx) ** 2 + (wy - t * sy) ** 2
        to_q = np.hypot(px - qx[undecided], py - qy[undecided]) + _SLACK_M
        passed = to_segment2 <= to_q * to_q
        keep[undecided[passed]] = True
        undecided = undecided[~passed]
    return pair_block[keep], pair_segment[keep]


def _projection_parameter(
    wx: FloatArray, wy: FloatArray, ux: FloatArray, uy: FloatArray, inverse: FloatArray
) -> FloatArray:
    """Where the foot of the perpendicular falls along each segment, clamped to it."""
    return np.clip((wx * ux + wy * uy) * inverse, 0.0, 1.0)


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
    """Write each block's id into its cells (blocks painted earlier are never revisited)."""
    if len(bx) == 0:
        return
    nbx, nby = -(-grid.nx // side), -(-grid.ny // side)
    coarse = np.full((nby, nbx), -1, dtype=np.int32)
    coarse[by, bx] = ids
    rows = np.arange(grid.ny) // side
    columns = np.arange(grid.nx) // side
    flat = coarse[rows][:, columns].ravel()
    painted = flat >= 0
    block_of_cell[painted] = flat[painted]
