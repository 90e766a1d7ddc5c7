"""mqim's Mosquitto plugin against a real Mosquitto: logins, the topic ACL of broker/acl.py,
membership changes that apply at once, kicks, extra rules and the control topic.

Non-delivery is proven with a barrier: a message published after the one that must not arrive,
on a topic the client does receive; Mosquitto delivers a publisher's messages in order, so when
the barrier comes first, the other one was dropped.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import jwt
import pytest
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from broker.mosquitto.control import CONTROL_TOPIC, RESPONSE_TOPIC, ControlError, MosquittoControl
from broker.mosquitto.plugin import (
    PLUGIN_HEADER,
    build_plugin,
    explain_build_failure,
    plugin_sources,
    render_mosquitto_conf,
)
from tests.helpers import received_event, unique_id
from tests.mosquitto.conftest import REPO_ROOT, MosquittoBroker

NOT_AUTHORIZED = 0x87  # MQTT 5 reason code; also what paho reports for a 3.1.1 CONNACK rc 5
SUBACK_FAILURE = 0x80  # MQTT 3.1.1
ADMINISTRATIVE_ACTION = 0x98


def code(value: int | ReasonCode | None) -> int | None:
    return value.value if isinstance(value, ReasonCode) else value


async def next_message(client: aiomqtt.Client, seconds: float = 5) -> aiomqtt.Message:
    async with asyncio.timeout(seconds):
        return await anext(client.messages)


async def subscribe(client: aiomqtt.Client, topic: str) -> int | None:
    """The SUBACK code: the granted QoS (1), 0x80 (3.1.1) or a reason code (MQTT 5)."""
    granted = await client.subscribe(topic, qos=1)
    return code(granted[0])


async def assert_refused(client: aiomqtt.Client) -> None:
    with pytest.raises(MqttConnectError) as info:
        async with client:
            pass
    assert code(info.value.rc) == NOT_AUTHORIZED


async def assert_kicked(client: aiomqtt.Client, reason: int | None = None) -> None:
    """The connection is closed by the broker (MQTT 5: with a DISCONNECT of that reason)."""
    with pytest.raises(aiomqtt.MqttError) as info:
        await next_message(client)
    if reason is not None:
        cause = info.value.__cause__
        assert isinstance(cause, aiomqtt.MqttCodeError)
        assert code(cause.rc) == reason


async def assert_accepted(client: aiomqtt.Client) -> None:
    async with client:
        pass


def _publish_v5(broker: MosquittoBroker, username: str, password: str, topic: str,
                payload: str, retain: bool) -> int:
    """Publish QoS 1 with paho over MQTT 5 and return the PUBACK reason code (aiomqtt drops it)."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{username}:{uuid.uuid4().hex[:8]}",
        protocol=paho.MQTTv5,
    )
    client.username_pw_set(username, password)
    connected = threading.Event()
    acks: queue.Queue[int] = queue.Queue()

    def on_connect(c: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if not rc.is_failure:
            connected.set()

    def on_publish(c: paho.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        acks.put(rc.value)

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        if not connected.wait(5):
            raise AssertionError(f"{username} could not connect")
        client.publish(topic, payload, qos=1, retain=retain)
        return acks.get(timeout=5)
    finally:
        client.disconnect()
        client.loop_stop()


async def puback_v5(broker: MosquittoBroker, user_id: str, topic: str, payload: str = "x",
                    *, retain: bool = False) -> int:
    password = (broker.service_password if user_id == broker.service_user
                else broker.token(user_id))
    return await asyncio.to_thread(_publish_v5, broker, user_id, password, topic, payload, retain)


def thread_topic(thread_id: str) -> str:
    return f"im/t/{thread_id}"


# Logins -----------------------------------------------------------------------------------


@pytest.mark.parametrize("v5", [False, True], ids=["mqtt311", "mqtt5"])
async def test_valid_token_is_accepted(mosquitto: MosquittoBroker, control: MosquittoControl,
                                       v5: bool) -> None:
    await assert_accepted(mosquitto.user_client(unique_id(), v5=v5))


@pytest.mark.parametrize("v5", [False, True], ids=["mqtt311", "mqtt5"])
async def test_token_signed_with_another_secret_is_refused(
    mosquitto: MosquittoBroker, control: MosquittoControl, v5: bool
) -> None:
    alice = unique_id()
    forged = jwt.encode(
        {"sub": alice, "sid": "s1", "typ": "access", "exp": int(time.time()) + 600},
        "another-secret-of-at-least-thirty-two-bytes-length", algorithm="HS256",
    )
    await assert_refused(mosquitto.user_client(alice, forged, v5=v5))


async def test_expired_token_is_refused(mosquitto: MosquittoBroker,
                                        control: MosquittoControl) -> None:
    alice = unique_id()
    await assert_refused(mosquitto.user_client(alice, mosquitto.token(alice, ttl=-5)))


@pytest.mark.parametrize("typ", ["refresh", None])
async def test_token_that_is_not_an_access_token_is_refused(
    mosquitto: MosquittoBroker, control: MosquittoControl, typ: str | None
) -> None:
    alice = unique_id()
    claims: dict[str, Any] = {"sub": alice, "sid": "s1", "exp": int(time.time()) + 600}
    if typ is not None:
        claims["typ"] = typ
    token = jwt.encode(claims, mosquitto.secret, algorithm="HS256")
    await assert_refused(mosquitto.user_client(alice, token))


@pytest.mark.parametrize("alg", ["none", "HS512"])
async def test_token_with_another_algorithm_is_refused(
    mosquitto: MosquittoBroker, control: MosquittoControl, alg: str
) -> None:
    alice = unique_id()
    claims = {"sub": alice, "sid": "s1", "typ": "access", "exp": int(time.time()) + 600}
    key: Any = None if alg == "none" else mosquitto.secret  # jwt's stubs allow no None key
    token = jwt.encode(claims, key, algorithm=alg)
    await assert_refused(mosquitto.user_client(alice, token))


async def test_tampered_claims_are_refused(mosquitto: MosquittoBroker,
                                           control: MosquittoControl) -> None:
    alice, bob = unique_id(), unique_id()
    header, _, signature = mosquitto.token(alice).split(".")
    claims = jwt.utils.base64url_encode(json.dumps(
        {"sub": bob, "sid": "s1", "typ": "access", "exp": int(time.time()) + 600}).encode())
    await assert_refused(mosquitto.user_client(bob, f"{header}.{claims.decode()}.{signature}"))


async def test_token_of_another_user_is_refused(mosquitto: MosquittoBroker,
                                                control: MosquittoControl) -> None:
    alice, bob = unique_id(), unique_id()
    await assert_accepted(mosquitto.user_client(bob, mosquitto.token(bob)))
    await assert_refused(mosquitto.user_client(alice, mosquitto.token(bob)))


async def test_client_id_outside_the_users_namespace_is_refused(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    alice, bob = unique_id(), unique_id()
    await assert_accepted(mosquitto.user_client(alice, client_id=alice))
    await assert_accepted(mosquitto.user_client(alice, client_id=f"{alice}:phone"))
    await assert_refused(mosquitto.user_client(alice, client_id=f"{bob}:phone"))
    await assert_refused(mosquitto.user_client(alice, client_id=f"{alice}x"))
    await assert_refused(mosquitto.user_client(alice, client_id=f"{mosquitto.service_user}:c"))
    # User ids that would own service client ids, like the bridge worker's "mqim-bridge-1".
    impostor = f"{mosquitto.service_user}-1"
    await assert_refused(mosquitto.user_client(impostor, client_id=impostor))


@pytest.mark.parametrize("v5", [False, True], ids=["mqtt311", "mqtt5"])
async def test_anonymous_login_is_refused(mosquitto: MosquittoBroker, control: MosquittoControl,
                                          v5: bool) -> None:
    client = aiomqtt.Client(
        mosquitto.host, mosquitto.port, identifier=f"anon-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
    )
    await assert_refused(client)


async def test_service_account_logs_in_with_its_derived_password_only(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    await assert_accepted(mosquitto.service_client())
    await assert_refused(mosquitto.service_client(password="0" * 64))
    await assert_refused(mosquitto.service_client(password=mosquitto.token(mosquitto.service_user)))


# Subscribe and receive ----------------------------------------------------------------------


@pytest.mark.parametrize("v5", [False, True], ids=["mqtt311", "mqtt5"])
async def test_member_receives_thread_and_non_member_is_refused(
    mosquitto: MosquittoBroker, control: MosquittoControl, v5: bool
) -> None:
    alice, bob, thread = unique_id(), unique_id(), unique_id("t")
    await control.set_members(thread, [alice])
    denied = NOT_AUTHORIZED if v5 else SUBACK_FAILURE
    async with (
        mosquitto.user_client(alice, v5=v5) as member,
        mosquitto.user_client(bob, v5=v5) as outsider,
        mosquitto.service_client() as service,
    ):
        assert await subscribe(member, thread_topic(thread)) == 1
        assert await subscribe(outsider, thread_topic(thread)) == denied
        await service.publish(thread_topic(thread), "hello", qos=1)
        message = await next_message(member)
        assert (message.topic.value, message.payload) == (thread_topic(thread), b"hello")


@pytest.mark.parametrize("v5", [False, True], ids=["mqtt311", "mqtt5"])
async def test_personal_topic_is_only_the_owners(
    mosquitto: MosquittoBroker, control: MosquittoControl, v5: bool
) -> None:
    alice, bob = unique_id(), unique_id()
    denied = NOT_AUTHORIZED if v5 else SUBACK_FAILURE
    async with mosquitto.user_client(alice, v5=v5) as client, mosquitto.service_client() as service:
        assert await subscribe(client, f"im/u/{alice}") == 1
        assert await subscribe(client, f"im/u/{bob}") == denied
        assert await subscribe(client, f"im/up/{alice}") == denied
        await service.publish(f"im/u/{alice}", "for you", qos=1)
        assert (await next_message(client)).payload == b"for you"


@pytest.mark.parametrize(
    "pattern",
    ["im/t/+", "im/#", "#", "+/t/{thread}", "im/+/{thread}", "im/u/+", "$share/g/im/t/{thread}",
     "$CONTROL/mqim/v1/response", "$SYS/#", "im/t/{thread}/x"],
)
async def test_wildcards_and_foreign_topics_are_refused_to_users(
    mosquitto: MosquittoBroker, control: MosquittoControl, pattern: str
) -> None:
    alice, thread = unique_id(), unique_id("t")
    await control.set_members(thread, [alice])
    async with mosquitto.user_client(alice) as client:
        assert await subscribe(client, thread_topic(thread)) == 1
        assert await subscribe(client, pattern.format(thread=thread)) == SUBACK_FAILURE


# Publish ----------------------------------------------------------------------------------


async def test_own_uplink_reaches_the_service(mosquitto: MosquittoBroker,
                                              control: MosquittoControl) -> None:
    alice = unique_id()
    async with mosquitto.service_client() as service, mosquitto.user_client(alice) as client:
        await service.subscribe("im/up/+", qos=1)
        await client.publish(f"im/up/{alice}", "cmd", qos=1)
        async with asyncio.timeout(5):
            async for message in service.messages:
                if message.topic.value == f"im/up/{alice}":
                    assert message.payload == b"cmd"
                    break


@pytest.mark.parametrize(
    "topic",
    ["im/up/{bob}", "im/t/{thread}", "im/u/{alice}", "$CONTROL/mqim/v1", "elsewhere"],
)
async def test_publish_outside_own_uplink_is_refused(
    mosquitto: MosquittoBroker, control: MosquittoControl, topic: str
) -> None:
    alice, bob, thread = unique_id(), unique_id(), unique_id("t")
    await control.set_members(thread, [alice])
    target = topic.format(alice=alice, bob=bob, thread=thread)
    # MQTT 5: the PUBACK says so.
    assert await puback_v5(mosquitto, alice, f"im/up/{alice}") < 0x80
    assert await puback_v5(mosquitto, alice, target) == NOT_AUTHORIZED
    # MQTT 3.1.1 acks it anyway; it is never delivered (the barrier comes first).
    async with mosquitto.service_client() as service, mosquitto.user_client(alice) as client:
        if not target.startswith("$"):
            await service.subscribe(target, qos=1)
        await service.subscribe(f"im/up/{alice}", qos=1)
        await client.publish(target, "forbidden", qos=1)
        await client.publish(f"im/up/{alice}", "barrier", qos=1)
        message = await next_message(service)
        if target == f"im/u/{alice}":  # her personal topic: first the report of the refusal
            assert received_event(message.payload)["error"] == "forbidden"
            message = await next_message(service)
        assert (message.topic.value, message.payload) == (f"im/up/{alice}", b"barrier")


async def test_refused_publish_is_reported_to_the_sender(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    alice, bob = unique_id(), unique_id()
    async with mosquitto.user_client(alice) as client:
        await client.subscribe(f"im/u/{alice}", qos=1)
        await client.publish(f"im/up/{bob}", "spoof", qos=1)
        event = received_event((await next_message(client)).payload)
    assert event == {
        "type": "error", "req": None, "code": 1004, "error": "forbidden",
        "msg": f"you may not publish on im/up/{bob}; publish commands on im/up/{alice}",
    }


async def test_retained_uplink_is_refused(mosquitto: MosquittoBroker,
                                          control: MosquittoControl) -> None:
    alice = unique_id()
    assert await puback_v5(mosquitto, alice, f"im/up/{alice}", retain=True) == NOT_AUTHORIZED
    assert await puback_v5(mosquitto, alice, f"im/up/{alice}", retain=False) < 0x80


def _mqtt_string(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(2, "big") + data


async def connect_with_will_and_drop(broker: MosquittoBroker, user_id: str, will_topic: str,
                                     *, retain: bool) -> None:
    """An MQTT 3.1.1 CONNECT with a QoS 1 will, then the socket closes without a DISCONNECT,
    so Mosquitto publishes the will if the ACL allows it. (No client library drops a socket.)"""
    flags = 0x80 | 0x40 | (0x20 if retain else 0) | 0x08 | 0x04 | 0x02
    body = (_mqtt_string("MQTT") + bytes([4, flags]) + (60).to_bytes(2, "big")
            + _mqtt_string(f"{user_id}:will") + _mqtt_string(will_topic)
            + _mqtt_string('{"op": "presence", "status": "offline"}')
            + _mqtt_string(user_id) + _mqtt_string(broker.token(user_id)))
    length, n = b"", len(body)
    while True:  # MQTT's variable-length integer
        n, digit = n >> 7, n & 0x7F
        length += bytes([digit | (0x80 if n else 0)])
        if not n:
            break
    reader, writer = await asyncio.open_connection(broker.host, broker.port)
    writer.write(b"\x10" + length + body)
    await writer.drain()
    assert await reader.readexactly(4) == bytes([0x20, 2, 0, 0])  # CONNACK: accepted
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize(
    ("will", "retain", "published"),
    [("own-uplink", False, True), ("other-uplink", False, False), ("thread", False, False),
     ("own-uplink", True, False)],
)
async def test_will_is_published_only_on_the_own_uplink(
    mosquitto: MosquittoBroker, control: MosquittoControl, will: str, retain: bool,
    published: bool,
) -> None:
    """Mosquitto's plugin API shows no will at login, so unlike the embedded broker the CONNECT
    is not refused; the will is checked like a publish when it is due, and dropped."""
    alice, bob, thread = unique_id("a"), unique_id("b"), unique_id("t")
    await control.set_members(thread, [alice])
    topic = {"own-uplink": f"im/up/{alice}", "other-uplink": f"im/up/{bob}",
             "thread": thread_topic(thread)}[will]
    async with mosquitto.service_client() as service:
        await service.subscribe(topic, qos=1)
        before = (await control.status())["clients"]
        await connect_with_will_and_drop(mosquitto, alice, topic, retain=retain)
        # The plugin forgets the connection just before Mosquitto handles its will.
        async with asyncio.timeout(5):
            while (await control.status())["clients"] != before:
                pass
        await service.publish(topic, "barrier", qos=1)
        first = (await next_message(service)).payload
        assert (first != b"barrier") is published


# Membership changes -----------------------------------------------------------------------


async def test_added_member_may_subscribe_at_once(mosquitto: MosquittoBroker,
                                                  control: MosquittoControl) -> None:
    alice, thread = unique_id(), unique_id("t")
    async with mosquitto.user_client(alice) as client:
        assert await subscribe(client, thread_topic(thread)) == SUBACK_FAILURE
        await control.add_members(thread, [alice])
        assert await subscribe(client, thread_topic(thread)) == 1


async def test_removed_member_stops_receiving_at_once(mosquitto: MosquittoBroker,
                                                      control: MosquittoControl) -> None:
    alice, bob, thread = unique_id(), unique_id(), unique_id("t")
    topic = thread_topic(thread)
    await control.set_members(thread, [alice, bob])
    async with (
        mosquitto.user_client(alice) as removed,
        mosquitto.user_client(bob) as stays,
        mosquitto.service_client() as service,
    ):
        assert await subscribe(removed, topic) == 1
        assert await subscribe(removed, f"im/u/{alice}") == 1
        assert await subscribe(stays, topic) == 1
        await service.publish(topic, "m0", qos=1)
        assert (await next_message(removed)).payload == b"m0"
        assert (await next_message(stays)).payload == b"m0"

        await control.remove_members(thread, [alice])
        await service.publish(topic, "m1", qos=1)
        assert (await next_message(stays)).payload == b"m1"
        await service.publish(f"im/u/{alice}", "barrier", qos=1)
        assert (await next_message(removed)).payload == b"barrier"

        # Still subscribed, not kicked: adding her back resumes delivery.
        await control.add_members(thread, [alice])
        await service.publish(topic, "m2", qos=1)
        assert (await next_message(removed)).payload == b"m2"


async def test_set_members_replaces_and_drop_thread_removes_all(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    alice, bob, thread = unique_id(), unique_id(), unique_id("t")
    await control.set_members(thread, [alice])
    await control.set_members(thread, [bob])
    async with mosquitto.user_client(alice) as a, mosquitto.user_client(bob) as b:
        assert await subscribe(a, thread_topic(thread)) == SUBACK_FAILURE
        assert await subscribe(b, thread_topic(thread)) == 1
        await control.drop_thread(thread)
        assert await subscribe(b, thread_topic(thread)) == SUBACK_FAILURE


# Sessions and bans ------------------------------------------------------------------------


async def test_end_session_kicks_it_and_refuses_its_token(mosquitto: MosquittoBroker,
                                                          control: MosquittoControl) -> None:
    alice = unique_id()
    ended, other = mosquitto.token(alice, "s-ended"), mosquitto.token(alice, "s-other")
    async with (
        mosquitto.user_client(alice, ended, v5=True) as kicked,
        mosquitto.user_client(alice, other) as untouched,
    ):
        assert await subscribe(untouched, f"im/u/{alice}") == 1
        await control.end_session(alice, "s-ended", int(time.time()) + 900)
        await assert_kicked(kicked, ADMINISTRATIVE_ACTION)
        # The other session is still connected and served.
        async with mosquitto.service_client() as service:
            await service.publish(f"im/u/{alice}", "still here", qos=1)
            assert (await next_message(untouched)).payload == b"still here"
    await assert_refused(mosquitto.user_client(alice, ended))
    await assert_accepted(mosquitto.user_client(alice, other))


async def test_connections_are_forgotten_when_they_close(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    async def clients_settle_at(expected: int) -> None:
        # Each status call is a round trip to the broker, which meanwhile handles the closes.
        async with asyncio.timeout(5):
            while (await control.status())["clients"] != expected:
                pass

    before = (await control.status())["clients"]
    alice = unique_id()
    async with mosquitto.user_client(alice), mosquitto.user_client(alice, v5=True):
        assert (await control.status())["clients"] == before + 2
    await clients_settle_at(before)


async def test_ban_kicks_every_connection_and_unban_allows_again(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    alice, bob = unique_id(), unique_id()
    async with (
        mosquitto.user_client(alice, v5=True) as first,
        mosquitto.user_client(alice) as second,
        mosquitto.user_client(bob) as bystander,
    ):
        assert await subscribe(bystander, f"im/u/{bob}") == 1
        await control.ban_user(alice)
        await assert_kicked(first, ADMINISTRATIVE_ACTION)
        await assert_kicked(second)
        async with mosquitto.service_client() as service:
            await service.publish(f"im/u/{bob}", "unaffected", qos=1)
            assert (await next_message(bystander)).payload == b"unaffected"
    await assert_refused(mosquitto.user_client(alice))
    await control.unban_user(alice)
    await assert_accepted(mosquitto.user_client(alice))


# Extra rules ------------------------------------------------------------------------------


async def test_rules_grant_topics_outside_the_mqim_tree(mosquitto: MosquittoBroker,
                                                        control: MosquittoControl) -> None:
    alice, bob = unique_id(), unique_id()
    await control.set_rules([
        {"users": ["*"], "topic": "devices/%u/#", "access": "write"},
        {"users": [bob], "topic": "news/+", "access": "read"},
        {"users": [alice, bob], "topic": "rooms/%u-inbox", "access": "readwrite"},
    ])
    try:
        assert await puback_v5(mosquitto, alice, f"devices/{alice}/temp") < 0x80
        assert await puback_v5(mosquitto, alice, f"devices/{bob}/temp") == NOT_AUTHORIZED
        assert await puback_v5(mosquitto, alice, "news/today") == NOT_AUTHORIZED
        assert await puback_v5(mosquitto, alice, f"rooms/{alice}-inbox") < 0x80
        assert await puback_v5(mosquitto, unique_id(), f"rooms/{alice}-inbox") == NOT_AUTHORIZED
        async with (
            mosquitto.user_client(alice) as a,
            mosquitto.user_client(bob) as b,
            mosquitto.service_client() as service,
        ):
            assert await subscribe(b, "news/+") == 1
            assert await subscribe(b, "news/today") == 1
            assert await subscribe(b, "news/#") == SUBACK_FAILURE  # wider than the rule
            assert await subscribe(a, "news/+") == SUBACK_FAILURE
            assert await subscribe(a, f"devices/{alice}/temp") == SUBACK_FAILURE  # write only
            await service.subscribe("devices/#", qos=1)
            await a.publish(f"devices/{bob}/temp", "not mine", qos=1)
            await a.publish(f"devices/{alice}/temp", "21.5", qos=1)
            message = await next_message(service)
            assert (message.topic.value, message.payload) == (f"devices/{alice}/temp", b"21.5")
            await service.publish("news/today", "headline", qos=1)
            assert (await next_message(b)).payload == b"headline"
    finally:
        await control.set_rules([])
    assert await puback_v5(mosquitto, alice, f"devices/{alice}/temp") == NOT_AUTHORIZED


async def test_retained_message_is_withheld_once_its_publisher_loses_the_rule(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    alice, bob = unique_id(), unique_id()
    topic = f"devices/{alice}/state"
    reader = {"users": [bob], "topic": "devices/#", "access": "read"}
    await control.set_rules([{"users": [alice], "topic": "devices/%u/#", "access": "write"},
                             reader])
    try:
        async with mosquitto.user_client(alice) as a:
            await a.publish(topic, "on", qos=1, retain=True)
        async with mosquitto.user_client(bob) as b:
            assert await subscribe(b, topic) == 1
            assert (await next_message(b)).payload == b"on"
        await control.set_rules([reader])  # alice may no longer publish there
        async with mosquitto.user_client(bob) as b, mosquitto.service_client() as service:
            assert await subscribe(b, topic) == 1
            await service.publish(topic, "barrier", qos=1)
            assert (await next_message(b)).payload == b"barrier"
    finally:
        async with mosquitto.service_client() as service:
            await service.publish(topic, b"", qos=1, retain=True)  # clear it
        await control.set_rules([])


async def test_rules_may_not_cover_the_mqim_tree(control: MosquittoControl) -> None:
    for topic in ("im/t/+", "#", "+/t/x", "$SYS/#", "a/#/b", "a/b+"):
        with pytest.raises(ControlError) as info:
            await control.set_rules([{"users": ["*"], "topic": topic, "access": "read"}])
        assert info.value.errors[0]["command"] == "setRules"


async def test_rules_expanded_into_the_mqim_tree_grant_nothing_there(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    # `%u/#` gives each user a namespace of their own; a user whose id is the topic prefix must
    # not get the whole tree through it.
    prefix, bob, thread = mosquitto.prefix, unique_id(), unique_id("t")
    await control.set_members(thread, [bob])
    await control.set_rules([{"users": ["*"], "topic": "%u/#", "access": "readwrite"},
                             {"users": ["*"], "topic": "%u/+/x", "access": "read"},
                             {"users": ["*"], "topic": "%u", "access": "read"}])
    try:
        async with (
            mosquitto.user_client(prefix) as intruder,
            mosquitto.user_client(bob) as b,
            mosquitto.service_client() as service,
        ):
            for topic in (f"{prefix}/#", f"{prefix}/+", f"{prefix}/t/+", f"{prefix}/+/x",
                          f"{prefix}/t/{thread}", f"{prefix}/u/{bob}", prefix, "#", "+/#",
                          "+/t/x"):
                assert await subscribe(intruder, topic) == SUBACK_FAILURE, topic
            assert await subscribe(intruder, f"{prefix}/u/{prefix}") == 1  # its own, as always
            # The rules still work outside the tree.
            assert await subscribe(b, f"{bob}/#") == 1
            assert await subscribe(b, "+/#") == SUBACK_FAILURE
            await service.publish(f"{prefix}/t/{thread}", "secret", qos=1)
            await service.publish(f"{prefix}/u/{prefix}", "barrier", qos=1)
            assert (await next_message(intruder)).payload == b"barrier"
        for topic in (f"{prefix}/up/{bob}", f"{prefix}/t/{thread}", f"{prefix}/x/y", prefix):
            assert await puback_v5(mosquitto, prefix, topic) == NOT_AUTHORIZED, topic
        assert await puback_v5(mosquitto, bob, f"{bob}/x") < 0x80
    finally:
        await control.set_rules([])


async def test_rules_touching_the_tree_are_refused_whatever_their_shape(
    control: MosquittoControl
) -> None:
    for topic in ("im", "im/x", "+", "+/#", "+/+/+"):
        with pytest.raises(ControlError):
            await control.set_rules([{"users": ["*"], "topic": topic, "access": "read"}])
    await control.set_rules([{"users": ["*"], "topic": "imx/%u/#", "access": "read"}])
    await control.set_rules([])


# The control topic ------------------------------------------------------------------------


async def test_only_service_users_may_use_the_control_topic(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    alice, thread = unique_id(), unique_id("t")
    await control.set_members(thread, [alice])
    evil = json.dumps({"id": "x", "commands": [{"command": "reset"},
                                               {"command": "banUser", "user": alice}]})
    assert await puback_v5(mosquitto, alice, CONTROL_TOPIC, evil) == NOT_AUTHORIZED
    async with mosquitto.user_client(alice) as client:
        await client.publish(CONTROL_TOPIC, evil, qos=1)
    # Nothing was reset or banned.
    async with mosquitto.user_client(alice) as client:
        assert await subscribe(client, thread_topic(thread)) == 1


async def test_malformed_commands_get_errors_and_the_plugin_survives(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    commands: list[dict[str, Any]] = [
        {"command": "nope"},
        {"command": "addMembers", "thread": "a/b", "users": ["x"]},
        {"command": "addMembers", "thread": "t1", "users": "alice"},
        {"command": "addMembers", "thread": "t1", "users": ["ok", 3]},
        {"command": "endSession", "user": "alice", "session": "s", "until": "soon"},
        {"command": "banUser"},
        {"command": "setRules", "rules": [{"users": [], "topic": "x", "access": "read"}]},
        {"command": "setRules", "rules": [{"users": ["*"], "topic": "x", "access": "all"}]},
        {"no": "command"},
        {"command": "dropThread", "thread": "x" * 300},
    ]
    with pytest.raises(ControlError) as info:
        await control.run(commands)
    assert len(info.value.errors) == len(commands)

    async with mosquitto.service_client() as service:
        await service.subscribe(RESPONSE_TOPIC, qos=1)
        await service.publish(CONTROL_TOPIC, b"\xff not json", qos=1)
        reply = json.loads((await next_message(service)).payload)
        assert reply["id"] is None
        assert "error" in reply
        await service.publish(CONTROL_TOPIC, json.dumps({"id": "q", "commands": [[1]]}), qos=1)
        reply = json.loads((await next_message(service)).payload)
        assert reply == {"id": "q", "responses": [
            {"command": None, "error": "a command must be an object with a command name"}]}

    alice, thread = unique_id(), unique_id("t")
    await control.add_members(thread, [alice])
    async with mosquitto.user_client(alice) as client:
        assert await subscribe(client, thread_topic(thread)) == 1


async def test_after_reset_users_are_refused_until_sync(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    alice, thread = unique_id(), unique_id("t")
    topic = thread_topic(thread)
    await control.set_members(thread, [alice])
    try:
        async with mosquitto.user_client(alice) as client, mosquitto.service_client() as service:
            assert await subscribe(client, topic) == 1
            await service.subscribe(f"im/up/{alice}", qos=1)
            await control.reset()
            await service.publish(topic, "during reset", qos=1)
            await client.publish(f"im/up/{alice}", "during reset", qos=1)
            assert await subscribe(client, f"im/u/{alice}") == SUBACK_FAILURE
            # New logins are turned away without a CONNACK (retry later), even valid ones.
            with pytest.raises(aiomqtt.MqttError):
                async with mosquitto.user_client(alice, timeout=1.5):
                    pass
            await assert_accepted(mosquitto.service_client())

            await control.sync({thread: [alice]})
            await service.publish(topic, "after sync", qos=1)
            assert (await next_message(client)).payload == b"after sync"
            await client.publish(f"im/up/{alice}", "after sync", qos=1)
            assert (await next_message(service)).payload == b"after sync"
        await assert_accepted(mosquitto.user_client(alice))
    finally:
        await control.sync({})


async def test_live_changes_during_a_sync_win_over_its_older_data(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    alice, bob, carol = unique_id(), unique_id(), unique_id()
    left, joined = unique_id("t"), unique_id("t")
    try:
        assert (await control.status())["ready"] is True
        await control.reset()
        status = await control.status()
        assert {k: v for k, v in status.items() if k != "clients"} == {
            "ready": False, "memberships": 0, "threads": 0, "endedSessions": 0, "banned": 0,
            "rules": 0}
        # Committed after the state below was read from the database, and sent live:
        await control.remove_members(left, [alice])
        await control.set_members(joined, [bob])
        await control.unban_user(carol)
        stale = {left: [alice, bob], joined: [alice]}
        await control.sync(stale, banned_users=[carol], reset=False)
        status = await control.status()
        assert status["ready"] is True
        assert status["memberships"] == 2  # bob in both; not alice, whose changes were live
        async with mosquitto.user_client(alice) as a, mosquitto.user_client(bob) as b:
            assert await subscribe(a, thread_topic(left)) == SUBACK_FAILURE
            assert await subscribe(a, thread_topic(joined)) == SUBACK_FAILURE
            assert await subscribe(b, thread_topic(left)) == 1
            assert await subscribe(b, thread_topic(joined)) == 1
        await assert_accepted(mosquitto.user_client(carol))
        # Once ready, changes apply in order again.
        await control.add_members(joined, [alice])
        async with mosquitto.user_client(alice) as a:
            assert await subscribe(a, thread_topic(joined)) == 1
    finally:
        await control.sync({})


async def test_websocket_listener_uses_the_same_login_and_acl(
    mosquitto: MosquittoBroker, control: MosquittoControl
) -> None:
    alice, thread = unique_id(), unique_id("t")
    await control.set_members(thread, [alice])

    def ws_client(token: str) -> aiomqtt.Client:
        return aiomqtt.Client(mosquitto.host, mosquitto.ws_port, transport="websockets",
                              identifier=f"{alice}:ws", username=alice, password=token)

    async with ws_client(mosquitto.token(alice)) as client:
        assert await subscribe(client, thread_topic(thread)) == 1
        assert await subscribe(client, "im/t/+") == SUBACK_FAILURE
    await assert_refused(ws_client(mosquitto.token(alice, ttl=-5)))


async def test_sync_sends_large_state_in_chunks(mosquitto: MosquittoBroker,
                                                control: MosquittoControl) -> None:
    users = [unique_id() for _ in range(50)]
    memberships = {f"t{i}-{uuid.uuid4().hex[:6]}": users[i % 50:] + users[:i % 7]
                   for i in range(2500)}
    big = unique_id("t")
    memberships[big] = [f"u{i}" for i in range(12_000)]
    memberships["bad/thread"] = [users[4]]
    ended = [(users[0], "sync-ended", int(time.time()) + 600)]
    refused = await control.sync(memberships, [{"users": ["*"], "topic": "devices/%u/#",
                                                "access": "write"}], ended, [users[1]])
    assert refused == [{"command": "addMembers", "error": "missing or invalid id"}]
    try:
        async with mosquitto.user_client(users[2]) as client:
            last = list(memberships)[2499]
            assert await subscribe(client, thread_topic(last)) == (
                1 if users[2] in memberships[last] else SUBACK_FAILURE)
            assert await subscribe(client, thread_topic(next(iter(memberships)))) == 1
        async with mosquitto.user_client("u11999") as client:
            assert await subscribe(client, thread_topic(big)) == 1
        await assert_refused(mosquitto.user_client(users[0], mosquitto.token(users[0],
                                                                             "sync-ended")))
        await assert_refused(mosquitto.user_client(users[1]))
        assert await puback_v5(mosquitto, users[3], f"devices/{users[3]}/x") < 0x80
    finally:
        await control.sync({})


# Building and configuring -------------------------------------------------------------------


def test_render_rewrites_listeners_paths_and_plugin_options(tmp_path: Path) -> None:
    template = (REPO_ROOT / "mosquitto.conf").read_text(encoding="utf-8")
    conf = render_mosquitto_conf(
        template, tcp_port=11883, ws_port=18083, data_dir=tmp_path / "d",
        plugin_path=tmp_path / "p.so", jwt_secret_file=tmp_path / "s", topic_prefix="chat",
        service_users=["mqim-bridge", "mqim-api"], bind_host="10.0.0.5", user="mosquitto",
    )
    lines = [line for line in conf.splitlines() if line and not line.startswith("#")]
    assert "listener 11883 10.0.0.5" in lines
    assert lines[lines.index("listener 18083 10.0.0.5") + 1] == "protocol websockets"
    assert f"persistence_location {tmp_path / 'd'}/" in lines
    assert f"plugin {tmp_path / 'p.so'}" in lines
    assert f"plugin_opt_jwt_secret_file {tmp_path / 's'}" in lines
    assert "plugin_opt_topic_prefix chat" in lines
    assert "plugin_opt_service_users mqim-bridge,mqim-api" in lines
    assert "user mosquitto" in lines
    # Everything else is kept as it is.
    assert [x for x in template.splitlines() if x.startswith("max_")] == [
        x for x in lines if x.startswith("max_")]
    with pytest.raises(ValueError, match="websockets"):
        render_mosquitto_conf(
            "listener 1 127.0.0.1\n", tcp_port=1, ws_port=2, data_dir=tmp_path,
            plugin_path=tmp_path, jwt_secret_file=tmp_path, topic_prefix="im",
            service_users=["s"])
    with pytest.raises(ValueError, match="service users"):
        render_mosquitto_conf(
            template, tcp_port=1, ws_port=2, data_dir=tmp_path, plugin_path=tmp_path,
            jwt_secret_file=tmp_path, topic_prefix="im", service_users=["a b"])


def test_build_failures_name_the_debian_packages() -> None:
    message = explain_build_failure(
        "x.c:48:10: fatal error: mosquitto.h: No such file or directory\n"
        "/usr/bin/ld: cannot find -lcjson: No such file or directory\n")
    assert "missing libcjson-dev, libmosquitto-dev" in message
    assert "apt-get install -y gcc mosquitto-dev libmosquitto-dev libcjson-dev libssl-dev" in (
        message)


def test_build_is_skipped_when_the_library_is_newer(tmp_path: Path) -> None:
    built = build_plugin(tmp_path)
    stamp = built.stat().st_mtime_ns
    assert build_plugin(tmp_path) == built
    assert built.stat().st_mtime_ns == stamp


def test_build_compiles_every_source_and_redoes_it_when_one_is_newer(tmp_path: Path) -> None:
    built = build_plugin(tmp_path)
    assert {p.name for p in plugin_sources()} >= {"plugin.c", "auth.c", "acl.c", "state.c",
                                                   "control.c"}
    for source in (PLUGIN_HEADER, plugin_sources()[0]):
        older = source.stat().st_mtime - 10
        os.utime(built, (older, older))
        assert build_plugin(tmp_path) == built
        assert built.stat().st_mtime > older, source.name
