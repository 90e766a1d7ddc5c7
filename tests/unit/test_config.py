"""Settings: env vars, the TOML file, CLI overrides, and refusing unsafe values."""

from __future__ import annotations

from pathlib import Path

import pytest
from limits import parse

from config import ConfigError, HostPort, Settings, load_settings, with_generated_secret
from config.settings import RATE_LIMIT_NAMES


def test_defaults_are_the_embedded_mode() -> None:
    settings = load_settings({})
    assert settings.http == HostPort("127.0.0.1", 8000)
    assert settings.mqtt == HostPort("127.0.0.1", 1883)
    assert settings.mqtt_ws == HostPort("127.0.0.1", 8083)
    assert settings.embedded_broker
    assert settings.db_url == "sqlite://mqim-data/mqim.db"


def test_toml_then_env_then_flags(tmp_path: Path) -> None:
    toml = tmp_path / "mqim.toml"
    toml.write_text('http = "0.0.0.0:9000"\ntopic_prefix = "chat"\nmqtt = "127.0.0.1:1999"\n')
    settings = load_settings(
        {"MQIM_CONFIG": str(toml), "MQIM_MQTT": "127.0.0.1:2000", "MQIM_MQTT_WS": "off",
         "MQIM_DATA_DIR": str(tmp_path / "d"), "UNRELATED": "x"},
        {"http": "127.0.0.1:9001", "broker_url": None},
    )
    assert settings.http == HostPort("127.0.0.1", 9001)
    assert settings.mqtt == HostPort("127.0.0.1", 2000)
    assert settings.mqtt_ws is None
    assert settings.topic_prefix == "chat"
    assert settings.db_url == f"sqlite://{tmp_path / 'd' / 'mqim.db'}"


@pytest.mark.parametrize(
    "environ",
    [{"MQIM_HTTP": "nonsense"}, {"MQIM_HTTP": "host:99999"}, {"MQIM_BCRYPT_ROUNDS": "many"},
     {"MQIM_CONFIG": "/nonexistent/mqim.toml"}],
)
def test_bad_values_are_named(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="MQIM_"):
        load_settings(environ)


def test_unknown_keys_in_the_toml_file_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "mqim.toml"
    toml.write_text('htpp = "127.0.0.1:1"\n')
    with pytest.raises(ConfigError, match="htpp"):
        load_settings({"MQIM_CONFIG": str(toml)})


def test_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = with_generated_secret(settings)
    second = with_generated_secret(settings)
    assert first.jwt_secret == second.jwt_secret
    assert len(first.jwt_secret) >= 32
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o777 == 0o600
    first.check()


@pytest.mark.parametrize("secret", ["changeme", "secret", "x" * 31])
def test_placeholder_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ConfigError, match="MQIM_JWT_SECRET"):
        Settings(jwt_secret=secret).check()


def test_broker_url_is_parsed() -> None:
    settings = Settings(broker_url="mqtt://mqim-bridge:s%40cret@broker.local:1884")
    url = settings.external_broker()
    assert (url.host, url.port, url.username, url.password) == (
        "broker.local", 1884, "mqim-bridge", "s@cret")
    assert not settings.embedded_broker
    with pytest.raises(ConfigError):
        Settings(broker_url="http://x").external_broker()



def test_rate_limits_are_on_by_default() -> None:
    settings = load_settings({})
    assert settings.rate_limits
    assert settings.rate_limit("login_account") == parse("10/minute")
    assert settings.rate_limit("login_address") == parse("60/minute")
    assert settings.rate_limit("register_address") == parse("20/hour")
    assert settings.rate_limit("code_address") == parse("10/hour")
    assert settings.rate_limit("sends") == parse("1200/minute")
    assert settings.rate_limit_storage_uri() == "async+memory://"


def test_rate_limits_are_read_from_env_and_each_can_be_off(tmp_path: Path) -> None:
    toml = tmp_path / "mqim.toml"
    toml.write_text('rate_limit_register_address = "3/day"\nrate_limit_storage = "redis://r:6379"\n')
    settings = load_settings({"MQIM_CONFIG": str(toml), "MQIM_JWT_SECRET": "s" * 40,
                              "MQIM_RATE_LIMIT_LOGIN_ACCOUNT": "5 per 2 hours",
                              "MQIM_RATE_LIMIT_SENDS": "OFF", "MQIM_RATE_LIMIT_CODE_ADDRESS": ""})
    settings.check()
    assert settings.rate_limit("login_account") == parse("5 per 2 hours")
    assert settings.rate_limit("register_address") == parse("3/day")
    assert settings.rate_limit("sends") is None
    assert settings.rate_limit("code_address") is None
    assert settings.rate_limit("login_address") == parse("60/minute")
    assert settings.rate_limit_storage_uri() == "async+redis://r:6379"


def test_the_master_switch_turns_every_rate_limit_off() -> None:
    settings = load_settings({"MQIM_RATE_LIMITS": "false", "MQIM_RATE_LIMIT_SENDS": "5/second"})
    assert not settings.rate_limits
    assert all(settings.rate_limit(name) is None for name in RATE_LIMIT_NAMES)


@pytest.mark.parametrize("limit", ["ten/minute", "10/fortnight", "10", "10/minute;100/hour",
                                   "0/minute", "-1/minute", "none"])
def test_bad_rate_limits_are_refused_by_name(limit: str) -> None:
    settings = Settings(jwt_secret="s" * 40, rate_limit_login_address=limit)
    with pytest.raises(ConfigError, match="MQIM_RATE_LIMIT_LOGIN_ADDRESS"):
        settings.check()
    # Also with every limit off: a typo must not wait until the limits are turned on.
    with pytest.raises(ConfigError, match="MQIM_RATE_LIMIT_LOGIN_ADDRESS"):
        Settings(jwt_secret="s" * 40, rate_limits=False, rate_limit_login_address=limit).check()


@pytest.mark.parametrize(("storage", "uri"), [
    ("memory://", "async+memory://"), ("async+memory://", "async+memory://"),
    ("redis://cache:6380/2", "async+redis://cache:6380/2"),
    ("Redis+Sentinel://s:26379/mymaster", "async+redis+sentinel://s:26379/mymaster"),
])
def test_rate_limit_storage_maps_to_the_asyncio_scheme(storage: str, uri: str) -> None:
    assert Settings(rate_limit_storage=storage).rate_limit_storage_uri() == uri


@pytest.mark.parametrize("storage", ["memory", "postgres://db/x", "file:///tmp/x", ""])
def test_bad_rate_limit_storage_is_refused_by_name(storage: str) -> None:
    with pytest.raises(ConfigError, match="MQIM_RATE_LIMIT_STORAGE"):
        Settings(jwt_secret="s" * 40, rate_limit_storage=storage).check()


def test_rate_limits_switch_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="MQIM_RATE_LIMITS"):
        load_settings({"MQIM_RATE_LIMITS": "sometimes"})
