"""Migration 0003 (friend-group members reference the friendship row) on SQLite and PostgreSQL:
friend-group rows written under 0002 survive the step to 0003 through the path `mqim migrate`
and every start take (`models.db.migrate_database`), ending a friendship then empties the groups
by the database's cascade, and the step back to 0002 restores the rows as they were.

The rows are written with SQL, as a server running 0002 stored them: today's models describe
0003's tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.migrations.api.migrate import migrate

from config import Settings
from models.db import migrate_database, migration_config, open_database
from models.friendgroup import FriendGroupMember, GroupRef, groups_by_member
from models.friendship import remove_friend
from tests.helpers import make_settings
from tests.stacks import postgres_database

BEFORE = "models.0002_social_and_accounts"
AT = "2026-01-02 03:04:05.000006+00:00"
# Under 0002: a and b and a and c are friends; d is nobody's friend.
USERS = ["ma", "mb", "mc", "md"]
FRIENDSHIPS = {11: ("ma", "mb"), 12: ("mb", "ma"), 13: ("ma", "mc"), 14: ("mc", "ma")}
GROUPS = {1: ("ma", "work"), 2: ("ma", "family"), 3: ("mb", "school")}
# id: (group, member). 104 names someone who is not the owner's friend (unfriending always
# emptied the groups, so no server stored one; the migration drops it all the same).
MEMBERS = {100: (1, "mb"), 101: (1, "mc"), 102: (2, "mc"), 103: (3, "ma"), 104: (2, "md")}


@pytest.fixture(params=["sqlite", "postgres"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings naming a fresh, empty database of each kind."""
    # Tortoise caches statements by connection name, not dialect (see tests/models/conftest.py).
    EXECUTOR_CACHE.clear()
    if request.param == "sqlite":
        yield make_settings(tmp_path)
        return
    async with postgres_database() as url:
        yield make_settings(tmp_path, database_url=url)


async def _execute(statements: list[str]) -> list[dict[str, Any]]:
    """Run statements on the open connection; the rows of the last one."""
    rows: list[dict[str, Any]] = []
    for statement in statements:
        _, found = await connections.get("default").execute_query(statement)
        rows = [dict(r) for r in found]
    return rows


async def _migrate_to(settings: Settings, target: str, statements: list[str]
                      ) -> list[dict[str, Any]]:
    """Migrate to `target` (forwards or back), then run the statements."""
    try:
        await migrate(config=migration_config(settings.db_url), target=target)
        return await _execute(statements)
    finally:
        await connections.close_all()


def _insert(table: str, columns: str, rows: list[str]) -> str:
    return f"INSERT INTO {table} ({columns}) VALUES {', '.join(rows)}"  # noqa: S608  # constants


def _rows_under_0002() -> list[str]:
    return [
        _insert("user_account", "id, name, password_hash, created_at, is_admin",
                [f"('{u}', 'user {u}', 'x', '{AT}', false)" for u in USERS]),
        _insert("friendship", "id, user_id, friend_id, created_at",
                [f"({i}, '{u}', '{f}', '{AT}')" for i, (u, f) in FRIENDSHIPS.items()]),
        _insert("friend_group", "id, owner_id, name, created_at",
                [f"({i}, '{o}', '{n}', '{AT}')" for i, (o, n) in GROUPS.items()]),
        _insert("friend_group_member", "id, group_id, friend_id, created_at",
                [f"({i}, {g}, '{f}', '{AT}')" for i, (g, f) in MEMBERS.items()]),
    ]


async def _members() -> list[tuple[int, int, int]]:
    rows = await FriendGroupMember.all().order_by("id").values_list(
        "id", "group_id", "friendship_id")
    return [(int(i), int(g), int(f)) for i, g, f in rows]


async def test_friend_group_members_survive_0003_and_follow_their_friendship(
    settings: Settings,
) -> None:
    await _migrate_to(settings, BEFORE, _rows_under_0002())
    await migrate_database(settings)  # what `mqim migrate` and every start run

    try:
        async with open_database(settings):
            # Each member now names the friendship (group owner, member), under its old id.
            assert await _members() == [(100, 1, 11), (101, 1, 13), (102, 2, 13), (103, 3, 12)]
            first = await FriendGroupMember.get(id=100)
            assert first.created_at.isoformat() == "2026-01-02T03:04:05.000006+00:00"
            assert await groups_by_member("ma", ["mb", "mc", "md"]) == {
                "mb": [GroupRef(1, "work")], "mc": [GroupRef(1, "work"), GroupRef(2, "family")]}
            assert await groups_by_member("mb", ["ma"]) == {"ma": [GroupRef(3, "school")]}

            # A new member takes an id after the restored ones (PostgreSQL's sequence moved).
            added = await FriendGroupMember.create(group_id=2, friendship_id=11)
            assert added.id > 103

            # Ending a friendship empties both users' groups of each other, by the cascade.
            await remove_friend("mc", "ma")
            assert await _members() == [(100, 1, 11), (103, 3, 12), (added.id, 2, 11)]
            await FriendGroupMember.filter(id=added.id).delete()
    finally:
        await Tortoise.close_connections()

    # And back: 0002's rows, the friend named again, for the members that are left.
    restored = await _migrate_to(settings, BEFORE, [
        "SELECT id, group_id, friend_id FROM friend_group_member ORDER BY id"])
    assert [(r["id"], r["group_id"], r["friend_id"]) for r in restored] == [
        (100, 1, "mb"), (103, 3, "ma")]
