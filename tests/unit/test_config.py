"""Settings: env vars, the TOML file, CLI overrides, and refusing unsafe values."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, HostPort, Settings, load_settings, with_generated_secret


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
