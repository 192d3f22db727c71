"""Queue priority: a virtual arrival time, lowest first.

    score = received_at - credit

Credit (seconds) comes from the tag's severity, the reporter's verification level
and the channel, less a penalty for the reporter's record of false alarms.  Credit
is bounded, so a report is overtaken only by reports that arrived at most
`max_overtake_s` after it: every report ages into first place, nothing starves, and
an unverified report is ranked lower, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from dispatch.domain.identity import VerificationLevel


class Channel(StrEnum):
    ALARM = "alarm"
    VIDEO = "video"
    TEXT = "text"


K = TypeVar("K")
V = TypeVar("V")


def _frozen(values: dict[K, V]) -> Mapping[K, V]:
    return MappingProxyType(values)


@dataclass(frozen=True, slots=True)
class PriorityWeights:
    # Severity 1 (kidnapping, robbery, ...) .. 4 (other).
    severity_s: Mapping[int, float] = field(
        default_factory=lambda: _frozen({1: 600.0, 2: 300.0, 3: 120.0, 4: 0.0})
    )
    verification_s: Mapping[VerificationLevel, float] = field(
        default_factory=lambda: _frozen(
            {
                VerificationLevel.ANONYMOUS: 0.0,
                VerificationLevel.PHONE: 60.0,
                VerificationLevel.REAL_NAME: 180.0,
                VerificationLevel.FACE: 240.0,
            }
        )
    )
    channel_s: Mapping[Channel, float] = field(
        default_factory=lambda: _frozen(
            {Channel.ALARM: 120.0, Channel.VIDEO: 120.0, Channel.TEXT: 0.0}
        )
    )
    false_alarm_penalty_s: float = 60.0
    max_penalty_s: float = 300.0

    def __post_init__(self) -> None:
        # Copy and freeze the tables: validated once, a caller's dict must not change them.
        for name in ("severity_s", "verification_s", "channel_s"):
            object.__setattr__(self, name, _frozen(dict(getattr(self, name))))
        for values in (
            self.severity_s.values(),
            self.verification_s.values(),
            self.channel_s.values(),
        ):
            # NaN slips past `< 0` and infinity makes the overtake bound infinite.
            if any(not math.isfinite(value) or value < 0 for value in values):
                raise ValueError("priority credits must be finite and not negative")
        for penalty in (self.false_alarm_penalty_s, self.max_penalty_s):
            if not math.isfinite(penalty) or penalty < 0:
                raise ValueError("penalties must be finite and not negative")
        if not self.severity_s:
            raise ValueError("the severity table needs at least one severity")
        if set(self.verification_s) != set(VerificationLevel):
            raise ValueError("every verification level needs a credit")
        if set(self.channel_s) != set(Channel):
            raise ValueError("every channel needs a credit")
        levels = sorted(VerificationLevel, key=lambda level: level.rank)
        credits = [self.verification_s[level] for level in levels]
        if credits != sorted(credits):
            raise ValueError("a higher verification level must never earn less credit")
        ordered = [self.severity_s[s] for s in sorted(self.severity_s)]
        if ordered != sorted(ordered, reverse=True):
            raise ValueError("a more severe tag must never earn less credit")

    @property
    def max_credit_s(self) -> float:
        return (
            max(self.severity_s.values())
            + max(self.verification_s.values())
            + max(self.channel_s.values())
        )

    @property
    def max_overtake_s(self) -> float:
        """How much later a report may arrive and still rank ahead of an earlier one."""
        min_credit = (
            min(self.severity_s.values())
            + min(self.verification_s.values())
            + min(self.channel_s.values())
            - self.max_penalty_s
        )
        return self.max_credit_s - min_credit


def weights_from_json(overrides: Mapping[str, object]) -> PriorityWeights:
    """The defaults with `overrides` applied, as read from configuration (JSON).

    `{"severity_s": {"1": 900}, "verification_s": {"real_name": 240},
    "channel_s": {"video": 150}, "false_alarm_penalty_s": 90, "max_penalty_s": 300}`;
    any part may be left out.  Raises ValueError naming what is wrong.
    """
    default = PriorityWeights()
    known = {"severity_s", "verification_s", "channel_s", "false_alarm_penalty_s", "max_penalty_s"}
    if unknown := sorted(set(overrides) - known):
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")

    def number(where: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number of seconds, got {value!r}")  # noqa: TRY004
        return float(value)

    def table(name: str, keys: Mapping[str, K], base: Mapping[K, float]) -> dict[K, float]:
        given = overrides.get(name, {})
        if not isinstance(given, Mapping):
            raise ValueError(f"{name} must be an object")  # noqa: TRY004
        merged = dict(base)
        for key, value in given.items():
            if key not in keys:
                raise ValueError(f"{name}: unknown key {key!r}; known: {', '.join(keys)}")
            merged[keys[key]] = number(f"{name}.{key}", value)
        return merged

    severities = {str(s): s for s in default.severity_s}
    return PriorityWeights(
        severity_s=table("severity_s", severities, default.severity_s),
        verification_s=table(
            "verification_s", {v.value: v for v in VerificationLevel}, default.verification_s
        ),
        channel_s=table("channel_s", {c.value: c for c in Channel}, default.channel_s),
        false_alarm_penalty_s=number(
            "false_alarm_penalty_s",
            overrides.get("false_alarm_penalty_s", default.false_alarm_penalty_s),
        ),
        max_penalty_s=number(
            "max_penalty_s", overrides.get("max_penalty_s", default.max_penalty_s)
        ),
    )


def priority_credit(
    weights: PriorityWeights,
    *,
    severity: int,
    verification: VerificationLevel,
    channel: Channel,
    false_alarms: int,
) -> float:
    if severity not in weights.severity_s:
        raise ValueError(f"unknown severity {severity}")
    penalty = min(weights.max_penalty_s, weights.false_alarm_penalty_s * max(0, false_alarms))
    return (
        weights.severity_s[severity]
        + weights.verification_s[verification]
        + weights.channel_s[channel]
        - penalty
    )


def priority_score(received_at: datetime, credit: float) -> float:
    """Seconds since the epoch of the virtual arrival time; lower ranks first."""
    return received_at.timestamp() - credit
