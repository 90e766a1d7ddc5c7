"""Property-based hostile input (hypothesis): commands and bodies generated from the schemas and
from adversarial strategies (deep nesting, huge integers, lone surrogates, control characters,
wrong types). Every input gets an error or a success: never an exception, a 5xx, or silence."""

from __future__ import annotations

import json
import queue
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from contract.commands import Command, CommandError, parse_command
from tests.helpers import received_event
from tests.hostile.conftest import count
from tests.stacks import Stack

# Text that includes what breaks naive code: NUL and other controls, lone surrogates, RTL marks.
hostile_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=80) | \
    st.sampled_from(["", "\0", "a\nb", "\ud800", "t" * 300, "%00", "../../etc", "@all", "+/#"])
hostile_int = st.integers(min_value=-(2**80), max_value=2**80) | st.sampled_from(
    [-1, 0, 2**63 - 1, 2**63, 2**64])
scalars = st.none() | st.booleans() | hostile_int | st.floats(allow_nan=False) | hostile_text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(hostile_text, inner, max_size=4), max_leaves=20)

OPS = ["send", "typing", "read", "presence", "react", "nope", ""]
FIELDS = ["thread_id", "client_msg_id", "body", "type", "seq", "status", "is_typing", "mentions",
          "attachments", "reply_to"]


@st.composite
def uplink_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A command-shaped object: a real op, some of its fields, each possibly hostile."""
    command: dict[str, Any] = {"op": draw(st.sampled_from(OPS) | hostile_text)}
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True)):
        command[name] = draw(json_values)
    return command


def nested(depth: int) -> bytes:
    return b'{"op": "send", "attachments": ' + b"[" * depth + b"]" * depth + b"}"


raw_payloads = st.binary(max_size=200) | st.builds(nested, st.integers(1, 3000)) | \
    st.builds(lambda n: b'{"op": "read", "seq": ' + b"9" * n + b"}", st.integers(1, 6000))


def encode(value: Any) -> bytes:
    # ensure_ascii writes lone surrogates as \\udXXX escapes, as a hostile client would.
    return json.dumps(value, ensure_ascii=True).encode()


@settings(max_examples=1000, deadline=None)
@given(st.one_of(uplink_objects().map(encode), json_values.map(encode), raw_payloads))
def test_any_uplink_parses_to_a_command_or_a_command_error(payload: bytes) -> None:
    count("mqtt uplinks (parser)", "inputs tried")
    outcome: Command | CommandError
    try:
        outcome = parse_command(payload, 64 * 1024)
    except CommandError as exc:
        outcome = exc
    if isinstance(outcome, CommandError):
        assert 1000 <= outcome.error.number < 5000
        assert outcome.error.msg
    else:
        assert isinstance(outcome, Command)


class _Replies:
    """A real paho client that collects the events on the user's personal topic."""

    def __init__(self, server: Stack, account: dict[str, Any]) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        mqtt = account["mqtt"]
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=mqtt["client_id"])
        self.client.username_pw_set(mqtt["username"], mqtt["password"])
        self.client.on_message = lambda c, u, m: self.events.put(received_event(m.payload))
        self.client.connect(server.settings.mqtt.host, server.settings.mqtt.port)
        self.client.loop_start()
        prefix = server.settings.topic_prefix
        self.uplink = f"{prefix}/up/{mqtt['username']}"
        self.client.subscribe(f"{prefix}/u/{mqtt['username']}", qos=1)[1]

    def reply_to(self, req: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            event = self.events.get(timeout=timeout)
            if event.get("req") == req:
                return event


@pytest.fixture
def live(server: Stack) -> Iterator[tuple[Stack, _Replies, dict[str, Any]]]:
    base = f"http://{server.settings.http}"
    user = f"p{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=base, timeout=10) as http:
        registered = http.post("/api/auth/register", json={
            "user_id": user, "name": user, "password": "pass-word-1"})
        account = registered.json()["data"]
        thread = http.post("/api/threads", headers={"Authorization": f"Bearer {account['token']}"},
                           json={"type": "group", "name": "g"}).json()["data"]["thread_id"]
    replies = _Replies(server, {**account, "thread_id": thread})
    time.sleep(0.2)  # the SUBACK: paho's subscribe does not wait for it
    yield server, replies, {**account, "thread_id": thread}
    replies.client.loop_stop()
    replies.client.disconnect()


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command=uplink_objects())
def test_live_bridge_answers_every_generated_command(
    live: tuple[Stack, _Replies, dict[str, Any]], command: dict[str, Any]
) -> None:
    """Over a real broker to the real bridge: every command that names a req is answered (ack or
    error), and the bridge keeps answering the next one at once."""
    _, replies, account = live
    req = uuid.uuid4().hex
    if command.get("thread_id") is None:
        command["thread_id"] = account["thread_id"]
    if command.get("op") == "send":
        command.setdefault("client_msg_id", req)
    command["req"] = req
    replies.client.publish(replies.uplink, encode(command), qos=1)
    count("mqtt uplinks (live, generated)", "inputs tried")
    event = replies.reply_to(req)
    assert event["type"] in ("ack", "error"), event
    if event["type"] == "error":
        assert event["code"] != 5000, event  # never the server's own fault


ROUTES = [
    ("POST", "/api/auth/register"), ("POST", "/api/auth/login"), ("POST", "/api/auth/refresh"),
    ("POST", "/api/auth/verify-code"), ("PATCH", "/api/me"), ("POST", "/api/threads"),
    ("POST", "/api/friends/requests"), ("POST", "/api/friends/groups"), ("POST", "/api/blocks"),
    ("POST", "/api/admin/acl/rules"), ("POST", "/api/threads/{thread}/messages"),
    ("POST", "/api/threads/{thread}/read"), ("POST", "/api/threads/{thread}/members"),
]


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES),
       body=st.one_of(json_values.map(encode), raw_payloads,
                      st.dictionaries(st.sampled_from(["name", "password", "user_id", "login",
                                                       "email", "seq", "body", "user_ids",
                                                       "client_msg_id", "type", "topic"]),
                                      json_values, max_size=5).map(encode)))
def test_no_http_body_gets_a_5xx(
    live: tuple[Stack, _Replies, dict[str, Any]], route: tuple[str, str], body: bytes
) -> None:
    server, _, account = live
    method, path = route
    with httpx.Client(base_url=f"http://{server.settings.http}", timeout=10) as http:
        response = http.request(method, path.format(thread=account["thread_id"]), content=body,
                                headers={"Authorization": f"Bearer {account['token']}",
                                         "Content-Type": "application/json"})
    count("http (generated)", "inputs tried")
    if response.status_code >= 500:
        count("http (generated)", "5xx seen")
    assert response.status_code < 500, (method, path, body[:80], response.text)
    assert "Traceback" not in response.text
