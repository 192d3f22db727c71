"""Load precincts from a parsed GeoJSON FeatureCollection.

Callers read and parse the file; this module only judges and converts what it is given.
Every feature either becomes a ``Precinct`` (possibly repaired, which is reported) or
is rejected with a message naming it by index, code and name. Overlaps between
precincts are resolved as described in ``geo.overlaps`` and reported with their area.
Accepted precincts come back ordered by code (numeric codes numerically), which is also
the order that decides points lying exactly on a shared border.

Loading a large file is CPU work of a second or more: run it in an executor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from geo.codes import code_sort_key, text_property
from geo.datum import Datum
from geo.issues import ImportIssue, IssueKind, feature_label
from geo.overlaps import resolve_overlaps
from geo.projection import LocalProjection
from geo.validate import GeometryFinding, Polygonal, Progress, polygonal_geometries

# Overlaps smaller than this are digitising noise along shared borders: resolved like
# any overlap, but summed into one line rather than listed pair by pair.
_SLIVER_M2 = 1.0


@dataclass(frozen=True, slots=True)
class Precinct:
    """``geometry`` is a valid Polygon or MultiPolygon in WGS84 longitude/latitude."""

    code: str
    name: str
    geometry: Polygonal


@dataclass(frozen=True, slots=True)
class PrecinctImport:
    precincts: tuple[Precinct, ...]
    issues: tuple[ImportIssue, ...]
    feature_count: int

    @property
    def rejections(self) -> tuple[ImportIssue, ...]:
        return tuple(issue for issue in self.issues if issue.rejected)

    @property
    def rejected(self) -> int:
        """How many features were left out."""
        return len({issue.feature_index for issue in self.rejections})

    @property
    def repairs(self) -> tuple[ImportIssue, ...]:
        return tuple(issue for issue in self.issues if issue.kind is IssueKind.REPAIRED)

    @property
    def overlaps(self) -> tuple[ImportIssue, ...]:
        return tuple(i for i in self.issues if i.kind is IssueKind.OVERLAP_RESOLVED)

    @property
    def report(self) -> tuple[str, ...]:
        """A summary line, then one line per issue, for an operator to read."""
        summary = (
            f"imported {len(self.precincts)} of {self.feature_count} features: "
            f"{len(self.repairs)} repaired, {self.rejected} rejected, "
            f"{len(self.overlaps)} overlaps of 1 m² or more resolved"
        )
        return (summary, *(issue.message for issue in self.issues))


@dataclass(frozen=True, slots=True)
class _Accepted:
    index: int
    code: str
    name: str
    geometry: Polygonal


def load_precincts(
    collection: Mapping[str, Any],
    *,
    name_property: str,
    code_property: str,
    datum: Datum,
    progress: Progress | None = None,
    workers: int = 1,
) -> PrecinctImport:
    """Judge every feature of ``collection`` (coordinates in ``datum``).

    Codes and names are read as text from the two properties (which may be the same).
    When two features share a code, the first one in the file with a usable geometry
    keeps it. ``progress(done, total)`` (in features) is called about a hundred times
    while the geometries are read. ``workers``: threads for judging and repairing
    geometries (``geo.validate``) and finding overlaps (``geo.overlaps``). Raises
    ValueError only when the input is not a FeatureCollection at all.
    """
    features = _features(collection)
    issues: list[ImportIssue] = []
    labelled: list[tuple[int, str, str, object]] = []
    for index, feature in enumerate(features):
        found = _labelled(index, feature, name_property, code_property, issues)
        if found is not None:
            labelled.append(found)

    def read(count: int, _: int) -> None:
        # In features of the file: the reading of the geometries is the slow part.
        assert progress is not None
        done = len(features) if count == len(labelled) else labelled[count - 1][0] + 1
        progress(done, len(features))

    findings = polygonal_geometries(
        [g for *_, g in labelled],
        datum,
        workers=workers,
        progress=None if progress is None else read,
    )
    if progress is not None and not labelled:
        progress(len(features), len(features))
    accepted: dict[str, _Accepted] = {}
    for (index, code, name, _), finding in zip(labelled, findings, strict=True):
        candidate = _judged(index, code, name, finding, issues)
        if candidate is not None:
            earlier = accepted.get(candidate.code)
            if earlier is None:
                accepted[candidate.code] = candidate
            else:
                label = feature_label(index, candidate.code, candidate.name)
                issues.append(
                    ImportIssue(
                        IssueKind.DUPLICATE_CODE,
                        index,
                        candidate.code,
                        f"{label}: rejected, code {candidate.code!r} is already used by "
                        f"feature #{earlier.index}, which was kept",
                    )
                )
    ordered = sorted(accepted.values(), key=lambda a: code_sort_key(a.code))
    precincts = _resolve(ordered, issues, workers)
    issues.sort(key=lambda i: (i.feature_index is None, i.feature_index or 0))
    return PrecinctImport(tuple(precincts), tuple(issues), len(features))


def geojson_texts(geometries: Sequence[BaseGeometry]) -> list[str]:
    """Each geometry as GeoJSON text, for a jsonb column. GEOS writes the shortest
    decimal that reads back to the same double, so the coordinates round-trip exactly;
    on a national layer (a million vertices) this takes 0.3 s where building the nested
    Python lists for ``json.dumps`` took 1.9 s."""
    return [str(text) for text in shapely.to_geojson(list(geometries)).tolist()]


def _features(collection: object) -> Sequence[object]:
    if isinstance(collection, Mapping) and collection.get("type") == "FeatureCollection":
        features = collection.get("features")
        if isinstance(features, list):
            return features
    raise ValueError("precincts must be a GeoJSON FeatureCollection with a features list")


def _labelled(
    index: int,
    feature: object,
    name_property: str,
    code_property: str,
    issues: list[ImportIssue],
) -> tuple[int, str, str, object] | None:
    """The feature's index, code, name and GeoJSON geometry, or None (with its issue)."""
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        label = feature_label(index, None, None)
        issues.append(
            ImportIssue(IssueKind.NOT_A_FEATURE, index, None, f"{label}: rejected, not a Feature")
        )
        return None
    properties = feature.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    code = text_property(properties.get(code_property))
    name = text_property(properties.get(name_property))
    label = feature_label(index, code, name)
    missing = [p for p, v in ((code_property, code), (name_property, name)) if v is None]
    if missing:
        wanted = " and ".join(repr(p) for p in dict.fromkeys(missing))
        message = f"{label}: rejected, property {wanted} is missing or not text or a number"
        issues.append(ImportIssue(IssueKind.MISSING_PROPERTY, index, code, message))
        return None
    assert code is not None
    assert name is not None
    return index, code, name, feature.get("geometry")


def _judged(
    index: int, code: str, name: str, finding: GeometryFinding, issues: list[ImportIssue]
) -> _Accepted | None:
    label = feature_label(index, code, name)
    if finding.geometry is None:
        assert finding.kind is not None
        message = f"{label}: rejected, {finding.detail}"
        issues.append(ImportIssue(finding.kind, index, code, message))
        return None
    if finding.kind is IssueKind.REPAIRED:
        message = f"{label}: repaired, {finding.detail}; kept the polygonal part"
        issues.append(ImportIssue(IssueKind.REPAIRED, index, code, message))
    return _Accepted(index, code, name, finding.geometry)


def _resolve(ordered: list[_Accepted], issues: list[ImportIssue], workers: int) -> list[Precinct]:
    if not ordered:
        return []
    bounds = shapely.total_bounds([a.geometry for a in ordered])
    projection = LocalProjection.for_bounds(tuple(float(b) for b in bounds))  # type: ignore[arg-type]
    resolution = resolve_overlaps(
        [a.geometry for a in ordered], [a.code for a in ordered], projection, workers=workers
    )
    slivers = [o for o in resolution.overlaps if o.area_m2 < _SLIVER_M2]
    for overlap in resolution.overlaps:
        if overlap.area_m2 < _SLIVER_M2:
            continue
        keeper, loser = ordered[overlap.keeper], ordered[overlap.loser]
        message = (
            f"{feature_label(loser.index, loser.code, loser.name)} overlaps "
            f"{feature_label(keeper.index, keeper.code, keeper.name)} by "
            f"{overlap.area_m2:,.1f} m²: the overlap stays with the smaller, {keeper.code!r}"
        )
        issues.append(
            ImportIssue(
                IssueKind.OVERLAP_RESOLVED,
                loser.index,
                loser.code,
                message,
                other_code=keeper.code,
                area_m2=overlap.area_m2,
            )
        )
    if slivers:
        total = sum(o.area_m2 for o in slivers)
        message = (
            f"{len(slivers)} sliver(s) under {_SLIVER_M2:g} m² between neighbouring precincts "
            f"({total:.2f} m² in all, digitising noise) were resolved by the same rule"
        )
        issues.append(ImportIssue(IssueKind.SLIVERS_RESOLVED, None, None, message, area_m2=total))
    precincts = []
    for accepted, geometry in zip(ordered, resolution.geometries, strict=True):
        if geometry is None:
            label = feature_label(accepted.index, accepted.code, accepted.name)
            message = f"{label}: rejected, smaller precincts overlapping it cover all of it"
            issues.append(
                ImportIssue(IssueKind.COVERED_BY_OTHERS, accepted.index, accepted.code, message)
            )
        else:
            precincts.append(Precinct(accepted.code, accepted.name, geometry))
    return precincts
