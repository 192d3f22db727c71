"""The national layer in one process: index build CPU and memory, lookup speed, exactness.

    nice -n 10 .venv/bin/python bench/geo_national.py [--densify 16] [--profile out.prof]

Loads the us-atlas counties densified like ``bench/geofence.py`` (1.04 M vertices at
16x), then prints CPU seconds (``time.process_time``, steadier than wall time on a
shared machine) for loading and for ``PrecinctIndex.build``, the build's peak RSS above
the loaded layer against the built index's RSS, ``to_bytes``/``from_bytes`` CPU, and
lookups on the built index over the mainland's box: ``locate`` p50/p99 per call (CPU
time, then wall time; the garbage collector off), ``locate_many`` points per CPU second,
and agreement of both with shapely's ``covers`` on the original polygons and, when PostGIS
is reachable (``bench/_postgis.py``; ``--no-postgis`` to skip), of ``locate_many`` with
PostGIS ``ST_Covers`` (one GiST-indexed query per point, lowest index on shared
borders). The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import gzip
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _postgis
import numpy as np
import numpy.typing as npt
import psutil
import shapely

from dispatch.infra.malloc import one_arena
from geo.datum import Datum
from geo.index import PrecinctIndex
from geo.precincts import Precinct, load_precincts
from geo.topojson import feature_collection

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "geo"
US_ATLAS = FIXTURES / "us_atlas_3.0.1_counties_10m.topojson.gz"
MAINLAND = (-124.8, 24.5, -66.9, 49.4)
LOCATE_POINTS = 100_000
BULK_POINTS = 1_000_000
AGREEMENT_POINTS = 20_000


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


class _PeakRss:
    """Samples this process's RSS every few milliseconds while in the block."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> _PeakRss:
        self.peak = _rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _load(densify: int) -> tuple[Precinct, ...]:
    with gzip.open(US_ATLAS, "rt", encoding="utf-8") as stream:
        collection = feature_collection(json.load(stream), "counties", densify=densify)
    loaded = load_precincts(collection, name_property="name", code_property="id", datum=Datum.WGS84)
    return loaded.precincts


def _latencies_us(
    index: PrecinctIndex, lons: list[float], lats: list[float], clock: Callable[[], int]
) -> npt.NDArray[np.float64]:
    """Per ``locate`` call, by ``clock`` (ns), less the clock's own median cost."""
    locate = index.locate
    for lon, lat in zip(lons[:2000], lats[:2000], strict=True):
        locate(lon, lat)
    idle = np.empty(10_000)
    for i in range(len(idle)):
        start = clock()
        idle[i] = clock() - start
    spent = np.empty(len(lons))
    gc.disable()
    try:
        for i, (lon, lat) in enumerate(zip(lons, lats, strict=True)):
            start = clock()
            locate(lon, lat)
            spent[i] = clock() - start
    finally:
        gc.enable()
    return np.asarray((spent - np.median(idle)) / 1000.0, dtype=np.float64)


def _print_latencies(
    name: str,
    index: PrecinctIndex,
    lons: npt.NDArray[np.float64],
    lats: npt.NDArray[np.float64],
    figures: dict[str, Any],
) -> None:
    for clock, kind in ((time.thread_time_ns, "cpu"), (time.perf_counter_ns, "wall")):
        latencies = _latencies_us(index, lons.tolist(), lats.tolist(), clock)
        p50, p90, p99 = (float(v) for v in np.percentile(latencies, [50, 90, 99]))
        prefix = "locate" if name == "national" else f"{name}_locate"
        figures[f"{prefix}_{kind}_p50_us"] = round(p50, 2)
        figures[f"{prefix}_{kind}_p99_us"] = round(p99, 2)
        print(
            f"{name} locate ({kind} time per call): p50 {p50:.2f} us, p90 {p90:.2f} us, "
            f"p99 {p99:.2f} us over {LOCATE_POINTS:,} points"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--densify", type=int, default=16)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the build here")
    parser.add_argument("--no-lookups", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="build threads, as `micro110 precincts import` uses (default: every core)",
    )
    parser.add_argument(
        "--postgis",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also check agreement with PostGIS ST_Covers (when PostGIS is reachable)",
    )
    parser.add_argument(
        "--city",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time locate on the NYC precincts, for comparison on the same machine",
    )
    args = parser.parse_args()
    figures: dict[str, Any] = {"densify": args.densify}

    if args.workers > 1:
        one_arena()  # as the import command does before its threads start
    figures["workers"] = args.workers
    cpu = time.process_time()
    precincts = _load(args.densify)
    figures["load_cpu_s"] = round(time.process_time() - cpu, 2)
    vertices = int(shapely.get_num_coordinates([p.geometry for p in precincts]).sum())
    figures["polygons"], figures["vertices"] = len(precincts), vertices
    print(f"{len(precincts)} precincts, {vertices:,} vertices; load {figures['load_cpu_s']} s CPU")

    gc.collect()
    before = _rss()
    profile = cProfile.Profile() if args.profile else None
    with _PeakRss() as peak:
        cpu = time.process_time()
        if profile is not None:
            profile.enable()
        index = PrecinctIndex.build(precincts, workers=args.workers)
        if profile is not None:
            profile.disable()
        figures["build_cpu_s"] = round(time.process_time() - cpu, 2)
    if profile is not None:
        profile.dump_stats(args.profile)
    gc.collect()
    after = _rss()
    grown, peak_grown = (after - before) / 2**20, (peak.peak - before) / 2**20
    figures["index_rss_mb"] = round(grown, 1)
    figures["build_peak_mb"] = round(peak_grown, 1)
    figures["peak_ratio"] = round(peak_grown / max(grown, 1e-9), 2)
    print(
        f"build: {figures['build_cpu_s']} s CPU; index +{grown:.0f} MB RSS, build peak"
        f" +{peak_grown:.0f} MB ({figures['peak_ratio']}x)"
    )
    cpu = time.process_time()
    blob = index.to_bytes()
    figures["pack_cpu_s"] = round(time.process_time() - cpu, 2)
    cpu = time.process_time()
    PrecinctIndex.from_bytes(blob)
    figures["load_index_cpu_s"] = round(time.process_time() - cpu, 2)
    figures["packed_mb"] = round(len(blob) / 2**20, 1)
    print(
        f"packed {figures['packed_mb']} MB: to_bytes {figures['pack_cpu_s']} s CPU, "
        f"from_bytes {figures['load_index_cpu_s']} s CPU"
    )
    del blob
    if args.no_lookups:
        print(json.dumps(figures))
        return

    rng = np.random.default_rng(1)
    lons = rng.uniform(MAINLAND[0], MAINLAND[2], LOCATE_POINTS)
    lats = rng.uniform(MAINLAND[1], MAINLAND[3], LOCATE_POINTS)
    _print_latencies("national", index, lons, lats, figures)
    if args.city:
        # The same clocks on a city layer, under the same load, for comparison.
        with (FIXTURES / "nyc_police_precincts_77.geojson").open(encoding="utf-8") as stream:
            city = load_precincts(
                json.load(stream), name_property="Precinct", code_property="Precinct",
                datum=Datum.WGS84,
            )  # fmt: skip
        city_index = PrecinctIndex.build(city.precincts)
        minx, miny, maxx, maxy = shapely.total_bounds([p.geometry for p in city.precincts])
        city_lons = rng.uniform(minx, maxx, LOCATE_POINTS)
        city_lats = rng.uniform(miny, maxy, LOCATE_POINTS)
        _print_latencies("nyc_precincts", city_index, city_lons, city_lats, figures)

    rng = np.random.default_rng(2)
    bulk_lons = rng.uniform(MAINLAND[0], MAINLAND[2], BULK_POINTS)
    bulk_lats = rng.uniform(MAINLAND[1], MAINLAND[3], BULK_POINTS)
    rates = []
    for _ in range(3):
        cpu = time.process_time()
        index.locate_many(bulk_lons, bulk_lats)
        rates.append(BULK_POINTS / (time.process_time() - cpu))
    figures["bulk_points_per_cpu_s"] = round(float(np.median(rates)))
    print(f"locate_many: {np.median(rates) / 1e6:.2f} M points per CPU second")

    sample_lons, sample_lats = lons[:AGREEMENT_POINTS], lats[:AGREEMENT_POINTS]
    geometries = np.array([p.geometry for p in precincts], dtype=object)
    shapely.prepare(geometries)
    tree = shapely.STRtree(geometries)
    points = shapely.points(sample_lons, sample_lats)
    point_idx, poly_idx = tree.query(points, predicate="covered_by")
    expected = np.full(AGREEMENT_POINTS, -1)
    order = np.lexsort((poly_idx, point_idx))
    point_idx, poly_idx = point_idx[order], poly_idx[order]
    first = np.ones(len(point_idx), dtype=bool)
    first[1:] = point_idx[1:] != point_idx[:-1]
    expected[point_idx[first]] = poly_idx[first]
    bulk = index.locate_many(sample_lons, sample_lats)
    codes = {code: i for i, code in enumerate(index.codes)}
    scalar = np.array(
        [
            codes.get(index.locate(lon, lat).precinct or "", -1)
            for lon, lat in zip(sample_lons.tolist(), sample_lats.tolist(), strict=True)
        ]
    )
    figures["agreement_bulk"] = float(np.mean(bulk == expected))
    figures["agreement_locate"] = float(np.mean(scalar == expected))
    print(
        f"agreement with shapely covers on {AGREEMENT_POINTS:,} points: locate_many "
        f"{figures['agreement_bulk']:.4f}, locate {figures['agreement_locate']:.4f}"
    )
    if args.postgis:
        agreement, p50 = asyncio.run(_postgis_agreement(precincts, sample_lons, sample_lats, bulk))
        figures["agreement_postgis"], figures["postgis_p50_us"] = agreement, p50
        if agreement is not None:
            print(
                f"agreement with PostGIS ST_Covers on {AGREEMENT_POINTS:,} points: locate_many"
                f" {agreement:.4f} (PostGIS p50 {p50} us per query, client round trip)"
            )
    print(json.dumps(figures))


async def _postgis_agreement(
    precincts: tuple[Precinct, ...],
    lons: npt.NDArray[np.float64],
    lats: npt.NDArray[np.float64],
    found: npt.NDArray[np.int32],
) -> tuple[float | None, float | None]:
    async with _postgis.postgis() as conn:
        if conn is None:
            return None, None
        p50, agreement = await _postgis.compare(
            conn, "bench_national", precincts, lons.tolist(), lats.tolist(), found.tolist()
        )
        return round(agreement, 4), round(p50, 1)


if __name__ == "__main__":
    main()
