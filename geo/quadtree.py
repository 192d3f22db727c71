"""Which boundary segments can be nearest to some point of each grid cell.

A quadtree over the grid starts from one block holding every segment of the outer
boundary and splits blocks in four; each child keeps the subset of its parent's segments
that pass its own test (``geo.pruning.prune``). A block stops splitting once its list is short:
far from the boundary that happens at coarse levels, so only cells along the coast reach
the finest level. Everything is vectorised over (block, segment) pairs.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.grid import Grid
from geo.nearest import SegmentTable
from geo.plane_tiles import PlaneTiles, TileTable
from geo.projection import LocalProjection
from geo.pruning import SLACK_M, BlockGeometry, prune

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
# Blocks of this side or more are painted a slice each (_paint).
_SLICED_SIDE = 64
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
    ``pool``: threads for the pruning (``geo.pruning.prune``); the lists come out the same.

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
    # BlockGeometry); the bend shrinks fourfold per level, so once it is negligible
    # the finer levels skip measuring it.
    bent = True
    tiles = None if plane is None else TileTable.of(plane)
    for level in range(top, -1, -1):
        side = 1 << level
        geometry = BlockGeometry.of(grid, projection, bx, by, side, bent=bent, tiles=tiles)
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
        pair_block, pair_segment = prune(geometry, table, pair_block, pair_segment, pool)
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
        self, blocks: BlockGeometry, pair_block: IntArray, pair_run: IntArray
    ) -> tuple[IntArray, IntArray]:
        """``geo.pruning.prune`` for whole runs: q is the nearest run's first point (any boundary
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
        near = np.flatnonzero(to_box <= (best + 2.0 * blocks.radius + SLACK_M)[pair_block])
        pair_block, pair_run = pair_block[near], pair_run[near]
        keep = np.zeros(len(pair_block), dtype=bool)
        undecided = np.arange(len(pair_block))
        for k in range(4):
            block = pair_block[undecided]
            px, py = blocks.corner_x[k][block], blocks.corner_y[k][block]
            # Per block, then per pair: the same values, one gather instead of a dozen.
            to_q = (np.hypot(blocks.corner_x[k] - qx, blocks.corner_y[k] - qy) + SLACK_M)[block]
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
