from __future__ import annotations

import numpy as np

from geo.grid import Grid
from geo.index import PrecinctIndex
from geo.plane_tiles import PlaneTiles, TileTable
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


def test_a_tile_table_projects_many_points_as_the_tiles_do_one_by_one(
    nyc_index: PrecinctIndex,
) -> None:
    tables = nyc_index._tables
    assert tables is not None
    points = _random_cells(tables.grid, 2000)
    lon, lat, ix, iy = (np.array(column) for column in zip(*points, strict=True))
    x, y = TileTable.of(tables.plane).to_local_many(
        lon.astype(np.float64), lat.astype(np.float64), ix, iy
    )
    one_by_one = np.array([tables.plane.to_local(*point) for point in points])
    assert np.array_equal(np.column_stack((x, y)), one_by_one)
    # A tile that calls pyproj does so here too.
    grid = Grid(-120.0, 20.0, 1.0, 1.0, 40, 30)
    coarse = PlaneTiles.build(grid, LocalProjection.centred_on(-100.0, 35.0))
    assert any(tile is None for tile in coarse.tiles)
    lons, lats = np.array([-119.5, -81.2]), np.array([20.5, 49.1])
    cells = np.array([0, 38]), np.array([0, 29])
    x, y = TileTable.of(coarse).to_local_many(lons, lats, *cells)
    for k in range(2):
        expected = coarse.to_local(
            float(lons[k]), float(lats[k]), int(cells[0][k]), int(cells[1][k])
        )
        assert (float(x[k]), float(y[k])) == expected
