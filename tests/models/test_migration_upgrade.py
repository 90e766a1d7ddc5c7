"""Every migration from 0003 on, step by step, over a database that already holds a thread, its
members and its messages, on SQLite and PostgreSQL, then all the way back and up again: no row is
lost on the way (a column change on SQLite rebuilds the table, and with foreign keys enforced the
rebuild's DROP cascaded to every message and membership: models/migration_ops.py,
models/db.migration_config), the new columns take their defaults, and search finds the old
bodies.

The rows are written with SQL, as a server running 0003 stored them.
"""

from __future__ import annotations

from tortoise import Tortoise, connections
from tortoise.migrations.api.migrate import migrate

from config import Settings
from models.db import migration_config, open_database
from models.message import Message
from models.msgsearch import SearchQuery, search_thread
from models.thread import Member, Thread
from tests.models.test_migration_0003 import AT, _execute, _insert, _migrate_to, settings

__all__ = ["settings"]  # the fixture: one fresh database of each kind

START = "models.0003_group_members_reference_friendships"
STEPS = ["0004_thread_governance", "0005_uploads", "0006_message_search", "0007_rich_messages",
         "0008_message_search_words", "0009_reach"]
BODIES = ["hello old world", "你好世界", "plain text"]
COUNTS = ["SELECT count(*) AS n FROM thread", "SELECT count(*) AS n FROM thread_member",
          "SELECT count(*) AS n FROM message"]


def _rows_under_0003() -> list[str]:
    return [
        _insert("user_account", "id, name, password_hash, created_at, is_admin",
                [f"('{u}', 'user {u}', 'x', '{AT}', false)" for u in ("mu", "mv")]),
        _insert("thread", "id, kind, name, last_seq, created_at, last_activity_at",
                [f"('tm', 'group', 'g', {len(BODIES)}, '{AT}', '{AT}')"]),
        _insert("thread_member", "thread_id, user_id, role, read_seq, joined_at",
                [f"('tm', 'mu', 'owner', 3, '{AT}')", f"('tm', 'mv', 'member', 0, '{AT}')"]),
        _insert("message", "id, thread_id, seq, kind, sender_id, type, body, mentions, "
                "attachments, created_at",
                [f"('mm{i}', 'tm', {i}, 'message', 'mu', 'text', '{b}', '[]', '[]', '{AT}')"
                 for i, b in enumerate(BODIES, 1)]),
    ]


async def _counts_at(settings: Settings, target: str) -> list[int]:
    """Migrate to `target`; then the number of threads, members and messages."""
    try:
        await migrate(config=migration_config(settings.db_url), target=target)
        return [int((await _execute([q]))[0]["n"]) for q in COUNTS]
    finally:
        await connections.close_all()


async def test_every_step_keeps_the_rows_both_ways(settings: Settings) -> None:
    await _migrate_to(settings, START, _rows_under_0003())
    for step in STEPS:
        assert await _counts_at(settings, f"models.{step}") == [1, 2, len(BODIES)], step
    try:
        async with open_database(settings):
            thread = await Thread.get(id="tm")
            assert (thread.status, thread.history_visibility, thread.admins_only_send) == (
                "active", "joined", False)
            members = await Member.filter(thread_id="tm").order_by("user_id")
            assert [(m.user_id, m.join_seq, m.delivered_seq, m.recv_msg_opt) for m in members] == [
                ("mu", 1, 0, 0), ("mv", 1, 0, 0)]
            rows = await Message.filter(thread_id="tm").order_by("seq")
            assert [(m.body, m.deleted, m.content) for m in rows] == [
                (b, False, None) for b in BODIES]
            for text, found in (("好世", "mm2"), ("o old w", "mm1")):
                hits = await search_thread("mv", "tm", SearchQuery(text=text))
                assert [m.id for m in hits.messages] == [found]
    finally:
        await Tortoise.close_connections()

    for step in reversed([START.removeprefix("models."), *STEPS[:-1]]):
        assert await _counts_at(settings, f"models.{step}") == [1, 2, len(BODIES)], step
    assert await _counts_at(settings, f"models.{STEPS[-1]}") == [1, 2, len(BODIES)]
