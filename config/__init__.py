"""Settings of an mqim process: one frozen object built from env vars, a TOML file and CLI flags."""

from config.settings import (
    BrokerUrl,
    ConfigError,
    HostPort,
    Settings,
    load_settings,
    parse_host_port,
    with_generated_secret,
)

__all__ = [
    "BrokerUrl",
    "ConfigError",
    "HostPort",
    "Settings",
    "load_settings",
    "parse_host_port",
    "with_generated_secret",
]
