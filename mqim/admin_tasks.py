"""One-shot admin commands: `mqim migrate`, `mqim broker init`, `mqim acl ...`, `mqim admin`,
`mqim users purge`.

They print for a human on stdout and return an exit status.
"""

from __future__ import annotations

import sys
from datetime import timedelta

from actions.admin import user_acl
from broker.acl import Access, check_topic_access
from broker.errors import BrokerError
from broker.link.client import derive_service_password
from broker.mosquitto.plugin import build_plugin
from config import Settings
from contract.errors import MqimError
from contract.topics import TopicScheme
from models.account import purge_deleted_users
from models.db import describe_database, migrate_database, open_database
from models.user import get_user, set_admin
from mqim.acl_sync import sync_mosquitto
from mqim.directory import ModelDirectory
from mqim.processes import mosquitto_control, pushes_to_mosquitto


def say(text: str) -> None:
    print(text, flush=True)  # noqa: T201  # these commands talk to a human


async def migrate(settings: Settings) -> int:
    say(f"migrating {describe_database(settings.db_url)}")

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_start":
            say(f"  applying {app_label}.{name} ...")

    await migrate_database(settings, progress)
    say("database is up to date")
    return 0


async def init_mosquitto(settings: Settings) -> int:
    out = settings.data_dir / "mosquitto"
    say(f"building mqim's Mosquitto plugin into {out} ...")
    plugin = build_plugin(out)
    say(f"  {plugin}")
    secret_file = settings.data_dir / "jwt-secret"
    if not secret_file.exists():  # MQIM_JWT_SECRET was given: the plugin reads it from a file
        secret_file.write_text(settings.jwt_secret + "\n", encoding="utf-8")
        secret_file.chmod(0o600)
    elif secret_file.read_text(encoding="utf-8").strip() != settings.jwt_secret:
        say(f"error: {secret_file} holds another secret than MQIM_JWT_SECRET; the plugin would "
            "refuse every token. Remove one of them.")
        return 1
    say(f"JWT secret (verified by the plugin): {secret_file}")
    password = derive_service_password(settings.jwt_secret, settings.bridge_username)
    say("Start Mosquitto from the repository root with:  mosquitto -c mosquitto.conf")
    say("Then point the API and bridges at it, e.g.:")
    say(f"  export MQIM_BROKER_URL=mqtt://{settings.bridge_username}:{password}@127.0.0.1:1883")
    return 0


async def acl(
    settings: Settings, action: str, user: str | None, topic: str | None, access: str | None
) -> int:
    scheme = TopicScheme(settings.topic_prefix)
    async with open_database(settings):
        if action == "sync":
            if settings.embedded_broker or settings.broker_kind == "hooks":
                say("this broker asks mqim on each check: nothing to sync")
                return 0
            async with mosquitto_control(settings, "cli") as control:
                counts = await sync_mosquitto(control, settings, force=True)
            say("synced: " + ", ".join(f"{k} {v}" for k, v in (counts or {}).items()))
            return 0
        if not user:
            say(f"mqim acl {action}: a USER is needed")
            return 2
        try:
            _ = await get_user(user)
        except MqimError as exc:
            say(exc.msg)
            return 1
        if action == "show":
            for line in await user_acl(scheme, user):
                say(f"{line.access:<9} {line.topic:<48} ({line.source})")
            return 0
        if not topic or not access:
            say("mqim acl check: USER TOPIC read|write|subscribe are needed")
            return 2
        kind = {"read": Access.RECEIVE, "write": Access.PUBLISH,
                "subscribe": Access.SUBSCRIBE}[access]
        allowed = await check_topic_access(
            username=user, topic=topic, access=kind, scheme=scheme,
            directory=ModelDirectory(settings.jwt_secret, cache=False),
            service_users={settings.bridge_username},
        )
        say(f"{'allow' if allowed else 'deny'}: {user} {access} {topic}")
        return 0 if allowed else 1


async def set_admin_role(settings: Settings, user: str, grant: bool) -> int:
    async with open_database(settings):
        try:
            _ = await set_admin(user, grant)
        except MqimError as exc:
            print(exc.msg, file=sys.stderr)  # noqa: T201  # CLI output
            return 1
    say(f"{user} is {'now' if grant else 'no longer'} an admin")
    return 0


async def purge_users(settings: Settings, *, dry_run: bool) -> int:
    """Hard-delete the accounts deleted longer ago than the restore window."""
    window = timedelta(days=settings.restore_window_days)
    async with open_database(settings):
        ids = await purge_deleted_users(window, dry_run=dry_run)
        if dry_run:
            for user_id in ids:
                say(f"  {user_id}")
            say(f"would purge {len(ids)} user(s) deleted more than "
                f"{settings.restore_window_days} day(s) ago")
            return 0
        say(f"purged {len(ids)} user(s) deleted more than {settings.restore_window_days} "
            "day(s) ago")
        if ids and pushes_to_mosquitto(settings):
            # Mosquitto's plugin still holds their memberships and rules in memory; a new
            # account with the same id must not inherit them.
            try:
                async with mosquitto_control(settings, "cli") as control:
                    _ = await sync_mosquitto(control, settings, force=True)
            except BrokerError as exc:
                say(f"Mosquitto was not updated ({exc}); run `mqim acl sync`")
                return 1
            say("Mosquitto's access state resynced")
    return 0
