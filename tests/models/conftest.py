"""The database the model-level tests run against: each test module runs once on SQLite (a temp
file) and once on a fresh PostgreSQL database, with the ORM opened and migrated in this process
by `models.db.open_database`, as `mqim serve` does. No server, no broker: tests call the models.

Tortoise is one global per process, so only one of the two is open at a time: the fixture is
module-scoped and parametrized, and pytest runs a module's SQLite tests, closes that database,
then runs them on PostgreSQL. Two things a server never needs (it opens one database per
process) are undone here by hand between the two.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from models.db import open_database
from tests.helpers import make_settings
from tests.stacks import postgres_database


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """The dialect name, once the ORM is open on a migrated, empty database of that kind."""
    kind: str = request.param
    workdir = tmp_path_factory.mktemp(f"models-{kind}")
    # Tortoise caches each model's INSERT/DELETE statements by connection name, not dialect:
    # SQLite's `?` placeholders would reach PostgreSQL after the switch.
    EXECUTOR_CACHE.clear()
    if kind == "sqlite":
        async with open_database(make_settings(workdir)):
            yield kind
        return
    async with postgres_database() as url, open_database(
        make_settings(workdir, database_url=url)
    ):
        yield kind

