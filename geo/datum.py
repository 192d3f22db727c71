"""Geodetic datums reported by phones in China, and conversion to WGS84.

GCJ-02 is WGS84 plus a published, position-dependent obfuscation offset (roughly
100-700 m); BD-09 is Baidu's further rotation of GCJ-02. Both forward formulas are
public and closed-form; their inverses are not, so they are solved by fixed-point
iteration to well below a millimetre.

Each conversion has a scalar form (one phone fix, where numpy's per-call overhead would
dominate) and a ``_many`` form over numpy arrays (polygon vertices, bulk points). Both
run the same formula code, written once over a small math namespace, so they cannot
drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_Num = TypeVar("_Num", float, FloatArray)


class Datum(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


# Krasovsky 1940 ellipsoid, on which the GCJ-02 formula is defined.
_A = 6378245.0
_EE = 0.00669342162296594323
_BD_X_PI = math.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.006

# The rectangle every public implementation uses for "out of China"; outside it GCJ-02
# is plain WGS84. Matching what phones do matters more than geographic exactness.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)

# 1e-11 degrees is about a micrometre: far below the 0.01 m round-trip promise, and
# still well above float64 noise at these magnitudes (~1e-14).
_TOLERANCE_DEG = 1e-11
_MAX_ITERATIONS = 40


def in_china(lon: float, lat: float) -> bool:
    return _CHINA_LON[0] <= lon <= _CHINA_LON[1] and _CHINA_LAT[0] <= lat <= _CHINA_LAT[1]


def _in_china_many(lons: FloatArray, lats: FloatArray) -> npt.NDArray[np.bool_]:
    return (
        (lons >= _CHINA_LON[0])
        & (lons <= _CHINA_LON[1])
        & (lats >= _CHINA_LAT[0])
        & (lats <= _CHINA_LAT[1])
    )


def _gcj_offset(
    lon: _Num,
    lat: _Num,
    sin: Callable[[_Num], _Num],
    cos: Callable[[_Num], _Num],
    sqrt: Callable[[_Num], _Num],
) -> tuple[_Num, _Num]:
    """The published GCJ-02 offset (degrees) to add to a WGS84 position in China."""
    pi = math.pi
    x = lon - 105.0
    y = lat - 35.0
    wave = (20.0 * sin(6.0 * x * pi) + 20.0 * sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt(abs(x))
    dlat = dlat + wave
    dlat = dlat + (20.0 * sin(y * pi) + 40.0 * sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat = dlat + (160.0 * sin(y / 12.0 * pi) + 320.0 * sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt(abs(x))
    dlon = dlon + wave
    dlon = dlon + (20.0 * sin(x * pi) + 40.0 * sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon = dlon + (150.0 * sin(x / 12.0 * pi) + 300.0 * sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * pi
    magic = 1.0 - _EE * sin(rad_lat) * sin(rad_lat)
    sqrt_magic = sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * cos(rad_lat) * pi)
    return dlon, dlat


def _bd_encrypt(
    lon: _Num,
    lat: _Num,
    sin: Callable[[_Num], _Num],
    cos: Callable[[_Num], _Num],
    sqrt: Callable[[_Num], _Num],
    atan2: Callable[[_Num, _Num], _Num],
) -> tuple[_Num, _Num]:
    z = sqrt(lon * lon + lat * lat) + 0.00002 * sin(lat * _BD_X_PI)
    theta = atan2(lat, lon) + 0.000003 * cos(lon * _BD_X_PI)
    return z * cos(theta) + _BD_DLON, z * sin(theta) + _BD_DLAT


def _bd_decrypt_estimate(
    lon: _Num,
    lat: _Num,
    sin: Callable[[_Num], _Num],
    cos: Callable[[_Num], _Num],
    sqrt: Callable[[_Num], _Num],
    atan2: Callable[[_Num, _Num], _Num],
) -> tuple[_Num, _Num]:
    """Baidu's published inverse: good to ~1e-6 degrees, refined by iteration."""
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    z = sqrt(x * x + y * y) - 0.00002 * sin(y * _BD_X_PI)
    theta = atan2(y, x) - 0.000003 * cos(x * _BD_X_PI)
    return z * cos(theta), z * sin(theta)


# --- scalar -------------------------------------------------------------------------


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if not in_china(lon, lat):
        return lon, lat
    dlon, dlat = _gcj_offset(lon, lat, math.sin, math.cos, math.sqrt)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    if not in_china(lon, lat):
        return lon, lat
    # Fixed point of w = g - offset(w): the offset varies by ~1e-5 of itself per
    # degree, so each step gains about five digits.
    wlon, wlat = lon, lat
    for _ in range(_MAX_ITERATIONS):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = lon - glon, lat - glat
        wlon, wlat = wlon + dlon, wlat + dlat
        if abs(dlon) < _TOLERANCE_DEG and abs(dlat) < _TOLERANCE_DEG:
            break
    return wlon, wlat


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    return _bd_encrypt(lon, lat, math.sin, math.cos, math.sqrt, math.atan2)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    glon, glat = _bd_decrypt_estimate(lon, lat, math.sin, math.cos, math.sqrt, math.atan2)
    for _ in range(_MAX_ITERATIONS):
        blon, blat = gcj02_to_bd09(glon, glat)
        dlon, dlat = lon - blon, lat - blat
        glon, glat = glon + dlon, glat + dlat
        if abs(dlon) < _TOLERANCE_DEG and abs(dlat) < _TOLERANCE_DEG:
            break
    return glon, glat


def _on_the_globe(lon: float, lat: float) -> tuple[float, float]:
    """BD-09's shift applies everywhere, so a valid BD-09 position at a pole or next to
    the antimeridian decodes a few hundred metres past it: wrap and clamp it back."""
    if lon < -180.0 or lon > 180.0:
        lon = (lon + 180.0) % 360.0 - 180.0
    return lon, min(90.0, max(-90.0, lat))


def to_wgs84(lon: float, lat: float, datum: Datum) -> tuple[float, float]:
    if datum is Datum.WGS84:
        return lon, lat
    if datum is Datum.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    return _on_the_globe(*gcj02_to_wgs84(*bd09_to_gcj02(lon, lat)))


def from_wgs84(lon: float, lat: float, datum: Datum) -> tuple[float, float]:
    if datum is Datum.WGS84:
        return lon, lat
    if datum is Datum.GCJ02:
        return wgs84_to_gcj02(lon, lat)
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


# --- vectorised -----------------------------------------------------------------------


def _as_floats(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def wgs84_to_gcj02_many(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = np.broadcast_arrays(_as_floats(lons), _as_floats(lats))
    dlon, dlat = _gcj_offset(lon, lat, np.sin, np.cos, np.sqrt)
    china = _in_china_many(lon, lat)
    return np.where(china, lon + dlon, lon), np.where(china, lat + dlat, lat)


def gcj02_to_wgs84_many(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = np.broadcast_arrays(_as_floats(lons), _as_floats(lats))
    china = _in_china_many(lon, lat)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(_MAX_ITERATIONS):
        glon, glat = wgs84_to_gcj02_many(wlon, wlat)
        dlon, dlat = lon - glon, lat - glat
        wlon += dlon
        wlat += dlat
        if np.all((np.abs(dlon) < _TOLERANCE_DEG) & (np.abs(dlat) < _TOLERANCE_DEG)):
            break
    return np.where(china, wlon, lon), np.where(china, wlat, lat)


def gcj02_to_bd09_many(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = np.broadcast_arrays(_as_floats(lons), _as_floats(lats))
    return _bd_encrypt(lon, lat, np.sin, np.cos, np.sqrt, np.arctan2)


def bd09_to_gcj02_many(lons: npt.ArrayLike, lats: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = np.broadcast_arrays(_as_floats(lons), _as_floats(lats))
    glon, glat = _bd_decrypt_estimate(lon, lat, np.sin, np.cos, np.sqrt, np.arctan2)
    for _ in range(_MAX_ITERATIONS):
        blon, blat = gcj02_to_bd09_many(glon, glat)
        dlon, dlat = lon - blon, lat - blat
        glon = glon + dlon
        glat = glat + dlat
        if np.all((np.abs(dlon) < _TOLERANCE_DEG) & (np.abs(dlat) < _TOLERANCE_DEG)):
            break
    return glon, glat


def to_wgs84_many(
    lons: npt.ArrayLike, lats: npt.ArrayLike, datum: Datum
) -> tuple[FloatArray, FloatArray]:
    if datum is Datum.WGS84:
        return np.broadcast_arrays(_as_floats(lons), _as_floats(lats))  # type: ignore[return-value]
    if datum is Datum.GCJ02:
        return gcj02_to_wgs84_many(lons, lats)
    lon, lat = gcj02_to_wgs84_many(*bd09_to_gcj02_many(lons, lats))
    lon = np.where((lon < -180.0) | (lon > 180.0), (lon + 180.0) % 360.0 - 180.0, lon)
    return lon, np.clip(lat, -90.0, 90.0)  # as _on_the_globe


def from_wgs84_many(
    lons: npt.ArrayLike, lats: npt.ArrayLike, datum: Datum
) -> tuple[FloatArray, FloatArray]:
    if datum is Datum.WGS84:
        return np.broadcast_arrays(_as_floats(lons), _as_floats(lats))  # type: ignore[return-value]
    if datum is Datum.GCJ02:
        return wgs84_to_gcj02_many(lons, lats)
    return gcj02_to_bd09_many(*wgs84_to_gcj02_many(lons, lats))
