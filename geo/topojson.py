"""TopoJSON to GeoJSON: national boundary sets are often published as TopoJSON (shared
borders stored once, coordinates quantised), e.g. the Census Bureau's counties in the
``us-atlas`` package. Pure: callers parse the file and pass the dict in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def feature_collection(
    topology: Mapping[str, Any], object_name: str, *, densify: int = 1
) -> dict[str, Any]:
    """The named geometry collection of ``topology`` as a GeoJSON FeatureCollection.

    A geometry's ``id`` becomes the feature's ``id`` property unless the properties have
    one. ``densify`` > 1 puts ``densify - 1`` extra vertices on every arc segment, a
    little off the straight line (a deterministic zig-zag of 1% of the segment), so a
    coarse layer can stand in for a finely digitised one; shared borders stay shared.
    Raises ValueError when the input is not a topology with that object.
    """
    if not isinstance(topology, Mapping) or topology.get("type") != "Topology":
        raise ValueError("not a TopoJSON Topology")
    objects = topology.get("objects")
    if not isinstance(objects, Mapping) or object_name not in objects:
        raise ValueError(f"the topology has no object {object_name!r}")
    arcs = _arcs(topology, densify)
    features = []
    for geometry in objects[object_name].get("geometries", []):
        properties = dict(geometry.get("properties") or {})
        if "id" in geometry:
            properties.setdefault("id", geometry["id"])
        kind = geometry.get("type")
        if kind == "Polygon":
            coordinates: Any = _polygon(geometry["arcs"], arcs)
        elif kind == "MultiPolygon":
            coordinates = [_polygon(p, arcs) for p in geometry["arcs"]]
        else:
            continue
        features.append(
            {
                "type": "Feature",
                "properties": properties,
                "geometry": {"type": kind, "coordinates": coordinates},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _arcs(topology: Mapping[str, Any], densify: int) -> list[FloatArray]:
    transform = topology.get("transform")
    decoded = []
    for arc in topology["arcs"]:
        points = np.asarray(arc, dtype=np.float64)[:, :2]
        if transform is not None:
            points = np.cumsum(points, axis=0) * transform["scale"] + transform["translate"]
        if densify > 1 and len(points) > 1:
            points = _densified(points, densify)
        decoded.append(points)
    return decoded


def _densified(points: FloatArray, factor: int) -> FloatArray:
    start, step = points[:-1], points[1:] - points[:-1]
    t = np.arange(factor) / factor
    normal = np.column_stack((-step[:, 1], step[:, 0]))
    wiggle = 0.01 * np.where(np.arange(factor) % 2 == 1, 1.0, -1.0) * (t > 0)
    dense = (
        start[:, None, :]
        + t[None, :, None] * step[:, None, :]
        + wiggle[None, :, None] * normal[:, None, :]
    )
    return np.vstack((dense.reshape(-1, 2), points[-1:]))


def _ring(indices: Sequence[int], arcs: list[FloatArray]) -> list[list[float]]:
    pieces = []
    for k, i in enumerate(indices):
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        pieces.append(arc if k == 0 else arc[1:])
    ring: list[list[float]] = np.vstack(pieces).tolist()
    return ring


def _polygon(rings: Sequence[Sequence[int]], arcs: list[FloatArray]) -> list[list[list[float]]]:
    return [_ring(r, arcs) for r in rings]
