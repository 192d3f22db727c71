"""The local projection near a grid cell, without a pyproj call per query.

From Python a pyproj transform costs ~1.4 us per point: a third of an out-of-jurisdiction
lookup. Over a tile of the grid (about a kilometre) the projection is so smooth that the
quadratic through nine pyproj points reproduces it to micrometres: the error is third
order, about R * (half a tile / R)^3, i.e. 1e-6 m for 500 m. Every tile's quadratic is
checked against pyproj at build time, and a tile that misses by more than a millimetre
(tiles of a country-sized grid would) simply keeps calling pyproj.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.grid import Grid
from geo.projection import LocalProjection

FloatArray = npt.NDArray[np.float64]
# lon0, lat0, then x0 and five coefficients for x, then y0 and five for y.
Tile = tuple[
    float, float, float, float, float, float, float, float, float, float, float, float, float, float
]

_TILE_METRES = 1_000.0
# A country-sized grid would need millions of kilometre tiles (minutes of pyproj calls
# and gigabytes of tuples): tiles grow instead, and the check below still holds them to
# a millimetre (a quadratic over 30 km misses by about a tenth of one).
_MAX_TILES = 1 << 14
_TOLERANCE_M = 1e-3
# Where each tile's quadratic is checked: off the nine fitting points, in units of the
# half tile, so that an error there would show.
_CHECKS = ((0.5, 0.5), (-0.5, 0.75), (1.0, -0.5), (-1.0, -1.0), (0.25, -0.9), (-0.8, 0.3))


@dataclass(frozen=True, slots=True)
class PlaneTiles:
    projection: LocalProjection
    shift: int  # a tile is 2**shift cells square
    columns: int
    tiles: tuple[Tile | None, ...]

    @classmethod
    def build(cls, grid: Grid, projection: LocalProjection) -> PlaneTiles:
        cell = max(min(grid.cell_metres), 1e-9)
        shift = max(0, int(math.log2(_TILE_METRES / cell))) if cell < _TILE_METRES else 0
        while -(-grid.nx // (1 << shift)) * -(-grid.ny // (1 << shift)) > _MAX_TILES:
            shift += 1
        side = 1 << shift
        columns, rows = -(-grid.nx // side), -(-grid.ny // side)
        tx, ty = np.meshgrid(np.arange(columns), np.arange(rows))
        h, k = side * grid.dx / 2.0, side * grid.dy / 2.0
        lon0 = grid.x0 + (tx.ravel() * side) * grid.dx + h
        lat0 = grid.y0 + (ty.ravel() * side) * grid.dy + k

        def at(u: float, v: float) -> tuple[FloatArray, FloatArray]:
            return projection.to_local_many(lon0 + u * h, lat0 + v * k)

        coefficients = []
        for axis in (0, 1):
            f = {(u, v): at(u, v)[axis] for u in (-1, 0, 1) for v in (-1, 0, 1)}
            coefficients.append(
                (
                    f[0, 0],
                    (f[1, 0] - f[-1, 0]) / (2.0 * h),
                    (f[0, 1] - f[0, -1]) / (2.0 * k),
                    (f[1, 0] - 2.0 * f[0, 0] + f[-1, 0]) / (2.0 * h * h),
                    (f[1, 1] - f[1, -1] - f[-1, 1] + f[-1, -1]) / (4.0 * h * k),
                    (f[0, 1] - 2.0 * f[0, 0] + f[0, -1]) / (2.0 * k * k),
                )
            )
        error = np.zeros(len(lon0))
        for u, v in _CHECKS:
            true_x, true_y = at(u, v)
            dl, dp = u * h, v * k
            fitted_x = _quadratic(coefficients[0], dl, dp)
            fitted_y = _quadratic(coefficients[1], dl, dp)
            error = np.maximum(error, np.hypot(fitted_x - true_x, fitted_y - true_y))
        table = np.column_stack((lon0, lat0, *coefficients[0], *coefficients[1])).tolist()
        tiles = tuple(
            tuple(row) if bad <= _TOLERANCE_M else None
            for row, bad in zip(table, error.tolist(), strict=True)
        )
        return cls(projection, shift, columns, tiles)

    def table(self) -> FloatArray:
        """The tiles as rows of 14 floats, NaN for a tile that calls pyproj."""
        table = np.full((len(self.tiles), 14), np.nan)
        for i, tile in enumerate(self.tiles):
            if tile is not None:
                table[i] = tile
        return table

    @classmethod
    def from_table(
        cls, projection: LocalProjection, shift: int, columns: int, table: FloatArray
    ) -> PlaneTiles:
        good = [not math.isnan(row[0]) for row in table[:, :1].tolist()]
        tiles = tuple(
            tuple(row) if ok else None for row, ok in zip(table.tolist(), good, strict=True)
        )
        return cls(projection, shift, columns, tiles)

    def to_local(self, lon: float, lat: float, ix: int, iy: int) -> tuple[float, float]:
        """The point (lon, lat), which lies in grid cell (ix, iy), in the local plane."""
        tile = self.tiles[(iy >> self.shift) * self.columns + (ix >> self.shift)]
        if tile is None:
            return self.projection.to_local(lon, lat)
        lon0, lat0, x0, a1, a2, a3, a4, a5, y0, b1, b2, b3, b4, b5 = tile
        dl = lon - lon0
        dp = lat - lat0
        return (
            x0 + dl * (a1 + a3 * dl + a4 * dp) + dp * (a2 + a5 * dp),
            y0 + dl * (b1 + b3 * dl + b4 * dp) + dp * (b2 + b5 * dp),
        )


def _quadratic(
    c: tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray],
    dl: float,
    dp: float,
) -> FloatArray:
    return c[0] + dl * (c[1] + c[3] * dl + c[4] * dp) + dp * (c[2] + c[5] * dp)
