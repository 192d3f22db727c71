"""Which reports may be the same incident: near in space and time, compatible tags.

Only ever a suggestion for a dispatcher; nothing is merged automatically.
"""

from __future__ import annotations

from types import MappingProxyType

_GROUP = MappingProxyType(
    {
        "kidnapping": "violence",
        "robbery": "violence",
        "assault": "violence",
        "domestic_violence": "violence",
        "suspicious": "violence",  # a "suspicious" report often is the violence seen early
        "fire": "fire",
        "medical": "injury",
        "traffic_accident": "injury",
    }
)
# A report tagged "other" (or an unknown new tag) may be about anything.
_WILDCARD = "other"


def compatible_tags(a: str, b: str) -> bool:
    if a == b or _WILDCARD in (a, b):
        return True
    group_a, group_b = _GROUP.get(a), _GROUP.get(b)
    return group_a is not None and group_a == group_b


def compatible_with(tag: str, known: frozenset[str]) -> list[str]:
    return sorted(t for t in known if compatible_tags(tag, t))
