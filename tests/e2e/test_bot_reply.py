"""Issue 15's case on both stacks: a bot program (a real aiomqtt client in this test, signed in
with POST /api/auth/bot) hears a mention of itself on the group's thread topic and replies with
`send`; the person who mentioned it gets the reply on their own MQTT connection within 1 s of
sending the mention. A message that does not mention the bot gets no reply."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import aiomqtt
import httpx

from tests.api.test_bots import bot_sign_in, make_bot
from tests.helpers import (
    Account,
    Predicate,
    create_group,
    mqtt_session,
    next_event,
    received_event,
    register,
    unique_id,
)
from tests.stacks import Stack

REPLY_WITHIN = 1.0  # seconds, from the mention's send to the reply's arrival


def body_is(text: str) -> Predicate:
    return lambda topic, event: event.get("body") == text


async def run_bot(client: aiomqtt.Client, prefix: str, bot_id: str) -> None:
    """The bot program: for each message that mentions it (not its own), reply on its uplink."""
    async for message in client.messages:
        assert isinstance(message.payload, bytes)
        event = received_event(message.payload)
        if event.get("type") not in ("message", "message_reply"):
            continue
        if event["sender_id"] == bot_id or bot_id not in event["mentions"]:
            continue
        await client.publish(f"{prefix}/up/{bot_id}", json.dumps({
            "op": "send", "req": unique_id("r"), "thread_id": event["thread_id"],
            "client_msg_id": unique_id("bot"), "type": "text", "reply_to": event["message_id"],
            "body": f"pong: {event['body']}"}), qos=1)


async def test_a_bot_replies_to_a_mention_within_a_second(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    bot_id, token = await make_bot(http, alice, name="Pong")
    thread_id = await create_group(http, alice, bob, Account(bot_id, token, "", {}))
    bot = await bot_sign_in(http, bot_id, token)
    prefix = server.settings.topic_prefix
    topic = f"{prefix}/t/{thread_id}"
    async with mqtt_session(server.settings, bot) as bot_client, \
            mqtt_session(server.settings, alice) as alice_client:
        await bot_client.subscribe(topic, qos=1)
        await alice_client.subscribe(topic, qos=1)
        program = asyncio.create_task(run_bot(bot_client, prefix, bot_id))
        try:
            for n in range(3):
                text = f"@Pong ping {n}"
                started = time.monotonic()
                await alice_client.publish(f"{prefix}/up/{alice.user_id}", json.dumps({
                    "op": "send", "req": unique_id("r"), "thread_id": thread_id,
                    "client_msg_id": unique_id("c"), "type": "text", "body": text,
                    "mentions": [bot_id]}), qos=1)
                mention = await next_event(alice_client, body_is(text))
                reply = await next_event(alice_client, lambda t, e: e.get("type") in (
                    "message", "message_reply") and e.get("sender_id") == bot_id)
                took = time.monotonic() - started
                assert took < REPLY_WITHIN, f"reply {n} took {took:.3f} s"
                assert (reply["type"], reply["reply_to"], reply["body"]) == (
                    "message_reply", mention["message_id"], f"pong: {text}")
                assert reply["thread_id"] == thread_id
            # A message without the mention gets no answer.
            await alice_client.publish(f"{prefix}/up/{alice.user_id}", json.dumps({
                "op": "send", "req": unique_id("r"), "thread_id": thread_id,
                "client_msg_id": unique_id("c"), "type": "text", "body": "no ping"}), qos=1)
            _ = await next_event(alice_client, body_is("no ping"))
            with contextlib.suppress(TimeoutError):
                late = await next_event(alice_client, lambda t, e: e.get("sender_id") == bot_id,
                                        timeout=1.0)
                raise AssertionError(f"the bot answered a message without a mention: {late}")
        finally:
            program.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await program
    # Everything is stored: three mentions, three replies, the unanswered message.
    history = (await http.get(f"/api/threads/{thread_id}/messages",
                              headers=bob.auth)).json()["data"]
    senders = [e["sender_id"] for e in history if e["type"] in ("message", "message_reply")]
    assert senders == [alice.user_id, bot_id] * 3 + [alice.user_id]
