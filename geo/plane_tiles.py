"""The local projection near a grid cell, without a pyproj call per query.

From Python a pyproj transform costs ~1.4 us per point: a third of an out-of-jurisdiction
lookup. Over a tile of the grid the projection is so smooth that a cubic fitted to
sixteen pyproj points reproduces it to micrometres: the error is fourth order, 0.03 mm
for the 34 km tiles of a national grid (a quadratic missed by 45 mm there, so every
out-of-jurisdiction point of a country-sized layer called pyproj). Every tile's cubic is
checked against pyproj at build time, and a tile that misses by more than a millimetre
(tiles of a continent-sized grid would) simply keeps calling pyproj.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.grid import Grid
from geo.projection import LocalProjection

FloatArray = npt.NDArray[np.float64]
# lon0, lat0, then x0 and nine coefficients for x, then y0 and nine for y (``_TERMS``).
Tile = tuple[float, ...]
# Powers of (dlon, dlat) of each coefficient, in the order the scalar path evaluates.
_TERMS = ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2), (3, 0), (2, 1), (1, 2), (0, 3))
_COLUMNS = 2 + 2 * len(_TERMS)
# Tables stored before the cubic: the first six terms per axis.
_QUADRATIC_COLUMNS = 14
# Fitting points per axis, in units of the half tile.
_NODES = (-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0)

# A tile's side, at least (in whole cells): the cubic's error is fourth order in it,
# 0.03 mm at 34 km (the national grid's tiles), so 32 km tiles lose nothing against the
# 1 km ones used with the quadratic, and a small region's grid needs a few hundred tiles
# (each costs 22 pyproj points at build, and a row of the stored index): at 8 km the
# national layer's thirteen regions had 37,500 tiles, 22,600 of them outside the
# mainland.
_TILE_METRES = 32_000.0
# A country-sized grid would need millions of kilometre tiles (minutes of pyproj calls
# and gigabytes of tuples): tiles grow instead, and the check below still holds them to
# a millimetre (a quadratic over 30 km misses by about a tenth of one).
_MAX_TILES = 1 << 14
_TOLERANCE_M = 1e-3
# Tiles unpacked per call that holds the GIL (about a millisecond's worth).
_UNPACK_ROWS = 1024
# Where each tile's cubic is checked: mostly off the sixteen fitting points, in units of
# the half tile, so that an error there would show.
_CHECKS = ((0.5, 0.5), (-0.5, 0.75), (1.0, -0.5), (-1.0, -1.0), (0.25, -0.9), (-0.8, 0.3))


@dataclass(frozen=True, slots=True)
class PlaneTiles:
    projection: LocalProjection
    shift: int  # a tile is 2**shift cells square
    columns: int
    tiles: tuple[Tile | None, ...]

    @classmethod
    def build(
        cls, grid: Grid, projection: LocalProjection, *, max_tiles: int = _MAX_TILES
    ) -> PlaneTiles:
        cell = max(min(grid.cell_metres), 1e-9)
        shift = max(0, int(math.log2(_TILE_METRES / cell))) if cell < _TILE_METRES else 0
        while -(-grid.nx // (1 << shift)) * -(-grid.ny // (1 << shift)) > max_tiles:
            shift += 1
        side = 1 << shift
        columns, rows = -(-grid.nx // side), -(-grid.ny // side)
        tx, ty = np.meshgrid(np.arange(columns), np.arange(rows))
        h, k = side * grid.dx / 2.0, side * grid.dy / 2.0
        lon0 = grid.x0 + (tx.ravel() * side) * grid.dx + h
        lat0 = grid.y0 + (ty.ravel() * side) * grid.dy + k

        def at(u: float, v: float) -> tuple[FloatArray, FloatArray]:
            return projection.to_local_many(lon0 + u * h, lat0 + v * k)

        # Least squares on a 4 x 4 lattice of the tile (one pseudo-inverse for all
        # tiles: the lattice is the same in units of the half tile). Neighbouring tiles
        # share their lattices' edges, so the whole grid's lattice (a third of a tile
        # apart) is projected once: 9 pyproj points per tile instead of 16.
        nodes = [(u, v) for v in _NODES for u in _NODES]
        fit = np.linalg.pinv(_design([u for u, _ in nodes], [v for _, v in nodes]))
        third_x, third_y = 2.0 * h / 3.0, 2.0 * k / 3.0
        lattice_x, lattice_y = np.meshgrid(
            grid.x0 + third_x * np.arange(3 * columns + 1),
            grid.y0 + third_y * np.arange(3 * rows + 1),
        )
        plane_x, plane_y = projection.to_local_many(lattice_x.ravel(), lattice_y.ravel())
        width = 3 * columns + 1
        first = 3 * ty.ravel() * width + 3 * tx.ravel()
        lattice = [first + j + i * width for i in range(len(_NODES)) for j in range(len(_NODES))]
        values = [(plane_x[at_node], plane_y[at_node]) for at_node in lattice]
        scale = np.array([h**a * k**b for a, b in _TERMS])[:, None]
        coefficients = [
            (fit @ np.array([value[axis] for value in values])) / scale for axis in (0, 1)
        ]
        error = np.zeros(len(lon0))
        for u, v in _CHECKS:
            true_x, true_y = at(u, v)
            terms = _design([u], [v])[0] * scale[:, 0]
            error = np.maximum(
                error, np.hypot(terms @ coefficients[0] - true_x, terms @ coefficients[1] - true_y)
            )
        table = np.column_stack((lon0, lat0, *coefficients[0], *coefficients[1])).tolist()
        tiles = tuple(
            tuple(row) if bad <= _TOLERANCE_M else None
            for row, bad in zip(table, error.tolist(), strict=True)
        )
        return cls(projection, shift, columns, tiles)

    def table(self) -> FloatArray:
        """The tiles as rows of 22 floats, NaN for a tile that calls pyproj."""
        table = np.full((len(self.tiles), _COLUMNS), np.nan)
        for i, tile in enumerate(self.tiles):
            if tile is not None:
                table[i] = tile
        return table

    @classmethod
    def from_table(
        cls, projection: LocalProjection, shift: int, columns: int, table: FloatArray
    ) -> PlaneTiles:
        if table.shape[1] == _QUADRATIC_COLUMNS:
            # A quadratic table stored by an earlier version: the cubic terms are 0.
            zeros = np.zeros((len(table), len(_TERMS) - 6))
            table = np.hstack((table[:, :8], zeros, table[:, 8:], zeros))
        # map(tuple, ...) at C speed: a national index has ~25,000 tiles, and a node
        # unpacks them while it serves. In slices: one tolist() of the mainland's tiles
        # held the GIL, and so the node's event loop, for 22 ms.
        rows: list[tuple[float, ...] | None] = []
        for start in range(0, len(table), _UNPACK_ROWS):
            rows.extend(map(tuple, table[start : start + _UNPACK_ROWS].tolist()))
        for i in np.flatnonzero(np.isnan(table[:, 0])).tolist():
            rows[i] = None
        return cls(projection, shift, columns, tuple(rows))

    def to_local(self, lon: float, lat: float, ix: int, iy: int) -> tuple[float, float]:
        """The point (lon, lat), which lies in grid cell (ix, iy), in the local plane."""
        tile = self.tiles[(iy >> self.shift) * self.columns + (ix >> self.shift)]
        if tile is None:
            return self.projection.to_local(lon, lat)
        (lon0, lat0, x0, a1, a2, a3, a4, a5, a6, a7, a8, a9,
         y0, b1, b2, b3, b4, b5, b6, b7, b8, b9) = tile  # fmt: skip
        dl = lon - lon0
        dp = lat - lat0
        return (
            x0
            + dl * (a1 + dl * (a3 + a6 * dl + a7 * dp) + dp * (a4 + a8 * dp))
            + dp * (a2 + dp * (a5 + a9 * dp)),
            y0
            + dl * (b1 + dl * (b3 + b6 * dl + b7 * dp) + dp * (b4 + b8 * dp))
            + dp * (b2 + dp * (b5 + b9 * dp)),
        )


@dataclass(frozen=True, slots=True)
class TileTable:
    """``PlaneTiles`` as one array, for projecting many points of the grid at once."""

    tiles: PlaneTiles
    table: FloatArray

    @classmethod
    def of(cls, tiles: PlaneTiles) -> TileTable:
        return cls(tiles, tiles.table())

    def to_local_many(
        self,
        lon: FloatArray,
        lat: FloatArray,
        ix: npt.NDArray[np.int64],
        iy: npt.NDArray[np.int64],
    ) -> tuple[FloatArray, FloatArray]:
        """``PlaneTiles.to_local`` for many points, point k in (or on the edge of) grid
        cell (ix[k], iy[k]); pyproj for points whose tile calls it."""
        plane = self.tiles
        tile = (iy >> plane.shift) * plane.columns + (ix >> plane.shift)
        column = self.table[:, 0][tile]
        dl = lon - column
        dp = lat - self.table[:, 1][tile]

        def c(k: int) -> FloatArray:
            return np.asarray(self.table[:, k][tile], dtype=np.float64)

        x = c(2) + dl * (c(3) + dl * (c(5) + c(8) * dl + c(9) * dp) + dp * (c(6) + c(10) * dp))
        x += dp * (c(4) + dp * (c(7) + c(11) * dp))
        y = c(12) + dl * (
            c(13) + dl * (c(15) + c(18) * dl + c(19) * dp) + dp * (c(16) + c(20) * dp)
        )
        y += dp * (c(14) + dp * (c(17) + c(21) * dp))
        missing = np.flatnonzero(np.isnan(column))
        if len(missing):
            x[missing], y[missing] = plane.projection.to_local_many(lon[missing], lat[missing])
        return x, y


def _design(u: list[float], v: list[float]) -> FloatArray:
    """One row of ``_TERMS`` per point."""
    uu, vv = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    return np.column_stack([uu**a * vv**b for a, b in _TERMS])
