from pathlib import Path

import pytest

from dispatch.settings import Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.port == 8110
    assert settings.host == "127.0.0.1"
    assert settings.data_dir == Path("var")
    assert settings.embedded_database and settings.embedded_redis
    assert settings.load_demo
    assert settings.base_url == "http://127.0.0.1:8110"


def test_environment_and_overrides() -> None:
    env = {"MICRO110_PORT": "9000", "DATABASE_URL": "postgresql://db/x", "MICRO110_DEMO": "yes"}
    settings = Settings.from_env(env, port=9100, host=None)
    assert settings.port == 9100  # the CLI flag wins
    assert settings.host == "127.0.0.1"  # a flag that was not given masks nothing
    assert not settings.embedded_database
    assert settings.load_demo  # explicitly on, even with an external database


def test_external_database_disables_demo_by_default() -> None:
    assert not Settings.from_env({"DATABASE_URL": "postgresql://db/x"}).load_demo


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"MICRO110_PORT": "abc"}, "MICRO110_PORT"),
        ({"MICRO110_PORT": "70000"}, "MICRO110_PORT"),
        ({"MICRO110_DEMO": "maybe"}, "MICRO110_DEMO"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"MICRO110_CONNECT_TIMEOUT": "nan"}, "MICRO110_CONNECT_TIMEOUT"),
        ({"MICRO110_LOG_FORMAT": "xml"}, "MICRO110_LOG_FORMAT"),
        ({"MICRO110_MAX_JSON_BYTES": "0"}, "MICRO110_MAX_JSON_BYTES"),
        ({"MICRO110_MEDIA_NICENESS": "20"}, "MICRO110_MEDIA_NICENESS"),
        ({"MICRO110_CALL_AUDIO_PTIME": "30"}, "MICRO110_CALL_AUDIO_PTIME"),
        ({"MICRO110_IMPORT_NICENESS": "-1"}, "MICRO110_IMPORT_NICENESS"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.name == name
    assert str(caught.value).startswith(f"{name}: ")


def test_env_names_cover_every_field() -> None:
    names = Settings.env_names()
    assert {"DATABASE_URL", "REDIS_URL", "MICRO110_PORT", "MICRO110_DATA_DIR"} <= names
    assert all(n in {"DATABASE_URL", "REDIS_URL"} or n.startswith("MICRO110_") for n in names)


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
