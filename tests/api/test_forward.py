"""Forwarding over real HTTP on both stacks (docs/messages.md): a copy in each target with
`forwarded_from` naming the original author (kept through a forward of a forward), mentions and
reply_to dropped, the whole call refused when one target is, the source's refusals, polls
refused, and a forwarded image's upload readable by the target's members only."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_polls import create_poll, timeline
from tests.api.test_uploads import png, upload
from tests.helpers import Account, create_group, register, unique_id


async def send(http: httpx.AsyncClient, who: Account, thread_id: str, **body: Any) -> str:
    body = {"client_msg_id": unique_id("c"), "body": "hello", **body}
    response = await http.post(f"/api/threads/{thread_id}/messages", headers=who.auth, json=body)
    assert response.status_code == 201, response.text
    message_id: str = response.json()["data"]["message_id"]
    return message_id


async def forward(http: httpx.AsyncClient, who: Account, thread_id: str, message_id: str,
                  thread_ids: Any) -> httpx.Response:
    return await http.post(f"/api/threads/{thread_id}/messages/{message_id}/forward",
                           headers=who.auth, json={"thread_ids": thread_ids})


async def message_in(http: httpx.AsyncClient, who: Account, thread_id: str,
                     message_id: str) -> dict[str, Any]:
    [message] = [e for e in await timeline(http, who, thread_id)
                 if e["type"] in ("message", "message_reply") and e["message_id"] == message_id]
    return message


async def test_forward_into_two_threads(http: httpx.AsyncClient) -> None:
    alice, bob, carol, dave = [await register(http) for _ in range(4)]
    source = await create_group(http, alice, bob)
    first, second = await create_group(http, alice, carol), await create_group(http, alice, dave)
    earlier = await send(http, alice, source)
    original = await send(http, bob, source, body="look at this", mentions=[alice.user_id],
                          reply_to=earlier)
    response = await forward(http, alice, source, original, [first, second])
    assert response.status_code == 201, response.text
    copies = response.json()["data"]
    assert [c["thread_id"] for c in copies] == [first, second]
    origin = {"thread_id": source, "message_id": original, "sender_id": bob.user_id}
    for copy, reader in zip(copies, (carol, dave), strict=True):
        assert set(copy) == {"thread_id", "message_id", "seq"}
        message = await message_in(http, reader, copy["thread_id"], copy["message_id"])
        assert message["seq"] == copy["seq"]
        assert (message["type"], message["sender_id"], message["body"]) == (
            "message", alice.user_id, "look at this")
        assert (message["mentions"], message["reply_to"]) == ([], None)
        assert message["forwarded_from"] == origin
    # A forward of the forward still names the original author.
    again = await forward(http, carol, first, copies[0]["message_id"], [first])
    assert again.status_code == 201, again.text
    [copy] = again.json()["data"]
    message = await message_in(http, alice, first, copy["message_id"])
    assert (message["sender_id"], message["forwarded_from"]) == (carol.user_id, origin)


async def test_forward_refusals(http: httpx.AsyncClient) -> None:
    alice, bob, mallory = [await register(http) for _ in range(3)]
    source = await create_group(http, alice, bob)
    mine = await create_group(http, alice, mallory)
    not_mine = await create_group(http, mallory, bob)
    message_id = await send(http, bob, source)
    before = len(await timeline(http, alice, mine))
    refused = await forward(http, alice, source, message_id, [mine, not_mine])
    assert_error(refused, 403, 3003, "not_a_member")
    assert not_mine in refused.json()["msg"]
    assert len(await timeline(http, alice, mine)) == before  # nothing sent anywhere
    assert_error(await forward(http, alice, source, message_id, [mine, "tnope"]), 404, 3001,
                 "thread_not_found")
    assert_error(await forward(http, mallory, source, message_id, [mine]), 403, 3003,
                 "not_a_member")
    assert_error(await forward(http, alice, source, "mnope", [mine]), 404, 4001,
                 "message_not_found")
    # A message of another thread is not found through this one.
    assert_error(await forward(http, alice, mine, message_id, [mine]), 404, 4001,
                 "message_not_found")
    # Thread events and action entries are not messages.
    event_id = (await timeline(http, alice, source))[0]["message_id"]
    assert_error(await forward(http, alice, source, event_id, [mine]), 404, 4001,
                 "message_not_found")
    poll = await create_poll(http, alice, source)
    assert_error(await forward(http, alice, source, poll["message_id"], [mine]), 400, 4003,
                 "content_invalid")
    targets: Any
    for targets in ([], [mine, mine], [f"t{i}" for i in range(11)], ["bad/id"], "x", [1]):
        assert_error(await forward(http, alice, source, message_id, targets), 400, 1001,
                     "invalid_parameter")
    assert (await http.post(f"/api/threads/{source}/messages/{message_id}/forward",
                            json={"thread_ids": [mine]})).status_code == 401
    assert len(await timeline(http, alice, mine)) == before


async def test_forwarded_image_is_readable_by_the_targets_members(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, carol, dave = [await register(http) for _ in range(4)]
    source = await create_group(http, alice, bob)
    target = await create_group(http, alice, carol)
    uploaded = await upload(http, bob, png(8, 6))
    assert uploaded.status_code == 201, uploaded.text
    upload_id = uploaded.json()["data"]["upload_id"]
    image = await send(http, bob, source, type="image", body=None,
                       content={"upload_id": upload_id})
    file_url = f"/api/uploads/{upload_id}"
    assert (await http.get(file_url, headers=carol.auth)).status_code == 404
    response = await forward(http, alice, source, image, [target])
    assert response.status_code == 201, response.text
    [copy] = response.json()["data"]
    message = await message_in(http, carol, target, copy["message_id"])
    original = await message_in(http, bob, source, image)
    assert (message["msg_type"], message["content"]) == ("image", original["content"])
    fetched = await http.get(file_url, headers=carol.auth)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == png(8, 6)
    assert (await http.get(file_url, headers=dave.auth)).status_code == 404


async def test_muted_member_can_neither_forward_there_nor_create_a_poll(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, carol = [await register(http) for _ in range(3)]
    source = await create_group(http, bob, alice)
    open_target = await create_group(http, alice, bob)
    muted_in = await create_group(http, carol, bob)
    muted = await http.post(f"/api/threads/{muted_in}/mutes", headers=carol.auth,
                            json={"user_ids": [bob.user_id]})
    assert muted.status_code == 200, muted.text
    message_id = await send(http, alice, source)
    before = len(await timeline(http, bob, open_target))
    assert_error(await forward(http, bob, source, message_id, [open_target, muted_in]), 403,
                 3010, "muted_in_thread")
    assert len(await timeline(http, bob, open_target)) == before
    assert_error(await http.post(f"/api/threads/{muted_in}/polls", headers=bob.auth,
                                 json={"question": "q", "options": ["a", "b"]}), 403, 3010,
                 "muted_in_thread")


async def test_unsent_message_cannot_be_forwarded_and_unsent_poll_takes_no_votes(
    http: httpx.AsyncClient,
) -> None:
    alice, bob = await register(http), await register(http)
    source = await create_group(http, alice, bob)
    target = await create_group(http, alice, bob)
    message_id = await send(http, bob, source)
    unsent = await http.delete(f"/api/threads/{source}/messages/{message_id}", headers=bob.auth)
    assert unsent.status_code == 200, unsent.text
    assert_error(await forward(http, alice, source, message_id, [target]), 404, 4001,
                 "message_not_found")
    poll = await create_poll(http, alice, source)
    unsent = await http.delete(f"/api/threads/{source}/messages/{poll['message_id']}",
                               headers=alice.auth)
    assert unsent.status_code == 200, unsent.text
    vote = await http.post(f"/api/threads/{source}/polls/{poll['poll_id']}/votes",
                           headers=bob.auth, json={"option_ids": [0]})
    assert_error(vote, 404, 4001, "message_not_found")
    assert_error(await http.get(f"/api/threads/{source}/polls/{poll['poll_id']}",
                                headers=bob.auth), 404, 4001, "message_not_found")
