"""The migrations describe the models exactly: tortoise's autodetector, asked what a new
migration would hold, finds nothing. A model change without its migration fails here, before a
server meets a schema its code does not match."""

from __future__ import annotations

from pathlib import Path

from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

from models.db import tortoise_config


async def test_the_models_need_no_new_migration(tmp_path: Path) -> None:
    config = tortoise_config(f"sqlite://{tmp_path / 'drift.db'}")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    assert [w.as_string() for w in writers] == []
