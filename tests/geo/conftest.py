"""Real boundary files, loaded and indexed once per session (indexing NYC takes seconds)."""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from geo.datum import Datum
from geo.index import PrecinctIndex
from geo.precincts import PrecinctImport, load_precincts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "geo"


def read_collection(name: str) -> dict[str, Any]:
    collection: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return collection


def load(name: str, *, code: str, name_property: str, datum: Datum) -> PrecinctImport:
    return load_precincts(
        read_collection(name), name_property=name_property, code_property=code, datum=datum
    )


@dataclass(frozen=True, slots=True)
class Shootings:
    lons: npt.NDArray[np.float64]
    lats: npt.NDArray[np.float64]
    precincts: tuple[str, ...]


@pytest.fixture(scope="session")
def nyc_precincts() -> PrecinctImport:
    return load(
        "nyc_police_precincts_77.geojson",
        code="Precinct",
        name_property="Precinct",
        datum=Datum.WGS84,
    )


@pytest.fixture(scope="session")
def nyc_index(nyc_precincts: PrecinctImport) -> PrecinctIndex:
    return PrecinctIndex.build(nyc_precincts.precincts)


@pytest.fixture(scope="session")
def london_index() -> PrecinctIndex:
    loaded = load(
        "london_wards_2014_654.geojson", code="GSS_CODE", name_property="NAME", datum=Datum.WGS84
    )
    return PrecinctIndex.build(loaded.precincts)


@pytest.fixture(scope="session")
def election_districts() -> PrecinctImport:
    return load(
        "nyc_election_districts_5199.geojson",
        code="ElectDist",
        name_property="ElectDist",
        datum=Datum.WGS84,
    )


@pytest.fixture(scope="session")
def election_index(election_districts: PrecinctImport) -> PrecinctIndex:
    return PrecinctIndex.build(election_districts.precincts)


@pytest.fixture(scope="session")
def nanjing_gcj02_index() -> PrecinctIndex:
    loaded = load(
        "nanjing_320100_districts_gcj02.geojson",
        code="adcode",
        name_property="name",
        datum=Datum.GCJ02,
    )
    return PrecinctIndex.build(loaded.precincts)


@pytest.fixture(scope="session")
def nanjing_wgs84_index() -> PrecinctIndex:
    loaded = load(
        "nanjing_320100_districts_wgs84.geojson",
        code="adcode",
        name_property="name",
        datum=Datum.WGS84,
    )
    return PrecinctIndex.build(loaded.precincts)


@pytest.fixture(scope="session")
def shootings() -> Shootings:
    with gzip.open(FIXTURES / "nypd_shooting_incidents_2006_2018.csv.gz", "rt") as stream:
        rows = [r for r in csv.DictReader(stream) if r["Longitude"] and r["Latitude"]]
    return Shootings(
        np.array([float(r["Longitude"]) for r in rows]),
        np.array([float(r["Latitude"]) for r in rows]),
        tuple(r["PRECINCT"].strip() for r in rows),
    )
