"""The two deployment modes the tests run against, each a real stack on free ports:

- embedded: `mqim serve` with its amqtt broker and SQLite in a temp dir;
- mosquitto: Mosquitto started from the repo's own mosquitto.conf with mqim's plugin, a fresh
  PostgreSQL database, and `mqim serve` (bridge + API) pointed at both.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from broker.link.client import derive_service_password
from broker.mosquitto.plugin import build_plugin, render_mosquitto_conf, running_mosquitto
from config import HostPort, Settings
from tests.helpers import free_port, make_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# Trust auth on the loopback, as on the CI machines; override for other setups.
POSTGRES_ADMIN = os.environ.get(
    "MQIM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty database for one stack; dropped afterwards."""
    name = f"mqim_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgres://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def mosquitto_for(
    settings: Settings, workdir: Path, ports: tuple[int, int] | None = None
) -> AsyncIterator[tuple[int, int]]:
    """Mosquitto from the repo's mosquitto.conf, verifying `settings`' JWTs; yields its ports
    (fresh ones unless `ports` is given, e.g. to restart it where clients expect it)."""
    plugin = build_plugin(workdir / "plugin")
    secret_file = workdir / "jwt-secret"
    secret_file.write_text(settings.jwt_secret + "\n", encoding="utf-8")
    secret_file.chmod(0o600)
    data_dir = workdir / "mosquitto-data"
    data_dir.mkdir(exist_ok=True)
    port, ws_port = ports or (free_port(), free_port())
    conf = render_mosquitto_conf(
        (REPO_ROOT / "mosquitto.conf").read_text(encoding="utf-8"),
        tcp_port=port, ws_port=ws_port, data_dir=data_dir, plugin_path=plugin,
        jwt_secret_file=secret_file, topic_prefix=settings.topic_prefix,
        service_users=[settings.bridge_username], user=pwd.getpwuid(os.geteuid()).pw_name,
    )
    conf_path = workdir / "mosquitto.conf"
    conf_path.write_text(conf, encoding="utf-8")
    async with running_mosquitto(conf_path, host="127.0.0.1", port=port,
                                 log_path=workdir / "mosquitto.log"):
        yield port, ws_port


def external_broker_settings(settings: Settings, port: int, ws_port: int, **extra: Any) -> Settings:
    """Settings for the API and bridge against that Mosquitto. `mqtt`/`mqtt_ws` (unused with an
    external broker) are set to its listeners, so tests find where clients connect."""
    password = derive_service_password(settings.jwt_secret, settings.bridge_username)
    return replace(
        settings,
        broker_url=f"mqtt://{settings.bridge_username}:{password}@127.0.0.1:{port}",
        mqtt=HostPort("127.0.0.1", port), mqtt_ws=HostPort("127.0.0.1", ws_port), **extra,
    )


@dataclass(frozen=True)
class Stack:
    """A running `mqim serve` process and the settings it was started with."""

    settings: Settings
    process: asyncio.subprocess.Process
    log_path: Path

    def env(self) -> dict[str, str]:
        return settings_env(self.settings)

    async def cli(self, *args: str) -> str:
        """Run another `mqim` command against this stack's database and broker."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mqim", *args, env=self.env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        assert process.returncode == 0, out.decode()
        return out.decode()


def settings_env(settings: Settings) -> dict[str, str]:
    """The MQIM_* environment that makes a process see `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQIM_")}
    values = {
        "http": settings.http, "mqtt": settings.mqtt, "mqtt_ws": settings.mqtt_ws or "off",
        "broker_url": settings.broker_url, "data_dir": settings.data_dir,
        "database_url": settings.database_url, "jwt_secret": settings.jwt_secret,
        "topic_prefix": settings.topic_prefix, "bcrypt_rounds": settings.bcrypt_rounds,
        "mqtt_hook_secret": settings.mqtt_hook_secret, "broker_kind": settings.broker_kind,
        "rabbitmq_management_url": settings.rabbitmq_management_url,
        "rabbitmq_amqp_url": settings.rabbitmq_amqp_url,
        "access_token_ttl": settings.access_token_ttl,
        "smtp_url": settings.smtp_url, "mail_from": settings.mail_from,
        "require_email_code": settings.require_email_code,
        "email_code_interval": settings.email_code_interval,
        "restore_window_days": settings.restore_window_days,
        "rate_limits": settings.rate_limits, "rate_limit_storage": settings.rate_limit_storage,
        "rate_limit_login_account": settings.rate_limit_login_account,
        "rate_limit_login_address": settings.rate_limit_login_address,
        "rate_limit_register_address": settings.rate_limit_register_address,
        "rate_limit_code_address": settings.rate_limit_code_address,
        "rate_limit_sends": settings.rate_limit_sends,
        "storage_url": settings.storage_url, "max_upload_bytes": settings.max_upload_bytes,
        "unsend_window": settings.unsend_window, "edit_window": settings.edit_window,
        "reach": settings.reach, "push_previews": settings.push_previews,
        "push_coalesce_ms": settings.push_coalesce_ms,
        "vapid_private_key": settings.vapid_private_key, "vapid_subject": settings.vapid_subject,
        "webhook_timeout": settings.webhook_timeout,
        "webhook_max_attempts": settings.webhook_max_attempts,
        "webhook_backoff_ms": settings.webhook_backoff_ms,
        "reach_allow_insecure": settings.reach_allow_insecure,
        "bridge_linger_ms": settings.bridge_linger_ms,
    }
    env.update({f"MQIM_{k.upper()}": str(v) for k, v in values.items()})
    return env


STARTUP_SECONDS = 60


async def _wait_healthy(stack: Stack) -> None:
    url = f"http://{stack.settings.http}/health"
    async with httpx.AsyncClient(timeout=2) as client:
        deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
        while True:
            if stack.process.returncode is not None:
                raise RuntimeError(f"mqim serve exited:\n{stack.log_path.read_text()[-4000:]}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"mqim serve never became healthy:\n"
                                   f"{stack.log_path.read_text()[-4000:]}")
            await asyncio.sleep(0.05)  # polling the health endpoint, not synchronising


async def start_mqim(settings: Settings, log_path: Path, *args: str) -> Stack:
    """`python -m mqim ARGS` with `settings` in its environment, output appended to log_path."""
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mqim", *args, env=settings_env(settings),
            stdout=log, stderr=log,
        )
    return Stack(settings, process, log_path)


async def stop_mqim(stack: Stack) -> None:
    if stack.process.returncode is None:
        stack.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(stack.process.wait(), 30)
        except TimeoutError:
            stack.process.kill()
            await stack.process.wait()


@asynccontextmanager
async def mqim_process(
    settings: Settings, log_path: Path, *args: str, http: bool = True
) -> AsyncIterator[Stack]:
    """`python -m mqim ARGS` until the block exits (then SIGTERM); with `http`, yields once
    its /health answers."""
    stack = await start_mqim(settings, log_path, *args)
    try:
        if http:
            await _wait_healthy(stack)
        yield stack
    finally:
        await stop_mqim(stack)


def serve_process(settings: Settings, log_path: Path) -> AbstractAsyncContextManager[Stack]:
    """`mqim serve`: broker (unless external), bridge and API in one process."""
    return mqim_process(settings, log_path, "serve")


@asynccontextmanager
async def running_stack(mode: str, workdir: Path, **overrides: Any) -> AsyncIterator[Stack]:
    settings = make_settings(workdir, **overrides)
    log_path = workdir / "mqim.log"
    if mode == "embedded":
        async with serve_process(settings, log_path) as stack:
            yield stack
        return
    async with postgres_database() as db_url, mosquitto_for(settings, workdir) as (port, ws):
        external = external_broker_settings(settings, port, ws, database_url=db_url)
        async with serve_process(external, log_path) as stack:
            yield stack
