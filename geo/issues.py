"""What a precinct import found wrong with its input, feature by feature."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class IssueKind(StrEnum):
    REPAIRED = "repaired"
    OVERLAP_RESOLVED = "overlap_resolved"
    SLIVERS_RESOLVED = "slivers_resolved"
    NOT_A_FEATURE = "not_a_feature"
    MISSING_PROPERTY = "missing_property"
    DUPLICATE_CODE = "duplicate_code"
    NOT_POLYGONAL = "not_polygonal"
    MALFORMED_GEOMETRY = "malformed_geometry"
    NOTHING_POLYGONAL_LEFT = "nothing_polygonal_left"
    COVERED_BY_OTHERS = "covered_by_others"


# Which findings cost the feature its place in the import; the rest are notes about
# what was changed to accept it.
REJECTING: frozenset[IssueKind] = frozenset(
    {
        IssueKind.NOT_A_FEATURE,
        IssueKind.MISSING_PROPERTY,
        IssueKind.DUPLICATE_CODE,
        IssueKind.NOT_POLYGONAL,
        IssueKind.MALFORMED_GEOMETRY,
        IssueKind.NOTHING_POLYGONAL_LEFT,
        IssueKind.COVERED_BY_OTHERS,
    }
)


@dataclass(frozen=True, slots=True)
class ImportIssue:
    """One finding. ``feature_index`` is the position in the FeatureCollection; for an
    overlap, ``other_code`` is the second precinct and ``area_m2`` the shared area."""

    kind: IssueKind
    feature_index: int | None
    code: str | None
    message: str
    other_code: str | None = None
    area_m2: float | None = None

    @property
    def rejected(self) -> bool:
        return self.kind in REJECTING


def feature_label(index: int, code: str | None, name: str | None) -> str:
    """How every message names a feature, so operators can find it in the file."""
    parts = [f"code {code!r}" if code is not None else "no code"]
    if name is not None and name != code:
        parts.append(f"name {name!r}")
    return f"feature #{index} ({', '.join(parts)})"
