"""Mentions over real HTTP and MQTT on both stacks (docs/messages.md): each must name a current
member (1001 naming the others, also as an MQTT `error` with the command's req), "@all" is for
the owner and admins (3007), and counts in every other member's unread_mentions until they read
past it; unsent messages count neither as unread nor as mentions; the thread list's last_message
is never an action entry."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_history_state import react, send, unsend
from tests.api.test_threadlist import item
from tests.helpers import create_group, mqtt_session, next_event, register, unique_id
from tests.stacks import Stack


async def test_mentions_must_be_members_over_http_and_mqtt(
    server: Stack, http: httpx.AsyncClient,
) -> None:
    alice, bob, mallory, former = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, alice, bob, former)
    left = await http.delete(f"/api/threads/{thread_id}/members/{former.user_id}",
                             headers=former.auth)
    assert left.status_code == 200, left.text
    url = f"/api/threads/{thread_id}/messages"
    for strangers in ([mallory.user_id], [former.user_id], ["nobody-here"]):
        response = await http.post(url, headers=alice.auth, json={
            "client_msg_id": unique_id("c"), "body": "hey",
            "mentions": [bob.user_id, *strangers]})
        assert_error(response, 400, 1001, "invalid_parameter")
        assert strangers[0] in response.json()["msg"]
        assert bob.user_id not in response.json()["msg"]
    # Members, the sender included, and a repeated one are fine.
    _, seq = await send(http, alice, thread_id, "ok",
                        mentions=[bob.user_id, alice.user_id, bob.user_id])
    async with mqtt_session(server.settings, alice) as a:
        await a.subscribe(f"{server.settings.topic_prefix}/u/{alice.user_id}", qos=1)
        await a.publish(f"{server.settings.topic_prefix}/up/{alice.user_id}", json.dumps({
            "op": "send", "req": "mention-1", "thread_id": thread_id,
            "client_msg_id": unique_id("c"), "body": "hey", "mentions": [mallory.user_id]}),
            qos=1)
        error = await next_event(a, lambda t, e: e.get("req") == "mention-1")
    assert (error["type"], error["code"], error["error"]) == ("error", 1001, "invalid_parameter")
    assert mallory.user_id in error["msg"]
    # Nothing refused was stored.
    last = (await http.get(url, headers=bob.auth)).json()["data"][-1]
    assert (last["seq"], last["mentions"]) == (seq, [bob.user_id, alice.user_id, bob.user_id])


async def test_mention_all_is_for_admins_and_counts_for_every_other_member(
    http: httpx.AsyncClient,
) -> None:
    owner, admin, bob, carol = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, owner, admin, bob, carol)
    promoted = await http.post(f"/api/threads/{thread_id}/admins", headers=owner.auth,
                               json={"user_ids": [admin.user_id]})
    assert promoted.status_code == 200, promoted.text
    url = f"/api/threads/{thread_id}/messages"
    refused = await http.post(url, headers=bob.auth, json={
        "client_msg_id": unique_id("c"), "body": "everyone!", "mentions": ["@all"]})
    assert_error(refused, 403, 3007, "not_admin")
    await send(http, owner, thread_id, "everyone, from the owner", mentions=["@all"])
    _, last = await send(http, admin, thread_id, "and from an admin",
                         mentions=["@all", bob.user_id])

    async def counts(account: Any) -> tuple[int, int]:
        view = await item(http, account, thread_id)
        return int(view["unread"]), int(view["unread_mentions"])

    assert await counts(bob) == (2, 2)  # one message mentioning him twice counts once
    assert await counts(carol) == (2, 2)
    assert await counts(owner) == (1, 1)  # not their own
    read = await http.post(f"/api/threads/{thread_id}/read", headers=bob.auth,
                           json={"seq": last})
    assert read.status_code == 200, read.text
    assert await counts(bob) == (0, 0)


async def test_unsent_messages_are_not_unread_and_last_message_skips_actions(
    http: httpx.AsyncClient,
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    kept, kept_seq = await send(http, alice, thread_id, "kept", mentions=[bob.user_id])
    gone, _ = await send(http, alice, thread_id, "gone", mentions=[bob.user_id])
    view = await item(http, bob, thread_id)
    assert (view["unread"], view["unread_mentions"]) == (2, 2)
    await unsend(http, alice, thread_id, gone)
    view = await item(http, bob, thread_id)
    assert (view["unread"], view["unread_mentions"]) == (1, 1)
    # The unsend's entry is the newest; the list shows the newest message (a tombstone here).
    assert view["max_seq"] > kept_seq + 1
    assert (view["last_message"]["message_id"], view["last_message"]["deleted"]) == (gone, True)
    await react(http, bob, thread_id, kept, "👍")
    view = await item(http, alice, thread_id)
    assert view["last_message"]["type"] == "message"
    assert view["last_message"]["message_id"] == gone
