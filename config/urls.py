"""Parsing of the URL settings that name another service: `MQIM_SMTP_URL` (the verification
mail) and `MQIM_STORAGE_URL` (where uploads live, docs/configuration.md). Kept apart from
settings.py, which holds the `Settings` fields; nothing here opens a connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """A setting is missing, malformed or unsafe; the message names the setting."""


@dataclass(frozen=True)
class SmtpUrl:
    """An SMTP server, parsed from `smtp://user:pass@host:587?starttls=1` or `smtps://...`.

    `smtp://` (default port 587) upgrades with STARTTLS: `starttls=1` requires it, `starttls=0`
    never tries, and without the parameter it is used when the server offers it. `smtps://`
    (default port 465) speaks TLS from the first byte.
    """

    host: str
    port: int
    username: str
    password: str
    use_tls: bool
    start_tls: bool | None

    def __str__(self) -> str:  # never shows the password
        scheme = "smtps" if self.use_tls else "smtp"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


@dataclass(frozen=True)
class StorageUrl:
    """Where uploads are stored: `file:///abs/dir` (local disk) or
    `s3://bucket[/prefix]?endpoint=http://host:9000&region=...&access_key=...&secret_key=...`.

    S3 credentials left out of the URL come from the standard AWS sources (AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, a profile, an instance role), as botocore finds them.
    """

    kind: str  # "file" or "s3"
    path: Path = Path()  # file: the directory
    bucket: str = ""
    prefix: str = ""  # s3: key prefix inside the bucket, "" or ending in "/"
    endpoint: str | None = None
    region: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)

    def __str__(self) -> str:  # never shows the secret
        if self.kind == "file":
            return f"file://{self.path}"
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"


_S3_PARAMS = {"endpoint", "region", "access_key", "secret_key"}


def parse_storage_url(url: str, data_dir: Path) -> StorageUrl:
    """`MQIM_STORAGE_URL`; empty means `file://<data_dir>/uploads`."""
    if not url.strip():
        return StorageUrl("file", path=data_dir / "uploads")
    parts = urlsplit(url.strip())
    if parts.scheme == "file":
        path = unquote(parts.netloc + parts.path)
        if not path or parts.query:
            raise ConfigError(f"MQIM_STORAGE_URL must look like file:///var/lib/mqim/uploads, "
                              f"got {url!r}")
        return StorageUrl("file", path=Path(path))
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError("MQIM_STORAGE_URL must be file:///dir or s3://bucket?endpoint=...; "
                          f"got scheme {parts.scheme!r}")
    query = dict(parse_qsl(parts.query))
    unknown = sorted(set(query) - _S3_PARAMS)
    if unknown:
        raise ConfigError(f"MQIM_STORAGE_URL: unknown parameter(s) {', '.join(unknown)}")
    endpoint = query.get("endpoint")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigError("MQIM_STORAGE_URL: endpoint must be an http:// or https:// URL")
    if ("access_key" in query) != ("secret_key" in query):
        raise ConfigError("MQIM_STORAGE_URL: give both access_key and secret_key, or neither")
    prefix = parts.path.strip("/")
    return StorageUrl(
        "s3", bucket=parts.netloc, prefix=f"{prefix}/" if prefix else "", endpoint=endpoint,
        region=query.get("region"), access_key=query.get("access_key"),
        secret_key=query.get("secret_key"),
    )


def parse_smtp_url(url: str) -> SmtpUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(
            "MQIM_SMTP_URL must look like smtp://user:pass@host:587?starttls=1 or "
            f"smtps://user:pass@host:465, got scheme {parts.scheme!r}"
        )
    query = dict(parse_qsl(parts.query))
    unknown = sorted(set(query) - {"starttls"})
    if unknown:
        raise ConfigError(f"MQIM_SMTP_URL: unknown parameter(s) {', '.join(unknown)}")
    use_tls = parts.scheme == "smtps"
    start_tls: bool | None = None
    if "starttls" in query:
        flag = query["starttls"].lower()
        if use_tls or flag not in _TRUE | _FALSE:
            raise ConfigError("MQIM_SMTP_URL: starttls=1 or starttls=0, and only with smtp://")
        start_tls = flag in _TRUE
    try:
        port = parts.port or (465 if use_tls else 587)
    except ValueError as exc:
        raise ConfigError(f"MQIM_SMTP_URL has a bad port: {exc}") from exc
    return SmtpUrl(
        host=parts.hostname, port=port, username=unquote(parts.username or ""),
        password=unquote(parts.password or ""), use_tls=use_tls, start_tls=start_tls,
    )
