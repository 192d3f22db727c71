from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.datum import (
    Datum,
    bd09_to_gcj02,
    from_wgs84,
    from_wgs84_many,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    gcj02_to_wgs84_many,
    to_wgs84,
    to_wgs84_many,
    wgs84_to_gcj02,
    wgs84_to_gcj02_many,
)

_M_PER_DEGREE = 111_320.0


def _metres(
    lon_a: npt.ArrayLike, lat_a: npt.ArrayLike, lon_b: npt.ArrayLike, lat_b: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Small separations in metres (equirectangular: exact enough below a kilometre)."""
    lat = np.radians(np.asarray(lat_a, dtype=np.float64))
    dx = (np.asarray(lon_b) - np.asarray(lon_a)) * _M_PER_DEGREE * np.cos(lat)
    dy = (np.asarray(lat_b) - np.asarray(lat_a)) * _M_PER_DEGREE
    return np.asarray(np.hypot(dx, dy), dtype=np.float64)


def test_forward_formulas_match_published_reference_values() -> None:
    # Reference values of the widely used coordTransform implementations.
    assert wgs84_to_gcj02(116.404, 39.915) == pytest.approx(
        (116.41024449916938, 39.91640428150164), abs=1e-12
    )
    assert gcj02_to_bd09(116.404, 39.915) == pytest.approx(
        (116.41036949371029, 39.92133699351021), abs=1e-12
    )
    # Baidu's own approximate inverse gives (116.39762729, 39.90865674); ours is exact,
    # so it may differ from that by its ~1e-6 degree approximation error.
    assert bd09_to_gcj02(116.404, 39.915) == pytest.approx((116.397627, 39.908656), abs=2e-6)


def test_gcj02_offset_is_hundreds_of_metres_in_china() -> None:
    lon, lat = wgs84_to_gcj02(118.7926, 32.0732)
    assert 100.0 < float(_metres(118.7926, 32.0732, lon, lat)) < 700.0


def test_round_trip_over_a_grid_of_china_stays_under_a_centimetre() -> None:
    lons, lats = np.meshgrid(np.arange(73.8, 134.9, 0.37), np.arange(18.1, 53.5, 0.29))
    lon, lat = lons.ravel(), lats.ravel()
    gcj_lon, gcj_lat = wgs84_to_gcj02_many(lon, lat)
    back_lon, back_lat = gcj02_to_wgs84_many(gcj_lon, gcj_lat)
    assert float(_metres(lon, lat, back_lon, back_lat).max()) < 0.01
    for i in range(0, len(lon), 97):  # the scalar inverse, on a sample of the grid
        scalar = gcj02_to_wgs84(float(gcj_lon[i]), float(gcj_lat[i]))
        assert float(_metres(lon[i], lat[i], *scalar)) < 0.01


@pytest.mark.parametrize("datum", list(Datum))
def test_every_datum_round_trips_through_wgs84(datum: Datum) -> None:
    lons, lats = np.meshgrid(np.linspace(100.0, 122.0, 23), np.linspace(20.0, 45.0, 26))
    there = from_wgs84_many(lons.ravel(), lats.ravel(), datum)
    back_lon, back_lat = to_wgs84_many(there[0], there[1], datum)
    assert float(_metres(lons.ravel(), lats.ravel(), back_lon, back_lat).max()) < 0.01


@settings(database=None)  # leave no example database in the working tree
@given(
    lon=st.floats(min_value=73.7, max_value=134.9),
    lat=st.floats(min_value=18.2, max_value=53.4),
    datum=st.sampled_from(list(Datum)),
)
def test_scalar_and_vectorised_conversions_agree(lon: float, lat: float, datum: Datum) -> None:
    scalar = from_wgs84(lon, lat, datum)
    many = from_wgs84_many(np.array([lon]), np.array([lat]), datum)
    assert scalar == pytest.approx((float(many[0][0]), float(many[1][0])), abs=1e-12)
    back = to_wgs84(*scalar, datum)
    assert float(_metres(lon, lat, *back)) < 0.01


def test_outside_china_gcj02_is_wgs84() -> None:
    for lon, lat in ((-73.98, 40.75), (-0.1276, 51.5072), (139.69, 35.69)):
        assert wgs84_to_gcj02(lon, lat) == (lon, lat)
        assert gcj02_to_wgs84(lon, lat) == (lon, lat)
    lon_many, lat_many = wgs84_to_gcj02_many(np.array([-73.98]), np.array([40.75]))
    assert (float(lon_many[0]), float(lat_many[0])) == (-73.98, 40.75)


def test_bd09_is_further_from_wgs84_than_gcj02() -> None:
    gcj = from_wgs84(114.0549, 22.5367, Datum.GCJ02)
    bd = from_wgs84(114.0549, 22.5367, Datum.BD09)
    assert float(_metres(*gcj, *bd)) > 500.0
    assert not math.isclose(gcj[0], bd[0])


@settings(database=None)
@given(
    lon=st.floats(min_value=-180.0, max_value=180.0),
    lat=st.floats(min_value=-90.0, max_value=90.0),
    datum=st.sampled_from(list(Datum)),
)
def test_any_valid_position_converts_to_a_valid_position(
    lon: float, lat: float, datum: Datum
) -> None:
    """BD-09's shift is applied everywhere: at a pole or the antimeridian it would step
    off the globe (found by schemathesis: lat -90 in bd09 was a 500)."""
    for out_lon, out_lat in (
        to_wgs84(lon, lat, datum),
        tuple(float(a[0]) for a in to_wgs84_many(np.array([lon]), np.array([lat]), datum)),
    ):
        assert -180.0 <= out_lon <= 180.0 and -90.0 <= out_lat <= 90.0
    for edge in ((0.0, -90.0), (-180.0, 0.0), (180.0, 90.0), (-180.0, -90.0)):
        out_lon, out_lat = to_wgs84(*edge, Datum.BD09)
        assert -180.0 <= out_lon <= 180.0 and -90.0 <= out_lat <= 90.0
