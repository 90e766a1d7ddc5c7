"""The `react`, `unreact`, `edit` and `unsend` ops from a real MQTT client on both stacks
(docs/mqtt.md): each answered on the user's topic by an `ack` whose data is the ActionResult,
each refusal by an `error` carrying the command's `req`, and the entries published on the thread
topic, the same as the HTTP routes' (tests/api/test_msgactions.py)."""

from __future__ import annotations

import json
from typing import Any

import aiomqtt
import httpx

from tests.api.test_msgactions import age_message, post, sql
from tests.helpers import create_group, mqtt_session, next_event, register, unique_id
from tests.stacks import Stack


class Device:
    """One user's MQTT client: sends ops on their uplink, reads their personal topic."""

    def __init__(self, server: Stack, client: aiomqtt.Client, user_id: str) -> None:
        self.client, self.prefix, self.user_id = client, server.settings.topic_prefix, user_id
        self.seen: list[tuple[str, dict[str, Any]]] = []  # what came while waiting for answers

    async def op(self, op: str, **fields: Any) -> dict[str, Any]:
        """The ack or error that answers the op (matched by its req)."""
        req = unique_id("r")
        await self.client.publish(f"{self.prefix}/up/{self.user_id}", qos=1,
                                  payload=json.dumps({"op": op, "req": req, **fields}))
        return await next_event(self.client, lambda t, e: e.get("req") == req, seen=self.seen)

    async def ack(self, op: str, **fields: Any) -> int | None:
        answer = await self.op(op, **fields)
        assert answer["type"] == "ack", answer
        data = answer["data"]
        assert set(data) == {"thread_id", "message_id", "seq"}
        assert (data["thread_id"], data["message_id"]) == (fields["thread_id"],
                                                           fields["message_id"])
        seq: int | None = data["seq"]
        return seq

    async def error(self, op: str, code: int, **fields: Any) -> None:
        answer = await self.op(op, **fields)
        assert (answer["type"], answer["code"]) == ("error", code), answer


async def test_message_action_ops(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob, mallory = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    mid, _ = await post(http, alice, thread_id, "original")
    prefix = server.settings.topic_prefix
    ids = {"thread_id": thread_id, "message_id": mid}
    async with (mqtt_session(server.settings, alice) as a, mqtt_session(server.settings, bob) as b,
                mqtt_session(server.settings, mallory) as m):
        for client, account in ((a, alice), (b, bob), (m, mallory)):
            await client.subscribe(f"{prefix}/u/{account.user_id}", qos=1)
        await a.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        da, db, dm = Device(server, a, alice.user_id), Device(server, b, bob.user_id), Device(
            server, m, mallory.user_id)

        react = await db.ack("react", **ids, emoji="🎉")
        assert react is not None
        assert await db.ack("react", **ids, emoji="🎉") is None
        await db.error("react", 4003, **ids, emoji="\x00")
        await db.error("react", 4003, **ids, emoji="  ")
        await db.error("react", 1001, **ids, emoji="z" * 33)
        await dm.error("react", 3003, **ids, emoji="🎉")
        await db.error("react", 4001, thread_id=thread_id, message_id="m0000nope", emoji="🎉")
        assert await da.ack("unreact", **ids, emoji="🎉") is None  # bob's, not alice's
        unreact = await db.ack("unreact", **ids, emoji="🎉")

        await db.error("edit", 4005, **ids, body="bob's words")
        await da.error("edit", 4003, **ids, body="")
        await da.error("edit", 1001, **ids)
        edited = await da.ack("edit", **ids, body="edited")
        assert await da.ack("edit", **ids, body="edited") is None

        await db.error("unsend", 1004, **ids)
        await dm.error("unsend", 3003, **ids)
        unsent = await da.ack("unsend", **ids)
        assert unsent is not None
        assert await da.ack("unsend", **ids) is None
        await db.error("react", 4001, **ids, emoji="🎉")
        await da.error("edit", 4001, **ids, body="too late")

        old, _ = await post(http, bob, thread_id, "old")
        await age_message(server, old)
        await db.error("unsend", 4004, thread_id=thread_id, message_id=old)
        await db.error("edit", 4004, thread_id=thread_id, message_id=old, body="x")
        by_admin = await da.ack("unsend", thread_id=thread_id, message_id=old)

        if not any(e.get("seq") == by_admin for _, e in da.seen):
            last = await next_event(a, lambda t, e: e.get("seq") == by_admin, seen=da.seen)
            da.seen.append((f"{prefix}/t/{thread_id}", last))
    entries = [e for t, e in da.seen if t == f"{prefix}/t/{thread_id}"]
    assert [(e["type"], e["seq"]) for e in entries] == [
        ("message_reaction", react), ("message_reaction", unreact), ("message_edit", edited),
        ("message_unsend", unsent), ("message", unsent + 1), ("message_unsend", by_admin)]
    assert (entries[0]["action"], entries[1]["action"]) == ("add", "remove")
    assert (entries[2]["message_id"], entries[2]["body"]) == (mid, "edited")
    assert entries[3]["deleted_by"] == alice.user_id
    [(deleted,)] = await sql(server, "SELECT deleted FROM message WHERE id = ?", old)
    assert bool(deleted)
