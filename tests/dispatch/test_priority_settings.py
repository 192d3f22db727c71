"""Priority credits are configurable (MICRO110_PRIORITY) and validated at start."""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest

from dispatch.domain.priority import Channel, PriorityWeights
from dispatch.settings import Settings, SettingsError
from tests.conftest import CitizenSession, Client
from tests.dispatch.calls import alarm

OVERRIDE = '{"severity_s": {"1": 5000}, "channel_s": {"alarm": 200}, "max_penalty_s": 600}'


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, priority=Settings.from_env({"MICRO110_PRIORITY": OVERRIDE}).priority
    )


def test_overrides_merge_with_the_defaults() -> None:
    weights = Settings.from_env({"MICRO110_PRIORITY": OVERRIDE}).priority_weights
    default = PriorityWeights()
    assert weights.severity_s[1] == 5000 and weights.severity_s[2] == default.severity_s[2]
    assert weights.channel_s == {**default.channel_s, Channel.ALARM: 200.0}
    assert weights.verification_s == default.verification_s
    assert weights.max_penalty_s == 600
    assert Settings.from_env({}).priority_weights == default


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("not json", "expected a JSON object"),
        ("[1]", "expected a JSON object"),
        ('{"severity": {}}', "unknown key(s) severity"),
        ('{"severity_s": {"9": 1}}', "severity_s: unknown key '9'"),
        ('{"channel_s": {"fax": 1}}', "channel_s: unknown key 'fax'"),
        ('{"severity_s": {"1": "lots"}}', "severity_s.1 must be a number"),
        ('{"severity_s": {"1": -1}}', "finite and not negative"),
        ('{"severity_s": {"4": 900}}', "a more severe tag must never earn less credit"),
        ('{"verification_s": {"face": 0}}', "higher verification level must never earn less"),
        ('{"max_penalty_s": true}', "max_penalty_s must be a number"),
    ],
)
def test_bad_priority_settings_name_the_setting(raw: str, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MICRO110_PRIORITY": raw})
    assert caught.value.name == "MICRO110_PRIORITY"
    assert problem in caught.value.problem


async def test_intake_ranks_with_the_configured_credits(
    app_client: Client, citizen: CitizenSession, pg: asyncpg.Pool
) -> None:
    response = await app_client.post(
        "/api/alarms", json=alarm(tag="kidnapping"), headers=citizen.headers
    )
    assert response.status == 201
    async with pg.acquire() as conn:
        credit = await conn.fetchval("SELECT priority_credit_s FROM incidents")
    # Severity 1 and the alarm channel as configured; an anonymous device earns nothing.
    assert credit == 5000 + 200
