"""Outer segments: the rows repeated in a boundary layer, found by hash, match a sort."""

from __future__ import annotations

import numpy as np
import shapely

from geo.grid import polygon_array, ring_segments
from geo.nearest import _repeated_rows, outer_segments


def _by_sorting(rows: np.ndarray) -> np.ndarray:
    order = np.lexsort(rows.T[::-1])
    same = np.all(rows[order][1:] == rows[order][:-1], axis=1)
    repeated = np.zeros(len(rows), dtype=bool)
    repeated[order[1:][same]] = True
    repeated[order[:-1][same]] = True
    return repeated


def test_repeated_rows_match_a_sort_with_pairs_triples_and_signed_zeros() -> None:
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 50, size=(20_000, 4)).astype(np.float64) / 7.0
    # Rows seen twice, three times and four times, and a zero of either sign.
    rows[100:110] = rows[200:210]
    rows[300:305] = rows[400:405]
    rows[500:505] = rows[400:405]
    rows[600] = rows[700] = rows[800] = rows[900]
    rows[1000] = [0.0, 1.0, 2.0, 3.0]
    rows[1001] = [-0.0, 1.0, 2.0, 3.0]
    expected = _by_sorting(rows)
    assert expected[[100, 300, 400, 500, 600, 900, 1000, 1001]].all()
    assert np.array_equal(_repeated_rows(rows), expected)


def test_shared_borders_leave_only_the_union_boundary() -> None:
    # Two squares sharing an edge (either way round), the right one with an extra
    # vertex that the left does not have on a different edge.
    left = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    right = shapely.Polygon([(1, 0), (2, 0), (2, 1), (1.5, 1), (1, 1)])
    geometries = polygon_array([left, right])
    segments, owners = outer_segments(geometries)
    assert len(segments) == 4 + 5 - 2  # ring segments, less the shared pair
    assert not any(
        {tuple(s[:2]), tuple(s[2:])} == {(1.0, 0.0), (1.0, 1.0)} for s in segments.tolist()
    )
    again = outer_segments(geometries, ring_segments(geometries))
    assert np.array_equal(again[0], segments) and np.array_equal(again[1], owners)
