"""Typed settings, read once per entry point from env vars or a TOML file (docs/configuration.md).

`load_settings(environ)` is the only reader of the environment. It does no I/O beyond reading the
TOML file named by `MQIM_CONFIG`; generating the JWT secret in the data dir is the entry point's job
(`with_generated_secret`), so tests can build `Settings(...)` directly.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limits import RateLimitItem, parse_many

from config.hosts import parse_amqp_hosts, parse_management_hosts, parse_mqtt_hosts
from config.observability import LOG_FORMATS, parse_cors_origins

# Re-exported: callers import these from config.settings as before the URL parsers moved.
from config.urls import ConfigError as ConfigError
from config.urls import SmtpUrl as SmtpUrl
from config.urls import StorageUrl, parse_storage_url
from config.urls import parse_smtp_url as parse_smtp_url

PREFIX = "MQIM_"
# Secrets that appear in examples and must never run a real deployment.
_PLACEHOLDER_SECRETS = {"", "secret", "changeme", "change-me", "dev-secret", "jwt-secret"}
_MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class BrokerUrl:
    """An external broker, parsed from `mqtt://user:pass@host:port`."""

    host: str
    port: int
    username: str
    password: str


@dataclass(frozen=True)
class Settings:
    http: HostPort = HostPort("127.0.0.1", 8000)
    mqtt: HostPort = HostPort("127.0.0.1", 1883)
    # None turns the embedded broker's WebSocket listener off.
    mqtt_ws: HostPort | None = HostPort("127.0.0.1", 8083)
    broker_url: str = ""
    # How an external broker learns who may do what: "mosquitto" (mqim's plugin, sent every
    # change on $CONTROL/mqim/v1) or "hooks" (the broker asks /api/internal/mqtt/...).
    broker_kind: str = "mosquitto"
    data_dir: Path = Path("mqim-data")
    database_url: str = ""
    jwt_secret: str = ""
    topic_prefix: str = "im"
    access_token_ttl: int = 15 * 60
    refresh_token_ttl: int = 30 * 24 * 3600
    bcrypt_rounds: int = 12
    # Upper bound of one uplink MQTT payload, and of a message body in characters.
    max_payload_bytes: int = 64 * 1024
    max_body_chars: int = 8000
    # Where uploads are stored (config/urls.py); empty = file://<data_dir>/uploads.
    storage_url: str = ""
    max_upload_bytes: int = 25 * 1024 * 1024
    # Seconds after sending during which the sender may unsend (owner and admins: any time) and
    # edit a message; 0 = no limit.
    unsend_window: int = 24 * 3600
    edit_window: int = 24 * 3600
    # Push notifications and webhooks (docs/push.md, docs/webhooks.md): record timeline activity
    # for their worker, and run it inside `mqim serve`.
    reach: bool = True
    # Whether a push carries the start of the message (off: only thread, sender and count).
    push_previews: bool = False
    # How long a thread must be quiet before its burst is pushed as one notification.
    push_coalesce_ms: int = 1000
    # Web Push's VAPID key: a PEM file; empty = <data_dir>/vapid_private.pem, made on first use.
    vapid_private_key: str = ""
    # Who the push services may contact about this server (mailto: or https: URL).
    vapid_subject: str = "mailto:admin@localhost"
    # Seconds a webhook receiver has to answer, and how many tries a delivery gets.
    webhook_timeout: int = 10
    webhook_max_attempts: int = 12
    # The first retry's delay; each next one doubles it (at most five minutes).
    webhook_backoff_ms: int = 1000
    # Allow http:// and private or loopback addresses as push endpoints and webhook URLs
    # (development and tests); off, only https:// to public addresses.
    reach_allow_insecure: bool = False
    # The bridge's own broker account. In the embedded mode its password is derived from the
    # JWT secret, so nothing extra has to be configured.
    bridge_username: str = "mqim-bridge"
    # Most queued uplinks stored as one batch (models/append.py); how long a busy bridge waits.
    bridge_batch_size: int = 256
    bridge_linger_ms: int = 5
    # Shared secret that brokers present to the /api/internal/mqtt/... auth hooks; empty = off.
    mqtt_hook_secret: str = ""
    # RabbitMQ cluster mode (docs/deploy-cluster.md): its management API (access changes reach
    # live sessions) and the AMQP URL of the bridge's uplink quorum queue. Empty: not RabbitMQ.
    rabbitmq_management_url: str = ""
    rabbitmq_amqp_url: str = ""
    log_level: str = "info"
    # "text" (one human line per record) or "json" (one JSON object per line).
    log_format: str = "text"
    # Browser origins allowed to call the HTTP API ("https://a.example,https://b.example", or
    # "*"); empty = CORS off, so browsers refuse cross-origin calls.
    cors_origins: str = ""
    # Where a process without the HTTP API (`mqim bridge`, `mqim broker run`) serves Prometheus
    # /metrics, "host:port"; empty = not served (the API serves /metrics on its own port).
    metrics: str = ""
    # Verification-code mail: empty SMTP URL = log the codes instead (development only).
    smtp_url: str = ""
    mail_from: str = ""
    # Registering with an email (and changing it) needs a code sent to that address.
    require_email_code: bool = False
    # Least seconds between two codes sent to one address.
    email_code_interval: int = 60
    # A deleted account can be restored (by logging in, or registering again with its
    # password) for this many days; `mqim users purge` removes it after that.
    restore_window_days: int = 30
    # Abuse limits, each "N/second|minute|hour|day" (or "N per 2 hours") or "off": at most N in
    # any such window, refilling as old hits age out (like a token bucket holding N).
    # `rate_limits` off turns them all off. Login attempts count per account (whether it exists
    # or not) and per client address. Behind a reverse proxy, the address comes from its
    # X-Forwarded-For only if uvicorn trusts the proxy (FORWARDED_ALLOW_IPS; 127.0.0.1 and ::1
    # by default); otherwise every client shares the proxy's budget.
    rate_limits: bool = True
    rate_limit_login_account: str = "10/minute"
    rate_limit_login_address: str = "60/minute"
    rate_limit_register_address: str = "20/hour"
    rate_limit_code_address: str = "10/hour"
    # Messages per user, MQTT and HTTP together. Generous on purpose: a client flushing its
    # offline queue after a reconnect sends hundreds at once.
    rate_limit_sends: str = "1200/minute"
    # Where the counters live: "memory://" counts per process (each API process or replica has
    # its own budget); "redis://host:6379" shares them (needs the `coredis` or `redis` package).
    rate_limit_storage: str = "memory://"

    @property
    def embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite://{self.data_dir / 'mqim.db'}"

    def external_broker(self) -> BrokerUrl:
        """The parsed `broker_url`; only meaningful when not embedded."""
        return parse_broker_url(self.broker_url)

    def storage(self) -> StorageUrl:
        """The parsed `storage_url`: local disk under the data dir unless set."""
        return parse_storage_url(self.storage_url, self.data_dir)

    def smtp(self) -> SmtpUrl | None:
        """The parsed `smtp_url`, or None when codes are only logged."""
        return parse_smtp_url(self.smtp_url) if self.smtp_url else None

    def rate_limit(self, name: str) -> RateLimitItem | None:
        """The parsed limit `rate_limit_<name>`, or None when it (or every limit) is off."""
        key = f"rate_limit_{name}"
        item = parse_rate_limit(getattr(self, key), name=f"{PREFIX}{key.upper()}")
        return item if self.rate_limits else None

    def rate_limit_storage_uri(self) -> str:
        """`rate_limit_storage` as the `limits` library's asyncio storage URI."""
        return parse_rate_limit_storage(self.rate_limit_storage)

    def cors_origin_list(self) -> list[str]:
        """The allowed CORS origins, `["*"]` for any; empty when CORS is off."""
        try:
            return parse_cors_origins(self.cors_origins)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def metrics_address(self) -> HostPort | None:
        """Where to serve /metrics outside the HTTP API, or None."""
        text = self.metrics.strip()
        if text.lower() in ("", "off", "none", "false"):
            return None
        return parse_host_port(text, name=f"{PREFIX}METRICS")

    def check(self) -> None:
        """Refuse to run with unsafe or inconsistent settings."""
        if self.jwt_secret in _PLACEHOLDER_SECRETS or len(self.jwt_secret) < _MIN_SECRET_LENGTH:
            raise ConfigError(
                "MQIM_JWT_SECRET is a placeholder or shorter than "
                f"{_MIN_SECRET_LENGTH} characters; unset it to generate one in the data dir"
            )
        if not self.topic_prefix or any(c in self.topic_prefix for c in "+#\0 ") or (
            self.topic_prefix.startswith("$")
        ):
            raise ConfigError(f"MQIM_TOPIC_PREFIX {self.topic_prefix!r} is not a valid prefix")
        if self.mqtt_hook_secret and (
            self.mqtt_hook_secret in _PLACEHOLDER_SECRETS or len(self.mqtt_hook_secret) < 24
        ):
            raise ConfigError("MQIM_MQTT_HOOK_SECRET must be at least 24 random characters")
        if not self.bridge_username.startswith("mqim-"):
            # User ids can never start with "mqim-", so no user can take the bridge's name.
            raise ConfigError("MQIM_BRIDGE_USERNAME must start with 'mqim-'")
        if self.broker_kind not in ("mosquitto", "hooks"):
            raise ConfigError("MQIM_BROKER_KIND must be 'mosquitto' or 'hooks'")
        if (self.rabbitmq_management_url or self.rabbitmq_amqp_url) and (
                self.broker_kind != "hooks" or self.embedded_broker):
            raise ConfigError("MQIM_RABBITMQ_* need MQIM_BROKER_URL and MQIM_BROKER_KIND=hooks")
        _ = self.embedded_broker or parse_mqtt_hosts(self.broker_url)
        _ = self.rabbitmq_amqp_url and parse_amqp_hosts(self.rabbitmq_amqp_url)
        _ = self.rabbitmq_management_url and parse_management_hosts(self.rabbitmq_management_url)
        if self.access_token_ttl <= 0 or self.refresh_token_ttl <= 0:
            raise ConfigError("token lifetimes must be positive")
        if self.smtp_url:
            _ = parse_smtp_url(self.smtp_url)
            if not _MAIL_FROM_RE.match(self.mail_from):
                raise ConfigError("MQIM_MAIL_FROM must be an address such as mqim@example.com "
                                  "when MQIM_SMTP_URL is set")
        if self.email_code_interval < 0:
            raise ConfigError("MQIM_EMAIL_CODE_INTERVAL must be 0 or more seconds")
        if self.max_upload_bytes < 1:
            raise ConfigError("MQIM_MAX_UPLOAD_BYTES must be at least 1")
        if self.unsend_window < 0 or self.edit_window < 0:
            raise ConfigError("MQIM_UNSEND_WINDOW and MQIM_EDIT_WINDOW must be 0 or more seconds")
        if self.push_coalesce_ms < 0 or self.bridge_linger_ms < 0:
            raise ConfigError("MQIM_PUSH_COALESCE_MS and MQIM_BRIDGE_LINGER_MS must be 0 or more")
        if self.webhook_backoff_ms < 1:
            raise ConfigError("MQIM_WEBHOOK_BACKOFF_MS must be at least 1")
        if self.webhook_timeout < 1 or self.webhook_max_attempts < 1:
            raise ConfigError(
                "MQIM_WEBHOOK_TIMEOUT and MQIM_WEBHOOK_MAX_ATTEMPTS must be at least 1")
        if not self.vapid_subject.startswith(("mailto:", "https://")):
            raise ConfigError("MQIM_VAPID_SUBJECT must be a mailto: or https: URL")
        _ = self.storage()
        if self.restore_window_days < 0:
            raise ConfigError("MQIM_RESTORE_WINDOW_DAYS must be 0 or more days")
        for name in RATE_LIMIT_NAMES:  # checked even when all are off: garbage is refused early
            _ = parse_rate_limit(getattr(self, f"rate_limit_{name}"),
                                 name=f"{PREFIX}RATE_LIMIT_{name.upper()}")
        _ = parse_rate_limit_storage(self.rate_limit_storage)
        if self.log_format not in LOG_FORMATS:
            raise ConfigError("MQIM_LOG_FORMAT must be 'text' or 'json'")
        _ = self.cors_origin_list()
        _ = self.metrics_address()


# The `rate_limit_<name>` settings.
RATE_LIMIT_NAMES = ("login_account", "login_address", "register_address", "code_address", "sends")
_INT_FIELDS = {
    "access_token_ttl", "refresh_token_ttl", "bcrypt_rounds", "max_payload_bytes",
    "max_body_chars", "bridge_batch_size", "email_code_interval", "restore_window_days",
    "max_upload_bytes", "unsend_window", "edit_window", "push_coalesce_ms", "webhook_timeout",
    "webhook_max_attempts", "webhook_backoff_ms", "bridge_linger_ms",
}
_STR_FIELDS = {
    "broker_url", "database_url", "jwt_secret", "topic_prefix", "bridge_username", "log_level",
    "log_format", "cors_origins", "metrics", "storage_url", "vapid_private_key", "vapid_subject",
    "mqtt_hook_secret", "broker_kind", "rabbitmq_management_url", "rabbitmq_amqp_url", "smtp_url",
    "mail_from", "rate_limit_storage",
    *(f"rate_limit_{name}" for name in RATE_LIMIT_NAMES),
}
_BOOL_FIELDS = {"require_email_code", "rate_limits", "reach", "push_previews",
                "reach_allow_insecure"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# A bare address (no display name): what the mailer puts in From and the SMTP envelope.
_MAIL_FROM_RE = re.compile(r"^[^@\s<>]{1,64}@[^@\s<>]+$")


_RATE_LIMIT_OFF = {"", "off"}
# Schemes users write; the asyncio storages of `limits` are the same with "async+" in front.
# Not memcached: it lacks the moving windows that models/ratelimit.py uses for logins.
_RATE_LIMIT_SCHEMES = {
    "memory", "redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel", "valkey",
    "valkeys", "valkey+unix", "valkey+cluster", "valkey+sentinel", "mongodb", "mongodb+srv",
}


def parse_rate_limit(value: str, *, name: str) -> RateLimitItem | None:
    """One limit such as `10/minute` or `5 per 2 hours`; None for "off" or empty."""
    text = value.strip()
    if text.lower() in _RATE_LIMIT_OFF:
        return None
    try:
        items = parse_many(text)
    except ValueError:
        items = []
    if len(items) != 1:
        raise ConfigError(f"{name} must be one limit such as 10/minute, or off; got {value!r}")
    if items[0].amount < 1:
        raise ConfigError(f"{name} must allow at least 1 (use off to disable it); got {value!r}")
    return items[0]


def parse_rate_limit_storage(value: str) -> str:
    """`memory://`, `redis://host:6379`, ... as the matching `async+...` URI of `limits`."""
    scheme, sep, rest = value.strip().partition("://")
    scheme = scheme.lower().removeprefix("async+")
    if not sep or scheme not in _RATE_LIMIT_SCHEMES:
        raise ConfigError(
            f"MQIM_RATE_LIMIT_STORAGE must be memory:// or redis://host:6379 (or another storage "
            f"of the limits library); got {value!r}"
        )
    return f"async+{scheme}://{rest}"


def parse_host_port(value: str, *, name: str) -> HostPort:
    """Parse `host:port` (or `:port`, meaning 127.0.0.1)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{name} must look like host:port, got {value!r}")
    return HostPort(host.strip("[]") or "127.0.0.1", int(port))


def parse_broker_url(url: str) -> BrokerUrl:
    """The first host of MQIM_BROKER_URL (which may name several: config/hosts.py)."""
    servers = parse_mqtt_hosts(url)
    first = servers.endpoints[0]
    return BrokerUrl(first.host, first.port, servers.username, servers.password)


def _convert(key: str, value: Any) -> Any:
    if key in ("http", "mqtt"):
        return parse_host_port(str(value), name=f"{PREFIX}{key.upper()}")
    if key == "mqtt_ws":
        text = str(value).strip()
        if text.lower() in ("", "off", "none", "false"):
            return None
        return parse_host_port(text, name="MQIM_MQTT_WS")
    if key == "data_dir":
        return Path(str(value))
    if key in _INT_FIELDS:
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{PREFIX}{key.upper()} must be an integer, got {value!r}") from exc
    if key in _STR_FIELDS:
        return str(value)
    if key in _BOOL_FIELDS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in _TRUE | _FALSE:
            raise ConfigError(f"{PREFIX}{key.upper()} must be true or false, got {value!r}")
        return text in _TRUE
    raise ConfigError(f"unknown setting {key!r}")


def load_settings(
    environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build settings from a TOML file (`MQIM_CONFIG`), then env vars, then `overrides` (CLI flags).

    Keys in the TOML file are the env var names in lower case without the `MQIM_` prefix.
    """
    raw: dict[str, Any] = {}
    config_file = environ.get(f"{PREFIX}CONFIG")
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                raw.update(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read MQIM_CONFIG file {config_file}: {exc}") from exc
    known = {f.name for f in dataclasses.fields(Settings)}
    for name, value in environ.items():
        if name.startswith(PREFIX) and name != f"{PREFIX}CONFIG":
            raw[name[len(PREFIX):].lower()] = value
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}")
    return Settings(**{key: _convert(key, value) for key, value in raw.items()})


def with_generated_secret(settings: Settings) -> Settings:
    """Return settings whose JWT secret is set, generating one in the data dir on first run.

    The file is created with mode 0600 and reused by every later run, so tokens survive restarts.
    """
    if settings.jwt_secret:
        return settings
    path = settings.data_dir / "jwt-secret"
    if path.exists():
        secret = path.read_text(encoding="utf-8").strip()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        with open(path, "x", encoding="utf-8") as fh:
            path.chmod(0o600)
            fh.write(secret + "\n")
    return dataclasses.replace(settings, jwt_secret=secret)
