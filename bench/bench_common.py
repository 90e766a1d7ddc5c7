"""What the bench's scenarios share: figures and percentiles, progress bars, the CPU/RSS meter,
aiomqtt clients for a user or the service account, paced sends held to a window of unconfirmed
ones, mqim's raw protocol as a chat client speaks it (`ChatSender`), the raw broker baseline,
accounts and groups, and seeding a thread's history straight into the database.

Used by bench/mqim_bench.py (the scenarios and the report) and bench/sdk_scenario.py; it
measures nothing by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import secrets
import socket
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker.link.client import derive_service_password  # after the path fix above
from tests.helpers import Account, register
from tests.stacks import Stack

PAYLOAD_PAD = 120  # bytes of body padding: ~200-byte uplinks, as in the research figures
IN_FLIGHT = 100  # unconfirmed sends per client (PUBACK for raw, the ack event for mqim)


# --- measurement helpers -----------------------------------------------------------------


@dataclass
class Figures:
    scenario: str
    mode: str
    messages: int = 0
    seconds: float = 0.0
    persisted_per_s: float = 0.0
    delivered_per_s: float = 0.0
    raw_per_s: float = 0.0
    ratio: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    server_cpu_s: float = 0.0
    broker_cpu_s: float = 0.0
    server_rss_mb: float = 0.0
    broker_rss_mb: float = 0.0
    mqim_us_per_msg: float = 0.0
    mqim_us_per_event: float = 0.0
    broker_us_per_msg: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self._last = label, total, 0, 0.0

    def add(self, n: int = 1) -> None:
        self.done += n
        if not self.total:
            return
        now = time.monotonic()
        if now - self._last > 0.2 or self.done >= self.total:
            self._last = now
            filled = int(30 * self.done / max(self.total, 1))
            sys.stderr.write(f"\r  {self.label:<28} [{'#' * filled}{'.' * (30 - filled)}] "
                             f"{self.done}/{self.total}")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


class ProcessMeter:
    """CPU seconds used and RSS of the server processes: `mqim serve` with any children it
    started, and Mosquitto if any (the embedded broker is inside mqim's own process)."""

    def __init__(self, stack: Stack) -> None:
        self.server = psutil.Process(stack.process.pid)
        conf = str(stack.log_path.parent / "mosquitto.conf")
        self.broker = next((p for p in psutil.process_iter(["cmdline"])
                            if conf in " ".join(p.info["cmdline"] or [])), None)
        self._start = self._cpu()

    def _cpu(self) -> tuple[float, float]:
        def used(p: psutil.Process | None) -> float:
            if p is None:
                return 0.0
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:  # a child that ended between listing and reading
                return 0.0
            return float(t.user + t.system)
        children = self.server.children(recursive=True)
        return used(self.server) + sum(used(c) for c in children), used(self.broker)

    def stop(self, figures: Figures) -> None:
        server, broker = self._cpu()
        figures.server_cpu_s = server - self._start[0]
        figures.broker_cpu_s = broker - self._start[1]
        figures.server_rss_mb = self.server.memory_info().rss / 2**20
        if self.broker is not None:
            figures.broker_rss_mb = self.broker.memory_info().rss / 2**20


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the load generator's own garbage collector out of what it measures: no collection
    while inside. The bench process holds the whole test harness, and each run's sends keep
    thousands of tasks alive, so a full collection paused its event loop for 35-100 ms several
    times a run. Each pause showed as latency (most of the p99 at 1,000 msg/s) and as lost
    throughput, in the raw runs as in mqim's. A measured window lasts seconds, so what it
    leaves for the collector afterwards is small. mqim itself freezes its startup heap
    (mqim/cli.py)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


# Every bench client, raw or chat, turns Nagle off, as mqim's own connections and Mosquitto
# (set_tcp_nodelay) do: otherwise a small publish can wait for a delayed ACK (up to 40 ms).
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def user_client(stack: Stack, account: Account, **kwargs: Any) -> aiomqtt.Client:
    s = stack.settings
    return aiomqtt.Client(s.mqtt.host, s.mqtt.port, username=account.user_id,
                          password=account.token, identifier=account.mqtt["client_id"],
                          max_inflight_messages=IN_FLIGHT, socket_options=NODELAY, **kwargs)


def service_client(stack: Stack, name: str) -> aiomqtt.Client:
    s = stack.settings
    return aiomqtt.Client(s.mqtt.host, s.mqtt.port, username=s.bridge_username,
                          password=derive_service_password(s.jwt_secret, s.bridge_username),
                          identifier=f"{s.bridge_username}:bench-{name}-{secrets.token_hex(3)}",
                          max_inflight_messages=IN_FLIGHT, socket_options=NODELAY)


async def run_paced(sends: Sequence[Callable[[], Awaitable[None]]], rate: float,
                    progress: Progress) -> None:
    """Start each send at `rate` per second (0: as fast as the window allows), with at most
    IN_FLIGHT unconfirmed; a send's awaitable completes when it is confirmed."""
    window = asyncio.Semaphore(IN_FLIGHT)
    start = time.monotonic()

    async def one(send: Callable[[], Awaitable[None]]) -> None:
        try:
            await send()
        finally:
            window.release()
            progress.add()

    tasks = []
    for i, send in enumerate(sends):
        if rate > 0:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await window.acquire()
        tasks.append(asyncio.ensure_future(one(send)))
    await asyncio.gather(*tasks)


async def publish(client: aiomqtt.Client, topic: str, make: Callable[[], bytes]) -> None:
    """A raw QoS 1 publish, confirmed by the broker's PUBACK. The payload is made at publish
    time, so its timestamp measures from the publish."""
    await client.publish(topic, make(), qos=1)


class ChatSender:
    """A chat client's sending side, built as docs/mqtt.md tells clients to: it is subscribed to
    its thread (it must be, to hear the other side) and its own topic, and a send is confirmed
    when its message comes back on the thread with the sender's `client_msg_id` (`echo`), or
    by the `ack` event its `req` asks for (`req`: one more publish per message for the bridge).
    The broker's PUBACK only means the broker has it. So senders are held to IN_FLIGHT
    unconfirmed sends, as the raw publishers are held to IN_FLIGHT unacked PUBLISHes."""

    def __init__(self, client: aiomqtt.Client, account: Account, thread_id: str, prefix: str,
                 acks: str) -> None:
        self.client, self.user_id, self.thread_id, self.prefix = (
            client, account.user_id, thread_id, prefix)
        self.by_req = acks == "req"
        self._pending: dict[str, asyncio.Future[None]] = {}

    async def subscribe(self) -> None:
        await self.client.subscribe(f"{self.prefix}/u/{self.user_id}", qos=1)
        if not self.by_req:
            await self.client.subscribe(f"{self.prefix}/t/{self.thread_id}", qos=1)

    async def send(self, i: int) -> None:
        key = f"b{i}-{secrets.token_hex(4)}"
        done = self._pending[key] = asyncio.get_running_loop().create_future()
        await self.client.publish(f"{self.prefix}/up/{self.user_id}", send_payload(
            key, self.thread_id, i, req=key if self.by_req else None), qos=1)
        await done

    async def listen(self) -> None:
        """Resolve confirmations until cancelled; an `error` event fails the run (a bench must
        not count refused sends)."""
        async for message in self.client.messages:
            event = json.loads(bytes(message.payload))
            kind = event.get("type")
            if kind == "error":
                raise RuntimeError(f"send refused: {event}")
            if self.by_req and kind == "ack":
                key = event["req"]
            elif not self.by_req and kind == "message" and event["sender_id"] == self.user_id:
                key = event["client_msg_id"]
            else:
                continue
            future = self._pending.pop(key, None)
            if future is not None:
                future.set_result(None)


def stamp_body(i: int) -> str:
    return f"{time.perf_counter_ns()}:{i}:" + "x" * PAYLOAD_PAD


def raw_payload(i: int) -> bytes:
    return stamp_body(i).encode()


def send_payload(client_msg_id: str, thread_id: str, i: int, *, req: str | None) -> bytes:
    command = {"op": "send", "thread_id": thread_id, "client_msg_id": client_msg_id,
               "body": stamp_body(i)}
    if req is not None:
        command["req"] = req
    return json.dumps(command).encode()


async def receive(client: aiomqtt.Client, expected: int, progress: Progress | None,
                  latencies: list[float] | None, kind: str | None = "message") -> None:
    """Count messages (thread events of `kind`, or any payload when kind is None) until
    `expected`, recording latency from the timestamp at the start of the body."""
    got = 0
    async for message in client.messages:
        payload = bytes(message.payload)
        if kind is not None:
            event = json.loads(payload)
            if event.get("type") != kind:
                continue
            body = str(event.get("body", ""))
        else:
            body = payload.decode()
        if latencies is not None:
            latencies.append((time.perf_counter_ns() - int(body.split(":", 1)[0])) / 1e6)
        got += 1
        if progress is not None:
            progress.add()
        if got >= expected:
            return


# --- the raw broker baseline ---------------------------------------------------------------


async def raw_passthrough(stack: Stack, pairs: int, per_pair: int, fanout: int = 1) -> float:
    """Deliveries/s through the broker alone: `pairs` publishers, each to its own topic with
    `fanout` subscribers, as the service account (no bridge, no database)."""
    progress = Progress(f"raw broker x{pairs}x{fanout}", pairs * per_pair * fanout)
    async with asyncio.TaskGroup() as group:
        subs = [service_client(stack, f"rs{i}") for i in range(pairs * fanout)]
        pubs = [service_client(stack, f"rp{i}") for i in range(pairs)]
        for c in (*subs, *pubs):
            await c.__aenter__()
        try:
            for i, sub in enumerate(subs):
                await sub.subscribe(f"bench/raw/{i // fanout}", qos=1)
            with frozen_heap():
                start = time.monotonic()
                receivers = [group.create_task(receive(s, per_pair, progress, None, kind=None))
                             for s in subs]
                for p, pub in enumerate(pubs):
                    sends = [partial(publish, pub, f"bench/raw/{p}", partial(raw_payload, i))
                             for i in range(per_pair)]
                    group.create_task(run_paced(sends, 0, Progress("", 0)))
                await asyncio.gather(*receivers)
                return pairs * per_pair * fanout / (time.monotonic() - start)
        finally:
            for c in (*subs, *pubs):
                await c.__aexit__(None, None, None)


async def bracketed(raw: Callable[[], Awaitable[float]], figures: Figures,
                    measured: Awaitable[None]) -> None:
    """Run the raw baseline right before and right after the measured pipeline and keep their
    mean: on a shared 2-core machine one raw run alone drifts by 20% or more between runs."""
    before = await raw()
    await measured
    after = await raw()
    figures.raw_per_s = (before + after) / 2
    figures.extra["raw_before_per_s"], figures.extra["raw_after_per_s"] = before, after


# --- scenarios -------------------------------------------------------------------------------


async def accounts(http: httpx.AsyncClient, n: int) -> list[Account]:
    progress = Progress("registering users", n)
    window = asyncio.Semaphore(20)

    async def one() -> Account:
        async with window:
            account = await register(http)
            progress.add()
            return account

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def group_of(http: httpx.AsyncClient, owner: Account, members: Sequence[Account]) -> str:
    ids = [m.user_id for m in members]
    response = await http.post("/api/threads", headers=owner.auth,
                               json={"type": "group", "name": "bench", "user_ids": ids[:4999]})
    thread_id: str = response.json()["data"]["thread_id"]
    return thread_id

async def seed_history(stack: Stack, thread_id: str, sender: str, count: int) -> None:
    """Append `count` messages to a thread straight into the database (fast), as if sent."""
    progress = Progress(f"seeding {count:,} messages", count)
    url = stack.settings.db_url
    now = time.time()
    chunk = 50_000
    if url.startswith("sqlite://"):
        db = sqlite3.connect(url.removeprefix("sqlite://").split("?", 1)[0], timeout=60)
        (last,) = db.execute("SELECT last_seq FROM thread WHERE id=?", (thread_id,)).fetchone()
        for start in range(0, count, chunk):
            rows = [(f"m{secrets.token_hex(10)}", thread_id, last + i + 1, "message", sender,
                     None, "text", f"history {i}", None, "[]", "[]", None, 0, now)
                    for i in range(start, min(start + chunk, count))]
            db.executemany("INSERT INTO message (id, thread_id, seq, kind, sender_id, "
                           "client_msg_id, type, body, reply_to, mentions, attachments, data, "
                           "deleted, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,datetime(?, "
                           "'unixepoch'))", rows)
            db.commit()
            progress.add(len(rows))
        db.execute("UPDATE thread SET last_seq=? WHERE id=?", (last + count, thread_id))
        db.commit()
        db.close()
        return
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        last = await conn.fetchval("SELECT last_seq FROM thread WHERE id=$1", thread_id)
        from datetime import UTC, datetime

        created = datetime.now(UTC)
        for start in range(0, count, chunk):
            records = [(f"m{secrets.token_hex(10)}", thread_id, last + i + 1, "message", sender,
                        "text", f"history {i}", "[]", "[]", False, created)
                       for i in range(start, min(start + chunk, count))]
            await conn.copy_records_to_table(
                "message", records=records, columns=["id", "thread_id", "seq", "kind",
                                                     "sender_id", "type", "body", "mentions",
                                                     "attachments", "deleted", "created_at"])
            progress.add(len(records))
        await conn.execute("UPDATE thread SET last_seq=$1 WHERE id=$2", last + count, thread_id)
    finally:
        await conn.close()

