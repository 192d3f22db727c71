"""The queue's priority function: properties that must hold for every valid weight table."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.domain.identity import VerificationLevel
from dispatch.domain.priority import Channel, PriorityWeights, priority_credit, priority_score

# Leave no example database in the working tree; a few hundred examples run in a second.
PROPERTY = settings(database=None, max_examples=300, deadline=None)

LEVELS = sorted(VerificationLevel, key=lambda level: level.rank)  # weakest first
SEVERITIES = (1, 2, 3, 4)  # 1 is the most severe
EPOCH = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

credits = st.floats(min_value=0, max_value=3600, allow_nan=False, allow_infinity=False)


@st.composite
def custom_weights(draw: st.DrawFn) -> PriorityWeights:
    severity = sorted(draw(st.lists(credits, min_size=4, max_size=4)), reverse=True)
    verification = sorted(draw(st.lists(credits, min_size=4, max_size=4)))
    channel = draw(st.lists(credits, min_size=3, max_size=3))
    return PriorityWeights(
        severity_s=dict(zip(SEVERITIES, severity, strict=True)),
        verification_s=dict(zip(LEVELS, verification, strict=True)),
        channel_s=dict(zip(Channel, channel, strict=True)),
        false_alarm_penalty_s=draw(credits),
        max_penalty_s=draw(credits),
    )


weight_tables = st.one_of(st.just(PriorityWeights()), custom_weights())
levels = st.sampled_from(LEVELS)
severities = st.sampled_from(SEVERITIES)
channels = st.sampled_from(list(Channel))
false_alarm_counts = st.integers(min_value=0, max_value=50)


@dataclass(frozen=True, slots=True)
class Report:
    number: int  # stands in for the incident id that breaks ties
    received_at: datetime
    severity: int
    verification: VerificationLevel
    channel: Channel
    false_alarms: int

    @property
    def kind(self) -> tuple[int, VerificationLevel, Channel, int]:
        return self.severity, self.verification, self.channel, self.false_alarms

    def credit(self, weights: PriorityWeights) -> float:
        return priority_credit(
            weights,
            severity=self.severity,
            verification=self.verification,
            channel=self.channel,
            false_alarms=self.false_alarms,
        )

    def rank_key(self, weights: PriorityWeights) -> tuple[float, int]:
        # What the queue orders by: score, then id (PostgreSQL and Redis alike).
        return priority_score(self.received_at, self.credit(weights)), self.number


@st.composite
def a_report(draw: st.DrawFn, number: int = 0, offset_ms: int = 0) -> Report:
    return Report(
        number=number,
        received_at=EPOCH + timedelta(milliseconds=offset_ms),
        severity=draw(severities),
        verification=draw(levels),
        channel=draw(channels),
        false_alarms=draw(false_alarm_counts),
    )


@st.composite
def reports(draw: st.DrawFn, max_size: int = 40) -> list[Report]:
    # Arrivals within two hours, to the millisecond.
    offsets = draw(st.lists(st.integers(0, 7_200_000), min_size=1, max_size=max_size))
    return [draw(a_report(i, offset)) for i, offset in enumerate(offsets)]


def credit(weights: PriorityWeights, **overrides: Any) -> float:
    values: dict[str, Any] = {
        "severity": 4,
        "verification": VerificationLevel.ANONYMOUS,
        "channel": Channel.TEXT,
        "false_alarms": 0,
    }
    values.update(overrides)
    return priority_credit(weights, **values)


# --- ordering at equal arrival --------------------------------------------------------


@PROPERTY
@given(weight_tables, levels, levels, severities, channels, false_alarm_counts)
def test_a_better_verified_reporter_never_ranks_later(
    weights: PriorityWeights,
    a: VerificationLevel,
    b: VerificationLevel,
    severity: int,
    channel: Channel,
    false_alarms: int,
) -> None:
    weaker, stronger = sorted((a, b), key=lambda level: level.rank)
    same = {"severity": severity, "channel": channel, "false_alarms": false_alarms}
    weak = credit(weights, verification=weaker, **same)
    strong = credit(weights, verification=stronger, **same)
    assert priority_score(EPOCH, strong) <= priority_score(EPOCH, weak)


@PROPERTY
@given(weight_tables, severities, severities, levels, channels, false_alarm_counts)
def test_a_more_severe_tag_never_ranks_later(
    weights: PriorityWeights,
    a: int,
    b: int,
    verification: VerificationLevel,
    channel: Channel,
    false_alarms: int,
) -> None:
    more_severe, less_severe = sorted((a, b))
    same = {"verification": verification, "channel": channel, "false_alarms": false_alarms}
    severe = credit(weights, severity=more_severe, **same)
    mild = credit(weights, severity=less_severe, **same)
    assert priority_score(EPOCH, severe) <= priority_score(EPOCH, mild)


def test_default_weights_put_verification_and_severity_in_the_documented_order() -> None:
    weights = PriorityWeights()
    by_level = [credit(weights, verification=level) for level in LEVELS]
    assert by_level == sorted(by_level) and len(set(by_level)) == len(by_level)
    by_severity = [credit(weights, severity=s) for s in SEVERITIES]
    assert by_severity == sorted(by_severity, reverse=True)
    assert len(set(by_severity)) == len(by_severity)


# --- bounds: nothing starves ------------------------------------------------------------


@PROPERTY
@given(weight_tables, severities, levels, channels, st.integers(0, 10_000))
def test_credit_is_bounded(
    weights: PriorityWeights,
    severity: int,
    verification: VerificationLevel,
    channel: Channel,
    false_alarms: int,
) -> None:
    value = credit(
        weights,
        severity=severity,
        verification=verification,
        channel=channel,
        false_alarms=false_alarms,
    )
    assert math.isfinite(value)
    assert value <= weights.max_credit_s
    # max_overtake_s is a difference of sums: allow for its last-bit rounding.
    assert value >= weights.max_credit_s - weights.max_overtake_s - 1e-9


@PROPERTY
@given(weight_tables, severities, levels, channels, st.integers(0, 10_000))
def test_false_alarm_penalty_grows_with_the_record_but_is_capped(
    weights: PriorityWeights,
    severity: int,
    verification: VerificationLevel,
    channel: Channel,
    false_alarms: int,
) -> None:
    same = {"severity": severity, "verification": verification, "channel": channel}
    clean = credit(weights, false_alarms=0, **same)
    record = credit(weights, false_alarms=false_alarms, **same)
    worse = credit(weights, false_alarms=false_alarms + 1, **same)
    assert worse <= record <= clean
    assert clean - record <= weights.max_penalty_s + 1e-9


def test_default_penalty_reaches_its_cap_after_five_false_alarms() -> None:
    weights = PriorityWeights()
    penalties = [credit(weights) - credit(weights, false_alarms=n) for n in range(8)]
    assert penalties == [0.0, 60.0, 120.0, 180.0, 240.0, 300.0, 300.0, 300.0]


@PROPERTY
@given(weight_tables, a_report(number=1), a_report(number=0), st.integers(1, 86_400_000))
def test_a_report_is_never_overtaken_by_one_arriving_more_than_max_overtake_later(
    weights: PriorityWeights, first: Report, template: Report, extra_ms: int
) -> None:
    # The later report gets the smaller id too, so not even the tie-break favours the first.
    gap = timedelta(seconds=weights.max_overtake_s, milliseconds=extra_ms)
    second = replace(template, received_at=first.received_at + gap)
    assert first.rank_key(weights) < second.rank_key(weights)


def test_max_overtake_is_attained_by_the_defaults() -> None:
    """The bound is tight: the best report overtakes the worst by almost all of it."""
    weights = PriorityWeights()
    worst = credit(weights, false_alarms=100)
    best = credit(weights, severity=1, verification=VerificationLevel.FACE, channel=Channel.ALARM)
    assert best - worst == weights.max_overtake_s == 1260.0
    assert priority_score(EPOCH + timedelta(seconds=1259), best) < priority_score(EPOCH, worst)


@PROPERTY
@given(weight_tables, reports(), st.integers(1, 600))
def test_a_dispatcher_taking_the_first_report_serves_everyone_and_never_starves_anyone(
    weights: PriorityWeights, arrivals: list[Report], service_s: int
) -> None:
    """A model of the queue: reports arrive, every `service_s` the first one is taken.

    Every report is taken exactly once (no report dropped, however low its credit), and
    whenever a report is taken ahead of one that waits, it arrived at most
    `max_overtake_s` after the one left waiting.
    """
    pending = sorted(arrivals, key=lambda r: r.received_at)
    waiting: list[Report] = []
    taken: list[Report] = []
    now = EPOCH
    while pending or waiting:
        if not waiting and pending[0].received_at > now:
            now = pending[0].received_at  # an idle dispatcher takes the next one at once
        while pending and pending[0].received_at <= now:
            waiting.append(pending.pop(0))
        if waiting:
            chosen = min(waiting, key=lambda r: r.rank_key(weights))
            waiting.remove(chosen)
            for left in waiting:
                overtaken_by = (chosen.received_at - left.received_at).total_seconds()
                # (a microsecond for the rounding of epoch seconds near 1.8e9)
                assert overtaken_by <= weights.max_overtake_s + 1e-6, (chosen, left)
            taken.append(chosen)
        now += timedelta(seconds=service_s)
    assert sorted(r.number for r in taken) == sorted(r.number for r in arrivals)


@PROPERTY
@given(weight_tables, reports(max_size=60))
def test_ranking_a_batch_loses_no_report(weights: PriorityWeights, batch: list[Report]) -> None:
    """Scores are finite numbers (a NaN would be refused by Redis and sort nowhere), so
    ranking a batch is a permutation of it, consistent with arrival order for equals."""
    keys = {r.number: r.rank_key(weights) for r in batch}
    assert all(math.isfinite(score) for score, _ in keys.values())
    ranked = sorted(batch, key=lambda r: keys[r.number])
    assert sorted(r.number for r in ranked) == [r.number for r in batch]
    for a, b in pairwise(ranked):
        if a.kind == b.kind:
            assert a.received_at <= b.received_at


# --- invalid weight tables ----------------------------------------------------------------

_DEFAULT = PriorityWeights()
_LEVEL_CREDITS = dict(_DEFAULT.verification_s)
_CHANNEL_CREDITS = dict(_DEFAULT.channel_s)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"severity_s": {1: 600.0, 2: -1.0}}, id="negative-severity-credit"),
        pytest.param({"severity_s": {1: 100.0, 2: 300.0}}, id="milder-earns-more"),
        pytest.param({"severity_s": {}}, id="no-severities"),
        pytest.param({"severity_s": {1: math.inf, 2: 0.0}}, id="infinite-severity-credit"),
        pytest.param({"severity_s": {1: math.nan, 2: 0.0}}, id="nan-severity-credit"),
        pytest.param(
            {"verification_s": _LEVEL_CREDITS | {VerificationLevel.FACE: 100.0}},
            id="face-earns-less-than-real-name",
        ),
        pytest.param(
            {
                "verification_s": {
                    k: v for k, v in _LEVEL_CREDITS.items() if k is not VerificationLevel.PHONE
                }
            },
            id="level-missing",
        ),
        pytest.param(
            {"verification_s": _LEVEL_CREDITS | {VerificationLevel.ANONYMOUS: -5.0}},
            id="negative-level-credit",
        ),
        pytest.param({"channel_s": {Channel.ALARM: 1.0, Channel.VIDEO: 1.0}}, id="channel-missing"),
        pytest.param(
            {"channel_s": _CHANNEL_CREDITS | {Channel.TEXT: math.nan}}, id="nan-channel-credit"
        ),
        pytest.param({"false_alarm_penalty_s": -1.0}, id="negative-penalty"),
        pytest.param({"max_penalty_s": -1.0}, id="negative-cap"),
        pytest.param({"false_alarm_penalty_s": math.nan}, id="nan-penalty"),
        pytest.param({"false_alarm_penalty_s": math.inf}, id="infinite-penalty"),
        pytest.param({"max_penalty_s": math.inf}, id="infinite-cap"),
    ],
)
def test_invalid_weight_tables_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        PriorityWeights(**overrides)


@PROPERTY
@given(st.lists(credits, min_size=4, max_size=4, unique=True), st.data())
def test_any_verification_table_out_of_trust_order_is_refused(
    values: list[float], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(values))
    table = dict(zip(LEVELS, shuffled, strict=True))
    if list(shuffled) == sorted(values):
        assert PriorityWeights(verification_s=table).verification_s == table
    else:
        with pytest.raises(ValueError, match="verification"):
            PriorityWeights(verification_s=table)


def test_a_validated_table_cannot_be_changed_afterwards() -> None:
    table = {1: 600.0, 2: 300.0}
    weights = PriorityWeights(severity_s=table)
    table[2] = 900.0  # would make the milder tag earn more
    assert weights.severity_s == {1: 600.0, 2: 300.0}
    with pytest.raises(TypeError):
        weights.severity_s[2] = 900.0  # type: ignore[index]


def test_an_unknown_severity_is_refused() -> None:
    with pytest.raises(ValueError, match="severity 7"):
        credit(PriorityWeights(), severity=7)
