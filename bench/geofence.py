"""Point-in-precinct speed: the geo/ index against PostGIS, on real boundary files.

    .venv/bin/python bench/geofence.py [--plot out.png]

For each dataset: import and build the index; time ``locate`` one call at a time on
100k random points drawn uniformly over the dataset's bounding box (so the natural mix
of inside and out-of-jurisdiction points, the latter with nearest precinct and distance);
time ``locate_many`` on 1M points; and, when a PostGIS server is reachable, run the same
points one ``ST_Covers`` query each against a GiST-indexed table (the round trip a
service would pay) and check that both give the same precinct.

The national dataset (``--national``, on by default) is the Census Bureau's 3,231 US
counties from the ``us-atlas`` npm package (TopoJSON), every arc densified 16x with a
small zig-zag to 1.04 M vertices (``geo.topojson``), the scale of China's 2,877
counties. It goes through the real path: two ``micro110 serve`` nodes run (the first
with the demo city), alarms are posted to them ten times a second, and ``micro110
precincts import --replace`` imports the layer; ``build_s`` is the command's wall time
(it returns once both nodes serve the import; ``commit_s`` to its commit and
``served_s`` from there, by the command's own account), ``swap_worst_ms`` the slowest alarm
answer meanwhile, ``index_rss_mb`` the larger node's whole RSS afterwards,
``import_peak_rss_mb`` the importing process's peak. Then a corrected edition of the
layer (one county fewer) replaces it the same way, a national index replacing another:
``again_build_s``, ``again_swap_worst_ms``, ``again_index_rss_mb``. Lookups are then
timed on the index the import stored, over the mainland's bounding box.

PostGIS: see ``bench/_postgis.py`` (DATABASE_URL, else the local server; a scratch
database is created and dropped again). Without PostGIS the comparison is reported as
null. The last lines are one JSON object per dataset.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _postgis
import aiohttp
import asyncpg
import numpy as np
import numpy.typing as npt
import psutil
import shapely
from _harness import Cluster, cluster, new_citizen

from geo.datum import Datum
from geo.index import PrecinctIndex
from geo.precincts import load_precincts
from geo.topojson import feature_collection
from tests.serving import child_env

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "geo"
LOCATE_POINTS = 100_000
BULK_POINTS = 1_000_000
POSTGIS_POINTS = 3_000
GOALS = {"p50_us": 5.0, "p99_us": 30.0, "bulk_per_s": 1_000_000.0, "postgis_speedup": 20.0}


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    file: str
    code_property: str
    name_property: str


DATASETS = (
    Dataset("nyc_precincts", "nyc_police_precincts_77.geojson", "Precinct", "Precinct"),
    Dataset("london_wards", "london_wards_2014_654.geojson", "GSS_CODE", "NAME"),
    Dataset(
        "nyc_election_districts", "nyc_election_districts_5199.geojson", "ElectDist", "ElectDist"
    ),
)


@dataclass(frozen=True, slots=True)
class Result:
    dataset: str
    polygons: int
    locate_p50_us: float
    locate_p99_us: float
    bulk_points_per_s: float
    postgis_p50_us: float | None
    agreement: float | None


@dataclass(frozen=True, slots=True)
class National:
    vertices: int
    build_s: float
    # The command's own figures: start to commit, and commit to served on every node.
    commit_s: float
    served_s: float
    index_rss_mb: float
    swap_worst_ms: float
    import_peak_rss_mb: float
    node_rss_before_mb: float
    packed_index_mb: float
    alarms_during_swap: int
    served: str
    # The same layer imported again, corrected (one county fewer): national replacing
    # national.
    again_build_s: float
    again_swap_worst_ms: float
    again_index_rss_mb: float


NATIONAL = "us_counties_x16"
US_ATLAS = FIXTURES / "us_atlas_3.0.1_counties_10m.topojson.gz"
DENSIFY = 16
MAINLAND = (-124.8, 24.5, -66.9, 49.4)
# --import-niceness: the import command's MICRO110_IMPORT_NICENESS (None: its default).
IMPORT_NICENESS: int | None = None


def _points(
    index: PrecinctIndex,
    count: int,
    seed: int,
    bounds: tuple[float, float, float, float] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    minx, miny, maxx, maxy = bounds or shapely.total_bounds([p.geometry for p in index.precincts])
    rng = np.random.default_rng(seed)
    return rng.uniform(minx, maxx, count), rng.uniform(miny, maxy, count)


def _locate_latencies_us(
    index: PrecinctIndex, lons: Sequence[float], lats: Sequence[float]
) -> npt.NDArray[np.float64]:
    locate = index.locate
    clock = time.perf_counter_ns
    for lon, lat in zip(lons[:2000], lats[:2000], strict=True):  # warm caches
        locate(lon, lat)
    spent = np.empty(len(lons))
    for i, (lon, lat) in enumerate(zip(lons, lats, strict=True)):
        start = clock()
        locate(lon, lat)
        spent[i] = clock() - start
    return spent / 1000.0


def _bulk_points_per_s(
    index: PrecinctIndex, bounds: tuple[float, float, float, float] | None = None
) -> float:
    lons, lats = _points(index, BULK_POINTS, seed=2, bounds=bounds)
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        index.locate_many(lons, lats)
        rates.append(BULK_POINTS / (time.perf_counter() - start))
    return statistics.median(rates)


async def _run_dataset(dataset: Dataset, postgis: asyncpg.Connection | None) -> Result:
    collection = json.loads((FIXTURES / dataset.file).read_text(encoding="utf-8"))
    start = time.perf_counter()
    loaded = load_precincts(
        collection,
        name_property=dataset.name_property,
        code_property=dataset.code_property,
        datum=Datum.WGS84,
    )
    imported = time.perf_counter() - start
    start = time.perf_counter()
    index = PrecinctIndex.build(loaded.precincts)
    built = time.perf_counter() - start
    print(f"{dataset.name}: {len(index)} precincts; import {imported:.2f} s, build {built:.2f} s")
    print(f"  {loaded.report[0]}")
    return await _lookups(dataset.name, index, postgis)


async def _lookups(
    name: str,
    index: PrecinctIndex,
    postgis: asyncpg.Connection | None,
    bounds: tuple[float, float, float, float] | None = None,
) -> Result:
    lons, lats = _points(index, LOCATE_POINTS, seed=1, bounds=bounds)
    lon_list, lat_list = lons.tolist(), lats.tolist()
    latencies = _locate_latencies_us(index, lon_list, lat_list)
    answers = index.locate_many(lons, lats)
    p50, p99 = (float(v) for v in np.percentile(latencies, [50, 99]))
    print(
        f"  locate: p50 {p50:.2f} us, p90 {np.percentile(latencies, 90):.2f} us, "
        f"p99 {p99:.2f} us over {LOCATE_POINTS:,} points "
        f"({float(np.mean(answers >= 0)):.0%} inside a precinct)"
    )
    bulk = _bulk_points_per_s(index, bounds)
    print(f"  locate_many: {bulk / 1e6:.1f} M points/s over {BULK_POINTS:,} points")
    postgis_p50 = agreement = None
    if postgis is not None:
        postgis_p50, agreement = await _postgis.compare(
            postgis,
            f"bench_{name}",
            index.precincts,
            lon_list[:POSTGIS_POINTS],
            lat_list[:POSTGIS_POINTS],
            answers[:POSTGIS_POINTS].tolist(),
        )
        print(
            f"  postgis ST_Covers: p50 {postgis_p50:.1f} us per query over {POSTGIS_POINTS:,}"
            f" points ({postgis_p50 / p50:.0f}x locate p50), agreement {agreement:.2%}"
        )
    return Result(
        name,
        len(index),
        round(p50, 3),
        round(p99, 3),
        round(bulk),
        None if postgis_p50 is None else round(postgis_p50, 1),
        None if agreement is None else round(agreement, 4),
    )


def _alarm(lon: float, lat: float) -> dict[str, Any]:
    return {
        "tag": "robbery", "lon": lon, "lat": lat, "accuracy_m": 10.0, "datum": "wgs84",
        "client_time": datetime.now(UTC).isoformat(), "idempotency_key": str(uuid.uuid4()),
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Imported:
    """One import into the running nodes while alarms come in."""

    build_s: float
    served_s: float
    worst_ms: float
    alarms: int
    node_rss_mb: float
    peak_rss_mb: float
    served: str


async def _import(
    nodes: Cluster, http: aiohttp.ClientSession, tokens: list[str], geojson: Path
) -> _Imported:
    """`micro110 precincts import --replace geojson` while alarms are posted to the nodes
    ten times a second; prints the command's account and the slowest alarms."""
    answers: list[float] = []
    sent_at: list[float] = []
    rng = np.random.default_rng(4)

    async def alarms() -> None:
        n = 0
        while True:
            url, token = nodes.urls[n % 2], tokens[n % 2]
            lon = float(rng.uniform(MAINLAND[0], MAINLAND[2]))
            lat = float(rng.uniform(MAINLAND[1], MAINLAND[3]))
            start = time.perf_counter()
            async with http.post(
                f"{url}/api/alarms", json=_alarm(lon, lat),
                headers={"Authorization": f"Bearer {token}"},
            ) as response:  # fmt: skip
                await response.read()
                if response.status != 201:
                    raise RuntimeError(f"alarm answered {response.status}")
            answers.append(time.perf_counter() - start)
            sent_at.append(start)
            n += 1
            await asyncio.sleep(0.1)

    env = child_env({"DATABASE_URL": nodes.database_url}, external=True)
    if IMPORT_NICENESS is not None:
        env["MICRO110_IMPORT_NICENESS"] = str(IMPORT_NICENESS)
    sender = asyncio.create_task(alarms())
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dispatch.cli", "precincts", "import", str(geojson),
        "--name-property", "name", "--code-property", "id", "--replace",
        "--wait-s", "300",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    importer = psutil.Process(proc.pid)
    peak = 0
    assert proc.stdout is not None
    reading = asyncio.create_task(proc.stdout.read())
    while not reading.done():
        with contextlib.suppress(psutil.Error):
            peak = max(peak, importer.memory_info().rss)
        await asyncio.sleep(0.05)
    out = (await reading).decode()
    await proc.wait()
    build_s = time.perf_counter() - start
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sender
    if proc.returncode != 0:
        raise RuntimeError(f"import failed: {out}")
    served = next(line for line in out.splitlines() if "served by" in line)
    print(f"  {served}")
    slowest = sorted(range(len(answers)), key=lambda i: -answers[i])[:5]
    print(
        "  slowest alarms (ms, sent s after the import started): "
        + ", ".join(f"{answers[i] * 1000:.1f} at {sent_at[i] - start:+.2f}" for i in slowest)
    )
    # The command's own account of where its time went (read, validate, ...).
    seconds = next(line for line in out.splitlines() if "seconds" in line)
    print("  " + seconds)
    rss = max(psutil.Process(node.proc.pid).memory_info().rss for node in nodes.nodes)
    return _Imported(
        build_s=round(build_s, 2),
        served_s=float(seconds.rsplit(" served ", 1)[1]),
        worst_ms=round(max(answers) * 1000.0, 1),
        alarms=len(answers),
        node_rss_mb=round(rss / 2**20, 1),
        peak_rss_mb=round(peak / 2**20, 1),
        served=served.split(" served by ", 1)[1],
    )


async def _national(postgis: asyncpg.Connection | None) -> tuple[Result, National]:
    """Import the national layer into two running nodes while alarms come in, then a
    corrected edition of it (one county fewer): a national index replacing another."""
    with gzip.open(US_ATLAS, "rt", encoding="utf-8") as stream:
        collection = feature_collection(json.load(stream), "counties", densify=DENSIFY)
    vertices = sum(
        len(ring)
        for feature in collection["features"]
        for polygon in (
            [feature["geometry"]["coordinates"]]
            if feature["geometry"]["type"] == "Polygon"
            else feature["geometry"]["coordinates"]
        )
        for ring in polygon
    )
    print(f"{NATIONAL}: {len(collection['features'])} counties, {vertices:,} vertices")
    with tempfile.TemporaryDirectory(prefix="m110geo-") as tmp:
        geojson = Path(tmp) / "us_counties.geojson"
        geojson.write_text(json.dumps(collection), encoding="utf-8")
        corrected = Path(tmp) / "us_counties_corrected.geojson"
        collection["features"] = collection["features"][:-1]
        corrected.write_text(json.dumps(collection), encoding="utf-8")
        del collection
        async with cluster(nodes=2) as nodes, aiohttp.ClientSession() as http:
            tokens = [
                await new_citizen(http, url, f"bench-swap-{n}") for n, url in enumerate(nodes.urls)
            ]
            rss_before = max(
                psutil.Process(node.proc.pid).memory_info().rss for node in nodes.nodes
            )
            first = await _import(nodes, http, tokens, geojson)
            print("  then the corrected edition, replacing it:")
            again = await _import(nodes, http, tokens, corrected)
            async with nodes.pool.acquire() as conn:
                blob = await conn.fetchval(
                    "SELECT index FROM precinct_index_blobs ORDER BY import_id DESC LIMIT 1"
                )
    national = National(
        vertices=vertices,
        build_s=first.build_s,
        commit_s=round(first.build_s - first.served_s, 2),
        served_s=first.served_s,
        index_rss_mb=first.node_rss_mb,
        swap_worst_ms=first.worst_ms,
        import_peak_rss_mb=first.peak_rss_mb,
        node_rss_before_mb=round(rss_before / 2**20, 1),
        packed_index_mb=round(len(blob) / 2**20, 1),
        alarms_during_swap=first.alarms,
        served=first.served,
        again_build_s=again.build_s,
        again_swap_worst_ms=again.worst_ms,
        again_index_rss_mb=again.node_rss_mb,
    )
    print(
        f"  import to served on both nodes {national.build_s} s (committed after"
        f" {national.commit_s} s, served {national.served_s} s later); worst alarm meanwhile "
        f"{national.swap_worst_ms} ms over {first.alarms}; node RSS {national.index_rss_mb} MB;"
        f" importer peak RSS {national.import_peak_rss_mb} MB; packed index"
        f" {national.packed_index_mb} MB"
    )
    print(
        f"  corrected edition: import to served {again.build_s} s, worst alarm "
        f"{again.worst_ms} ms over {again.alarms}; node RSS {again.node_rss_mb} MB"
    )
    index = PrecinctIndex.from_bytes(blob)
    return await _lookups(NATIONAL, index, postgis, MAINLAND), national


async def _run(cities: bool, national: bool) -> tuple[list[Result], National | None]:
    async with _postgis.postgis() as conn:
        results = [await _run_dataset(dataset, conn) for dataset in DATASETS if cities]
        if not national:
            return results, None
        result, figures = await _national(conn)
        return [*results, result], figures


def _goals(results: Sequence[Result]) -> None:
    for r in results:
        misses = []
        if r.locate_p50_us > GOALS["p50_us"]:
            misses.append(f"p50 {r.locate_p50_us} us > {GOALS['p50_us']}")
        if r.locate_p99_us > GOALS["p99_us"]:
            misses.append(f"p99 {r.locate_p99_us} us > {GOALS['p99_us']}")
        if r.bulk_points_per_s < GOALS["bulk_per_s"]:
            misses.append(f"bulk {r.bulk_points_per_s} points/s < {GOALS['bulk_per_s']:,.0f}")
        if r.postgis_p50_us is not None:
            speedup = r.postgis_p50_us / r.locate_p50_us
            if speedup < GOALS["postgis_speedup"]:
                misses.append(f"only {speedup:.0f}x PostGIS")
        print(f"goals {r.dataset}: {'met' if not misses else 'MISSED: ' + '; '.join(misses)}")


def _plot(results: Sequence[Result], path: Path) -> None:
    from _plot import grouped_bars, matplotlib_installed

    if not matplotlib_installed():
        return
    grouped_bars(
        path,
        title="Point in precinct: one lookup (µs, log scale)",
        groups=[r.dataset for r in results],
        series={
            "geo locate p50": [r.locate_p50_us for r in results],
            "geo locate p99": [r.locate_p99_us for r in results],
            "PostGIS ST_Covers p50": [r.postgis_p50_us for r in results],
        },
        ylabel="microseconds per point",
        log=True,
        goal=GOALS["p50_us"],
    )
    print(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", type=Path, help="write a bar chart (PNG) here")
    parser.add_argument(
        "--national",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also import the national layer into running nodes (a few minutes)",
    )
    parser.add_argument(
        "--import-niceness", type=int, default=None,
        help="the import command's MICRO110_IMPORT_NICENESS (default: its own, 10)",
    )  # fmt: skip
    parser.add_argument(
        "--cities",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the city datasets (NYC, London)",
    )
    args = parser.parse_args()
    global IMPORT_NICENESS
    IMPORT_NICENESS = args.import_niceness
    results, national = asyncio.run(_run(args.cities, args.national))
    _goals(results)
    if national is not None:
        misses = []
        if national.build_s >= 10.0:
            misses.append(f"import to served {national.build_s} s >= 10")
        if national.served_s >= 5.0:
            misses.append(f"nodes served {national.served_s} s after the commit >= 5")
        if national.index_rss_mb >= 600.0:
            misses.append(f"node RSS {national.index_rss_mb} MB >= 600")
        if national.swap_worst_ms > 100.0:
            misses.append(f"worst alarm during the swap {national.swap_worst_ms} ms > 100")
        if national.again_index_rss_mb >= 600.0:
            misses.append(f"node RSS after the corrected edition {national.again_index_rss_mb} MB")
        if national.again_swap_worst_ms > 100.0:
            misses.append(f"worst alarm during the second swap {national.again_swap_worst_ms} ms")
        print(f"goals {NATIONAL} swap: {'met' if not misses else 'MISSED: ' + '; '.join(misses)}")
    if args.plot is not None:
        _plot(results, args.plot)
    for result in results:
        extra = asdict(national) if national is not None and result.dataset == NATIONAL else {}
        print(json.dumps(asdict(result) | extra, ensure_ascii=False))


if __name__ == "__main__":
    main()
