"""Ask one ACL table row of each implementation: set up the row's state, connect as the row's
user, make the request, and return whether it was allowed.

- python: `broker.acl.check_topic_access` with a Directory answered from the row's state; the
  connection is `Directory.check_credentials` of that state.
- mosquitto: a real CONNECT, SUBSCRIBE (SUBACK code), PUBLISH (MQTT 5 PUBACK code) or delivery
  to Mosquitto with mqim's plugin, whose state is sent over the control topic.
- hooks: mqim's HTTP auth hooks, state made through mqim's HTTP API; every broker format that can
  ask (mosquitto-go-auth, EMQX, VerneMQ, RabbitMQ by routing key) must give one answer.
"""

from __future__ import annotations

import asyncio
import hmac
import queue
import string
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiomqtt
import httpx
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from broker.acl import Access, ExtraRule, check_topic_access, touches_tree
from broker.link.client import derive_service_password
from contract.errors import AuthError
from contract.hooks_rabbitmq import topic_to_routing_key
from contract.topics import TopicScheme
from models.tokens import decode_access_token, issue_access_token
from tests.conformance.acl_cases import (
    HOOKS,
    MOSQUITTO,
    PREFIX_USER,
    PYTHON,
    SERVICE,
    THREADS,
    USERS,
    AclCase,
    State,
)
from tests.conformance.world import NOT_AUTHORIZED, World, reason_code
from tests.helpers import Account, unique_id

GO_AUTH = "/api/internal/mqtt/go-auth"
EMQX = "/api/internal/mqtt/emqx"
VERNEMQ = "/api/internal/mqtt/vernemq"
RABBITMQ = "/api/internal/mqtt/rabbitmq"
# mosquitto-go-auth's `acc`.
GO_AUTH_ACC = {Access.RECEIVE: 1, Access.PUBLISH: 2, Access.SUBSCRIBE: 4}


def named(case: AclCase) -> set[str]:
    """Every symbolic user or thread the row mentions."""
    fields = {f for _, f, _, _ in string.Formatter().parse(case.topic) if f}
    state = case.state
    for users in state.members.values():
        fields |= users
    fields |= set(state.members)
    fields |= {r.user for r in state.rules if r.user is not None}
    fields |= state.banned | state.ended | state.ended_elsewhere | {case.user}
    return fields - {"p"}


def concrete_topic(case: AclCase, names: dict[str, str], prefix: str) -> str:
    return case.topic.format(p=prefix, **names)


# --- python ------------------------------------------------------------------------------------


class StateDirectory:
    """`broker.acl.Directory` answered from a row's state (a value, not a stand-in for a class
    of ours): a token is live unless its user is banned or its session ended."""

    def __init__(self, secret: str, state: State, names: dict[str, str],
                 ended_sessions: set[str]) -> None:
        self._secret = secret
        self._members = {names[t]: {names[u] for u in users}
                         for t, users in state.receivers().items()}
        self._rules = [ExtraRule(r.topic, r.access, None if r.user is None else names[r.user])
                       for r in state.rules]
        self._banned = {names[u] for u in state.banned}
        self._ended = ended_sessions

    async def check_credentials(self, username: str, password: str) -> bool:
        try:
            claims = decode_access_token(self._secret, password)
        except AuthError:
            return False
        return (claims.user_id == username and username not in self._banned
                and claims.session_id not in self._ended)

    async def receives(self, user_id: str, thread_id: str) -> bool:
        return user_id in self._members.get(thread_id, set())

    async def rules_for(self, user_id: str) -> Sequence[ExtraRule]:
        return [r for r in self._rules if r.user_id in (None, user_id)]


async def ask_python(world: World, case: AclCase) -> bool:
    secret, prefix, service = world.settings.jwt_secret, world.prefix, world.service_user
    names = {u: u for u in USERS} | {t: t for t in THREADS}
    names |= {PREFIX_USER: prefix, SERVICE: service}
    live = f"{case.user}-live"
    ended = {f"{u}-live" for u in case.state.ended} | {
        f"{u}-other" for u in case.state.ended_elsewhere}
    directory = StateDirectory(secret, case.state, names, ended)
    username = names[case.user]
    if case.user == SERVICE:
        expected = derive_service_password(secret, service)
        connected = hmac.compare_digest(expected, world.service_password)
    else:
        connected = await directory.check_credentials(
            username, issue_access_token(secret, username, live, 900))
    if not connected:
        return False
    return await check_topic_access(
        username=username, topic=concrete_topic(case, names, prefix), access=case.access,
        scheme=TopicScheme(prefix), directory=directory, service_users={service},
    )


# --- mosquitto ---------------------------------------------------------------------------------


def _paho_publish(port: int, username: str, password: str, topic: str, retain: bool,
                  ) -> int | None:
    """Publish QoS 1 over MQTT 5 and return the PUBACK reason code (aiomqtt drops it); None
    if the CONNECT was refused."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                         client_id=f"{username}:{uuid.uuid4().hex[:8]}")
    client.username_pw_set(username, password)
    connack: queue.Queue[int] = queue.Queue()
    acks: queue.Queue[int] = queue.Queue()

    def on_connect(c: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        connack.put(rc.value)

    def on_publish(c: paho.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        acks.put(rc.value)

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        rc = connack.get(timeout=5)
        if rc >= 0x80:
            assert rc == NOT_AUTHORIZED, f"CONNACK {rc:#x}"
            return None
        client.publish(topic, b"conformance", qos=1, retain=retain)
        return acks.get(timeout=5)
    finally:
        client.disconnect()
        client.loop_stop()


class MosquittoRow:
    """One row's state in the plugin, with fresh ids so that rows never meet."""

    def __init__(self, world: World, case: AclCase) -> None:
        self.world, self.case = world, case
        self.names = {u: unique_id(u[:1]) for u in USERS} | {t: unique_id("t") for t in THREADS}
        self.names |= {PREFIX_USER: world.prefix, SERVICE: world.service_user}
        self.sessions = {u: (uuid.uuid4().hex, uuid.uuid4().hex) for u in USERS}
        self.rules = [{"users": ["*"] if r.user is None else [self.names[r.user]],
                       "topic": r.topic, "access": r.access} for r in case.state.rules]

    async def apply(self) -> None:
        control, state, until = self.world.control, self.case.state, int(time.time()) + 3600
        for thread, users in state.receivers().items():
            await control.set_members(self.names[thread], [self.names[u] for u in users])
        await control.set_rules(self.rules)
        for user in state.banned:
            await control.ban_user(self.names[user])
        for user in state.ended:
            await control.end_session(self.names[user], self.sessions[user][0], until)
        for user in state.ended_elsewhere:
            await control.end_session(self.names[user], self.sessions[user][1], until)

    @property
    def credentials(self) -> tuple[str, str]:
        user = self.case.user
        if user == SERVICE:
            return self.world.service_user, self.world.service_password
        token = issue_access_token(self.world.settings.jwt_secret, self.names[user],
                                   self.sessions[user][0], 900)
        return self.names[user], token

    def receive_grant(self) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        """For a receive row whose state refuses the subscription: how to let the user
        subscribe first (grant), then put the row's state back (revoke), so that the delivery
        alone is left to the row's state."""
        case, control = self.case, self.world.control
        topic, user = concrete_topic(case, self.names, self.world.prefix), self.names[case.user]
        threads = {f"{self.world.prefix}/t/{self.names[t]}": t for t in THREADS}
        if topic in threads:
            thread_id = self.names[threads[topic]]

            async def join() -> None:
                await control.add_members(thread_id, [user])

            async def leave() -> None:
                await control.remove_members(thread_id, [user])

            return join, leave
        if topic.startswith("$") or touches_tree(topic, self.world.prefix):
            raise AssertionError(f"{case.name}: nothing lets {case.user} subscribe to {topic} "
                                 "in Mosquitto; the row must say so in not_in")
        read = {"users": [user], "topic": topic, "access": "read"}

        async def grant() -> None:
            await control.set_rules([*self.rules, read])

        async def revoke() -> None:
            await control.set_rules(self.rules)

        return grant, revoke


async def ask_mosquitto(world: World, case: AclCase) -> bool:
    row = MosquittoRow(world, case)
    await row.apply()
    try:
        return await _ask_mosquitto(row)
    finally:
        await world.control.set_rules([])


async def _subscribed(client: aiomqtt.Client, topic: str) -> bool:
    (code,) = await client.subscribe(topic, qos=1)
    return reason_code(code) < 0x80


async def _ask_mosquitto(row: MosquittoRow) -> bool:
    world, case = row.world, row.case
    username, password = row.credentials
    topic = concrete_topic(case, row.names, world.prefix)
    if case.access == Access.PUBLISH:
        rc = await asyncio.to_thread(_paho_publish, world.mosquitto_port, username, password,
                                     topic, case.retain)
        return rc is not None and rc < 0x80
    try:
        async with world.mqtt_client(username, password) as client:
            if case.access == Access.SUBSCRIBE:
                return await _subscribed(client, topic)
            if not await _subscribed(client, topic):
                grant, revoke = row.receive_grant()
                await grant()
                assert await _subscribed(client, topic), "the grant did not let it subscribe"
                await revoke()
            barrier = f"{world.prefix}/u/{username}" if case.user != SERVICE else (
                f"conformance/{uuid.uuid4().hex}")
            assert await _subscribed(client, barrier)
            async with world.service_client() as service:
                await service.publish(topic, b"probe", qos=1)
                await service.publish(barrier, b"barrier", qos=1)
            # One publisher's messages arrive in order: the probe first, or it was withheld.
            async with asyncio.timeout(5):
                first = await anext(client.messages)
            return first.topic.value == topic and first.payload == b"probe"
    except MqttConnectError as exc:
        if reason_code(exc.rc) != NOT_AUTHORIZED:
            raise
        return False


# --- hooks -------------------------------------------------------------------------------------


class HooksRow:
    """One row's state in mqim's database, made through its HTTP API."""

    def __init__(self, world: World, case: AclCase) -> None:
        self.world, self.case = world, case
        self.accounts: dict[str, Account] = {PREFIX_USER: world.prefix_account}
        self.names: dict[str, str] = {PREFIX_USER: world.prefix, SERVICE: world.service_user}
        self.rule_ids: list[int] = []

    async def apply(self) -> None:
        world, state = self.world, self.case.state
        mentioned = named(self.case)
        for user in sorted(mentioned & set(USERS) - {PREFIX_USER, SERVICE}):
            self.accounts[user] = await world.new_account(user)
            self.names[user] = self.accounts[user].user_id
        for thread in THREADS:
            users = sorted(state.members.get(thread, set()))
            if users:
                owner, *others = [self.accounts[u] for u in users]
                self.names[thread] = await world.group(owner, *others)
                for user in sorted(state.not_delivered & set(users)):
                    await world.set_recv_msg_opt(self.accounts[user], self.names[thread], 2)
                if thread in state.dissolved:
                    await world.dissolve(owner, self.names[thread])
            else:
                self.names[thread] = unique_id("t")  # no such thread
        for rule in state.rules:
            user_id = None if rule.user is None else self.names[rule.user]
            self.rule_ids.append(await world.add_rule(rule.topic, rule.access, user_id))
        for user in state.ended_elsewhere:
            await world.logout(await world.login_elsewhere(self.accounts[user]))
        for user in state.ended:
            await world.logout(self.accounts[user].token)
        for user in state.banned:
            await world.ban(self.names[user])

    async def remove_rules(self) -> None:
        for rule_id in self.rule_ids:
            await self.world.delete_rule(rule_id)

    async def _post(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        response = await self.world.http.post(path, json=body,
                                              headers={**self.world.hook_headers, **headers})
        assert response.status_code in (200, 403), response.text
        return response

    async def _rabbitmq(self, path: str, form: dict[str, str]) -> bool:  # form in, a word out
        response = await self.world.http.post(f"{RABBITMQ}/{path}", data=form,
                                              headers=self.world.hook_headers)
        assert response.status_code == 200, response.text
        return response.text.split(" ", 1)[0] == "allow"

    async def connect(self) -> bool:
        user, world = self.case.user, self.world
        if user == SERVICE:
            username, password = world.service_user, world.service_password
        else:
            username, password = self.names[user], self.accounts[user].token
        client_id = f"{username}:conformance"
        go = (await self._post(f"{GO_AUTH}/user", {
            "username": username, "password": password, "clientid": client_id})).status_code
        emqx = (await self._post(f"{EMQX}/authn", {
            "username": username, "password": password, "clientid": client_id})).json()
        vmq = (await self._post(VERNEMQ, {
            "username": username, "password": password, "client_id": client_id,
            "mountpoint": ""}, **{"vernemq-hook": "auth_on_register"})).json()
        rabbit = await self._rabbitmq("user", {
            "username": username, "password": password, "client_id": client_id})
        answers: set[bool] = {go == 200, emqx["result"] == "allow", vmq == {"result": "ok"}, rabbit}
        assert len(answers) == 1, f"the formats disagree on the login: {go, emqx, vmq, rabbit}"
        return answers.pop()

    async def access(self) -> bool:
        case = self.case
        username = self.names[case.user]
        topic = concrete_topic(case, self.names, self.world.prefix)
        answers: dict[str, bool] = {}
        if not (case.access == Access.PUBLISH and case.retain):  # go-auth has no retain flag
            go = await self._post(f"{GO_AUTH}/acl", {
                "username": username, "clientid": username, "topic": topic,
                "acc": GO_AUTH_ACC[case.access]})
            answers["go-auth"] = go.status_code == 200
        if case.access == Access.PUBLISH:
            emqx = await self._post(f"{EMQX}/authz", {
                "username": username, "clientid": username, "topic": topic,
                "action": "publish", "retain": case.retain})
            vmq = await self._post(VERNEMQ, {
                "username": username, "client_id": username, "mountpoint": "", "qos": 1,
                "topic": topic, "payload": "eA==", "retain": case.retain},
                **{"vernemq-hook": "auth_on_publish"})
            answers["emqx"] = emqx.json()["result"] == "allow"
            answers["vernemq"] = vmq.json() == {"result": "ok"}
        elif case.access == Access.SUBSCRIBE:
            emqx = await self._post(f"{EMQX}/authz", {
                "username": username, "clientid": username, "topic": topic,
                "action": "subscribe"})
            vmq = await self._post(VERNEMQ, {
                "username": username, "client_id": username, "mountpoint": "",
                "topics": [{"topic": topic, "qos": 1}]}, **{"vernemq-hook": "auth_on_subscribe"})
            answers["emqx"] = emqx.json()["result"] == "allow"
            answers["vernemq"] = vmq.json()["topics"] == [{"topic": topic, "qos": 1}]
        if case.access != Access.RECEIVE and not case.retain:  # RabbitMQ has no retain flag
            answers["rabbitmq"] = await self._rabbitmq("topic", {
                "username": username, "client_id": username, "vhost": "/", "resource": "topic",
                "name": "amq.topic",  # the MQTT plugin's key: `/` as `.`, a filter's `+` as `*`
                "routing_key": topic_to_routing_key(topic).replace("+", "*"),
                "permission": "write" if case.access == Access.PUBLISH else "read"})
        # Receive: only mosquitto-go-auth asks about it (acc 1).
        assert len(set(answers.values())) == 1, f"the hook formats disagree: {answers}"
        return all(answers.values())


async def ask_hooks(world: World, case: AclCase) -> bool:
    row = HooksRow(world, case)
    try:
        await row.apply()
        return await row.connect() and await row.access()
    finally:
        await row.remove_rules()


ASK: dict[str, Callable[[World, AclCase], Awaitable[bool]]] = {
    PYTHON: ask_python, MOSQUITTO: ask_mosquitto, HOOKS: ask_hooks,
}
