"""Test helpers: free ports, settings for a throwaway server, real HTTP and MQTT clients."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx

from config import HostPort, Settings
from contract.events import parse as parse_event

_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_slice(low: int, high: int) -> tuple[int, int]:
    """This xdist worker's share of [low, high): workers never hand out the same port, so a
    test that stops a server and starts it again on its port finds it still free."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker) if worker.isdigit() and int(worker) < count else 0
    width = (high - low) // count
    return low + index * width, low + (index + 1) * width


def free_port() -> int:
    """A free loopback port *below* the kernel's ephemeral range: a port from that range (what
    binding to port 0 gives) can be taken by any outgoing connection before the server binds."""
    floor = _ephemeral_floor()
    low, high = _worker_slice(max(1024, floor - 12000), floor)
    for _ in range(1000):
        port = random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "http": HostPort("127.0.0.1", free_port()),
        "mqtt": HostPort("127.0.0.1", free_port()),
        "mqtt_ws": HostPort("127.0.0.1", free_port()),
        "data_dir": data_dir,
        "jwt_secret": secrets.token_urlsafe(48),
        "bcrypt_rounds": 4,
        # Every test client comes from 127.0.0.1; tests/api/test_ratelimits.py turns them on.
        "rate_limits": False,
        # Push endpoints and webhook receivers in tests listen on 127.0.0.1 over plain HTTP;
        # retries come quickly and a burst is pushed after a short quiet.
        "reach_allow_insecure": True,
        "webhook_backoff_ms": 100,
        "push_coalesce_ms": 300,
    }
    values.update(overrides)
    return Settings(**values)


def unique_id(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass
class Account:
    user_id: str
    token: str
    refresh_token: str
    mqtt: dict[str, str]
    password: str = "pass-word-1"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(http: httpx.AsyncClient, user_id: str | None = None, **extra: Any) -> Account:
    user_id = user_id or unique_id()
    body = {"user_id": user_id, "name": user_id[:20], "password": "pass-word-1", **extra}
    response = await http.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return Account(user_id, data["token"], data["refresh_token"], data["mqtt"])


async def create_group(http: httpx.AsyncClient, owner: Account, *members: Account) -> str:
    response = await http.post(
        "/api/threads", headers=owner.auth,
        json={"type": "group", "name": "g", "user_ids": [m.user_id for m in members]},
    )
    assert response.status_code == 201, response.text
    thread_id: str = response.json()["data"]["thread_id"]
    return thread_id


@asynccontextmanager
async def mqtt_session(settings: Settings, account: Account, **kwargs: Any) -> AsyncIterator[
    aiomqtt.Client
]:
    async with aiomqtt.Client(
        settings.mqtt.host, settings.mqtt.port, username=account.mqtt["username"],
        password=account.mqtt["password"], identifier=account.mqtt["client_id"], **kwargs,
    ) as client:
        yield client


def granted(result: Any) -> list[int]:
    """SUBACK return codes as ints (aiomqtt gives ints or paho ReasonCodes); 0x80 = refused."""
    return [int(getattr(code, "value", code)) for code in result]


Predicate = Callable[[str, dict[str, Any]], bool]

# How many events of each type the suite received and validated against the contract.
VALIDATED: Counter[str] = Counter()


def received_event(payload: bytes | bytearray | str) -> dict[str, Any]:
    """An event as a test reads it, after checking it against the contract's union of downlink
    events (contract/events.py): whatever mqim publishes, in any mode, must parse as one."""
    event = parse_event(bytes(payload) if isinstance(payload, bytearray) else payload)
    VALIDATED[event.type] += 1
    data: dict[str, Any] = json.loads(payload)
    return data


async def next_event(
    client: aiomqtt.Client, predicate: Predicate, *, timeout: float = 5.0,  # noqa: ASYNC109
    seen: list[tuple[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The next event matching `predicate`; others are appended to `seen` if given."""
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            event = received_event(message.payload)
            topic = message.topic.value
            if predicate(topic, event):
                return dict(event)
            if seen is not None:
                seen.append((topic, event))
    raise AssertionError("message stream ended")


def send_command(thread_id: str, client_msg_id: str, body: str, req: str | None = None) -> bytes:
    return json.dumps({
        "op": "send", "req": req or client_msg_id, "thread_id": thread_id,
        "client_msg_id": client_msg_id, "type": "text", "body": body,
    }).encode()


async def barrier(client: aiomqtt.Client, settings: Settings, account: Account,
                  seen: list[tuple[str, dict[str, Any]]]) -> None:
    """Round-trip a command through the bridge. Everything the bridge published before its
    answer has then reached this client (one broker queue, in order), and lands in `seen`."""
    req = unique_id("barrier-")
    await client.publish(f"{settings.topic_prefix}/up/{account.user_id}",
                         json.dumps({"op": "noop", "req": req}), qos=1)
    await next_event(client, lambda t, e: e.get("req") == req, seen=seen)


async def whole_timeline(http: httpx.AsyncClient, reader: Account, thread_id: str,
                         ) -> list[dict[str, Any]]:
    """Every entry of a thread, paged by after_seq, after checking the seqs are 1..n, gapless."""
    entries: list[dict[str, Any]] = []
    while True:
        page = await http.get(f"/api/threads/{thread_id}/messages", headers=reader.auth,
                              params={"after_seq": len(entries), "limit": 200})
        chunk = page.json()["data"]
        if not chunk:
            break
        entries += chunk
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    return entries


def _mqtt_string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


async def connect_with_will_then_drop(
    settings: Settings, account: Account, will_topic: str, will_payload: bytes, *,
    retain: bool = False,
) -> int:
    """A hand-built MQTT 3.1.1 CONNECT with a will, then the socket is dropped without a
    DISCONNECT, which is what makes a broker send the will. Returns the CONNACK return code."""
    flags = 0x80 | 0x40 | 0x04 | 0x08 | 0x02 | (0x20 if retain else 0)  # user, pass, will QoS 1
    payload = b"".join(_mqtt_string(part.encode() if isinstance(part, str) else part) for part in (
        f"{account.user_id}:will", will_topic, will_payload, account.user_id, account.token))
    body = _mqtt_string(b"MQTT") + bytes([4, flags]) + (60).to_bytes(2, "big") + payload
    length, remaining = b"", len(body)
    while True:
        byte, remaining = remaining % 128, remaining // 128
        length += bytes([byte | (0x80 if remaining else 0)])
        if not remaining:
            break
    reader, writer = await asyncio.open_connection(settings.mqtt.host, settings.mqtt.port)
    writer.write(b"\x10" + length + body)
    await writer.drain()
    async with asyncio.timeout(10):
        connack = await reader.read(4)
    writer.transport.abort()  # no DISCONNECT: an abnormal end, so the will is due
    return connack[3] if len(connack) == 4 else -1
