from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import Polygon, box

import geo.pruning
import geo.tables
from geo.datum import Datum, from_wgs84
from geo.index import Location, Nearest, PrecinctIndex
from geo.precincts import Precinct, PrecinctImport
from tests.geo.conftest import load

XUANWU_LAKE = (118.7926, 32.0732)
PING_AN_FINANCE_CENTRE = (114.0549, 22.5367)
_GEOD = Geod(ellps="WGS84")


def test_xuanwu_lake_is_in_xuanwu_from_both_files(
    nanjing_gcj02_index: PrecinctIndex, nanjing_wgs84_index: PrecinctIndex
) -> None:
    for index in (nanjing_gcj02_index, nanjing_wgs84_index):
        found = index.locate(*XUANWU_LAKE)
        assert found == Location("320102", "320102", 0.0)
        assert index.precincts[index.codes.index("320102")].name == "玄武区"


@pytest.mark.parametrize("datum", [Datum.GCJ02, Datum.BD09])
def test_phone_datums_are_converted_before_locating(
    nanjing_gcj02_index: PrecinctIndex, datum: Datum
) -> None:
    lon, lat = from_wgs84(*XUANWU_LAKE, datum)
    assert nanjing_gcj02_index.locate(lon, lat, datum).precinct == "320102"
    many = nanjing_gcj02_index.locate_many(np.array([lon]), np.array([lat]), datum)
    assert nanjing_gcj02_index.codes[int(many[0])] == "320102"


@pytest.mark.parametrize(
    ("name", "datum"),
    [
        ("shenzhen_440300_districts_wgs84.geojson", Datum.WGS84),
        ("shenzhen_440300_districts_gcj02.geojson", Datum.GCJ02),
    ],
)
def test_ping_an_finance_centre_is_in_futian(name: str, datum: Datum) -> None:
    loaded = load(name, code="adcode", name_property="name", datum=datum)
    index = PrecinctIndex.build(loaded.precincts)
    found = index.locate(*PING_AN_FINANCE_CENTRE)
    assert found.precinct is not None
    assert index.precincts[index.codes.index(found.precinct)].name == "福田区"


def _easternmost_vertex(precincts: PrecinctImport) -> tuple[str, float, float]:
    best = max(
        (float(x), float(y), p.code)
        for p in precincts.precincts
        for x, y in shapely.get_coordinates(p.geometry)
    )
    return best[2], best[0], best[1]


@pytest.mark.parametrize("metres", [250.0, 1_000.0, 30_000.0])
def test_point_east_of_the_city_is_out_of_jurisdiction_at_the_right_distance(
    nyc_precincts: PrecinctImport, nyc_index: PrecinctIndex, metres: float
) -> None:
    code, lon, lat = _easternmost_vertex(nyc_precincts)
    east_lon, east_lat, _ = _GEOD.fwd(lon, lat, 90.0, metres)
    found = nyc_index.locate(east_lon, east_lat)
    assert found.precinct is None
    assert found.nearest == code
    # Every other boundary point lies further west, so the vertex is the nearest point;
    # the local plane keeps its scale error under 1e-4 even 30 km out.
    assert found.distance_m == pytest.approx(metres, rel=1e-4)
    nearest = nyc_index.nearest(east_lon, east_lat)
    assert nearest is not None
    assert (nearest.precinct, nearest.distance_m) == (code, found.distance_m)


def test_inside_answers_are_shared_and_have_zero_distance(nyc_index: PrecinctIndex) -> None:
    empire_state_building = (-73.9857, 40.7484)
    first = nyc_index.locate(*empire_state_building)
    assert first.precinct == first.nearest == "14"
    assert first.distance_m == 0.0
    assert nyc_index.locate(*empire_state_building) is first
    assert nyc_index.nearest(*empire_state_building) == Nearest("14", 0.0)


@pytest.mark.parametrize(
    ("lon", "lat"),
    [
        (math.nan, 40.7),
        (-73.9, math.nan),
        (math.inf, 40.7),
        (-73.9, -math.inf),
        (200.0, 40.7),
        (-73.9, 91.0),
    ],
)
def test_non_coordinates_raise_value_error(
    nyc_index: PrecinctIndex, lon: float, lat: float
) -> None:
    for datum in Datum:
        with pytest.raises(ValueError, match="longitude, latitude"):
            nyc_index.locate(lon, lat, datum)
        with pytest.raises(ValueError, match="longitude, latitude"):
            nyc_index.nearest(lon, lat, datum)
        with pytest.raises(ValueError, match="longitude, latitude"):
            nyc_index.locate_many(np.array([-73.9, lon]), np.array([40.7, lat]), datum)


def test_locate_many_keeps_the_input_shape(nyc_index: PrecinctIndex) -> None:
    lons = np.full((2, 3), -73.9857)
    lats = np.full((2, 3), 40.7484)
    found = nyc_index.locate_many(lons, lats)
    assert found.shape == (2, 3)
    assert found.dtype == np.int32
    assert {nyc_index.codes[i] for i in found.ravel()} == {"14"}
    with pytest.raises(ValueError, match="longitudes but"):
        nyc_index.locate_many(np.zeros(2), np.zeros(3))


def _shared_vertices(precincts: PrecinctImport) -> list[tuple[float, float]]:
    owners: Counter[tuple[float, float]] = Counter()
    for p in precincts.precincts:
        owners.update({(float(x), float(y)) for x, y in shapely.get_coordinates(p.geometry)})
    return sorted(v for v, n in owners.items() if n >= 2)


def test_points_on_shared_borders_go_to_the_first_precinct_every_time(
    nyc_precincts: PrecinctImport, nyc_index: PrecinctIndex
) -> None:
    geometries = np.array([p.geometry for p in nyc_precincts.precincts], dtype=object)
    vertices = _shared_vertices(nyc_precincts)[::7]
    assert len(vertices) > 200
    lons = np.array([v[0] for v in vertices])
    lats = np.array([v[1] for v in vertices])
    many = nyc_index.locate_many(lons, lats)
    for (lon, lat), position in zip(vertices, many.tolist(), strict=True):
        holders = np.flatnonzero(shapely.intersects_xy(geometries, lon, lat))
        assert position == int(holders.min())
        found = nyc_index.locate(lon, lat)
        assert found.precinct == nyc_index.codes[position]
        assert nyc_index.locate(lon, lat) == found


def test_exact_shared_edges_in_a_checkerboard_are_decided_by_index_order() -> None:
    # Squares with binary-exact corners, so points exactly on shared edges exist.
    squares = [
        Precinct(f"{row}-{col}", "", box(col / 8, row / 8, (col + 1) / 8, (row + 1) / 8))
        for row in range(4)
        for col in range(4)
    ]
    index = PrecinctIndex.build(squares)
    for k in range(1, 4):
        for t in np.linspace(0.0, 0.5, 41).tolist():
            for lon, lat in ((k / 8, t), (t, k / 8)):
                point = shapely.Point(lon, lat)
                holders = [i for i, s in enumerate(squares) if s.geometry.intersects(point)]
                assert index.locate(lon, lat).precinct == squares[min(holders)].code
                assert int(index.locate_many(np.array([lon]), np.array([lat]))[0]) == min(holders)


def test_inland_border_cells_need_no_nearest_list_and_answers_stay_exact() -> None:
    """Cells on the shared edges of a checkerboard lie wholly inside the union: they get
    no nearest-precinct list, and every point of them is still in a precinct; points
    outside get the exact nearest precinct."""
    # Densified, so the outer boundary has enough segments for the quadtree to split.
    squares = [
        Precinct(
            f"{row}-{col}",
            "",
            shapely.segmentize(box(col / 8, row / 8, (col + 1) / 8, (row + 1) / 8), 1 / 1024),
        )
        for row in range(4)
        for col in range(4)
    ]
    index = PrecinctIndex.build(squares)
    tables = index._tables
    assert tables is not None
    codes = np.asarray(tables.cells_view).astype(np.int64)
    n_blocks = len(tables.block_offsets) - 1
    border = np.flatnonzero((codes < 0) & (~codes >= n_blocks))
    listless = border[np.asarray(tables.entry_block)[~codes[border]] < 0]
    assert len(listless) > 0
    grid = tables.grid
    rng = np.random.default_rng(2)
    cells = rng.choice(listless, 2000)
    lons = grid.x0 + (cells % grid.nx + rng.random(len(cells))) * grid.dx
    lats = grid.y0 + (cells // grid.nx + rng.random(len(cells))) * grid.dy
    for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True):
        assert index.locate(lon, lat).precinct is not None
    union = shapely.union_all([s.geometry for s in squares])
    for lon, lat in ((0.55, 0.2), (-0.03, 0.27), (0.26, 0.52), (0.3, -0.01)):
        found = index.locate(lon, lat)
        assert found.precinct is None
        nearest = min(
            range(len(squares)), key=lambda i: squares[i].geometry.distance(shapely.Point(lon, lat))
        )
        assert found.nearest == squares[nearest].code
        assert union.distance(shapely.Point(lon, lat)) > 0


def test_empty_index_finds_nothing() -> None:
    index = PrecinctIndex.build([])
    assert len(index) == 0
    assert index.locate(-73.9, 40.7) == Location(None, None, math.inf)
    assert index.nearest(-73.9, 40.7) is None
    assert index.locate_many(np.array([-73.9]), np.array([40.7])).tolist() == [-1]
    with pytest.raises(ValueError, match="longitude, latitude"):
        index.locate(math.nan, 0.0)


def test_index_is_immutable(nyc_index: PrecinctIndex) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        nyc_index.codes = ()  # type: ignore[misc]
    tables = nyc_index._tables
    assert tables is not None
    with pytest.raises(ValueError, match="read-only"):
        tables.cells_view[0] = 0
    with pytest.raises(TypeError, match="read-only"):
        tables.cells[0] = 0


def test_build_rejects_what_it_cannot_index() -> None:
    square = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    with pytest.raises(ValueError, match="unique"):
        PrecinctIndex.build([Precinct("1", "", square), Precinct("1", "", square)])
    with pytest.raises(TypeError, match="Polygon"):
        PrecinctIndex.build([Precinct("1", "", shapely.Point(0, 0))])


def _three_cities(nyc_precincts: PrecinctImport) -> list[Precinct]:
    """New York's precincts, Nanjing's and Shenzhen's districts, in code order."""
    nanjing = load(
        "nanjing_320100_districts_wgs84.geojson", code="adcode", name_property="name",
        datum=Datum.WGS84,
    )  # fmt: skip
    shenzhen = load(
        "shenzhen_440300_districts_wgs84.geojson", code="adcode", name_property="name",
        datum=Datum.WGS84,
    )  # fmt: skip
    return sorted(
        [*nyc_precincts.precincts, *nanjing.precincts, *shenzhen.precincts],
        key=lambda p: p.code,
    )


@pytest.fixture(scope="module")
def three_cities(nyc_precincts: PrecinctImport) -> tuple[list[Precinct], PrecinctIndex]:
    """The three cities' precincts and their index built as an import does by default
    (one build shared by the tests below: each takes seconds)."""
    everything = _three_cities(nyc_precincts)
    return everything, PrecinctIndex.build(everything)


def test_cities_on_different_continents_are_indexed_as_regions(
    three_cities: tuple[list[Precinct], PrecinctIndex], nyc_index: PrecinctIndex
) -> None:
    """One grid from New York to Nanjing and Shenzhen would be enormous or useless."""
    everything, index = three_cities
    assert len(index) == 77 + 11 + 9
    assert index.locate(*XUANWU_LAKE).precinct == "320102"
    assert index.locate(*PING_AN_FINANCE_CENTRE).precinct == "440304"
    assert index.locate(118.7926 + 0.001, 32.0732, Datum.WGS84).precinct == "320102"
    # Same answers as the city's own index, inside and outside, on many points.
    rng = np.random.default_rng(7)
    lons, lats = rng.uniform(-74.3, -73.6, 2000), rng.uniform(40.4, 41.0, 2000)
    # Regions share one cell budget, so the city's grid here is coarser than its own
    # index's: distances agree to the millimetre the local plane promises.
    for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True):
        here, own = index.locate(lon, lat), nyc_index.locate(lon, lat)
        assert (here.precinct, here.nearest) == (own.precinct, own.nearest)
        assert here.distance_m == pytest.approx(own.distance_m, abs=1e-3)
    found = index.locate_many(lons, lats)
    alone = nyc_index.locate_many(lons, lats)
    assert [index.codes[i] if i >= 0 else None for i in found.tolist()] == [
        nyc_index.codes[i] if i >= 0 else None for i in alone.tolist()
    ]
    # Between the regions: out of jurisdiction, nearest in the closer region.
    mid_pacific = index.locate(-160.0, 20.0)
    assert mid_pacific.precinct is None
    assert mid_pacific.nearest is not None and mid_pacific.distance_m > 1_000_000
    near_nanjing = index.locate(118.40, 31.20)
    assert near_nanjing.precinct is None and near_nanjing.nearest in {
        p.code for p in everything if p.code.startswith("3201")
    }


def test_an_index_built_on_threads_packs_byte_for_byte_as_one_built_on_one(
    three_cities: tuple[list[Precinct], PrecinctIndex],
    nyc_precincts: PrecinctImport,
    nyc_index: PrecinctIndex,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The importer builds regions side by side, and prunes each quadtree level's pairs
    in chunks on several threads; nodes must get the same index (the ones to compare
    were built on one thread, in chunks of the default size)."""
    everything, built_on_one = three_cities
    one_by_one = built_on_one.to_bytes()
    # Chunks this small make every level of these cities' quadtrees several chunks.
    monkeypatch.setattr(geo.pruning, "_PRUNE_CHUNK", 1 << 12)
    for workers in (2, 3):
        assert PrecinctIndex.build(everything, workers=workers).to_bytes() == one_by_one
    # One region (a city alone): its quadtree alone runs on the threads.
    alone = PrecinctIndex.build(list(nyc_precincts.precincts), workers=2).to_bytes()
    assert alone == nyc_index.to_bytes()


def test_the_pruning_arithmetic_in_spans_of_any_size_makes_the_same_index(
    three_cities: tuple[list[Precinct], PrecinctIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quadtree's pruning computes ``_CACHED_PAIRS`` pairs at a time (for the cache);
    how many must not change a list, nor which segment is a block's q on a tie."""
    everything, index = three_cities
    packed = index.to_bytes()
    for size in (251, 1 << 24):
        monkeypatch.setattr(geo.pruning, "_CACHED_PAIRS", size)
        assert PrecinctIndex.build(everything).to_bytes() == packed


def test_a_packed_index_loads_with_the_same_answers(nyc_index: PrecinctIndex) -> None:
    """What an import stores and every node loads: arrays, not a rebuild."""
    loaded = PrecinctIndex.from_bytes(nyc_index.to_bytes())
    assert loaded.codes == nyc_index.codes
    assert [p.name for p in loaded.precincts] == [p.name for p in nyc_index.precincts]
    rng = np.random.default_rng(11)
    lons, lats = rng.uniform(-74.4, -73.5, 5000), rng.uniform(40.3, 41.1, 5000)
    for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True):
        assert loaded.locate(lon, lat) == nyc_index.locate(lon, lat)
    assert loaded.locate_many(lons, lats).tolist() == nyc_index.locate_many(lons, lats).tolist()
    with pytest.raises(ValueError, match="not a packed precinct index"):
        PrecinctIndex.from_bytes(b"something else")


def test_a_packed_index_loads_its_polygons_a_little_at_a_time(
    nyc_index: PrecinctIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node reads the polygons' WKB in pieces (each `from_wkb` call holds the GIL, and
    the node's event loop waits for it); in pieces or whole, the same polygons."""
    packed = nyc_index.to_bytes()
    calls: list[int] = []
    from_wkb = shapely.from_wkb

    def counted(parts: list[bytes]) -> object:
        calls.append(sum(map(len, parts)))
        return from_wkb(parts)

    monkeypatch.setattr(geo.tables, "_WKB_BYTES_PER_CALL", 4096)
    monkeypatch.setattr(shapely, "from_wkb", counted)
    loaded = PrecinctIndex.from_bytes(packed)
    assert len(calls) > 10
    assert max(calls) < 4096 + max(len(p.geometry.wkb) for p in nyc_index.precincts)
    assert loaded.to_bytes() == packed
    assert [p.geometry.wkb for p in loaded.precincts] == [
        p.geometry.wkb for p in nyc_index.precincts
    ]


def test_an_index_names_its_largest_parts_for_freeing_a_piece_at_a_time(
    nyc_precincts: PrecinctImport,
) -> None:
    """A node drops a replaced index, then frees these one by one off its event loop
    (dispatch/infra/precinct_registry.py): every region's segments and polygons."""
    index = PrecinctIndex.build(_three_cities(nyc_precincts))
    regions = index._regions
    assert len(regions) == 3
    parts = index.large_parts()
    for region in regions:
        tables = region._tables
        assert tables is not None
        for part in (tables.segments.rows, tables.segments.tree, tables.geometries):
            assert any(p is part for p in parts)
    assert any(p is index.precincts for p in parts)
    city = PrecinctIndex.build(list(nyc_precincts.precincts))  # one region: itself
    assert city._tables is not None
    assert any(p is city._tables.segments.tree for p in city.large_parts())


def test_a_precinct_across_the_antimeridian_does_not_make_a_globe_wide_grid() -> None:
    """Alaska's Aleutians West has islands on both sides of 180 degrees."""
    west = shapely.MultiPolygon([box(172.0, 52.0, 173.0, 53.0), box(-178.0, 51.0, -177.0, 52.0)])
    mainland = box(-150.0, 60.0, -149.0, 61.0)
    index = PrecinctIndex.build([Precinct("02016", "Aleutians West", west),
                                 Precinct("02020", "Anchorage", mainland)])  # fmt: skip
    regions = index._regions
    assert len(regions) == 3
    assert all(r._tables is not None and r._tables.grid.dx < 0.1 for r in regions)
    assert index.locate(172.5, 52.5).precinct == "02016"
    assert index.locate(-177.5, 51.5).precinct == "02016"
    assert index.locate(-149.5, 60.5).precinct == "02020"
    far = index.locate(-120.0, 60.0)
    assert far.precinct is None and far.nearest == "02020"
    loaded = PrecinctIndex.from_bytes(index.to_bytes())
    assert loaded.precincts[0].geometry.equals(west)
    assert loaded.locate(-177.5, 51.5) == index.locate(-177.5, 51.5)
