from __future__ import annotations

import numpy as np

from geo.grid import Grid
from geo.index import PrecinctIndex
from geo.plane_tiles import PlaneTiles
from geo.projection import LocalProjection


def _random_cells(grid: Grid, count: int) -> list[tuple[float, float, int, int]]:
    rng = np.random.default_rng(7)
    ix = rng.integers(0, grid.nx, count)
    iy = rng.integers(0, grid.ny, count)
    lon = grid.x0 + (ix + rng.random(count)) * grid.dx
    lat = grid.y0 + (iy + rng.random(count)) * grid.dy
    return list(zip(lon.tolist(), lat.tolist(), ix.tolist(), iy.tolist(), strict=True))


def test_tiles_reproduce_pyproj_to_a_millimetre_across_the_city(nyc_index: PrecinctIndex) -> None:
    tables = nyc_index._tables
    assert tables is not None
    assert all(tile is not None for tile in tables.plane.tiles)
    for lon, lat, ix, iy in _random_cells(tables.grid, 5000):
        fitted = np.array(tables.plane.to_local(lon, lat, ix, iy))
        exact = np.array(tables.projection.to_local(lon, lat))
        assert float(np.hypot(*(fitted - exact))) < 1e-3


def test_tiles_too_large_for_a_cubic_fall_back_to_pyproj() -> None:
    # A country-sized grid with few cells: tiles hundreds of kilometres wide.
    grid = Grid.covering((73.0, 18.0, 135.0, 53.0), cells=64, margin=0.0)
    projection = LocalProjection.for_bounds((73.0, 18.0, 135.0, 53.0))
    plane = PlaneTiles.build(grid, projection)
    assert any(tile is None for tile in plane.tiles)
    for lon, lat, ix, iy in _random_cells(grid, 200):
        tile = plane.tiles[(iy >> plane.shift) * plane.columns + (ix >> plane.shift)]
        if tile is None:
            assert plane.to_local(lon, lat, ix, iy) == projection.to_local(lon, lat)


def test_tiles_of_a_national_grid_reproduce_pyproj_to_a_millimetre() -> None:
    # The contiguous US at a national layer's cell size: 34 km tiles, where a quadratic
    # missed by 45 mm and every tile fell back to pyproj.
    bounds = (-124.8, 24.5, -66.9, 49.4)
    grid = Grid.covering(bounds, cells=1 << 22, margin=0.05)
    projection = LocalProjection.for_bounds(bounds)
    plane = PlaneTiles.build(grid, projection)
    assert all(tile is not None for tile in plane.tiles)
    for lon, lat, ix, iy in _random_cells(grid, 2000):
        fitted = np.array(plane.to_local(lon, lat, ix, iy))
        exact = np.array(projection.to_local(lon, lat))
        assert float(np.hypot(*(fitted - exact))) < 1e-3
