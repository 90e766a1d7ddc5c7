"""Every column of a batch's messages reads back as drafted, on both dialects: PostgreSQL's write
takes the messages as one JSON document (models/appendwrite.py), so quoting, non-ASCII text,
nested content and JSON null versus SQL NULL are checked here. The rows append_messages returns
carry the same values as the stored ones."""

from __future__ import annotations

from typing import Any

import pytest
from tortoise import connections

from models.append import StoredMessage
from models.message import Draft, EntryKind, Message
from tests.models.builders import append, draft, new_group, new_users, stored

pytestmark = pytest.mark.usefixtures("database")

COLUMNS = ("id", "thread_id", "seq", "sender_id", "client_msg_id", "type", "body", "reply_to",
           "mentions", "attachments", "content", "forwarded_from")


def columns(message: Message | StoredMessage) -> dict[str, Any]:
    return {name: getattr(message, name) for name in COLUMNS}


async def test_every_column_reads_back_as_drafted() -> None:
    alice, bob = await new_users(2)
    group = await new_group(alice, bob)
    parent = stored((await append([draft(alice, group, body="parent")]))[0])
    drafts: list[Draft] = [
        draft(alice, group, body='quotes " \\ \' and \n new lines, \u2028, ä, 😀, </script>'),
        draft(bob, group, reply_to=parent.id, mentions=[alice], body="@alice"),
        draft(alice, group, type="image", body=None,
              content={"upload_id": None, "w": 1.5, "nested": {"list": [1, "two", None]},
                       "unicode": "ü 😀"},
              attachments=[{"url": "https://x/y?a=1&b=\"2\"", "size": 9_007_199_254_740_993}]),
        draft(bob, group, body="forwarded",
              forwarded_from={"thread_id": "t_x", "message_id": "m_y", "sender_id": None}),
    ]
    returned = [stored(r) for r in await append(drafts)]
    for row, sent in zip(returned, drafts, strict=True):
        loaded = await Message.get(id=row.id)
        assert columns(loaded) == columns(row)
        assert (loaded.body, loaded.content, loaded.forwarded_from, loaded.reply_to) == (
            sent.body, sent.content, sent.forwarded_from, sent.reply_to)
        assert (loaded.mentions, loaded.attachments) == (sent.mentions, sent.attachments)
        assert loaded.kind == row.kind == EntryKind.MESSAGE
        assert not loaded.deleted
        assert loaded.created_at == row.created_at
    # No content is SQL NULL, not a JSON null, and a JSON null inside content stays one.
    ids = [row.id for row in returned]
    _, nulls = await connections.get("default").execute_query(
        "SELECT id FROM message WHERE content IS NULL AND forwarded_from IS NULL AND "  # noqa: S608
        f"id IN ({', '.join(repr(i) for i in ids)})")  # the ids this test made
    assert {next(iter(r)) for r in nulls} == {ids[0], ids[1]}
