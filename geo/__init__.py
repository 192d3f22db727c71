"""Precinct geofencing: datum conversion, boundary import, point location. Pure: no I/O.

Callers parse GeoJSON and pass dicts in; they store what comes out.
"""

from geo.datum import Datum, from_wgs84, from_wgs84_many, to_wgs84, to_wgs84_many
from geo.index import Location, Nearest, PrecinctIndex
from geo.issues import ImportIssue, IssueKind
from geo.precincts import Precinct, PrecinctImport, geojson_texts, load_precincts
from geo.projection import LocalProjection

__all__ = [
    "Datum",
    "ImportIssue",
    "IssueKind",
    "LocalProjection",
    "Location",
    "Nearest",
    "Precinct",
    "PrecinctImport",
    "PrecinctIndex",
    "from_wgs84",
    "from_wgs84_many",
    "geojson_texts",
    "load_precincts",
    "to_wgs84",
    "to_wgs84_many",
]
