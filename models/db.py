"""The one place Tortoise is initialised: `async with open_database(settings):`.

Schemas are created on first start (`generate_schemas(safe=True)`); SQLite runs in WAL mode with a
busy timeout so a second process (say `mqim api` beside `mqim bridge`) waits instead of failing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tortoise import Tortoise, connections

from config import Settings

logger = logging.getLogger(__name__)

MODEL_MODULES = ["models.user", "models.session", "models.thread", "models.message"]


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


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[None]:
    """Connect the ORM for this process, create missing tables, and close it on exit."""
    url = _prepare_url(settings.db_url)
    await Tortoise.init(
        db_url=url,
        modules={"models": MODEL_MODULES},
        # The Starlette lifespan and the bridge run in tasks of their own.
        _enable_global_fallback=True,
    )
    try:
        await Tortoise.generate_schemas(safe=True)
        logger.info("database ready at %s", describe_database(settings.db_url))
        yield
    finally:
        await connections.close_all()


async def truncate_all_models() -> None:
    """Delete every row (tests only): children first, so foreign keys hold."""
    from models.message import Message
    from models.session import LoginSession
    from models.thread import Member, Thread
    from models.user import User

    for model in (Message, Member, Thread, LoginSession, User):
        await model.all().delete()
