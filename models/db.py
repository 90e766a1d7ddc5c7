"""The one place Tortoise is initialised: `async with open_database(settings):`.

The schema comes from the migrations in `models/migrations/` (tortoise's own migration tool),
applied by `mqim migrate` and again, harmlessly, at every start. On PostgreSQL an advisory lock
makes concurrent starters (several bridge workers) wait for one another. SQLite runs in WAL mode
with a busy timeout so a second process waits instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import DBConnectionError, ValidationError
from tortoise.migrations.api.migrate import migrate

from config import Settings
from contract.errors import InvalidParameterError

logger = logging.getLogger(__name__)

MODEL_MODULES = [
    "models.user", "models.session", "models.thread", "models.message", "models.aclrule",
    "models.friendship", "models.friend_request", "models.block", "models.friendgroup",
    "models.verification", "models.presence", "models.invitation", "models.announcement",
    "models.upload", "models.reaction", "models.msgedit", "models.msgfile", "models.poll",
    "models.reach", "models.push", "models.webhook", "models.bot",
]


def _prepare_url(url: str) -> str:
    if url.startswith("sqlite://") and url != "sqlite://:memory:":
        path = Path(url.removeprefix("sqlite://").split("?", 1)[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        if "?" not in url:
            # NORMAL is durable across application crashes in WAL mode (only an OS crash may
            # lose the newest commits) and is several times faster than FULL.
            url += "?journal_mode=WAL&synchronous=NORMAL&busy_timeout=10000"
    return url


def describe_database(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset for a connection going back: nothing beyond asyncpg's own rollback of an
    open transaction. mqim sets no session state on pooled connections (advisory locks take a
    connection of their own), and the default reset (RESET ALL, CLOSE ALL, UNLISTEN *, unlock
    all) costs one more round trip and server work after every query outside a transaction."""


def _connection_config(url: str) -> str | dict[str, Any]:
    url = _prepare_url(url)
    if not url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        return url
    config = expand_db_url(url)
    config["credentials"]["reset"] = _keep_session
    # Prepared statements (asyncpg caches them) otherwise get a custom plan at every execution
    # when their parameters are arrays: planning the bridge's batch statements cost more server
    # CPU than running them. mqim's queries are index lookups whose plan does not depend on the
    # values (models/append.py probes pairs through LIMIT 1 lateral subqueries for that), so one
    # generic plan per statement serves them all; asyncpg re-prepares cached statements after
    # five minutes, so plans follow the tables as they grow.
    config["credentials"]["server_settings"] = {"plan_cache_mode": "force_generic_plan"}
    return config


def tortoise_config(url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _connection_config(url)},
        "apps": {"models": {"models": MODEL_MODULES, "migrations": "models.migrations",
                            "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


def migration_config(url: str) -> dict[str, Any]:
    """The ORM configuration to migrate with. On SQLite without foreign-key enforcement: the
    migration tool changes a column by rebuilding the table (copy, drop, rename), and with
    enforcement on, dropping a table deletes the rows that reference it (ON DELETE CASCADE), as
    Django also knows. Each migration's own statements keep the data consistent."""
    config = tortoise_config(url)
    default = config["connections"]["default"]
    if isinstance(default, str) and default.startswith("sqlite://"):
        config["connections"]["default"] = default + ("&" if "?" in default else "?") + (
            "foreign_keys=OFF")
    return config


# Any constant works; it names "mqim schema migration" among advisory locks.
_MIGRATION_LOCK = 0x6D71696D


@asynccontextmanager
async def advisory_lock(url: str, key: int) -> AsyncIterator[None]:
    """Serialise a task across processes sharing a PostgreSQL database (a no-op on SQLite,
    whose single writer and single-process deployments need none)."""
    if not url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        yield
        return
    conn = await asyncpg.connect(url.replace("asyncpg://", "postgresql://", 1))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", key)
        yield
    finally:
        await conn.close()  # also releases the lock


async def migrate_database(
    settings: Settings, progress: Callable[[str, str, str], object] | None = None
) -> None:
    """Apply every migration not yet applied; safe to run from several processes at once."""
    async with advisory_lock(settings.db_url, _MIGRATION_LOCK):
        await migrate(config=migration_config(settings.db_url), progress=progress)
    await connections.close_all()


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[None]:
    """Migrate, connect the ORM for this process, and close it on exit."""
    await migrate_database(settings)
    # The Starlette lifespan and the bridge run in tasks of their own: global fallback.
    await Tortoise.init(config=tortoise_config(settings.db_url), _enable_global_fallback=True)
    try:
        logger.info("database ready at %s", describe_database(settings.db_url))
        yield
    finally:
        # Also uninstalls the process-wide fallback, so the process may open a database again.
        await Tortoise.close_connections()



# Long enough for a busy database, short enough not to hold a bridge batch for long.
PING_TIMEOUT_SECONDS = 5.0


async def database_alive() -> bool:
    """Whether the database answers a trivial query: tells a fault of the database (pause and
    retry) from a fault of one command (answer that command with an error and go on)."""
    try:
        async with asyncio.timeout(PING_TIMEOUT_SECONDS):
            await connections.get("default").execute_query("SELECT 1")
    except Exception:  # noqa: BLE001  # any failure to answer means "not alive"
        return False
    return True


# Failures that a retry after a pause fixes, rather than a statement's own: a lost or reset
# connection (a failover, an admin's terminate, a restart), a driver whose connection state broke
# with it, or a transaction PostgreSQL rolled back to break a deadlock or a serialization
# conflict with another (SQLSTATE class 40).
_TRANSIENT_FAULTS: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError and its kind
    TimeoutError,
    DBConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, terminated backend
    asyncpg.exceptions.TransactionRollbackError,  # deadlock_detected, serialization_failure
)


def is_transient_fault(exc: BaseException) -> bool:
    """Whether `exc`, or what it was raised from, is the database connection failing or a
    transaction rolled back for another's sake (so a retry after a pause is right), as opposed
    to a statement refused for its data."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _TRANSIENT_FAULTS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


# What the ORM raises for a value it refuses before asking the database.
REFUSED_VALUE = ValidationError


def refused_value(exc: BaseException) -> InvalidParameterError | None:
    """The client's error behind an exception the ORM raised before asking the database: a value
    its field cannot hold (an id longer than any stored one, say), as 1001. None for anything
    else. The HTTP layer and the bridge answer with it instead of an internal error."""
    if isinstance(exc, ValidationError):
        return InvalidParameterError(f"a value is out of range: {exc}")
    return None
