"""Nearest precinct and distance, answered from short precomputed segment lists.

The distance from an outside point to the nearest precinct is its distance to the
outer boundary of all precincts, measured in the dataset's local metric plane
(``geo.projection``). Scanning ~100k segments per query is hopeless and a shapely call
costs ~10 us, so ``geo.quadtree`` gives every grid cell that needs one a short list of
candidate segments, and ``nearest_on`` scans that list in plain Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from geo.grid import ring_segments
from geo.projection import LocalProjection

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# ax, ay, ux, uy, 1/|u|^2 (0 for a degenerate segment), polygon index
SegmentRow = tuple[float, float, float, float, float, int]
# Python objects made per call that holds the GIL (a few milliseconds' worth).
_OBJECTS_PER_CALL = 8192


@dataclass(frozen=True, slots=True)
class SegmentTable:
    """The outer boundary of all precincts, as segments in the local plane.

    Only the boundary of the union matters for an outside point (internal borders are
    never closer), and dropping the shared borders shrinks the table by 2-15x.
    """

    # Structure of arrays (contiguous 1-D columns gather fastest in geo.pruning).
    ax: FloatArray
    ay: FloatArray
    ux: FloatArray
    uy: FloatArray
    inverse_length2: FloatArray
    owners: IntArray
    rows: tuple[SegmentRow, ...]
    tree: shapely.STRtree

    @classmethod
    def build(
        cls,
        geometries: npt.NDArray[np.object_],
        projection: LocalProjection,
        outer: tuple[FloatArray, IntArray] | None = None,
    ) -> SegmentTable:
        """``outer``: ``outer_segments(geometries)``, when the caller has it already."""
        segments, owners = outer_segments(geometries) if outer is None else outer
        ax, ay = projection.to_local_many(segments[:, 0], segments[:, 1])
        # Along a ring a segment ends where the next one starts: that point is projected
        # once (pyproj computes each point alone, so its plane coordinates are the
        # same), halving the table's pyproj calls.
        bits = np.ascontiguousarray(segments).view(np.uint64)
        shared = np.zeros(len(segments), dtype=bool)
        shared[:-1] = (bits[:-1, 2] == bits[1:, 0]) & (bits[:-1, 3] == bits[1:, 1])
        bx, by = np.empty_like(ax), np.empty_like(ay)
        at = np.flatnonzero(shared)
        bx[at], by[at] = ax[at + 1], ay[at + 1]
        at = np.flatnonzero(~shared)
        bx[at], by[at] = projection.to_local_many(segments[at, 2], segments[at, 3])
        ux, uy = bx - ax, by - ay
        length2 = ux * ux + uy * uy
        inverse = np.divide(1.0, length2, out=np.zeros_like(length2), where=length2 > 0)
        return cls.of(ax, ay, ux, uy, inverse, owners)

    @classmethod
    def of(
        cls,
        ax: FloatArray,
        ay: FloatArray,
        ux: FloatArray,
        uy: FloatArray,
        inverse: FloatArray,
        owners: IntArray,
    ) -> SegmentTable:
        # Rows and line strings in slices: each call that makes Python objects holds the
        # GIL throughout, and a node makes a national layer's table (~200,000 segments)
        # in an executor thread while its event loop answers alarms; whole, these calls
        # held the loop for 20-30 ms.
        rows: list[SegmentRow] = []
        lines = []
        for a in range(0, len(ax), _OBJECTS_PER_CALL):
            b = a + _OBJECTS_PER_CALL
            rows.extend(
                zip(
                    ax[a:b].tolist(),
                    ay[a:b].tolist(),
                    ux[a:b].tolist(),
                    uy[a:b].tolist(),
                    inverse[a:b].tolist(),
                    owners[a:b].tolist(),
                    strict=True,
                )
            )
            starts = np.column_stack((ax[a:b], ay[a:b]))
            ends = np.column_stack((ax[a:b] + ux[a:b], ay[a:b] + uy[a:b]))
            lines.append(shapely.linestrings(np.stack((starts, ends), axis=1)))
        segments = np.concatenate(lines) if lines else np.empty(0, dtype=object)
        tree = shapely.STRtree(segments)
        return cls(ax, ay, ux, uy, inverse, owners, tuple(rows), tree)

    def to_arrays(self) -> dict[str, npt.NDArray[np.float64] | IntArray]:
        return {
            "segment_ax": self.ax,
            "segment_ay": self.ay,
            "segment_ux": self.ux,
            "segment_uy": self.uy,
            "segment_inverse": self.inverse_length2,
            "segment_owners": self.owners,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[Any]]) -> SegmentTable:
        return cls.of(
            arrays["segment_ax"], arrays["segment_ay"], arrays["segment_ux"],
            arrays["segment_uy"], arrays["segment_inverse"], arrays["segment_owners"],
        )  # fmt: skip

    def nearest_anywhere(self, x: float, y: float) -> tuple[int, float]:
        """Exact nearest precinct for any point; the slow path for points off the grid."""
        hits, distances = self.tree.query_nearest(
            shapely.Point(x, y), return_distance=True, all_matches=True
        )
        # hits holds every segment at the minimum distance: ties go to the lower index.
        return int(self.owners[hits].min()), float(distances.min())

    def nearest_within(self, x: float, y: float, limit: float) -> tuple[int, float] | None:
        """``nearest_anywhere`` when some segment is at most ``limit`` away, else None."""
        # Grown a little, so a segment at exactly ``limit`` (a tie) is found.
        reach = max(limit * (1.0 + 1e-9), 1e-9) + 1e-6
        hits, distances = self.tree.query_nearest(
            shapely.Point(x, y), max_distance=reach, return_distance=True, all_matches=True
        )
        if len(hits) == 0:
            return None
        return int(self.owners[hits].min()), float(distances.min())


def outer_segments(
    geometries: npt.NDArray[np.object_], rings: tuple[FloatArray, IntArray] | None = None
) -> tuple[FloatArray, IntArray]:
    """Ring segments that no other ring shares, and the precinct of each.

    A border shared by two neighbours appears in both rings (either way round) and can
    never be the nearest boundary to an outside point: dropping it leaves the boundary of
    the union, without computing the union (seconds for a national layer). Borders
    digitised twice with different vertices stay in; they lie inside the union, so they
    are never strictly nearer than its boundary, and at worst lengthen the table.
    ``rings``: ``ring_segments(geometries)``, when the caller has it already.
    """
    segments, owners = ring_segments(geometries) if rings is None else rings
    if len(segments) == 0:
        return segments, owners
    forward = (segments[:, 0] < segments[:, 2]) | (
        (segments[:, 0] == segments[:, 2]) & (segments[:, 1] <= segments[:, 3])
    )
    key = np.where(forward[:, None], segments, segments[:, [2, 3, 0, 1]])
    unique = ~_repeated_rows(key)
    return segments[unique], owners[unique]


def _repeated_rows(rows: FloatArray) -> npt.NDArray[np.bool_]:
    """Which rows equal some other row, exactly.

    Sorting a million rows on four float keys (``np.lexsort``) took a third of a second
    on the national layer's largest region; sorting one 64-bit hash of each row takes a
    fraction of that. Equal rows have equal hashes, so they meet as neighbours in the
    hash's order unless three or more rows share a hash (a row repeated three times, or
    a collision): those few rows are sorted on their keys instead.
    """
    # -0.0 and 0.0 are equal but differ in their bits: make them one.
    rows = rows + 0.0
    bits = np.ascontiguousarray(rows).view(np.uint64)
    digest = np.zeros(len(rows), dtype=np.uint64)
    for column, multiplier in enumerate(_HASH_MULTIPLIERS):
        digest ^= bits[:, column] * np.uint64(multiplier)
        digest = (digest << np.uint64(29)) | (digest >> np.uint64(35))
    order = np.argsort(digest)
    ordered = digest[order]
    same_hash = ordered[1:] == ordered[:-1]
    repeated = np.zeros(len(rows), dtype=bool)
    pair = np.flatnonzero(same_hash)
    equal = np.all(rows[order[pair]] == rows[order[pair + 1]], axis=1)
    repeated[order[pair[equal]]] = True
    repeated[order[pair[equal] + 1]] = True
    # Runs of three or more equal hashes: decide those rows on their keys.
    triple = np.flatnonzero(same_hash[1:] & same_hash[:-1])
    if len(triple):
        crowded = np.zeros(len(rows), dtype=bool)
        for shift in (0, 1, 2):
            crowded[order[triple + shift]] = True
        where = np.flatnonzero(crowded)
        crowd = rows[where]
        by_key = np.lexsort(crowd.T[::-1])
        ordered_crowd = crowd[by_key]
        same = np.all(ordered_crowd[1:] == ordered_crowd[:-1], axis=1)
        hit = np.zeros(len(where), dtype=bool)
        hit[1:] |= same
        hit[:-1] |= same
        repeated[where[by_key]] |= hit
    return repeated


# Odd 64-bit constants (splitmix64's and xxhash's) that mix the four coordinates' bits.
_HASH_MULTIPLIERS = (
    0x9E3779B97F4A7C15,
    0xBF58476D1CE4E5B9,
    0x94D049BB133111EB,
    0xC2B2AE3D27D4EB4F,
)


def nearest_on(
    x: float, y: float, rows: tuple[SegmentRow, ...], which: memoryview, start: int, end: int
) -> tuple[int, float]:
    """Closest polygon among ``rows[which[k]]`` for k in [start, end); ties go to the
    lower polygon index."""
    best = math.inf
    best_polygon = -1
    for k in range(start, end):
        ax, ay, ux, uy, inverse, polygon = rows[which[k]]
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
