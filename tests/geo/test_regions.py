"""Routing points to regions: the same answers as asking every region, found faster."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
import shapely
from shapely.geometry import box

from geo.far_field import OWNER_NEARER, RIVAL_NEARER, UNSETTLED
from geo.index import Location, PrecinctIndex
from geo.precincts import Precinct


def _islands() -> PrecinctIndex:
    """A mainland of two precincts and islands near and far, as a national layer is."""
    return PrecinctIndex.build(
        [
            Precinct("01", "west", box(-100.0, 30.0, -95.0, 40.0)),
            Precinct("02", "east", box(-95.0, 30.0, -88.0, 38.0)),
            Precinct("03", "reef", box(-84.0, 24.0, -83.5, 24.4)),
            Precinct("04", "isle", box(-66.0, 18.0, -65.0, 18.5)),
            Precinct("05", "far", shapely.MultiPolygon([box(150.0, 10.0, 151.0, 11.0),
                                                        box(-157.0, 20.0, -156.0, 21.0)])),
        ]
    )  # fmt: skip


def _asking_every_region(index: PrecinctIndex, lon: float, lat: float) -> Location:
    """What the index answered before it routed points: each region whose frame holds
    the point in order, then the nearest of all regions, ties to the first."""
    framed = None
    for region in index._regions:
        x0, y0, inv_dx, inv_dy, nx, ny = region._frame
        if 0.0 <= (lon - x0) * inv_dx < nx and 0.0 <= (lat - y0) * inv_dy < ny:
            answer = region.locate(lon, lat)
            if answer.precinct is not None:
                return answer
            framed = region
    return min(
        (r.locate(lon, lat) if r is framed else r._off_grid(lon, lat) for r in index._regions),
        key=lambda answer: answer.distance_m,
    )


def test_routed_answers_equal_asking_every_region() -> None:
    index = _islands()
    assert len(index._regions) >= 4
    rng = np.random.default_rng(3)
    # Worldwide, and dense around the mainland and the islands between its neighbours.
    lons = np.concatenate((rng.uniform(-180, 180, 1500), rng.uniform(-110, -60, 2500)))
    lats = np.concatenate((rng.uniform(-90, 90, 1500), rng.uniform(10, 45, 2500)))
    for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True):
        assert index.locate(lon, lat) == _asking_every_region(index, lon, lat), (lon, lat)
    found = index.locate_many(lons, lats)
    assert [index.codes[i] if i >= 0 else None for i in found.tolist()] == [
        index.locate(lon, lat).precinct
        for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True)
    ]
    loaded = PrecinctIndex.from_bytes(index.to_bytes())
    assert loaded.locate_many(lons, lats).tolist() == found.tolist()


def test_region_lower_bounds_never_exceed_the_distance() -> None:
    index = _islands()
    router = index._router
    assert router is not None
    rng = np.random.default_rng(5)
    lons, lats = rng.uniform(-180, 180, 400), rng.uniform(-90, 90, 400)
    for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True):
        bounds = router.lower_bounds(lon, lat).tolist()
        cell = router.cell(lon, lat)
        owner = router.owner[cell]
        for number, region in enumerate(index._regions):
            exact = region._off_grid(lon, lat).distance_m
            assert bounds[number] <= exact
            tables = region._tables
            assert tables is not None
            assert router.plane_bound(number, *tables.projection.to_local(lon, lat)) <= exact
            if owner >= 0 and number != owner:
                assert router.others_m[cell] <= exact
                if number != router.rival[cell]:
                    assert router.beyond_rival_m[cell] <= exact


def test_far_fields_answer_as_the_exact_search_does() -> None:
    """An L-shaped mainland whose frame holds a wide empty corner, and an island just
    outside that frame: corner points nearer the island ask it as their cell's rival,
    and its far field answers instead of an exact search of its boundary."""
    mainland = shapely.union(box(-100.0, 30.0, -80.0, 40.0), box(-100.0, 20.0, -95.0, 30.0))
    island = shapely.Polygon([(-78.5, 19.0), (-77.9, 19.1), (-78.0, 19.6), (-78.6, 19.4)])
    precincts = [Precinct("01", "mainland", mainland), Precinct("02", "island", island)]
    index = PrecinctIndex.build(precincts)
    assert len(index._regions) == 2
    # Built on threads (regions, pruning and far fields), the same index.
    assert PrecinctIndex.build(precincts, workers=2).to_bytes() == index.to_bytes()
    far = index._far[1]
    assert far is not None
    island_tables = index._regions[1]._tables
    assert island_tables is not None
    rng = np.random.default_rng(11)
    lons, lats = rng.uniform(-95.0, -79.0, 3000), rng.uniform(19.0, 30.0, 3000)
    used = 0
    settled = Counter[int]()
    for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True):
        fx, fy = far.cell(lon, lat)
        if fx >= 0:
            used += far.nearest(lon, lat, fx, fy, island_tables.segments.rows) is not None
            settled[far.settled[fy * far.grid.nx + fx]] += 1
        got, exact = index.locate(lon, lat), _asking_every_region(index, lon, lat)
        assert (got.precinct, got.nearest) == (exact.precinct, exact.nearest), (lon, lat)
        assert got.distance_m == pytest.approx(exact.distance_m, rel=1e-9, abs=1e-3)
    assert used > 500
    # Most far cells are nearer one side everywhere: their points measure one region.
    assert far.owner == 0
    assert settled[RIVAL_NEARER] > 100 and settled[OWNER_NEARER] > 100
    assert settled[UNSETTLED] < settled[RIVAL_NEARER] + settled[OWNER_NEARER]
    loaded = PrecinctIndex.from_bytes(index.to_bytes())
    assert loaded._far[1] is not None
    # An index packed before far fields existed answers the same, by exact searches.
    without = PrecinctIndex.from_bytes(dataclasses.replace(index, _far=()).to_bytes())
    assert without._far == (None, None)
    for lon, lat in zip(lons[:300].tolist(), lats[:300].tolist(), strict=True):
        assert loaded.locate(lon, lat) == index.locate(lon, lat)
        other = without.locate(lon, lat)
        assert other.nearest == index.locate(lon, lat).nearest
        assert other.distance_m == pytest.approx(index.locate(lon, lat).distance_m, abs=1e-3)
