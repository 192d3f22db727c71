"""Point location against precincts in microseconds: a precomputed grid in front of
exact geometry.

Most points land in a grid cell wholly inside one precinct and are answered by an
array lookup. Points in a cell that some boundary crosses are tested exactly (shapely,
prepared geometry) against that cell's short candidate list in index order, so a point
on a shared border always goes to the precinct that comes first in the index
(``load_precincts`` orders by code). Points in no precinct get the nearest precinct and
the distance in metres in the dataset's local plane (``geo.projection``, evaluated per
grid tile by ``geo.plane_tiles``), from the cell's precomputed segment list; points off
the grid take an exact but slower STRtree path. ``geo.grid``, ``geo.nearest``,
``geo.quadtree`` and ``geo.tables`` build the pieces.

Precincts in separate regions (a city here and one abroad, or two cities more than
``geo.regions.REGION_GAP_DEG`` apart) get one such grid per region under a thin
top-level index: one grid spanning continents would need billions of cells, or be too
coarse to help. ``geo.regions.RegionRouter`` sends each point to the one region that can
hold it, and asks other regions for their distance only when they could be nearer; a
region so asked answers from its far field (``geo.far_field``) instead of searching its
whole boundary.

The index is immutable: a new import builds a new index and the caller swaps the
reference, so readers never see a half-built one. Building takes seconds of CPU for a
large city: run it in an executor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon

from geo.datum import Datum, to_wgs84, to_wgs84_many
from geo.far_field import (
    OWNER_NEARER,
    RIVAL_NEARER,
    FarField,
    Side,
    half_diagonal_m,
    world_cell_box,
)
from geo.nearest import SegmentTable, nearest_on
from geo.packing import pack, unpack
from geo.precincts import Precinct
from geo.projection import LocalProjection
from geo.regions import PER_DEGREE, Frame, RegionRouter, group_regions
from geo.tables import IndexTables, build_tables
from geo.validate import Polygonal

PrecinctIndices = npt.NDArray[np.int32]
_intersects_xy = shapely.lib.intersects_xy


@dataclass(frozen=True, slots=True)
class Location:
    """``precinct`` holds the point, or is None when the point is out of jurisdiction;
    ``nearest`` is then the closest precinct and ``distance_m`` the distance to it in
    metres. Inside a precinct, ``nearest`` is that precinct and the distance 0."""

    precinct: str | None
    nearest: str | None
    distance_m: float


@dataclass(frozen=True, slots=True)
class Nearest:
    precinct: str
    distance_m: float


@dataclass(frozen=True, slots=True)
class PrecinctIndex:
    precincts: tuple[Precinct, ...]
    codes: tuple[str, ...]
    _tables: IndexTables | None
    # (x0, y0, 1/dx, 1/dy, nx, ny), unpacked in one step on the hot path.
    _frame: tuple[float, float, float, float, int, int]
    _cells: memoryview
    # One shared answer per code of ``_cells``: inside points allocate nothing.
    _inside: tuple[Location, ...]
    # Several regions: one child index each, and the child's precincts' positions here.
    _regions: tuple[PrecinctIndex, ...] = ()
    _positions: tuple[PrecinctIndices, ...] = ()
    _router: RegionRouter | None = None
    # Per region: its far field (``geo.far_field``), None where no point asks it.
    _far: tuple[FarField | None, ...] = ()
    # The region whose grid stands in front (see ``_of_regions``), -1 for none.
    _main: int = -1

    @classmethod
    def build(
        cls, precincts: Sequence[Precinct], *, cell_share: float = 1.0, workers: int = 1
    ) -> PrecinctIndex:
        """``cell_share``: the fraction of the cell budget this index may use (regions
        share one budget in proportion to their vertices, so a national layer of
        thirteen regions is not thirteen city-sized grids).

        ``workers``: threads for the build. Regions are built up to that many at once,
        largest first, and each region's quadtree prunes its pairs in chunks on as many
        threads (``geo.quadtree``). The work is numpy, shapely and pyproj over whole
        arrays, which release the GIL, so a national layer's mainland and Alaska build
        side by side on two cores. Regions share nothing while they build and chunks
        are combined in order, so the index is the same, byte for byte, whatever the
        number."""
        for precinct in precincts:
            if not isinstance(precinct.geometry, Polygon | MultiPolygon):
                raise TypeError(f"precinct {precinct.code!r} is not a Polygon or MultiPolygon")
        codes = tuple(p.code for p in precincts)
        if len(set(codes)) != len(codes):
            raise ValueError("precinct codes must be unique")
        if not precincts:
            return cls((), (), None, (0.0, 0.0, 0.0, 0.0, 0, 0), memoryview(b""), ())
        if workers <= 1:
            return cls._build(precincts, cell_share, None)
        # Its own pool: a region's build waits for its chunks, and must never wait for
        # a thread that is itself building a region.
        with ThreadPoolExecutor(max_workers=workers) as pruning:
            return cls._build(precincts, cell_share, pruning, workers)

    @classmethod
    def _build(
        cls,
        precincts: Sequence[Precinct],
        cell_share: float,
        pruning: Executor | None,
        workers: int = 1,
    ) -> PrecinctIndex:
        regions = group_regions([p.geometry for p in precincts])
        if len(regions) > 1:
            vertices = [
                int(shapely.get_num_coordinates([g for _, g in region]).sum()) for region in regions
            ]
            # Built as single regions straight away: grouping a region's own parts again
            # finds the same one region (thirteen more groupings on a national layer).
            tables = _largest_first(
                build_tables,
                [
                    ([g for _, g in region], cell_share * count / sum(vertices), pruning)
                    for region, count in zip(regions, vertices, strict=True)
                ],
                vertices,
                workers,
            )
            children = tuple(
                cls._of_tables(tuple(replace(precincts[i], geometry=g) for i, g in region), built)
                for region, built in zip(regions, tables, strict=True)
            )
            positions = tuple(
                np.asarray([i for i, _ in region], dtype=np.int32) for region in regions
            )
            index = cls._of_regions(tuple(precincts), children, positions)
            return replace(index, _far=index._far_fields(pruning))
        return cls._of_tables(
            tuple(precincts), build_tables([p.geometry for p in precincts], cell_share, pruning)
        )

    def __len__(self) -> int:
        return len(self.codes)

    def large_parts(self) -> list[object]:
        """The parts that take longest to free, each apart: each region's segment rows
        and tree, its polygons.  Freed at once, a national index holds the GIL for about
        40 ms (a serving node's event loop waits); a caller that holds these parts in a
        list, drops the index, then frees them one by one, lets the loop in between
        (9-10 ms at most). The whole layer's precincts come first: their polygons are
        the regions' too, and go with each region's own list."""
        parts: list[object] = [self.precincts]
        for region in self._regions or (self,):
            tables = region._tables
            if tables is not None:
                parts += [tables.segments.rows, tables.segments.tree, tables.geometries,
                          tables.geometry_list, region.precincts]  # fmt: skip
        return parts

    def to_bytes(self) -> bytes:
        """The built index, packed (``geo.packing``) for ``from_bytes`` in another
        process: loading takes a fraction of a second where building takes seconds."""
        meta: dict[str, Any] = {
            "codes": list(self.codes),
            "names": [p.name for p in self.precincts],
            "regions": [],
        }
        arrays: dict[str, npt.NDArray[Any]] = {}
        parts = [self] if self._tables is not None else list(self._regions)
        for number, part in enumerate(parts):
            assert part._tables is not None
            region_meta, region_arrays = part._tables.to_arrays()
            positions = (
                np.arange(len(self.codes), dtype=np.int32)
                if part is self
                else self._positions[number]
            )
            meta["regions"].append(region_meta)
            arrays[f"{number}.positions"] = positions
            arrays.update({f"{number}.{name}": a for name, a in region_arrays.items()})
        meta["far"] = []
        for number, far in enumerate(self._far):
            if far is not None:
                grid, far_arrays = far.to_arrays()
                meta["far"].append([number, grid])
                arrays.update({f"far{number}.{name}": a for name, a in far_arrays.items()})
        return pack(meta, arrays)

    @classmethod
    def from_bytes(cls, blob: bytes) -> PrecinctIndex:
        """The index ``to_bytes`` packed; raises ValueError for anything else."""
        meta, arrays = unpack(blob)
        codes = tuple(str(c) for c in meta["codes"])
        names = [str(n) for n in meta["names"]]
        children: list[PrecinctIndex] = []
        positions: list[PrecinctIndices] = []
        parts: list[list[Polygon]] = [[] for _ in codes]
        for number, region_meta in enumerate(meta["regions"]):
            prefix = f"{number}."
            tables = IndexTables.from_arrays(
                region_meta,
                {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)},
            )
            where = arrays[f"{number}.positions"]
            region_codes = tuple(codes[i] for i in where.tolist())
            precincts = tuple(
                Precinct(code, names[i], geometry)
                for code, i, geometry in zip(
                    region_codes, where.tolist(), tables.geometry_list, strict=True
                )
            )
            for i, geometry in zip(where.tolist(), tables.geometry_list, strict=True):
                parts[i].append(geometry)
            children.append(cls._of_tables(precincts, tables))
            positions.append(np.asarray(where, dtype=np.int32))
        if len(children) == 1:
            return children[0]
        whole = tuple(
            Precinct(code, name, found[0] if len(found) == 1 else _merged(found))
            for code, name, found in zip(codes, names, parts, strict=True)
        )
        index = cls._of_regions(whole, tuple(children), tuple(positions))
        # Indexes packed before far fields existed load without them (exact searches).
        far: list[FarField | None] = [None] * len(children)
        for number, far_meta in meta.get("far", []):
            prefix = f"far{number}."
            far[number] = FarField.from_arrays(
                far_meta,
                {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)},
                children[number].projection_of_tables,
            )
        return replace(index, _far=tuple(far))

    @classmethod
    def _of_tables(cls, precincts: tuple[Precinct, ...], tables: IndexTables) -> PrecinctIndex:
        grid = tables.grid
        frame = (grid.x0, grid.y0, 1.0 / grid.dx, 1.0 / grid.dy, grid.nx, grid.ny)
        codes = tuple(p.code for p in precincts)
        inside = tuple(Location(code, code, 0.0) for code in codes)
        return cls(precincts, codes, tables, frame, tables.cells, inside)

    @classmethod
    def _of_regions(
        cls,
        precincts: tuple[Precinct, ...],
        children: tuple[PrecinctIndex, ...],
        positions: tuple[PrecinctIndices, ...],
    ) -> PrecinctIndex:
        codes = tuple(p.code for p in precincts)
        router = RegionRouter.of([child._region_frame() for child in children])
        # The largest region's grid stands in front: a point in one of its interior cells
        # is in that cell's precinct whatever the other regions hold (regions are
        # degrees apart), so most points never reach the router. Its cells hold the
        # child's positions, so its answers come too. Every other point takes the router.
        main_number = max(
            range(len(children)), key=lambda n: children[n]._frame[4] * children[n]._frame[5]
        )
        main = children[main_number]
        frame, cells, inside = main._frame, main._cells, main._inside
        x0, y0, inv_dx, inv_dy, nx, ny = frame
        if not (x0 >= -180.0 and y0 >= -90.0 and x0 + nx / inv_dx <= 180.0
                and y0 + ny / inv_dy <= 90.0):  # fmt: skip
            # Not in front of the coordinate check of the off-grid path.
            frame, cells, inside = (0.0, 0.0, 0.0, 0.0, 0, 0), memoryview(b""), ()
            main_number = -1
        return cls(
            precincts, codes, None, frame, cells, inside, children, positions, router,
            _main=main_number,
        )  # fmt: skip

    def _region_frame(self) -> Frame:
        tables = self._tables
        assert tables is not None
        grid, segments = tables.grid, tables.segments
        # Segment ends: a segment's points lie between them.
        xs = np.concatenate((segments.ax, segments.ax + segments.ux))
        ys = np.concatenate((segments.ay, segments.ay + segments.uy))
        box, reach = (0.0, 0.0, 0.0, 0.0), 0.0
        if len(xs):
            box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
            reach = float(np.hypot(xs, ys).max())
        return Frame(
            grid.x0, grid.y0, grid.x0 + grid.nx * grid.dx, grid.y0 + grid.ny * grid.dy,
            tables.projection.lon_0, tables.projection.lat_0, box, reach,
        )  # fmt: skip

    def _far_fields(self, pool: Executor | None = None) -> tuple[FarField | None, ...]:
        """A far field for each region that some out-of-jurisdiction point asks as the
        rival of the region owning its world cell (``_in_regions``), over the world
        cells where that can happen: those where the owner's distance, at most its
        distance from the cell's centre plus the cell's half diagonal, can reach the
        cell's ``others_m``. Erring wide only makes a far field larger; a point outside
        every far field still gets the exact search."""
        router = self._router
        assert router is not None
        owner = router.owner_view
        rival = np.asarray(router.rival)
        others = np.asarray(router.others_m)
        cells = np.flatnonzero((owner >= 0) & (rival >= 0) & np.isfinite(others))
        wanted: dict[int, list[int]] = {}
        owners: dict[int, set[int]] = {}
        for number, region in enumerate(self._regions):
            own = cells[owner[cells] == number]
            if len(own) == 0:
                continue
            tables = region._tables
            assert tables is not None
            boxes = np.array([world_cell_box(c, PER_DEGREE) for c in own.tolist()])
            slack = half_diagonal_m(tables.projection, boxes).tolist()
            centres = ((boxes[:, :2] + boxes[:, 2:]) / 2.0).tolist()
            for cell, (lon, lat), margin in zip(own.tolist(), centres, slack, strict=True):
                limit = router.others_m[cell]
                if margin < limit and region.locate(lon, lat).distance_m + margin < limit:
                    continue
                wanted.setdefault(router.rival[cell], []).append(cell)
                owners.setdefault(router.rival[cell], set()).add(number)
        far: list[FarField | None] = [None] * len(self._regions)
        jobs: dict[int, tuple[list[int], int, LocalProjection, SegmentTable, Side | None]] = {}
        for number, asked in wanted.items():
            tables = self._regions[number]._tables
            assert tables is not None
            side = None
            if len(owners[number]) == 1:
                (owned_by,) = owners[number]
                owner_tables = self._regions[owned_by]._tables
                assert owner_tables is not None
                side = Side(
                    owned_by, owner_tables.projection, owner_tables.segments,
                    owner_tables.grid, owner_tables.cells_view, owner_tables.entry_block,
                    owner_tables.block_offsets, owner_tables.block_segments,
                )  # fmt: skip
            jobs[number] = (asked, PER_DEGREE, tables.projection, tables.segments, side)
        # Independent of each other (a national layer's ten take 0.3 s of CPU).
        run = map if pool is None else pool.map
        built = run(lambda job: FarField.build(*job), jobs.values())
        for number, field in zip(jobs, built, strict=True):
            far[number] = field
        return tuple(far)

    @property
    def projection_of_tables(self) -> LocalProjection:
        tables = self._tables
        assert tables is not None
        return tables.projection

    @property
    def projection(self) -> LocalProjection | None:
        """The metre plane distances are measured in (None for an empty index; the
        first region's plane when there are several)."""
        if self._regions:
            return self._regions[0].projection
        return None if self._tables is None else self._tables.projection

    def locate(self, lon: float, lat: float, datum: Datum = Datum.WGS84) -> Location:
        if datum is not Datum.WGS84:
            _require_coordinates(lon, lat)
            lon, lat = to_wgs84(lon, lat, datum)
        x0, y0, inv_dx, inv_dy, nx, ny = self._frame
        fx = (lon - x0) * inv_dx
        fy = (lat - y0) * inv_dy
        # NaN fails every comparison, so it falls through to the checked slow path.
        if 0.0 <= fx < nx and 0.0 <= fy < ny:
            ix, iy = int(fx), int(fy)
            code = self._cells[iy * nx + ix]
            if code >= 0:
                return self._inside[code]
            if self._router is not None:
                return self._in_regions(lon, lat, ~code, ix, iy)
            return self._resolve(~code, lon, lat, ix, iy)
        return self._off_grid(lon, lat)

    def nearest(self, lon: float, lat: float, datum: Datum = Datum.WGS84) -> Nearest | None:
        """The closest precinct (distance 0 inside it); None for an empty index."""
        location = self.locate(lon, lat, datum)
        if location.nearest is None:
            return None
        return Nearest(location.nearest, location.distance_m)

    def locate_many(
        self, lons: npt.ArrayLike, lats: npt.ArrayLike, datum: Datum = Datum.WGS84
    ) -> PrecinctIndices:
        """Position in ``codes`` of the precinct holding each point, -1 for none.

        Same answers as ``locate``, border tie-break included; no distances.
        """
        lon = np.asarray(lons, dtype=np.float64)
        lat = np.asarray(lats, dtype=np.float64)
        if lon.shape != lat.shape:
            raise ValueError(f"{lon.shape} longitudes but {lat.shape} latitudes")
        bad = ~(np.abs(lon) <= 180.0) | ~(np.abs(lat) <= 90.0)
        if bad.any():
            first = int(np.argmax(bad.ravel()))
            raise ValueError(
                f"point {first} ({lon.ravel()[first]!r}, {lat.ravel()[first]!r}) "
                "is not a finite longitude, latitude pair"
            )
        lon, lat = to_wgs84_many(lon, lat, datum)
        if self._router is not None:
            return self._in_regions_many(lon.ravel(), lat.ravel()).reshape(lon.shape)
        if self._tables is None:
            return np.full(lon.shape, -1, dtype=np.int32)
        return self._tables.locate_many(lon.ravel(), lat.ravel()).reshape(lon.shape)

    def _in_regions_many(
        self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]
    ) -> PrecinctIndices:
        """Each point asks only the region its world cell belongs to; a precinct holds
        a point only inside its region's frame, and frames never share an owned cell."""
        router = self._router
        assert router is not None
        found = np.full(lon.size, -1, dtype=np.int32)
        owner = router.owner_view[router.cells_of(lon, lat)]
        order = np.argsort(owner, kind="stable")
        counts = np.bincount(owner[order] + 2, minlength=len(self._regions) + 2)
        ends = np.cumsum(counts)
        shared = order[: counts[0]]  # several frames meet in these cells
        for number, (region, positions) in enumerate(
            zip(self._regions, self._positions, strict=True)
        ):
            points = order[ends[number + 1] : ends[number + 2]]
            if len(shared):
                x0, y0, inv_dx, inv_dy, nx, ny = region._frame
                fx, fy = (lon[shared] - x0) * inv_dx, (lat[shared] - y0) * inv_dy
                framed = shared[(fx >= 0.0) & (fx < nx) & (fy >= 0.0) & (fy < ny)]
                points = np.concatenate((points, framed[found[framed] < 0]))
            if len(points) == 0:
                continue
            tables = region._tables
            assert tables is not None
            got = tables.locate_many(lon[points], lat[points])
            hit = got >= 0
            found[points[hit]] = positions[got[hit]]
        return found

    def _resolve(self, entry: int, lon: float, lat: float, ix: int, iy: int) -> Location:
        tables = self._tables
        assert tables is not None
        offsets = tables.entry_offsets_mv
        polygons = tables.entry_polygons_mv
        geometries = tables.geometry_list
        for k in range(offsets[entry], offsets[entry + 1]):
            polygon = polygons[k]
            # The ufunc itself: shapely.intersects_xy's wrapper doubles a scalar call.
            if _intersects_xy(geometries[polygon], lon, lat):
                return self._inside[polygon]
        x, y = tables.plane.to_local(lon, lat, ix, iy)
        block = tables.entry_block_mv[entry]
        if block < 0:
            # A cell inside the union has no list (``geo.tables``): no point of it is
            # outside every candidate, so this is never expected; answer exactly.
            polygon, distance = tables.segments.nearest_anywhere(
                *tables.projection.to_local(lon, lat)
            )
            return Location(None, self.codes[polygon], distance)
        blocks = tables.block_offsets_mv
        polygon, distance = nearest_on(
            x, y, tables.segments.rows, tables.block_segments_mv, blocks[block], blocks[block + 1]
        )
        return Location(None, self.codes[polygon], distance)

    def _off_grid(self, lon: float, lat: float) -> Location:
        _require_coordinates(lon, lat)
        if self._regions:
            return self._in_regions(lon, lat)
        if self._tables is None:
            return Location(None, None, math.inf)
        x, y = self._tables.projection.to_local(lon, lat)
        polygon, distance = self._tables.segments.nearest_anywhere(x, y)
        return Location(None, self.codes[polygon], distance)

    def _nearest_within(self, x: float, y: float, limit_m: float) -> Location | None:
        """``_off_grid`` for the point (x, y) of this region's plane, or None when its
        nearest precinct is further than ``limit_m``: the search stops at that distance,
        where a search of the region's whole boundary costs tens of microseconds."""
        tables = self._tables
        assert tables is not None
        found = tables.segments.nearest_within(x, y, limit_m)
        if found is None:
            return None
        polygon, distance = found
        return Location(None, self.codes[polygon], distance)

    def _in_regions(
        self, lon: float, lat: float, entry: int = -1, ix: int = 0, iy: int = 0
    ) -> Location:
        """``entry``, when not -1, is the point's entry in the main region's grid, whose
        cell (ix, iy) holds it."""
        router = self._router
        assert router is not None
        cell = router.cell(lon, lat)
        number = router.owner[cell]
        if number < 0:
            return self._nearest_region(lon, lat)
        rival = router.rival[cell]
        far = self._far[rival] if self._far and rival >= 0 else None
        settled, fx, fy = 0, -1, -1
        if far is not None:
            fx, fy = far.cell(lon, lat)
            if fx >= 0 and far.owner == number:
                settled = far.settled[fy * far.frame[4] + fx]
                if settled == RIVAL_NEARER and entry >= 0 and self._outside(number, entry):
                    # The point is in none of the owner's precincts (no precinct meets
                    # its cell) and the rival is nearer than the owner everywhere in the
                    # far cell; only a third region could beat it, and none can below
                    # beyond_rival_m.
                    other = self._far_answer(rival, far, lon, lat, fx, fy)
                    if other is not None and other.distance_m < router.beyond_rival_m[cell]:
                        return other
        # Only this region's frame meets the cell: it alone can hold the point, and its
        # answer stands unless another region might be nearer.
        if entry >= 0 and number == self._main:
            answer = self._regions[number]._resolve(entry, lon, lat, ix, iy)
        else:
            answer = self._regions[number].locate(lon, lat)
        distance = answer.distance_m
        if answer.precinct is not None or distance < router.others_m[cell]:
            return answer
        if distance >= router.beyond_rival_m[cell]:
            return self._nearest_region(lon, lat, number, answer)
        if settled == OWNER_NEARER:
            return answer
        # Only the rival region might be nearer (ties go to the first region).
        region = self._regions[rival]
        other = None
        if fx >= 0 and far is not None:
            other = self._far_answer(rival, far, lon, lat, fx, fy)
        if other is None:
            tables = region._tables
            assert tables is not None
            x, y = tables.projection.to_local(lon, lat)
            if router.plane_bound(rival, x, y) > distance:
                return answer
            other = region._nearest_within(x, y, distance)
        if other is not None and (
            other.distance_m < distance or (other.distance_m == distance and rival < number)
        ):
            return other
        return answer

    def _outside(self, number: int, entry: int) -> bool:
        """Is ``entry`` of the main region's grid a cell that no precinct meets?"""
        if number != self._main:
            return False
        tables = self._regions[number]._tables
        assert tables is not None
        offsets = tables.entry_offsets_mv
        return bool(offsets[entry] == offsets[entry + 1])

    def _far_answer(
        self, number: int, far: FarField, lon: float, lat: float, fx: int, fy: int
    ) -> Location | None:
        """Region ``number``'s answer for an out-of-jurisdiction point in far cell
        (fx, fy) of its far field; None when that cell has no list."""
        region = self._regions[number]
        tables = region._tables
        assert tables is not None
        found = far.nearest(lon, lat, fx, fy, tables.segments.rows)
        if found is None:
            return None
        return Location(None, region.codes[found[0]], found[1])

    def _nearest_region(
        self, lon: float, lat: float, known: int = -1, known_answer: Location | None = None
    ) -> Location:
        """Any point: the regions whose frames hold it in order, then the nearest over
        all regions (ties to the first), asking only those that could be nearer.
        ``known_answer``, when given, is region ``known``'s own answer for the point."""
        router = self._router
        assert router is not None
        answers: dict[int, Location] = {} if known_answer is None else {known: known_answer}
        framed = -1
        # With a known answer no other region's frame meets the point's world cell.
        for number, region in enumerate(() if known_answer else self._regions):
            x0, y0, inv_dx, inv_dy, nx, ny = region._frame
            if 0.0 <= (lon - x0) * inv_dx < nx and 0.0 <= (lat - y0) * inv_dy < ny:
                answer = region.locate(lon, lat)
                if answer.precinct is not None:
                    return answer
                answers[number] = answer
                framed = number
        bounds = router.lower_bounds(lon, lat)
        best: Location | None = None
        best_number = len(self._regions)
        for number, bound in sorted(enumerate(bounds.tolist()), key=lambda nb: nb[1]):
            region = self._regions[number]
            answer_or_none = answers.get(number)
            if best is not None and bound > best.distance_m:
                break
            if answer_or_none is not None and number in (framed, known):
                answer = answer_or_none
            elif best is None:
                answer = region._off_grid(lon, lat)
            else:
                tables = region._tables
                assert tables is not None
                x, y = tables.projection.to_local(lon, lat)
                if router.plane_bound(number, x, y) > best.distance_m:
                    continue
                within = region._nearest_within(x, y, best.distance_m)
                if within is None:
                    continue
                answer = within
            if (
                best is None
                or answer.distance_m < best.distance_m
                or (answer.distance_m == best.distance_m and number < best_number)
            ):
                best, best_number = answer, number
        assert best is not None
        return best


def _largest_first(
    build: Callable[[Sequence[Polygonal], float, Executor | None], IndexTables],
    jobs: Sequence[tuple[Sequence[Polygonal], float, Executor | None]],
    sizes: Sequence[int],
    workers: int,
) -> list[IndexTables]:
    """``build(*job)`` for every job, in the jobs' order; on ``workers`` threads, the
    largest jobs started first so the longest one is not left to run alone at the end."""
    if workers <= 1 or len(jobs) <= 1:
        return [build(*job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        started = {
            number: pool.submit(build, *jobs[number])
            for number in sorted(range(len(jobs)), key=lambda n: -sizes[n])
        }
        return [started[number].result() for number in range(len(jobs))]


def _merged(parts: list[Polygon]) -> MultiPolygon:
    pieces = [piece for part in parts for piece in shapely.get_parts(part)]
    return MultiPolygon(pieces)


def _require_coordinates(lon: float, lat: float) -> None:
    # Written so that NaN fails too: NaN compares False with everything.
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(f"({lon!r}, {lat!r}) is not a finite longitude, latitude pair")
